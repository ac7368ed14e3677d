"""Leases: which items are held right now, and the sweep that returns run-out ones to the pool.

Readers never write: they treat an item whose lease ran out as available (see
:func:`held_now` and :func:`available_now`). The sweep, with its ``expired`` action and audit
entry, runs on write paths — every claim, a refused late outcome, assigning the pool — and in
``qunflow queue expire`` / :func:`expire_leases`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, and_, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from crm.core.db import is_postgres, transaction
from crm.core.vocabulary import QueueStatus
from crm.models import QueueItem, utcnow
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
    cond = lease_ran_out(now)
    if item_ids is not None:
        cond = and_(cond, QueueItem.id.in_(list(item_ids)))
    if is_postgres(session):
        # Skip rows another transaction holds: it is claiming or sweeping them already.
        ids = select(QueueItem.id).where(cond).with_for_update(skip_locked=True)
        if limit is not None:
            ids = ids.limit(limit)
        cond = QueueItem.id.in_(ids.scalar_subquery())
    rows = session.connection().execute(
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
    swept = [int(r.id) for r in rows]
    record(
        session,
        [Action(item_id=i, kind=ActionKind.EXPIRED, note="lease ran out") for i in swept],
        actor="system",
        now=now,
    )
    return swept


def expire_leases(engine: Engine, now: datetime | None = None) -> int:
    """Return every item whose lease ran out to the pool; how many returned."""
    now = now or utcnow()
    with transaction(engine, immediate=True) as session:
        return len(sweep(session, now))
