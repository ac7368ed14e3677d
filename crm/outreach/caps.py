"""Caps: named platform limits (data, with defaults) and the ledger that reserves against them.

A reservation is one conditional upsert on ``cap_usage`` keyed by (subject, action, local day):
``used`` only grows while it is below the cap, so concurrent workers can never exceed it.
What does not fit is deferred to the next allowed window by the caller, never dropped.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, literal, select, text, update
from sqlalchemy.orm import Session

from crm.core.db import dialect_insert, is_postgres
from crm.core.errors import InputError
from crm.core.vocabulary import CapAction, Platform
from crm.models import CapUsage, OperatorAccount, PlatformLimit, utcnow

DAY = "day"
INTERVAL = "interval"  # pacing: ``limit`` is the minimum number of seconds between actions
JITTER = 0.25  # pacing intervals stretch by up to this fraction, so sends do not look robotic

TENCENT_JOIN_RULE = (
    "Tencent: one WeChat account can join at most 10 groups a day by scanning a QR code "
    "(DOMAIN.md, 注意事项)"
)

# (platform, scope, action, window, limit, source): the defaults seeded on first use.
DEFAULT_LIMITS: tuple[tuple[str, str, str, str, int, str], ...] = (
    ("wechat", "contact", "group_join", DAY, 10, TENCENT_JOIN_RULE),
    ("wechat", "account", "group_join", DAY, 10, TENCENT_JOIN_RULE),
    ("wecom", "contact", "group_join", DAY, 10, TENCENT_JOIN_RULE),
    ("wecom", "account", "group_join", DAY, 10, TENCENT_JOIN_RULE),
    ("wechat", "account", "friend_add", DAY, 20, "practice: fast friend adds get restricted"),
    ("wechat", "account", "friend_add", INTERVAL, 60, "operator practice: pace friend requests"),
    ("wecom", "account", "friend_add", DAY, 100, "operator practice for WeCom staff accounts"),
    ("wechat", "account", "message", DAY, 200, "practice: few private messages a day"),
    ("wecom", "account", "message", DAY, 1000, "practice; WeCom also limits per customer"),
    ("email", "account", "message", DAY, 2000, "typical SMTP relay daily quota"),
    ("webhook", "account", "message", DAY, 100000, "receiver's capacity"),
)  # fmt: skip


class Ask(NamedTuple):
    """A request to reserve ``want`` units of an action for a subject on a local day.

    A named tuple: dispatch builds one per ledger key per batch, and tuples build fast.
    """

    subject: str
    action: str
    day: date
    want: int
    cap: int
    interval: int = 0  # pacing seconds; with pacing, at most one unit per reservation


def account_subject(account_id: int) -> str:
    """The ledger subject of an operator account."""
    return f"account:{account_id}"


def contact_subject(contact_id: int) -> str:
    """The ledger subject of a contact's own account (its daily group joins)."""
    return f"contact:{contact_id}"


def local_day(now: datetime, zone: ZoneInfo) -> date:
    """The calendar day ``now`` falls on in a time zone."""
    return now.astimezone(zone).date()


def next_day_start(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant the local day after ``day`` begins: when a full daily cap frees up."""
    return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=zone).astimezone(UTC)


def seed_default_limits(session: Session, *, today: date | None = None) -> int:
    """Insert the default named limits unless limits exist already; returns rows added."""
    if session.scalar(select(func.count()).select_from(PlatformLimit)):
        return 0
    since = today or date(2024, 1, 1)
    for platform, scope, action, window, limit, source in DEFAULT_LIMITS:
        session.add(
            PlatformLimit(
                name=f"{platform}.{scope}.{action}.{window}",
                platform=platform,
                scope=scope,
                action=action,
                window=window,
                limit=limit,
                source=source,
                effective_from=since,
            )
        )
    session.flush()
    return len(DEFAULT_LIMITS)


class LimitBook:
    """The named limits in force, loaded once: account overrides win over platform defaults."""

    def __init__(self, session: Session, *, on: date | None = None) -> None:
        seed_default_limits(session)
        self._rows: dict[tuple[str, str, str, str, int | None], tuple[date, int]] = {}
        stmt = select(PlatformLimit)
        if on is not None:
            stmt = stmt.where(PlatformLimit.effective_from <= on)
        for row in session.scalars(stmt):
            key = (row.platform, row.scope, row.action, row.window, row.account_id)
            if key not in self._rows or self._rows[key][0] <= row.effective_from:
                self._rows[key] = (row.effective_from, row.limit)

    def get(
        self, platform: str, scope: str, action: str, window: str, account_id: int | None = None
    ) -> int | None:
        """The limit value, or None when no limit of that name exists (then nothing binds)."""
        for acct in (account_id, None) if account_id is not None else (None,):
            hit = self._rows.get((platform, scope, action, window, acct))
            if hit is not None:
                return hit[1]
        return None

    def daily(
        self, platform: str, scope: str, action: str, account_id: int | None = None
    ) -> int | None:
        """The daily cap for an account (or for contacts, scope ``contact``)."""
        return self.get(platform, scope, action, DAY, account_id)

    def interval(self, platform: str, action: str, account_id: int | None = None) -> int:
        """The pacing interval in seconds for an account's action (0: no pacing)."""
        return self.get(platform, "account", action, INTERVAL, account_id) or 0


def _least(session: Session, a: object, b: object):  # type: ignore[no-untyped-def]
    return func.least(a, b) if is_postgres(session) else func.min(a, b)


# PostgreSQL: one fixed statement over a JSON array of asks (each an array of values), rows
# in key order (the lock order); one JSON text is much cheaper to encode than a bound array
# per column.
_RESERVE_PG = """
INSERT INTO cap_usage AS u (subject, action, day, used, cap, granted, last_at)
SELECT r->>0, r->>1, (r->>2)::date, (r->>3)::int, (r->>4)::int, (r->>3)::int,
  (r->>5)::timestamptz
FROM jsonb_array_elements(CAST(:doc AS jsonb)) AS r
ORDER BY r->>0, r->>1, r->>2
ON CONFLICT (subject, action, day) DO UPDATE SET
  granted = LEAST(EXCLUDED.granted, EXCLUDED.cap - u.used),
  used = u.used + LEAST(EXCLUDED.granted, EXCLUDED.cap - u.used),
  cap = EXCLUDED.cap,
  last_at = EXCLUDED.last_at
WHERE u.used < EXCLUDED.cap {pacing}
RETURNING u.subject, u.action, u.day, u.granted
"""
_PACING_PG = "AND (u.last_at IS NULL OR u.last_at <= :not_before)"
_RESERVE_PG_STMTS = {
    False: text(_RESERVE_PG.format(pacing="")),
    True: text(_RESERVE_PG.format(pacing=_PACING_PG)),
}


def reserve(
    session: Session,
    subject: str,
    action: str,
    *,
    cap: int,
    day: date,
    now: datetime | None = None,
    min_interval: int = 0,
) -> bool:
    """Reserve one unit under ``cap`` for the subject's local day; False means defer."""
    got = reserve_many(session, [Ask(subject, action, day, 1, cap, min_interval)], now=now)
    return got.get((subject, action, day), 0) == 1


def reserve_many(
    session: Session, asks: list[Ask], *, now: datetime | None = None
) -> dict[tuple[str, str, date], int]:
    """Reserve for many subjects at once; returns how many units each (subject, action, day) got.

    One conditional upsert per pacing interval: ``granted`` and ``used`` are computed from the
    row as it is when the row lock is held, so the grant is exact under concurrency. Keys are
    sorted, so concurrent workers lock ledger rows in the same order (no deadlocks).
    """
    now = now or utcnow()
    out: dict[tuple[str, str, date], int] = {}
    by_interval: dict[int, list[Ask]] = {}
    for ask in asks:
        if ask.cap <= 0 or ask.want <= 0:
            out[(ask.subject, ask.action, ask.day)] = 0
            continue
        by_interval.setdefault(ask.interval, []).append(ask)
    table = CapUsage.__table__
    pg = is_postgres(session)
    for interval, group in sorted(by_interval.items()):
        if pg:  # the statement sorts the keys itself
            for key, granted in _reserve_pg(session, group, interval, now):
                out[key] = granted
            for ask in group:
                out.setdefault((ask.subject, ask.action, ask.day), 0)
            continue
        group.sort(key=lambda a: (a.subject, a.action, a.day))
        rows = []
        for ask in group:
            want = min(ask.want, ask.cap, 1 if interval else ask.want)
            rows.append(
                {
                    "subject": ask.subject,
                    "action": ask.action,
                    "day": ask.day,
                    "used": want,
                    "cap": ask.cap,
                    "granted": want,
                    "last_at": _stamp(now, interval),
                }
            )
        ins = dialect_insert(session, CapUsage).values(rows)
        exc = ins.excluded
        grant = _least(session, exc.granted, exc.cap - table.c.used)
        where = table.c.used < exc.cap
        if interval:
            where = where & (
                table.c.last_at.is_(None) | (table.c.last_at <= now - timedelta(seconds=interval))
            )
        stmt = ins.on_conflict_do_update(
            index_elements=["subject", "action", "day"],
            set_={
                "granted": grant,
                "used": table.c.used + grant,
                "cap": exc.cap,
                "last_at": exc.last_at,
            },
            where=where,
        ).returning(table.c.subject, table.c.action, table.c.day, table.c.granted)
        for ask in group:
            out[(ask.subject, ask.action, ask.day)] = 0
        for row in session.execute(stmt):
            out[(row.subject, row.action, row.day)] = int(row.granted)
    return out


def _stamp(now: datetime, interval: int) -> datetime:
    # Pacing jitter: pretend the action happened a little later.
    return now + timedelta(seconds=random.uniform(0, interval * JITTER)) if interval else now


def _reserve_pg(
    session: Session, group: list[Ask], interval: int, now: datetime
) -> list[tuple[tuple[str, str, date], int]]:
    # Each ask as an array of values in the statement's order; without pacing every ask shares
    # one timestamp, and day strings repeat across subjects.
    days: dict[date, str] = {}
    now_s = str(now)
    doc = []
    for subject, action, day, want, cap, _ in group:
        d = days.get(day) or days.setdefault(day, str(day))
        want = min(want, cap, 1 if interval else want)
        t = str(_stamp(now, interval)) if interval else now_s
        doc.append((subject, action, d, want, cap, t))
    params = {"doc": json.dumps(doc), "not_before": now - timedelta(seconds=interval)}
    rows = session.execute(_RESERVE_PG_STMTS[bool(interval)], params).tuples().all()
    return [((s, a, d), int(granted)) for s, a, d, granted in rows]


def release(session: Session, subject: str, action: str, day: date, n: int = 1) -> None:
    """Give back ``n`` units reserved for an action that did not happen (never below zero)."""
    if n <= 0:
        return
    session.execute(
        update(CapUsage)
        .where(
            CapUsage.subject == subject,
            CapUsage.action == action,
            CapUsage.day == day,
            CapUsage.used >= n,
        )
        .values(used=CapUsage.used - literal(n))
    )


def usage_today(
    session: Session, *, zone: ZoneInfo, now: datetime | None = None
) -> list[dict[str, object]]:
    """Today's usage and headroom per operator account and action, from the ledger and limits."""
    now = now or utcnow()
    book = LimitBook(session)
    accounts = session.scalars(select(OperatorAccount).order_by(OperatorAccount.id)).all()
    used: dict[tuple[str, str, date], int] = {
        (r.subject, r.action, r.day): r.used
        for r in session.scalars(select(CapUsage).where(CapUsage.subject.like("account:%")))
    }
    out: list[dict[str, object]] = []
    for acct in accounts:
        tz = ZoneInfo(acct.timezone) if acct.timezone else zone
        day = local_day(now, tz)
        for action in CapAction:
            cap = book.daily(acct.platform, "account", action.value, acct.id)
            if cap is None:
                continue
            n = used.get((account_subject(acct.id), action.value, day), 0)
            out.append(
                {
                    "account_id": acct.id,
                    "handle": acct.handle,
                    "platform": acct.platform,
                    "action": action.value,
                    "day": day.isoformat(),
                    "used": n,
                    "cap": cap,
                    "headroom": max(cap - n, 0),
                    "pacing_seconds": book.interval(acct.platform, action.value, acct.id),
                }
            )
    return out


def add_account(
    session: Session,
    handle: str,
    platform: Platform,
    *,
    limits: Mapping[str, int] | None = None,
    timezone: str | None = None,
    today: date | None = None,
) -> OperatorAccount:
    """Add an operator account (or update it) with per-account limit overrides (ACTION=N/day)."""
    known = [a.value for a in CapAction]
    for action in limits or {}:
        name = action.removeprefix("pacing:")
        if name not in known:
            raise InputError(
                f"limit {action!r}: unknown action {name!r} (known: {', '.join(known)})"
            )
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "America" is a folder
            raise InputError(f"timezone {timezone!r}: not an IANA time zone name") from exc
    seed_default_limits(session)
    acct = session.scalar(
        select(OperatorAccount).where(
            OperatorAccount.platform == platform.value, OperatorAccount.handle == handle
        )
    )
    if acct is None:
        acct = OperatorAccount(platform=platform.value, handle=handle, timezone=timezone)
        session.add(acct)
        session.flush()
    elif timezone:
        acct.timezone = timezone
    since = today or utcnow().date()
    for action, value in (limits or {}).items():
        window = INTERVAL if action.startswith("pacing:") else DAY
        name = action.removeprefix("pacing:")
        existing = session.scalar(
            select(PlatformLimit).where(
                PlatformLimit.platform == platform.value,
                PlatformLimit.scope == "account",
                PlatformLimit.action == name,
                PlatformLimit.window == window,
                PlatformLimit.account_id == acct.id,
                PlatformLimit.effective_from == since,
            )
        )
        if existing is not None:
            existing.limit = value
            continue
        session.add(
            PlatformLimit(
                name=f"{platform.value}.account.{name}.{window}:{handle}",
                platform=platform.value,
                scope="account",
                action=name,
                window=window,
                limit=value,
                account_id=acct.id,
                source="per-account override",
                effective_from=since,
            )
        )
    session.flush()
    return acct
