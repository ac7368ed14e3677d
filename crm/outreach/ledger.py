"""The caps ledger: reservations and releases on ``cap_usage`` by one conditional upsert.

A reservation is keyed by (subject, action, local day): ``used`` only grows while it is below
the cap, and the grant is computed from the row as it is under its row lock, so concurrent
workers can never exceed a cap. What does not fit is deferred by the caller, never dropped;
a reservation whose action did not happen is released.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Connection, func, literal, text, update
from sqlalchemy.orm import Session

from crm.core.db import dialect_insert, is_postgres
from crm.models import CapUsage, utcnow

JITTER = 0.25  # pacing intervals stretch by up to this fraction, so sends do not look robotic

# A ledger row's key: (subject, action, local day).
LedgerKey = tuple[str, str, date]


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


def _least(session: Session | Connection, a: object, b: object):  # type: ignore[no-untyped-def]
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
    session: Session | Connection,
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
    session: Session | Connection, asks: list[Ask], *, now: datetime | None = None
) -> dict[LedgerKey, int]:
    """Reserve for many subjects at once; returns how many units each (subject, action, day) got.

    One conditional upsert per pacing interval: ``granted`` and ``used`` are computed from the
    row as it is when the row lock is held, so the grant is exact under concurrency. Keys are
    sorted, so concurrent workers lock ledger rows in the same order (no deadlocks).
    """
    now = now or utcnow()
    # Every key starts at 0 granted; the statements' answers overwrite what they granted.
    out: dict[LedgerKey, int] = {}
    by_interval: dict[int, list[Ask]] = {}
    for ask in asks:
        out[(ask.subject, ask.action, ask.day)] = 0
        if ask.cap > 0 and ask.want > 0:
            group = by_interval.get(ask.interval)
            if group is None:
                by_interval[ask.interval] = [ask]
            else:
                group.append(ask)
    pg = is_postgres(session)
    for interval, group in sorted(by_interval.items()):
        # PostgreSQL: the statement sorts the keys itself.
        if pg:
            _reserve_pg(session, group, interval, now, out)
        else:
            out.update(_reserve(session, group, interval, now))
    return out


def _reserve(
    session: Session | Connection, group: list[Ask], interval: int, now: datetime
) -> list[tuple[LedgerKey, int]]:
    # The dialect-neutral statement (SQLite): rows in key order, the lock order.
    group = sorted(group, key=lambda a: (a.subject, a.action, a.day))
    table = CapUsage.__table__
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
    return [((r.subject, r.action, r.day), int(r.granted)) for r in session.execute(stmt)]


def _stamp(now: datetime, interval: int) -> datetime:
    # Pacing jitter: pretend the action happened a little later.
    return now + timedelta(seconds=random.uniform(0, interval * JITTER)) if interval else now


def _reserve_pg(
    session: Session | Connection,
    group: list[Ask],
    interval: int,
    now: datetime,
    out: dict[LedgerKey, int],
) -> None:
    # Each ask as an array of values in the statement's order; without pacing every ask shares
    # one timestamp, and day strings repeat across subjects. Grants are written into ``out``.
    days: dict[date, str] = {}
    now_s = str(now)
    doc = []
    for subject, action, day, want, cap, _ in group:
        d = days.get(day) or days.setdefault(day, str(day))
        if want > cap:
            want = cap
        if interval:
            want = 1
        doc.append(
            (subject, action, d, want, cap, str(_stamp(now, interval)) if interval else now_s)
        )
    params = {"doc": json.dumps(doc), "not_before": now - timedelta(seconds=interval)}
    rows = session.execute(_RESERVE_PG_STMTS[bool(interval)], params).tuples().all()
    for s, a, d, granted in rows:
        out[(s, a, d)] = granted


def release(
    session: Session | Connection, subject: str, action: str, day: date, n: int = 1
) -> None:
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
