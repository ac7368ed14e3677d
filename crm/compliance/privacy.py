"""Personal-data rights (PIPL): export everything held on a contact, and erase it on request."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Executable, delete, select, update
from sqlalchemy.orm import Session

from crm.contacts.queries import contact_detail, resolve_contact_id
from crm.core.audit import audit
from crm.core.db import transaction
from crm.core.errors import Conflict
from crm.core.queue_notes import NoteKey, system_note
from crm.core.vocabulary import ContactStatus, OutboxState, QueueStatus
from crm.intake.quarantine import corrected_versions
from crm.models import (
    Consent,
    Contact,
    ContactTag,
    Event,
    Identity,
    Note,
    OutboxAttempt,
    OutboxMessage,
    QuarantinedRow,
    QueueItem,
    RawRecord,
    SourceInstance,
    User,
    utcnow,
)

ERASED_PAYLOAD = {"erased": True}


def _held_ids(session: Session, cid: int) -> list[int]:
    """The contact and every contact merged into it."""
    merged = session.scalars(select(Contact.id).where(Contact.merged_into_id == cid)).all()
    return [cid, *(int(m) for m in merged)]


def export_contact(session: Session, contact_id: int) -> dict[str, Any]:
    """Everything stored about one contact, as a JSON-ready document."""
    detail = contact_detail(session, contact_id, event_limit=100_000)
    ids = _held_ids(session, int(detail["id"]))
    raw = session.execute(
        select(RawRecord, SourceInstance.kind, SourceInstance.name)
        .join(SourceInstance, SourceInstance.id == RawRecord.source_instance_id)
        .where(RawRecord.contact_id.in_(ids))
        .order_by(RawRecord.id)
    ).all()
    outbox = session.scalars(
        select(OutboxMessage).where(OutboxMessage.contact_id.in_(ids)).order_by(OutboxMessage.id)
    ).all()
    notes = session.execute(
        select(Note, User.username)
        .outerjoin(User, User.id == Note.user_id)
        .where(Note.contact_id.in_(ids))
        .order_by(Note.id)
    ).all()
    consents = session.scalars(
        select(Consent).where(Consent.contact_id.in_(ids)).order_by(Consent.id)
    ).all()
    queue = session.scalars(
        select(QueueItem).where(QueueItem.contact_id.in_(ids)).order_by(QueueItem.id)
    ).all()
    return {
        "contact": detail,
        "merged_contact_ids": ids[1:],
        "raw_records": [
            {
                "id": r.id,
                "source_kind": kind,
                "source": name,
                "record_key": r.record_key,
                "payload": r.payload,
                "received_at": r.received_at,
            }
            for r, kind, name in raw
        ],
        "outbox": [
            {
                "id": m.id,
                "campaign": m.campaign,
                "step": m.step,
                "channel": m.channel,
                "state": m.state,
                "due_at": m.due_at,
                "sent_at": m.sent_at,
                "rendered": m.rendered,
                "context": m.context,
            }
            for m in outbox
        ],
        "notes": [{"id": n.id, "by": who, "body": n.body, "at": n.created_at} for n, who in notes],
        "consents": [
            {
                "kind": c.kind,
                "channel": c.channel,
                "purpose": c.purpose,
                "source": c.source,
                "evidence": c.evidence,
                "at": c.recorded_at,
            }
            for c in consents
        ],
        "queue_items": [
            {
                "id": q.id,
                "status": q.status,
                "created_at": q.created_at,
                "closed_at": q.closed_at,
                "reason": q.outcome_reason,
            }
            for q in queue
        ],
    }


def erase_contact(
    engine: Engine, contact_id: int, *, actor: str, now: datetime | None = None
) -> dict[str, int]:
    """Erase a contact's personal data, keep the bare row as ``erased`` and audit the erasure.

    Identities, notes and the display name are removed; raw payloads, event payloads,
    rendered messages and consent evidence are blanked; an open queue item is closed.
    The audit entry holds counts only.
    """
    now = now or utcnow()
    with transaction(engine, immediate=True) as session:
        cid = resolve_contact_id(session, contact_id)
        contact = session.get(Contact, cid, with_for_update=True)
        assert contact is not None
        if contact.status == ContactStatus.ERASED:
            raise Conflict("error.compliance.already_erased", id=cid)
        ids = _held_ids(session, cid)
        counts: dict[str, int] = {}
        for name, stmt in _erasures(ids, now):
            result = session.execute(stmt.execution_options(synchronize_session=False))
            counts[name] = int(getattr(result, "rowcount", 0) or 0)
        session.execute(
            update(Contact)
            .where(Contact.id.in_(ids))
            .values(
                display_name=None,
                status=ContactStatus.ERASED.value,
                score_breakdown=[],
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        counts["contacts"] = len(ids)
        audit(
            session,
            actor,
            "contact.erase",
            object_type="contact",
            object_id=cid,
            details={"counts": counts},
            at=now,
        )
        return counts


def _erasures(ids: list[int], now: datetime) -> list[tuple[str, Executable]]:
    """What erasing removes or blanks, one named statement per table, counted in the audit."""
    own = select(RawRecord.id).where(RawRecord.contact_id.in_(ids))
    # With the quarantined versions of records the contact's records corrected.
    raw_ids = own.union(corrected_versions(own))
    pending = (
        OutboxState.PLANNED.value,
        OutboxState.DEFERRED.value,
        OutboxState.AWAITING_CONFIRMATION.value,
    )
    outbox_ids = select(OutboxMessage.id).where(OutboxMessage.contact_id.in_(ids))
    erased = system_note(NoteKey.CLOSED_ERASED)
    return [
        ("identities", delete(Identity).where(Identity.contact_id.in_(ids))),
        ("notes", delete(Note).where(Note.contact_id.in_(ids))),
        ("tags", delete(ContactTag).where(ContactTag.contact_id.in_(ids))),
        (
            "quarantine",
            update(QuarantinedRow)
            .where(QuarantinedRow.raw_record_id.in_(raw_ids))
            .values(raw_content=""),
        ),
        (
            "raw_records",
            update(RawRecord).where(RawRecord.id.in_(raw_ids)).values(payload=ERASED_PAYLOAD),
        ),
        ("events", update(Event).where(Event.contact_id.in_(ids)).values(payload={})),
        (
            "outbox_cancelled",
            update(OutboxMessage)
            .where(OutboxMessage.contact_id.in_(ids), OutboxMessage.state.in_(pending))
            .values(state=OutboxState.SKIPPED.value, reason="contact erased on request"),
        ),
        (
            "outbox",
            update(OutboxMessage)
            .where(OutboxMessage.contact_id.in_(ids))
            .values(rendered=None, context={}),
        ),
        (
            "outbox_attempts",
            update(OutboxAttempt)
            .where(OutboxAttempt.outbox_id.in_(outbox_ids))
            .values(detail=None),
        ),
        ("consents", update(Consent).where(Consent.contact_id.in_(ids)).values(evidence={})),
        (
            "queue_items",
            update(QueueItem)
            .where(QueueItem.contact_id.in_(ids), QueueItem.open_key.is_not(None))
            .values(
                status=QueueStatus.LOST.value,
                open_key=None,
                assignee_id=None,
                lease_expires_at=None,
                outcome_reason=erased.text,
                outcome_key=erased.key.value,
                closed_at=now,
                updated_at=now,
            ),
        ),
    ]
