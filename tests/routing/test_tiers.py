"""The tier state machine, transition by transition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

import pytest

from crm.core.vocabulary import Tier
from crm.routing.facts import ContactFacts
from crm.routing.rules import Rules, load_rules
from crm.routing.signals import Scored
from crm.routing.tier_reasons import TierReason, typed, why
from crm.routing.tier_rules import TierFacts, Transition, may_move, moves_of, next_tier

RULES = load_rules()  # active: enter 20 / stay 10; prospect: enter 60 / stay 45
QUIET = TierFacts()


def move(current: str | None, score: int, **facts: object) -> Transition | None:
    tier = Tier(current) if current is not None else None
    return next_tier(tier, score, TierFacts(**facts), RULES)  # type: ignore[arg-type]


def to(current: str | None, score: int, **facts: object) -> str | None:
    result = move(current, score, **facts)
    return "stay" if result is None else (result.to_tier or "removed")


def test_new_contacts_enter_open_whatever_their_score() -> None:
    t = move(None, 500)
    assert t == Transition(None, "open", why(TierReason.ENTERED))
    assert t.reason == "entered the funnel"
    assert t.key == "new->open"


def test_promotion_one_step_at_a_time() -> None:
    assert to("open", 19) == "stay"
    assert to("open", 20) == "active"
    assert to("open", 100) == "active"  # no skipping prospect
    assert to("active", 59) == "stay"
    assert to("active", 60) == "prospect"
    assert to("prospect", 1000) == "stay"  # paid only by purchase or a sale
    up = move("open", 25)
    assert up is not None and up.reason == "score 25 >= 20"
    assert (up.why.key, up.why.stored_params) == ("tier.why.score_up", {"score": 25, "at": 20})


def test_hysteresis_no_flapping_around_the_threshold() -> None:
    # Entered active at 20; scores between stay_above and enter_at keep it there.
    for score in (19, 15, 10):
        assert to("active", score) == "stay"
    assert to("active", 9) == "open"
    assert to("open", 15) == "stay"  # needs enter_at again to come back
    for score in (59, 50, 45):
        assert to("prospect", score) == "stay"
    assert to("prospect", 44) == "active"
    t = move("prospect", 44)
    assert t is not None and t.key == "prospect->active" and "stay_above 45" in t.reason
    assert t.why == why(TierReason.SCORE_DOWN, score=44, at=45)


def test_purchase_jumps_to_paid_from_any_tier() -> None:
    for tier in ("open", "active", "prospect"):
        t = move(tier, 0, purchased=True)
        assert t == Transition(tier, "paid", why(TierReason.PURCHASE))
    assert move("paid", 0, purchased=True) is None


def test_paid_is_never_demoted() -> None:
    assert move("paid", -100, silent_days=400, days_in_tier=400) is None


def test_ads_remove_at_once_even_paid_or_new() -> None:
    for tier in (None, "open", "active", "prospect", "paid"):
        t = move(tier, 80, ads=1)
        assert t is not None and t.removed and t.reason.startswith("removed: 1 ad")
    assert move("active", 30, ads=1).key == "active->removed"  # type: ignore[union-attr]


def test_violations_warn_then_remove() -> None:
    assert to("active", 30, violations=1) == "stay"
    assert to("active", 30, violations=2) == "stay"
    t = move("active", 30, violations=3)
    assert t is not None and t.removed and "3 rule violations (limit 3)" in t.reason
    assert t.why.stored_params == {"n": 3, "limit": 3}


def test_silence_demotes_one_tier_after_enough_time_in_it() -> None:
    assert to("prospect", 70, silent_days=30, days_in_tier=40) == "active"
    # Just demoted (days_in_tier 0): the next run neither demotes again right away nor
    # promotes back on old points while the contact stays silent.
    assert to("active", 70, silent_days=31, days_in_tier=0) == "stay"
    assert to("active", 70, silent_days=0, days_in_tier=0) == "prospect"
    assert to("active", 30, silent_days=29, days_in_tier=90) == "stay"
    t = move("active", 15, silent_days=45, days_in_tier=45)
    assert t == Transition("active", "open", why(TierReason.SILENT, days=45))
    assert t.reason == "silent 45 days"


def test_lurkers_in_open_are_cleaned_out() -> None:
    assert to("open", 5, silent_days=89, days_in_tier=89) == "stay"
    t = move("open", 5, silent_days=90, days_in_tier=90)
    assert t == Transition("open", None, why(TierReason.REMOVED_SILENT, days=90))
    assert t.reason == "removed: silent 90 days"


def test_opted_out_contacts_are_never_promoted() -> None:
    assert to("open", 100, opted_out=True) == "stay"
    assert to("active", 100, opted_out=True) == "stay"
    # …but can still move down and out.
    assert to("active", 5, opted_out=True) == "open"
    assert to("prospect", 10, opted_out=True, ads=1) == "removed"


@pytest.mark.parametrize("remove_on_ad", [True, False])
def test_rules_switch_ad_removal(remove_on_ad: bool) -> None:
    rules = RULES.model_copy(
        update={"lifecycle": RULES.lifecycle.model_copy(update={"remove_on_ad": remove_on_ad})}
    )
    t = next_tier(Tier.ACTIVE, 15, TierFacts(ads=1), rules)
    assert (t is not None and t.removed) is remove_on_ad


def test_purchase_jump_can_be_switched_off() -> None:
    rules = RULES.model_copy(
        update={"lifecycle": RULES.lifecycle.model_copy(update={"purchase_to_paid": False})}
    )
    assert next_tier(Tier.PROSPECT, 70, TierFacts(purchased=True), rules) is None


def test_may_move_holds_whenever_the_state_machine_moves() -> None:
    # may_move narrows a batch to the contacts worth running next_tier on: it may say yes
    # needlessly, never no when next_tier moves.
    said_no = 0
    for rules in (RULES, _strict_rules()):
        for current, score, ads, violations, purchased, opted_out, silent, days in product(
            [None, *Tier],
            [-120, 0, 2, 9, 10, 11, 19, 20, 21, 44, 45, 46, 59, 60, 61, 200],
            [0, 1],
            [0, 2, 3],
            [False, True],
            [False, True],
            [0, 20, 29, 30, 31, 89, 90, 91],
            [0, 29, 30, 31],
        ):
            facts = TierFacts(ads, violations, purchased, opted_out, silent, days)
            moved = next_tier(current, score, facts, rules) is not None
            maybe = may_move(current, score, facts, rules)
            assert maybe or not moved, (current, score, facts)
            said_no += not maybe
    assert said_no  # and it does narrow


def _strict_rules() -> Rules:
    life = RULES.lifecycle.model_copy(
        update={
            "remove_on_ad": False,
            "purchase_to_paid": False,
            "remove_after_silent_days": 20,
            "demote_after_silent_days": 31,
        }
    )
    return RULES.model_copy(update={"lifecycle": life})


def test_demotions_are_moves_down_or_out() -> None:
    assert Transition(Tier.ACTIVE, Tier.OPEN, typed("")).is_demotion
    assert Transition(Tier.OPEN, None, typed("")).is_demotion
    assert not Transition(None, Tier.OPEN, typed("")).is_demotion
    assert not Transition(Tier.OPEN, Tier.ACTIVE, typed("")).is_demotion


def test_moves_of_a_batch_and_the_clean_out() -> None:
    now = datetime(2026, 11, 20, tzinfo=UTC)

    def scored(cid: int, tier: Tier | None, score: int, silent: int = 0) -> Scored:
        contact = ContactFacts(contact_id=cid, tier=tier, first_seen_at=now - timedelta(days=99))
        return Scored(cid, score, [], 0, 0, False, False, silent, None, contact)

    batch = [scored(1, None, 0), scored(2, Tier.OPEN, 25), scored(3, Tier.OPEN, 0, silent=95)]
    batch.append(scored(4, Tier.ACTIVE, 30))
    assert [(m.contact_id, m.transition.key, m.score) for m in moves_of(batch, RULES, now)] == [
        (1, "new->open", 0),
        (2, "open->active", 25),
        (3, "open->removed", 0),
    ]
    cleanout = moves_of(batch, RULES, now, demotions_only=True)
    assert [m.transition.key for m in cleanout] == ["open->removed"]
