"""The first phase of resolution: one record's payload normalized, or why it is quarantined.

Pure (no database), so importers run it in the read-ahead thread while the previous batch is
being written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from crm.contacts.normalize import (
    IDENTITY_FIELDS,
    MAX_FIELD_CHARS,
    IdentityValue,
    clean_name,
    clean_text,
    extract_identities,
    oversized_fields,
    parse_time,
)
from crm.core.vocabulary import EventKind
from crm.intake.reasons import Reason, Why, bad_identity, why

EVENT_KINDS = frozenset(k.value for k in EventKind)
_REFERRER_KEYS = frozenset(f"referrer_{f}" for f in IDENTITY_FIELDS)
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
    rejection: Why | None = None


def prepare(
    payload: dict[str, Any], *, platform: str | None, json_size: int | None = None
) -> Prepared:
    """Normalize one record's payload: identities, time, name, event kinds, or a rejection."""
    # A field's JSON text is at least as long as the field: a short document needs no check.
    if json_size is None or json_size > MAX_FIELD_CHARS:
        big = oversized_fields(payload)
        if big:
            fields = ", ".join(sorted(big))
            return Prepared(platform, rejection=why(Reason.OVERSIZED_FIELDS, fields=fields))
    event = clean_text(payload.get("event"))
    explicit = event.lower()
    if event and explicit not in EVENT_KINDS:
        return Prepared(platform, rejection=why(Reason.UNKNOWN_EVENT, kind=event[:40]))
    idents, problems = extract_identities(payload, platform=platform)
    referrer: list[IdentityValue] = []
    if not _REFERRER_KEYS.isdisjoint(payload):
        referrer, ref_problems = extract_identities(payload, "referrer_", platform=platform)
        problems += ref_problems
        referrer = [i for i in referrer if i.matchable]
    if not any(i.matchable for i in idents):
        return Prepared(platform, rejection=bad_identity(problems))
    raw_time = payload.get("occurred_at")
    occurred_at = parse_time(raw_time)
    if occurred_at is None and clean_text(str(raw_time or "")):
        # Dated at import time instead, a purchase or join would land on the wrong day.
        value = str(raw_time)[:40]
        return Prepared(platform, rejection=why(Reason.UNREADABLE_TIME, value=value))
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


def _event_kinds(payload: dict[str, Any], explicit: str) -> list[str]:
    kinds: list[str] = []
    if explicit in EVENT_KINDS:
        kinds.append(explicit)
    if payload.get("message") and EventKind.MESSAGE.value not in kinds and not explicit:
        kinds.append(EventKind.MESSAGE.value)
    if payload.get("answers") and EventKind.ANSWER.value not in kinds:
        kinds.append(EventKind.ANSWER.value)
    return kinds


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


def _json(value: Any) -> str:
    # The encoding of crm.core.bulk.json_text, which this pure module cannot import.
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
