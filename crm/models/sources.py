"""Where contacts come from: source instances, the append-only raw log, quarantine, QR codes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import Base, BigId, JsonDoc, OptionalJsonDoc, utcnow


class SourceInstance(Base):
    """One concrete source: a peer group, a self-media post, a QR campaign, an API feed."""

    __tablename__ = "source_instances"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    # Natural key within the kind: group name, platform:post id, qr code id, …
    key: Mapped[str] = mapped_column(String(300))
    name: Mapped[str] = mapped_column(String(300))
    group_name: Mapped[str | None] = mapped_column(String(200))
    platform: Mapped[str | None] = mapped_column(String(50))
    post: Mapped[str | None] = mapped_column(String(500))
    promoter: Mapped[str | None] = mapped_column(String(100))
    location: Mapped[str | None] = mapped_column(String(200))
    campaign: Mapped[str | None] = mapped_column(String(100))
    operator_account_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("operator_accounts.id")
    )
    referrer_contact_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("contacts.id"))
    extra: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    # Adapter watermark (a cursor, a last id, a timestamp) so pulls resume where they stopped.
    cursor: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("kind", "key"),)


class RawRecord(Base):
    """A record exactly as a source gave it (append-only); contacts are derived from these."""

    __tablename__ = "raw_records"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_instance_id: Mapped[int] = mapped_column(BigId, ForeignKey("source_instances.id"))
    record_key: Mapped[str] = mapped_column(String(300))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    contact_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("contacts.id"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("source_instance_id", "record_key"),
        # ix_raw_records_pending: a partial index, declared in crm.models.partial_indexes.
    )


class QuarantinedRow(Base):
    """Input that could not be imported, kept with where it came from and why."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source_instance_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("source_instances.id"))
    raw_record_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("raw_records.id"))
    origin: Mapped[str] = mapped_column(String(500))  # file path, endpoint or API call
    row_number: Mapped[int | None]
    raw_content: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(500))  # in English, for logs and SQL readers
    # The reason as a catalog key and its parameters (crm.intake.reasons), for pages in the
    # reader's language; None on rows quarantined before reasons had keys.
    reason_key: Mapped[str | None] = mapped_column(String(40))
    reason_params: Mapped[dict[str, Any] | None] = mapped_column(OptionalJsonDoc)
    # Replays of the same bad row must not pile up: one entry per origin + row fingerprint.
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # For a correction that was quarantined too: the record it tried to correct, so the
    # entries of every attempt close together once one goes through.
    original_raw_record_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("raw_records.id"))
    # The record that corrected it: erasing that record's contact erases this row too.
    corrected_by_raw_record_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("raw_records.id")
    )
    # Open until a corrected record is imported ("corrected"), a later attempt replaces it
    # ("superseded") or an operator lets it go ("dismissed"); the note says by which row, or
    # who and why.
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(String(20))
    resolution_note: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        UniqueConstraint("origin", "fingerprint"),
        Index("ix_quarantine_raw_record_id", "raw_record_id"),
        Index("ix_quarantine_original_raw_record_id", "original_raw_record_id"),
    )


class QrCode(Base):
    """An in-person sign-up code (地推) or a member's personal invite code (裂变)."""

    __tablename__ = "qr_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_id: Mapped[str] = mapped_column(String(32), unique=True)
    promoter: Mapped[str | None] = mapped_column(String(100))
    location: Mapped[str | None] = mapped_column(String(200))
    campaign: Mapped[str | None] = mapped_column(String(100))
    referrer_contact_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("contacts.id"))
    source_instance_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("source_instances.id"))
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
