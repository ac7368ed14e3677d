"""The whole funnel report: every section from one call, and its flat tables.

The CLI, the Prefect artifacts and the web manager page all render the dict returned by
:func:`funnel_report`, so they show the same figures.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from crm.core.errors import InputError
from crm.reports.arrivals import arrivals
from crm.reports.attribution import check_by
from crm.reports.contribution import contribution
from crm.reports.conversion import TIERS, conversion
from crm.reports.followups import followups
from crm.reports.periods import find_period
from crm.reports.retention import retention
from crm.reports.sales import sales
from crm.reports.window import DEFAULT_COHORT_WEEKS, ReportWindow, as_zone, make_window


def funnel_report(
    session: Session,
    *,
    start: datetime | date,
    end: datetime | date,
    by: str = "source",
    tz: str | ZoneInfo = "Asia/Shanghai",
    now: datetime | None = None,
    label: str | None = None,
    cohort_weeks: int = DEFAULT_COHORT_WEEKS,
) -> dict[str, Any]:
    """Every funnel metric over [start, end) as one JSON-ready dict (dates are local days)."""
    by = check_by(by)
    window = make_window(start, end, tz=tz, now=now, label=label, cohort_weeks=cohort_weeks)
    return report_for_window(session, window, by=by)


def report_for_window(session: Session, window: ReportWindow, *, by: str) -> dict[str, Any]:
    """All sections for an already built window."""
    return {
        "window": window.describe(),
        "by": by,
        "arrivals": arrivals(session, window, by=by),
        "contribution": contribution(session, window, by=by),
        "conversion": conversion(session, window, by=by),
        "retention": retention(session, window, by=by),
        "sales": sales(session, window),
        "followups": followups(session, window),
    }


def resolve_range(
    *,
    start_day: date | None = None,
    end_day: date | None = None,
    period: str | None = None,
    days: int | None = None,
    tz: str | ZoneInfo = "Asia/Shanghai",
    now: datetime | None = None,
    periods_path: Path | None = None,
) -> tuple[date, date, str | None]:
    """Turn report options into local days [start, end) and a label.

    A period wins alone; otherwise ``start_day``/``end_day`` (``end_day`` excluded; either
    may be omitted), else the last ``days`` complete local days (default 1: yesterday).
    """
    if period is not None:
        if start_day is not None or end_day is not None:
            raise InputError("error.reports.period_and_range")
        found = find_period(period, periods_path)
        return found.start, found.end, found.title
    zone = as_zone(tz)
    today = (now or datetime.now(ZoneInfo("UTC"))).astimezone(zone).date()
    if start_day is None and end_day is None:
        n = 1 if days is None else days
        if n < 1:
            raise InputError("error.reports.days_min")
        return today - timedelta(days=n), today, None
    end = end_day or today
    start = start_day or end - timedelta(days=1)
    if end <= start:
        raise InputError("error.reports.range_order", start=start.isoformat(), end=end.isoformat())
    return start, end, None


def _rates(row: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in row.items() if k != "rates"}
    for tier, rate in row.get("rates", {}).items():
        flat[f"rate_{tier}"] = rate
    return flat


def report_tables(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The report as named flat tables (rows of scalars) for the CLI, artifacts and web."""
    conv = report["conversion"]
    funnel_row = {"stage": "arrived", "contacts": conv["cohort"]["arrived"], "rate": None}
    funnel = [funnel_row] + [
        {"stage": t, "contacts": conv["cohort"][t], "rate": conv["cohort"]["rates"][t]}
        for t in TIERS
    ]
    medians = [
        {"step": step, "n": v["n"], "median_hours": v["median"]}
        for step, v in conv["median_hours"].items()
    ]
    return {
        "arrivals_by_kind": report["arrivals"]["by_kind"],
        "arrivals_by_source": report["arrivals"]["by_dimension"],
        "arrivals_by_day": report["arrivals"]["by_day"],
        "contribution_by_source": report["contribution"]["by_source"],
        "contribution_by_group": report["contribution"]["by_group"],
        "top_contributors": report["contribution"]["by_contact"],
        "funnel": funnel,
        "conversion_by_source": [_rates(r) for r in conv["by_dimension"]],
        "conversion_by_week": [_rates(r) for r in conv["by_week"]],
        "tier_moves": conv["moves"],
        "tier_step_hours": medians,
        "retention": report["retention"]["cohorts"],
        "retention_by_source": report["retention"]["by_dimension"],
        "sales": report["sales"]["by_user"],
        "followups": report["followups"]["by_campaign"],
        "cap_headroom": report["followups"]["caps"],
    }


def summary_lines(report: dict[str, Any]) -> list[str]:
    """A few lines with the headline figures."""
    arr, con = report["arrivals"]["totals"], report["contribution"]["totals"]
    cohort, s = report["conversion"]["cohort"], report["sales"]["totals"]
    fu = report["followups"]["totals"]
    win = report["window"]
    return [
        f"Funnel report {win['label']} ({win['timezone']}), by {report['by']}",
        f"arrivals: {arr['touches']} touches, {arr['uv']} unique contacts (UV), "
        f"{arr['new_contacts']} new",
        f"contribution: {con['messages']} messages, {con['shares']} shares, "
        f"{con['referrals']} referrals from {con['contributors']} contacts",
        "funnel of new contacts: "
        + " → ".join(f"{t} {cohort[t]}" for t in TIERS)
        + f" (paid rate {_pct(cohort['paid_rate'])})",
        f"sales: pool {s['pool']}, holding {s['holding']}, claims {s['claims']}, "
        f"won {s['won']}, lost {s['lost']}, win rate {_pct(s['win_rate'])}, "
        f"SLA breaches {s['sla_breaches']}",
        f"follow-ups: {fu['total']} due, {fu['sent']} sent, {fu['deferred']} deferred, "
        f"{fu['failed']} failed, {fu['skipped']} skipped ({fu['opted_out']} opted out)",
    ]


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"
