"""Flow hooks that turn failures into visible alerts: a CRM alert row and a Prefect artifact."""

from __future__ import annotations

from typing import Any

from prefect.artifacts import create_markdown_artifact

from crm.reports.alerts import check_quarantine, flow_failed, open_alerts
from flows.runtime import engine, engine_for

ALERTS_KEY = "qunflow-alerts"


def publish_alerts(database_url: str | None = None) -> list[dict[str, Any]]:
    """Publish the open alerts as one markdown artifact (the UI keeps its history by key)."""
    alerts = open_alerts(engine_for(database_url) if database_url else engine())
    lines = ["# Open alerts", ""]
    lines += [f"- **{a['kind']}** ({a['subject']}): {a['message']}" for a in alerts] or ["none"]
    create_markdown_artifact(
        key=ALERTS_KEY, markdown="\n".join(lines), description=f"{len(alerts)} open alert(s)"
    )
    return alerts


def on_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook (failed or crashed run): record the alert where operators look."""
    flow_failed(engine(), flow.name, state.message or state.type.value, run_id=str(flow_run.id))


def check_after_ingest(database_url: str | None = None, threshold: int = 50) -> bool:
    """Raise the quarantine alert when imports quarantine too much; publish open alerts."""
    eng = engine_for(database_url) if database_url else engine()
    raised = check_quarantine(eng, threshold=threshold)
    publish_alerts(database_url)
    return raised
