"""Lead scores: each signal's integer points over a contact's facts, and the breakdown behind them.

A score is the integer sum of its signals, so the stored breakdown adds up to it exactly, and
it is reproducible from the events, the touches, the consents and the rules version alone
(given the time it was computed at). The SQL feeds reduce events to a :class:`Tally` per
contact and score it with :func:`evaluate_tally`, the same arithmetic as :func:`evaluate`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from crm.core.vocabulary import EventKind
from crm.routing.facts import Answer, ContactFacts, Tally, tally
from crm.routing.rules.model import Rules, SourceSignal

# Plain strings: counts are keyed by the stored kind, and str keys hash faster than enums.
_MESSAGE = EventKind.MESSAGE.value
_SHARE = EventKind.SHARE.value
_REFERRAL = EventKind.REFERRAL.value
_ACTIVITY_ATTENDED = EventKind.ACTIVITY_ATTENDED.value
_VIOLATION = EventKind.VIOLATION.value
_OPT_OUT = EventKind.OPT_OUT.value
_PURCHASE = EventKind.PURCHASE.value
_CHURN = EventKind.CHURN.value


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


def evaluate(facts: ContactFacts, rules: Rules, now: datetime) -> Scored:
    """Score one contact: each signal's integer points, with the events behind them."""
    return evaluate_tally(facts, tally(facts, rules), rules, now)


def score(facts: ContactFacts, rules: Rules, now: datetime) -> tuple[int, list[dict[str, Any]]]:
    """The score and its breakdown ({signal, points, events}); the points sum to the score."""
    result = evaluate(facts, rules, now)
    return result.score, result.breakdown


def evaluate_tally(facts: ContactFacts, t: Tally, rules: Rules, now: datetime) -> Scored:
    """Score one contact from its tally (``facts`` gives sources, answers, consent, dates)."""
    counts = t.counts
    ads = t.ads
    violations = counts.get(_VIOLATION, 0) - ads
    opted_out = facts.opted_out or counts.get(_OPT_OUT, 0) > 0
    last_day = last_active_day(facts, t)
    today = now.astimezone(UTC).date()
    silent_days = max(0, (today - last_day).days) if last_day is not None else 0

    lines = _Breakdown(t.evidence, rules.breakdown_event_cap)
    _add_source(lines, facts.sources, t.intent, rules)
    _add_engagement(lines, facts, t, rules)
    _add_penalties(lines, ads, violations, opted_out, silent_days, rules)
    lines.add("churn", rules.signals.negative.churn_weight * counts.get(_CHURN, 0), "churn")
    lines.add(
        "silence",
        rules.signals.negative.silence_weight
        if silent_days >= rules.signals.negative.silence_days
        else 0,
    )
    return Scored(
        contact_id=facts.contact_id,
        score=sum(p["points"] for p in lines.parts),
        breakdown=lines.parts,
        ads=ads,
        violations=violations,
        purchased=counts.get(_PURCHASE, 0) > 0,
        opted_out=opted_out,
        silent_days=silent_days,
        last_active_day=last_day,
        facts=facts,
    )


def last_active_day(facts: ContactFacts, t: Tally) -> date | None:
    """Silence counts from the last thing the contact did, else from when we first saw them."""
    last_day = t.last_day
    if facts.last_active_at is not None:
        seen = facts.last_active_at.astimezone(UTC).date()
        last_day = seen if last_day is None else max(last_day, seen)
    if last_day is None and facts.first_seen_at is not None:
        last_day = facts.first_seen_at.astimezone(UTC).date()
    return last_day


class _Breakdown:
    """The breakdown lines of one contact, in the order the signals are evaluated."""

    __slots__ = ("_cap", "_evidence", "parts")

    def __init__(self, evidence: Mapping[str, Sequence[int]], cap: int) -> None:
        self._evidence = evidence
        self._cap = cap
        self.parts: list[dict[str, Any]] = []

    def add(self, signal: str, points: int, evidence: str | None = None) -> None:
        # Evidence is only sorted for signals that score: most contacts score few.
        if points:
            found = self._evidence.get(evidence, ()) if evidence else ()
            events = sorted(found, reverse=True)[: self._cap] if found else []
            self.parts.append({"signal": signal, "points": int(points), "events": events})

    def add_events(self, signal: str, points: int, events: list[int]) -> None:
        if points:
            self.parts.append({"signal": signal, "points": points, "events": events[: self._cap]})


def _add_source(lines: _Breakdown, sources: frozenset[str], intent: int, rules: Rules) -> None:
    # Source quality: the best source the contact arrived through.
    if not sources:
        return
    table = rules.signals.source
    best = _best_source(sources, table)
    points = table.points_for(best)
    label = f"source:{best}"
    if "self_media" in sources and intent:
        points += table.self_media_intent_bonus
        label += "+intent"
    lines.add(label, points)


def _add_engagement(lines: _Breakdown, facts: ContactFacts, t: Tally, rules: Rules) -> None:
    # Intent, engagement, contribution, referrals, screening, attendance: in breakdown order.
    sig = rules.signals
    counts = t.counts
    lines.add("intent", min(sig.intent.weight * t.intent, sig.intent.max_points), "intent")
    lines.add(
        "engagement",
        min(_round(sig.engagement.weight * t.decayed), sig.engagement.max_points),
        "engagement",
    )
    contribution = sig.contribution.message_weight * counts.get(
        _MESSAGE, 0
    ) + sig.contribution.share_weight * counts.get(_SHARE, 0)
    lines.add("contribution", min(contribution, sig.contribution.max_points), "contribution")
    lines.add(
        "referrals",
        min(sig.referrals.weight * counts.get(_REFERRAL, 0), sig.referrals.max_points),
        "referrals",
    )
    if facts.answers:
        points, ids = _screening(facts.answers, rules)
        lines.add_events("screening", min(points, sig.screening.max_points), ids)
    lines.add(
        "attendance",
        min(sig.attendance.weight * counts.get(_ACTIVITY_ATTENDED, 0), sig.attendance.max_points),
        "attendance",
    )


def _add_penalties(
    lines: _Breakdown, ads: int, violations: int, opted_out: bool, silent_days: int, rules: Rules
) -> None:
    neg = rules.signals.negative
    lines.add("ads", neg.ad_weight if ads else 0, "ads")
    lines.add("violations", neg.violation_weight * violations, "violations")
    lines.add("opt_out", neg.opt_out_weight if opted_out else 0, "opt_out")


def _round(value: float) -> int:
    # Half up, not Python's half-to-even: operators read these numbers.
    return int(value + 0.5) if value >= 0 else -int(-value + 0.5)


def _best_source(sources: frozenset[str], table: SourceSignal) -> str:
    # Few distinct source sets exist: pick each set's best once per rules object.
    key = (id(table), sources)
    found = _BEST_SOURCE.get(key)
    if found is not None and found[0] is table:
        return found[1]
    best = max(sources, key=lambda k: (table.points_for(k), k))
    if len(_BEST_SOURCE) > 4096:
        _BEST_SOURCE.clear()
    _BEST_SOURCE[key] = (table, best)
    return best


_BEST_SOURCE: dict[tuple[int, frozenset[str]], tuple[SourceSignal, str]] = {}


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
