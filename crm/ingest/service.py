"""Ingestion use cases: store raw records (append-only) and resolve them into contacts.

Counting, for every import (``IngestReport``), each item read is exactly one of:

- ``new_contacts``: the record created a contact (the first record of a new person);
- ``matched``: the record joined an existing contact, or a contact created earlier in the same
  import, or it was already in the raw log (a re-import; also counted in
  ``skipped_duplicates``, which is a part of ``matched``);
- ``quarantined``: the row could not be read, or the record has no usable identity or breaks a
  rule (oversized field, unknown event kind); it is in the ``quarantine`` table with a reason.

So ``read == new_contacts + matched + quarantined`` always. ``merged`` counts contacts folded
into another one; ``events`` counts events written. Contacts known only as a referrer are
created without being counted, since no record read describes them.

Each batch is one transaction: the raw records are inserted as ``pending`` and turned into
contacts, identities, touches and events before the commit that marks them processed, so a
crash loses the uncommitted batch only, and re-running the import redoes exactly that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, bindparam, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from crm.db import is_postgres, transaction
from crm.domain import RecordStatus
from crm.ingest.bulk import _json, stage
from crm.ingest.records import IngestReport, RawItem, RejectedRow, SourceSpec, batched
from crm.ingest.resolve import (
    PendingRow,
    lock_for_resolution,
    resolve_rows,
    write_quarantine,
)
from crm.models import OperatorAccount, QuarantinedRow, SourceInstance, UTCDateTime, utcnow

BATCH_SIZE = 5000
_KEY_MAX = 300


def _insert(session: Session) -> Any:
    return pg_insert if is_postgres(session) else sqlite_insert


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
    stmt = _insert(session)(SourceInstance).values(**values).on_conflict_do_nothing()
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
        _insert(session)(OperatorAccount)
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
    for chunk in batched(items, batch_size):
        report.add(_ingest_batch(engine, source, chunk, origin=origin, now=now or utcnow()))
    return report


def _ingest_batch(
    engine: Engine,
    source: SourceSpec,
    chunk: list[RawItem | RejectedRow],
    *,
    origin: str,
    now: datetime,
) -> IngestReport:
    report = IngestReport(read=len(chunk))
    with transaction(engine, immediate=True) as session:
        lock_for_resolution(session)
        source_ids: dict[tuple[str, str], int] = {}
        staged: list[tuple[int, int, str, str]] = []
        by_key: dict[tuple[int, str], RawItem] = {}
        rejected: list[RejectedRow] = []
        for n, item in enumerate(chunk):
            if isinstance(item, RejectedRow):
                rejected.append(item)
                continue
            spec = item.source or source
            sid = source_ids.get((spec.kind.value, spec.key))
            if sid is None:
                sid = ensure_source(session, spec)
                source_ids[(spec.kind.value, spec.key)] = sid
            key = _key(item.record_key)
            if (sid, key) in by_key:
                continue  # the same record twice in one batch: the raw log keeps one
            by_key[(sid, key)] = item
            # PostgreSQL text and jsonb cannot hold NUL characters; they carry nothing anyway.
            staged.append((n, sid, key, _json(item.payload).replace("\\u0000", "")))
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
        pending = _insert_raw(session, staged, by_key, now)
        duplicates = len(chunk) - len(rejected) - len(pending)
        # A re-read row that was quarantined the first time is still quarantined.
        bad_before = _already_quarantined(session) if duplicates and staged else 0
        report.skipped_duplicates += duplicates
        report.matched += duplicates - bad_before
        report.quarantined += bad_before
        if bad_before:
            report.reasons["already quarantined"] = bad_before
        report.add(resolve_rows(session, pending, origin=origin, now=now))
    report.read = len(chunk)
    return report


def _insert_raw(
    session: Session,
    staged: list[tuple[int, int, str, str]],
    by_key: dict[tuple[int, str], RawItem],
    now: datetime,
) -> list[PendingRow]:
    if not staged:
        return []
    stage(
        session,
        "_raw_stage",
        [("idx", "integer"), ("sid", "bigint"), ("record_key", "text"), ("payload", "text")],
        staged,
    )
    payload = "CAST(payload AS jsonb)" if is_postgres(session) else "payload"
    result = session.execute(
        text(
            "INSERT INTO raw_records (source_instance_id, record_key, payload, status, received_at)"
            f" SELECT sid, record_key, {payload}, 'pending', :now FROM _raw_stage WHERE true"
            " ORDER BY idx"
            " ON CONFLICT (source_instance_id, record_key) DO NOTHING"
            " RETURNING id, source_instance_id, record_key"
        ).bindparams(bindparam("now", type_=UTCDateTime())),
        {"now": now},
    )
    rows = []
    for raw_id, sid, key in result:
        item = by_key[(int(sid), key)]
        rows.append(PendingRow(int(raw_id), int(sid), item.payload, item.row_number))
    rows.sort(key=lambda r: r.raw_id)
    return rows


def _already_quarantined(session: Session) -> int:
    return int(
        session.execute(
            text(
                "SELECT COUNT(*) FROM _raw_stage s JOIN raw_records r"
                " ON r.source_instance_id = s.sid AND r.record_key = s.record_key"
                " WHERE r.status = :q"
            ),
            {"q": RecordStatus.QUARANTINED.value},
        ).scalar_one()
    )


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
            lock_for_resolution(session)
            rows = [
                PendingRow(int(r.id), int(r.source_instance_id), _payload(r.payload))
                for r in session.execute(
                    text(
                        "SELECT id, source_instance_id, payload FROM raw_records"
                        " WHERE status = :s ORDER BY id LIMIT :n"
                    ),
                    {"s": RecordStatus.PENDING.value, "n": batch_size},
                )
            ]
            if not rows:
                return report
            batch = resolve_rows(session, rows, origin=origin, now=now or utcnow())
        batch.read = len(rows)
        report.add(batch)


def replay(engine: Engine, *, source_instance_id: int | None = None) -> int:
    """Mark raw records pending again so :func:`process_pending` re-derives from them.

    Derived rows are unique per raw record, so a replay adds only what is missing.
    """
    with transaction(engine, immediate=True) as session:
        sql = "UPDATE raw_records SET status = 'pending' WHERE status = 'processed'"
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


def list_quarantine(session: Session, *, limit: int = 50) -> list[dict[str, Any]]:
    """The newest quarantined rows with where they came from and why."""
    rows = session.scalars(
        select(QuarantinedRow).order_by(QuarantinedRow.id.desc()).limit(limit)
    ).all()
    return [
        {
            "id": q.id,
            "origin": q.origin,
            "row": q.row_number,
            "reason": q.reason,
            "raw": q.raw_content[:500],
            "at": q.created_at,
        }
        for q in rows
    ]


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
    from crm.ingest.files import open_adapter

    adapter = open_adapter(kind, Path(path), group=group, account=account, platform=platform)
    return ingest_items(
        engine,
        adapter.source(),
        adapter.items(),
        origin=str(Path(path).resolve()),
        now=now,
        batch_size=batch_size,
    )
