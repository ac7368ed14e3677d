"""Trigger a campaign from the CLI or the sales workspace the way the Prefect UI does.

With a Prefect API configured (``PREFECT_API_URL``, as ``make serve`` sets it) a trigger
creates a run of the ``plan-campaign/plan-campaign`` deployment, so it shows in the UI beside
runs started there. Without one, the same service the flow's task calls runs in-process.
Either way the outbox rows are the same: (campaign, step, contact) is unique, so triggering
twice plans nothing twice.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Engine

from crm.core.audit import audit
from crm.core.db import transaction
from crm.core.settings import Settings

if TYPE_CHECKING:
    from crm.outreach.planning import PlanReport

DEPLOYMENT = "plan-campaign/plan-campaign"


def prefect_api_configured() -> bool:
    """True when runs should go through a Prefect server rather than in-process."""
    return bool(os.environ.get("PREFECT_API_URL"))


@dataclass(frozen=True)
class TriggerResult:
    """What a trigger did: a Prefect run was created, or the planner ran in-process."""

    campaign: str
    via: Literal["prefect", "in-process"]
    plan: PlanReport | None = None  # the planner's report, when it ran in-process
    flow_run_id: str | None = None
    flow_run: str | None = None
    state: str | None = None
    prefect_unavailable: str | None = None  # why an intended Prefect run fell back

    @property
    def planned(self) -> int | None:
        """Messages planned now; None when a Prefect run does the planning."""
        return self.plan.planned if self.plan is not None else None

    def document(self) -> dict[str, Any]:
        """The JSON document for ``--json`` (the planner's figures at the top level)."""
        doc: dict[str, Any] = dataclasses.asdict(self.plan) if self.plan is not None else {}
        doc.update(campaign=self.campaign, via=self.via)
        for key in ("flow_run_id", "flow_run", "state", "prefect_unavailable"):
            if getattr(self, key) is not None:
                doc[key] = getattr(self, key)
        return doc


def trigger_campaign(
    engine: Engine,
    name: str,
    *,
    actor: str,
    settings: Settings,
    contact_ids: list[int] | None = None,
    dry_run: bool = False,
    params: dict[str, Any] | None = None,
    wait_seconds: float = 0,
) -> TriggerResult:
    """Plan a campaign through the Prefect deployment if one is reachable, else in-process.

    ``settings`` are the caller's (the CLI's, the web app's): the campaign is looked up in
    its ``campaigns_path``, the same file the in-process planner reads.
    """
    from crm.outreach.campaign_file import find_campaign
    from crm.outreach.planning import plan_campaign

    result: TriggerResult | None = None
    unreachable = None
    if prefect_api_configured() and not dry_run:
        find_campaign(settings, name)  # the same refusal the service gives, before a run
        try:
            result = _submit(name, contact_ids, params or {}, wait_seconds)
        except _PrefectUnavailable as exc:
            # A trigger must not fail because the server is down or the deployment is not
            # served: the same service plans the same rows in-process.
            unreachable = str(exc)
    if result is None:
        plan = plan_campaign(
            engine, name, dry_run=dry_run, contact_ids=contact_ids, params=params, settings=settings
        )
        result = TriggerResult(
            campaign=name, via="in-process", plan=plan, prefect_unavailable=unreachable
        )
    if not dry_run:
        with transaction(engine) as session:
            audit(
                session,
                actor,
                "campaign.trigger",
                object_type="campaign",
                object_id=name,
                details={
                    "contacts": len(contact_ids) if contact_ids else None,
                    "via": result.via,
                },
            )
    return result


class _PrefectUnavailable(Exception):
    """No Prefect server answered, or it does not serve the plan-campaign deployment."""


def _submit(
    name: str, contact_ids: list[int] | None, params: dict[str, Any], wait_seconds: float
) -> TriggerResult:
    import httpx
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    parameters: dict[str, Any] = {"campaign": name, "contact_ids": contact_ids}
    for key in ("event_start", "event_name", "event_key"):
        if key in params:
            parameters[key] = params[key]
    try:
        run = run_deployment(DEPLOYMENT, parameters=parameters, timeout=wait_seconds)
    except ObjectNotFound as exc:
        raise _PrefectUnavailable(f"deployment {DEPLOYMENT} is not served") from exc
    except (httpx.HTTPError, OSError) as exc:
        raise _PrefectUnavailable(f"Prefect API unreachable: {exc}") from exc
    assert not inspect.isawaitable(run), "called from synchronous code, so it ran to completion"
    state = run.state.type.value if run.state else None
    return TriggerResult(
        campaign=name, via="prefect", flow_run_id=str(run.id), flow_run=run.name, state=state
    )
