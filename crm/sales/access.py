"""Who may act on which prospects: a salesperson on those they hold, managers on any.

The web pages (notes, tags, campaign triggers) and any other entry point acting for a
staff member ask here; the rule itself is :func:`crm.sales.rules.check_may_act_on`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from crm.core.db import transaction
from crm.models import QueueItem, utcnow
from crm.sales.leases import held_now
from crm.sales.rules import check_campaign_batch, check_may_act_on
from crm.sales.users import StaffUser


def held_contact_ids(
    session: Session, user_id: int, contact_ids: Sequence[int], now: datetime
) -> set[int]:
    """Those of ``contact_ids`` whose open queue item the user holds (claimed or assigned)."""
    if not contact_ids:
        return set()
    rows = session.scalars(
        select(QueueItem.contact_id).where(
            QueueItem.contact_id.in_(list(contact_ids)),
            QueueItem.assignee_id == user_id,
            held_now(now),
        )
    )
    return {int(c) for c in rows}


def holds_contact(session: Session, contact_id: int, user_id: int, now: datetime) -> bool:
    """True when the user holds (claimed or was assigned) the contact's open queue item."""
    return contact_id in held_contact_ids(session, user_id, [contact_id], now)


def require_may_act_on(
    session: Session, user: StaffUser, contact_ids: Sequence[int], now: datetime
) -> None:
    """Forbidden unless ``user`` may act on every one of ``contact_ids``."""
    if user.is_manager:
        return
    check_may_act_on(False, contact_ids, held_contact_ids(session, user.id, contact_ids, now))


def check_may_act_on_contacts(
    engine: Engine, user: StaffUser, contact_ids: Sequence[int], now: datetime | None = None
) -> None:
    """:func:`require_may_act_on` in a read transaction of its own."""
    if user.is_manager:
        return
    with transaction(engine) as session:
        require_may_act_on(session, user, contact_ids, now or utcnow())


def check_campaign_selection(
    engine: Engine, user: StaffUser, contact_ids: Sequence[int], now: datetime | None = None
) -> None:
    """A workspace campaign trigger: 1 to 500 prospects, each one the user may act on."""
    check_campaign_batch(contact_ids)
    check_may_act_on_contacts(engine, user, contact_ids, now)
