"""Flows for sources that serve or push records: WeCom customer groups and QR sign-ups.

Each flow is one task over the whole pull (records go to the database in batches inside the
service), never a task per record; the WeCom task retries with backoff because it talks to a
network API.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact

from flows.alerts import check_after_ingest, on_failure
from flows.runtime import engine_for, settings

_COUNTS = ("read", "new_contacts", "matched", "merged", "quarantined", "events")


@task(name="pull-wecom-groups", retries=3, retry_delay_seconds=[10, 60, 300])
def pull_wecom_groups_task(database_url: str) -> dict[str, Any]:
    """Pull every customer group's members; resumes at the stored cursor after a failure."""
    import httpx

    from crm.core.settings import get_settings
    from crm.intake.wecom import client_from_settings, pull_wecom_groups

    # Read at each run, not the worker's cached settings: a retry sees changed credentials.
    with httpx.Client(timeout=30) as http:
        client = client_from_settings(get_settings(), http)
        return pull_wecom_groups(engine_for(database_url), client).as_dict()


@task(name="resolve-sign-ups")
def resolve_signups_task(database_url: str) -> dict[str, Any]:
    """Turn pending sign-ups (and pushed leads/events) into contacts, in batches."""
    from crm.intake.inbox import ingest_qr_signups

    return ingest_qr_signups(engine_for(database_url)).as_dict()


def _publish(report: dict[str, Any], *, key: str, source: str) -> None:
    row = {"source": source, **{name: report[name] for name in _COUNTS}}
    create_table_artifact(table=[row], key=key, description=f"{source}: ingest counts")


@flow(name="ingest-wecom-groups", on_failure=[on_failure], on_crashed=[on_failure])
def wecom_groups_flow(database_url: str | None = None) -> dict[str, Any]:
    """Pull WeCom customer-group members into contacts and publish the counts."""
    report = pull_wecom_groups_task(database_url or settings().sqlalchemy_url)
    get_run_logger().info("wecom groups: %s", {k: report[k] for k in _COUNTS})
    _publish(report, key="ingest-wecom-groups", source="wecom groups")
    return report


@flow(name="ingest-qr-signups", on_failure=[on_failure], on_crashed=[on_failure])
def qr_signups_flow(database_url: str | None = None) -> dict[str, Any]:
    """Resolve new QR and invite sign-ups into contacts and publish the counts."""
    url = database_url or settings().sqlalchemy_url
    report = resolve_signups_task(url)
    get_run_logger().info("qr sign-ups: %s", {k: report[k] for k in _COUNTS})
    _publish(report, key="ingest-qr-signups", source="qr sign-ups")
    check_after_ingest(url)
    return report
