"""Every Qunflow deployment with its default schedule, served from one process.

    python -m deployments.serve          # needs PREFECT_API_URL (make serve sets it)
    python -m deployments.serve --list   # print the catalog and exit

Schedules are in Asia/Shanghai (the business time zone) and can be changed or paused per
deployment in the Prefect UI; `prefect.yaml` in this folder declares the same catalog for
work pools.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

TZ = "Asia/Shanghai"


@dataclass(frozen=True)
class Spec:
    """One deployment: which flow, its name, schedule and fixed parameters."""

    flow: str  # "module:function" under flows/
    name: str
    cron: str | None = None
    interval_seconds: int | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    tags: tuple[str, ...] = ()


CATALOG: tuple[Spec, ...] = (
    Spec(
        "flows.ingest:ingest_folder_flow",
        "inbox",
        interval_seconds=300,
        description="Import exports dropped in the inbox folder (peer groups, self-media, events).",
        tags=("ingest",),
    ),
    Spec(
        "flows.ingest:ingest_file_flow",
        "file",
        description="Import one export file, given its path and kind.",
        tags=("ingest",),
    ),
    Spec(
        "flows.ingest_remote:wecom_groups_flow",
        "wecom-groups",
        cron="5 * * * *",
        description="Pull WeCom customer-group members (hourly).",
        tags=("ingest",),
    ),
    Spec(
        "flows.wecom_live:wecom_inbox_flow",
        "wecom-inbox",
        interval_seconds=60,
        description="Process WeCom callbacks the web app did not finish; today's live intake.",
        tags=("ingest", "wecom"),
    ),
    Spec(
        "flows.wecom_live:wecom_reconcile_flow",
        "wecom-reconcile",
        cron="*/30 * * * *",
        description="Reconcile WeCom group memberships with groupchat/get (member_version).",
        tags=("ingest", "wecom"),
    ),
    Spec(
        "flows.ingest_remote:qr_signups_flow",
        "qr-signups",
        interval_seconds=120,
        description="Resolve new QR sign-ups and pushed leads into contacts.",
        tags=("ingest",),
    ),
    Spec(
        "flows.route:route_flow",
        "every-15-minutes",
        cron="*/15 * * * *",
        description="Score and route every contact; invite promoted ones to groups.",
        tags=("route",),
    ),
    Spec(
        "flows.route:cleanout_flow",
        "nightly",
        cron="30 3 * * *",
        description="Lurker clean-out: demote the silent, remove ad posters.",
        tags=("route",),
    ),
    Spec(
        "flows.followups:plan_campaign_flow",
        "plan-campaign",
        description="Plan one campaign now (the 'Run' form picks the campaign).",
        tags=("followups",),
    ),
    Spec(
        "flows.followups:plan_campaign_flow",
        "group-rules-reminder",
        cron="0 20 * * 2,4,6",
        parameters={"campaign": "group-rules"},
        description="群规 reminder posted in each open and active group, Tue/Thu/Sat 20:00.",
        tags=("followups",),
    ),
    Spec(
        "flows.followups:plan_all_flow",
        "plan-all",
        cron="*/15 * * * *",
        description="Plan every campaign's due messages.",
        tags=("followups",),
    ),
    Spec(
        "flows.followups:dispatch_flow",
        "every-minute",
        interval_seconds=60,
        description="Send due messages within caps and quiet hours.",
        tags=("followups",),
    ),
    Spec(
        "flows.peers:peer_plan_flow",
        "peer-plan-morning",
        cron="5 * * * *",
        description="Each operator account's peer-group joins and friend requests, planned "
        "once its local morning (07:00) has come.",
        tags=("peers",),
    ),
    Spec(
        "flows.report:funnel_report_flow",
        "daily-0800",
        cron="0 8 * * *",
        description="Yesterday's funnel report with charts.",
        tags=("report",),
    ),
)


def load_flow(target: str) -> Any:
    """Import a flow object from "module:function"."""
    import importlib

    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _offer_campaigns(deployment: Any) -> None:
    """Make the run form's campaign field a choice of the campaigns defined right now."""
    from crm.core.settings import get_settings
    from crm.outreach.campaign_file import load_campaigns

    field = deployment._parameter_openapi_schema.properties.get("campaign")
    if field is not None:
        field["enum"] = sorted(load_campaigns(get_settings().campaigns_path))


def build_deployments() -> list[Any]:
    """RunnerDeployments for `prefect.serve`, schedules in the business time zone."""
    from prefect.schedules import Cron, Interval

    deployments = []
    for spec in CATALOG:
        schedules: list[Any] = []
        if spec.cron:
            schedules.append(Cron(spec.cron, timezone=TZ))
        if spec.interval_seconds:
            schedules.append(Interval(spec.interval_seconds, timezone=TZ))
        deployment = load_flow(spec.flow).to_deployment(
            name=spec.name,
            schedules=schedules or None,
            parameters=spec.parameters or None,
            description=spec.description,
            tags=["qunflow", *spec.tags],
        )
        _offer_campaigns(deployment)
        deployments.append(deployment)
    return deployments


POOL = "qunflow"


def prefect_yaml() -> str:
    """The same catalog as `prefect.yaml`, for `prefect deploy --all` onto a process work pool."""
    import json

    lines = [
        "# Generated by `python -m deployments.serve --write-yaml` from CATALOG in serve.py.",
        "# Deploy from the repository root:",
        "#   prefect work-pool create qunflow --type process",
        "#   prefect --no-prompt deploy --all --prefect-file deployments/prefect.yaml",
        "#   prefect worker start --pool qunflow     # on as many machines as you like",
        "name: qunflow",
        "prefect-version: 3.8.8",
        "pull:",
        "  - prefect.deployments.steps.set_working_directory:",
        "      directory: '{{ $QUNFLOW_HOME }}'",
        "deployments:",
    ]
    for spec in CATALOG:
        module, _, function = spec.flow.partition(":")
        lines += [
            f"  - name: {spec.name}",
            f"    entrypoint: {module.replace('.', '/')}.py:{function}",
            f"    description: {json.dumps(spec.description, ensure_ascii=False)}",
            f"    tags: {json.dumps(['qunflow', *spec.tags])}",
            f"    parameters: {json.dumps(spec.parameters, ensure_ascii=False)}",
            "    work_pool:",
            f"      name: {POOL}",
        ]
        if spec.cron or spec.interval_seconds:
            lines.append("    schedules:")
        if spec.cron:
            lines += [f"      - cron: '{spec.cron}'", f"        timezone: {TZ}"]
        if spec.interval_seconds:
            lines += [f"      - interval: {spec.interval_seconds}", f"        timezone: {TZ}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--list", action="store_true", help="print the catalog and exit")
    parser.add_argument(
        "--write-yaml", action="store_true", help="rewrite deployments/prefect.yaml"
    )
    parser.add_argument("--limit", type=int, default=4, help="flow runs at once in this process")
    args = parser.parse_args()
    if args.write_yaml:
        from pathlib import Path

        (Path(__file__).parent / "prefect.yaml").write_text(prefect_yaml(), encoding="utf-8")
        return
    if args.list:
        for spec in CATALOG:
            when = spec.cron or (
                f"every {spec.interval_seconds}s" if spec.interval_seconds else "on demand"
            )
            print(f"{spec.flow.split(':')[1]:<22} {spec.name:<22} {when:<16} {spec.description}")
        return
    from prefect import serve

    serve(*build_deployments(), limit=args.limit)


if __name__ == "__main__":
    main()
