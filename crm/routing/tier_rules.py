"""The tier state machine (open → active → prospect → paid): which move a scored contact makes.

:func:`next_tier` gives a contact's tier, score and facts the one move the rules call for,
with a reason, or None. Hysteresis keeps contacts from flapping: a tier is entered at
``enter_at`` and kept while the score stays at ``stay_above`` or more. One step at a time,
except a purchase (straight to paid) and removals (ads, rule breaking, lurking in the open
tier). Opted-out contacts are never promoted by score. :func:`may_move` is the cheap test the
in-SQL rescore narrows a batch with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from crm.core.vocabulary import TIER_ORDER, Tier
from crm.routing.rules.model import Rules
from crm.routing.signals import Scored
from crm.routing.tier_reasons import TierReason, TierWhy, why

REMOVED = "removed"
NEW = "new"


@dataclass(frozen=True)
class TierFacts:
    """What the tier rules look at besides the score."""

    ads: int = 0
    violations: int = 0
    purchased: bool = False
    opted_out: bool = False
    silent_days: int = 0
    days_in_tier: int = 0


@dataclass(frozen=True)
class Transition:
    """One move: ``to_tier`` None means the contact is removed from the funnel."""

    from_tier: Tier | None
    to_tier: Tier | None
    why: TierWhy

    @property
    def reason(self) -> str:
        """The stored English sentence (logs, exports and SQL readers read it)."""
        return self.why.stored_text

    @property
    def removed(self) -> bool:
        """True when the contact leaves the funnel."""
        return self.to_tier is None

    @property
    def key(self) -> str:
        """``from->to`` as counted in route results (``new`` and ``removed`` at the ends)."""
        return f"{self.from_tier or NEW}->{self.to_tier or REMOVED}"

    @property
    def is_demotion(self) -> bool:
        """True for a move down a tier or out of the funnel."""
        if self.to_tier is None:
            return True
        if self.from_tier is None:
            return False
        return TIER_ORDER.index(self.to_tier) < TIER_ORDER.index(self.from_tier)


# Where a new contact that is not removed enters the funnel.
ENTRY_TIER = Tier.OPEN
ENTRY = Transition(None, ENTRY_TIER, why(TierReason.ENTERED))


class Move(NamedTuple):
    """A transition the rules call for, for one contact at its score."""

    transition: Transition
    contact_id: int
    score: int


def _step(tier: Tier, delta: int) -> Tier:
    index = TIER_ORDER.index(tier) + delta
    return TIER_ORDER[max(0, min(index, len(TIER_ORDER) - 1))]


def next_tier(
    current: Tier | None, score: int, facts: TierFacts, rules: Rules
) -> Transition | None:
    """The tier move the rules call for now, or None to stay."""
    life = rules.lifecycle
    if facts.ads and life.remove_on_ad:
        return Transition(current, None, why(TierReason.ADS, n=facts.ads))
    if facts.violations >= life.remove_after_violations:
        limit = life.remove_after_violations
        return Transition(
            current, None, why(TierReason.VIOLATIONS, n=facts.violations, limit=limit)
        )
    if current is None:
        return ENTRY
    if current == Tier.PAID:
        return None  # paid is kept: a customer is never demoted by score or silence
    if facts.purchased and life.purchase_to_paid:
        return Transition(current, Tier.PAID, why(TierReason.PURCHASE))

    if current == Tier.OPEN and facts.silent_days >= life.remove_after_silent_days:
        return Transition(current, None, why(TierReason.REMOVED_SILENT, days=facts.silent_days))
    if (
        current != Tier.OPEN
        and facts.silent_days >= life.demote_after_silent_days
        and facts.days_in_tier >= life.demote_after_silent_days
    ):
        down = _step(current, -1)
        return Transition(current, down, why(TierReason.SILENT, days=facts.silent_days))

    upper = _step(current, +1)
    threshold = rules.tiers.threshold(upper)
    # A silent contact is not promoted: old points would undo the silence demotion next run.
    silent = facts.silent_days >= life.demote_after_silent_days
    if threshold is not None and score >= threshold.enter_at and not facts.opted_out and not silent:
        up = why(TierReason.SCORE_UP, score=score, at=threshold.enter_at)
        return Transition(current, upper, up)
    own = rules.tiers.threshold(current)
    if own is not None and score < own.stay_above:
        down_why = why(TierReason.SCORE_DOWN, score=score, at=own.stay_above)
        return Transition(current, _step(current, -1), down_why)
    return None


def score_bounds(tier: Tier, rules: Rules) -> tuple[int | None, int | None]:
    """Scores that may move a contact of ``tier``: (promote at or above, demote below).

    None where the score moves nothing (open has no floor, prospect no score-reached tier
    above it, paid neither).
    """
    if tier == Tier.PAID:
        return None, None
    upper = rules.tiers.threshold(_step(tier, +1))
    own = rules.tiers.threshold(tier)
    return (
        upper.enter_at if upper is not None else None,
        own.stay_above if own is not None else None,
    )


def may_move(current: Tier | None, score: int, facts: TierFacts, rules: Rules) -> bool:
    """A cheap test true whenever :func:`next_tier` moves the contact (and sometimes besides).

    It ignores what only holds a move back (opt-out, silence, days in the tier), so a batch
    can be narrowed, in SQL, to the contacts worth running the state machine on.
    """
    life = rules.lifecycle
    if (facts.ads and life.remove_on_ad) or facts.violations >= life.remove_after_violations:
        return True
    if current is None:
        return True
    if current == Tier.PAID:
        return False
    if facts.purchased and life.purchase_to_paid:
        return True
    if facts.silent_days >= silent_days_that_may_move(rules):
        return True
    promote_at, demote_below = score_bounds(current, rules)
    return (promote_at is not None and score >= promote_at) or (
        demote_below is not None and score < demote_below
    )


def silent_days_that_may_move(rules: Rules) -> int:
    """The shortest silence after which the lifecycle rules may demote or remove anyone."""
    life = rules.lifecycle
    return min(life.demote_after_silent_days, life.remove_after_silent_days)


def tier_facts(scored: Scored, now: datetime) -> TierFacts:
    """The tier rules' view of a scored contact."""
    entered = scored.facts.tier_entered_at or scored.facts.first_seen_at
    days_in_tier = max(0, (now - entered).days) if entered is not None else scored.silent_days
    return TierFacts(
        ads=scored.ads,
        violations=scored.violations,
        purchased=scored.purchased,
        opted_out=scored.opted_out,
        silent_days=scored.silent_days,
        days_in_tier=days_in_tier,
    )


def moves_of(
    scored: Iterable[Scored], rules: Rules, now: datetime, *, demotions_only: bool = False
) -> list[Move]:
    """The moves the rules call for among scored contacts (``demotions_only``: the clean-out)."""
    moves: list[Move] = []
    for s in scored:
        move = next_tier(s.facts.tier, s.score, tier_facts(s, now), rules)
        if move is None or (demotions_only and not move.is_demotion):
            continue
        moves.append(Move(move, s.contact_id, s.score))
    return moves
