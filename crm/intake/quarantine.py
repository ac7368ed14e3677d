"""The quarantine: input we could not accept, kept with why; listing it and letting rows go.

Entries close as ``corrected`` when a fixed record goes through (see
:mod:`crm.intake.corrections`), as ``superseded`` when a later attempt replaces them, or as
``dismissed`` when an operator says nobody will fix them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, or_, select, text, update
from sqlalchemy.orm import Session

from crm.core.audit import audit
from crm.core.bulk import json_text, stage
from crm.core.db import dialect_insert, is_postgres
from crm.core.errors import InputError
from crm.intake.reasons import Why
from crm.models import QuarantinedRow, UTCDateTime, utcnow


class Resolution(StrEnum):
    """How a quarantine entry was closed (``quarantine.resolution``)."""

    CORRECTED = "corrected"
    DISMISSED = "dismissed"
    SUPERSEDED = "superseded"


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    """A row to quarantine: where it came from, its raw content, and why."""

    source_instance_id: int | None
    raw_record_id: int | None
    origin: str
    row_number: int | None
    raw_content: str
    reason: Why


def quarantine_fingerprint(*parts: object) -> str:
    """A stable fingerprint so replaying the same bad row does not pile up entries."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8"))
    return digest.hexdigest()


def _fingerprint(row: QuarantineRow) -> str:
    # The English sentence names the entry, as it did before reasons had keys.
    return quarantine_fingerprint(row.origin, row.row_number, row.raw_content, row.reason.text)


def quarantined_before(session: Session, rows: Sequence[QuarantineRow]) -> list[bool]:
    """For each row, whether the same row (origin and fingerprint) is already quarantined."""
    prints = [_fingerprint(r) for r in rows]
    origins = {r.origin for r in rows}
    found = set(
        session.execute(
            select(QuarantinedRow.origin, QuarantinedRow.fingerprint).where(
                QuarantinedRow.origin.in_(origins), QuarantinedRow.fingerprint.in_(set(prints))
            )
        ).tuples()
    )
    return [(r.origin, p) in found for r, p in zip(rows, prints, strict=True)]


def write_quarantine(session: Session, rows: Sequence[QuarantineRow], now: datetime) -> None:
    """Quarantine rows in one statement, each once (by origin and fingerprint)."""
    if not rows:
        return
    conflict = "ON CONFLICT (origin, fingerprint) DO NOTHING"
    stage(
        session,
        "_q_stage",
        [
            ("source_instance_id", "bigint"),
            ("raw_record_id", "bigint"),
            ("origin", "text"),
            ("row_number", "integer"),
            ("raw_content", "text"),
            ("reason", "text"),
            ("reason_key", "text"),
            ("reason_params", "text"),
            ("fingerprint", "text"),
        ],
        [
            (
                r.source_instance_id,
                r.raw_record_id,
                r.origin,
                r.row_number,
                r.raw_content.replace("\x00", "\\x00"),
                r.reason.text,
                r.reason.key.value,
                json_text(r.reason.stored_params),
                _fingerprint(r),
            )
            for r in rows
        ],
    )
    params = "CAST(reason_params AS jsonb)" if is_postgres(session) else "reason_params"
    session.execute(
        text(
            "INSERT INTO quarantine (source_instance_id, raw_record_id, origin, row_number,"
            " raw_content, reason, reason_key, reason_params, fingerprint, created_at)"
            " SELECT source_instance_id, raw_record_id, origin, row_number, raw_content,"
            f" substr(reason, 1, 500), reason_key, {params}, fingerprint, :now"
            " FROM _q_stage WHERE true " + conflict
        ).bindparams(bindparam("now", type_=UTCDateTime())),
        {"now": now},
    )


def quarantine_one(
    session: Session,
    *,
    origin: str,
    raw_content: str,
    reason: Why,
    source_id: int | None = None,
    row_number: int | None = None,
    now: datetime | None = None,
) -> None:
    """Keep one input we could not accept (a pushed object); the same twice is kept once."""
    fingerprint = hashlib.sha256(f"{row_number}\x00{raw_content}".encode()).hexdigest()
    stmt = dialect_insert(session, QuarantinedRow).values(
        source_instance_id=source_id,
        origin=origin,
        row_number=row_number,
        raw_content=raw_content,
        reason=reason.text[:500],
        reason_key=reason.key.value,
        reason_params=reason.stored_params,
        fingerprint=fingerprint,
        created_at=now or utcnow(),
    )
    session.execute(stmt.on_conflict_do_nothing(index_elements=["origin", "fingerprint"]))


def corrected_versions(raw_ids: Select[Any]) -> Select[Any]:
    """Raw ids of the quarantined versions of records that ``raw_ids`` corrected.

    They hold the same personal data but were never linked to a contact, so erasing the
    contact must reach them through the correction.
    """
    q = QuarantinedRow
    firsts = select(func.coalesce(q.original_raw_record_id, q.raw_record_id)).where(
        q.corrected_by_raw_record_id.in_(raw_ids)
    )
    return select(q.raw_record_id).where(
        q.raw_record_id.is_not(None),
        or_(q.raw_record_id.in_(firsts), q.original_raw_record_id.in_(firsts)),
    )


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """One quarantined row as listed: where from, which row, why, the raw text, its closing."""

    id: int
    origin: str
    row: int | None
    reason: str  # the English sentence
    reason_key: str | None  # its catalog key (None for rows quarantined before reasons had keys)
    reason_params: dict[str, Any] | None
    raw: str  # the first 500 characters
    at: datetime
    resolved_at: datetime | None
    resolution: Resolution | None
    resolution_note: str | None  # dismissed: "who: what they typed"; else an English sentence
    corrected_by: int | None  # the raw record whose import corrected this row


def list_quarantine(
    session: Session,
    *,
    limit: int = 50,
    include_resolved: bool = False,
    origin: str | None = None,
) -> list[QuarantineEntry]:
    """The newest quarantined rows (open ones unless ``include_resolved``), and why."""
    stmt = select(QuarantinedRow).order_by(QuarantinedRow.id.desc()).limit(limit)
    if not include_resolved:
        stmt = stmt.where(QuarantinedRow.resolved_at.is_(None))
    if origin:
        stmt = stmt.where(QuarantinedRow.origin.contains(origin, autoescape=True))
    return [
        QuarantineEntry(
            id=q.id,
            origin=q.origin,
            row=q.row_number,
            reason=q.reason,
            reason_key=q.reason_key,
            reason_params=q.reason_params,
            raw=q.raw_content[:500],
            at=q.created_at,
            resolved_at=q.resolved_at,
            resolution=Resolution(q.resolution) if q.resolution else None,
            resolution_note=q.resolution_note,
            corrected_by=q.corrected_by_raw_record_id,
        )
        for q in session.scalars(stmt)
    ]


def open_count(session: Session) -> int:
    """Quarantined rows nobody has corrected or dismissed yet."""
    stmt = select(func.count()).where(QuarantinedRow.resolved_at.is_(None))
    return int(session.scalar(stmt) or 0)


@dataclass(frozen=True, slots=True)
class Dismissed:
    """The entries a dismissal closed."""

    ids: tuple[int, ...]

    @property
    def count(self) -> int:
        """How many entries were closed."""
        return len(self.ids)


def dismiss(
    session: Session,
    ids: Sequence[int] = (),
    *,
    origin: str | None = None,
    actor: str,
    note: str,
    now: datetime | None = None,
) -> Dismissed:
    """Close open entries nobody will correct (by id, or every open one from ``origin``).

    Ids that do not exist are refused; ids already closed are left as they are.
    """
    note = note.strip()
    if not note:
        raise InputError("error.intake.dismiss_no_note")
    if not ids and not origin:
        raise InputError("error.intake.dismiss_no_rows")
    if ids:
        found = set(
            session.scalars(select(QuarantinedRow.id).where(QuarantinedRow.id.in_(list(ids))))
        )
        missing = sorted(set(ids) - found)
        if missing:
            raise InputError("error.intake.dismiss_missing", ids=", ".join(map(str, missing)))
    now = now or utcnow()
    chosen: list[ColumnElement[bool]] = []
    if ids:
        chosen.append(QuarantinedRow.id.in_(list(ids)))
    if origin:
        chosen.append(QuarantinedRow.origin.contains(origin, autoescape=True))
    closed = sorted(
        session.scalars(
            update(QuarantinedRow)
            .where(QuarantinedRow.resolved_at.is_(None), or_(*chosen))
            .values(
                resolved_at=now,
                resolution=Resolution.DISMISSED.value,
                resolution_note=f"{actor}: {note}"[:500],  # no English: pages show it as stored
            )
            .returning(QuarantinedRow.id)
            .execution_options(synchronize_session=False)
        )
    )
    if closed:
        audit(
            session,
            actor,
            "quarantine.dismiss",
            object_type="quarantine",
            details={"ids": closed[:1000], "count": len(closed), "note": note[:200]},
            at=now,
        )
    return Dismissed(tuple(closed))
