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
from crm.core.bulk import stage
from crm.core.db import dialect_insert
from crm.core.errors import InputError
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
    reason: str


def quarantine_fingerprint(*parts: object) -> str:
    """A stable fingerprint so replaying the same bad row does not pile up entries."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8"))
    return digest.hexdigest()


def _fingerprint(row: QuarantineRow) -> str:
    return quarantine_fingerprint(row.origin, row.row_number, row.raw_content, row.reason)


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
            ("fingerprint", "text"),
        ],
        [
            (
                r.source_instance_id,
                r.raw_record_id,
                r.origin,
                r.row_number,
                r.raw_content.replace("\x00", "\\x00"),
                r.reason,
                _fingerprint(r),
            )
            for r in rows
        ],
    )
    session.execute(
        text(
            "INSERT INTO quarantine (source_instance_id, raw_record_id, origin, row_number,"
            " raw_content, reason, fingerprint, created_at)"
            " SELECT source_instance_id, raw_record_id, origin, row_number, raw_content,"
            " substr(reason, 1, 500), fingerprint, :now FROM _q_stage WHERE true " + conflict
        ).bindparams(bindparam("now", type_=UTCDateTime())),
        {"now": now},
    )


def quarantine_one(
    session: Session,
    *,
    origin: str,
    raw_content: str,
    reason: str,
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
        reason=reason[:500],
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
    reason: str
    raw: str  # the first 500 characters
    at: datetime
    resolved_at: datetime | None
    resolution: Resolution | None
    resolution_note: str | None


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
            raw=q.raw_content[:500],
            at=q.created_at,
            resolved_at=q.resolved_at,
            resolution=Resolution(q.resolution) if q.resolution else None,
            resolution_note=q.resolution_note,
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
                resolution_note=f"by {actor}: {note}"[:500],
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
