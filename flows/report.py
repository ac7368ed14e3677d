"""The daily funnel-report flow: one report, published as Prefect artifacts and chart images.

Artifacts: a markdown summary with the charts embedded (PNG data URIs), one table artifact
per report table, and the PNG files under ``<data_dir>/reports/``. Every figure comes from
one :func:`crm.reports.funnel_report` call, the same the CLI and the web page use.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import Field

from crm.core.db import transaction
from crm.reports import funnel_report, report_tables, resolve_range, summary_lines
from crm.reports.charts import data_uri, render_charts
from flows.alerts import on_failure
from flows.runtime import engine_for, settings

Grouping = Literal["source", "kind", "promoter", "post", "group", "location", "campaign"]
KEY = "funnel-report"


@task(name="build-funnel-report")
def build_report(
    database_url: str, days: int, period: str | None, by: str, as_of: datetime | None
) -> dict[str, Any]:
    """Run every report query once (one read transaction)."""
    zone = settings().zone
    start, end, label = resolve_range(days=days, period=period, tz=zone, now=as_of)
    with transaction(engine_for(database_url)) as session:
        return funnel_report(session, start=start, end=end, by=by, tz=zone, now=as_of, label=label)


@task(name="draw-report-charts")
def draw_charts(report: dict[str, Any], out_dir: str) -> dict[str, str]:
    """Render the charts and save them as PNG files; returns name → file path."""
    window = report["window"]
    folder = Path(out_dir) / f"{window['start'][:10]}_{window['end'][:10]}_{report['by']}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, png in render_charts(report).items():
        path = folder / f"{name}.png"
        path.write_bytes(png)
        paths[name] = str(path)
    return paths


@task(name="publish-report-artifacts")
def publish(report: dict[str, Any], charts: dict[str, str]) -> list[str]:
    """One markdown summary with the charts inline and a table artifact per report table."""
    label = report["window"]["label"]
    lines = [f"# {summary_lines(report)[0]}", ""]
    lines += [f"- {line}" for line in summary_lines(report)[1:]]
    for name, path in charts.items():
        lines += [
            "",
            f"## {name.capitalize()}",
            "",
            f"![{name}]({data_uri(Path(path).read_bytes())})",
        ]
    lines += ["", f"Chart files: `{Path(next(iter(charts.values()))).parent}`"] if charts else []
    keys = [f"{KEY}-summary"]
    create_markdown_artifact(
        key=keys[0], markdown="\n".join(lines), description=f"Funnel report {label}"
    )
    for name, rows in report_tables(report).items():
        key = f"{KEY}-{name.replace('_', '-')}"
        create_table_artifact(
            key=key,
            table=rows or [{"note": "no rows"}],
            description=f"{name.replace('_', ' ')}, {label}",
        )
        keys.append(key)
    return keys


@flow(name="funnel-report", on_failure=[on_failure], on_crashed=[on_failure], log_prints=False)
def funnel_report_flow(
    days: Annotated[int, Field(ge=1, le=366)] = Field(
        1, description="Report the last N complete local days (1: yesterday)."
    ),
    period: str | None = Field(
        None, description="A named special period instead of the last days (e.g. 春节)."
    ),
    by: Grouping = Field(
        "source", description="Group sources by instance, kind, promoter, post, group …"
    ),
    as_of: datetime | None = Field(
        None, description="Read the report as of this time (default: now)."
    ),
    database_url: str | None = Field(
        None, description="CRM database URL (default: the configured one)."
    ),
) -> dict[str, Any]:
    """Compute the funnel report and publish it as Prefect artifacts and chart images."""
    url = database_url or settings().sqlalchemy_url
    report = build_report(url, days, period, by, as_of)
    charts = draw_charts(report, str(settings().data_dir / "reports"))
    keys = publish(report, charts)
    get_run_logger().info("funnel report %s: %s", report["window"]["label"], ", ".join(keys))
    return {"report": report, "charts": charts, "artifacts": keys}
