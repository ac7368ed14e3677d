"""Operator accounts, the named platform limits that bind them, and the caps ledger."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import Base, BigId, utcnow


class OperatorAccount(Base):
    """A WeChat / WeCom / email / webhook sender that staff operate."""

    __tablename__ = "operator_accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    handle: Mapped[str] = mapped_column(String(100))
    display_name: Mapped[str | None] = mapped_column(String(100))
    owner_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    timezone: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True, server_default="1")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("platform", "handle"),)


class PlatformLimit(Base):
    """A named limit (e.g. 10 group joins a day), where it came from and since when.

    ``account_id`` NULL is the default for every account of the platform and scope;
    a row with an account overrides it.
    """

    __tablename__ = "platform_limits"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    platform: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(16), default="account", server_default="account")
    action: Mapped[str] = mapped_column(String(32))
    limit: Mapped[int]
    window: Mapped[str] = mapped_column(String(16), default="day", server_default="day")
    account_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("operator_accounts.id"))
    source: Mapped[str] = mapped_column(String(300))
    # documented (published by the platform), practice, or override (one account's own)
    kind: Mapped[str] = mapped_column(String(16), default="practice", server_default="practice")
    effective_from: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("platform", "scope", "action", "window", "account_id", "effective_from"),
    )


class CapUsage(Base):
    """The caps ledger: how much of a cap an account (or contact) used on a local day.

    Reserved by a conditional upsert before acting; never counted afterwards.
    """

    __tablename__ = "cap_usage"

    subject: Mapped[str] = mapped_column(String(64), primary_key=True)  # "account:3", "contact:9"
    action: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    used: Mapped[int] = mapped_column(default=0, server_default="0")
    cap: Mapped[int]
    # What the latest reservation got: a batch asks for k and may get fewer (set in the same
    # conditional upsert, so the answer is exact under concurrency).
    granted: Mapped[int] = mapped_column(default=0, server_default="0")
    # Pacing: the (jittered) time of the latest reserved action.
    last_at: Mapped[datetime | None]
