"""Identity resolution: the phases that turn a batch of raw records into contacts.

A batch is resolved inside the caller's transaction, which holds the contact-graph lock
(:mod:`crm.core.locks`), so a raw record leaves ``pending`` in the same commit that writes
what was derived from it. The caller runs the phases in this order:

1. :func:`prepare_batch`: each record normalized (:mod:`crm.intake.prepare`); a record with no
   usable identity, or with an oversized field, is to be quarantined.
2. :func:`place_people`: the batch's identities looked up in one set-based join, the records
   grouped into people (:mod:`crm.intake.people`), contacts proven to be one person merged
   (:mod:`crm.intake.merge`), and the new contacts created (ids reserved up front).
3. The raw records stored or marked with their outcome (:meth:`Batch.outcomes`, see
   :mod:`crm.intake.rawlog`): they refer to the contacts, and everything below refers to them.
4. :func:`write_rejected`: the quarantine entries of the records that could not be resolved.
5. :func:`write_records`: existing contacts widened, then identities, touches (one per
   record), events (one per record and kind) and consents, all bulk-inserted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from crm.core.bulk import allocate_ids, bulk_insert, json_text, rows_source, stage
from crm.core.db import is_postgres
from crm.core.vocabulary import ContactStatus
from crm.intake.batch import (
    Batch,
    ContactUpdate,
    PendingRow,
    Record,
    Rejected,
    SourceInfo,
    communities_named,
    contact_updates,
    events_and_consents,
    new_contacts,
    new_identities,
)
from crm.intake.merge import merge_contacts
from crm.intake.people import group_people
from crm.intake.prepare import Key, prepare
from crm.intake.probes import index_probes, probe_join
from crm.intake.quarantine import QuarantineRow, write_quarantine
from crm.models import UTCDateTime

_CONTACT_COLUMNS = (
    "id",
    "display_name",
    "status",
    "score",
    "score_breakdown",
    "locale",
    "warnings",
    "first_seen_at",
    "last_active_at",
    "referred_by_id",
    "created_at",
    "updated_at",
)
_EVENT_COLUMNS = (
    "contact_id",
    "kind",
    "occurred_at",
    "community_id",
    "source_instance_id",
    "raw_record_id",
    "related_contact_id",
    "payload",
    "created_at",
)
_CONSENT_COLUMNS = (
    "contact_id",
    "kind",
    "channel",
    "purpose",
    "source",
    "evidence",
    "recorded_at",
)


def prepare_batch(session: Session, rows: Sequence[PendingRow], *, now: datetime) -> Batch:
    """Phase 1: each row normalized for its source's platform, or set aside with a reason."""
    sources = _source_info(session, {r.source_instance_id for r in rows}) if rows else {}
    records: list[Record] = []
    rejected: list[Rejected] = []
    for row in rows:
        info = sources.get(row.source_instance_id)
        platform = info.platform if info is not None else None
        prep = row.prepared
        if prep is None or prep.platform != platform:
            # Prepared ahead for the spec's platform; the stored source's is what counts.
            prep = prepare(row.payload, platform=platform, json_size=row.json_size)
        if prep.rejection is not None:
            rejected.append(Rejected(row, prep.rejection))
            continue
        records.append(Record(row, prep, prep.occurred_at or now))
    return Batch(sources, records, rejected)


def _source_info(session: Session, ids: set[int]) -> dict[int, SourceInfo]:
    result = session.execute(
        text(
            "SELECT id, kind, platform, referrer_contact_id FROM source_instances WHERE id IN :ids"
        ).bindparams(bindparam("ids", expanding=True)),
        {"ids": sorted(ids)},
    )
    return {int(r.id): SourceInfo(r.kind, r.platform, r.referrer_contact_id) for r in result}


def place_people(session: Session, batch: Batch, *, now: datetime) -> None:
    """Phase 2: who each record is; merges the contacts it proves one, creates the new ones."""
    if not batch.records:
        return
    batch.known = _known_identities(session, batch)
    people = group_people(batch.members(), batch.known)
    if people.merges:
        merge_contacts(session, people.merges, now=now, actor="ingest")
        batch.report.merged += len(people.merges)
    batch.place(people, allocate_ids(session, "contacts", people.new_count))
    active = ContactStatus.ACTIVE.value
    bulk_insert(
        session,
        "contacts",
        _CONTACT_COLUMNS,
        (
            (
                c.id,
                c.name,
                active,
                0,
                "[]",
                "zh-CN",
                0,
                c.first_seen,
                c.last_seen,
                c.referrer,
                now,
                now,
            )
            for c in new_contacts(batch)
        ),
    )


def _known_identities(session: Session, batch: Batch) -> dict[Key, int]:
    """The contact of each of the batch's identities already stored, keyed as stored.

    Flagged (non-matchable) ones are looked up too, so the new ones can be appended without
    ON CONFLICT: the caller holds the contact-graph lock, nothing else writes them.
    """
    wanted = {key for r in batch.records for key, _ in (*r.prep.stored, *r.prep.ref_stored)}
    source, params = rows_source(
        session, "_id_stage", [("kind", "text"), ("value", "text")], wanted
    )
    join = probe_join(
        session, "identities", "i", "contact_id", "i.kind = s.kind AND i.value = s.value"
    )
    return {
        (r[0], r[1]): int(r[2])
        for r in session.execute(
            text(f"SELECT s.kind, s.value, i.contact_id FROM {source}" + join), params
        )
    }


def write_rejected(session: Session, batch: Batch, *, origin: str, now: datetime) -> None:
    """Phase 4: quarantine the records that could not be resolved (their raw records exist)."""
    if not batch.rejected:
        return
    write_quarantine(
        session,
        [
            QuarantineRow(
                q.row.source_instance_id,
                q.row.raw_id,
                origin,
                q.row.row_number,
                json_text(q.row.payload),
                q.reason,
            )
            for q in batch.rejected
        ],
        now,
    )
    batch.count_rejected()


def write_records(session: Session, batch: Batch, *, now: datetime) -> None:
    """Phase 5: what the records add to existing contacts, then identities, touches, events."""
    if not batch.records:
        return
    updates = contact_updates(batch)
    if updates:
        _update_contacts(session, updates, now)
    bulk_insert(
        session,
        "identities",
        ("contact_id", "kind", "value", "flags", "created_at"),
        [(i.contact_id, *i.key, i.flags, now) for i in new_identities(batch)],
    )
    bulk_insert(
        session,
        "touches",
        ("contact_id", "source_instance_id", "raw_record_id", "touched_at"),
        (
            (r.contact_id, r.row.source_instance_id, r.row.raw_id, r.occurred_at)
            for r in batch.records
        ),
    )
    _write_events(session, batch, now)


def _update_contacts(session: Session, updates: list[ContactUpdate], now: datetime) -> None:
    least = "least" if is_postgres(session) else "min"
    greatest = "greatest" if is_postgres(session) else "max"
    stage(
        session,
        "_contact_upd",
        [
            ("id", "bigint"),
            ("first_seen", "timestamptz"),
            ("last_seen", "timestamptz"),
            ("name", "text"),
            ("referrer", "bigint"),
        ],
        ((u.id, u.first_seen, u.last_seen, u.name, u.referrer) for u in updates),
    )
    sql = (
        "UPDATE contacts SET"
        f" first_seen_at = {least}(contacts.first_seen_at, u.first_seen),"
        f" last_active_at = COALESCE({greatest}(contacts.last_active_at, u.last_seen),"
        " u.last_seen),"
        " display_name = COALESCE(contacts.display_name, u.name),"
        " referred_by_id = COALESCE(contacts.referred_by_id,"
        " CASE WHEN u.referrer <> contacts.id THEN u.referrer END),"
        " updated_at = :now"
        " FROM _contact_upd u WHERE contacts.id = u.id"
    )
    with index_probes(session):
        session.execute(text(sql).bindparams(bindparam("now", type_=UTCDateTime())), {"now": now})


def _write_events(session: Session, batch: Batch, now: datetime) -> None:
    names = communities_named(batch)
    communities: dict[str, int] = {}
    if names:
        for r in session.execute(
            text("SELECT name, MIN(id) FROM communities WHERE name IN :n GROUP BY name").bindparams(
                bindparam("n", expanding=True)
            ),
            {"n": sorted(names)},
        ):
            communities[r[0]] = int(r[1])
    events, consents = events_and_consents(batch, communities)
    batch.report.events += len(events)
    bulk_insert(
        session,
        "events",
        _EVENT_COLUMNS,
        [
            (
                e.contact_id,
                e.kind,
                e.occurred_at,
                e.community_id,
                e.source_instance_id,
                e.raw_record_id,
                e.related_contact_id,
                e.details,
                now,
            )
            for e in events
        ],
    )
    bulk_insert(
        session,
        "consents",
        _CONSENT_COLUMNS,
        [
            (
                c.contact_id,
                c.kind.value,
                c.channel,
                "marketing",
                c.source,
                {"raw_record_id": c.raw_record_id},
                c.recorded_at,
            )
            for c in consents
        ],
    )
