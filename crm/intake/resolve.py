"""Identity resolution: raw records become contacts, identities, touches, events and consents.

One batch of pending raw records is resolved at a time, inside the caller's transaction, so a
raw record leaves ``pending`` in the same commit that writes what was derived from it.

How a batch is resolved:

1. Each record is normalized in Python (pure functions of
   :mod:`crm.contacts.normalize`); a record with no usable identity, or with an oversized
   field, is quarantined.
2. All identities of the batch are staged and joined to ``identities`` in one statement.
3. Records, existing contacts and identities form a graph; each connected component is one
   person. A component touching two or more existing contacts merges them: the older
   (lowest id, created first) survives, everything the others own moves to it.
4. Components without a contact get new contacts (ids reserved up front), then identities,
   touches (one per record), events (one per record and kind) and consents are bulk-inserted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from crm.contacts.normalize import (
    IDENTITY_FIELDS,
    MAX_FIELD_CHARS,
    IdentityValue,
    clean_name,
    clean_text,
    extract_identities,
    oversized_fields,
    parse_bool,
    parse_time,
)
from crm.core.audit import audit
from crm.core.bulk import _json, allocate_ids, bulk_insert, rows_source, stage
from crm.core.db import is_postgres
from crm.core.vocabulary import ContactStatus, EventKind, RecordStatus
from crm.intake.records import IngestReport
from crm.models import UTCDateTime

EVENT_KINDS = frozenset(k.value for k in EventKind)
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
_REFERRER_KEYS = frozenset(f"referrer_{f}" for f in IDENTITY_FIELDS)
# Serializes resolution across workers on PostgreSQL (SQLite writers already hold the lock):
# two imports resolving the same new person at once would otherwise create two contacts.
_IDENT_CHARS = 200  # identities.value


Key = tuple[str, str]  # an identity as stored: (kind, value cut to the column's width)


@dataclass(frozen=True, slots=True)
class Prepared:
    """What one record says, normalized; ``rejection`` says why it is quarantined instead.

    Identities come as keys ready to look up and link (``keys``: the matchable ones) and as
    (key, flags JSON) pairs ready to store (``stored``: flagged invalid ones too); the same
    for the inviter of a referral (``ref_keys``, ``ref_stored``; matchable ones only).
    """

    platform: str | None  # the source's platform the handles were scoped by
    keys: tuple[Key, ...] = ()
    stored: tuple[tuple[Key, str], ...] = ()
    ref_keys: tuple[Key, ...] = ()
    ref_stored: tuple[tuple[Key, str], ...] = ()
    occurred_at: datetime | None = None
    name: str | None = None
    kinds: tuple[str, ...] = ()
    rejection: str | None = None


def prepare(
    payload: dict[str, Any], *, platform: str | None, json_size: int | None = None
) -> Prepared:
    """Normalize one record's payload: identities, time, name, event kinds, or a rejection.

    Pure (no database), so importers run it while the previous batch is being written.
    """
    # A field's JSON text is at least as long as the field: a short document needs no check.
    if json_size is None or json_size > MAX_FIELD_CHARS:
        big = oversized_fields(payload)
        if big:
            return Prepared(platform, rejection=f"oversized field: {', '.join(sorted(big))}")
    event = clean_text(payload.get("event"))
    explicit = event.lower()
    if event and explicit not in EVENT_KINDS:
        return Prepared(platform, rejection=f"unknown event kind: {event[:40]}")
    idents, problems = extract_identities(payload, platform=platform)
    referrer: list[IdentityValue] = []
    if not _REFERRER_KEYS.isdisjoint(payload):
        referrer, ref_problems = extract_identities(payload, "referrer_", platform=platform)
        problems += ref_problems
        referrer = [i for i in referrer if i.matchable]
    if not any(i.matchable for i in idents):
        detail = "; ".join(problems) if problems else "no phone, WeChat id, email or handle"
        return Prepared(platform, rejection=f"no usable identity ({detail})")
    raw_time = payload.get("occurred_at")
    occurred_at = parse_time(raw_time)
    if occurred_at is None and clean_text(str(raw_time or "")):
        # Dated at import time instead, a purchase or join would land on the wrong day.
        return Prepared(platform, rejection=f"unreadable time: {str(raw_time)[:40]!r}")
    stored = tuple((_ident_key(i), _flags_json(i.flags)) for i in idents)
    ref_stored = tuple((_ident_key(i), _flags_json(i.flags)) for i in referrer)
    return Prepared(
        platform,
        keys=tuple(key for (key, _), i in zip(stored, idents, strict=True) if i.matchable),
        stored=stored,
        ref_keys=tuple(key for key, _ in ref_stored),
        ref_stored=ref_stored,
        occurred_at=occurred_at,
        name=clean_name(payload.get("name"))[:200] or None,
        kinds=tuple(_event_kinds(payload, explicit)),
    )


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
class _Parsed:
    row: PendingRow
    prep: Prepared
    occurred_at: datetime
    contact_id: int = 0
    referrer_id: int | None = None


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[Any, Any] = {}

    def find(self, node: Any) -> Any:
        parent = self.parent.setdefault(node, node)
        if parent == node:
            return node
        root = self.find(parent)
        self.parent[node] = root
        return root

    def union(self, a: Any, b: Any) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def probe_join(session: Session, table: str, alias: str, columns: str, on: str) -> str:
    """A join clause from a staging table to a big table through its unique index.

    A batch is small next to a table that grows with every import: given the staging table's
    statistics PostgreSQL would hash the whole big table for each batch; a ``LIMIT 1`` lateral
    subquery keeps it to one index lookup per staged row. SQLite does that for a plain join.
    """
    if is_postgres(session):
        probe = f"SELECT {columns} FROM {table} {alias} WHERE {on} LIMIT 1"
        return f" CROSS JOIN LATERAL ({probe}) {alias}"
    return f" JOIN {table} {alias} ON {on}"


@contextmanager
def _index_probes(session: Session) -> Iterator[None]:
    """Within the block, PostgreSQL joins staging rows to tables by index lookups only.

    For an UPDATE … FROM a staging table there is no lateral form (see :func:`probe_join`),
    and with stale statistics the planner would otherwise scan the whole table each batch.
    """
    if not is_postgres(session):
        yield
        return
    session.execute(text("SET LOCAL enable_hashjoin = off"))
    session.execute(text("SET LOCAL enable_mergejoin = off"))
    yield  # on an error the transaction rolls back, and these settings with it
    session.execute(text("SET LOCAL enable_hashjoin = on"))
    session.execute(text("SET LOCAL enable_mergejoin = on"))


def quarantine_fingerprint(*parts: object) -> str:
    """A stable fingerprint so replaying the same bad row does not pile up entries."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8"))
    return digest.hexdigest()


def write_quarantine(
    session: Session,
    rows: Sequence[tuple[int | None, int | None, str, int | None, str, str]],
    now: datetime,
) -> None:
    """Quarantine rows (source id, raw id, origin, row number, raw content, reason), once each."""
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
            (*r[:4], r[4].replace("\x00", "\\x00"), r[5], quarantine_fingerprint(*r[2:]))
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


def _event_kinds(payload: dict[str, Any], explicit: str) -> list[str]:
    kinds: list[str] = []
    if explicit in EVENT_KINDS:
        kinds.append(explicit)
    if payload.get("message") and EventKind.MESSAGE.value not in kinds and not explicit:
        kinds.append(EventKind.MESSAGE.value)
    if payload.get("answers") and EventKind.ANSWER.value not in kinds:
        kinds.append(EventKind.ANSWER.value)
    return kinds


def _reason_key(reason: str) -> str:
    return reason.split(" (", 1)[0].split(":", 1)[0]


def resolve_rows(
    session: Session,
    rows: Sequence[PendingRow],
    *,
    origin: str,
    now: datetime,
    store_raw: Callable[[list[tuple[int, int | None, str]]], None] | None = None,
) -> IngestReport:
    """Resolve a batch of raw records (caller holds the transaction and the lock).

    Without ``store_raw`` the rows are pending raw records, marked processed or quarantined
    here. With it, the raw records are not stored yet (their ids are reserved): ``store_raw``
    gets (raw id, contact id, status) for each and must insert them, and is called after the
    contacts are written and before the touches, events and quarantine rows that refer to them.
    """
    report = IngestReport()
    if not rows:
        return report
    sources = _source_info(session, {r.source_instance_id for r in rows})
    parsed: list[_Parsed] = []
    quarantined: list[tuple[PendingRow, str]] = []
    for row in rows:
        platform = sources.get(row.source_instance_id, {}).get("platform")
        prep = row.prepared
        if prep is None or prep.platform != platform:
            prep = prepare(row.payload, platform=platform, json_size=row.json_size)
        if prep.rejection is not None:
            quarantined.append((row, prep.rejection))
            continue
        parsed.append(_Parsed(row, prep, prep.occurred_at or now))

    def settle() -> None:
        # Runs once the batch's contacts exist and before anything refers to the raw records:
        # stores them (``store_raw``) or marks the pending ones, then quarantines the bad ones.
        status_rows: list[tuple[int, int | None, str]] = [
            (p.row.raw_id, p.contact_id, RecordStatus.PROCESSED.value) for p in parsed
        ]
        status_rows += [
            (row.raw_id, None, RecordStatus.QUARANTINED.value) for row, _ in quarantined
        ]
        if store_raw is not None:
            store_raw(status_rows)
        else:
            _mark_raw(session, status_rows, now)
        if quarantined:
            q_rows = []
            for row, reason in quarantined:
                q_rows.append(
                    (
                        row.source_instance_id,
                        row.raw_id,
                        origin,
                        row.row_number,
                        _json(row.payload),
                        reason,
                    )
                )
                key = _reason_key(reason)
                report.reasons[key] = report.reasons.get(key, 0) + 1
            write_quarantine(session, q_rows, now)
            report.quarantined += len(quarantined)

    if parsed:
        _resolve_parsed(session, parsed, sources, report, now, settle)
    else:
        settle()
    return report


def _source_info(session: Session, ids: set[int]) -> dict[int, dict[str, Any]]:
    result = session.execute(
        text(
            "SELECT id, kind, platform, referrer_contact_id FROM source_instances WHERE id IN :ids"
        ).bindparams(bindparam("ids", expanding=True)),
        {"ids": sorted(ids)},
    )
    return {
        int(r.id): {"kind": r.kind, "platform": r.platform, "referrer": r.referrer_contact_id}
        for r in result
    }


def _resolve_parsed(
    session: Session,
    parsed: list[_Parsed],
    sources: dict[int, dict[str, Any]],
    report: IngestReport,
    now: datetime,
    settle: Callable[[], None],
) -> None:
    # 1. Which identities already exist (one set-based join), keyed as stored (truncated).
    # Flagged (non-matchable) ones are looked up too, so the new ones can be appended
    # without ON CONFLICT: the caller holds the contact-graph lock, nothing else writes them.
    wanted = {key for p in parsed for key, _ in (*p.prep.stored, *p.prep.ref_stored)}
    source, params = rows_source(
        session, "_id_stage", [("kind", "text"), ("value", "text")], wanted
    )
    known: dict[tuple[str, str], int] = {
        (r[0], r[1]): int(r[2])
        for r in session.execute(
            text(
                f"SELECT s.kind, s.value, i.contact_id FROM {source}"
                + probe_join(
                    session,
                    "identities",
                    "i",
                    "contact_id",
                    "i.kind = s.kind AND i.value = s.value",
                )
            ),
            params,
        )
    }
    matchable: set[Key] = set()
    matchable.update(*[p.prep.keys for p in parsed], *[p.prep.ref_keys for p in parsed])
    existing = {key: cid for key, cid in known.items() if key in matchable}

    # 2. Connected components: records, referrers, existing contacts, shared identities.
    # Most records share nothing with the rest of the batch, so only identities seen twice
    # (or already owned by a contact) cost a union; a lone record is its own component.
    uf = _UnionFind()
    owner: dict[tuple[str, str], Any] = {}

    def link(node: Any, key: Key) -> None:
        first = owner.setdefault(key, node)
        if first is not node and first != node:
            uf.union(first, node)

    has_ref: list[bool] = []
    for n, p in enumerate(parsed):
        node = ("s", n)
        for key in p.prep.keys:
            link(node, key)
        src_ref = sources.get(p.row.source_instance_id, {}).get("referrer")
        if p.prep.ref_keys:
            ref_node = ("r", n)
            for key in p.prep.ref_keys:
                link(ref_node, key)
            has_ref.append(True)
        elif src_ref is not None:
            uf.union(("r", n), ("c", int(src_ref)))
            has_ref.append(True)
        else:
            has_ref.append(False)
    for key, cid in existing.items():
        link(("c", cid), key)

    def root_of(node: Any) -> Any:
        return uf.find(node) if node in uf.parent else node

    # 3. One contact per component: the oldest existing one, or a new one.
    contacts_at: dict[Any, set[int]] = {}
    for node in list(uf.parent):
        if node[0] == "c":
            contacts_at.setdefault(uf.find(node), set()).add(node[1])
    contact_of: dict[Any, int] = {}
    merges: list[tuple[int, int]] = []
    for root, found in contacts_at.items():
        contacts = sorted(found)
        contact_of[root] = contacts[0]
        merges += [(loser, contacts[0]) for loser in contacts[1:]]
    roots: list[tuple[Any, Any]] = []
    fresh: dict[Any, None] = {}  # roots needing a new contact, in order of first appearance
    for n in range(len(parsed)):
        rec_root = root_of(("s", n))
        ref_root = root_of(("r", n)) if has_ref[n] else None
        roots.append((rec_root, ref_root))
        if rec_root not in contact_of:
            fresh[rec_root] = None
        if ref_root is not None and ref_root not in contact_of:
            fresh[ref_root] = None
    if merges:
        merges.sort()
        merge_contacts(session, merges, now=now, actor="ingest")
        report.merged += len(merges)
    new_ids = allocate_ids(session, "contacts", len(fresh))
    contact_of.update(zip(fresh, new_ids, strict=True))
    fresh_set = set(new_ids)

    for p, (rec_root, ref_root) in zip(parsed, roots, strict=True):
        p.contact_id = contact_of[rec_root]
        if ref_root is not None:
            ref = contact_of[ref_root]
            p.referrer_id = ref if ref != p.contact_id else None

    # 4. New contacts: name, first seen, referrer from the component's earliest record.
    new_rows: dict[int, list[Any]] = {}
    counted: set[int] = set()
    for p in parsed:
        cid = p.contact_id
        if cid in fresh_set and cid not in counted:
            counted.add(cid)
            report.new_contacts += 1
        else:
            report.matched += 1
        if p.referrer_id in fresh_set and p.referrer_id not in new_rows:
            new_rows[p.referrer_id] = [None, p.occurred_at, None, None]  # known only as inviter
        if cid in fresh_set:
            entry = new_rows.setdefault(cid, [None, p.occurred_at, None, p.occurred_at])
            entry[0] = entry[0] or p.prep.name
            entry[1] = min(entry[1], p.occurred_at)
            entry[2] = entry[2] or p.referrer_id
            entry[3] = max(entry[3] or p.occurred_at, p.occurred_at)
    bulk_insert(
        session,
        "contacts",
        (
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
        ),
        (
            (cid, e[0], "active", 0, "[]", "zh-CN", 0, e[1], e[3], e[2], now, now)
            for cid, e in sorted(new_rows.items())
        ),
    )

    settle()

    # 5. Existing contacts: widen first/last seen, fill a missing name and referrer.
    updates: dict[int, list[Any]] = {}
    for p in parsed:
        if p.contact_id in fresh_set:
            continue
        u = updates.setdefault(p.contact_id, [p.occurred_at, p.occurred_at, p.prep.name, None])
        u[0] = min(u[0], p.occurred_at)
        u[1] = max(u[1], p.occurred_at)
        u[2] = u[2] or p.prep.name
        u[3] = u[3] or p.referrer_id
    if updates:
        _update_contacts(session, updates, now)

    # 6. Identities (new ones; flagged invalid ones kept once), touches, events, consents.
    ident_rows: dict[Key, tuple[int, str]] = {}
    for p in parsed:
        for key, flags in p.prep.stored:
            if key not in known and key not in ident_rows:
                ident_rows[key] = (p.contact_id, flags)
        if p.referrer_id is not None:
            for key, flags in p.prep.ref_stored:
                if key not in known and key not in ident_rows:
                    ident_rows[key] = (p.referrer_id, flags)
    bulk_insert(
        session,
        "identities",
        ("contact_id", "kind", "value", "flags", "created_at"),
        [(cid, k, v, flags, now) for (k, v), (cid, flags) in ident_rows.items()],
    )

    bulk_insert(
        session,
        "touches",
        ("contact_id", "source_instance_id", "raw_record_id", "touched_at"),
        ((p.contact_id, p.row.source_instance_id, p.row.raw_id, p.occurred_at) for p in parsed),
    )
    _write_events(session, parsed, sources, report, now)


def _ident_key(ident: IdentityValue) -> Key:
    # The identity as stored: values longer than the column are cut, like the column cuts.
    value = ident.value
    return ident.kind, value if len(value) <= _IDENT_CHARS else value[:_IDENT_CHARS]


def _flags_json(flags: dict[str, Any]) -> str:
    # Identity flags are a handful of small dicts ({"type": "mobile"}, ...): encode each once.
    if not flags:
        return "{}"
    if len(flags) == 1:
        ((k, v),) = flags.items()
        if isinstance(v, str):
            return _flag_json(k, v)
    return _json(flags)


@lru_cache(maxsize=4096)
def _flag_json(key: str, value: str) -> str:
    return _json({key: value})


def _update_contacts(session: Session, updates: dict[int, list[Any]], now: datetime) -> None:
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
        ((cid, *u) for cid, u in sorted(updates.items())),
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
    with _index_probes(session):
        session.execute(text(sql).bindparams(bindparam("now", type_=UTCDateTime())), {"now": now})


def _write_events(
    session: Session,
    parsed: list[_Parsed],
    sources: dict[int, dict[str, Any]],
    report: IngestReport,
    now: datetime,
) -> None:
    names = {
        clean_text(p.row.payload.get("community"))
        for p in parsed
        if p.prep.kinds and p.row.payload.get("community")
    }
    communities: dict[str, int] = {}
    if names:
        for r in session.execute(
            text("SELECT name, MIN(id) FROM communities WHERE name IN :n GROUP BY name").bindparams(
                bindparam("n", expanding=True)
            ),
            {"n": sorted(names)},
        ):
            communities[r[0]] = int(r[1])
    events: list[tuple[Any, ...]] = []
    consents: list[tuple[Any, ...]] = []
    for p in parsed:
        payload = p.row.payload
        if not p.prep.kinds and p.referrer_id is None and "consent" not in payload:
            continue  # most records (a member list) carry no event and no consent
        details = {k: payload[k] for k in _EVENT_DETAILS if payload.get(k) not in (None, "")}
        community = communities.get(clean_text(payload.get("community")))
        kinds = list(p.prep.kinds)
        if p.referrer_id is not None and EventKind.REFERRAL.value not in kinds:
            kinds.append(EventKind.REFERRAL.value)  # sign-up through a member's invite code
        for kind in kinds:
            actor, related = p.contact_id, None
            # A referral is the inviter's act; the invited contact is the related one.
            if kind == EventKind.REFERRAL.value and p.referrer_id is not None:
                actor, related = p.referrer_id, p.contact_id
            events.append(
                (
                    actor,
                    kind,
                    p.occurred_at,
                    community,
                    p.row.source_instance_id,
                    p.row.raw_id,
                    related,
                    details,
                    now,
                )
            )
            if kind == EventKind.OPT_OUT.value:
                channel = clean_text(payload.get("channel")) or None
                consents.append(
                    (p.contact_id, "opt_out", channel, "opt_out event", p.occurred_at, p.row.raw_id)
                )
        if "consent" in payload and parse_bool(payload.get("consent")):
            src_kind = sources.get(p.row.source_instance_id, {}).get("kind") or "import"
            consents.append(
                (p.contact_id, "consent", None, f"{src_kind} form", p.occurred_at, p.row.raw_id)
            )
    report.events += len(events)
    bulk_insert(
        session,
        "events",
        (
            "contact_id",
            "kind",
            "occurred_at",
            "community_id",
            "source_instance_id",
            "raw_record_id",
            "related_contact_id",
            "payload",
            "created_at",
        ),
        events,
    )
    bulk_insert(
        session,
        "consents",
        ("contact_id", "kind", "channel", "purpose", "source", "evidence", "recorded_at"),
        (
            (cid, kind, channel, "marketing", source, {"raw_record_id": raw_id}, at)
            for cid, kind, channel, source, at, raw_id in consents
        ),
    )


def _mark_raw(session: Session, rows: list[tuple[int, int | None, str]], now: datetime) -> None:
    if not rows:
        return
    stage(
        session,
        "_raw_done",
        [("id", "bigint"), ("contact_id", "bigint"), ("status", "text")],
        rows,
    )
    with _index_probes(session):
        session.execute(
            text(
                "UPDATE raw_records SET status = d.status, contact_id = d.contact_id,"
                " processed_at = :now FROM _raw_done d WHERE raw_records.id = d.id"
            ).bindparams(bindparam("now", type_=UTCDateTime())),
            {"now": now},
        )


# Tables whose contact references follow a merge, as (table, column).
_MOVE_ALWAYS = (
    ("identities", "contact_id"),
    ("touches", "contact_id"),
    ("events", "contact_id"),
    ("events", "related_contact_id"),
    ("consents", "contact_id"),
    ("tier_changes", "contact_id"),
    ("notes", "contact_id"),
    ("raw_records", "contact_id"),
    ("contacts", "referred_by_id"),
    ("source_instances", "referrer_contact_id"),
    ("qr_codes", "referrer_contact_id"),
)


def merge_contacts(
    session: Session, pairs: Sequence[tuple[int, int]], *, now: datetime, actor: str
) -> None:
    """Fold each loser into its winner: history moves, the loser is marked merged, audited."""
    upd = text
    ts = bindparam("now", type_=UTCDateTime())
    for loser, winner in pairs:
        params: dict[str, Any] = {"l": loser, "w": winner, "now": now}
        for table, column in _MOVE_ALWAYS:
            session.execute(upd(f"UPDATE {table} SET {column} = :w WHERE {column} = :l"), params)
        session.execute(
            upd("UPDATE contacts SET referred_by_id = NULL WHERE id = :w AND referred_by_id = :w"),
            params,
        )
        # Tags, memberships and outbox rows move unless the winner already has the same one.
        session.execute(
            upd(
                "UPDATE contact_tags SET contact_id = :w WHERE contact_id = :l AND NOT EXISTS"
                " (SELECT 1 FROM contact_tags t"
                " WHERE t.contact_id = :w AND t.tag = contact_tags.tag)"
            ),
            params,
        )
        session.execute(upd("DELETE FROM contact_tags WHERE contact_id = :l"), params)
        session.execute(
            upd(
                "UPDATE memberships SET contact_id = :w WHERE contact_id = :l AND NOT EXISTS"
                " (SELECT 1 FROM memberships m WHERE m.contact_id = :w"
                " AND m.community_id = memberships.community_id"
                " AND m.joined_at IS NOT DISTINCT FROM memberships.joined_at)"
            ),
            params,
        )
        session.execute(
            upd(
                "UPDATE outbox SET contact_id = :w WHERE contact_id = :l AND NOT EXISTS"
                " (SELECT 1 FROM outbox o WHERE o.contact_id = :w"
                " AND o.campaign = outbox.campaign AND o.step = outbox.step)"
            ),
            params,
        )
        session.execute(
            upd(
                "UPDATE outbox SET state = 'skipped', reason = 'contact merged', updated_at = :now"
                " WHERE contact_id = :l AND state IN ('planned', 'deferred')"
            ).bindparams(ts),
            params,
        )
        # At most one open queue item per contact: keep the winner's, close the loser's.
        session.execute(
            upd(
                "UPDATE queue_items SET status = 'lost', open_key = NULL,"
                " outcome_reason = 'contact merged', closed_at = :now, updated_at = :now"
                " WHERE contact_id = :l AND open_key IS NOT NULL AND EXISTS"
                " (SELECT 1 FROM queue_items q WHERE q.open_key = :w)"
            ).bindparams(ts),
            params,
        )
        session.execute(
            upd(
                "UPDATE queue_items SET contact_id = :w,"
                " open_key = CASE WHEN open_key IS NULL THEN NULL ELSE :w END"
                " WHERE contact_id = :l"
            ),
            params,
        )
        session.execute(
            upd(
                "UPDATE contacts SET"
                " display_name = COALESCE(contacts.display_name, l.display_name),"
                " first_seen_at = CASE WHEN l.first_seen_at < contacts.first_seen_at"
                " THEN l.first_seen_at ELSE contacts.first_seen_at END,"
                " last_active_at = CASE WHEN contacts.last_active_at IS NULL"
                " OR l.last_active_at > contacts.last_active_at"
                " THEN l.last_active_at ELSE contacts.last_active_at END,"
                " referred_by_id = COALESCE(contacts.referred_by_id,"
                " CASE WHEN l.referred_by_id <> contacts.id THEN l.referred_by_id END),"
                " tier = COALESCE(contacts.tier, l.tier),"
                " warnings = contacts.warnings + l.warnings,"
                " updated_at = :now"
                " FROM contacts l WHERE contacts.id = :w AND l.id = :l"
            ).bindparams(ts),
            params,
        )
        session.execute(
            upd(
                "UPDATE contacts SET status = :merged, merged_into_id = :w, updated_at = :now"
                " WHERE id = :l"
            ).bindparams(ts),
            {**params, "merged": ContactStatus.MERGED.value},
        )
        audit(
            session,
            actor,
            "contact.merge",
            object_type="contact",
            object_id=winner,
            details={"merged": loser, "into": winner},
            at=now,
        )
