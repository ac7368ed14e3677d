"""Routing: score every active contact in set-based batches and move them between tiers.

One run, one transaction, read top-down: each batch of contacts is scored (in SQL, which
also enters new contacts into the funnel, or by the Python signals over one aggregate row per
contact), passed through the tier state machine,
and its scores and moves are written back at once (scores, tier history, group exits,
prospect queue items). Contacts waiting for a group of their tier are placed at the end of
the run. A dry run computes the same moves, under any rules file, and writes nothing, so a
rules change can be back-tested before it goes live.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from crm.core.db import is_postgres, transaction
from crm.core.locks import Lock, hold
from crm.models import utcnow
from crm.routing.placement import pending_placements, place_contacts
from crm.routing.rescore import SqlPass, rescore_and_enter, rescore_in_sql
from crm.routing.rules import Rules
from crm.routing.score_store import store_scores
from crm.routing.scoring_sql import Batch, Fetched, Rescored, batches, fetch_range, score_rows
from crm.routing.signals import Scored
from crm.routing.tier_rules import ENTRY, Move, moves_of
from crm.routing.tiers import write_moves


@dataclass
class RouteResult:
    """What a route run did (or, dry, would do)."""

    scored: int = 0
    moves: Counter[str] = field(default_factory=Counter)
    placed: int = 0
    pending_placement: dict[str, int] = field(default_factory=dict)
    # Contacts of a tier that no open group could reach (no handle there, no email).
    waiting_address: dict[str, int] = field(default_factory=dict)
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
            "waiting_address": dict(sorted(self.waiting_address.items())),
            "queued": self.queued,
            "batches": self.batches,
            "dry_run": self.dry_run,
            "rules_version": self.rules_version,
        }


def route(
    engine: Engine,
    *,
    rules: Rules,
    dry_run: bool = False,
    now: datetime | None = None,
    batch_size: int = 20_000,
    demotions_only: bool = False,
) -> RouteResult:
    """Score and route every active contact; ``dry_run`` reports the moves and writes nothing.

    ``demotions_only`` applies only demotions and removals (the lurker clean-out).
    """
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
        result.pending_placement = {tier.value: n for tier, n in placement.pending.items()}
        result.waiting_address = {tier.value: n for tier, n in placement.no_address.items()}
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
    # PostgreSQL: batch N is written by a second thread while this one scores batch N + 1, so
    # the client's Python and the server's writes overlap instead of taking turns. Both use
    # the run's one connection, never at once: batch N + 1 is read before batch N's writes
    # start, and they end before the next batch is read. A batch's writes touch its own
    # contacts and what their moves entail, never what a later batch reads.
    overlap = write and is_postgres(session)
    written: _Written | None = None
    with ThreadPoolExecutor(max_workers=1) as writer:
        for batch in batches(session, batch_size):
            result.batches += 1
            result.scored += batch.size
            fetched = _fetch(
                session, batch, rules, at, result, write=write, demotions_only=demotions_only
            )
            pending: Future[int] | None = None
            if written is not None:
                if overlap:
                    pending = writer.submit(_write, session, written, rules, at)
                else:
                    result.queued += _write(session, written, rules, at)
            scored = score_rows(fetched, rules, at) if fetched else Rescored([], [])
            moves = moves_of(scored.scored, rules, at, demotions_only=demotions_only)
            result.moves.update(m.transition.key for m in moves)
            if pending is not None:
                result.queued += pending.result()
            written = _Written(scored.changed, moves) if write else None
    if written is not None:
        result.queued += _write(session, written, rules, at)


class _Written(NamedTuple):
    """What a scored batch writes: the changed scores and the moves."""

    changed: list[tuple[Scored, str]]
    moves: list[Move]


def _write(session: Session, batch: _Written, rules: Rules, at: datetime) -> int:
    """Store a batch's scores and moves; how many prospect queue items it created."""
    store_scores(session, batch.changed, rules, at)
    return write_moves(session, batch.moves, rules, actor="route", now=at)


def _fetch(
    session: Session,
    batch: Batch,
    rules: Rules,
    at: datetime,
    result: RouteResult,
    *,
    write: bool,
    demotions_only: bool,
) -> Fetched | None:
    """A batch's rows to score: all in Python, or in SQL with Python scoring only who may move.

    ``None`` when SQL scored (and, writing, stored) every contact of the batch.
    """
    if not is_postgres(session):
        return fetch_range(session, batch.first, batch.last, rules, at)
    # Most contacts cannot move, and a new one enters the funnel whatever its score: SQL
    # scores (and writes) them, enters the new ones, and hands back only those the tier
    # rules may move otherwise, to be scored and routed in Python.
    if batch.unscored:
        done = rescore_and_enter(
            session, batch.first, batch.last, rules, at, write=write, actor="route",
            demotions_only=demotions_only,
        )  # fmt: skip
    else:
        done = SqlPass(rescore_in_sql(session, batch.first, batch.last, rules, at, write=write), 0)
    if done.entered:
        result.moves[ENTRY.key] += done.entered
    if not done.python:
        return None
    return fetch_range(session, batch.first, batch.last, rules, at, only=done.python)
