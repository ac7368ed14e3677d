"""Retention (留存): of the contacts who first joined a group in a week, who stayed and who acted.

Cohorts are tabled by join week and by the source of each contact's first touch.

For a contact who first joined a community on local day D (in the business zone):

- *present on day N*: a membership spans the end of local day D+N (joined at or before it,
  not left before it) — removed or departed contacts have no open membership;
- *active on day N*: any event during local days D+N-6 … D+N (the week up to day N).

Day N of a cohort counts only once the end of its last day D+N has passed (``as_of``);
until then the figures are ``None``. Thresholds are computed per local day in Python and
bound as parameters, so no date arithmetic runs in SQL and both databases agree exactly.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import Integer, case, exists, func, literal, select, union_all
from sqlalchemy.orm import Session

from crm.contacts.attribution import first_touches
from crm.models import Event, Membership, SourceInstance, UTCDateTime
from crm.reports.attribution import NONE_LABEL, dimension
from crm.reports.window import ReportWindow, data_span, local_day, local_midnight, week_of

HORIZONS = (14, 30)
# SQLite allows at most 500 terms in one compound SELECT; thresholds go in chunks of days.
_CHUNK = 400


def retention(session: Session, window: ReportWindow, *, by: str = "source") -> dict[str, Any]:
    """Cohort tables by join week and by first-touch source: present and active after 14/30 days.

    Per source, a horizon counts only the contacts for whom it has passed (``matured_N``).
    """
    # One row per (join day, source): both tables are sums of these.
    cells = _cells(session, window, by)
    return {
        "by": by,
        "horizons": list(HORIZONS),
        "cohorts": _by_week(cells),
        "by_dimension": _by_source(cells),
    }


def _cells(session: Session, window: ReportWindow, by: str) -> list[dict[str, Any]]:
    """Contacts who first joined a group in the cohort window, per local join day and source."""
    cstart, cend = window.cohort_start, window.end
    first = (
        select(Membership.contact_id, func.min(Membership.joined_at).label("joined_at"))
        .where(Membership.joined_at.is_not(None))
        .group_by(Membership.contact_id)
        .having(
            (func.min(Membership.joined_at) >= cstart) & (func.min(Membership.joined_at) < cend)
        )
        .subquery("first_join")
    )
    firsts = first_touches(select(first.c.contact_id))
    key, label = dimension(by)
    span = data_span(session, first.c.joined_at, cstart, cend)
    with_day = (
        select(
            first.c.contact_id,
            local_day(first.c.joined_at, window, *span).label("day"),
            func.coalesce(key, NONE_LABEL).label("key"),
            func.coalesce(label, NONE_LABEL).label("label"),
        )
        .select_from(first)
        .outerjoin(firsts, firsts.c.contact_id == first.c.contact_id)
        .outerjoin(SourceInstance, SourceInstance.id == firsts.c.source_instance_id)
        .subquery("joined_day")
    )
    # Only the days someone joined on: a long range costs no more than its joins.
    days = sorted(date.fromisoformat(d) for d in session.scalars(select(with_day.c.day).distinct()))
    cells: list[dict[str, Any]] = []
    for i in range(0, len(days), _CHUNK):
        for row in session.execute(_day_query(with_day, days[i : i + _CHUNK], window)):
            day = date.fromisoformat(row.day)
            cell: dict[str, Any] = {
                "day": day,
                "key": row.key,
                "label": row.label,
                "joined": int(row.joined),
            }
            for n in HORIZONS:
                cell[f"matured_{n}"] = _horizon_end(day, n, window) <= window.as_of
                cell[f"present_{n}"] = int(getattr(row, f"present_{n}"))
                cell[f"active_{n}"] = int(getattr(row, f"active_{n}"))
            cells.append(cell)
    return cells


def _by_week(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Join-week cohorts; a horizon not yet passed for the whole week shows no figure."""
    weeks: dict[str, dict[str, Any]] = {}
    for cell in cells:
        acc = weeks.setdefault(
            week_of(cell["day"]), {"joined": 0, **{f"matured_{n}": True for n in HORIZONS}}
        )
        acc["joined"] += cell["joined"]
        for n in HORIZONS:
            acc[f"matured_{n}"] = acc[f"matured_{n}"] and cell[f"matured_{n}"]
            for what in ("present", "active"):
                acc[f"{what}_{n}"] = acc.get(f"{what}_{n}", 0) + cell[f"{what}_{n}"]
    cohorts = []
    for week in sorted(weeks):
        acc = weeks[week]
        line: dict[str, Any] = {"week": week, "joined": acc["joined"]}
        for n in HORIZONS:
            for what in ("present", "active"):
                if acc[f"matured_{n}"]:
                    line[f"{what}_{n}"] = acc[f"{what}_{n}"]
                    line[f"{what}_{n}_rate"] = (
                        round(acc[f"{what}_{n}"] / acc["joined"], 4) if acc["joined"] else None
                    )
                else:
                    line[f"{what}_{n}"] = None
                    line[f"{what}_{n}_rate"] = None
        cohorts.append(line)
    return cohorts


def _by_source(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per source, each horizon over the contacts for whom it has passed."""
    sources: dict[str, dict[str, Any]] = {}
    for cell in cells:
        acc = sources.setdefault(
            cell["key"],
            {
                "key": cell["key"],
                "label": cell["label"],
                "joined": 0,
                **{f"{w}_{n}": 0 for n in HORIZONS for w in ("matured", "present", "active")},
            },
        )
        acc["joined"] += cell["joined"]
        for n in HORIZONS:
            if cell[f"matured_{n}"]:
                acc[f"matured_{n}"] += cell["joined"]
                acc[f"present_{n}"] += cell[f"present_{n}"]
                acc[f"active_{n}"] += cell[f"active_{n}"]
    by_dimension = []
    for acc in sorted(sources.values(), key=lambda a: (-a["joined"], str(a["key"]))):
        for n in HORIZONS:
            base = acc[f"matured_{n}"]
            for what in ("present", "active"):
                if not base:
                    acc[f"{what}_{n}"] = None
                acc[f"{what}_{n}_rate"] = round(acc[f"{what}_{n}"] / base, 4) if base else None
        by_dimension.append(acc)
    return by_dimension


def _horizon_end(day: date, n: int, window: ReportWindow) -> Any:
    return local_midnight(day + timedelta(days=n + 1), window.zone)


def _day_query(with_day: Any, days: list[date], window: ReportWindow) -> Any:
    rows = []
    for d in days:
        cols: list[Any] = [literal(d.isoformat()).label("day")]
        for n in HORIZONS:
            matured = _horizon_end(d, n, window) <= window.as_of
            cols.append(literal(1 if matured else 0, Integer()).label(f"matured_{n}"))
            cols.append(literal(_horizon_end(d, n, window), UTCDateTime()).label(f"end_{n}"))
            cols.append(
                literal(
                    local_midnight(d + timedelta(days=n - 6), window.zone), UTCDateTime()
                ).label(f"from_{n}")
            )
        rows.append(select(*cols))
    thresholds = (union_all(*rows) if len(rows) > 1 else rows[0]).subquery("thresholds")
    t = thresholds.c
    measures: list[Any] = []
    for n in HORIZONS:
        end, begin = t[f"end_{n}"], t[f"from_{n}"]
        present = exists().where(
            (Membership.contact_id == with_day.c.contact_id)
            & (Membership.joined_at <= end)
            & (Membership.left_at.is_(None) | (Membership.left_at > end))
        )
        active = exists().where(
            (Event.contact_id == with_day.c.contact_id)
            & (Event.occurred_at >= begin)
            & (Event.occurred_at < end)
        )
        # Nested CASE: the probes run only for days whose horizon has passed (CASE keeps
        # its order of evaluation; AND would not promise to).
        ripe = t[f"matured_{n}"] == 1
        measures.append(
            func.sum(case((ripe, case((present, 1), else_=0)), else_=0)).label(f"present_{n}")
        )
        measures.append(
            func.sum(case((ripe, case((active, 1), else_=0)), else_=0)).label(f"active_{n}")
        )
    return (
        select(t.day, with_day.c.key, with_day.c.label, func.count().label("joined"), *measures)
        .select_from(with_day)
        .join(thresholds, thresholds.c.day == with_day.c.day)
        .group_by(t.day, with_day.c.key, with_day.c.label)
    )
