"""Reading one contact in full, following merges (the list lives in crm.contacts.listing)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.contacts.listing import tags_of
from crm.contacts.naming import contact_label
from crm.core.errors import NotFound
from crm.models import (
    Community,
    Consent,
    Contact,
    Event,
    Identity,
    Membership,
    SourceInstance,
    TierChange,
    Touch,
)


def resolve_contact_id(session: Session, contact_id: int) -> int:
    """Follow merges: the id of the contact that now holds this one's history."""
    seen: set[int] = set()
    current = contact_id
    while True:
        row = session.execute(
            select(Contact.id, Contact.merged_into_id).where(Contact.id == current)
        ).first()
        if row is None:
            raise NotFound("error.contacts.contact_missing", id=contact_id)
        if row.merged_into_id is None or row.merged_into_id in seen:
            return int(row.id)
        seen.add(current)
        current = int(row.merged_into_id)


def contact_detail(session: Session, contact_id: int, *, event_limit: int = 200) -> dict[str, Any]:
    """Everything shown on a contact's page: identities, touches, events, score, tiers.

    A document, not a typed result: the CLI prints it as JSON, the prospect page and the
    personal-data export read it as it is.
    """
    cid = resolve_contact_id(session, contact_id)
    contact = session.get(Contact, cid)
    assert contact is not None
    identities = _identities(session, cid)
    return {
        "id": contact.id,
        "requested_id": contact_id,
        "name": contact.display_name,
        "label": contact_label(contact.display_name, ((i["kind"], i["value"]) for i in identities)),
        "status": contact.status,
        "tier": contact.tier,
        "score": contact.score,
        "score_breakdown": list(contact.score_breakdown or []),
        "rules_version": contact.rules_version,
        "first_seen_at": contact.first_seen_at,
        "last_active_at": contact.last_active_at,
        "referred_by": contact.referred_by_id,
        "tags": tags_of(session.connection(), [cid]).get(cid, []),
        "identities": identities,
        "touches": _touches(session, cid),
        "events": _events(session, cid, event_limit),
        "tier_history": _tier_history(session, cid),
        "groups": _groups(session, cid),
        "consents": _consents(session, cid),
    }


def _identities(session: Session, cid: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Identity).where(Identity.contact_id == cid).order_by(Identity.kind, Identity.id)
    )
    return [{"kind": i.kind, "value": i.value, "flags": i.flags or {}} for i in rows]


def _touches(session: Session, cid: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Touch.touched_at, SourceInstance.kind, SourceInstance.name, SourceInstance.id)
        .join(SourceInstance, SourceInstance.id == Touch.source_instance_id)
        .where(Touch.contact_id == cid)
        .order_by(Touch.touched_at, Touch.id)
    )
    return [
        {"at": t.touched_at, "source_kind": t.kind, "source": t.name, "source_id": t.id}
        for t in rows
    ]


def _events(session: Session, cid: int, limit: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Event)
        .where(Event.contact_id == cid)
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(limit)
    )
    return [
        {"id": e.id, "kind": e.kind, "at": e.occurred_at, "payload": e.payload or {}} for e in rows
    ]


def _tier_history(session: Session, cid: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(TierChange)
        .where(TierChange.contact_id == cid)
        .order_by(TierChange.changed_at, TierChange.id)
    )
    return [
        {
            "from": h.from_tier,
            "to": h.to_tier,
            "reason": h.reason,
            "reason_key": h.reason_key,
            "reason_params": h.reason_params,
            "score": h.score,
            "rules_version": h.rules_version,
            "actor": h.actor,
            "at": h.changed_at,
        }
        for h in rows
    ]


def _groups(session: Session, cid: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Membership, Community.name, Community.tier)
        .join(Community, Community.id == Membership.community_id)
        .where(Membership.contact_id == cid)
        .order_by(Membership.id)
    )
    return [
        {
            "group": name,
            "tier": tier,
            "role": m.role,
            "invited_at": m.invited_at,
            "joined_at": m.joined_at,
            "left_at": m.left_at,
        }
        for m, name, tier in rows
    ]


def _consents(session: Session, cid: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Consent).where(Consent.contact_id == cid).order_by(Consent.recorded_at)
    )
    return [
        {"kind": c.kind, "channel": c.channel, "source": c.source, "at": c.recorded_at}
        for c in rows
    ]
