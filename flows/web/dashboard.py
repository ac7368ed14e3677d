"""The funnel dashboard in the reader's words: period choices, headed tables, summary, CSV.

Shared by the web page and the Prefect report artifacts, so both read the same.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from crm.core.errors import InputError
from crm.reports.conversion import TIERS
from crm.reports.periods import Period
from flows.web.breakdown import word_for

Translate = Callable[[str], str]
QUICK_PERIODS = ("today", "7d", "30d")
DEFAULT_PERIOD = "7d"
# A spreadsheet runs a cell starting with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_TIER_COLUMNS = {"stage", "from", "to"}
# Database ids: in the CSV for joining with other exports, but noise on the page.
_ID_COLUMNS = {"key", "account_id", "community_id", "contact_id", "user_id"}


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    shown: bool = True  # on the page; the CSV has every column
    numeric: bool = False  # right-aligned


@dataclass(frozen=True)
class Table:
    """One report table ready to show: its name (for links), heading, columns and cells."""

    name: str
    heading: str
    columns: list[Column]
    rows: list[list[str]]


@dataclass(frozen=True)
class RangeChoice:
    """What the period picker asks for, as report options."""

    start_day: date | None
    end_day: date | None
    period: str | None


def choose_range(
    choice: str, start: date | None, end: date | None, today: date, periods: Sequence[Period]
) -> RangeChoice:
    """The picker's choice as report options; a custom range includes its last day."""
    if choice == "today":
        return RangeChoice(today, today + timedelta(days=1), None)
    if choice in ("7d", "30d"):
        return RangeChoice(today - timedelta(days=int(choice[:-1])), today, None)
    if choice == "custom":
        if start is None or end is None:
            raise InputError("error.web.period_incomplete")
        return RangeChoice(start, end + timedelta(days=1), None)
    if any(choice == p.name for p in periods):
        return RangeChoice(None, None, choice)
    raise InputError("error.web.period_unknown", choice=choice)


def _tier_word(t: Translate, code: Any) -> str:
    if code is None:
        return ""
    if code == "arrived":
        return t("stage.arrived")
    return word_for(t, "tier", str(code))


NO_RATE = "—"  # a rate over nothing (no one arrived): shown, not left blank


def _is_rate(column: str) -> bool:
    return column == "rate" or column.endswith("_rate") or column.startswith("rate_")


def cell_text(t: Translate, column: str, value: Any) -> str:
    """One cell as the reader sees it: rates as percentages, codes as words."""
    if value is None:
        if column == "from":  # no tier before: just arrived
            return t("stage.arrived")
        if column == "to":  # no tier after: removed from the funnel
            return t("tier.removed")
        return NO_RATE if _is_rate(column) else ""
    if _is_rate(column):
        return f"{float(value) * 100:.1f}%"
    if column in _TIER_COLUMNS:
        return _tier_word(t, value)
    if column == "step":
        return " → ".join(_tier_word(t, part) for part in str(value).split("->"))
    if column == "kind":
        return word_for(t, "source", str(value))
    if column in ("action", "platform"):
        return word_for(t, column, str(value))
    if column == "channel":  # channels are named by their platform
        return word_for(t, "platform", str(value))
    if column == "campaign":
        return word_for(t, "campaign", str(value))
    if value == "(none)":
        return t("none")
    if column == "label" and isinstance(value, str):
        return _platform_label(t, value)
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _platform_label(t: Translate, label: str) -> str:
    """A self-media label ("xhs · 帖子") names its platform in words (小红书 · 帖子)."""
    platform, sep, rest = label.partition(" · ")
    return f"{word_for(t, 'platform', platform)}{sep}{rest}" if sep else label


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def present_tables(tables: dict[str, list[dict[str, Any]]], t: Translate) -> list[Table]:
    """Every report table with its heading, column labels and formatted cells."""
    shown = []
    for name, rows in tables.items():
        keys = list(rows[0]) if rows else []
        shown.append(
            Table(
                name=name,
                heading=t(f"table.{name}"),
                columns=[
                    Column(
                        k,
                        t(f"col.{k}"),
                        shown=k not in _ID_COLUMNS,
                        numeric=all(_is_number(row.get(k)) for row in rows),
                    )
                    for k in keys
                ],
                rows=[[cell_text(t, k, row.get(k)) for k in keys] for row in rows],
            )
        )
    return shown


def _pct(rate: float | None) -> str:
    return NO_RATE if rate is None else f"{rate * 100:.1f}%"


def summary(report: dict[str, Any], t: Translate) -> list[str]:
    """The headline figures in the reader's language."""
    arr, con = report["arrivals"]["totals"], report["contribution"]["totals"]
    cohort, s = report["conversion"]["cohort"], report["sales"]["totals"]
    fu, win = report["followups"]["totals"], report["window"]
    steps = " → ".join(f"{_tier_word(t, tier)} {cohort[tier]}" for tier in TIERS)
    by = t(f"by.{report['by']}")
    return [
        t("sum.title").format(label=win["label"], timezone=win["timezone"], by=by),
        t("sum.arrivals").format(touches=arr["touches"], uv=arr["uv"], new=arr["new_contacts"]),
        t("sum.contribution").format(**con),
        t("sum.funnel").format(steps=steps, paid_rate=_pct(cohort["paid_rate"])),
        t("sum.sales").format(**{**s, "win_rate": _pct(s["win_rate"])}),
        t("sum.followups").format(**fu),
    ]


def safe_cell(text: str) -> str:
    """A cell a spreadsheet shows as text: a leading = + - @ (or tab, CR) gets a quote."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def table_csv(table: Table) -> str:
    """The table as CSV (with a BOM so spreadsheet programs read the Chinese right)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([safe_cell(c.label) for c in table.columns])
    writer.writerows([safe_cell(cell) for cell in row] for row in table.rows)
    return "\ufeff" + buf.getvalue()
