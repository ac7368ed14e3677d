"""Lead scores: pure signal arithmetic over a contact's facts, and their set-based DB feed.

A score is the integer sum of its signals, so the stored breakdown adds up to it exactly, and
it is reproducible from the events, the touches, the consents and the rules version alone
(given the time it was computed at). The pure part (:func:`evaluate`, :func:`score`,
:func:`bucket_events`) knows nothing of the database; :func:`load_facts` aggregates one batch of
contacts with a few GROUP BY queries and :func:`store_scores` writes a batch back at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Date,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session

from crm.db import is_postgres
from crm.domain import EventKind
from crm.models import Consent, Contact, Event, SourceInstance, Touch, UTCDateTime
from crm.rules import Rules

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
    tier: str | None = None
    status: str = "active"
    first_seen_at: datetime | None = None
    last_active_at: datetime | None = None
    tier_entered_at: datetime | None = None


class Scored(NamedTuple):
    """A contact's score with its breakdown and the facts the tier rules look at."""

    contact_id: int
    score: int
    breakdown: list[dict[str, Any]]
    ads: int
    violations: int
    purchased: bool
    opted_out: bool
    silent_days: int
    last_active_day: date | None
    facts: ContactFacts


def _round(value: float) -> int:
    # Half up, not Python's half-to-even: operators read these numbers.
    return int(value + 0.5) if value >= 0 else -int(-value + 0.5)


def _capped(points: int, cap: int) -> int:
    return min(points, cap)


def _ids(buckets: Iterable[EventBucket], cap: int, *, flagged: bool = False) -> list[int]:
    # The newest evidence first (ids grow as events are recorded).
    found = [i for b in buckets for i in (b.flagged_ids if flagged else b.ids)]
    return sorted(found, reverse=True)[:cap]


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
    return isinstance(label, str) and label.lower() in _ad_labels(rules)


def _ad_labels(rules: Rules) -> set[str]:
    return {label.lower() for label in rules.signals.negative.ad_labels}


def decay(age_days: int, rules: Rules) -> float:
    """Weight of an event ``age_days`` old: halves every half-life."""
    return float(0.5 ** (max(0, age_days) / rules.signals.engagement.half_life_days))


def bucket_events(
    events: Iterable[tuple[int, str, datetime, Mapping[str, Any]]], rules: Rules, now: datetime
) -> tuple[tuple[EventBucket, ...], tuple[Answer, ...]]:
    """Aggregate raw events (id, kind, occurred_at, payload) as :func:`load_facts` does in SQL."""
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
            answers.append(Answer(event_id, _answers_of(payload)))
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


def _answers_of(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    inner = payload.get("answers")
    return inner if isinstance(inner, Mapping) else payload


def evaluate(facts: ContactFacts, rules: Rules, now: datetime) -> Scored:
    """Score one contact: each signal's integer points, with the events behind them."""
    sig = rules.signals
    cap = rules.breakdown_event_cap
    today = now.astimezone(UTC).date()
    by_kind: dict[str, list[EventBucket]] = {}
    counts: dict[str, int] = {}
    for b in facts.buckets:
        by_kind.setdefault(b.kind, []).append(b)
        counts[b.kind] = counts.get(b.kind, 0) + b.total

    def total(kind: str) -> int:
        return counts.get(kind, 0)

    messages = by_kind.get(EventKind.MESSAGE, [])
    intent_count = sum(b.flagged for b in messages)
    violations_b = by_kind.get(EventKind.VIOLATION, [])
    ads = sum(b.flagged for b in violations_b)
    violations = total(EventKind.VIOLATION) - ads
    opted_out = facts.opted_out or total(EventKind.OPT_OUT) > 0

    parts: list[dict[str, Any]] = []

    def add(signal: str, points: int, events: Callable[[], list[int]]) -> None:
        # Evidence is only gathered for signals that score: most contacts score few.
        if points:
            parts.append({"signal": signal, "points": int(points), "events": events()})

    # Source quality: the best source the contact arrived through.
    if facts.sources:
        best = max(facts.sources, key=lambda k: (sig.source.points_for(k), k))
        points = sig.source.points_for(best)
        label = f"source:{best}"
        if "self_media" in facts.sources and intent_count:
            points += sig.source.self_media_intent_bonus
            label += "+intent"
        add(label, points, list)

    add(
        "intent",
        _capped(sig.intent.weight * intent_count, sig.intent.max_points),
        lambda: _ids(messages, cap, flagged=True),
    )

    engaged = [b for b in facts.buckets if b.kind in sig.engagement.kinds]
    decayed = sum(b.decayed for b in engaged)
    add(
        "engagement",
        _capped(_round(sig.engagement.weight * decayed), sig.engagement.max_points),
        lambda: _ids(engaged, cap),
    )

    shares = by_kind.get(EventKind.SHARE, [])
    add(
        "contribution",
        _capped(
            sig.contribution.message_weight * total(EventKind.MESSAGE)
            + sig.contribution.share_weight * total(EventKind.SHARE),
            sig.contribution.max_points,
        ),
        lambda: _ids([*messages, *shares], cap),
    )

    referrals = by_kind.get(EventKind.REFERRAL, [])
    add(
        "referrals",
        _capped(sig.referrals.weight * total(EventKind.REFERRAL), sig.referrals.max_points),
        lambda: _ids(referrals, cap),
    )

    screening_points, screening_ids = _screening(facts.answers, rules) if facts.answers else (0, [])
    add(
        "screening",
        _capped(screening_points, sig.screening.max_points),
        lambda: screening_ids[:cap],
    )

    attended = by_kind.get(EventKind.ACTIVITY_ATTENDED, [])
    add(
        "attendance",
        _capped(
            sig.attendance.weight * total(EventKind.ACTIVITY_ATTENDED), sig.attendance.max_points
        ),
        lambda: _ids(attended, cap),
    )

    neg = sig.negative
    add("ads", neg.ad_weight if ads else 0, lambda: _ids(violations_b, cap, flagged=True))
    add(
        "violations",
        neg.violation_weight * violations,
        lambda: _ids(violations_b, cap),
    )
    add(
        "opt_out",
        neg.opt_out_weight if opted_out else 0,
        lambda: _ids(by_kind.get("opt_out", []), cap),
    )

    # Silence counts from the last thing the contact did, else from when we first saw them.
    active_days = [b.last_day for b in facts.buckets if b.kind in ACTIVITY_KINDS]
    if facts.last_active_at is not None:
        active_days.append(facts.last_active_at.astimezone(UTC).date())
    last_day = max(active_days, default=None)
    if last_day is None and facts.first_seen_at is not None:
        last_day = facts.first_seen_at.astimezone(UTC).date()
    silent_days = max(0, (today - last_day).days) if last_day is not None else 0
    add("silence", neg.silence_weight if silent_days >= neg.silence_days else 0, list)

    return Scored(
        contact_id=facts.contact_id,
        score=sum(p["points"] for p in parts),
        breakdown=parts,
        ads=ads,
        violations=violations,
        purchased=total(EventKind.PURCHASE) > 0,
        opted_out=opted_out,
        silent_days=silent_days,
        last_active_day=last_day,
        facts=facts,
    )


def _screening(answers: Sequence[Answer], rules: Rules) -> tuple[int, list[int]]:
    points = 0
    ids: list[int] = []
    for question in rules.signals.screening.questions:
        accept = {a.strip().lower() for a in question.accept}
        for answer in sorted(answers, key=lambda a: -a.event_id):
            value = answer.answers.get(question.key)
            if value is not None and str(value).strip().lower() in accept:
                points += question.weight
                if answer.event_id not in ids:
                    ids.append(answer.event_id)
                break
    return points, sorted(ids, reverse=True)


def score(facts: ContactFacts, rules: Rules, now: datetime) -> tuple[int, list[dict[str, Any]]]:
    """The score and its breakdown ({signal, points, events}); the points sum to the score."""
    result = evaluate(facts, rules, now)
    return result.score, result.breakdown


# --- the database side -----------------------------------------------------------------------


def _day_expr(session: Session) -> Any:
    if is_postgres(session):
        return cast(func.timezone("UTC", Event.occurred_at), Date)
    return func.date(Event.occurred_at)


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _matches_any(column: Any, words: Iterable[str], pg: bool) -> Any:
    # PostgreSQL: one regular expression instead of a LIKE per word.
    if pg:
        pattern = "|".join(re.sub(r"([^\w])", r"\\\1", w.lower()) for w in words)
        return column.op("~")(literal(pattern))
    return _like_any(column, words)


def _like_any(column: Any, words: Iterable[str]) -> Any:
    clauses = []
    for word in words:
        escaped = word.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append(column.like(f"%{escaped}%", escape="\\"))
    return or_(*clauses) if clauses else literal(False)


def _id_list(expr: Any, pg: bool) -> Any:
    if pg:
        return func.string_agg(cast(expr, String), literal(","))
    return func.group_concat(expr)


def _parse_ids(value: Any, cap: int) -> tuple[int, ...]:
    if not value:
        return ()
    return tuple(sorted(map(int, str(value).split(",")), reverse=True)[:cap])


def load_facts(
    session: Session, contact_ids: Sequence[int], rules: Rules, now: datetime
) -> dict[int, ContactFacts]:
    """Aggregate the facts of a batch of contacts (ids ascending) in a few GROUP BY queries."""
    if not contact_ids:
        return {}
    lo, hi = contact_ids[0], contact_ids[-1]
    wanted = set(contact_ids)
    base: dict[int, dict[str, Any]] = {}
    for row in session.execute(
        select(
            Contact.id,
            Contact.tier,
            Contact.status,
            Contact.first_seen_at,
            Contact.last_active_at,
            Contact.tier_entered_at,
            Contact.referred_by_id,
        ).where(Contact.id.between(lo, hi))
    ):
        if row.id in wanted:
            base[row.id] = {
                "contact_id": row.id,
                "tier": row.tier,
                "status": row.status,
                "first_seen_at": row.first_seen_at,
                "last_active_at": row.last_active_at,
                "tier_entered_at": row.tier_entered_at,
                "sources": {"referral"} if row.referred_by_id is not None else set(),
                "buckets": [],
                "answers": [],
                "opted_out": False,
            }

    for cid, kind in session.execute(
        select(Touch.contact_id, SourceInstance.kind)
        .join(SourceInstance, SourceInstance.id == Touch.source_instance_id)
        .where(Touch.contact_id.between(lo, hi))
        .group_by(Touch.contact_id, SourceInstance.kind)
    ):
        if cid in base:
            base[cid]["sources"].add(kind)

    pg = is_postgres(session)
    message_text = func.lower(
        func.coalesce(Event.payload["message"].as_string(), Event.payload["text"].as_string())
    )
    label = func.lower(Event.payload["violation"].as_string())
    flag = case(
        (
            and_(
                Event.kind == EventKind.MESSAGE.value,
                _matches_any(message_text, rules.signals.intent.keywords, pg),
            ),
            1,
        ),
        (
            and_(
                Event.kind == EventKind.VIOLATION.value,
                label.in_(sorted(_ad_labels(rules))),
            ),
            1,
        ),
        else_=0,
    )
    cap = rules.breakdown_event_cap
    # One row per event with its flag and day, ranked newest first among the contact's
    # events of the same kind and flag; then one row per (contact, kind): counts, the decayed
    # sum and the newest ids (the newest `cap` of a kind are among the newest `cap` flagged
    # plus the newest `cap` unflagged ones).
    flagged_events = (
        select(
            Event.contact_id,
            Event.kind,
            Event.id,
            flag.label("flag"),
            _day_expr(session).label("day"),
        )
        .where(Event.contact_id.between(lo, hi))
        .subquery()
    )
    ranked = select(
        flagged_events,
        func.row_number()
        .over(
            partition_by=(
                flagged_events.c.contact_id,
                flagged_events.c.kind,
                flagged_events.c.flag,
            ),
            order_by=flagged_events.c.id.desc(),
        )
        .label("rn"),
    ).subquery()
    today = now.astimezone(UTC).date()
    if pg:
        age = literal(today, Date) - ranked.c.day
    else:
        age = func.julianday(literal(today.isoformat())) - func.julianday(ranked.c.day)
    half_life = literal(float(rules.signals.engagement.half_life_days))
    stmt = select(
        ranked.c.contact_id,
        ranked.c.kind,
        func.count().label("n"),
        func.max(ranked.c.day).label("last_day"),
        func.sum(func.power(literal(0.5), age / half_life)).label("decayed"),
        func.sum(ranked.c.flag).label("flagged"),
        _id_list(case((ranked.c.rn <= cap, ranked.c.id), else_=None), pg).label("ids"),
        _id_list(
            case((and_(ranked.c.flag == 1, ranked.c.rn <= cap), ranked.c.id), else_=None), pg
        ).label("flagged_ids"),
    ).group_by(ranked.c.contact_id, ranked.c.kind)
    for cid, kind, n, last_day, decayed, flagged, ids, flagged_ids in session.execute(
        stmt
    ).tuples():
        entry = base.get(cid)
        if entry is not None:
            entry["buckets"].append(
                EventBucket(
                    kind,
                    n,
                    _as_date(last_day),
                    float(decayed or 0.0),
                    _parse_ids(ids, cap),
                    int(flagged or 0),
                    _parse_ids(flagged_ids, cap),
                )
            )

    if rules.signals.screening.questions:
        for cid, eid, payload in session.execute(
            select(Event.contact_id, Event.id, Event.payload).where(
                Event.contact_id.between(lo, hi), Event.kind == EventKind.ANSWER.value
            )
        ):
            if cid in base:
                base[cid]["answers"].append(Answer(int(eid), _answers_of(payload or {})))

    # Opted out: an opt-out recorded after the latest consent (or with none at all).
    latest = (
        select(Consent.contact_id, Consent.kind, func.max(Consent.id).label("last"))
        .where(Consent.contact_id.between(lo, hi))
        .group_by(Consent.contact_id, Consent.kind)
    )
    marks: dict[int, dict[str, int]] = {}
    for cid, kind, last in session.execute(latest):
        marks.setdefault(cid, {})[kind] = int(last)
    for cid, kinds in marks.items():
        if cid in base and kinds.get("opt_out", 0) > kinds.get("consent", 0):
            base[cid]["opted_out"] = True

    return {
        cid: ContactFacts(
            contact_id=cid,
            sources=frozenset(e["sources"]),
            buckets=tuple(e["buckets"]),
            answers=tuple(e["answers"]),
            opted_out=e["opted_out"],
            tier=e["tier"],
            status=e["status"],
            first_seen_at=e["first_seen_at"],
            last_active_at=e["last_active_at"],
            tier_entered_at=e["tier_entered_at"],
        )
        for cid, e in base.items()
    }


def store_scores(session: Session, scored: Sequence[Scored], rules: Rules, now: datetime) -> None:
    """Write a batch of scores back in one statement (COPY + UPDATE … FROM on PostgreSQL)."""
    if not scored:
        return
    if is_postgres(session):
        _store_scores_pg(session, scored, rules, now)
        return
    session.execute(
        _UPDATE_SCORES,
        [
            {
                "id": s.contact_id,
                "score": s.score,
                "breakdown": s.breakdown,
                "warnings": s.violations,
                "version": rules.version,
                "at": now,
            }
            for s in scored
        ],
    )


_UPDATE_SCORES = text(
    "UPDATE contacts SET score = :score, score_breakdown = :breakdown, warnings = :warnings, "
    "rules_version = :version, scored_at = :at, updated_at = :at WHERE id = :id"
).bindparams(
    bindparam("breakdown", type_=Contact.__table__.c.score_breakdown.type),
    bindparam("at", type_=UTCDateTime()),
)


def _store_scores_pg(
    session: Session, scored: Sequence[Scored], rules: Rules, now: datetime
) -> None:
    conn = session.connection()
    conn.execute(
        text(
            "CREATE TEMP TABLE IF NOT EXISTS route_scores "
            "(id bigint PRIMARY KEY, score integer, breakdown jsonb, warnings integer) "
            "ON COMMIT DROP"
        )
    )
    conn.execute(text("TRUNCATE route_scores"))
    raw = conn.connection.driver_connection
    assert raw is not None
    with (
        raw.cursor() as cur,
        cur.copy("COPY route_scores (id, score, breakdown, warnings) FROM STDIN") as copy,
    ):
        for s in scored:
            copy.write_row(
                (s.contact_id, s.score, json.dumps(s.breakdown, ensure_ascii=False), s.violations)
            )
    conn.execute(
        text(
            "UPDATE contacts SET score = s.score, score_breakdown = s.breakdown, "
            "warnings = s.warnings, rules_version = :version, scored_at = :at "
            "FROM route_scores s WHERE contacts.id = s.id"
        ),
        {"version": rules.version, "at": now},
    )
