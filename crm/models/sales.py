"""Staff users and the prospect queue they work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import Base, BigId, OptionalJsonDoc, utcnow


class User(Base):
    """A staff member: sales, manager or admin."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(default=True, server_default="1")
    locale: Mapped[str] = mapped_column(String(16), default="zh-CN", server_default="zh-CN")
    daily_claim_cap: Mapped[int] = mapped_column(default=50, server_default="50")
    holding_cap: Mapped[int] = mapped_column(default=30, server_default="30")
    # Carried in every session cookie; bumped on logout, a new password, a new role or
    # disabling, so every cookie issued before stops working at once.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QueueItem(Base):
    """A prospect waiting for (or worked by) a salesperson, with a lease and an SLA."""

    __tablename__ = "queue_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id"))
    status: Mapped[str] = mapped_column(String(16), default="pool", server_default="pool")
    # Open items per contact: at most one (a closed item keeps its row for history).
    open_key: Mapped[int | None] = mapped_column(BigId)
    assignee_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    lease_expires_at: Mapped[datetime | None]
    sla_due_at: Mapped[datetime | None]
    snoozed_until: Mapped[datetime | None]
    priority: Mapped[int] = mapped_column(default=0, server_default="0")
    outcome_reason: Mapped[str | None] = mapped_column(String(500))
    # A reason the system wrote (crm.core.queue_notes); None for one a salesperson typed.
    outcome_key: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("open_key"),
        Index("ix_queue_items_status_priority", "status", "priority", "created_at"),
        Index("ix_queue_items_assignee_status", "assignee_id", "status"),
        Index("ix_queue_items_contact", "contact_id"),
        # The pool in claim order (due first, then priority, then oldest) and lease expiry.
        Index("ix_queue_items_status_sla", "status", "sla_due_at", "priority", "created_at"),
        Index("ix_queue_items_status_lease", "status", "lease_expires_at"),
    )


class QueueAction(Base):
    """History of what staff did on a queue item (append-only)."""

    __tablename__ = "queue_actions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(BigId, ForeignKey("queue_items.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    # A note the system wrote, in words (crm.core.queue_notes); None for a typed note.
    note_key: Mapped[str | None] = mapped_column(String(40))
    note_params: Mapped[dict[str, Any] | None] = mapped_column(OptionalJsonDoc)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    # Daily claim caps count a person's claims since local midnight.
    __table_args__ = (Index("ix_queue_actions_user_at", "user_id", "at"),)
