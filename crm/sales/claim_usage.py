"""How much of their claim limits people use: holdings, today's claims, the person lock.

Holding counts items under a live lease (see :func:`crm.sales.leases.held_now`), so the
limits are right whether or not the sweep has run. Today's claims count the person's
``claim`` and ``assigned`` actions since local midnight (``assigned`` rows carry the
receiving person as ``user_id``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BindParameter, Engine, Select, bindparam, func, select
from sqlalchemy.orm import Session

from crm.core.audit import audit
from crm.core.db import is_postgres, transaction
from crm.core.errors import Forbidden, NotFound
from crm.core.vocabulary import UserRole
from crm.models import QueueAction, QueueItem, User, UTCDateTime
from crm.sales.claim_limits import ClaimLimits, check_limit_values, local_day_start
from crm.sales.leases import held_now
from crm.sales.vocabulary import COUNTED_CLAIMS, HELD


@dataclass(frozen=True)
class Claimer:
    """The person claiming, locked for this transaction, with their limits and usage."""

    id: int
    username: str
    limits: ClaimLimits


@dataclass(frozen=True)
class MemberLimits:
    """One staff member's claim limits and today's usage, for the team page."""

    id: int
    username: str
    role: UserRole
    active: bool
    limits: ClaimLimits


@dataclass(frozen=True)
class Headroom:
    """An active salesperson who may receive ``room`` more items now; ``holding`` held."""

    user_id: int
    username: str
    room: int
    holding: int


@dataclass(frozen=True)
class LimitsSet:
    """A person's claim limits after a change."""

    username: str
    daily_claim_limit: int
    holding_limit: int


def _usage(now: datetime, zone: ZoneInfo) -> tuple[Any, Any]:
    """Per person: items held under a live lease, and claims plus assignments today."""
    holding = (
        select(QueueItem.assignee_id.label("uid"), func.count().label("n"))
        .where(held_now(now))
        .group_by(QueueItem.assignee_id)
        .subquery()
    )
    today = (
        select(QueueAction.user_id.label("uid"), func.count().label("n"))
        .where(
            QueueAction.action.in_(COUNTED_CLAIMS),
            QueueAction.at >= local_day_start(now, zone),
        )
        .group_by(QueueAction.user_id)
        .subquery()
    )
    return holding, today


@lru_cache(maxsize=4)
def _person_statement(lock: bool) -> Select[Any]:
    """One person with their holding and today's claims; built once, run with parameters.

    Every claim runs it: building the statement afresh cost more client CPU than the
    database spent answering it.
    """
    uid: BindParameter[int] = bindparam("uid")
    now = bindparam("now", type_=UTCDateTime())
    held = (
        select(func.count())
        .select_from(QueueItem)
        .where(
            QueueItem.assignee_id == uid,
            QueueItem.status.in_(HELD),
            QueueItem.lease_expires_at >= now,
        )
        .scalar_subquery()
    )
    today = (
        select(func.count())
        .select_from(QueueAction)
        .where(
            QueueAction.user_id == uid,
            QueueAction.action.in_(COUNTED_CLAIMS),
            QueueAction.at >= bindparam("day_start", type_=UTCDateTime()),
        )
        .scalar_subquery()
    )
    stmt = select(
        User.id,
        User.username,
        User.active,
        User.holding_cap,
        User.daily_claim_cap,
        held.label("holding"),
        today.label("claimed"),
    ).where(User.id == uid)
    return stmt.with_for_update(of=User) if lock else stmt


def _person(session: Session, user_id: int, now: datetime, zone: ZoneInfo, *, lock: bool) -> Any:
    stmt = _person_statement(lock and is_postgres(session))
    params = {"uid": user_id, "now": now, "day_start": local_day_start(now, zone)}
    row = session.connection().execute(stmt, params).first()
    if row is None:
        raise NotFound("error.sales.user_id_missing", user_id=user_id)
    return row


def _limits(row: Any) -> ClaimLimits:
    return ClaimLimits(
        daily_claim_limit=int(row.daily_claim_cap),
        claimed_today=int(row.claimed),
        holding_limit=int(row.holding_cap),
        holding=int(row.holding),
    )


def lock_claimer(session: Session, user_id: int, now: datetime, zone: ZoneInfo) -> Claimer:
    """Lock the person (one claim at a time per person) and read their usage in one query."""
    row = _person(session, user_id, now, zone, lock=True)
    if not row.active:
        raise Forbidden("error.sales.user_disabled", username=str(row.username))
    return Claimer(id=int(row.id), username=str(row.username), limits=_limits(row))


def claim_limit_status(
    session: Session, user_id: int, now: datetime, *, zone: ZoneInfo
) -> ClaimLimits:
    """A person's claim limits with today's claims and current holding."""
    return _limits(_person(session, user_id, now, zone, lock=False))


def team_claim_limits(session: Session, now: datetime, *, zone: ZoneInfo) -> list[MemberLimits]:
    """Every staff member's claim limits with today's usage, by name."""
    holding, today = _usage(now, zone)
    stmt = (
        select(
            User.id,
            User.username,
            User.role,
            User.active,
            User.daily_claim_cap,
            User.holding_cap,
            func.coalesce(today.c.n, 0).label("claimed"),
            func.coalesce(holding.c.n, 0).label("holding"),
        )
        .outerjoin(holding, holding.c.uid == User.id)
        .outerjoin(today, today.c.uid == User.id)
        .order_by(User.username)
    )
    return [
        MemberLimits(
            id=int(r.id),
            username=str(r.username),
            role=UserRole(r.role),
            active=bool(r.active),
            limits=_limits(r),
        )
        for r in session.execute(stmt)
    ]


def sales_headroom(session: Session, now: datetime, zone: ZoneInfo) -> list[Headroom]:
    """Active salespeople with room for more items, by id; locks them on PostgreSQL."""
    holding, today = _usage(now, zone)
    stmt = (
        select(
            User.id,
            User.username,
            User.daily_claim_cap,
            User.holding_cap,
            func.coalesce(today.c.n, 0).label("claimed"),
            func.coalesce(holding.c.n, 0).label("holding"),
        )
        .outerjoin(holding, holding.c.uid == User.id)
        .outerjoin(today, today.c.uid == User.id)
        .where(User.active.is_(True), User.role == UserRole.SALES)
        .order_by(User.id)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(of=User)
    out = []
    for r in session.execute(stmt):
        limits = _limits(r)
        if limits.room > 0:
            out.append(Headroom(int(r.id), str(r.username), limits.room, limits.holding))
    return out


def set_claim_limits(
    engine: Engine,
    username: str,
    *,
    claims: int | None = None,
    holding: int | None = None,
    actor: str = "system",
) -> LimitsSet:
    """Set a person's daily claim limit and holding limit (0 to 10000 each)."""
    check_limit_values(claims=claims, holding=holding)
    with transaction(engine) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFound("error.sales.user_missing", username=username)
        before = {"claims": user.daily_claim_cap, "holding": user.holding_cap}
        if claims is not None:
            user.daily_claim_cap = claims
        if holding is not None:
            user.holding_cap = holding
        after = {"claims": user.daily_claim_cap, "holding": user.holding_cap}
        audit(
            session,
            actor,
            "user.caps",
            object_type="user",
            object_id=user.id,
            details={"before": before, "after": after},
        )
        return LimitsSet(user.username, after["claims"], after["holding"])


def holding_count(session: Session, user_id: int, now: datetime) -> int:
    """How many items the person holds under a live lease."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(QueueItem)
            .where(QueueItem.assignee_id == user_id, held_now(now))
        )
        or 0
    )
