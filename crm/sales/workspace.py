"""What the sales workspace reads and writes about one prospect: the page, notes, the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from crm.contacts.queries import contact_detail, resolve_contact_id
from crm.core.audit import audit
from crm.core.db import transaction
from crm.core.errors import InputError
from crm.models import AuditEntry, Note, OutboxMessage, QueueItem, User, utcnow
from crm.sales import queue

MAX_NOTE = 5000


def prospect_page(session: Session, contact_id: int) -> dict[str, Any]:
    """A contact in full plus its queue item, queue history, messages and notes."""
    detail = contact_detail(session, contact_id)
    cid = int(detail["id"])
    item = queue.item_for_contact(session, cid)
    item_ids = session.scalars(select(QueueItem.id).where(QueueItem.contact_id == cid)).all()
    messages = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.contact_id == cid)
        .order_by(OutboxMessage.due_at.desc(), OutboxMessage.id.desc())
        .limit(100)
    ).all()
    notes = session.execute(
        select(Note, User.username)
        .outerjoin(User, User.id == Note.user_id)
        .where(Note.contact_id == cid)
        .order_by(Note.created_at.desc(), Note.id.desc())
        .limit(200)
    ).all()
    detail["queue_item"] = item
    detail["queue_history"] = queue.item_actions(session, list(item_ids))
    detail["messages"] = [
        {
            "campaign": m.campaign,
            "step": m.step,
            "channel": m.channel,
            "state": m.state,
            "due_at": m.due_at,
            "sent_at": m.sent_at,
            "rendered": m.rendered,
            "reason": m.reason,
        }
        for m in messages
    ]
    detail["notes"] = [{"by": who, "body": n.body, "at": n.created_at} for n, who in notes]
    return detail


def add_note(
    engine: Engine, contact_id: int, user_id: int, body: str, *, now: datetime | None = None
) -> int:
    """Attach a staff note to a contact; the audit entry records who, not what."""
    body = body.strip()
    if not body:
        raise InputError("a note cannot be empty")
    if len(body) > MAX_NOTE:
        raise InputError(f"a note holds at most {MAX_NOTE} characters")
    now = now or utcnow()
    with transaction(engine) as session:
        cid = resolve_contact_id(session, contact_id)
        user = session.get(User, user_id)
        note = Note(contact_id=cid, user_id=user_id, body=body, created_at=now)
        session.add(note)
        session.flush()
        audit(
            session,
            user.username if user else str(user_id),
            "note.add",
            object_type="contact",
            object_id=cid,
            details={"note_id": note.id},
            at=now,
        )
        return note.id


def holds_contact(session: Session, contact_id: int, user_id: int, now: datetime) -> bool:
    """True when the user holds (claimed or was assigned) the contact's open queue item."""
    found = session.scalar(
        select(QueueItem.id).where(
            QueueItem.contact_id == contact_id,
            QueueItem.assignee_id == user_id,
            QueueItem.status.in_(queue.HELD),
            QueueItem.lease_expires_at >= now,
        )
    )
    return found is not None


def audit_page(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """The audit log newest first, paged by id (keyset), filtered by actor or action prefix."""
    stmt = select(AuditEntry)
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor)
    if action:
        stmt = stmt.where(AuditEntry.action.startswith(action, autoescape=True))
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    rows = session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit + 1)).all()
    entries = [
        {
            "id": e.id,
            "at": e.at,
            "actor": e.actor,
            "action": e.action,
            "object_type": e.object_type,
            "object_id": e.object_id,
            "details": e.details,
        }
        for e in rows[:limit]
    ]
    total = int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)
    return {
        "entries": entries,
        "next_before": entries[-1]["id"] if len(rows) > limit else None,
        "total": total,
    }
