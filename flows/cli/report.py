"""`qunflow report`: the funnel report over a date range or a named period, as tables or JSON."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import typer

from crm.core.db import transaction
from crm.core.errors import InputError
from crm.reports import BY_CHOICES, funnel_report, report_tables, resolve_range, summary_lines
from flows.cli.common import engine, print_json, print_table, settings

TITLES = {
    "arrivals_by_kind": "Arrivals by source kind",
    "arrivals_by_source": "Arrivals by {by}",
    "arrivals_by_day": "Arrivals by day",
    "contribution_by_source": "Contribution (贡献量) by {by} of first touch",
    "contribution_by_group": "Contribution by group",
    "top_contributors": "Top contributors",
    "funnel": "Funnel of new contacts (reached tier, rate from the stage before)",
    "conversion_by_source": "Conversion by {by}",
    "conversion_by_week": "Conversion by arrival week",
    "tier_moves": "Tier moves in the range",
    "tier_step_hours": "Median hours between tiers",
    "retention": "Retention (留存) by join week",
    "retention_by_source": "Retention by {by} of first touch (matured contacts only)",
    "sales": "Sales",
    "followups": "Follow-ups by campaign and channel",
    "cap_headroom": "Cap headroom today",
}


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option}: not a date: {value!r} (expected YYYY-MM-DD)") from None


def _moment(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"--as-of: not a date and time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=settings().zone)
    return moment.astimezone(UTC)


def report(
    from_: str | None = typer.Option(
        None, "--from", help="First local day included (YYYY-MM-DD). Default: yesterday."
    ),
    to: str | None = typer.Option(
        None, "--to", help="First local day NOT included (YYYY-MM-DD). Default: today."
    ),
    period: str | None = typer.Option(
        None, "--period", help="A named special period (e.g. 春节, double-11-2026)."
    ),
    by: str = typer.Option("source", "--by", help=f"Group sources by: {', '.join(BY_CHOICES)}."),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Count cohort progress up to this time (default: now)."
    ),
    periods_file: Path | None = typer.Option(
        None, "--periods-file", help="Periods TOML file (default: the bundled periods)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Funnel report: UV, contribution, tier conversion, retention, sales and follow-ups.

    Days are local days in QUNFLOW_TIMEZONE; the range is [--from, --to).
    """
    tz = settings().zone
    now = _moment(as_of)
    start, end, label = resolve_range(
        start_day=_day(from_, "--from"),
        end_day=_day(to, "--to"),
        period=period,
        tz=tz,
        now=now,
        periods_path=periods_file,
    )
    if by not in BY_CHOICES:
        raise InputError(f"--by: unknown grouping {by!r} (choose one of: {', '.join(BY_CHOICES)})")
    with transaction(engine()) as session:
        data = funnel_report(session, start=start, end=end, by=by, tz=tz, now=now, label=label)
    if as_json:
        print_json(data)
        return
    for line in summary_lines(data):
        typer.echo(line)
    for name, rows in report_tables(data).items():
        typer.echo("")
        typer.echo(TITLES.get(name, name).format(by=by))
        print_table(rows)
