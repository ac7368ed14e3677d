"""The WeCom callback inbox: decrypted events stored first, once, then claimed for processing.

The web handler only parses and stores (WeCom retries a callback not answered within five
seconds, so the answer must not wait on anything); workers claim pending rows in one
statement each, so the handler's own follow-up and the scheduled flow never take the same row.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.orm import Session

from crm.core.db import dialect_insert, transaction
from crm.intake.wecom_crypto import CallbackRefused
from crm.models import WecomCallback, utcnow

MAX_XML = 200_000  # characters; a change_external_chat with 200 member ids is a few KB
CLAIM_SECONDS = 120
# Fields that say which event this is; a retry repeats them all, a new event differs in one.
_KEY_FIELDS = (
    "ToUserName",
    "CreateTime",
    "Event",
    "ChangeType",
    "UserID",
    "ExternalUserID",
    "ChatId",
    "UpdateDetail",
    "FailReason",
)


def parse_xml(data: bytes) -> dict[str, Any]:
    """The fields of a WeCom XML message (repeated children become lists); CallbackRefused
    for anything that is not one plain ``<xml>`` element."""
    if len(data) > MAX_XML:
        raise CallbackRefused("error.intake.xml_too_long", limit=MAX_XML)
    # No DTDs: entity expansion is how an XML body grows past every bound.
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        raise CallbackRefused("error.intake.xml_dtd")
    try:
        root = ET.fromstring(data)  # noqa: S314 - DTDs refused above, size bounded
    except ET.ParseError as exc:
        raise CallbackRefused("error.intake.xml_invalid", detail=str(exc)) from exc
    if root.tag != "xml":
        raise CallbackRefused("error.intake.xml_root", tag=root.tag[:40])
    fields: dict[str, Any] = {}
    for child in root:
        if len(child):
            fields[child.tag] = [(item.text or "").strip() for item in child]
        elif child.tag in fields:
            prev = fields[child.tag]
            fields[child.tag] = [*(prev if isinstance(prev, list) else [prev]), child.text or ""]
        else:
            fields[child.tag] = (child.text or "").strip()
    return fields


def natural_key(fields: dict[str, Any]) -> str:
    """The key a retried callback shares with its first delivery."""
    parts = [f"{name}={fields.get(name, '')}" for name in _KEY_FIELDS]
    members = fields.get("MemChangeList")
    if members:
        parts.append("members=" + ",".join(members if isinstance(members, list) else [members]))
    digest = hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:40]
    head = (
        f"{fields.get('Event', '')}:{fields.get('ChangeType', '')}:{fields.get('CreateTime', '')}"
    )
    return f"{head[:240]}:{digest}"


def created_at(fields: dict[str, Any]) -> datetime | None:
    """The event's CreateTime (Unix seconds) as an aware UTC time, if readable."""
    raw = str(fields.get("CreateTime") or "")
    if raw.isdigit() and len(raw) <= 12:
        return datetime.fromtimestamp(int(raw), UTC)
    return None


@dataclass(frozen=True)
class Received:
    """What storing a callback did: its row, and whether it was new (False: a retry)."""

    callback_id: int | None
    new: bool


def store_callback(
    engine: Engine, fields: dict[str, Any], raw_xml: str, *, now: datetime | None = None
) -> Received:
    """Store a decrypted callback unless its natural key is already in the inbox."""
    at = now or utcnow()
    row = {
        "natural_key": natural_key(fields),
        "event": str(fields.get("Event") or fields.get("InfoType") or "")[:64],
        "change_type": str(fields.get("ChangeType") or "")[:64] or None,
        "fields": fields,
        "raw_xml": raw_xml,
        "created_at_wecom": created_at(fields),
        "received_at": at,
        "status": "pending",
    }
    with transaction(engine) as session:
        stmt = (
            dialect_insert(session, WecomCallback)
            .values(row)
            .on_conflict_do_nothing(index_elements=["natural_key"])
            .returning(WecomCallback.id)
        )
        new_id = session.scalar(stmt)
    return Received(new_id, new_id is not None)


@dataclass(frozen=True)
class Claimed:
    """A claimed callback: what a handler needs, without the ORM row."""

    id: int
    event: str
    change_type: str | None
    fields: dict[str, Any]
    received_at: datetime
    created_at_wecom: datetime | None


def claim_callbacks(
    engine: Engine, worker: str, *, limit: int = 200, only: int | None = None, now: datetime
) -> list[Claimed]:
    """Claim pending callbacks (and ones whose claim expired), oldest event first."""
    expired = now
    with transaction(engine, immediate=True) as session:
        open_rows = (
            select(WecomCallback.id)
            .where(
                or_(
                    WecomCallback.status == "pending",
                    (WecomCallback.status == "claimed")
                    & (WecomCallback.claim_expires_at < expired),
                )
            )
            .order_by(WecomCallback.created_at_wecom, WecomCallback.id)
            .limit(limit)
        )
        if only is not None:
            open_rows = open_rows.where(WecomCallback.id == only)
        if session.get_bind().dialect.name == "postgresql":
            open_rows = open_rows.with_for_update(skip_locked=True)
        ids = list(session.scalars(open_rows))
        if not ids:
            return []
        rows = session.execute(
            update(WecomCallback)
            .where(WecomCallback.id.in_(ids))
            .values(
                status="claimed",
                claimed_by=worker,
                claim_expires_at=now + timedelta(seconds=CLAIM_SECONDS),
                attempts=WecomCallback.attempts + 1,
            )
            .returning(
                WecomCallback.id,
                WecomCallback.event,
                WecomCallback.change_type,
                WecomCallback.fields,
                WecomCallback.received_at,
                WecomCallback.created_at_wecom,
            )
        ).all()
    claimed = [Claimed(*r) for r in rows]
    # Oldest event first: an add is applied before the delete that follows it.
    return sorted(claimed, key=lambda c: (c.created_at_wecom or c.received_at, c.id))


def finish_callback(
    session: Session, callback_id: int, *, status: str, outcome: str, now: datetime
) -> None:
    """Mark a claimed callback processed (or quarantined) with what came of it."""
    session.execute(
        update(WecomCallback)
        .where(WecomCallback.id == callback_id)
        .values(status=status, outcome=outcome[:500], processed_at=now, claim_expires_at=None)
    )
