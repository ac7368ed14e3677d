"""The import pipeline: items read ahead in batches, each batch stored and resolved in one
transaction.

Counting, for every import (``IngestReport``), each item read is exactly one of:

- ``new_contacts``: the record created a contact (the first record of a new person);
- ``matched``: the record joined an existing contact, or a contact created earlier in the same
  import, or it was already in the raw log (a re-import; also counted in
  ``skipped_duplicates``, which is a part of ``matched``);
- ``quarantined``: the row could not be read, or the record has no usable identity or breaks a
  rule (oversized field, unknown event kind); it is in the ``quarantine`` table with a reason.

So ``read == new_contacts + matched + quarantined`` always. A record correcting one that was
quarantined counts as new or matched, and in ``corrected`` (see :mod:`crm.intake.corrections`).
``merged`` counts contacts folded into another one; ``events`` counts events written.
Contacts known only as a referrer are created without being counted, since no record read
describes them.

Each batch is one transaction: the raw records are written with their outcome, together with
the contacts, identities, touches and events derived from them, so a crash loses the
uncommitted batch only, and re-running the import redoes exactly that.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from queue import Empty, Full, Queue
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from crm.core.db import transaction
from crm.core.locks import Lock, hold
from crm.core.vocabulary import RecordStatus
from crm.intake.corrections import Attempt, settle_corrections
from crm.intake.quarantine import QuarantineRow, quarantined_before, write_quarantine
from crm.intake.rawlog import Keyed, Staged, insert_raw, new_records, stage_chunk
from crm.intake.reasons import ALREADY_QUARANTINED
from crm.intake.records import IngestReport, RawItem, RejectedRow, SourceSpec, batched
from crm.intake.resolve import place_people, prepare_batch, write_records, write_rejected
from crm.intake.sources import ensure_source
from crm.models import utcnow

BATCH_SIZE = 20_000


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
    chunks = (
        stage_chunk(_yielding(chunk), source) for chunk in batched(_yielding(items), batch_size)
    )
    with contextlib.closing(_read_ahead(chunks)) as ready, _collector_per_batch() as collect:
        for chunk in ready:
            report.add(_ingest_batch(engine, source, chunk, origin=origin, now=now or utcnow()))
            collect()
    return report


def ingest_path(
    engine: Engine,
    kind: str,
    path: str | Path,
    *,
    group: str | None = None,
    account: str | None = None,
    platform: str | None = None,
    peer: bool = False,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
) -> IngestReport:
    """Import one file of a kind (see :data:`crm.intake.files.FILE_KINDS`); a bad file raises
    InputError. ``peer``: the file is one peer group's list (``group``), rows naming another
    group are quarantined."""
    from crm.intake.files import open_adapter

    adapter = open_adapter(
        kind, Path(path), group=group, account=account, platform=platform, peer=peer
    )
    return ingest_items(
        engine,
        adapter.source(),
        adapter.items(),
        origin=str(Path(path).resolve()),
        now=now,
        batch_size=batch_size,
    )


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


@dataclass(slots=True)
class _Sorted:
    """A chunk split into records to store (once per source and key) and unreadable rows."""

    keyed: list[Keyed] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)


def _ingest_batch(
    engine: Engine,
    source: SourceSpec,
    chunk: list[Staged | RejectedRow],
    *,
    origin: str,
    now: datetime,
) -> IngestReport:
    """One batch, one transaction: raw log, resolution phases in order, corrections settled."""
    report = IngestReport()
    with transaction(engine, immediate=True) as session:
        hold(session, Lock.CONTACT_GRAPH)
        parts = _sort_chunk(session, chunk)
        _quarantine_unreadable(session, source, parts.rejected, report, origin=origin, now=now)
        new = new_records(session, parts.keyed)
        duplicates = len(chunk) - len(parts.rejected) - len(new.rows)
        # A re-read row that was quarantined the first time is still quarantined; the rest
        # matched their contact again and add nothing (skipped_duplicates is part of matched).
        report.skipped_duplicates += duplicates - new.rereads
        report.matched += duplicates - new.rereads
        report.quarantined += new.rereads
        if new.rereads:
            report.reasons[ALREADY_QUARANTINED] = new.rereads

        batch = prepare_batch(session, new.rows, now=now)
        place_people(session, batch, now=now)
        outcomes = batch.outcomes()
        insert_raw(session, outcomes, new.blobs, now)  # refers to contacts; referred to below
        write_rejected(session, batch, origin=origin, now=now)
        write_records(session, batch, now=now)
        report.add(batch.report)
        if new.corrects:
            ok = {o.raw_id: o.status == RecordStatus.PROCESSED for o in outcomes}
            rows_of = {p.raw_id: p.row_number for p in new.rows}
            attempts = [
                Attempt(orig, raw_id, rows_of.get(raw_id), ok[raw_id])
                for raw_id, orig in new.corrects.items()
            ]
            report.corrected += settle_corrections(session, attempts, origin=origin, now=now)
    report.read = len(chunk)
    return report


def _sort_chunk(session: Session, chunk: list[Staged | RejectedRow]) -> _Sorted:
    """The chunk's records with their source ids (the same record twice kept once)."""
    parts = _Sorted()
    source_ids: dict[tuple[str, str], int] = {}
    # Adapters hand out a few spec objects shared by many items: look each up once.
    spec_ids: dict[int, int] = {}
    seen: set[tuple[int, str]] = set()
    for n, entry in enumerate(chunk):
        if isinstance(entry, RejectedRow):
            parts.rejected.append(entry)
            continue
        spec = entry.spec
        sid = spec_ids.get(id(spec))
        if sid is None:
            sid = source_ids.get((spec.kind.value, spec.key))
            if sid is None:
                sid = ensure_source(session, spec)
                source_ids[(spec.kind.value, spec.key)] = sid
            spec_ids[id(spec)] = sid
        if (sid, entry.key) in seen:
            continue  # the same record twice in one batch: the raw log keeps one
        seen.add((sid, entry.key))
        parts.keyed.append(Keyed(n, sid, entry.key, entry.blob, entry))
    return parts


def _quarantine_unreadable(
    session: Session,
    source: SourceSpec,
    rejected: list[RejectedRow],
    report: IngestReport,
    *,
    origin: str,
    now: datetime,
) -> None:
    """Quarantine rows that never became raw records, under the batch's default source."""
    if not rejected:
        return
    default_sid = ensure_source(session, source)
    rows = [
        QuarantineRow(default_sid, None, origin, r.row_number, r.raw_content, r.reason)
        for r in rejected
    ]
    known = quarantined_before(session, rows)  # a re-import of the same bad row adds nothing
    write_quarantine(session, rows, now)
    report.quarantined += len(rejected)
    for r, seen in zip(rejected, known, strict=True):
        code = ALREADY_QUARANTINED if seen else r.reason.code
        report.reasons[code] = report.reasons.get(code, 0) + 1
