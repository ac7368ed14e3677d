"""The funnel at a glance: what the demo and the daily run print after each pass."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.contacts.attribution import first_touches
from crm.core.vocabulary import ContactStatus
from crm.intake.quarantine import open_count
from crm.models import (
    Contact,
    OutboxMessage,
    QueueItem,
    RawRecord,
    SourceInstance,
    Touch,
)


def funnel_summary(session: Session) -> dict[str, Any]:
    """Contacts by first-touch source and by tier, merges, quarantine and follow-up counts."""
    active = Contact.status == ContactStatus.ACTIVE.value
    contacts = session.scalar(select(func.count()).where(active)) or 0

    first = first_touches()
    first_source = (
        select(first.c.contact_id, SourceInstance.kind)
        .join(SourceInstance, SourceInstance.id == first.c.source_instance_id)
        .subquery()
    )
    by_source = {
        kind: n
        for kind, n in session.execute(
            select(first_source.c.kind, func.count())
            .join(Contact, Contact.id == first_source.c.contact_id)
            .where(active)
            .group_by(first_source.c.kind)
            .order_by(first_source.c.kind)
        )
    }
    by_tier = {
        (tier or "unplaced"): n
        for tier, n in session.execute(
            select(Contact.tier, func.count())
            .where(active)
            .group_by(Contact.tier)
            .order_by(Contact.tier)
        )
    }
    by_status = dict(
        session.execute(select(Contact.status, func.count()).group_by(Contact.status))
        .tuples()
        .all()
    )
    followups = dict(
        session.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state))
        .tuples()
        .all()
    )
    touches = session.scalar(select(func.count()).select_from(Touch)) or 0
    touched = session.scalar(select(func.count(func.distinct(Touch.contact_id)))) or 0
    return {
        "contacts": contacts,
        # Records that resolved to a contact already known from an earlier record.
        "duplicate_records": touches - touched,
        "by_source": by_source,
        "by_tier": by_tier,
        "merged": by_status.get(ContactStatus.MERGED.value, 0),
        "removed": by_status.get(ContactStatus.REMOVED.value, 0),
        "raw_records": session.scalar(select(func.count()).select_from(RawRecord)) or 0,
        # Rows still waiting for a correction or a dismissal.
        "quarantined": open_count(session),
        "followups": {"planned_total": sum(followups.values()), "by_state": followups},
        "prospect_queue": session.scalar(
            select(func.count()).select_from(QueueItem).where(QueueItem.open_key.is_not(None))
        )
        or 0,
    }
