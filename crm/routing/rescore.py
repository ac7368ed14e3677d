"""PostgreSQL: score a batch in one statement, and hand Python only the contacts that may move.

A daily run rescores every contact; most of them cannot move between tiers, and many keep
their score. The statement built here computes each contact's points and breakdown (with its
evidence ids) in SQL, with the arithmetic of :func:`crm.routing.signals.evaluate` and the
event flags of :func:`crm.routing.scoring_sql.score_range`, and applies
:func:`crm.routing.tier_rules.may_move`, a cheap test that holds whenever the state machine
would move a contact. Contacts that cannot move and whose stored score, breakdown, warnings
or rules version differ are written by the statement itself; the rest go to Python, which
scores them and runs the state machine as before. A first run is all new contacts, whose one
move (entering the funnel, unless the rules remove them) does not depend on the score:
:func:`rescore_and_enter` writes that move in the same statement.

Screening answers are matched on Python's ``str()`` of any JSON value, which SQL does not
reproduce: while the rules ask screening questions, contacts with answer events always go to
Python. The decayed engagement sum is a float summed in another order than Python's rows
give, so the two may differ in the last bit; only a sum within that of a rounding boundary
could tell them apart.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.orm import Session

from crm.core.vocabulary import TIER_ORDER, ContactStatus, EventKind, Tier
from crm.routing.facts import ACTIVITY_KINDS, ad_labels, intent_patterns
from crm.routing.rules.model import SOURCE_KINDS, Rules
from crm.routing.tier_rules import (
    ENTRY,
    ENTRY_TIER,
    score_bounds,
    silent_days_that_may_move,
)

# Breakdown lines in the order evaluate() appends them, each with the events it cites (a
# flag computed per event below, or event kinds) or none; screening is left to Python.
_LINES: tuple[tuple[str, str | tuple[EventKind, ...] | None], ...] = (
    ("source", None),
    ("intent", "intent"),
    ("engagement", "engaged"),  # the kinds the rules name
    ("contribution", (EventKind.MESSAGE, EventKind.SHARE)),
    ("referrals", (EventKind.REFERRAL,)),
    ("attendance", (EventKind.ACTIVITY_ATTENDED,)),
    ("ads", "ad"),
    ("violations", (EventKind.VIOLATION,)),
    ("opt_out", (EventKind.OPT_OUT,)),
    ("churn", (EventKind.CHURN,)),
    ("silence", None),
)
_COUNTED = {
    "message": EventKind.MESSAGE,
    "share": EventKind.SHARE,
    "referral": EventKind.REFERRAL,
    "attended": EventKind.ACTIVITY_ATTENDED,
    "violation": EventKind.VIOLATION,
    "opt_out": EventKind.OPT_OUT,
    "purchase": EventKind.PURCHASE,
    "answer": EventKind.ANSWER,
    "churn": EventKind.CHURN,
}
# Each event's kind as a small number, compared in the aggregates' filters a dozen times per
# event: comparing the kind's text instead was about a tenth of the whole statement.
_CODES = {kind: n for n, kind in enumerate(EventKind, start=1)}


def _is(kinds: Sequence[EventKind] | str) -> str:
    """An event filter: a flag column's name, or its kind code among ``kinds``."""
    if isinstance(kinds, str):
        return kinds
    listed = ", ".join(str(_CODES[EventKind(k)]) for k in kinds)
    return f"code IN ({listed})" if kinds else "false"


def _points_sql(rules: Rules, *, evidence: bool) -> str:
    """The CTEs down to ``scored``: one row per active contact in [:lo, :hi], its points."""
    ctes = (
        _SOURCES_SQL,
        _flagged_sql(),
        _agg_sql(rules, evidence=evidence),
        _facts_sql(evidence=evidence),
        _POINTS_SQL,
    )
    return "\nWITH " + ",\n".join(ctes)


_SOURCES_SQL = """kinds AS (
    -- Every source kind, ranked as Python picks the best of a contact's: points, then name.
    SELECT k.kind, coalesce(p.points, 0) AS points,
           row_number() OVER (ORDER BY coalesce(p.points, 0), k.kind COLLATE "C") AS rank
    FROM (SELECT DISTINCT kind FROM source_instances UNION SELECT 'referral') AS k
    LEFT JOIN unnest(CAST(:source_kinds AS text[]), CAST(:source_points AS integer[]))
        AS p(kind, points) ON p.kind = k.kind
),
sources AS (
    SELECT t.contact_id AS cid, max(k.rank) AS rank, bool_or(k.kind = 'self_media') AS self_media
    FROM touches t
    JOIN source_instances si ON si.id = t.source_instance_id
    JOIN kinds k ON k.kind = si.kind
    WHERE t.contact_id BETWEEN :lo AND :hi
    GROUP BY t.contact_id
),
consents AS (
    SELECT contact_id AS cid,
           max(id) FILTER (WHERE kind = 'opt_out') AS opt_out,
           max(id) FILTER (WHERE kind = 'consent') AS consent
    FROM consents WHERE contact_id BETWEEN :lo AND :hi GROUP BY contact_id
)"""


def _flagged_sql() -> str:
    """The batch's events, newest first, with their kind code, UTC day and intent / ad flags."""
    codes = " ".join(f"WHEN '{kind.value}' THEN {n}" for kind, n in _CODES.items())
    return f"""flagged AS (
    -- Newest first, for the evidence lists: a sorted subquery feeds array_agg in its order,
    -- which PostgreSQL documents as the alternative to ORDER BY inside the aggregate for a
    -- level that joins nothing (agg below joins nothing). Before 16, ORDER BY inside each of
    -- eight aggregates sorts every group eight times, which cost more than all the counting.
    -- OFFSET 0 (here and in the levels below): each column is computed once per row, not
    -- once per reference to it above.
    SELECT contact_id AS cid, id, CASE kind {codes} ELSE 0 END AS code,
           CAST(timezone('UTC', occurred_at) AS date) AS day,
           coalesce(kind = 'message' AND lower(coalesce(payload ->> 'message',
               payload ->> 'text')) LIKE ANY (CAST(:intent AS text[])), false) AS intent,
           coalesce(kind = 'violation'
               AND lower(payload ->> 'violation') = ANY(CAST(:ad_labels AS text[])), false) AS ad
    FROM events WHERE contact_id BETWEEN :lo AND :hi
    ORDER BY contact_id, id DESC OFFSET 0
)"""


def _agg_sql(rules: Rules, *, evidence: bool) -> str:
    """Per contact: counts per kind, intent and ads, the decayed sum, last day, evidence ids."""
    cap = rules.breakdown_event_cap
    counts = ",\n".join(
        f"count(*) FILTER (WHERE {_is([kind])}) AS n_{name}" for name, kind in _COUNTED.items()
    )
    engaged = _is(rules.signals.engagement.kinds)
    ids = "".join(
        f",\n(array_agg(id) FILTER (WHERE {engaged if cond == 'engaged' else _is(cond)}))"
        f"[1:{cap}] AS e_{name}"
        for name, cond in _LINES
        if cond is not None and evidence
    )
    active = _is(sorted(ACTIVITY_KINDS))
    return f"""agg AS (
    SELECT cid,
{counts},
           count(*) FILTER (WHERE intent) AS n_intent,
           count(*) FILTER (WHERE ad) AS n_ads,
           sum(power(CAST(0.5 AS float8), CAST(greatest(CAST(:today AS date) - day, 0) AS float8)
               / CAST(:half_life AS float8))) FILTER (WHERE {engaged}) AS decayed,
           max(day) FILTER (WHERE {active}) AS last_day{ids}
    FROM flagged GROUP BY cid
)"""


def _facts_sql(*, evidence: bool) -> str:
    """Per active contact of the batch: what it stored, its counts, source, opt-out, silence."""
    facts = ", ".join(f"coalesce(a.n_{name}, 0) AS n_{name}" for name in _COUNTED)
    evidence_cols = "".join(f", a.e_{name}" for name, cond in _LINES if cond and evidence)
    return f"""facts AS (
    SELECT c.id, c.tier, c.score AS stored_score, c.score_breakdown AS stored_breakdown,
           c.warnings AS stored_warnings, c.rules_version AS stored_version,
           {facts}, coalesce(a.n_intent, 0) AS n_intent, coalesce(a.n_ads, 0) AS n_ads,
           coalesce(a.decayed, 0) AS decayed{evidence_cols},
           greatest(s.rank, CASE WHEN c.referred_by_id IS NOT NULL
               THEN (SELECT rank FROM kinds WHERE kind = 'referral') END) AS source_rank,
           coalesce(s.self_media, false) AS self_media,
           (co.opt_out > coalesce(co.consent, 0)) IS TRUE OR coalesce(a.n_opt_out, 0) > 0
               AS opted_out,
           coalesce(greatest(0, CAST(:today AS date) - coalesce(
               greatest(a.last_day, CAST(timezone('UTC', c.last_active_at) AS date)),
               CAST(timezone('UTC', c.first_seen_at) AS date))), 0) AS silent_days
    FROM contacts c
    LEFT JOIN agg a ON a.cid = c.id
    LEFT JOIN sources s ON s.cid = c.id
    LEFT JOIN consents co ON co.cid = c.id
    WHERE c.id BETWEEN :lo AND :hi AND c.status = :active
    OFFSET 0
)"""


# Each signal's points, as evaluate() computes them, then their sum.
_POINTS_SQL = f"""points AS (
    SELECT f.*, f.n_violation - f.n_ads AS violations,
           'source:' || k.kind || CASE WHEN f.self_media AND f.n_intent > 0
               THEN '+intent' ELSE '' END AS l_source,
           CASE WHEN f.source_rank IS NULL THEN 0 ELSE k.points + CASE
               WHEN f.self_media AND f.n_intent > 0 THEN :source_bonus ELSE 0 END END AS p_source,
           least(:intent_weight * f.n_intent, :intent_max) AS p_intent,
           least(CAST(CASE WHEN :engagement_weight * f.decayed >= 0
               THEN floor(:engagement_weight * f.decayed + 0.5)
               ELSE -floor(-(:engagement_weight * f.decayed) + 0.5) END AS bigint),
               :engagement_max) AS p_engagement,
           least(:message_weight * f.n_message + :share_weight * f.n_share, :contribution_max)
               AS p_contribution,
           least(:referral_weight * f.n_referral, :referral_max) AS p_referrals,
           least(:attendance_weight * f.n_attended, :attendance_max) AS p_attendance,
           CASE WHEN f.n_ads > 0 THEN :ad_weight ELSE 0 END AS p_ads,
           :violation_weight * (f.n_violation - f.n_ads) AS p_violations,
           CASE WHEN f.opted_out THEN :opt_out_weight ELSE 0 END AS p_opt_out,
           :churn_weight * f.n_churn AS p_churn,
           CASE WHEN f.silent_days >= :silence_days THEN :silence_weight ELSE 0 END AS p_silence
    FROM facts f LEFT JOIN kinds k ON k.rank = f.source_rank
    OFFSET 0
),
scored AS (
    SELECT p.*, {" + ".join(f"p.p_{name}" for name, _ in _LINES)} AS score
    FROM points p
    OFFSET 0
)"""


def _breakdown_sql() -> str:
    """The breakdown evaluate() builds (the lines that score, in order) as PostgreSQL prints it.

    Compared as text with the stored jsonb printed (see :func:`crm.routing.signals.breakdown_text`):
    building jsonb values cost several times more than the rest of the statement.
    """
    lines = []
    for name, cond in _LINES:
        label = "CAST(to_json(l_source) AS text)" if name == "source" else f"'\"{name}\"'"
        events = f"coalesce(array_to_string(e_{name}, ', '), '')" if cond else "''"
        lines.append(
            f"CASE WHEN p_{name} <> 0 THEN '{{\"events\": [' || {events} || '], \"points\": '"
            f" || p_{name} || ', \"signal\": ' || {label} || '}}' END"
        )
    return "'[' || concat_ws(', ', " + ",\n    ".join(lines) + ") || ']'"


def _may_move_sql(rules: Rules, *, new_contacts: bool = True) -> str:
    """:func:`crm.routing.tier_rules.may_move` over the ``scored`` columns; without
    ``new_contacts``, a new contact only when the rules remove it."""
    life = rules.lifecycle
    terms = [f"violations >= {int(life.remove_after_violations)}"]
    if life.remove_on_ad:
        terms.append("n_ads > 0")
    if new_contacts:
        terms.append("tier IS NULL")
    by_tier = []
    for tier in TIER_ORDER:
        promote_at, demote_below = score_bounds(tier, rules)
        moves = [f"silent_days >= {silent_days_that_may_move(rules)}"]
        if life.purchase_to_paid:
            moves.append("n_purchase > 0")
        if promote_at is not None:
            moves.append(f"score >= {int(promote_at)}")
        if demote_below is not None:
            moves.append(f"score < {int(demote_below)}")
        cond = "false" if tier == Tier.PAID else " OR ".join(moves)
        by_tier.append(f"WHEN '{tier.value}' THEN {cond}")
    # An unknown tier goes to Python, whose state machine refuses it.
    by_tier_sql = f"CASE tier {' '.join(by_tier)} ELSE true END"
    terms.append(by_tier_sql if new_contacts else f"tier IS NOT NULL AND {by_tier_sql}")
    return " OR ".join(f"({t})" for t in terms)


def _params(rules: Rules, lo: int, hi: int, now: datetime) -> dict[str, Any]:
    sig = rules.signals
    return {
        "lo": lo,
        "hi": hi,
        "today": now.astimezone(UTC).date(),
        "active": ContactStatus.ACTIVE.value,
        "version": rules.version,
        "source_kinds": list(SOURCE_KINDS),
        "source_points": [sig.source.points_for(k) for k in SOURCE_KINDS],
        "source_bonus": sig.source.self_media_intent_bonus,
        "intent": intent_patterns(rules),
        "ad_labels": sorted(ad_labels(rules)),
        "half_life": float(sig.engagement.half_life_days),
        "intent_weight": sig.intent.weight,
        "intent_max": sig.intent.max_points,
        "engagement_weight": sig.engagement.weight,
        "engagement_max": sig.engagement.max_points,
        "message_weight": sig.contribution.message_weight,
        "share_weight": sig.contribution.share_weight,
        "contribution_max": sig.contribution.max_points,
        "referral_weight": sig.referrals.weight,
        "referral_max": sig.referrals.max_points,
        "attendance_weight": sig.attendance.weight,
        "attendance_max": sig.attendance.max_points,
        "ad_weight": sig.negative.ad_weight,
        "violation_weight": sig.negative.violation_weight,
        "opt_out_weight": sig.negative.opt_out_weight,
        "churn_weight": sig.negative.churn_weight,
        "silence_days": sig.negative.silence_days,
        "silence_weight": sig.negative.silence_weight,
    }


def rescore_in_sql(
    session: Session, lo: int, hi: int, rules: Rules, now: datetime, *, write: bool
) -> list[int]:
    """Score the active contacts in [lo, hi] in SQL; return the ids Python must score.

    Those are the contacts the tier rules may move, and those with screening answers. With
    ``write``, the statement itself stores the new score, breakdown, warnings and rules
    version of every other contact whose stored ones differ (as
    :func:`crm.routing.score_store.store_scores` would).
    """
    return _sql_pass(session, lo, hi, rules, now, write=write, enter=False).python


class SqlPass(NamedTuple):
    """What the SQL pass over a batch left to Python, and how many new contacts it entered."""

    python: list[int]
    entered: int


def rescore_and_enter(
    session: Session,
    lo: int,
    hi: int,
    rules: Rules,
    now: datetime,
    *,
    write: bool,
    actor: str,
    demotions_only: bool = False,
) -> SqlPass:
    """:func:`rescore_in_sql`, and the new contacts it scores enter the funnel in SQL too.

    A new contact the rules do not remove makes one move, :data:`~crm.routing.tier_rules.ENTRY`
    (whatever its score): with ``write`` the statement writes it as
    :func:`crm.routing.tiers.write_moves` would (the tier, the time it was entered, one tier
    history row), so on a first run Python scores only the new contacts the rules remove.
    ``demotions_only`` (the clean-out) moves no new contact: they are only scored.
    """
    return _sql_pass(
        session, lo, hi, rules, now, write=write, enter=True, actor=actor,
        demotions_only=demotions_only,
    )  # fmt: skip


def _sql_pass(
    session: Session,
    lo: int,
    hi: int,
    rules: Rules,
    now: datetime,
    *,
    write: bool,
    enter: bool,
    actor: str = "",
    demotions_only: bool = False,
) -> SqlPass:
    python = _may_move_sql(rules, new_contacts=not enter)
    if rules.signals.screening.questions:
        python += " OR n_answer > 0"
    entering = f"tier IS NULL AND NOT ({python})" if enter and not demotions_only else None
    params = _params(rules, lo, hi, now)
    if write:
        params |= {"at": now}
        sql = _points_sql(rules, evidence=True) + _write_sql(python, entering)
    else:
        sql = (
            _points_sql(rules, evidence=False)
            + ",\nmarked AS (SELECT id, "
            + (f"({python}) AS python, ({entering or 'false'}) AS entering FROM scored)")
        )
    if entering is None:
        ids = session.execute(text(sql + "\nSELECT id FROM marked WHERE python"), params)
        return SqlPass(sorted(int(i) for i in ids.scalars()), 0)
    params |= {
        "actor": actor,
        "entry_tier": ENTRY_TIER.value,
        "entry": ENTRY.reason,
        "entry_key": ENTRY.why.key,
        "entry_params": json.dumps(ENTRY.why.stored_params),
    }
    sql += "\nSELECT count(*) FILTER (WHERE entering), array_agg(id) FILTER (WHERE python)"
    entered, ids = session.execute(text(sql + " FROM marked"), params).one()
    return SqlPass(sorted(int(i) for i in ids or ()), int(entered))


def _write_sql(python: str, entering: str | None) -> str:
    """The CTEs that store the scores SQL settles (and enter the new contacts it moves)."""
    enters = entering is not None
    new = "m.entering OR " if enters else ""  # an entering contact is always written
    entering_col = f", ({entering}) AS entering" if enters else ""
    tier = (
        """,
           tier = CASE WHEN m.entering THEN :entry_tier ELSE c.tier END,
           tier_entered_at = CASE WHEN m.entering THEN :at ELSE c.tier_entered_at END"""
        if enters
        else ""
    )
    history = (
        """,
entered AS (
    INSERT INTO tier_changes
        (contact_id, from_tier, to_tier, reason, reason_key, reason_params, rules_version,
         score, actor, changed_at)
    -- The entry's parameters are constants: one key and document for every row.
    SELECT id, NULL, :entry_tier, :entry, :entry_key, CAST(:entry_params AS jsonb), :version,
           score, :actor, :at
    FROM marked WHERE entering ORDER BY id
)"""
        if enters
        else ""
    )
    return f""",
marked AS (
    SELECT id, score, violations, ({python}) AS python{entering_col},
           ({_breakdown_sql()}) AS breakdown,
           stored_score, stored_warnings, stored_version, stored_breakdown
    FROM scored
    OFFSET 0
),
written AS (
    UPDATE contacts c SET score = m.score, score_breakdown = CAST(m.breakdown AS jsonb),
           warnings = m.violations, rules_version = :version, scored_at = :at,
           updated_at = :at{tier}
    FROM marked m
    -- The range lets the join read the batch's contacts, not the whole table.
    WHERE c.id = m.id AND c.id BETWEEN :lo AND :hi AND NOT m.python
        AND ({new}m.score <> m.stored_score OR m.violations <> m.stored_warnings
        OR m.stored_version IS DISTINCT FROM :version
        OR CAST(m.stored_breakdown AS text) IS DISTINCT FROM m.breakdown)
    RETURNING c.id
){history}"""


def sql_scores(
    session: Session, lo: int, hi: int, rules: Rules, now: datetime
) -> dict[int, tuple[int, list[dict[str, Any]]]]:
    """The score and breakdown SQL computes for each active contact in [lo, hi] (screening
    aside): what :func:`rescore_in_sql` compares with the stored ones and writes."""
    sql = _points_sql(rules, evidence=True) + f"\nSELECT id, score, {_breakdown_sql()} FROM scored"
    rows = session.execute(text(sql), _params(rules, lo, hi, now))
    return {int(cid): (int(score), json.loads(breakdown)) for cid, score, breakdown in rows}
