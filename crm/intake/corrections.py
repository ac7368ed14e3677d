"""Corrections of quarantined records: telling a fix from a re-read, and closing the entries.

A row quarantined after its raw record was stored keeps that record's key, often a natural
id such as ``event_id``; re-importing the row with the mistake fixed would then be skipped as
already seen, and the fix could never get in. So a record whose stored version was quarantined
and whose content differs is a *correction*: it is stored under a revision key (the key plus a
hash of its content) and resolved like any new record; once it goes through, the original's
quarantine entry is closed as ``corrected``. Re-reading the original bad row, or the same
correction, adds nothing. After a correction went through, later versions are skipped like any
re-export of a processed record (the first good version wins, as everywhere in ingestion).
Imports settle their corrections in the batch that resolves them; objects pushed to the
webhooks are stored pending and settled when the pending records are resolved.

A record without an id of its own is keyed by its content, and a row rejected before a raw
record existed (an unreadable line) has no key at all: the fixed form of either is simply a
new record, and the old entry is closed by :func:`crm.intake.quarantine.dismiss`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, select, text
from sqlalchemy.orm import Session

from crm.core.bulk import stage
from crm.core.vocabulary import RecordStatus
from crm.intake.quarantine import Resolution
from crm.models import QuarantinedRow, UTCDateTime

CORRECTED, DISMISSED, SUPERSEDED = (
    Resolution.CORRECTED.value,
    Resolution.DISMISSED.value,
    Resolution.SUPERSEDED.value,
)
_KEY_MAX = 300  # raw_records.record_key
_IN_CHUNK = 5_000  # ids per IN list (SQLite's bound-parameter limit)


@dataclass(frozen=True, slots=True)
class Attempt:
    """A correction that was resolved: its original, its own raw id and row, and whether it
    went through (processed) or was quarantined again."""

    original_raw_id: int
    raw_id: int
    row_number: int | None
    ok: bool


_REVISION = re.compile(r"~[0-9a-f]{16}$")


def revision_key(key: str, blob: str) -> str:
    """The key a correction is stored under: the record's key and a hash of its content."""
    digest = hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
    return f"{key[: _KEY_MAX - 17]}~{digest}"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A staged record whose key is stored, as quarantined, under ``raw_id``."""

    idx: int
    sid: int
    key: str
    blob: str  # its JSON, without the ``ignore`` fields
    raw_id: int
    ignore: tuple[str, ...] = ()  # fields we filled in ourselves: not compared, not hashed


def corrections(session: Session, hits: Sequence[Candidate]) -> tuple[list[Candidate], int]:
    """Which of ``hits`` correct their quarantined record: (the corrections, how many are the
    same bad row read again). The rest repeat a record that was corrected already."""
    raw_ids = sorted({h.raw_id for h in hits})
    stored: dict[int, Any] = {}
    closed: set[int] = set()
    for chunk in _chunks(raw_ids):
        for raw_id, payload in session.execute(
            text("SELECT id, payload FROM raw_records WHERE id IN :ids").bindparams(
                bindparam("ids", expanding=True)
            ),
            {"ids": chunk},
        ):
            stored[int(raw_id)] = json.loads(payload) if isinstance(payload, str) else payload
        # A record is corrected once any entry of its family closed as corrected.
        for raw_id, first_id in session.execute(
            select(QuarantinedRow.raw_record_id, QuarantinedRow.original_raw_record_id).where(
                or_(
                    QuarantinedRow.raw_record_id.in_(chunk),
                    QuarantinedRow.original_raw_record_id.in_(chunk),
                ),
                QuarantinedRow.resolution == CORRECTED,
            )
        ):
            closed.add(first_id if first_id is not None else raw_id)
    fixes: list[Candidate] = []
    same = 0
    for hit in hits:
        if json.loads(hit.blob) == _without(stored.get(hit.raw_id), hit.ignore):
            same += 1
        elif hit.raw_id not in closed:
            fixes.append(
                Candidate(hit.idx, hit.sid, revision_key(hit.key, hit.blob), hit.blob, hit.raw_id)
            )
    return fixes, same


def _without(payload: Any, fields: tuple[str, ...]) -> Any:
    if not fields or not isinstance(payload, dict):
        return payload
    return {k: v for k, v in payload.items() if k not in fields}


def settle_corrections(
    session: Session,
    attempts: Sequence[Attempt],
    *,
    origin: str,
    now: datetime,
) -> int:
    """Update the quarantine after corrections were resolved; returns how many went through.

    One that went through closes every open (or dismissed) entry of its record as
    ``corrected``; one quarantined again keeps only its own entry open (linked to the
    original), the older attempts' are ``superseded``. Three set-based statements per batch.
    """
    if not attempts:
        return 0
    stage(
        session,
        "_q_fix",
        [("orig", "bigint"), ("new", "bigint"), ("ok", "integer"), ("note", "text")],
        [
            (
                a.original_raw_id,
                a.raw_id,
                int(a.ok),
                _note("by" if a.ok else "replaced by", origin, a.raw_id, a.row_number),
            )
            for a in attempts
        ],
    )

    # The entries of each staged record's family, as (entry id, staged row): two equality
    # joins, each through an index (an OR inside one join condition is a nested loop).
    def family(ok: int) -> str:
        return f"""(SELECT q.id AS qid, f.new, f.note FROM _q_fix f
                     JOIN quarantine q ON q.raw_record_id = f.orig WHERE f.ok = {ok}
                    UNION ALL
                    SELECT q.id, f.new, f.note FROM _q_fix f
                     JOIN quarantine q ON q.original_raw_record_id = f.orig WHERE f.ok = {ok})"""

    statements = (
        # A dismissed entry was given up on, yet here is its fix: it counts as corrected.
        f"""UPDATE quarantine SET resolved_at = :now, resolution = '{CORRECTED}',
              resolution_note = m.note, corrected_by_raw_record_id = m.new
            FROM {family(1)} m WHERE quarantine.id = m.qid
              AND (quarantine.resolved_at IS NULL OR quarantine.resolution = '{DISMISSED}')""",
        """UPDATE quarantine SET original_raw_record_id = f.orig
            FROM _q_fix f WHERE f.ok = 0 AND quarantine.raw_record_id = f.new""",
        f"""UPDATE quarantine SET resolved_at = :now, resolution = '{SUPERSEDED}',
              resolution_note = m.note
            FROM {family(0)} m WHERE quarantine.id = m.qid
              AND quarantine.resolved_at IS NULL AND quarantine.raw_record_id <> m.new""",
    )
    for sql in statements:
        if ":now" in sql:
            session.execute(
                text(sql).bindparams(bindparam("now", type_=UTCDateTime())), {"now": now}
            )
        else:
            session.execute(text(sql))
    return sum(1 for a in attempts if a.ok)


def settle_resolved_revisions(
    session: Session, raw_ids: Sequence[tuple[int, str]], *, origin: str, now: datetime
) -> int:
    """:func:`settle_corrections` for raw records resolved after being stored as pending.

    ``raw_ids``: (raw id, record key) of the records just resolved; the corrections among
    them carry a revision key, and their original is the quarantined record under the key
    without it.
    """
    revisions = [rid for rid, key in raw_ids if _REVISION.search(key)]
    attempts: list[Attempt] = []
    for chunk in _chunks(revisions):
        found = session.execute(
            text(
                "SELECT o.id, r.id, r.status FROM raw_records r JOIN raw_records o"
                " ON o.source_instance_id = r.source_instance_id"
                " AND o.record_key = substr(r.record_key, 1, length(r.record_key) - 17)"
                f" AND o.status = '{RecordStatus.QUARANTINED.value}' WHERE r.id IN :ids"
                # Replaying the raw log resolves corrections again: their entries are closed.
                " AND EXISTS (SELECT 1 FROM quarantine q"
                "  WHERE (q.raw_record_id = o.id OR q.original_raw_record_id = o.id)"
                f"  AND (q.resolved_at IS NULL OR q.resolution = '{DISMISSED}'))"
            ).bindparams(bindparam("ids", expanding=True)),
            {"ids": chunk},
        )
        attempts += [
            Attempt(int(o), int(r), None, status == RecordStatus.PROCESSED.value)
            for o, r, status in found
        ]
    return settle_corrections(session, attempts, origin=origin, now=now)


def _note(verb: str, origin: str, raw_id: int, row: int | None) -> str:
    where = f"row {row} of {origin}" if row is not None else origin
    return f"{verb} {where} (raw record {raw_id})"[:500]


def _chunks(values: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]
