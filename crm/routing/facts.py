"""What scoring reads about a contact: its events as buckets and tallies, and the event flags.

A message event shows intent when its text holds an intent keyword; a violation event is an
ad when its label is an ad label. :func:`bucket_events` and :func:`tally` reduce raw events
the way the SQL feeds (:mod:`crm.routing.scoring_sql`, :mod:`crm.routing.rescore`) do in one
aggregate query, so both sides score the same counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from crm.core.vocabulary import ContactStatus, EventKind, Tier
from crm.routing.rules.model import Rules

# Events that show a contact is alive (anything a person does themselves).
ACTIVITY_KINDS = frozenset(
    {
        EventKind.MESSAGE,
        EventKind.SHARE,
        EventKind.ACTIVITY_ATTENDED,
        EventKind.REFERRAL,
        EventKind.ANSWER,
        EventKind.PURCHASE,
    }
)

# Kinds whose events are counted per contact, and the signals that cite events as evidence.
COUNTED_KINDS = (
    EventKind.MESSAGE,
    EventKind.SHARE,
    EventKind.REFERRAL,
    EventKind.ACTIVITY_ATTENDED,
    EventKind.VIOLATION,
    EventKind.OPT_OUT,
    EventKind.PURCHASE,
    EventKind.CHURN,
)
EVIDENCE_SIGNALS = (
    "intent",
    "engagement",
    "contribution",
    "referrals",
    "attendance",
    "ads",
    "violations",
    "opt_out",
    "churn",
)


class EventBucket(NamedTuple):
    """A contact's events of one kind, aggregated.

    ``decayed`` is Σ 0.5^(age_days / half-life) with ages in whole UTC days; ``ids`` and
    ``flagged_ids`` hold the newest event ids (up to the breakdown cap); ``flagged`` counts
    the intent messages (kind message) or ads (kind violation).
    """

    kind: str
    total: int
    last_day: date
    decayed: float = 0.0
    ids: tuple[int, ...] = ()
    flagged: int = 0
    flagged_ids: tuple[int, ...] = ()


class Answer(NamedTuple):
    """Screening answers (question key → answer) recorded by one event."""

    event_id: int
    answers: Mapping[str, Any]


class ContactFacts(NamedTuple):
    """What scoring needs to know about one contact."""

    contact_id: int
    sources: frozenset[str] = frozenset()
    buckets: tuple[EventBucket, ...] = ()
    answers: tuple[Answer, ...] = ()
    opted_out: bool = False
    tier: Tier | None = None
    status: ContactStatus = ContactStatus.ACTIVE
    first_seen_at: datetime | None = None
    last_active_at: datetime | None = None
    tier_entered_at: datetime | None = None


class Tally(NamedTuple):
    """A contact's events reduced to what the signals count (from buckets or one SQL row).

    ``evidence`` maps a signal to candidate event ids (a superset of its newest ids up to the
    breakdown cap), sorted and cut when it scores.
    """

    counts: Mapping[str, int]
    intent: int = 0
    ads: int = 0
    decayed: float = 0.0
    last_day: date | None = None
    evidence: Mapping[str, Sequence[int]] = {}


def text_of(payload: Mapping[str, Any]) -> str:
    """The text a message event carries (``message`` or ``text`` key)."""
    value = payload.get("message")
    if value is None:
        value = payload.get("text")
    return value if isinstance(value, str) else ""


def is_intent(message: str, rules: Rules) -> bool:
    """Whether a message contains one of the intent keywords (case-insensitive)."""
    lowered = message.lower()
    return any(k.lower() in lowered for k in rules.signals.intent.keywords)


def is_ad(payload: Mapping[str, Any], rules: Rules) -> bool:
    """Whether a violation event is an ad (its ``violation`` label is an ad label)."""
    label = payload.get("violation")
    return isinstance(label, str) and label.lower() in ad_labels(rules)


def ad_labels(rules: Rules) -> set[str]:
    """The ad labels, lower-cased as violation labels are compared."""
    return {label.lower() for label in rules.signals.negative.ad_labels}


def intent_patterns(rules: Rules) -> list[str]:
    """LIKE patterns (escape ``\\``) matching a lower-cased text containing an intent keyword."""
    return [f"%{_like_escaped(w.lower())}%" for w in rules.signals.intent.keywords]


def _like_escaped(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def decay(age_days: int, rules: Rules) -> float:
    """Weight of an event ``age_days`` old: halves every half-life."""
    return float(0.5 ** (max(0, age_days) / rules.signals.engagement.half_life_days))


def answers_of(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """The answers an answer event records: its ``answers`` object, else the payload itself."""
    inner = payload.get("answers")
    return inner if isinstance(inner, Mapping) else payload


def bucket_events(
    events: Iterable[tuple[int, str, datetime, Mapping[str, Any]]], rules: Rules, now: datetime
) -> tuple[tuple[EventBucket, ...], tuple[Answer, ...]]:
    """Aggregate raw events (id, kind, occurred_at, payload) as the SQL feeds do."""
    today = now.astimezone(UTC).date()
    cap = rules.breakdown_event_cap
    acc: dict[str, dict[str, Any]] = {}
    answers: list[Answer] = []
    for event_id, kind, occurred_at, payload in events:
        day = occurred_at.astimezone(UTC).date()
        slot = acc.setdefault(
            kind, {"n": 0, "day": day, "decayed": 0.0, "ids": [], "flagged": 0, "fids": []}
        )
        slot["n"] += 1
        slot["day"] = max(slot["day"], day)
        slot["decayed"] += decay((today - day).days, rules)
        slot["ids"].append(event_id)
        if (kind == EventKind.MESSAGE and is_intent(text_of(payload), rules)) or (
            kind == EventKind.VIOLATION and is_ad(payload, rules)
        ):
            slot["flagged"] += 1
            slot["fids"].append(event_id)
        if kind == EventKind.ANSWER:
            answers.append(Answer(event_id, answers_of(payload)))
    buckets = tuple(
        EventBucket(
            kind=kind,
            total=v["n"],
            last_day=v["day"],
            decayed=v["decayed"],
            ids=tuple(sorted(v["ids"], reverse=True)[:cap]),
            flagged=v["flagged"],
            flagged_ids=tuple(sorted(v["fids"], reverse=True)[:cap]),
        )
        for kind, v in sorted(acc.items())
    )
    return buckets, tuple(answers)


def tally(facts: ContactFacts, rules: Rules) -> Tally:
    """Reduce a contact's event buckets to the counts, decayed sum and evidence signals use."""
    counts: dict[str, int] = {}
    by_kind: dict[str, list[EventBucket]] = {}
    for b in facts.buckets:
        by_kind.setdefault(b.kind, []).append(b)
        counts[b.kind] = counts.get(b.kind, 0) + b.total

    def ids(*kinds: str, flagged: bool = False) -> list[int]:
        return [
            i
            for k in kinds
            for b in by_kind.get(k, [])
            for i in (b.flagged_ids if flagged else b.ids)
        ]

    engaged_kinds = [k.value for k in rules.signals.engagement.kinds]
    engaged = [b for b in facts.buckets if b.kind in engaged_kinds]
    active_days = [b.last_day for b in facts.buckets if b.kind in ACTIVITY_KINDS]
    return Tally(
        counts=counts,
        intent=sum(b.flagged for b in by_kind.get(EventKind.MESSAGE, [])),
        ads=sum(b.flagged for b in by_kind.get(EventKind.VIOLATION, [])),
        decayed=sum(b.decayed for b in engaged),
        last_day=max(active_days, default=None),
        evidence=_evidence_of(ids, engaged_kinds),
    )


def _evidence_of(ids: Callable[..., list[int]], engaged_kinds: Sequence[str]) -> dict[str, Any]:
    # Which events stand behind each signal: one definition for buckets and SQL rows alike.
    return {
        "intent": ids(EventKind.MESSAGE, flagged=True),
        "engagement": ids(*engaged_kinds),
        "contribution": ids(EventKind.MESSAGE, EventKind.SHARE),
        "referrals": ids(EventKind.REFERRAL),
        "attendance": ids(EventKind.ACTIVITY_ATTENDED),
        "ads": ids(EventKind.VIOLATION, flagged=True),
        "violations": ids(EventKind.VIOLATION),
        "opt_out": ids(EventKind.OPT_OUT),
        "churn": ids(EventKind.CHURN),
    }
