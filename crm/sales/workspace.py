"""What the sales workspace reads and writes about one prospect: the page, notes, the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, case, func, select
from sqlalchemy.orm import Session

from crm.compliance.privacy import export_contact
from crm.contacts.queries import contact_detail, resolve_contact_id
from crm.core.audit import audit
from crm.core.db import transaction
from crm.core.errors import InputError
from crm.core.vocabulary import OutboxState
from crm.models import AuditEntry, Note, OutboxMessage, QueueItem, User, utcnow
from crm.sales.access import require_may_act_on
from crm.sales.disclosure import mask_identity, may_see_contact_details
from crm.sales.history import ActionEntry, item_actions
from crm.sales.items import ItemView, item_for_contact
from crm.sales.leases import available_now, held_now
from crm.sales.users import StaffUser

MAX_NOTE = 5000


@dataclass(frozen=True)
class MessageEntry:
    """A message planned or sent to the prospect."""

    campaign: str
    step: str
    channel: str
    state: OutboxState
    due_at: datetime | None
    sent_at: datetime | None
    rendered: str | None
    reason: str | None


@dataclass(frozen=True)
class NoteEntry:
    """A staff note on the prospect."""

    by: str | None
    body: str
    at: datetime


@dataclass(frozen=True)
class ProspectPage:
    """A prospect as its viewer may see it: the contact (as ``contact_detail`` gives it, with
    identities masked when ``masked``) and its sales side."""

    contact: dict[str, Any]
    queue_item: ItemView | None
    queue_history: list[ActionEntry]
    messages: list[MessageEntry]
    notes: list[NoteEntry]
    masked: bool


def _needs_to_know(session: Session, cid: int, viewer: StaffUser, now: datetime) -> bool:
    if viewer.is_manager:
        return may_see_contact_details(is_manager=True, holds=False, claimable=False)
    mine = and_(held_now(now), QueueItem.assignee_id == viewer.id)
    holds, claimable = session.execute(
        select(
            func.max(case((mine, 1), else_=0)), func.max(case((available_now(now), 1), else_=0))
        ).where(QueueItem.contact_id == cid, QueueItem.open_key.is_not(None))
    ).one()
    return may_see_contact_details(is_manager=False, holds=bool(holds), claimable=bool(claimable))


def _disclose(session: Session, detail: dict[str, Any], viewer: StaffUser, now: datetime) -> bool:
    """Mask the identities the viewer has no need to know; audit a full reveal. True if masked."""
    cid = int(detail["id"])
    identities = detail["identities"]
    if not _needs_to_know(session, cid, viewer, now):
        detail["identities"] = [
            {**i, "value": mask_identity(i["kind"], i["value"])} for i in identities
        ]
        return True
    if identities:
        audit(
            session,
            viewer.username,
            "contact.reveal",
            object_type="contact",
            object_id=cid,
            details={"kinds": sorted({i["kind"] for i in identities})},
            at=now,
        )
    return False


def prospect_page(
    session: Session, contact_id: int, viewer: StaffUser, now: datetime
) -> ProspectPage:
    """A contact plus its queue item, history, messages and notes, as ``viewer`` may see it:
    phone and ids in full only with a need to know (every full view is audited)."""
    detail = contact_detail(session, contact_id)
    masked = _disclose(session, detail, viewer, now)
    cid = int(detail["id"])
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
    return ProspectPage(
        contact=detail,
        queue_item=item_for_contact(session, cid),
        queue_history=item_actions(session, list(item_ids)),
        messages=[
            MessageEntry(
                campaign=m.campaign,
                step=m.step,
                channel=m.channel,
                state=OutboxState(m.state),
                due_at=m.due_at,
                sent_at=m.sent_at,
                rendered=m.rendered,
                reason=m.reason,
            )
            for m in messages
        ],
        notes=[NoteEntry(by=who, body=n.body, at=n.created_at) for n, who in notes],
        masked=masked,
    )


def export_for(session: Session, contact_id: int, *, actor: str) -> dict[str, Any]:
    """Everything held on a contact (a PIPL access request), audited with who took it."""
    data = export_contact(session, contact_id)
    audit(session, actor, "contact.export", object_type="contact", object_id=contact_id)
    return data


def add_note(
    engine: Engine,
    contact_id: int,
    actor: StaffUser,
    body: str,
    *,
    now: datetime | None = None,
) -> int:
    """Attach a note to a prospect the actor holds (managers: any); audit says who, not what."""
    body = body.strip()
    if not body:
        raise InputError("error.sales.note_empty")
    if len(body) > MAX_NOTE:
        raise InputError("error.sales.note_long", limit=MAX_NOTE)
    now = now or utcnow()
    with transaction(engine) as session:
        require_may_act_on(session, actor, [contact_id], now)
        cid = resolve_contact_id(session, contact_id)
        note = Note(contact_id=cid, user_id=actor.id, body=body, created_at=now)
        session.add(note)
        session.flush()
        audit(
            session,
            actor.username,
            "note.add",
            object_type="contact",
            object_id=cid,
            details={"note_id": note.id},
            at=now,
        )
        return note.id


@dataclass(frozen=True)
class AuditRow:
    """One audit log entry."""

    id: int
    at: datetime
    actor: str
    action: str
    object_type: str | None
    object_id: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class AuditPage:
    """A page of the audit log, the id to page on from, and how many entries exist."""

    entries: list[AuditRow]
    next_before: int | None
    total: int


def audit_page(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> AuditPage:
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
        AuditRow(
            id=e.id,
            at=e.at,
            actor=e.actor,
            action=e.action,
            object_type=e.object_type,
            object_id=e.object_id,
            details=e.details,
        )
        for e in rows[:limit]
    ]
    total = int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)
    return AuditPage(
        entries=entries,
        next_before=entries[-1].id if len(rows) > limit else None,
        total=total,
    )
