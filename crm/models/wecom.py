"""WeCom live intake: the callback inbox, channel live codes (渠道活码) and group join ways."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import Base, BigId, JsonDoc, utcnow


class WecomCallback(Base):
    """A decrypted WeCom callback exactly as it came, stored before anything acts on it.

    WeCom retries a callback it got no quick answer to: the natural key makes a retry add
    nothing. ``status`` goes pending → claimed → processed, or quarantined with a reason.
    """

    __tablename__ = "wecom_callbacks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    natural_key: Mapped[str] = mapped_column(String(300), unique=True)
    event: Mapped[str] = mapped_column(String(64))
    change_type: Mapped[str | None] = mapped_column(String(64))
    fields: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    raw_xml: Mapped[str] = mapped_column(Text)
    created_at_wecom: Mapped[datetime | None]  # CreateTime of the event
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claim_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    processed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(500))

    # ix_wecom_callbacks_open: a partial index, declared in crm.models.partial_indexes.


class WecomContactWay(Base):
    """A "contact me" code (add_contact_way) and the promoter, location and campaign its
    ``state`` stands for; the source instance is what touches and reports are attributed to."""

    __tablename__ = "wecom_contact_ways"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    state: Mapped[str] = mapped_column(String(30), unique=True)
    config_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    staff: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    promoter: Mapped[str | None] = mapped_column(String(100))
    location: Mapped[str | None] = mapped_column(String(200))
    campaign: Mapped[str | None] = mapped_column(String(100))
    qr_code: Mapped[str | None] = mapped_column(String(500))
    source_instance_id: Mapped[int] = mapped_column(BigId, ForeignKey("source_instances.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]


class WecomJoinWay(Base):
    """A group live code (groupchat/add_join_way) over at most five of a tier's groups."""

    __tablename__ = "wecom_join_ways"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tier: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(30), unique=True)
    config_id: Mapped[str] = mapped_column(String(100), unique=True)
    chat_ids: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    auto_create_room: Mapped[bool] = mapped_column(default=False, server_default="0")
    room_base_name: Mapped[str | None] = mapped_column(String(40))
    qr_code: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WecomChatVersion(Base):
    """The member_version of a group as we last reconciled it (groupchat/get)."""

    __tablename__ = "wecom_chat_versions"

    community_id: Mapped[int] = mapped_column(BigId, ForeignKey("communities.id"), primary_key=True)
    member_version: Mapped[str | None] = mapped_column(String(100))
    reconciled_at: Mapped[datetime] = mapped_column(default=utcnow)
