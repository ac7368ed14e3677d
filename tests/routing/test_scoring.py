"""Signal by signal: each scores what the rules say, and a breakdown sums to its score."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crm.routing.facts import Answer, ContactFacts, bucket_events
from crm.routing.rules import Rules, load_rules
from crm.routing.signals import breakdown_text, evaluate, score

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
RULES = load_rules()


def facts(*events: tuple[str, float, dict[str, Any]], **kw: Any) -> ContactFacts:
    """Events as (kind, days ago, payload); ids in order of appearance."""
    raw = [
        (i + 1, kind, NOW - timedelta(days=ago), payload)
        for i, (kind, ago, payload) in enumerate(events)
    ]
    buckets, answers = bucket_events(raw, RULES, NOW)
    kw.setdefault("first_seen_at", NOW - timedelta(days=1))
    return ContactFacts(contact_id=1, buckets=buckets, answers=answers, **kw)


def points(f: ContactFacts, rules: Rules = RULES) -> dict[str, int]:
    total, breakdown = score(f, rules, NOW)
    assert total == sum(p["points"] for p in breakdown)
    return {p["signal"]: p["points"] for p in breakdown}


def test_nothing_known_scores_zero() -> None:
    assert score(ContactFacts(contact_id=1), RULES, NOW) == (0, [])


@pytest.mark.parametrize(
    ("sources", "label", "expected"),
    [
        ({"qr_signup", "peer_group"}, "source:qr_signup", 30),
        ({"self_media"}, "source:self_media", 15),
        ({"peer_group"}, "source:peer_group", 5),
        ({"referral", "peer_group"}, "source:referral", 20),
    ],
)
def test_source_quality_takes_the_best_source(sources: set[str], label: str, expected: int) -> None:
    assert points(facts(sources=frozenset(sources))) == {label: expected}


def test_self_media_with_intent_gets_a_bonus() -> None:
    f = facts(("message", 0, {"message": "这个课多少钱?"}), sources=frozenset({"self_media"}))
    assert points(f)["source:self_media+intent"] == 15 + 10


def test_intent_keywords_are_counted_per_message_and_capped() -> None:
    f = facts(
        ("message", 0, {"message": "价格是多少"}),
        ("message", 0, {"text": "怎么买 PRICE list"}),
        ("message", 0, {"message": "今天天气不错"}),
    )
    _total, breakdown = score(f, RULES, NOW)
    intent = next(p for p in breakdown if p["signal"] == "intent")
    assert intent["points"] == 20
    assert intent["events"] == [2, 1]  # the intent messages, newest first
    many = facts(*[("message", 0, {"message": "报名"})] * 9)
    assert points(many)["intent"] == RULES.signals.intent.max_points


def test_intent_keywords_are_configurable() -> None:
    rules = RULES.model_copy(
        update={
            "signals": RULES.signals.model_copy(
                update={"intent": RULES.signals.intent.model_copy(update={"keywords": ["团购"]})}
            )
        }
    )
    f = facts(("message", 0, {"message": "有团购吗"}), ("message", 0, {"message": "价格"}))
    assert points(f, rules)["intent"] == 10


def test_engagement_decays_with_half_life() -> None:
    fresh = facts(*[("message", 0, {})] * 4)
    old = facts(*[("message", 14, {})] * 4)
    older = facts(*[("message", 28, {})] * 4)
    assert points(fresh)["engagement"] == 12  # 3 × 4
    assert points(old)["engagement"] == 6  # one half-life
    assert points(older)["engagement"] == 3  # two half-lives
    assert points(facts(*[("share", 0, {})] * 20))["engagement"] == 30  # capped


def test_contribution_counts_messages_and_shares() -> None:
    f = facts(("message", 40, {}), ("message", 40, {}), ("share", 40, {}))
    assert points(f)["contribution"] == 2 * 1 + 4


def test_referrals_brought() -> None:
    f = facts(("referral", 1, {}), ("referral", 2, {}))
    assert points(f)["referrals"] == 30
    assert points(facts(*[("referral", 1, {})] * 5))["referrals"] == 45


def test_screening_answers_match_accepted_values_once_per_question() -> None:
    f = ContactFacts(
        contact_id=1,
        answers=(
            Answer(7, {"goal": "考研", "budget": "没有"}),
            Answer(9, {"goal": "考研"}),
        ),
    )
    _total, breakdown = score(f, RULES, NOW)
    assert breakdown == [{"signal": "screening", "points": 15, "events": [9]}]
    both = facts(("answer", 0, {"answers": {"goal": "留学", "budget": " YES"}}))
    assert points(both)["screening"] == 30


def test_attendance() -> None:
    assert points(facts(("activity_attended", 40, {})))["attendance"] == 8


def test_ads_violations_and_opt_out_are_negative() -> None:
    f = facts(
        ("violation", 0, {"violation": "广告"}),
        ("violation", 0, {"violation": "spam-link"}),
        ("violation", 0, {"violation": "insult"}),
        ("opt_out", 0, {}),
    )
    p = points(f)
    assert p["ads"] == -100
    assert p["violations"] == -30
    assert p["opt_out"] == -50
    result = evaluate(f, RULES, NOW)
    assert (result.ads, result.violations, result.opted_out) == (1, 2, True)
    assert points(ContactFacts(contact_id=1, opted_out=True))["opt_out"] == -50


def test_long_silence_costs_points() -> None:
    quiet = facts(("message", 30, {}), first_seen_at=NOW - timedelta(days=60))
    assert points(quiet)["silence"] == -10
    assert evaluate(quiet, RULES, NOW).silent_days == 30
    recent = facts(("message", 3, {}), first_seen_at=NOW - timedelta(days=60))
    assert "silence" not in points(recent)
    never = ContactFacts(contact_id=1, first_seen_at=NOW - timedelta(days=25))
    assert points(never) == {"silence": -10}


def test_purchase_is_a_fact_not_points() -> None:
    f = facts(("purchase", 0, {"amount": 999}))
    assert evaluate(f, RULES, NOW).purchased


def test_breakdown_event_lists_are_capped() -> None:
    f = facts(*[("message", d, {}) for d in range(12)])
    _, breakdown = score(f, RULES, NOW)
    for part in breakdown:
        assert len(part["events"]) <= RULES.breakdown_event_cap
    assert next(p for p in breakdown if p["signal"] == "engagement")["events"] == [12, 11, 10, 9, 8]


def test_same_events_same_rules_same_score() -> None:
    events = [("message", 3, {"message": "报名"}), ("share", 1, {}), ("referral", 2, {})]
    a = facts(*events, sources=frozenset({"qr_signup"}))
    assert score(a, RULES, NOW) == score(a, RULES, NOW)
    # Order of arrival does not matter, only the events themselves.
    b = facts(*reversed(events), sources=frozenset({"qr_signup"}))
    assert points(a) == points(b)


@pytest.mark.parametrize(
    "breakdown",
    [
        [],
        [{"signal": "source:self_media+intent", "points": 25, "events": []}],
        [
            {"signal": 'quote " backslash \\ newline \n 价格', "points": -3, "events": [9, 4, 1]},
            {"signal": "silence", "points": 0, "events": [7]},
        ],
    ],
)
def test_breakdown_text_is_the_json_document(breakdown: list[dict[str, Any]]) -> None:
    # Stored breakdowns are compared as text: the direct formatting must equal the JSON encoder's.
    assert breakdown_text(breakdown) == json.dumps(breakdown, ensure_ascii=False, sort_keys=True)
