"""The morning peer-group plan: each operator account's joins and friend requests for its day.

One task calls the crm planners, which work per account in set-based statements; the flow
runs hourly and each account is planned once its own local morning has come (``from_hour``),
so accounts in different time zones all get their list in their morning. The task list is
published as an artifact.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Any

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from pydantic import Field

from flows.alerts import on_failure
from flows.runtime import engine_for, settings


@task(name="plan-peer-work", retries=2, retry_delay_seconds=[10, 60])
def plan_task(
    database_url: str, from_hour: int, purpose: str | None, as_of: datetime | None
) -> list[dict[str, Any]]:
    """Plan joins and friend requests within each account's caps; the open tasks of today."""
    from crm.core.db import transaction
    from crm.outreach.peer_plan import plan_joins, task_list
    from crm.outreach.peer_requests import plan_friend_requests

    engine = engine_for(database_url)
    st = settings()
    plan_joins(engine, settings=st, from_hour=from_hour, now=as_of)
    plan_friend_requests(engine, settings=st, purpose=purpose, from_hour=from_hour, now=as_of)
    with transaction(engine) as session:
        return [dataclasses.asdict(t) for t in task_list(session, settings=st, now=as_of)]


@flow(name="plan-peer-work", on_failure=[on_failure], on_crashed=[on_failure])
def peer_plan_flow(
    from_hour: Annotated[int, Field(ge=0, le=23)] = Field(
        7, description="Plan an account once its local time is past this hour."
    ),
    purpose: str | None = Field(
        None, max_length=200, description="What we do, stated in each friend request."
    ),
    as_of: datetime | None = Field(None, description="Plan as of this time (default: now)."),
) -> dict[str, int]:
    """Plan the day's peer-group joins and friend requests; publish the operators' lists."""
    tasks = plan_task(settings().sqlalchemy_url, from_hour, purpose, as_of)
    create_table_artifact(
        table=[
            {
                k: str(t[k] or "")
                for k in ("account", "day", "kind", "peer_group", "join_ref", "text")
            }
            for t in tasks
        ]
        or [{"account": "-", "kind": "-"}],
        key="peer-tasks",
        description="Peer groups: today's joins and friend requests per operator account",
    )
    joins = sum(1 for t in tasks if t["kind"] == "join")
    return {"joins": joins, "friend_requests": len(tasks) - joins}
