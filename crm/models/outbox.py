"""The transactional outbox: one row per (campaign, step, contact or group), and every attempt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import Base, BigId, JsonDoc, utcnow


class OutboxMessage(Base):
    """A message planned for a contact, or posted in a group; workers claim, send and mark it.

    A group post (群发 into one of our groups: rules reminders, event notices) has no contact:
    its community is the recipient, and its idempotency key keeps it unique per step.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign: Mapped[str] = mapped_column(String(100))
    step: Mapped[str] = mapped_column(String(100))
    contact_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("contacts.id"))
    channel: Mapped[str] = mapped_column(String(32))
    template: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("operator_accounts.id"))
    # Invitations: the group the contact is invited to (counts as a group join); group posts:
    # the group posted in.
    community_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("communities.id"))
    action: Mapped[str] = mapped_column(String(32), default="message", server_default="message")
    context: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    state: Mapped[str] = mapped_column(String(24), default="planned", server_default="planned")
    due_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claim_expires_at: Mapped[datetime | None]
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    rendered: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(String(500))  # skip / defer / failure reason
    sent_at: Mapped[datetime | None]
    # Set in the commit just before the provider call: a reclaimed row with this set may have
    # reached the provider, so it is looked up (or failed as unknown), never blindly resent.
    sending_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("campaign", "step", "contact_id"),
        CheckConstraint(
            "contact_id IS NOT NULL OR community_id IS NOT NULL", name="recipient_given"
        ),
        Index("ix_outbox_state_due", "state", "due_at"),
        Index("ix_outbox_contact", "contact_id"),
    )


class OutboxAttempt(Base):
    """History of each send attempt (append-only): what the channel said.

    ``outbox_id`` has no foreign key: the check cost the dispatch mark a lookup per attempt.
    The writers keep it true instead: an attempt names only an outbox row its writer holds
    (the dispatch mark, rows its claim returned; the WeCom welcome, the row it inserted), and
    outbox rows are never deleted.
    """

    __tablename__ = "outbox_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(BigId, index=True)
    worker: Mapped[str | None] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(24))
    detail: Mapped[str | None] = mapped_column(String(1000))
    at: Mapped[datetime] = mapped_column(default=utcnow)
