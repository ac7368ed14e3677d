"""Contacts and what is known about them: identities, touches, events, tiers, consent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import Base, BigId, JsonDoc, OptionalJsonDoc, utcnow


class Contact(Base):
    """One person, however many identities and sources they arrived through."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    tier: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[int] = mapped_column(default=0, server_default="0")
    score_breakdown: Mapped[list[Any]] = mapped_column(JsonDoc, default=list)
    rules_version: Mapped[str | None] = mapped_column(String(40))
    scored_at: Mapped[datetime | None]
    timezone: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(16), default="zh-CN", server_default="zh-CN")
    referred_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("contacts.id"))
    merged_into_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("contacts.id"))
    warnings: Mapped[int] = mapped_column(default=0, server_default="0")
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_active_at: Mapped[datetime | None]
    tier_entered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_contacts_tier_score", "tier", "score"),
        Index("ix_contacts_status", "status"),
    )


class ContactTag(Base):
    """A label staff put on a contact (企业标签: 高意向, 宝妈, 老客户 …) to segment and route by."""

    __tablename__ = "contact_tags"

    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(40), primary_key=True)
    added_by: Mapped[str | None] = mapped_column(String(100))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_contact_tags_tag", "tag"),)


class Identity(Base):
    """A normalized handle that identifies a contact; unique per kind across all contacts."""

    __tablename__ = "identities"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(200))
    # e.g. {"landline": true} or {"invalid": "too short"}; the raw spelling stays in raw_records.
    flags: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("kind", "value"),)


class Touch(Base):
    """A contact reached us through a source record at a time: first touch and every later one."""

    __tablename__ = "touches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id"))
    source_instance_id: Mapped[int] = mapped_column(BigId, ForeignKey("source_instances.id"))
    raw_record_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("raw_records.id"))
    touched_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("raw_record_id"),
        Index("ix_touches_contact_time", "contact_id", "touched_at"),
        Index("ix_touches_source_time", "source_instance_id", "touched_at"),
    )


class Event(Base):
    """Something a contact did (append-only): message, share, referral, purchase, …"""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id"))
    kind: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime]
    community_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("communities.id"))
    source_instance_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("source_instances.id"))
    raw_record_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("raw_records.id"))
    # referral: the invited contact; kept as a column so reports can join on it.
    related_contact_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("contacts.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        # One event per raw record and kind: replaying an import adds nothing.
        UniqueConstraint("raw_record_id", "kind"),
        Index("ix_events_contact_time", "contact_id", "occurred_at"),
        Index("ix_events_kind_time", "kind", "occurred_at"),
    )


class TierChange(Base):
    """History of tier moves: from, to, why, under which rules and score."""

    __tablename__ = "tier_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id"))
    from_tier: Mapped[str | None] = mapped_column(String(16))
    to_tier: Mapped[str | None] = mapped_column(String(16))
    # The English sentence (logs, exports, SQL readers); the key and its parameters are what a
    # page says in the reader's language (crm.routing.tier_reasons). An operator's typed
    # reason has no key.
    reason: Mapped[str] = mapped_column(String(200))
    reason_key: Mapped[str | None] = mapped_column(String(40))
    reason_params: Mapped[dict[str, Any] | None] = mapped_column(OptionalJsonDoc)
    rules_version: Mapped[str | None] = mapped_column(String(40))
    score: Mapped[int | None]
    actor: Mapped[str] = mapped_column(String(100), default="system", server_default="system")
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_tier_changes_contact_time", "contact_id", "changed_at"),
        Index("ix_tier_changes_time", "changed_at"),
    )


class Consent(Base):
    """Consent given and opt-outs (退订), per channel or for all channels (channel NULL)."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id"))
    kind: Mapped[str] = mapped_column(String(16))  # consent | opt_out
    channel: Mapped[str | None] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(
        String(32), default="marketing", server_default="marketing"
    )
    source: Mapped[str] = mapped_column(String(100))  # signup form, reply 退订, link, manual …
    evidence: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_consents_contact_kind", "contact_id", "kind"),)


class Note(Base):
    """A free-text note on a contact by a staff member."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
