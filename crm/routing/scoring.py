"""Lead scores: pure signal arithmetic over a contact's facts, and their set-based DB feed.

A score is the integer sum of its signals, so the stored breakdown adds up to it exactly, and
it is reproducible from the events, the touches, the consents and the rules version alone
(given the time it was computed at). The pure part (:func:`evaluate`, :func:`score`,
:func:`bucket_events`, :func:`evaluate_tally`) knows nothing of the database;
:func:`score_range` reduces a batch of contacts' events to one row each in a single aggregate
query and scores those rows with the same arithmetic, and :func:`store_scores` writes back, at
once, only the contacts whose score or breakdown changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Date,
    Float,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from crm.core.db import is_postgres
from crm.core.vocabulary import ContactStatus, EventKind
from crm.models import Consent, Contact, Event, SourceInstance, Touch, UTCDateTime
from crm.routing.rules import Rules

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
    }


# Plain strings: counts are keyed by the stored kind, and str keys hash faster than enums.
_MESSAGE = EventKind.MESSAGE.value
_SHARE = EventKind.SHARE.value
_REFERRAL = EventKind.REFERRAL.value
_ACTIVITY_ATTENDED = EventKind.ACTIVITY_ATTENDED.value
_VIOLATION = EventKind.VIOLATION.value
_OPT_OUT = EventKind.OPT_OUT.value
_PURCHASE = EventKind.PURCHASE.value


def evaluate(facts: ContactFacts, rules: Rules, now: datetime) -> Scored:
    """Score one contact: each signal's integer points, with the events behind them."""
    return evaluate_tally(facts, tally(facts, rules), rules, now)


def evaluate_tally(facts: ContactFacts, t: Tally, rules: Rules, now: datetime) -> Scored:
    """Score one contact from its tally (``facts`` gives sources, answers, consent, dates)."""
    sig = rules.signals
    cap = rules.breakdown_event_cap
    today = now.astimezone(UTC).date()
    counts = t.counts

    intent_count = t.intent
    ads = t.ads
    violations = counts.get(_VIOLATION, 0) - ads
    opted_out = facts.opted_out or counts.get(_OPT_OUT, 0) > 0

    parts: list[dict[str, Any]] = []

    def add(signal: str, points: int, evidence: str | None = None) -> None:
        # Evidence is only sorted for signals that score: most contacts score few.
        if points:
            found = t.evidence.get(evidence, ()) if evidence else ()
            events = sorted(found, reverse=True)[:cap] if found else []
            parts.append({"signal": signal, "points": int(points), "events": events})

    # Source quality: the best source the contact arrived through.
    if facts.sources:
        best = _best_source(facts.sources, rules)
        points = sig.source.points_for(best)
        label = f"source:{best}"
        if "self_media" in facts.sources and intent_count:
            points += sig.source.self_media_intent_bonus
            label += "+intent"
        add(label, points)

    add("intent", _capped(sig.intent.weight * intent_count, sig.intent.max_points), "intent")
    add(
        "engagement",
        _capped(_round(sig.engagement.weight * t.decayed), sig.engagement.max_points),
        "engagement",
    )
    add(
        "contribution",
        _capped(
            sig.contribution.message_weight * counts.get(_MESSAGE, 0)
            + sig.contribution.share_weight * counts.get(_SHARE, 0),
            sig.contribution.max_points,
        ),
        "contribution",
    )
    add(
        "referrals",
        _capped(sig.referrals.weight * counts.get(_REFERRAL, 0), sig.referrals.max_points),
        "referrals",
    )
    if facts.answers:
        screening_points, screening_ids = _screening(facts.answers, rules)
        screening_points = _capped(screening_points, sig.screening.max_points)
        if screening_points:
            parts.append(
                {"signal": "screening", "points": screening_points, "events": screening_ids[:cap]}
            )
    add(
        "attendance",
        _capped(
            sig.attendance.weight * counts.get(_ACTIVITY_ATTENDED, 0), sig.attendance.max_points
        ),
        "attendance",
    )

    neg = sig.negative
    add("ads", neg.ad_weight if ads else 0, "ads")
    add("violations", neg.violation_weight * violations, "violations")
    add("opt_out", neg.opt_out_weight if opted_out else 0, "opt_out")

    # Silence counts from the last thing the contact did, else from when we first saw them.
    last_day = t.last_day
    if facts.last_active_at is not None:
        seen = facts.last_active_at.astimezone(UTC).date()
        last_day = seen if last_day is None else max(last_day, seen)
    if last_day is None and facts.first_seen_at is not None:
        last_day = facts.first_seen_at.astimezone(UTC).date()
    silent_days = max(0, (today - last_day).days) if last_day is not None else 0
    add("silence", neg.silence_weight if silent_days >= neg.silence_days else 0)

    return Scored(
        contact_id=facts.contact_id,
        score=sum(p["points"] for p in parts),
        breakdown=parts,
        ads=ads,
        violations=violations,
        purchased=counts.get(_PURCHASE, 0) > 0,
        opted_out=opted_out,
        silent_days=silent_days,
        last_active_day=last_day,
        facts=facts,
    )


def _best_source(sources: frozenset[str], rules: Rules) -> str:
    # Few distinct source sets exist: pick each set's best once per rules object.
    table = rules.signals.source
    key = (id(table), sources)
    found = _BEST_SOURCE.get(key)
    if found is not None and found[0] is table:
        return found[1]
    best = max(sources, key=lambda k: (table.points_for(k), k))
    if len(_BEST_SOURCE) > 4096:
        _BEST_SOURCE.clear()
    _BEST_SOURCE[key] = (table, best)
    return best


_BEST_SOURCE: dict[tuple[int, frozenset[str]], tuple[Any, str]] = {}


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


def _matches_any(column: Any, rules: Rules, pg: bool) -> Any:
    # PostgreSQL: LIKE ANY over an array, several times cheaper than one regular expression.
    patterns = intent_patterns(rules)
    if pg:
        return column.like(any_(literal(patterns, ARRAY(Text))))
    return or_(*[column.like(p, escape="\\") for p in patterns])


def _id_list(expr: Any, cond: Any, pg: bool) -> Any:
    # PostgreSQL hands back a list (psycopg parses it; no per-element SQLAlchemy processing);
    # SQLite a comma-separated string (see _id_seq).
    if pg:
        return type_coerce(func.array_agg(expr).filter(cond), NullType())
    return func.group_concat(expr).filter(cond)


def _id_seq(value: Any) -> Sequence[int]:
    if not value:
        return ()
    if isinstance(value, list):
        return value
    return [int(v) for v in str(value).split(",")]


def _text_list(expr: Any, pg: bool) -> Any:
    if pg:
        return func.string_agg(expr, literal(","))
    return func.group_concat(expr)


def breakdown_text(breakdown: list[dict[str, Any]]) -> str:
    """The stored form of a breakdown: what PostgreSQL's jsonb prints, so it compares as text.

    Exactly ``json.dumps(breakdown, ensure_ascii=False, sort_keys=True)``, formatted directly:
    every contact's breakdown is compared on each run, and the generic encoder cost more than
    the scoring itself.
    """
    return (
        "["
        + ", ".join(
            f'{{"events": [{", ".join(map(str, p["events"]))}], "points": {int(p["points"])},'
            f' "signal": {_json_string(p["signal"])}}}'
            for p in breakdown
        )
        + "]"
    )


_json_labels: dict[str, str] = {}


def _json_string(value: str) -> str:
    # Signal labels repeat across contacts: encode each once.
    found = _json_labels.get(value)
    if found is None:
        found = _json_labels[value] = json.dumps(value, ensure_ascii=False)
    return found


class Rescored(NamedTuple):
    """A batch scored: every contact, and those whose stored score must be rewritten."""

    scored: list[Scored]
    changed: list[tuple[Scored, str]]


def score_range(
    session: Session,
    lo: int,
    hi: int,
    rules: Rules,
    now: datetime,
    *,
    only: Sequence[int] | None = None,
) -> Rescored:
    """Score the active contacts with ids in [lo, hi] (and in ``only``, when given): one
    aggregate query, then the rules.

    Events are reduced in SQL to one row per contact (counts per kind, intent and ad counts,
    the decayed engagement sum, the ids of the kinds each signal cites as evidence); the
    integer points come from :func:`evaluate_tally`, the same arithmetic as :func:`score`. A
    contact is ``changed`` when its score, breakdown, warnings or rules version differ from
    the stored ones.
    """
    pg = is_postgres(session)

    def within(column: Any) -> Any:
        if only is None:
            return column.between(lo, hi)
        # PostgreSQL takes the ids as one array, not thousands of bound parameters.
        listed = column == any_(literal(list(only), ARRAY(BigInteger))) if pg else column.in_(only)
        return and_(column.between(lo, hi), listed)

    in_range = within(Event.contact_id)
    message_text = func.lower(
        func.coalesce(Event.payload["message"].as_string(), Event.payload["text"].as_string())
    )
    label = func.lower(Event.payload["violation"].as_string())
    flag = case(
        (
            and_(
                Event.kind == EventKind.MESSAGE.value,
                _matches_any(message_text, rules, pg),
            ),
            1,
        ),
        (
            and_(
                Event.kind == EventKind.VIOLATION.value,
                label.in_(sorted(ad_labels(rules))),
            ),
            1,
        ),
        else_=0,
    )
    flagged_events = select(
        Event.contact_id,
        Event.kind,
        Event.id,
        flag.label("flag"),
        _day_expr(session).label("day"),
    ).where(in_range)
    # OFFSET 0 keeps the subquery from being flattened: the flag (a JSON lookup and a regular
    # expression) and the day are computed once per event, not once per aggregate citing them.
    ranked = flagged_events.offset(0).subquery()
    r = ranked.c
    today = now.astimezone(UTC).date()
    if pg:
        age = func.greatest(literal(today, Date) - r.day, 0)
        weight = func.power(
            cast(literal(0.5), Float),
            cast(age, Float) / cast(literal(float(rules.signals.engagement.half_life_days)), Float),
        )
    else:
        age = func.max(func.julianday(literal(today.isoformat())) - func.julianday(r.day), 0)
        weight = func.power(0.5, age / literal(float(rules.signals.engagement.half_life_days)))
    engaged = [k.value for k in rules.signals.engagement.kinds]
    message, violation = EventKind.MESSAGE.value, EventKind.VIOLATION.value

    def ids(cond: Any) -> Any:
        return _id_list(r.id, cond, pg)

    agg = (
        select(
            r.contact_id.label("cid"),
            *[func.count().filter(r.kind == k.value).label(f"n_{k.value}") for k in _COUNTED],
            func.count().filter(and_(r.kind == message, r.flag == 1)).label("n_intent"),
            func.count().filter(and_(r.kind == violation, r.flag == 1)).label("n_ads"),
            func.sum(weight).filter(r.kind.in_(engaged)).label("decayed"),
            func.max(r.day).filter(r.kind.in_([k.value for k in ACTIVITY_KINDS])).label("last_day"),
            ids(and_(r.kind == message, r.flag == 1)).label("e_intent"),
            ids(r.kind.in_(engaged)).label("e_engagement"),
            ids(r.kind.in_([message, EventKind.SHARE.value])).label("e_contribution"),
            ids(r.kind == EventKind.REFERRAL.value).label("e_referrals"),
            ids(r.kind == EventKind.ACTIVITY_ATTENDED.value).label("e_attendance"),
            ids(and_(r.kind == violation, r.flag == 1)).label("e_ads"),
            ids(r.kind == violation).label("e_violations"),
            ids(r.kind == EventKind.OPT_OUT.value).label("e_opt_out"),
        )
        .group_by(r.contact_id)
        .subquery()
    )
    kinds = (
        select(Touch.contact_id, SourceInstance.kind)
        .join(SourceInstance, SourceInstance.id == Touch.source_instance_id)
        .where(within(Touch.contact_id))
        .distinct()
        .subquery()
    )
    sources = (
        select(kinds.c.contact_id.label("cid"), _text_list(kinds.c.kind, pg).label("kinds"))
        .group_by(kinds.c.contact_id)
        .subquery()
    )
    # Opted out: an opt-out recorded after the latest consent (or with none at all).
    consents = (
        select(
            Consent.contact_id.label("cid"),
            func.max(Consent.id).filter(Consent.kind == "opt_out").label("opt_out"),
            func.max(Consent.id).filter(Consent.kind == "consent").label("consent"),
        )
        .where(within(Consent.contact_id))
        .group_by(Consent.contact_id)
        .subquery()
    )
    stmt = (
        select(
            Contact.id,
            Contact.tier,
            Contact.status,
            Contact.first_seen_at,
            Contact.last_active_at,
            Contact.tier_entered_at,
            Contact.referred_by_id,
            Contact.score,
            cast(Contact.score_breakdown, Text).label("stored"),
            Contact.warnings,
            Contact.rules_version,
            sources.c.kinds,
            consents.c.opt_out,
            consents.c.consent,
            agg,
        )
        .outerjoin(agg, agg.c.cid == Contact.id)
        .outerjoin(sources, sources.c.cid == Contact.id)
        .outerjoin(consents, consents.c.cid == Contact.id)
        .where(within(Contact.id), Contact.status == ContactStatus.ACTIVE.value)
        .order_by(Contact.id)
    )
    answers: dict[int, list[Answer]] = {}
    if rules.signals.screening.questions:
        for cid, eid, payload in session.execute(
            select(Event.contact_id, Event.id, Event.payload).where(
                in_range, Event.kind == EventKind.ANSWER.value
            )
        ):
            answers.setdefault(int(cid), []).append(Answer(int(eid), _answers_of(payload or {})))

    source_sets: dict[Any, frozenset[str]] = {}
    scored: list[Scored] = []
    changed: list[tuple[Scored, str]] = []
    counted_cols = [(f"n_{k.value}", k.value) for k in _COUNTED]
    evidence = [f"e_{name}" for name in _EVIDENCE]
    version = rules.version
    # Core execution: the ORM's row loading layer cost as much as the scoring.
    result_rows = session.connection().execute(stmt)
    # Positional access: a mapping per row costs more than the scoring itself.
    at = {name: i for i, name in enumerate(result_rows.keys())}
    rows = result_rows.all()
    counted = [(at[col], kind) for col, kind in counted_cols]
    evidence_at = {name: at[col] for name, col in zip(_EVIDENCE, evidence, strict=True)}
    i_tier, i_status, i_first, i_active, i_entered = (
        at[c] for c in ("tier", "status", "first_seen_at", "last_active_at", "tier_entered_at")
    )
    (
        i_kinds,
        i_ref,
        i_opt,
        i_consent,
        i_id,
        i_cid,
        i_last,
        i_intent,
        i_ads,
        i_decayed,
        i_score,
        i_stored,
        i_warnings,
        i_version,
    ) = (
        at[c]
        for c in (
            "kinds",
            "referred_by_id",
            "opt_out",
            "consent",
            "id",
            "cid",
            "last_day",
            "n_intent",
            "n_ads",
            "decayed",
            "score",
            "stored",
            "warnings",
            "rules_version",
        )
    )
    for row in rows:
        key = (row[i_kinds], row[i_ref] is not None)
        found = source_sets.get(key)
        if found is None:
            names = set(str(row[i_kinds]).split(",")) if row[i_kinds] else set()
            if key[1]:
                names.add("referral")
            found = source_sets[key] = frozenset(names)
        opt, consent = row[i_opt], row[i_consent]
        cid = row[i_id]
        facts = ContactFacts(
            contact_id=cid,
            sources=found,
            answers=tuple(answers.get(cid, ())),
            opted_out=opt is not None and opt > (consent or 0),
            tier=row[i_tier],
            status=row[i_status],
            first_seen_at=row[i_first],
            last_active_at=row[i_active],
            tier_entered_at=row[i_entered],
        )
        if row[i_cid] is None:
            t = Tally(counts={})
        else:
            last = row[i_last]
            t = Tally(
                counts={kind: row[i] for i, kind in counted if row[i]},
                intent=row[i_intent],
                ads=row[i_ads],
                decayed=float(row[i_decayed] or 0.0),
                last_day=_as_date(last) if last is not None else None,
                evidence=_RowEvidence(row, evidence_at),
            )
        result = evaluate_tally(facts, t, rules, now)
        scored.append(result)
        text_form = breakdown_text(result.breakdown)
        if (
            result.score != row[i_score]
            or text_form != row[i_stored]
            or result.violations != row[i_warnings]
            or row[i_version] != version
        ):
            changed.append((result, text_form))
    return Rescored(scored, changed)


class _RowEvidence(Mapping[str, Sequence[int]]):
    """A row's evidence lists, parsed only for the signals that score (most contacts: few)."""

    __slots__ = ("_at", "_row")

    def __init__(self, row: Sequence[Any], at: Mapping[str, int]) -> None:
        self._row = row
        self._at = at

    def __getitem__(self, name: str) -> Sequence[int]:
        return _id_seq(self._row[self._at[name]])

    def __iter__(self) -> Iterator[str]:
        return iter(self._at)

    def __len__(self) -> int:
        return len(self._at)


# Kinds whose events are counted per contact, and the signals that cite events.
_COUNTED = (
    EventKind.MESSAGE,
    EventKind.SHARE,
    EventKind.REFERRAL,
    EventKind.ACTIVITY_ATTENDED,
    EventKind.VIOLATION,
    EventKind.OPT_OUT,
    EventKind.PURCHASE,
)
_EVIDENCE = (
    "intent",
    "engagement",
    "contribution",
    "referrals",
    "attendance",
    "ads",
    "violations",
    "opt_out",
)


def store_scores(
    session: Session, changed: Sequence[tuple[Scored, str]], rules: Rules, now: datetime
) -> None:
    """Write changed scores back at once (PostgreSQL: COPY into a temp table + UPDATE … FROM)."""
    if not changed:
        return
    if is_postgres(session):
        _store_scores_pg(session, changed, rules, now)
        return
    session.execute(
        _UPDATE_SCORES,
        [
            {
                "id": s.contact_id,
                "score": s.score,
                "breakdown": text_form,
                "warnings": s.violations,
                "version": rules.version,
                "at": now,
            }
            for s, text_form in changed
        ],
    )


_UPDATE_SCORES = text(
    "UPDATE contacts SET score = :score, score_breakdown = :breakdown, warnings = :warnings, "
    "rules_version = :version, scored_at = :at, updated_at = :at WHERE id = :id"
).bindparams(bindparam("at", type_=UTCDateTime()))


def _store_scores_pg(
    session: Session, changed: Sequence[tuple[Scored, str]], rules: Rules, now: datetime
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
        for s, text_form in changed:
            copy.write_row((s.contact_id, s.score, text_form, s.violations))
    conn.execute(
        text(
            "UPDATE contacts SET score = s.score, score_breakdown = s.breakdown, "
            "warnings = s.warnings, rules_version = :version, scored_at = :at, updated_at = :at "
            "FROM route_scores s WHERE contacts.id = s.id"
        ),
        {"version": rules.version, "at": now},
    )
