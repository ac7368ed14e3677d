"""`qunflow report`: the funnel report over a date range or a named period, as tables or JSON."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import typer

from crm.core.db import transaction
from crm.core.errors import InputError
from crm.reports import BY_CHOICES, funnel_report, report_tables, resolve_range
from flows.cli.common import engine, print_json, print_table, settings, t


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError("error.cli.date_bad", option=option, value=value) from None


def _moment(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InputError("error.cli.moment_bad", option="--as-of", value=value) from None
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
        raise InputError("error.cli.by_unknown", by=by, choices=", ".join(BY_CHOICES))
    with transaction(engine()) as session:
        data = funnel_report(session, start=start, end=end, by=by, tz=tz, now=now, label=label)
    if as_json:
        print_json(data)
        return
    from flows.web.dashboard import present_tables, summary  # the web dashboard's words

    for line in summary(data, t):
        typer.echo(line)
    for table in present_tables(report_tables(data), t):
        typer.echo("")
        typer.echo(table.heading)
        print_table(
            [dict(zip((c.key for c in table.columns), row, strict=True)) for row in table.rows],
            {c.key: c.label for c in table.columns},
        )
