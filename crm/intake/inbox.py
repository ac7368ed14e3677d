"""Records pushed to us (sign-up forms, webhooks) kept raw and pending until the ingest flow runs.

The web handlers only append to the raw log; resolving into contacts happens later in one
batch (:func:`ingest_qr_signups`), so a burst of sign-ups never waits on identity resolution.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from crm.contacts.normalize import clean_text, normalize_platform
from crm.core.db import dialect_insert, transaction
from crm.core.vocabulary import EventKind, RecordStatus, SourceKind
from crm.intake.corrections import Candidate, corrections
from crm.intake.pending import process_pending
from crm.intake.pushed_json import storable_text, unstorable
from crm.intake.quarantine import quarantine_one
from crm.intake.reasons import Reason, Refusal, Why, why
from crm.intake.records import IngestReport, SourceSpec
from crm.intake.sources import ensure_source
from crm.models import RawRecord, utcnow


@dataclass(frozen=True)
class Stored:
    """What appending pushed records did: new rows, and ones already in the raw log."""

    stored: int
    duplicates: int


def store_pending(
    session: Session,
    source_id: int,
    records: Iterable[tuple[str, dict[str, Any]]],
    *,
    now: datetime | None = None,
) -> Stored:
    """Append (record key, payload) pairs as pending raw records; a known key adds nothing,
    unless its record was quarantined and this one differs: a correction (see
    :mod:`crm.intake.corrections`), stored under a revision key."""
    at = now or utcnow()
    records = list(records)
    if not records:
        return Stored(0, 0)
    taken = _append(session, source_id, records, at)
    known = [(k, p) for k, p in records if k not in taken]
    fixes = _corrections(session, source_id, known, at) if known else []
    stored = len(taken) + (len(_append(session, source_id, fixes, at)) if fixes else 0)
    return Stored(stored, len(records) - stored)


def _append(
    session: Session, source_id: int, records: list[tuple[str, dict[str, Any]]], at: datetime
) -> set[str]:
    """Insert the records whose key is new; returns those keys."""
    rows = [
        {
            "source_instance_id": source_id,
            "record_key": key,
            "payload": payload,
            "status": RecordStatus.PENDING.value,
            "received_at": at,
        }
        for key, payload in records
    ]
    stmt = (
        dialect_insert(session, RawRecord)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["source_instance_id", "record_key"])
        .returning(RawRecord.record_key)
    )
    return set(session.scalars(stmt))


def _corrections(
    session: Session, source_id: int, records: list[tuple[str, dict[str, Any]]], at: datetime
) -> list[tuple[str, dict[str, Any]]]:
    """Of records whose key is known, those correcting a quarantined one, under revision keys.

    A time we filled in (the push's, for an object without its own) is left out of the
    comparison and the revision key: a retried push is the same record, not a correction.
    """
    filled = at.isoformat()
    keys = {k for k, _ in records}
    stored = {
        key: raw_id
        for key, raw_id in session.execute(
            select(RawRecord.record_key, RawRecord.id).where(
                RawRecord.source_instance_id == source_id,
                RawRecord.record_key.in_(keys),
                RawRecord.status == RecordStatus.QUARANTINED.value,
            )
        )
    }
    hits = []
    for n, (key, payload) in enumerate(records):
        if key in stored:
            ignore = ("occurred_at",) if payload.get("occurred_at") == filled else ()
            own = {k: v for k, v in payload.items() if k not in ignore}
            blob = json.dumps(own, ensure_ascii=False, sort_keys=True)
            hits.append(Candidate(n, source_id, key, blob, stored[key], ignore))
    if not hits:
        return []
    fixes, _ = corrections(session, hits)
    return [(fix.key, records[fix.idx][1]) for fix in fixes]


def content_key(payload: dict[str, Any]) -> str:
    """A stable record key for a pushed object that carries no id of its own."""
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- accepting pushed input -------------------------------------------------------------

LEADS_ORIGIN = "POST /hooks/leads"
EVENTS_ORIGIN = "POST /hooks/events"


class PushKind(StrEnum):
    """What a webhook receives: self-media leads or activity events."""

    LEADS = "leads"
    EVENTS = "events"


EVENTS_SOURCE = SourceSpec(kind=SourceKind.API, key="hooks:events", name="事件推送")
_MAX_POST = 400  # characters of a lead's post: it names the source (source_instances.key)


@dataclass
class PushResult:
    """Counts for one pushed body: stored as new, already known, refused (quarantined)."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON answer of the webhook."""
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "reasons": self.reasons,
        }


def accept_signup(
    engine: Engine,
    spec: SourceSpec,
    nonce: str,
    values: dict[str, Any],
    *,
    now: datetime | None = None,
) -> bool:
    """Store a checked sign-up as a pending raw record; False if this form was already sent."""
    at = now or utcnow()
    payload = {**values, "occurred_at": at.isoformat(), "code": spec.key}
    with transaction(engine) as session:
        source_id = ensure_source(session, spec)
        return store_pending(session, source_id, [(f"form:{nonce}", payload)], now=at).stored == 1


def _lead_spec(obj: dict[str, Any]) -> SourceSpec:
    platform = normalize_platform(obj.get("platform"))
    post = clean_text(obj.get("post") or obj.get("post_url") or obj.get("post_id"))
    if not platform:
        raise Refusal(why(Reason.LEAD_NO_PLATFORM))
    if not post:
        raise Refusal(why(Reason.LEAD_NO_POST))
    if len(post) > _MAX_POST:
        raise Refusal(why(Reason.POST_TOO_LONG, limit=_MAX_POST))
    return SourceSpec(
        kind=SourceKind.SELF_MEDIA,
        key=f"{platform}:{post}",
        name=f"{platform} {post}",
        platform=platform,
        post=post,
    )


def _event_check(obj: dict[str, Any]) -> None:
    kinds = {k.value for k in EventKind}
    if obj.get("event") not in kinds:
        raise Refusal(why(Reason.EVENT_NOT_KNOWN, kinds=", ".join(sorted(kinds))))


def accept_pushed(
    engine: Engine,
    kind: PushKind,
    objects: list[Any],
    *,
    now: datetime | None = None,
) -> PushResult:
    """Store pushed leads or events as pending raw records; refused objects are quarantined."""
    at = now or utcnow()
    origin = LEADS_ORIGIN if kind == PushKind.LEADS else EVENTS_ORIGIN
    result = PushResult()
    specs: dict[tuple[str, str], SourceSpec] = {}
    by_source: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    refused: list[tuple[int, str, Why]] = []
    for n, obj in enumerate(objects, start=1):
        raw = storable_text(obj)
        try:
            if not isinstance(obj, dict):
                raise Refusal(why(Reason.NOT_OBJECT))
            bad = unstorable(obj)
            if bad:
                raise Refusal(bad)
            too_long = [k for k, v in obj.items() if isinstance(v, str) and len(v) > 2000]
            if too_long:
                raise Refusal(why(Reason.FIELD_TOO_LONG, fields=", ".join(sorted(too_long))))
            if kind == PushKind.LEADS:
                spec = _lead_spec(obj)
            else:
                _event_check(obj)
                spec = EVENTS_SOURCE
        except Refusal as exc:
            refused.append((n, raw[:10_000], exc.why))
            continue
        payload = {k: v for k, v in obj.items() if k != "id"}
        payload.setdefault("occurred_at", at.isoformat())
        key = f"id:{obj['id']}" if obj.get("id") not in (None, "") else content_key(obj)
        specs.setdefault((spec.kind, spec.key), spec)
        by_source.setdefault((spec.kind, spec.key), []).append((key[:300], payload))
    with transaction(engine) as session:
        for skey, records in by_source.items():
            source_id = ensure_source(session, specs[skey])
            stored = store_pending(session, source_id, records, now=at)
            result.accepted += stored.stored
            result.duplicates += stored.duplicates
        for n, raw, reason in refused:
            quarantine_one(
                session, origin=origin, raw_content=raw, reason=reason, row_number=n, now=at
            )
            result.rejected += 1
            result.reasons.append(f"#{n}: {reason.text}")
    return result


def ingest_qr_signups(engine: Engine, now: datetime | None = None) -> IngestReport:
    """Resolve pending pushed records (QR and invite sign-ups, webhook leads and events)."""
    return process_pending(engine, now, origin="qr sign-ups and webhooks")
