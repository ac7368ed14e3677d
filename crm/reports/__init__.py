"""Funnel reports: UV, contribution, tier conversion, retention, sales and follow-ups.

Every metric is a set-based query over a :class:`ReportWindow` (same results on SQLite and
PostgreSQL); :func:`funnel_report` gathers them all, and the CLI, the Prefect artifacts and
the web manager page render that one dict.
"""

from crm.reports.arrivals import arrivals
from crm.reports.attribution import BY_CHOICES
from crm.reports.contribution import contribution
from crm.reports.conversion import conversion
from crm.reports.followups import cap_headroom, followups
from crm.reports.funnel import (
    funnel_report,
    report_for_window,
    report_tables,
    resolve_range,
    summary_lines,
)
from crm.reports.page import manager_report
from crm.reports.periods import Period, find_period, load_periods
from crm.reports.retention import retention
from crm.reports.sales import sales
from crm.reports.window import ReportWindow, make_window

__all__ = [
    "BY_CHOICES",
    "Period",
    "ReportWindow",
    "arrivals",
    "cap_headroom",
    "contribution",
    "conversion",
    "find_period",
    "followups",
    "funnel_report",
    "load_periods",
    "make_window",
    "manager_report",
    "report_for_window",
    "report_tables",
    "resolve_range",
    "retention",
    "sales",
    "summary_lines",
]
