"""Operator accounts and the limits stored for them: set-up with per-account overrides, the
default limits seeded on first use, the limits in force, and today's usage and headroom.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from crm.core.db import transaction
from crm.core.errors import InputError
from crm.core.vocabulary import CapAction, Platform
from crm.models import CapUsage, OperatorAccount, PlatformLimit, utcnow
from crm.outreach.ledger import account_subject
from crm.outreach.limit_file import default_limits
from crm.outreach.limits import LimitBook, LimitKind, Scope, Window, local_day

OVERRIDE_SOURCE = "per-account override"  # the source an override is stored with
PACING = "pacing:"  # an override ``pacing:ACTION=SECONDS`` sets the action's pacing interval


@dataclass(frozen=True)
class SendingAccount:
    """What dispatch needs of an operator account: its handle, platform and local day's zone."""

    id: int
    handle: str
    platform: str
    zone: ZoneInfo


@dataclass(frozen=True)
class AccountRecord:
    """An operator account as set up."""

    id: int
    handle: str
    platform: str
    timezone: str | None


@dataclass(frozen=True)
class AccountUsage:
    """One account's usage and headroom today for one capped action."""

    account_id: int
    handle: str
    platform: str
    action: CapAction
    day: date  # the account's local day
    used: int
    cap: int
    headroom: int
    pacing_seconds: int


def seed_default_limits(session: Session) -> int:
    """Insert the registry's default limits not stored yet (by name); returns rows added.

    A default added to the registry later reaches existing databases; a stored default keeps
    its value (an operator may have changed it).
    """
    defaults = default_limits()
    stored = set(
        session.scalars(select(PlatformLimit.name).where(PlatformLimit.account_id.is_(None)))
    )
    missing = [lim for lim in defaults if lim.name not in stored]
    for lim in missing:
        session.add(
            PlatformLimit(
                name=lim.name,
                platform=lim.platform,
                scope=lim.scope.value,
                action=lim.action,
                window=lim.window.value,
                limit=lim.limit,
                source=lim.source,
                kind=lim.kind.value,
                effective_from=lim.since,
            )
        )
    session.flush()
    return len(missing)


@dataclass(frozen=True)
class LimitView:
    """A stored limit as operators read it: value, source, since when, kind, whose."""

    name: str
    platform: str
    scope: str
    action: str
    window: str
    value: int
    source: str
    since: date
    kind: str
    account: str | None  # the overriding account's handle; None for a platform default


def list_limits(session: Session) -> list[LimitView]:
    """Every stored limit, defaults first (seeded on first use), then per-account overrides."""
    seed_default_limits(session)
    p, a = PlatformLimit, OperatorAccount
    order = (p.account_id.is_not(None), a.handle, p.platform, p.scope, p.action, p.window)
    stmt = select(p, a.handle).outerjoin(a, a.id == p.account_id)
    rows = session.execute(stmt.order_by(*order, p.effective_from)).all()
    return [
        LimitView(
            row.name,
            row.platform,
            row.scope,
            row.action,
            row.window,
            row.limit,
            row.source,
            row.effective_from,
            row.kind,
            handle,
        )
        for row, handle in rows
    ]


def load_limits(session: Session, *, on: date | None = None) -> LimitBook:
    """The limits in force (seeding the defaults on first use), as of ``on`` if given."""
    seed_default_limits(session)
    p = PlatformLimit
    stmt = select(p.platform, p.scope, p.action, p.window, p.account_id, p.effective_from, p.limit)
    if on is not None:
        stmt = stmt.where(p.effective_from <= on)
    return LimitBook(session.execute(stmt).tuples())


def sending_accounts(session: Session, zone: ZoneInfo) -> dict[int, SendingAccount]:
    """Every operator account by id; accounts without a zone of their own count in ``zone``."""
    out: dict[int, SendingAccount] = {}
    for a in session.scalars(select(OperatorAccount)):
        own = ZoneInfo(a.timezone) if a.timezone else zone
        out[a.id] = SendingAccount(a.id, a.handle, a.platform, own)
    return out


def usage_today(
    session: Session, *, zone: ZoneInfo, now: datetime | None = None
) -> list[AccountUsage]:
    """Today's usage and headroom per operator account and action, from the ledger and limits."""
    now = now or utcnow()
    book = load_limits(session)
    accounts = session.scalars(select(OperatorAccount).order_by(OperatorAccount.id)).all()
    used: dict[tuple[str, str, date], int] = {
        (r.subject, r.action, r.day): r.used
        for r in session.scalars(select(CapUsage).where(CapUsage.subject.like("account:%")))
    }
    out: list[AccountUsage] = []
    for acct in accounts:
        day = local_day(now, ZoneInfo(acct.timezone) if acct.timezone else zone)
        for action in CapAction:
            cap = book.daily(acct.platform, Scope.ACCOUNT, action.value, acct.id)
            if cap is None:
                continue
            n = used.get((account_subject(acct.id), action.value, day), 0)
            out.append(
                AccountUsage(
                    account_id=acct.id,
                    handle=acct.handle,
                    platform=acct.platform,
                    action=action,
                    day=day,
                    used=n,
                    cap=cap,
                    headroom=max(cap - n, 0),
                    pacing_seconds=book.interval(acct.platform, action.value, acct.id),
                )
            )
    return out


def add_account(
    engine: Engine,
    handle: str,
    platform: Platform,
    *,
    limits: Mapping[str, int] | None = None,
    timezone: str | None = None,
    today: date | None = None,
) -> AccountRecord:
    """Add an operator account (or update it) with per-account limit overrides (ACTION=N/day)."""
    limits = dict(limits or {})
    _check_overrides(limits, timezone)
    with transaction(engine) as session:
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
        for action, value in limits.items():
            _set_override(session, acct, action, value, since)
        session.flush()
        return AccountRecord(acct.id, acct.handle, acct.platform, acct.timezone)


def _override_key(item: str) -> tuple[str, Window]:
    # ACTION (a daily cap), pacing:ACTION (seconds between two), ACTION.WINDOW (any window).
    if item.startswith(PACING):
        return item.removeprefix(PACING), Window.INTERVAL
    action, dot, window = item.rpartition(".")
    if dot and window in {w.value for w in Window}:
        return action, Window(window)
    return item, Window.DAY


def _check_overrides(limits: Mapping[str, int], timezone: str | None) -> None:
    # A misspelt action or zone is refused, not stored as a limit nothing ever checks.
    known = [a.value for a in CapAction]
    known += sorted({d.action for d in default_limits() if d.scope == Scope.ACCOUNT} - set(known))
    for action in limits:
        name, _ = _override_key(action)
        if name not in known:
            raise InputError(
                "error.outreach.limit_action", action=action, name=name, known=", ".join(known)
            )
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "America" is a folder
            raise InputError("error.outreach.timezone_unknown", timezone=timezone) from exc


def _set_override(
    session: Session, acct: OperatorAccount, action: str, value: int, since: date
) -> None:
    # One override per (account, action, window, effective day): setting it again that day
    # changes its value; a later day adds a row, so the history of limits is kept.
    name, window = _override_key(action)
    existing = session.scalar(
        select(PlatformLimit).where(
            PlatformLimit.platform == acct.platform,
            PlatformLimit.scope == Scope.ACCOUNT.value,
            PlatformLimit.action == name,
            PlatformLimit.window == window.value,
            PlatformLimit.account_id == acct.id,
            PlatformLimit.effective_from == since,
        )
    )
    if existing is not None:
        existing.limit = value
        return
    session.add(
        PlatformLimit(
            name=f"{acct.platform}.account.{name}.{window}:{acct.handle}",
            platform=acct.platform,
            scope=Scope.ACCOUNT.value,
            action=name,
            window=window.value,
            limit=value,
            account_id=acct.id,
            source=OVERRIDE_SOURCE,
            kind=LimitKind.OVERRIDE.value,
            effective_from=since,
        )
    )
