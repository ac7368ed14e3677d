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
from crm.reports import funnel_report, report_tables, resolve_range
from crm.reports.charts import data_uri, render_charts
from flows.alerts import on_failure
from flows.i18n import translator
from flows.runtime import engine_for, settings
from flows.web.dashboard import present_tables, summary

Grouping = Literal["source", "kind", "promoter", "post", "group", "location", "campaign"]
Lang = Literal["zh", "en"]
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
def draw_charts(report: dict[str, Any], out_dir: str, lang: str) -> dict[str, str]:
    """Render the charts that have data and save them as PNG files; returns name → file path."""
    window = report["window"]
    folder = Path(out_dir) / f"{window['start'][:10]}_{window['end'][:10]}_{report['by']}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, png in render_charts(report, translator(lang)).items():
        if png is None:
            continue
        path = folder / f"{name}.png"
        path.write_bytes(png)
        paths[name] = str(path)
    return paths


@task(name="publish-report-artifacts")
def publish(report: dict[str, Any], charts: dict[str, str], lang: str) -> list[str]:
    """One markdown summary with the charts inline and a table artifact per report table."""
    t = translator(lang)
    label = report["window"]["label"]
    head, *rest = summary(report, t)
    lines = [f"# {head}", "", *(f"- {line}" for line in rest)]
    for name, path in charts.items():
        title = t(f"chart.{name}").format(
            first=report["window"]["first_day"], last=report["window"]["last_day"]
        )
        lines += ["", f"## {title}", "", f"![{title}]({data_uri(Path(path).read_bytes())})"]
    lines += ["", t("no_data")] if not charts else []
    keys = [f"{KEY}-summary"]
    create_markdown_artifact(key=keys[0], markdown="\n".join(lines), description=head)
    for table in present_tables(report_tables(report), t):
        key = f"{KEY}-{table.name.replace('_', '-')}"
        labels = [c.label for c in table.columns]
        rows = [dict(zip(labels, row, strict=True)) for row in table.rows]
        create_table_artifact(
            key=key,
            table=rows or [{t("summary"): t("no_data")}],
            description=f"{table.heading}, {label}",
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
    lang: Lang = Field("zh", description="Language of the artifacts and charts (zh or en)."),
) -> dict[str, Any]:
    """Compute the funnel report and publish it as Prefect artifacts and chart images."""
    url = database_url or settings().sqlalchemy_url
    report = build_report(url, days, period, by, as_of)
    charts = draw_charts(report, str(settings().data_dir / "reports"), lang)
    keys = publish(report, charts, lang)
    get_run_logger().info("funnel report %s: %s", report["window"]["label"], ", ".join(keys))
    return {"report": report, "charts": charts, "artifacts": keys}
