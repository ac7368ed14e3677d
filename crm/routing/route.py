"""Routing: score every active contact in set-based batches and move them between tiers.

One run, one transaction: each batch of contacts is aggregated with GROUP BY queries, scored
and passed through the tier state machine in Python, then written back at once (scores,
tier history, prospect queue items). Contacts waiting for a group of their tier are placed
at the end of the run. A dry run computes the same moves, under any rules file, and writes
nothing, so a rules change can be back-tested before it goes live.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, func, select, text, update
from sqlalchemy.orm import Session

from crm.core.db import dialect_insert, is_postgres, transaction
from crm.core.locks import Lock, hold
from crm.core.vocabulary import TIER_ORDER, ContactStatus, QueueStatus, Tier
from crm.models import Contact, Membership, QueueItem, UTCDateTime, utcnow
from crm.routing.placement import pending_placements, place_contacts
from crm.routing.rescore import rescore_in_sql
from crm.routing.rules import Rules, configured_rules
from crm.routing.scoring import Rescored, Scored, score_range, store_scores
from crm.routing.tiers import TierFacts, Transition, next_tier, record_transitions


@dataclass
class RouteResult:
    """What a route run did (or, dry, would do)."""

    scored: int = 0
    moves: Counter[str] = field(default_factory=Counter)
    placed: int = 0
    pending_placement: dict[str, int] = field(default_factory=dict)
    queued: int = 0
    batches: int = 0
    dry_run: bool = False
    rules_version: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"scored": n, "moves": {"open->active": n, …}, …}``."""
        return {
            "scored": self.scored,
            "moves": dict(sorted(self.moves.items())),
            "placed": self.placed,
            "pending_placement": dict(sorted(self.pending_placement.items())),
            "queued": self.queued,
            "batches": self.batches,
            "dry_run": self.dry_run,
            "rules_version": self.rules_version,
        }


def is_demotion(move: Transition) -> bool:
    """True for a move down a tier or out of the funnel."""
    if move.to_tier is None:
        return True
    if move.from_tier is None:
        return False
    return TIER_ORDER.index(Tier(move.to_tier)) < TIER_ORDER.index(Tier(move.from_tier))


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


def route(
    engine: Engine,
    *,
    rules: Rules | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    batch_size: int = 20_000,
    demotions_only: bool = False,
) -> RouteResult:
    """Score and route every active contact; ``dry_run`` reports the moves and writes nothing.

    ``demotions_only`` applies only demotions and removals (the lurker clean-out).
    """
    rules = rules or configured_rules()
    at = now or utcnow()
    result = RouteResult(dry_run=dry_run, rules_version=rules.version)
    if dry_run:
        with transaction(engine, dry_run=True) as session:
            _tune(session)
            _run(session, rules, at, batch_size, demotions_only, result, write=False)
        return result
    with transaction(engine, immediate=True) as session:
        hold(session, Lock.CONTACT_GRAPH)
        _tune(session)
        _run(session, rules, at, batch_size, demotions_only, result, write=True)
        placement = place_contacts(session, pending_placements(session, rules), rules, now=at)
        result.placed = placement.placed
        result.pending_placement = placement.pending
    return result


def _tune(session: Session) -> None:
    # The batch aggregates sort and hash about a batch's events: in memory rather than spilled
    # to disk, and without JIT compilation, which cost more than it saved on every batch.
    if is_postgres(session):
        session.execute(text("SET LOCAL work_mem = '256MB'"))
        session.execute(text("SET LOCAL jit = off"))


def _run(
    session: Session,
    rules: Rules,
    at: datetime,
    batch_size: int,
    demotions_only: bool,
    result: RouteResult,
    *,
    write: bool,
) -> None:
    last = 0
    pg = is_postgres(session)
    # New contacts all enter a tier: when they are most of a batch, the SQL pass is wasted.
    unscored = Contact.tier.is_(None)
    while True:
        # A batch's bounds and counts in one row: fetching its ids cost more than scoring it.
        batch_rows = (
            select(Contact.id.label("id"), unscored.label("unscored"))
            .where(Contact.status == ContactStatus.ACTIVE.value, Contact.id > last)
            .order_by(Contact.id)
            .limit(batch_size)
            .subquery()
        )
        b = batch_rows.c
        count, new, first, last_id = session.execute(
            select(
                func.count(),
                func.count().filter(b.unscored),
                func.min(b.id),
                func.max(b.id),
            )
        ).one()
        if not count:
            return
        last = int(last_id)
        result.batches += 1
        result.scored += count
        if pg and new * 2 < count:
            # Most contacts cannot move: SQL scores (and writes) them, and hands back only
            # those the tier rules may move, to be scored and routed in Python.
            wanted = rescore_in_sql(session, first, last, rules, at, write=write)
            batch = (
                score_range(session, first, last, rules, at, only=wanted)
                if wanted
                else Rescored([], [])
            )
        else:
            batch = score_range(session, first, last, rules, at)
        scored = batch.scored
        moves: list[tuple[Transition, int, int]] = []
        for s in scored:
            move = next_tier(s.facts.tier, s.score, tier_facts(s, at), rules)
            if move is None or (demotions_only and not is_demotion(move)):
                continue
            moves.append((move, s.contact_id, s.score))
            result.moves[move.key] += 1
        if not write:
            continue
        store_scores(session, batch.changed, rules, at)
        record_transitions(session, moves, rules_version=rules.version, actor="route", now=at)
        _leave_groups(session, [(m, cid) for m, cid, _ in moves if m.removed], at)
        result.queued += _queue_prospects(
            session,
            [(cid, score) for m, cid, score in moves if m.to_tier == Tier.PROSPECT],
            rules,
            at,
        )


def _leave_groups(session: Session, removed: list[tuple[Transition, int]], at: datetime) -> None:
    by_reason: dict[str, list[int]] = {}
    for move, cid in removed:
        by_reason.setdefault(move.reason[:200], []).append(cid)
    for reason, ids in by_reason.items():
        for start in range(0, len(ids), 5000):
            session.execute(
                update(Membership)
                .where(Membership.contact_id.in_(ids[start : start + 5000]))
                .where(Membership.left_at.is_(None))
                .values(left_at=at, left_reason=reason),
                execution_options={"synchronize_session": False},
            )


_QUEUE_PROSPECTS_PG = text(
    "INSERT INTO queue_items (contact_id, status, open_key, sla_due_at, priority,"
    " created_at, updated_at)"
    " SELECT m.cid, :status, m.cid, :due, m.score, :at, :at"
    " FROM unnest(CAST(:cids AS bigint[]), CAST(:scores AS integer[])) WITH ORDINALITY"
    " AS m(cid, score, n) ORDER BY m.n ON CONFLICT DO NOTHING"
).bindparams(bindparam("due", type_=UTCDateTime()), bindparam("at", type_=UTCDateTime()))


def _queue_prospects(
    session: Session, entering: list[tuple[int, int]], rules: Rules, at: datetime
) -> int:
    """A pool item per contact entering prospect, unless one is already open."""
    if not entering:
        return 0
    if is_postgres(session):
        # One statement over arrays; the open_key unique constraint skips open items.
        inserted = session.execute(
            _QUEUE_PROSPECTS_PG,
            {
                "cids": [cid for cid, _ in entering],
                "scores": [score for _, score in entering],
                "status": QueueStatus.POOL.value,
                "due": at + timedelta(hours=rules.queue.sla_hours),
                "at": at,
            },
        )
        return int(getattr(inserted, "rowcount", 0) or 0)
    existing: set[int] = set()
    ids = [cid for cid, _ in entering]
    for start in range(0, len(ids), 5000):
        existing.update(
            int(k)
            for k in session.scalars(
                select(QueueItem.open_key).where(QueueItem.open_key.in_(ids[start : start + 5000]))
            )
            if k is not None
        )
    rows = [
        {
            "contact_id": cid,
            "status": QueueStatus.POOL.value,
            "open_key": cid,
            "sla_due_at": at + timedelta(hours=rules.queue.sla_hours),
            "priority": score,
            "created_at": at,
            "updated_at": at,
        }
        for cid, score in entering
        if cid not in existing
    ]
    if not rows:
        return 0
    session.execute(dialect_insert(session, QueueItem).on_conflict_do_nothing(), rows)
    return len(rows)
