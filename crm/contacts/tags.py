"""Contact tags (企业标签): labels staff put on contacts to segment campaigns and queues by.

A tag is short free text, NFKC-normalized (so ``ＶＩＰ`` and ``VIP`` are one tag) and
case-preserving; tagging is idempotent and set-based, follows merges to the surviving contact,
and is written to the audit log without personal data.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, delete, exists, func, select
from sqlalchemy.orm import Session

from crm.contacts.queries import resolve_contact_id
from crm.contacts.tag_text import clean_tags
from crm.core.audit import audit
from crm.core.db import dialect_insert, transaction
from crm.core.errors import InputError
from crm.models import ContactTag, utcnow


def tag_contacts(
    engine: Engine,
    contact_ids: Sequence[int],
    tags: Sequence[str],
    *,
    actor: str,
    now: datetime | None = None,
) -> int:
    """Put tags on contacts (merged ids follow to their survivor); returns how many were new."""
    cleaned = clean_tags(tags)
    if not cleaned:
        raise InputError("error.contacts.tag_none")
    now = now or utcnow()
    with transaction(engine) as session:
        ids = sorted({resolve_contact_id(session, cid) for cid in contact_ids})
        rows = [
            {"contact_id": cid, "tag": tag, "added_by": actor, "added_at": now}
            for cid in ids
            for tag in cleaned
        ]
        if not rows:
            return 0
        stmt = dialect_insert(session, ContactTag).values(rows).on_conflict_do_nothing()
        added = len(session.execute(stmt.returning(ContactTag.tag)).all())
        audit(
            session,
            actor,
            "contacts.tag",
            object_type="contact",
            details={"contacts": len(ids), "tags": cleaned, "added": added},
            at=now,
        )
        return added


def untag_contacts(
    engine: Engine, contact_ids: Sequence[int], tags: Sequence[str], *, actor: str
) -> int:
    """Take tags off contacts; returns how many were removed."""
    cleaned = clean_tags(tags)
    with transaction(engine) as session:
        ids = sorted({resolve_contact_id(session, cid) for cid in contact_ids})
        result = session.execute(
            delete(ContactTag).where(ContactTag.contact_id.in_(ids), ContactTag.tag.in_(cleaned))
        )
        removed = int(getattr(result, "rowcount", 0) or 0)
        audit(
            session,
            actor,
            "contacts.untag",
            object_type="contact",
            details={"contacts": len(ids), "tags": cleaned, "removed": removed},
        )
        return removed


def tag_counts(session: Session) -> list[dict[str, Any]]:
    """Every tag in use with how many contacts carry it, most used first."""
    n = func.count().label("contacts")
    stmt = select(ContactTag.tag, n).group_by(ContactTag.tag).order_by(n.desc(), ContactTag.tag)
    return [{"tag": tag, "contacts": int(count)} for tag, count in session.execute(stmt)]


def tagged_clause(contact_id: Any, tags: Sequence[str]) -> ColumnElement[bool]:
    """SQL condition: the contact carries at least one of ``tags``."""
    return exists().where(ContactTag.contact_id == contact_id, ContactTag.tag.in_(clean_tags(tags)))
