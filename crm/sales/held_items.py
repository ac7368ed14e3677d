"""Acting on a held item: who may (its holder, or a manager), the row lock, late actions.

A late action — the lease ran out before the holder recorded it — is refused with
:class:`LeaseRanOut`; :func:`sweeping_late_actions` then returns the item to the pool in its
own transaction, so the refusal's "it went back to the pool" is true in the database too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from crm.core.db import is_postgres, transaction
from crm.core.errors import Conflict, Forbidden, NotFound, Problem
from crm.core.vocabulary import UserRole
from crm.models import QueueItem, User
from crm.sales.leases import sweep
from crm.sales.vocabulary import HELD

MANAGERS = (UserRole.MANAGER, UserRole.ADMIN)


class LeaseRanOut(Conflict):
    """The item's lease ran out before this action; it belongs to the pool now."""

    def __init__(self, item_id: int, expired_at: datetime) -> None:
        super().__init__(
            "error.sales.lease_ran_out", item_id=item_id, expired_at=f"{expired_at:%Y-%m-%d %H:%M}"
        )

    @property
    def item_id(self) -> int:
        """The item whose lease ran out (a parameter, so it survives pickling)."""
        item_id = self.params["item_id"]
        assert isinstance(item_id, int)
        return item_id


def acting_user(session: Session, user_id: int) -> User:
    """The active user who acts; NotFound or Forbidden (disabled) otherwise."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("error.sales.user_id_missing", user_id=user_id)
    if not user.active:
        raise Forbidden("error.sales.user_disabled", username=user.username)
    return user


def locked_item(session: Session, item_id: int) -> QueueItem:
    """The queue item, row-locked on PostgreSQL; NotFound otherwise."""
    stmt = select(QueueItem).where(QueueItem.id == item_id)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    item = session.scalar(stmt)
    if item is None:
        raise NotFound("error.sales.item_missing", item_id=item_id)
    return item


def held_item(session: Session, item_id: int, actor: User, now: datetime) -> QueueItem:
    """The item, locked, if ``actor`` may act on it; explains why not otherwise."""
    item = locked_item(session, item_id)
    if item.status not in HELD:
        raise Conflict(
            "error.sales.item_not_held", item_id=item_id, status=Problem(f"queue.{item.status}")
        )
    if item.assignee_id != actor.id and actor.role not in MANAGERS:
        raise Forbidden("error.sales.item_not_yours", item_id=item_id)
    if item.lease_expires_at is not None and item.lease_expires_at < now:
        raise LeaseRanOut(item_id, item.lease_expires_at)
    return item


@contextmanager
def sweeping_late_actions(engine: Engine, now: datetime) -> Iterator[None]:
    """Around a held-item transaction: on :class:`LeaseRanOut`, sweep that item, re-raise."""
    try:
        yield
    except LeaseRanOut as exc:
        with transaction(engine, immediate=True) as session:
            sweep(session, now, item_ids=[exc.item_id])
        raise
