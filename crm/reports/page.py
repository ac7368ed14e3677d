"""Everything the web manager page shows: the report, its tables and its charts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from crm.reports.charts import data_uri, render_charts
from crm.reports.funnel import funnel_report, report_tables, resolve_range


def manager_report(
    session: Session,
    t: Callable[[str], str],
    *,
    start_day: date | None = None,
    end_day: date | None = None,
    period: str | None = None,
    by: str = "source",
    tz: str | ZoneInfo = "Asia/Shanghai",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Report, flat tables and chart data URIs for one page (default: yesterday).

    ``t`` gives the charts their words; a chart with no data is None.

    Bad input (unknown period, empty range, unknown grouping) raises InputError (HTTP 400).
    """
    start, end, label = resolve_range(
        start_day=start_day, end_day=end_day, period=period, tz=tz, now=now
    )
    report = funnel_report(session, start=start, end=end, by=by, tz=tz, now=now, label=label)
    charts = render_charts(report, t)
    return {
        "report": report,
        "tables": report_tables(report),
        "charts": {name: None if png is None else data_uri(png) for name, png in charts.items()},
    }
