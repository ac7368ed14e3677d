"""The raw log: items made ready to store, told apart from records already stored, written.

Raw records are append-only and unique on (source instance, record key). An import writes
each new record once, with its outcome, in the transaction that writes what it gave; records
stored as pending (pushed, replayed) are marked with their outcome when resolved.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from crm.core.bulk import allocate_ids, bulk_insert, json_text, rows_source, stage
from crm.core.vocabulary import RecordStatus
from crm.intake.batch import Outcome, PendingRow
from crm.intake.corrections import Candidate, corrections
from crm.intake.prepare import Prepared, prepare
from crm.intake.probes import index_probes, probe_join
from crm.intake.records import NOT_STANDARD_JSON, RawItem, RejectedRow, SourceSpec
from crm.models import UTCDateTime

_KEY_MAX = 300  # raw_records.record_key
_RAW_KEEP = 10_000  # crm.intake.columns.RAW_KEEP: quarantined raw content kept


def strict_json(value: Any) -> str:
    """:func:`crm.core.bulk.json_text`, refusing NaN and Infinity (ValueError): PostgreSQL's
    JSON types reject them and a COPY would lose the whole batch; SQLite would store them as
    JSON no other reader accepts."""
    return json.dumps(
        value, ensure_ascii=False, default=str, separators=(",", ":"), allow_nan=False
    )


@dataclass(frozen=True, slots=True)
class Staged:
    """An item ready to store: its spec, key, NUL-free payload and JSON, and normalized form."""

    item: RawItem
    spec: SourceSpec
    key: str
    payload: dict[str, Any]
    blob: str
    prepared: Prepared


def stage_chunk(
    chunk: Iterable[RawItem | RejectedRow], source: SourceSpec
) -> list[Staged | RejectedRow]:
    """Everything about a chunk that needs no database (runs in the read-ahead thread)."""
    staged: list[Staged | RejectedRow] = []
    for item in chunk:
        if isinstance(item, RejectedRow):
            staged.append(item)
            continue
        spec = item.source or source
        payload = item.payload
        try:
            blob = item.payload_json or strict_json(payload)
            if "\\u0000" in blob:
                # PostgreSQL text and jsonb cannot hold NUL characters; they carry nothing anyway.
                payload = _without_nul(payload)
                blob = strict_json(payload)
        except ValueError:
            raw = json_text(payload)[:_RAW_KEEP]
            staged.append(RejectedRow(item.row_number, raw, NOT_STANDARD_JSON))
            continue
        # Normalized for the spec's platform; resolution checks it against the stored source.
        prepared = prepare(payload, platform=spec.platform, json_size=len(blob))
        staged.append(Staged(item, spec, _key(item.record_key), payload, blob, prepared))
    return staged


def _key(record_key: str) -> str:
    if len(record_key) <= _KEY_MAX:
        return record_key
    return "sha256:" + hashlib.sha256(record_key.encode("utf-8")).hexdigest()


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Keyed:
    """A staged record with its source instance: ``idx`` is its place in the chunk."""

    idx: int
    sid: int
    key: str
    blob: str
    entry: Staged


@dataclass(frozen=True, slots=True)
class RawBlob:
    """What a new raw record stores besides its outcome."""

    source_instance_id: int
    record_key: str
    payload_json: str


@dataclass(slots=True)
class NewRecords:
    """The staged records not yet in the raw log, with raw ids reserved for them.

    ``rereads`` counts quarantined records read again (still quarantined); ``corrects`` maps
    the raw id of each correction (see :mod:`crm.intake.corrections`) to its original's.
    """

    rows: list[PendingRow] = field(default_factory=list)
    rereads: int = 0
    blobs: dict[int, RawBlob] = field(default_factory=dict)
    corrects: dict[int, int] = field(default_factory=dict)


def new_records(session: Session, staged: Sequence[Keyed]) -> NewRecords:
    """Which staged records are new (or correct a quarantined one); reserves their ids.

    The caller holds the contact-graph lock, so no other import stores these keys meanwhile.
    """
    if not staged:
        return NewRecords()
    known = _known(session, staged)
    fresh = [k for k in staged if k.idx not in known]
    by_idx = {k.idx: k for k in staged}
    hits = [
        Candidate(k.idx, k.sid, k.key, k.blob, known[k.idx][1])
        for k in staged
        if k.idx in known and known[k.idx][0] == RecordStatus.QUARANTINED.value
    ]
    bad = 0
    originals: dict[int, int] = {}  # staged index -> the quarantined raw id it corrects
    if hits:
        fixes, bad = corrections(session, hits)
        revised = [Keyed(f.idx, f.sid, f.key, f.blob, by_idx[f.idx].entry) for f in fixes]
        seen = _known(session, revised) if revised else {}
        for fix, keyed in zip(fixes, revised, strict=True):
            if fix.idx in seen:  # this correction was read before
                bad += seen[fix.idx][0] == RecordStatus.QUARANTINED.value
                continue
            fresh.append(keyed)
            originals[fix.idx] = fix.raw_id
    found = NewRecords(rereads=bad)
    for raw_id, k in zip(allocate_ids(session, "raw_records", len(fresh)), fresh, strict=True):
        e = k.entry
        found.rows.append(
            PendingRow(raw_id, k.sid, e.payload, e.item.row_number, len(k.blob), e.prepared)
        )
        found.blobs[raw_id] = RawBlob(k.sid, k.key, k.blob)
        if k.idx in originals:
            found.corrects[raw_id] = originals[k.idx]
    return found


def _known(session: Session, staged: Sequence[Keyed]) -> dict[int, tuple[str, int]]:
    """Staged index -> (status, raw id) of the staged keys already in the raw log."""
    source, params = rows_source(
        session,
        "_raw_stage",
        [("idx", "integer"), ("sid", "bigint"), ("record_key", "text")],
        [(k.idx, k.sid, k.key) for k in staged],
    )
    join = probe_join(
        session,
        "raw_records",
        "r",
        "status, id",
        "r.source_instance_id = s.sid AND r.record_key = s.record_key",
    )
    return {
        int(idx): (status, int(raw_id))
        for idx, status, raw_id in session.execute(
            text(f"SELECT s.idx, r.status, r.id FROM {source}" + join), params
        )
    }


def insert_raw(
    session: Session, outcomes: Sequence[Outcome], blobs: dict[int, RawBlob], now: datetime
) -> None:
    """Write new raw records once, with their outcome (their ids were reserved)."""
    rows = []
    for o in sorted(outcomes, key=lambda o: o.raw_id):
        b = blobs[o.raw_id]
        rows.append(
            (
                o.raw_id,
                b.source_instance_id,
                b.record_key,
                b.payload_json,
                o.status.value,
                o.contact_id,
                now,
                now,
            )
        )
    bulk_insert(
        session,
        "raw_records",
        (
            "id",
            "source_instance_id",
            "record_key",
            "payload",
            "status",
            "contact_id",
            "received_at",
            "processed_at",
        ),
        rows,
    )


def mark_resolved(session: Session, outcomes: Sequence[Outcome], now: datetime) -> None:
    """Give pending raw records their outcome: status, contact, when processed."""
    if not outcomes:
        return
    stage(
        session,
        "_raw_done",
        [("id", "bigint"), ("contact_id", "bigint"), ("status", "text")],
        [(o.raw_id, o.contact_id, o.status.value) for o in outcomes],
    )
    with index_probes(session):
        session.execute(
            text(
                "UPDATE raw_records SET status = d.status, contact_id = d.contact_id,"
                " processed_at = :now FROM _raw_done d WHERE raw_records.id = d.id"
            ).bindparams(bindparam("now", type_=UTCDateTime())),
            {"now": now},
        )
