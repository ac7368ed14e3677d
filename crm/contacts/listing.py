"""A page of contacts, highest score first: the read behind ``qunflow contacts list``.

Core statements on a plain connection. Loading the mapped models and SQLAlchemy's ORM costs
a command several times what this read does, so the three tables it reads are named here as
lightweight clauses; tests/contacts/test_listing.py keeps them in step with crm.models.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, DateTime, column, exists, func, select, table

from crm.contacts.naming import contact_label

CONTACTS = table(
    "contacts",
    column("id"),
    column("display_name"),
    column("status"),
    column("tier"),
    column("score"),
    column("first_seen_at", DateTime(timezone=True)),
    column("last_active_at", DateTime(timezone=True)),
)
IDENTITIES = table(
    "identities", column("id"), column("contact_id"), column("kind"), column("value")
)
CONTACT_TAGS = table("contact_tags", column("contact_id"), column("tag"))


def list_contacts(
    conn: Connection,
    *,
    tier: str | None = None,
    tag: str | None = None,
    status: str = "active",
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """A page of contacts, highest score first, with the total for paging."""
    c = CONTACTS.c
    where = [c.status == status]
    if tier is not None:
        where.append(c.tier == tier)
    if (
        tag is not None
    ):  # stored tags are cleaned (crm.contacts.tag_text.clean_tag); so is the filter
        t = CONTACT_TAGS.c
        where.append(exists().where(t.contact_id == c.id, t.tag == tag))
    total = conn.scalar(select(func.count()).select_from(CONTACTS).where(*where)) or 0
    page = select(CONTACTS).where(*where).order_by(c.score.desc(), c.id).limit(limit)
    rows = conn.execute(page.offset(offset)).all()
    ids = [row.id for row in rows]
    idents = _identities(conn, ids)
    tags = tags_of(conn, ids)
    items = [
        {
            "id": row.id,
            "name": row.display_name,
            "label": contact_label(row.display_name, idents.get(row.id, {}).items()),
            "tier": row.tier,
            "score": row.score,
            "phone": idents.get(row.id, {}).get("phone"),
            "wechat_id": idents.get(row.id, {}).get("wechat_id"),
            "tags": tags.get(row.id, []),
            "first_seen_at": _utc(row.first_seen_at),
            "last_active_at": _utc(row.last_active_at),
        }
        for row in rows
    ]
    return {"total": total, "limit": limit, "offset": offset, "items": items}


def _utc(value: datetime | None) -> datetime | None:
    # As the models' UTCDateTime reads stored moments: SQLite hands them back naive (in UTC).
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _identities(conn: Connection, contact_ids: list[int]) -> dict[int, dict[str, str]]:
    # The first identity of each kind a contact got is the one shown.
    i = IDENTITIES.c
    stmt = (
        select(i.contact_id, i.kind, i.value)
        .where(i.contact_id.in_(contact_ids))
        .order_by(i.contact_id, i.id)
    )
    out: dict[int, dict[str, str]] = {}
    for cid, kind, value in conn.execute(stmt):
        out.setdefault(int(cid), {}).setdefault(kind, value)
    return out


def tags_of(conn: Connection, contact_ids: list[int]) -> dict[int, list[str]]:
    """Each contact's tags, in order."""
    t = CONTACT_TAGS.c
    stmt = (
        select(t.contact_id, t.tag)
        .where(t.contact_id.in_(contact_ids))
        .order_by(t.contact_id, t.tag)
    )
    out: dict[int, list[str]] = {}
    for cid, tag in conn.execute(stmt):
        out.setdefault(int(cid), []).append(tag)
    return out
