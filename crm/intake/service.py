"""Ingestion use cases: store raw records (append-only) and resolve them into contacts.

Counting, for every import (``IngestReport``), each item read is exactly one of:

- ``new_contacts``: the record created a contact (the first record of a new person);
- ``matched``: the record joined an existing contact, or a contact created earlier in the same
  import, or it was already in the raw log (a re-import; also counted in
  ``skipped_duplicates``, which is a part of ``matched``);
- ``quarantined``: the row could not be read, or the record has no usable identity or breaks a
  rule (oversized field, unknown event kind); it is in the ``quarantine`` table with a reason.

So ``read == new_contacts + matched + quarantined`` always. A record correcting one that was
quarantined counts as new or matched, and in ``corrected`` (see :mod:`crm.intake.quarantine`).
``merged`` counts contacts folded into another one; ``events`` counts events written.
Contacts known only as a referrer are created without being counted, since no record read
describes them.

Each batch is one transaction: the raw records are inserted as ``pending`` and turned into
contacts, identities, touches and events before the commit that marks them processed, so a
crash loses the uncommitted batch only, and re-running the import redoes exactly that.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from queue import Empty, Full, Queue
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from crm.core.bulk import _json, allocate_ids, bulk_insert, rows_source
from crm.core.db import dialect_insert, transaction
from crm.core.locks import Lock, hold
from crm.core.vocabulary import RecordStatus
from crm.intake.quarantine import (
    Candidate,
    corrections,
    settle_corrections,
    settle_resolved_revisions,
)
from crm.intake.records import IngestReport, RawItem, RejectedRow, SourceSpec, batched
from crm.intake.resolve import (
    PendingRow,
    Prepared,
    prepare,
    probe_join,
    resolve_rows,
    write_quarantine,
)
from crm.models import OperatorAccount, SourceInstance, utcnow

BATCH_SIZE = 20_000
_KEY_MAX = 300


def ensure_source(session: Session, spec: SourceSpec) -> int:
    """The id of the source instance for ``spec`` (kind, key), created on first use."""
    found = session.scalar(
        select(SourceInstance.id).where(
            SourceInstance.kind == spec.kind.value, SourceInstance.key == spec.key[:_KEY_MAX]
        )
    )
    if found is not None:
        return int(found)
    account_id = None
    if spec.operator_handle:
        account_id = _ensure_account(session, spec.operator_handle)
    values = {
        "kind": spec.kind.value,
        "key": spec.key[:_KEY_MAX],
        "name": spec.name[:300],
        "group_name": spec.group_name and spec.group_name[:200],
        "platform": spec.platform and spec.platform[:50],
        "post": spec.post and spec.post[:500],
        "promoter": spec.promoter and spec.promoter[:100],
        "location": spec.location and spec.location[:200],
        "campaign": spec.campaign and spec.campaign[:100],
        "operator_account_id": account_id,
        "referrer_contact_id": spec.referrer_contact_id,
        "extra": dict(spec.extra),
        "created_at": utcnow(),
    }
    stmt = dialect_insert(session, SourceInstance).values(**values).on_conflict_do_nothing()
    session.execute(stmt)
    return int(
        session.scalar(
            select(SourceInstance.id).where(
                SourceInstance.kind == spec.kind.value, SourceInstance.key == spec.key[:_KEY_MAX]
            )
        )
        or 0
    )


def _ensure_account(session: Session, handle: str) -> int:
    handle = handle.strip()[:100]
    stmt = (
        dialect_insert(session, OperatorAccount)
        .values(platform="wechat", handle=handle, created_at=utcnow())
        .on_conflict_do_nothing()
    )
    session.execute(stmt)
    return int(
        session.scalar(
            select(OperatorAccount.id).where(
                OperatorAccount.platform == "wechat", OperatorAccount.handle == handle
            )
        )
        or 0
    )


def _key(record_key: str) -> str:
    if len(record_key) <= _KEY_MAX:
        return record_key
    return "sha256:" + hashlib.sha256(record_key.encode("utf-8")).hexdigest()


def ingest_items(
    engine: Engine,
    source: SourceSpec,
    items: Iterable[RawItem | RejectedRow],
    *,
    origin: str,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
) -> IngestReport:
    """Store items in the raw log and resolve them, a transaction per batch; re-runs add nothing."""
    report = IngestReport()
    chunks = (_stage_chunk(chunk, source) for chunk in batched(_yielding(items), batch_size))
    with contextlib.closing(_read_ahead(chunks)) as ready, _collector_per_batch() as collect:
        for chunk in ready:
            report.add(_ingest_batch(engine, source, chunk, origin=origin, now=now or utcnow()))
            collect()
    return report


def _yielding(items: Iterable[Any], every: int = 32) -> Iterator[Any]:
    """The same items; every few of them the reading thread offers the interpreter lock.

    The writing thread mostly waits on the database with the lock released; when an answer
    arrives it needs the lock back, and a busy reading thread would otherwise keep it for a
    whole switch interval (5 ms) each time, dozens of times per batch.
    """
    for n, item in enumerate(items):
        if n % every == 0:
            time.sleep(0)
        yield item


@contextlib.contextmanager
def _collector_per_batch() -> Iterator[Callable[[], object]]:
    """Automatic garbage collection paused; the caller collects once after each batch.

    A batch allocates hundreds of thousands of small objects (tuples, dicts, records) that
    stay alive until it is written; the collector kept re-scanning them, about 40% of the
    import's CPU. Reference counting frees them; the per-batch pass frees the few cycles.
    """
    if not gc.isenabled():
        yield lambda: None  # the application runs without automatic collection anyway
        return
    gc.disable()
    try:
        yield lambda: gc.collect(1)
    finally:
        gc.enable()


@dataclass(frozen=True, slots=True)
class _Staged:
    """An item ready to store: its spec, key, NUL-free payload and JSON, and normalized form."""

    item: RawItem
    spec: SourceSpec
    key: str
    payload: dict[str, Any]
    blob: str
    prepared: Prepared


def _stage_chunk(
    chunk: list[RawItem | RejectedRow], source: SourceSpec
) -> list[_Staged | RejectedRow]:
    """Everything about a chunk that needs no database (runs in the read-ahead thread)."""
    staged: list[_Staged | RejectedRow] = []
    for item in _yielding(chunk):
        if isinstance(item, RejectedRow):
            staged.append(item)
            continue
        spec = item.source or source
        payload, blob = item.payload, item.payload_json or _json(item.payload)
        if "\\u0000" in blob:
            # PostgreSQL text and jsonb cannot hold NUL characters; they carry nothing anyway.
            payload = _without_nul(payload)
            blob = _json(payload)
        # Normalized for the spec's platform; resolution checks it against the stored source.
        prepared = prepare(payload, platform=spec.platform, json_size=len(blob))
        staged.append(_Staged(item, spec, _key(item.record_key), payload, blob, prepared))
    return staged


def _read_ahead(chunks: Iterator[list[Any]]) -> Generator[list[Any]]:
    """The same chunks, the next one read (parsed, normalized) while this one is written.

    Reading is CPU work in Python and writing mostly waits on the database, so the two overlap.
    At most one chunk waits in the queue: memory stays bounded by the batch size.
    """
    queue: Queue[tuple[str, Any]] = Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        queue.put(("chunk", chunk), timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(("end", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            queue.put(("error", exc))

    reader = threading.Thread(target=produce, name="ingest-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while reader.is_alive():
            with contextlib.suppress(Empty):
                queue.get_nowait()  # unblock a producer waiting to put
            reader.join(timeout=0.1)


def _ingest_batch(
    engine: Engine,
    source: SourceSpec,
    chunk: list[_Staged | RejectedRow],
    *,
    origin: str,
    now: datetime,
) -> IngestReport:
    report = IngestReport(read=len(chunk))
    with transaction(engine, immediate=True) as session:
        hold(session, Lock.CONTACT_GRAPH)
        source_ids: dict[tuple[str, str], int] = {}
        # Adapters hand out a few spec objects shared by many items: look each up once.
        spec_ids: dict[int, int] = {}
        staged: list[tuple[int, int, str, str]] = []
        by_key: dict[tuple[int, str], _Staged] = {}
        rejected: list[RejectedRow] = []
        for n, entry in enumerate(chunk):
            if isinstance(entry, RejectedRow):
                rejected.append(entry)
                continue
            spec = entry.spec
            sid = spec_ids.get(id(spec))
            if sid is None:
                sid = source_ids.get((spec.kind.value, spec.key))
                if sid is None:
                    sid = ensure_source(session, spec)
                    source_ids[(spec.kind.value, spec.key)] = sid
                spec_ids[id(spec)] = sid
            if (sid, entry.key) in by_key:
                continue  # the same record twice in one batch: the raw log keeps one
            by_key[(sid, entry.key)] = entry
            staged.append((n, sid, entry.key, entry.blob))
        if rejected:
            default_sid = ensure_source(session, source)
            write_quarantine(
                session,
                [
                    (default_sid, None, origin, r.row_number, r.raw_content, r.reason)
                    for r in rejected
                ],
                now,
            )
            report.quarantined += len(rejected)
            for r in rejected:
                reason = r.reason.split(" (", 1)[0].split(":", 1)[0]
                report.reasons[reason] = report.reasons.get(reason, 0) + 1
        pending, bad_before, blobs, corrects = _new_records(session, staged, by_key)
        duplicates = len(chunk) - len(rejected) - len(pending)
        report.skipped_duplicates += duplicates
        # A re-read row that was quarantined the first time is still quarantined.
        report.matched += duplicates - bad_before
        report.quarantined += bad_before
        if bad_before:
            report.reasons["already quarantined"] = bad_before

        outcome: dict[int, str] = {}

        def store_raw(status_rows: list[tuple[int, int | None, str]]) -> None:
            # Written once with their outcome, in the transaction that writes what they gave.
            if corrects:
                outcome.update((raw_id, status) for raw_id, _, status in status_rows)
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
                (
                    (raw_id, *blobs[raw_id], status, contact_id, now, now)
                    for raw_id, contact_id, status in sorted(status_rows)
                ),
            )

        report.add(resolve_rows(session, pending, origin=origin, now=now, store_raw=store_raw))
        if corrects:
            rows_of = {p.raw_id: p.row_number for p in pending}
            report.corrected += settle_corrections(
                session,
                [
                    (orig, new, rows_of.get(new), outcome[new] == RecordStatus.PROCESSED.value)
                    for new, orig in corrects.items()
                ],
                origin=origin,
                now=now,
            )
    report.read = len(chunk)
    return report


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def _new_records(
    session: Session,
    staged: list[tuple[int, int, str, str]],
    by_key: dict[tuple[int, str], _Staged],
) -> tuple[list[PendingRow], int, dict[int, tuple[int, str, str]], dict[int, int]]:
    """The staged records not yet in the raw log, with raw ids reserved for them.

    Also how many are quarantined records read again, each new id's (source, key, JSON), and
    for corrections of quarantined records (see :mod:`crm.intake.quarantine`) the new id's
    original. The caller holds the contact-graph lock, so no other import stores these keys
    meanwhile.
    """
    if not staged:
        return [], 0, {}, {}
    entries = {n: by_key[(sid, key)] for n, sid, key, _ in staged}
    known = _known(session, staged)
    fresh = [row for row in staged if row[0] not in known]
    hits = [
        Candidate(n, sid, key, blob, known[n][1])
        for n, sid, key, blob in staged
        if n in known and known[n][0] == RecordStatus.QUARANTINED.value
    ]
    bad = 0
    originals: dict[int, int] = {}  # staged index -> the quarantined raw id it corrects
    if hits:
        fixes, bad = corrections(session, hits)
        seen = _known(session, [(f.idx, f.sid, f.key, f.blob) for f in fixes]) if fixes else {}
        for fix in fixes:
            if fix.idx in seen:  # this correction was read before
                bad += seen[fix.idx][0] == RecordStatus.QUARANTINED.value
                continue
            fresh.append((fix.idx, fix.sid, fix.key, fix.blob))
            originals[fix.idx] = fix.raw_id
    ids = allocate_ids(session, "raw_records", len(fresh))
    rows: list[PendingRow] = []
    blobs: dict[int, tuple[int, str, str]] = {}
    corrects: dict[int, int] = {}
    for raw_id, (idx, sid, key, blob) in zip(ids, fresh, strict=True):
        entry = entries[idx]
        rows.append(
            PendingRow(raw_id, sid, entry.payload, entry.item.row_number, len(blob), entry.prepared)
        )
        blobs[raw_id] = (sid, key, blob)
        if idx in originals:
            corrects[raw_id] = originals[idx]
    return rows, bad, blobs, corrects


def _known(session: Session, staged: list[tuple[int, int, str, str]]) -> dict[int, tuple[str, int]]:
    """Staged index -> (status, raw id) of the staged keys already in the raw log."""
    source, params = rows_source(
        session,
        "_raw_stage",
        [("idx", "integer"), ("sid", "bigint"), ("record_key", "text")],
        [(n, sid, key) for n, sid, key, _ in staged],
    )
    return {
        int(idx): (status, int(raw_id))
        for idx, status, raw_id in session.execute(
            text(
                f"SELECT s.idx, r.status, r.id FROM {source}"
                + probe_join(
                    session,
                    "raw_records",
                    "r",
                    "status, id",
                    "r.source_instance_id = s.sid AND r.record_key = s.record_key",
                )
            ),
            params,
        )
    }


def process_pending(
    engine: Engine,
    now: datetime | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    origin: str = "raw log",
) -> IngestReport:
    """Resolve every raw record still pending (stored by a web form, or replayed), in batches."""
    report = IngestReport()
    while True:
        with transaction(engine, immediate=True) as session:
            hold(session, Lock.CONTACT_GRAPH)
            found = session.execute(
                text(
                    # The status as a literal: the partial index on pending records
                    # serves only a condition the planner can see (SQLite's included).
                    "SELECT id, source_instance_id, payload, record_key FROM raw_records"
                    f" WHERE status = '{RecordStatus.PENDING.value}' ORDER BY id LIMIT :n"
                ),
                {"n": batch_size},
            ).all()
            if not found:
                return report
            rows = [
                PendingRow(int(r.id), int(r.source_instance_id), _payload(r.payload)) for r in found
            ]
            at = now or utcnow()
            batch = resolve_rows(session, rows, origin=origin, now=at)
            batch.corrected += settle_resolved_revisions(
                session, [(int(r.id), r.record_key) for r in found], origin=origin, now=at
            )
        batch.read = len(rows)
        report.add(batch)


def replay(engine: Engine, *, source_instance_id: int | None = None) -> int:
    """Mark processed raw records whose derived rows are gone pending again, so
    :func:`process_pending` derives them anew from the raw log; returns how many.

    Every processed record has its touch (and events); a record with neither lost what it
    gave (a restore, a manual cleanup). Records that still have theirs are left alone: they
    cannot be derived twice (touches and events are unique per raw record).
    """
    with transaction(engine, immediate=True) as session:
        sql = (
            "UPDATE raw_records SET status = 'pending' WHERE status = 'processed'"
            " AND NOT EXISTS (SELECT 1 FROM touches t WHERE t.raw_record_id = raw_records.id)"
            " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.raw_record_id = raw_records.id)"
        )
        params: dict[str, Any] = {}
        if source_instance_id is not None:
            sql += " AND source_instance_id = :sid"
            params["sid"] = source_instance_id
        return int(session.execute(text(sql), params).rowcount or 0)  # type: ignore[attr-defined]


def _payload(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        loaded = json.loads(value)
        return loaded if isinstance(loaded, dict) else {"value": loaded}
    return dict(value or {})


INGEST_KINDS = ("peer-group", "self-media", "events", "qr-signups")


def ingest_path(
    engine: Engine,
    kind: str,
    path: str | Path,
    *,
    group: str | None = None,
    account: str | None = None,
    platform: str | None = None,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
) -> IngestReport:
    """Import one file of a kind (see INGEST_KINDS); a bad file raises InputError."""
    from crm.intake.files import open_adapter

    adapter = open_adapter(kind, Path(path), group=group, account=account, platform=platform)
    return ingest_items(
        engine,
        adapter.source(),
        adapter.items(),
        origin=str(Path(path).resolve()),
        now=now,
        batch_size=batch_size,
    )
