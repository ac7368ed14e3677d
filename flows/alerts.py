"""Flow hooks that turn failures into visible alerts: a CRM alert row and a Prefect artifact."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from crm.reports.alerts import OpenAlerts, check_quarantine, flow_failed, open_alerts
from flows.runtime import engine, engine_for, settings
from flows.summaries import alerts_markdown, team_words

ALERTS_KEY = "qunflow-alerts"


def publish_alerts(database_url: str | None = None) -> OpenAlerts:
    """Publish the open alerts as one markdown artifact (the UI keeps its history by key)."""
    alerts = open_alerts(engine_for(database_url) if database_url else engine())
    t = team_words(settings().lang)
    create_markdown_artifact(
        key=ALERTS_KEY,
        markdown=alerts_markdown(alerts, t),
        description=t("run.alerts.description").format(n=alerts.total),
    )
    return alerts


@flow(name="publish-alerts")
def publish_alerts_flow(database_url: str | None = None) -> int:
    """Refresh the artifact after alerts were acknowledged outside a flow; the open count."""
    return publish_alerts(database_url).total


def on_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook (failed or crashed run): record the alert where operators look."""
    flow_failed(engine(), flow.name, state.message or state.type.value, run_id=str(flow_run.id))
    publish_alerts()  # the artifact shows the new alert at once, not after the next import


def check_after_ingest(database_url: str | None = None, threshold: int = 50) -> bool:
    """Raise the quarantine alert when imports quarantine too much; publish open alerts."""
    eng = engine_for(database_url) if database_url else engine()
    raised = check_quarantine(eng, threshold=threshold)
    publish_alerts(database_url)
    return raised
