"""The manager's funnel dashboard: a period picker, the summary, headed tables, charts, CSV."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response

from crm.core.db import transaction
from crm.core.errors import InputError
from crm.reports import BY_CHOICES, manager_report
from crm.reports.periods import load_periods
from crm.sales.users import StaffUser
from flows.i18n import translator
from flows.web.common import (
    check_day,
    current_user,
    engine_of,
    lang_of,
    render,
    require_manager,
    settings_of,
)
from flows.web.dashboard import (
    DEFAULT_PERIOD,
    QUICK_PERIODS,
    choose_range,
    present_tables,
    summary,
    table_csv,
)

router = APIRouter()


def _page(
    request: Request, period: str, by: str, start: date | None, end: date | None
) -> dict[str, Any]:
    check_day(start, "start")
    check_day(end, "end")
    zone = settings_of(request).zone
    today = datetime.now(zone).date()
    periods = load_periods()
    chosen = choose_range(period, start, end, today, periods)
    t = translator(lang_of(request))
    with transaction(engine_of(request)) as session:
        page = manager_report(
            session,
            t,
            start_day=chosen.start_day,
            end_day=chosen.end_day,
            period=chosen.period,
            by=by,
            tz=zone,
        )
    return {
        "periods": periods,
        "summary": summary(page["report"], t),
        "tables": present_tables(page["tables"], t),
        "charts": page["charts"],
        "window": page["report"]["window"],
    }


Period = Query(DEFAULT_PERIOD, max_length=64)
By = Query("source", max_length=16)


@router.get("/manage/funnel", response_class=HTMLResponse)
def funnel(
    request: Request,
    user: StaffUser = Depends(current_user),
    period: str = Period,
    by: str = By,
    start: date | None = Query(None),
    end: date | None = Query(None),
) -> Response:
    """The funnel dashboard for one period, grouped by source, promoter, post …"""
    require_manager(user)
    page = _page(request, period, by, start, end)
    return render(
        request,
        "funnel.html",
        **page,
        period=period,
        quick=QUICK_PERIODS,
        by=by,
        by_choices=BY_CHOICES,
        start=start,
        end=end,
    )


@router.get("/manage/funnel.csv")
def funnel_csv(
    request: Request,
    user: StaffUser = Depends(current_user),
    table: str = Query(..., max_length=40),
    period: str = Period,
    by: str = By,
    start: date | None = Query(None),
    end: date | None = Query(None),
) -> Response:
    """One dashboard table as a CSV download, cells safe to open in a spreadsheet."""
    require_manager(user)
    tables = {t.name: t for t in _page(request, period, by, start, end)["tables"]}
    if table not in tables:
        raise InputError("error.web.table_unknown", table=table)
    return Response(
        table_csv(tables[table]),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{table}-{period}.csv"',
            "Cache-Control": "no-store",
        },
    )
