"""Follow-up flows: plan a campaign (or all of them) into the outbox, and dispatch it.

Each flow is one task calling a crm service that works in set-based batches; a flow run never
makes a task per message. Artifacts: what was planned, and per account what went out, what
was deferred or failed, and the cap headroom left today.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import Field

from crm.core.vocabulary import CapAction
from crm.outreach.campaign_file import find_campaign
from flows.alerts import on_failure
from flows.runtime import engine_for, settings
from flows.summaries import campaign_name, counted, headed, plan_summary_lines, team_words

if TYPE_CHECKING:
    from crm.outreach.accounts import AccountUsage
    from crm.outreach.dispatch import DispatchReport
    from crm.outreach.planning import PlanReport


@task(name="plan-campaign")
def plan_task(
    database_url: str,
    campaign: str,
    dry_run: bool,
    params: dict[str, Any],
    as_of: datetime | None,
    contact_ids: list[int] | None = None,
) -> PlanReport:
    """Plan one campaign's due messages into the outbox (set-based, idempotent)."""
    from crm.outreach.planning import plan_campaign

    return plan_campaign(
        engine_for(database_url),
        campaign,
        dry_run=dry_run,
        now=as_of,
        params=params,
        contact_ids=contact_ids,
        settings=settings(),
    )


@task(name="plan-all-campaigns")
def plan_all_task(database_url: str, as_of: datetime | None) -> dict[str, PlanReport]:
    """Plan every campaign that needs no parameters."""
    from crm.outreach.planning import plan_all

    return plan_all(engine_for(database_url), as_of, settings=settings())


@task(name="dispatch-outbox", retries=2, retry_delay_seconds=[10, 60])
def dispatch_task(
    database_url: str, limit: int, workers: int, until_idle: bool
) -> tuple[DispatchReport, list[AccountUsage]]:
    """Run dispatch workers over the due outbox rows; returns counts and today's cap usage."""
    from crm.core.db import transaction
    from crm.outreach.accounts import usage_today
    from crm.outreach.dispatch import dispatch

    engine = engine_for(database_url)
    result = dispatch(
        engine, workers=workers, until_idle=until_idle, batch=limit, settings=settings()
    )
    with transaction(engine) as session:
        caps = usage_today(session, zone=settings().zone)
    return result, caps


def _plan_artifact(report: PlanReport) -> None:
    t = team_words(settings().lang)
    name = report.campaign
    create_markdown_artifact(
        key=f"campaign-{name}",
        markdown="\n".join(plan_summary_lines(report, t, find_campaign(settings(), name))),
        description=t("run.plan.description").format(name=campaign_name(t, name)),
    )


@flow(name="plan-campaign", on_failure=[on_failure], on_crashed=[on_failure], log_prints=False)
def plan_campaign_flow(
    campaign: str = Field(
        description="Which campaign to plan (the served form lists the defined campaigns).",
        min_length=1,
        max_length=61,
    ),
    dry_run: bool = Field(False, description="Count what would be planned; write nothing."),
    event_start: datetime | None = Field(
        None, description="Event campaigns: when the event starts (with its UTC offset)."
    ),
    event_name: str | None = Field(
        None, description="Event campaigns: the event's name, as messages show it."
    ),
    event_key: str | None = Field(
        None, description="Event campaigns: a key per event, so the next event plans again."
    ),
    as_of: datetime | None = Field(None, description="Plan as of this time (default: now)."),
    contact_ids: list[int] | None = Field(
        None, description="Only these contacts (a selection from the sales workspace)."
    ),
) -> dict[str, Any]:
    """Plan a follow-up campaign into the outbox; event campaigns take the event's start."""
    params: dict[str, Any] = {}
    if event_start is not None:
        params["event_start"] = event_start.isoformat()
    if event_name:
        params["event_name"] = event_name
    if event_key:
        params["event_key"] = event_key
    url = settings().sqlalchemy_url
    report = plan_task(url, campaign, dry_run, params, as_of, contact_ids)
    _plan_artifact(report)
    return dataclasses.asdict(report)


@flow(name="plan-all-campaigns", on_failure=[on_failure], on_crashed=[on_failure])
def plan_all_flow(
    as_of: datetime | None = Field(None, description="Plan as of this time (default: now)."),
) -> dict[str, Any]:
    """Plan every scheduled campaign (welcome, rules, nudges, onboarding, re-engagement)."""
    reports = plan_all_task(settings().sqlalchemy_url, as_of)
    for report in reports.values():
        _plan_artifact(report)
    return {name: dataclasses.asdict(report) for name, report in reports.items()}


@flow(name="dispatch-outbox", on_failure=[on_failure], on_crashed=[on_failure])
def dispatch_flow(
    limit: Annotated[int, Field(ge=1, le=5000)] = Field(
        200, description="Rows each worker claims at a time."
    ),
    workers: Annotated[int, Field(ge=1, le=32)] = Field(
        2, description="Dispatch workers in this run."
    ),
    until_idle: bool = Field(
        True, description="Keep claiming until nothing is due (else one batch each)."
    ),
) -> dict[str, Any]:
    """Send due outbox messages (``limit`` rows per claim) within caps; publish counts."""
    result, caps = dispatch_task(settings().sqlalchemy_url, limit, workers, until_idle)
    headroom = {row.handle: row.headroom for row in caps if row.action == CapAction.MESSAGE}
    table = [
        {
            "account": account,
            "sent": counts.get("sent", 0),
            "awaiting_confirmation": counts.get("awaiting_confirmation", 0),
            "deferred": counts.get("deferred", 0),
            "failed": counts.get("failed", 0),
            "skipped": counts.get("skipped", 0),
            "message_headroom_today": headroom.get(account),
        }
        for account, counts in result.per_account.items()
    ]
    t = team_words(settings().lang)
    create_table_artifact(
        table=headed(t, table or [{"account": "—", "sent": 0}]),
        key="dispatch-per-account",
        description=t("run.dispatch.per_account"),
    )
    totals = {
        "sent": result.sent,
        "awaiting_confirmation": result.awaiting_confirmation,
        "deferred": result.deferred,
        "failed": result.failed,
        **{f"confirmed_{k}": v for k, v in result.confirmations.items()},
    }
    create_markdown_artifact(
        key="dispatch-summary",
        markdown=f"# {t('run.dispatch.title')}\n\n"
        + "\n".join(f"- {counted(t, k)}: {v}" for k, v in totals.items()),
        description=t("run.dispatch.totals"),
    )
    return dataclasses.asdict(result)
