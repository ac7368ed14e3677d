"""Retention (留存): of the contacts who first joined a group in a week, who stayed and who acted.

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

from sqlalchemy import case, exists, func, literal, select, union_all
from sqlalchemy.orm import Session

from crm.models import Event, Membership, UTCDateTime
from crm.reports.window import ReportWindow, local_day, local_midnight, week_of

HORIZONS = (14, 30)
# SQLite allows at most 500 terms in one compound SELECT; thresholds go in chunks of days.
_CHUNK = 400


def retention(session: Session, window: ReportWindow) -> dict[str, Any]:
    """Weekly cohort table: joined, present and active after 14 and 30 days, with rates."""
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
    with_day = select(
        first.c.contact_id, local_day(first.c.joined_at, window, cstart, cend).label("day")
    ).subquery("joined_day")

    days = [
        cstart.astimezone(window.zone).date() + timedelta(days=i)
        for i in range((cend - cstart).days + 2)
    ]
    days = [d for d in days if local_midnight(d, window.zone) < cend]
    per_day: dict[str, dict[str, int]] = {}
    for i in range(0, len(days), _CHUNK):
        for row in session.execute(_day_query(with_day, days[i : i + _CHUNK], window)):
            per_day[row.day] = {
                "joined": int(row.joined),
                **{f"present_{n}": int(getattr(row, f"present_{n}")) for n in HORIZONS},
                **{f"active_{n}": int(getattr(row, f"active_{n}")) for n in HORIZONS},
            }

    weeks: dict[str, dict[str, Any]] = {}
    for day_text, counts in sorted(per_day.items()):
        day = date.fromisoformat(day_text)
        acc = weeks.setdefault(
            week_of(day), {"joined": 0, **{f"matured_{n}": True for n in HORIZONS}}
        )
        acc["joined"] += counts["joined"]
        for n in HORIZONS:
            matured = _horizon_end(day, n, window) <= window.as_of
            acc[f"matured_{n}"] = acc[f"matured_{n}"] and matured
            for what in ("present", "active"):
                acc[f"{what}_{n}"] = acc.get(f"{what}_{n}", 0) + counts[f"{what}_{n}"]
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
    return {"horizons": list(HORIZONS), "cohorts": cohorts}


def _horizon_end(day: date, n: int, window: ReportWindow) -> Any:
    return local_midnight(day + timedelta(days=n + 1), window.zone)


def _day_query(with_day: Any, days: list[date], window: ReportWindow) -> Any:
    rows = []
    for d in days:
        cols: list[Any] = [literal(d.isoformat()).label("day")]
        for n in HORIZONS:
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
        measures.append(func.sum(case((present, 1), else_=0)).label(f"present_{n}"))
        measures.append(func.sum(case((active, 1), else_=0)).label(f"active_{n}"))
    return (
        select(t.day, func.count().label("joined"), *measures)
        .select_from(with_day)
        .join(thresholds, thresholds.c.day == with_day.c.day)
        .group_by(t.day)
    )
