"""Our own communities (groups) by tier and theme, and who is in them in which role."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import Base, BigId, utcnow


class Community(Base):
    """A WeChat/WeCom group of ours: tier, theme, capacity, owner and its join QR code."""

    __tablename__ = "communities"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    platform: Mapped[str] = mapped_column(String(16), default="wechat", server_default="wechat")
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)  # WeCom chat_id
    tier: Mapped[str] = mapped_column(String(16))
    theme: Mapped[str] = mapped_column(
        String(16), default="discussion", server_default="discussion"
    )
    capacity: Mapped[int] = mapped_column(default=500, server_default="500")
    qr_join_limit: Mapped[int] = mapped_column(default=200, server_default="200")
    member_count: Mapped[int] = mapped_column(default=0, server_default="0")
    owner_account_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("operator_accounts.id"))
    qr_code_url: Mapped[str | None] = mapped_column(String(500))
    qr_expires_at: Mapped[datetime | None]
    # Order within a tier's live code (群活码): the lowest open one is filled first.
    position: Mapped[int] = mapped_column(default=0, server_default="0")
    archived: Mapped[bool] = mapped_column(default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_communities_tier_theme", "tier", "theme", "position"),)


class Membership(Base):
    """A contact in a group, in a role, from joined_at until left_at."""

    __tablename__ = "memberships"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    community_id: Mapped[int] = mapped_column(BigId, ForeignKey("communities.id"))
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id"))
    role: Mapped[str] = mapped_column(String(16), default="member", server_default="member")
    invited_at: Mapped[datetime | None]
    joined_at: Mapped[datetime | None]
    left_at: Mapped[datetime | None]
    left_reason: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        UniqueConstraint("community_id", "contact_id", "joined_at"),
        Index("ix_memberships_contact", "contact_id"),
    )
