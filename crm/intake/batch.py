"""A batch under resolution: its records, who each turned out to be, and the rows that follow.

Pure: the row builders here decide what a new contact, an update of an existing one, an
identity, an event and a consent say; :mod:`crm.intake.resolve` writes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from crm.contacts.normalize import clean_text, parse_bool
from crm.core.vocabulary import EventKind, RecordStatus
from crm.intake.people import Member, People
from crm.intake.prepare import Key, Prepared
from crm.intake.reasons import Why
from crm.intake.records import IngestReport

_EVENT_DETAILS = (
    "message",
    "amount",
    "product",
    "activity",
    "violation",
    "channel",
    "answers",
    "platform",
    "post",
    "community",
)


class ConsentKind(StrEnum):
    """What a consents row records: an explicit consent or an opt-out."""

    CONSENT = "consent"
    OPT_OUT = "opt_out"


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What resolution reads of a record's source instance."""

    kind: str | None
    platform: str | None
    referrer: int | None  # the contact whose invite code the source is


@dataclass(slots=True)
class PendingRow:
    """A raw record waiting to be resolved (``prepared`` if already normalized)."""

    raw_id: int
    source_instance_id: int
    payload: dict[str, Any]
    row_number: int | None = None
    json_size: int | None = None  # length of the payload's JSON text, when known
    prepared: Prepared | None = None


@dataclass(slots=True)
class Record:
    """A usable record; ``contact_id`` and ``referrer_id`` are set once people are placed."""

    row: PendingRow
    prep: Prepared
    occurred_at: datetime
    contact_id: int = 0
    referrer_id: int | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record quarantined instead of resolved, and why."""

    row: PendingRow
    reason: Why


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a raw record: its contact (if resolved) and its new status."""

    raw_id: int
    contact_id: int | None
    status: RecordStatus


@dataclass(slots=True)
class Batch:
    """The records of one batch through the phases of resolution, and their counts."""

    sources: dict[int, SourceInfo]
    records: list[Record]
    rejected: list[Rejected]
    report: IngestReport = field(default_factory=IngestReport)
    known: dict[Key, int] = field(default_factory=dict)  # stored identities -> their contact
    new_ids: frozenset[int] = frozenset()  # contacts this batch created

    def members(self) -> list[Member]:
        """The records as grouping sees them."""
        return [
            Member(r.prep.keys, r.prep.ref_keys, self._source_referrer(r)) for r in self.records
        ]

    def _source_referrer(self, record: Record) -> int | None:
        info = self.sources.get(record.row.source_instance_id)
        return info.referrer if info is not None else None

    def place(self, people: People, new_ids: list[int]) -> None:
        """Give each record its contact and inviter, new people taking ``new_ids`` in order."""
        fresh = iter(new_ids)
        ids = [cid if cid is not None else next(fresh) for cid in people.contact_ids]
        for record, own, ref in zip(
            self.records, people.person_of, people.referrer_of, strict=True
        ):
            record.contact_id = ids[own]
            record.referrer_id = ids[ref] if ref is not None else None
        self.new_ids = frozenset(new_ids)

    def outcomes(self) -> list[Outcome]:
        """Each raw record's outcome: processed with its contact, or quarantined."""
        done = [Outcome(r.row.raw_id, r.contact_id, RecordStatus.PROCESSED) for r in self.records]
        return done + [Outcome(q.row.raw_id, None, RecordStatus.QUARANTINED) for q in self.rejected]

    def count_rejected(self) -> None:
        """Add the quarantined records, by reason, to the report."""
        for rejected in self.rejected:
            code = rejected.reason.code
            self.report.reasons[code] = self.report.reasons.get(code, 0) + 1
        self.report.quarantined += len(self.rejected)


@dataclass(slots=True)
class NewContact:
    """A contact this batch creates: name, first and last seen, referrer (earliest record's)."""

    id: int
    name: str | None
    first_seen: datetime
    last_seen: datetime | None
    referrer: int | None


@dataclass(slots=True)
class ContactUpdate:
    """What a batch adds to an existing contact: a wider seen range, a missing name, referrer."""

    id: int
    first_seen: datetime
    last_seen: datetime
    name: str | None
    referrer: int | None


def new_contacts(batch: Batch) -> list[NewContact]:
    """The batch's new contacts (also counting new and matched records in the report)."""
    rows: dict[int, NewContact] = {}
    counted: set[int] = set()  # a contact first met as an inviter is not counted as such
    fresh, report = batch.new_ids, batch.report
    for r in batch.records:
        cid, at = r.contact_id, r.occurred_at
        if cid in fresh and cid not in counted:
            counted.add(cid)
            report.new_contacts += 1
        else:
            report.matched += 1
        if r.referrer_id in fresh and r.referrer_id not in rows:
            rows[r.referrer_id] = NewContact(r.referrer_id, None, at, None, None)  # an inviter
        if cid in fresh:
            row = rows.setdefault(cid, NewContact(cid, None, at, at, None))
            row.name = row.name or r.prep.name
            row.first_seen = min(row.first_seen, at)
            row.referrer = row.referrer or r.referrer_id
            row.last_seen = max(row.last_seen or at, at)
    return sorted(rows.values(), key=lambda c: c.id)


def contact_updates(batch: Batch) -> list[ContactUpdate]:
    """What the batch's records add to the existing contacts they matched."""
    updates: dict[int, ContactUpdate] = {}
    for r in batch.records:
        if r.contact_id in batch.new_ids:
            continue
        at = r.occurred_at
        u = updates.setdefault(r.contact_id, ContactUpdate(r.contact_id, at, at, r.prep.name, None))
        u.first_seen = min(u.first_seen, at)
        u.last_seen = max(u.last_seen, at)
        u.name = u.name or r.prep.name
        u.referrer = u.referrer or r.referrer_id
    return sorted(updates.values(), key=lambda u: u.id)


@dataclass(frozen=True, slots=True)
class NewIdentity:
    """An identity not stored yet, with its owner and flags (JSON)."""

    contact_id: int
    key: Key
    flags: str


def new_identities(batch: Batch) -> list[NewIdentity]:
    """Identities of the batch not stored yet (flagged invalid ones kept once), first owner wins."""
    known = batch.known
    rows: dict[Key, NewIdentity] = {}
    for r in batch.records:
        for key, flags in r.prep.stored:
            if key not in known and key not in rows:
                rows[key] = NewIdentity(r.contact_id, key, flags)
        if r.referrer_id is not None:
            for key, flags in r.prep.ref_stored:
                if key not in known and key not in rows:
                    rows[key] = NewIdentity(r.referrer_id, key, flags)
    return list(rows.values())


@dataclass(frozen=True, slots=True)
class EventRow:
    """An event to store; a referral is the inviter's, with the invited as related contact."""

    contact_id: int
    kind: str
    occurred_at: datetime
    community_id: int | None
    source_instance_id: int
    raw_record_id: int
    related_contact_id: int | None
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ConsentRow:
    """A consent or opt-out a record states, with the raw record as evidence."""

    contact_id: int
    kind: ConsentKind
    channel: str | None
    source: str
    recorded_at: datetime
    raw_record_id: int


def communities_named(batch: Batch) -> set[str]:
    """Names of the communities the batch's events happened in (looked up before events)."""
    return {
        clean_text(r.row.payload.get("community"))
        for r in batch.records
        if r.prep.kinds and r.row.payload.get("community")
    }


def events_and_consents(
    batch: Batch, communities: Mapping[str, int]
) -> tuple[list[EventRow], list[ConsentRow]]:
    """The events (one per record and kind) and consents the batch's records state."""
    events: list[EventRow] = []
    consents: list[ConsentRow] = []
    for r in batch.records:
        payload = r.row.payload
        if not r.prep.kinds and r.referrer_id is None and "consent" not in payload:
            continue  # most records (a member list) carry no event and no consent
        details = {k: payload[k] for k in _EVENT_DETAILS if payload.get(k) not in (None, "")}
        community = communities.get(clean_text(payload.get("community")))
        kinds = list(r.prep.kinds)
        if r.referrer_id is not None and EventKind.REFERRAL.value not in kinds:
            kinds.append(EventKind.REFERRAL.value)  # sign-up through a member's invite code
        for kind in kinds:
            actor, related = r.contact_id, None
            # A referral is the inviter's act; the invited contact is the related one.
            if kind == EventKind.REFERRAL.value and r.referrer_id is not None:
                actor, related = r.referrer_id, r.contact_id
            row = r.row
            events.append(
                EventRow(
                    actor,
                    kind,
                    r.occurred_at,
                    community,
                    row.source_instance_id,
                    row.raw_id,
                    related,
                    details,
                )
            )
            if kind == EventKind.OPT_OUT.value:
                channel = clean_text(payload.get("channel")) or None
                consents.append(
                    ConsentRow(
                        r.contact_id,
                        ConsentKind.OPT_OUT,
                        channel,
                        "opt_out event",
                        r.occurred_at,
                        row.raw_id,
                    )
                )
        if "consent" in payload and parse_bool(payload.get("consent")):
            info = batch.sources.get(r.row.source_instance_id)
            form = f"{(info.kind if info else None) or 'import'} form"
            consents.append(
                ConsentRow(
                    r.contact_id,
                    ConsentKind.CONSENT,
                    clean_text(payload.get("consent_channel")) or None,
                    clean_text(payload.get("consent_via"))[:100] or form,
                    r.occurred_at,
                    r.row.raw_id,
                )
            )
    return events, consents
