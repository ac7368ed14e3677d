"""Leases: which items are held right now, and the sweep that returns run-out ones to the pool.

Readers never write: they treat an item whose lease ran out as available (see
:func:`held_now` and :func:`available_now`). The sweep, with its ``expired`` action and audit
entry, runs on write paths — every claim, a refused late outcome, assigning the pool — and in
``qunflow queue expire`` / :func:`expire_leases`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Engine, Update, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from crm.core.db import is_postgres, transaction
from crm.core.queue_notes import NoteKey, system_note
from crm.core.vocabulary import QueueStatus
from crm.models import QueueItem, UTCDateTime, utcnow
from crm.sales.history import Action, record
from crm.sales.vocabulary import HELD, ActionKind


def held_now(now: datetime) -> ColumnElement[bool]:
    """Held by its assignee: a held status under a lease that has not run out."""
    return and_(QueueItem.status.in_(HELD), QueueItem.lease_expires_at >= now)


def lease_ran_out(now: datetime) -> ColumnElement[bool]:
    """In a held status, but its lease ran out (the sweep has not returned it yet)."""
    return and_(QueueItem.status.in_(HELD), QueueItem.lease_expires_at < now)


def available_now(now: datetime) -> ColumnElement[bool]:
    """Free to claim: in the pool, or held under a lease that ran out."""
    return or_(QueueItem.status == QueueStatus.POOL, lease_ran_out(now))


def sweep(
    session: Session,
    now: datetime,
    *,
    limit: int | None = None,
    item_ids: Sequence[int] | None = None,
) -> list[int]:
    """Return run-out items (all, at most ``limit``, or only ``item_ids``) to the pool."""
    if item_ids is None:
        stmt = _sweep_statement(limit, is_postgres(session))
    else:
        stmt = _sweep_statement(limit, is_postgres(session), tuple(item_ids))
    rows = session.connection().execute(stmt, {"now": now})
    swept = [int(r.id) for r in rows]
    ran_out = system_note(NoteKey.LEASE_RAN_OUT)
    record(
        session,
        [Action(item_id=i, kind=ActionKind.EXPIRED, note=ran_out) for i in swept],
        actor="system",
        now=now,
    )
    return swept


def _sweep_statement(
    limit: int | None, pg: bool, item_ids: tuple[int, ...] | None = None
) -> Update:
    """The sweep's UPDATE, run with ``now`` bound. Without item ids it is built once (every
    claim sweeps, and building it cost more client CPU than running it)."""
    if item_ids is None:
        return _cached_sweep(limit, pg)
    return _build_sweep(limit, pg, item_ids)


@lru_cache(maxsize=8)
def _cached_sweep(limit: int | None, pg: bool) -> Update:
    return _build_sweep(limit, pg, None)


def _build_sweep(limit: int | None, pg: bool, item_ids: tuple[int, ...] | None) -> Update:
    now = bindparam("now", type_=UTCDateTime())
    cond = and_(QueueItem.status.in_(HELD), QueueItem.lease_expires_at < now)
    if item_ids is not None:
        cond = and_(cond, QueueItem.id.in_(list(item_ids)))
    if pg:
        # Skip rows another transaction holds: it is claiming or sweeping them already.
        ids = select(QueueItem.id).where(cond).with_for_update(skip_locked=True)
        if limit is not None:
            ids = ids.limit(limit)
        cond = QueueItem.id.in_(ids.scalar_subquery())
    return (
        update(QueueItem)
        .where(cond)
        .values(
            status=QueueStatus.POOL,
            assignee_id=None,
            lease_expires_at=None,
            snoozed_until=None,
            updated_at=now,
        )
        .returning(QueueItem.id)
        .execution_options(synchronize_session=False)
    )


def expire_leases(engine: Engine, now: datetime | None = None) -> int:
    """Return every item whose lease ran out to the pool; how many returned."""
    now = now or utcnow()
    with transaction(engine, immediate=True) as session:
        return len(sweep(session, now))
