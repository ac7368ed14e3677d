"""The tier state machine (open → active → prospect → paid) and the sales "won" entry to paid.

:func:`next_tier` is pure: given a contact's tier, score and facts, it returns the one move
the rules call for, with a reason, or None. Hysteresis keeps contacts from flapping: a tier
is entered at ``enter_at`` and kept while the score stays at ``stay_above`` or more. One
step at a time, except a purchase (straight to paid) and removals (ads, rule breaking,
lurking in the open tier). Opted-out contacts are never promoted by score.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, any_, bindparam, insert, literal, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from crm.core.audit import audit
from crm.core.db import is_postgres
from crm.core.errors import InputError
from crm.core.vocabulary import TIER_ORDER, ContactStatus, Tier
from crm.models import Contact, TierChange, UTCDateTime, utcnow
from crm.routing.rules import Rules, configured_rules

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

    from_tier: str | None
    to_tier: str | None
    reason: str

    @property
    def removed(self) -> bool:
        """True when the contact leaves the funnel."""
        return self.to_tier is None

    @property
    def key(self) -> str:
        """``from->to`` as counted in route results (``new`` and ``removed`` at the ends)."""
        return f"{self.from_tier or NEW}->{self.to_tier or REMOVED}"


def _step(tier: str, delta: int) -> str:
    index = TIER_ORDER.index(Tier(tier)) + delta
    return TIER_ORDER[max(0, min(index, len(TIER_ORDER) - 1))].value


def next_tier(current: str | None, score: int, facts: TierFacts, rules: Rules) -> Transition | None:
    """The tier move the rules call for now, or None to stay."""
    life = rules.lifecycle
    if facts.ads and life.remove_on_ad:
        return Transition(current, None, f"removed: {facts.ads} ad(s) posted")
    if facts.violations >= life.remove_after_violations:
        return Transition(
            current,
            None,
            f"removed: {facts.violations} rule violations (limit {life.remove_after_violations})",
        )
    if current is None:
        return Transition(None, Tier.OPEN.value, "entered the funnel")
    if current == Tier.PAID:
        return None  # paid is kept: a customer is never demoted by score or silence
    if facts.purchased and life.purchase_to_paid:
        return Transition(current, Tier.PAID.value, "purchase")

    if current == Tier.OPEN and facts.silent_days >= life.remove_after_silent_days:
        return Transition(current, None, f"removed: silent {facts.silent_days} days")
    if (
        current != Tier.OPEN
        and facts.silent_days >= life.demote_after_silent_days
        and facts.days_in_tier >= life.demote_after_silent_days
    ):
        return Transition(current, _step(current, -1), f"silent {facts.silent_days} days")

    upper = _step(current, +1)
    threshold = rules.tiers.threshold(upper)
    # A silent contact is not promoted: old points would undo the silence demotion next run.
    silent = facts.silent_days >= life.demote_after_silent_days
    if threshold is not None and score >= threshold.enter_at and not facts.opted_out and not silent:
        return Transition(current, upper, f"score {score} >= {threshold.enter_at}")
    own = rules.tiers.threshold(current)
    if own is not None and score < own.stay_above:
        return Transition(
            current, _step(current, -1), f"score {score} < stay_above {own.stay_above}"
        )
    return None


def score_bounds(tier: str, rules: Rules) -> tuple[int | None, int | None]:
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


def may_move(current: str | None, score: int, facts: TierFacts, rules: Rules) -> bool:
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


def record_transitions(
    session: Session,
    moves: list[tuple[Transition, int, int]],
    *,
    rules_version: str | None,
    actor: str,
    now: datetime,
) -> None:
    """Apply moves (transition, contact id, score) to contacts and append them to history."""
    if not moves:
        return
    if is_postgres(session):
        # One statement over arrays: an executemany sent one INSERT per move.
        session.execute(
            _INSERT_CHANGES_PG,
            {
                "cids": [cid for _t, cid, _s in moves],
                "froms": [t.from_tier for t, _c, _s in moves],
                "tos": [t.to_tier for t, _c, _s in moves],
                "reasons": [t.reason[:200] for t, _c, _s in moves],
                "scores": [score for _t, _c, score in moves],
                "version": rules_version,
                "actor": actor,
                "at": now,
            },
        )
    else:
        _insert_changes(session, moves, rules_version=rules_version, actor=actor, now=now)
    _apply_moves(session, moves, now)


_INSERT_CHANGES_PG = text(
    "INSERT INTO tier_changes"
    " (contact_id, from_tier, to_tier, reason, rules_version, score, actor, changed_at)"
    " SELECT m.cid, m.from_tier, m.to_tier, m.reason, :version, m.score, :actor, :at"
    " FROM unnest(CAST(:cids AS bigint[]), CAST(:froms AS text[]), CAST(:tos AS text[]),"
    " CAST(:reasons AS text[]), CAST(:scores AS integer[]))"
    " WITH ORDINALITY AS m(cid, from_tier, to_tier, reason, score, n) ORDER BY m.n"
).bindparams(bindparam("at", type_=UTCDateTime()))


def _insert_changes(
    session: Session,
    moves: list[tuple[Transition, int, int]],
    *,
    rules_version: str | None,
    actor: str,
    now: datetime,
) -> None:
    session.execute(
        insert(TierChange),
        [
            {
                "contact_id": cid,
                "from_tier": t.from_tier,
                "to_tier": t.to_tier,
                "reason": t.reason[:200],
                "rules_version": rules_version,
                "score": score,
                "actor": actor,
                "changed_at": now,
            }
            for t, cid, score in moves
        ],
    )


def _apply_moves(session: Session, moves: list[tuple[Transition, int, int]], now: datetime) -> None:
    by_target: dict[str | None, list[int]] = {}
    for t, cid, _score in moves:
        by_target.setdefault(t.to_tier, []).append(cid)
    pg = is_postgres(session)
    for target, ids in by_target.items():
        # PostgreSQL takes the ids as one array (= ANY), not thousands of bound parameters.
        step = max(len(ids), 1) if pg else 5000
        for start in range(0, len(ids), step):
            chunk = ids[start : start + step]
            values: dict[str, object] = {"tier_entered_at": now, "updated_at": now}
            if target is None:
                values["status"] = ContactStatus.REMOVED.value
            else:
                values["tier"] = target
            match = (
                Contact.id == any_(literal(chunk, ARRAY(BigInteger)))
                if pg
                else Contact.id.in_(chunk)
            )
            session.execute(
                update(Contact).where(match).values(**values),
                execution_options={"synchronize_session": False},
            )


def mark_paid(
    session: Session,
    contact_id: int,
    *,
    reason: str,
    actor: str,
    now: datetime | None = None,
    rules: Rules | None = None,
) -> Transition | None:
    """Move a contact to paid (a sales "won" outcome); history and a paid-group invitation.

    Runs in the caller's transaction. Returns None when the contact already is paid.
    """
    at = now or utcnow()
    contact = session.get(Contact, contact_id, with_for_update=True)
    if contact is None:
        raise InputError(f"contact {contact_id} does not exist")
    if contact.status != ContactStatus.ACTIVE:
        raise InputError(f"contact {contact_id} is {contact.status}, not active")
    if contact.tier == Tier.PAID:
        return None
    move = Transition(contact.tier, Tier.PAID.value, reason or "won")
    session.add(
        TierChange(
            contact_id=contact.id,
            from_tier=contact.tier,
            to_tier=Tier.PAID.value,
            reason=move.reason[:200],
            rules_version=contact.rules_version,
            score=contact.score,
            actor=actor,
            changed_at=at,
        )
    )
    contact.tier = Tier.PAID.value
    contact.tier_entered_at = at
    audit(
        session,
        actor,
        "tier.mark_paid",
        object_type="contact",
        object_id=contact.id,
        details={"from": move.from_tier, "reason": move.reason},
        at=at,
    )
    session.flush()
    from crm.routing.placement import place_contacts  # placement builds on tiers, not the reverse

    place_contacts(session, {Tier.PAID.value: [contact.id]}, rules or configured_rules(), now=at)
    return move
