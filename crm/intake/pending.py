"""Pending raw records (pushed by web forms and webhooks, or replayed) resolved in batches."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text

from crm.core.db import transaction
from crm.core.locks import Lock, hold
from crm.core.vocabulary import RecordStatus
from crm.intake.batch import PendingRow
from crm.intake.corrections import settle_resolved_revisions
from crm.intake.pipeline import BATCH_SIZE
from crm.intake.rawlog import mark_resolved
from crm.intake.records import IngestReport
from crm.intake.resolve import place_people, prepare_batch, write_records, write_rejected
from crm.models import utcnow


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
            batch = prepare_batch(session, rows, now=at)
            place_people(session, batch, now=at)
            mark_resolved(session, batch.outcomes(), at)
            write_rejected(session, batch, origin=origin, now=at)
            write_records(session, batch, now=at)
            batch.report.corrected += settle_resolved_revisions(
                session, [(int(r.id), r.record_key) for r in found], origin=origin, now=at
            )
        batch.report.read = len(rows)
        report.add(batch.report)


def replay(engine: Engine, *, source_instance_id: int | None = None) -> int:
    """Mark processed raw records whose derived rows are gone pending again, so
    :func:`process_pending` derives them anew from the raw log; returns how many.

    Every processed record has its touch (and events); a record with neither lost what it
    gave (a restore, a manual cleanup). Records that still have theirs are left alone: they
    cannot be derived twice (touches and events are unique per raw record).
    """
    with transaction(engine, immediate=True) as session:
        sql = (
            f"UPDATE raw_records SET status = '{RecordStatus.PENDING.value}'"
            f" WHERE status = '{RecordStatus.PROCESSED.value}'"
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
