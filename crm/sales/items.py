"""One queue item as stored, with its holder's name: by id, or a contact's current item."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.core.errors import NotFound
from crm.core.vocabulary import QueueStatus
from crm.models import QueueItem, User


@dataclass(frozen=True)
class ItemView:
    """A queue item's state (the stored status: a run-out lease still shows its holder)."""

    item_id: int
    contact_id: int
    status: QueueStatus
    assignee_id: int | None
    assignee: str | None
    lease_expires_at: datetime | None
    sla_due_at: datetime | None
    snoozed_until: datetime | None
    priority: int
    outcome_reason: str | None
    closed_at: datetime | None
    # The catalog key of a reason the system wrote (crm.core.queue_notes); None: typed.
    outcome_key: str | None = None


def _view(item: QueueItem, username: str | None) -> ItemView:
    return ItemView(
        item_id=item.id,
        contact_id=item.contact_id,
        status=QueueStatus(item.status),
        assignee_id=item.assignee_id,
        assignee=username,
        lease_expires_at=item.lease_expires_at,
        sla_due_at=item.sla_due_at,
        snoozed_until=item.snoozed_until,
        priority=item.priority,
        outcome_reason=item.outcome_reason,
        closed_at=item.closed_at,
        outcome_key=item.outcome_key,
    )


def item_for_contact(session: Session, contact_id: int) -> ItemView | None:
    """The open queue item of a contact (or its latest closed one), for the prospect page."""
    row = session.execute(
        select(QueueItem, User.username)
        .outerjoin(User, User.id == QueueItem.assignee_id)
        .where(QueueItem.contact_id == contact_id)
        .order_by(QueueItem.open_key.is_(None), QueueItem.id.desc())
        .limit(1)
    ).first()
    return None if row is None else _view(row[0], row[1])


def get_item(session: Session, item_id: int) -> ItemView:
    """One queue item with its holder; NotFound otherwise."""
    row = session.execute(
        select(QueueItem, User.username)
        .outerjoin(User, User.id == QueueItem.assignee_id)
        .where(QueueItem.id == item_id)
    ).first()
    if row is None:
        raise NotFound("error.sales.item_missing", item_id=item_id)
    return _view(row[0], row[1])
