"""Tier conversion: how many contacts reached open → active → prospect → paid, and how fast.

A contact "reached" a tier when a tier change moved it there or to a later tier (so a jump
counts for the steps it skipped); cohorts are contacts by the time of their first touch.
Medians are computed in Python from the fetched durations, identically on both databases.
"""

from __future__ import annotations

import itertools
import statistics
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from crm.contacts.attribution import first_touches
from crm.core.vocabulary import TIER_ORDER
from crm.models import SourceInstance, TierChange, Touch
from crm.reports.attribution import NONE_LABEL, dimension
from crm.reports.window import ReportWindow, data_span, local_day, week_of

TIERS = tuple(t.value for t in TIER_ORDER)
STEPS = tuple(f"{a}->{b}" for a, b in itertools.pairwise(TIERS))


def _rank() -> Any:
    return case(*((TierChange.to_tier == t, i) for i, t in enumerate(TIERS)), else_=None)


def _reached_counts(rows: Any) -> dict[str, Any]:
    """Pivot rows of (arrived, reached_<tier>...) into counts and step rates."""
    out: dict[str, Any] = {"arrived": int(rows.arrived or 0)}
    for tier in TIERS:
        out[tier] = int(getattr(rows, tier) or 0)
    rates: dict[str, float | None] = {}
    prev = "arrived"
    for tier in TIERS:
        rates[tier] = round(out[tier] / out[prev], 4) if out[prev] else None
        prev = tier
    out["rates"] = rates
    out["paid_rate"] = round(out["paid"] / out["arrived"], 4) if out["arrived"] else None
    return out


def conversion(session: Session, window: ReportWindow, *, by: str = "source") -> dict[str, Any]:
    """Cohort funnel by source and by arrival week, tier moves in the window, median step times."""
    by_dimension = _by_dimension(session, window, by)
    cohort: dict[str, Any] = {"arrived": 0, **dict.fromkeys(TIERS, 0)}
    for row in by_dimension:
        for name in ("arrived", *TIERS):
            cohort[name] += row[name]
    return {
        "by": by,
        "cohort": _reached_counts(_Obj(cohort)),
        "by_dimension": by_dimension,
        "by_week": _by_week(session, window),
        "moves": _moves(session, window),
        "median_hours": _median_step_hours(session, window),
    }


def _top_rank_of(as_of: Any, contacts: Any | None) -> Any:
    """Highest tier each contact reached by as_of (only ``contacts``, when given)."""
    q = select(TierChange.contact_id, func.max(_rank()).label("rank")).where(
        TierChange.changed_at < as_of
    )
    if contacts is not None:
        q = q.where(TierChange.contact_id.in_(contacts))
    return q.group_by(TierChange.contact_id).subquery("top_rank")


def _funnel_cols(top_rank: Any) -> list[Any]:
    return [
        func.count().label("arrived"),
        *(func.sum(case((top_rank.c.rank >= i, 1), else_=0)).label(t) for i, t in enumerate(TIERS)),
    ]


def _by_dimension(session: Session, window: ReportWindow, by: str) -> list[dict[str, Any]]:
    """The window's cohort (contacts whose first touch falls in it) per source dimension."""
    touched = select(Touch.contact_id).where(
        (Touch.touched_at >= window.start) & (Touch.touched_at < window.end)
    )
    firsts = first_touches(touched)
    in_window = (firsts.c.touched_at >= window.start) & (firsts.c.touched_at < window.end)
    # A day's cohort is small: read only its contacts' changes (index on contact_id).
    top_rank = _top_rank_of(window.as_of, touched)
    key, label = dimension(by)
    # The same label objects in SELECT and GROUP BY, so PostgreSQL sees one bound parameter.
    key_col = func.coalesce(key, NONE_LABEL).label("key")
    label_col = func.coalesce(label, NONE_LABEL).label("label")
    base = (
        select(key_col, label_col, *_funnel_cols(top_rank))
        .select_from(firsts)
        .join(SourceInstance, SourceInstance.id == firsts.c.source_instance_id)
        .outerjoin(top_rank, top_rank.c.contact_id == firsts.c.contact_id)
        .where(in_window)
        .group_by(key_col, label_col)
    )
    return sorted(
        ({"key": r.key, "label": r.label, **_reached_counts(r)} for r in session.execute(base)),
        key=lambda r: (-r["arrived"], str(r["key"])),
    )


def _by_week(session: Session, window: ReportWindow) -> list[dict[str, Any]]:
    """Arrival-week cohorts over the cohort window (counted per local day, summed per week)."""
    cstart = window.cohort_start
    c_touched = select(Touch.contact_id).where(
        (Touch.touched_at >= cstart) & (Touch.touched_at < window.end)
    )
    cfirsts = first_touches(c_touched)
    # Most contacts of the cohort weeks changed tier: one pass over all changes is cheaper.
    top_rank = _top_rank_of(window.as_of, None)
    span = data_span(session, cfirsts.c.touched_at, cstart, window.end)
    day = local_day(cfirsts.c.touched_at, window, *span)
    day_rows = session.execute(
        select(day.label("day"), *_funnel_cols(top_rank))
        .select_from(cfirsts)
        .outerjoin(top_rank, top_rank.c.contact_id == cfirsts.c.contact_id)
        .where((cfirsts.c.touched_at >= cstart) & (cfirsts.c.touched_at < window.end))
        .group_by(day)
    )
    weeks: dict[str, dict[str, int]] = {}
    for r in day_rows:
        acc = weeks.setdefault(week_of(r.day), {"arrived": 0, **dict.fromkeys(TIERS, 0)})
        acc["arrived"] += int(r.arrived)
        for tier in TIERS:
            acc[tier] += int(getattr(r, tier) or 0)
    return [{"week": w, **_reached_counts(_Obj(weeks[w]))} for w in sorted(weeks)]


def _moves(session: Session, window: ReportWindow) -> list[dict[str, Any]]:
    """Tier moves recorded in the window, counted per (from, to)."""
    in_range = (TierChange.changed_at >= window.start) & (TierChange.changed_at < window.end)
    move_rows = session.execute(
        select(TierChange.from_tier, TierChange.to_tier, func.count().label("n"))
        .where(in_range)
        .group_by(TierChange.from_tier, TierChange.to_tier)
    )
    # Sorted here: the databases disagree on where NULL tiers (entry, removal) sort.
    return sorted(
        ({"from": r.from_tier, "to": r.to_tier, "count": r.n} for r in move_rows),
        key=lambda m: (m["from"] or "", m["to"] or ""),
    )


def _median_step_hours(session: Session, window: ReportWindow) -> dict[str, Any]:
    """Median hours from first entering a tier to first entering the next, for entries in range.

    A step counts when the contact first entered the later tier inside the window, after
    having entered the earlier one.
    """
    movers = select(TierChange.contact_id).where(
        (TierChange.changed_at >= window.start) & (TierChange.changed_at < window.end)
    )
    rows = session.execute(
        select(TierChange.contact_id, TierChange.to_tier, func.min(TierChange.changed_at))
        .where(TierChange.contact_id.in_(movers), TierChange.to_tier.in_(TIERS))
        .group_by(TierChange.contact_id, TierChange.to_tier)
    )
    entered: dict[int, dict[str, Any]] = {}
    for contact_id, tier, at in rows:
        entered.setdefault(contact_id, {})[tier] = at
    durations: dict[str, list[float]] = {step: [] for step in STEPS}
    for tiers in entered.values():
        for lower, upper in itertools.pairwise(TIERS):
            a, b = tiers.get(lower), tiers.get(upper)
            if a is None or b is None or not (window.start <= b < window.end) or b < a:
                continue
            durations[f"{lower}->{upper}"].append((b - a).total_seconds() / 3600)
    return {
        step: {
            "n": len(values),
            "median": round(statistics.median(values), 2) if values else None,
        }
        for step, values in durations.items()
    }


class _Obj:
    """Attribute access over a dict, so summed rows pivot like fetched ones."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.__dict__.update(data)
