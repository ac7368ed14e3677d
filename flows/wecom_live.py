"""Flows of WeCom live intake: the callback inbox and the group reconciliation.

The web app processes each callback right after answering it; the inbox flow catches what
that follow-up missed (a crash, an expired claim) every minute and publishes today's adds per
channel live code, churn and welcomes. The reconciliation reads every group's member list
where its member_version changed, fixing memberships whose callbacks were lost.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact

from flows.alerts import on_failure
from flows.runtime import engine_for, settings

INBOX_KEY = "wecom-live-today"


@task(name="process-wecom-inbox", retries=2, retry_delay_seconds=[10, 60])
def process_inbox_task(database_url: str) -> dict[str, Any]:
    """Claim and process every pending callback, oldest event first."""
    import httpx

    from crm.core.settings import get_settings
    from crm.intake.wecom import client_from_settings
    from crm.outreach.wecom_callbacks import LiveConfig, process_inbox

    cfg = get_settings()
    with httpx.Client(timeout=15) as http:
        client = client_from_settings(cfg, http)
        config = LiveConfig(cfg.wecom_welcome_window_seconds, cfg.templates_dir)
        return process_inbox(engine_for(database_url), client, config, worker="flow").as_dict()


@task(name="wecom-live-today")
def today_task(database_url: str) -> dict[str, Any]:
    """Today's adds per state, churn and welcome outcomes."""
    from crm.core.db import transaction
    from crm.models import utcnow
    from crm.reports.wecom_live import live_intake_today

    with transaction(engine_for(database_url)) as session:
        return live_intake_today(session, now=utcnow(), zone=settings().zone)


@task(name="reconcile-wecom-groups", retries=3, retry_delay_seconds=[10, 60, 300])
def reconcile_task(database_url: str) -> dict[str, int]:
    """Compare our WeCom groups with groupchat/get and fix what callbacks missed."""
    import httpx

    from crm.core.settings import get_settings
    from crm.intake.wecom import client_from_settings
    from crm.intake.wecom_chats import reconcile_chats

    with httpx.Client(timeout=30) as http:
        client = client_from_settings(get_settings(), http)
        return reconcile_chats(engine_for(database_url), client).as_dict()


def _rows(today: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [{"what": "add", **a} for a in today["adds"]]
    rows.append({"what": "churn", "contacts": today["churn"]})
    rows += [{"what": f"welcome {k}", "contacts": n} for k, n in sorted(today["welcomes"].items())]
    return rows


@flow(name="wecom-inbox", on_failure=[on_failure], on_crashed=[on_failure])
def wecom_inbox_flow(database_url: str | None = None) -> dict[str, Any]:
    """Process the WeCom callback inbox and publish today's live intake."""
    url = database_url or settings().sqlalchemy_url
    processed = process_inbox_task(url)
    today = today_task(url)
    get_run_logger().info("wecom inbox: %s", processed)
    create_table_artifact(
        table=_rows(today), key=INBOX_KEY, description=f"WeCom live intake {today['day']}"
    )
    return {"processed": processed, "today": today}


@flow(name="wecom-reconcile", on_failure=[on_failure], on_crashed=[on_failure])
def wecom_reconcile_flow(database_url: str | None = None) -> dict[str, int]:
    """Reconcile WeCom group memberships with groupchat/get (member_version)."""
    result = reconcile_task(database_url or settings().sqlalchemy_url)
    create_table_artifact(table=[result], key="wecom-reconcile", description="groups reconciled")
    return result
