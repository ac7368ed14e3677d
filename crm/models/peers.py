"""Peer groups (同行群): other communities' groups our operator accounts join to harvest
members, and the operators' daily task list (joins, friend requests) for them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import Base, BigId, utcnow


class PeerGroup(Base):
    """Another community's group: whose it is, how to join it, and which account of ours is in."""

    __tablename__ = "peer_groups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    community: Mapped[str | None] = mapped_column(String(200))  # the community or owner it is of
    join_method: Mapped[str] = mapped_column(String(16), default="qr", server_default="qr")
    join_ref: Mapped[str | None] = mapped_column(String(500))  # QR / link URL, or the introducer
    theme: Mapped[str | None] = mapped_column(String(100))
    notes: Mapped[str | None] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(16), default="to_join", server_default="to_join")
    # The operator account in it (or planned to join it).
    account_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("operator_accounts.id"))
    joined_at: Mapped[datetime | None]
    left_at: Mapped[datetime | None]
    requested_at: Mapped[datetime | None]  # when we asked to be let in (status ``requested``)
    request_note: Mapped[str | None] = mapped_column(String(500))  # who we asked, what is pending
    # The member lists imported from it (``ingest peer-group --peer``) land on this source.
    source_instance_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("source_instances.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PeerTask(Base):
    """One planned operator task: join a peer group, or send a harvested member a friend request.

    Planned within the account's cap for the action on its local ``day`` (reserved in the caps
    ledger when planned); ``key`` names what the task is about, so a group or contact is planned
    at most once a day.
    """

    __tablename__ = "peer_tasks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # join | friend_request
    key: Mapped[str] = mapped_column(String(64))  # "group:7", "contact:42"
    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("operator_accounts.id"))
    peer_group_id: Mapped[int] = mapped_column(BigId, ForeignKey("peer_groups.id"))
    contact_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("contacts.id"))
    day: Mapped[date] = mapped_column(Date)  # the account's local day it is planned for
    state: Mapped[str] = mapped_column(String(16), default="planned", server_default="planned")
    text: Mapped[str | None] = mapped_column(String(1000))  # a friend request's purpose line
    # When it is due: friend requests are spaced by the account's friend_add pacing interval.
    due_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("kind", "key", "day"),
        Index("ix_peer_tasks_account_day", "account_id", "day", "state"),
        Index("ix_peer_tasks_account_due", "account_id", "kind", "due_at"),
    )
