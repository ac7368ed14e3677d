"""Claiming prospects with a lease, and giving them back.

Each claim first locks the person (so two tabs cannot both slip under a claim limit) and
sweeps run-out leases; it appends a ``claim`` action and an audit entry. On PostgreSQL the
next-item claim does sweep, claim and both rows in one statement
(crm.sales.claim_statement) with ``FOR UPDATE SKIP LOCKED``; on SQLite claims run inside
``BEGIN IMMEDIATE``, statement by statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Update, bindparam, select, update
from sqlalchemy.orm import Session

from crm.core.db import is_postgres, prepared_statements, transaction
from crm.core.errors import Conflict, NotFound, Problem
from crm.core.vocabulary import QueueStatus
from crm.models import QueueItem, User, UTCDateTime, utcnow
from crm.sales.claim_limits import check_may_claim
from crm.sales.claim_statement import CLAIM_NEXT_PG_STMT
from crm.sales.claim_usage import Claimer, lock_claimer
from crm.sales.held_items import acting_user, held_item, sweeping_late_actions
from crm.sales.history import Action, record
from crm.sales.leases import available_now, sweep
from crm.sales.vocabulary import DEFAULT_LEASE, HELD, ActionKind

# How many run-out leases one claim returns to the pool on its way (keeps claims short).
SWEEP_PER_CLAIM = 100


@dataclass(frozen=True)
class Claim:
    """A prospect someone just claimed, and until when they hold it."""

    item_id: int
    contact_id: int
    assignee: str
    lease_expires_at: datetime
    sla_due_at: datetime | None


def pool_order() -> tuple[Any, ...]:
    """The claim order: due first (no SLA last), then priority, then oldest."""
    return (
        QueueItem.sla_due_at.asc().nulls_last(),
        QueueItem.priority.desc(),
        QueueItem.created_at,
        QueueItem.id,
    )


def claim_values(user_id: int, now: datetime, lease: timedelta) -> dict[str, Any]:
    """The columns a claim (or an assignment from the pool) sets."""
    return {
        "status": QueueStatus.CLAIMED,
        "assignee_id": user_id,
        "lease_expires_at": now + lease,
        "snoozed_until": None,
        "updated_at": now,
    }


_RETURNING = (QueueItem.id, QueueItem.contact_id, QueueItem.lease_expires_at, QueueItem.sla_due_at)


def _claim(row: Any, claimer: Claimer) -> Claim:
    return Claim(
        item_id=int(row.id),
        contact_id=int(row.contact_id),
        assignee=claimer.username,
        lease_expires_at=row.lease_expires_at,
        sla_due_at=row.sla_due_at,
    )


def _claimed(session: Session, row: Any, claimer: Claimer, now: datetime, how: str) -> Claim:
    record(
        session,
        [
            Action(
                item_id=int(row.id),
                kind=ActionKind.CLAIM,
                user_id=claimer.id,
                details={"contact_id": int(row.contact_id), "how": how},
            )
        ],
        actor=claimer.username,
        now=now,
    )
    return _claim(row, claimer)


def _lock_and_check(session: Session, user_id: int, now: datetime, zone: ZoneInfo) -> Claimer:
    claimer = lock_claimer(session, user_id, now, zone)
    check_may_claim(claimer.username, claimer.limits)
    return claimer


def claim_next(
    engine: Engine,
    user_id: int,
    now: datetime | None = None,
    *,
    zone: ZoneInfo,
    lease: timedelta = DEFAULT_LEASE,
) -> Claim | None:
    """Claim the next pool item (SLA due first, then priority, then oldest); None if empty."""
    now = now or utcnow()
    with transaction(engine, immediate=True) as session:
        if is_postgres(session):
            # Two fixed statements run for every claim: prepared on this pooled connection,
            # they are parsed and planned once per connection instead of once per claim.
            with prepared_statements(session.connection()) as conn:
                claimer = _lock_and_check(session, user_id, now, zone)
                # Sweep, claim, action and audit rows: one round trip.
                params = {"uid": claimer.id, "actor": claimer.username, "now": now}
                params.update(until=now + lease, sweep=SWEEP_PER_CLAIM)
                row = conn.execute(CLAIM_NEXT_PG_STMT, params).first()
            return None if row is None else _claim(row, claimer)
        claimer = _lock_and_check(session, user_id, now, zone)
        params = {"uid": claimer.id, "now": now, "until": now + lease}
        sweep(session, now, limit=SWEEP_PER_CLAIM)
        row = session.connection().execute(_claim_next_statement(), params).first()
        if row is None:
            return None
        return _claimed(session, row, claimer, now, "next")


@lru_cache(maxsize=1)
def _claim_next_statement() -> Update:
    """The claim of the next pool item on SQLite (inside BEGIN IMMEDIATE), built once (every
    claim runs it; building it cost more client CPU than running it), with ``uid``, ``now``
    and ``until`` bound."""
    pick = (
        select(QueueItem.id)
        .where(QueueItem.status == QueueStatus.POOL)
        .order_by(*pool_order())
        .limit(1)
    )
    now = bindparam("now", type_=UTCDateTime())
    return (
        update(QueueItem)
        .where(QueueItem.id == pick.scalar_subquery())
        .values(  # the columns of claim_values, bound
            status=QueueStatus.CLAIMED,
            assignee_id=bindparam("uid"),
            lease_expires_at=bindparam("until", type_=UTCDateTime()),
            snoozed_until=None,
            updated_at=now,
        )
        .returning(*_RETURNING)
        .execution_options(synchronize_session=False)
    )


def claim_item(
    engine: Engine,
    item_id: int,
    user_id: int,
    now: datetime | None = None,
    *,
    zone: ZoneInfo,
    lease: timedelta = DEFAULT_LEASE,
) -> Claim:
    """Claim one named item; Conflict when someone else holds it (or it is closed)."""
    now = now or utcnow()
    with transaction(engine, immediate=True) as session:
        claimer = _lock_and_check(session, user_id, now, zone)
        # A run-out lease on this item is recorded as expired before the new claim.
        sweep(session, now, item_ids=[item_id])
        # On PostgreSQL a concurrent claimer waits for the row lock, then re-checks
        # availability against the committed row and finds nothing: exactly one wins.
        row = (
            session.connection()
            .execute(
                update(QueueItem)
                .where(QueueItem.id == item_id, available_now(now))
                .values(**claim_values(claimer.id, now, lease))
                .returning(*_RETURNING)
                .execution_options(synchronize_session=False)
            )
            .first()
        )
        if row is not None:
            return _claimed(session, row, claimer, now, "item")
        _refuse_claim(session, item_id, claimer)


def _refuse_claim(session: Session, item_id: int, claimer: Claimer) -> NoReturn:
    item = session.get(QueueItem, item_id)
    if item is None:
        raise NotFound("error.sales.item_missing", item_id=item_id)
    if item.status in HELD:
        if item.assignee_id == claimer.id:
            raise Conflict("error.sales.item_yours_already", item_id=item_id)
        holder = session.get(User, item.assignee_id) if item.assignee_id else None
        if holder is None:
            raise Conflict("error.sales.item_claimed_other", item_id=item_id)
        raise Conflict("error.sales.item_claimed", item_id=item_id, username=holder.username)
    raise Conflict(
        "error.sales.item_closed", item_id=item_id, status=Problem(f"queue.{item.status}")
    )


def release(engine: Engine, item_id: int, user_id: int, now: datetime | None = None) -> None:
    """Give a held item back to the pool (its holder, or a manager)."""
    now = now or utcnow()
    with sweeping_late_actions(engine, now), transaction(engine, immediate=True) as session:
        actor = acting_user(session, user_id)
        item = held_item(session, item_id, actor, now)
        previous = item.assignee_id
        item.status = QueueStatus.POOL
        item.assignee_id = None
        item.lease_expires_at = None
        item.snoozed_until = None
        item.updated_at = now
        record(
            session,
            [
                Action(
                    item_id=item.id,
                    kind=ActionKind.RELEASE,
                    user_id=actor.id,
                    details={"from_user_id": previous},
                )
            ],
            actor=actor.username,
            now=now,
        )
