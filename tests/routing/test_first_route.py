"""PostgreSQL: new contacts scored and entered into the funnel in SQL, as Python would do it."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.core.db import make_engine
from crm.models import Contact, TierChange
from crm.routing.rescore import rescore_and_enter
from crm.routing.route import route
from crm.routing.rules import Rules, load_rules, parse_rules
from crm.routing.score_store import store_scores
from crm.routing.scoring_sql import score_range
from crm.routing.tier_rules import ENTRY, moves_of
from crm.routing.tiers import write_moves
from tests.helpers.route_fixtures import NOW, add_events, add_group, add_varied_contacts

RULES = load_rules()
# No screening questions (answers are then SQL's too); ads warn, two violations remove.
PLAIN = parse_rules(
    'version = "plain-1"\n[lifecycle]\nremove_on_ad = false\nremove_after_violations = 2\n'
)


def written(s: Session) -> tuple[dict[int, tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every contact's stored score, tier and status, and the tier history (in contact order)."""
    contacts = {
        c.id: (
            c.score,
            c.score_breakdown,
            c.warnings,
            c.rules_version,
            c.scored_at,
            c.tier,
            c.tier_entered_at,
            c.status,
            c.updated_at,
        )
        for c in s.scalars(select(Contact))
    }
    # The reason three ways: the English sentence, the catalog key and its parameters.
    history = sorted(
        (t.contact_id, t.from_tier, t.to_tier, t.reason, t.reason_key,
         json.dumps(t.reason_params, sort_keys=True), t.rules_version, t.score, t.actor,
         t.changed_at)
        for t in s.scalars(select(TierChange))
    )  # fmt: skip
    return contacts, history


def in_python(s: Session, lo: int, hi: int, rules: Rules, clean_out: bool) -> Counter[str]:
    """The Python path: every contact scored, stored and routed in Python."""
    full = score_range(s, lo, hi, rules, NOW)
    store_scores(s, full.changed, rules, NOW)
    moves = moves_of(full.scored, rules, NOW, demotions_only=clean_out)
    write_moves(s, moves, rules, actor="route", now=NOW)
    return Counter(m.transition.key for m in moves)


def in_sql(s: Session, lo: int, hi: int, rules: Rules, clean_out: bool) -> tuple[Counter[str], int]:
    """The SQL pass, then Python for the contacts it hands back (as route does); the moves,
    and how many contacts SQL entered."""
    done = rescore_and_enter(
        s, lo, hi, rules, NOW, write=True, actor="route", demotions_only=clean_out
    )
    rest = score_range(s, lo, hi, rules, NOW, only=done.python)
    store_scores(s, rest.changed, rules, NOW)
    moves = moves_of(rest.scored, rules, NOW, demotions_only=clean_out)
    write_moves(s, moves, rules, actor="route", now=NOW)
    moved = Counter(m.transition.key for m in moves)
    moved[ENTRY.key] += done.entered
    return +moved, done.entered


@pytest.mark.parametrize("clean_out", [False, True], ids=["route", "clean-out"])
@pytest.mark.parametrize("rules", [RULES, PLAIN], ids=["default", "plain"])
def test_new_contacts_entered_in_sql_as_in_python(
    pg_url: str, rules: Rules, clean_out: bool
) -> None:
    engine = make_engine(pg_url)
    try:
        ids = add_varied_contacts(engine, 150, seed=23)
        # New contacts either rules file removes: one broke the rules, one posted an ad.
        add_events(engine, ids[0], "violation", 3, violation="insult")
        add_events(engine, ids[1], "violation", 2, violation="广告")
        lo, hi = min(ids), max(ids)
        with Session(engine) as s:
            expected_moves = in_python(s, lo, hi, rules, clean_out)
            expected = written(s)
            s.rollback()
            dry = rescore_and_enter(
                s, lo, hi, rules, NOW, write=False, actor="route", demotions_only=clean_out
            )
            got_moves, entered = in_sql(s, lo, hi, rules, clean_out)
            got = written(s)
            s.rollback()
        assert got == expected
        assert got_moves == expected_moves
        # Every move the system makes says why with a catalog key (the removals with params).
        reasons = {(row[4], row[5]) for row in got[1]}
        assert reasons and all(key and params != "null" for key, params in reasons)
        removals = {"tier.why.violations", "tier.why.ads"}
        assert any(key in removals and params != "{}" for key, params in reasons), reasons
        # A dry pass counts what the written one entered, and writes nothing.
        assert dry.entered == entered
        if clean_out:
            assert entered == 0
        else:
            # The sample has new contacts of every kind: entered in SQL, removed by Python.
            assert 0 < entered <= got_moves[ENTRY.key] < len(ids)
            assert ("tier.why.entered", "{}") in reasons
            assert sum(n for key, n in got_moves.items() if key.endswith("->removed")) > 0
    finally:
        engine.dispose()


def test_first_route_counts_the_contacts_sql_entered(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        add_group(engine, "open-1", "open")
        ids = add_varied_contacts(engine, 40, seed=3)
        add_events(engine, ids[0], "violation", 3, violation="insult")
        dry = route(engine, rules=PLAIN, now=NOW, dry_run=True, batch_size=16)
        result = route(engine, rules=PLAIN, now=NOW, batch_size=16)
        assert result.moves == dry.moves
        assert result.moves[ENTRY.key] + result.moves["new->removed"] == len(ids)
        assert result.moves["new->removed"] >= 1
        with Session(engine) as s:
            entered = s.scalars(select(Contact.id).where(Contact.tier == "open")).all()
            changes = s.scalars(select(TierChange.contact_id).where(TierChange.to_tier == "open"))
            assert sorted(changes) == sorted(entered)
            assert len(entered) == result.moves[ENTRY.key]
    finally:
        engine.dispose()
