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
        description="群规 reminder, Tue/Thu/Sat 20:00.",
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
        deployments.append(
            load_flow(spec.flow).to_deployment(
                name=spec.name,
                schedules=schedules or None,
                parameters=spec.parameters or None,
                description=spec.description,
                tags=["qunflow", *spec.tags],
            )
        )
    return deployments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--list", action="store_true", help="print the catalog and exit")
    parser.add_argument("--limit", type=int, default=4, help="flow runs at once in this process")
    args = parser.parse_args()
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
