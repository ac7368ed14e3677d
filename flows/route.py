"""Scoring and routing flows: the daily route run and the lurker clean-out.

Both are one task calling :func:`crm.routing.route.route`, which scores contacts in set-based
batches of thousands inside one transaction: never a task per contact. ``cleanout_flow`` is
the same run restricted to demotions and removals (silent contacts go down a tier, lurkers in
the open tier and ad posters leave), for operators who clean out on a different schedule from
promoting; a full ``route_flow`` applies the clean-out rules too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import Field

from crm.routing.rules import configured_rules
from flows.alerts import on_failure, publish_alerts
from flows.runtime import engine_for, settings
from flows.summaries import move_rows, route_summary_lines, team_words


@task(name="score-and-route-batches")
def score_and_route(
    database_url: str,
    rules_path: str | None,
    dry_run: bool,
    demotions_only: bool,
    as_of: datetime | None,
) -> dict[str, Any]:
    """Score every active contact in batches and apply the tier moves (or only report them)."""
    from crm.routing.route import route

    rules = configured_rules(settings(), rules_path)
    return route(
        engine_for(database_url),
        rules=rules,
        dry_run=dry_run,
        now=as_of,
        demotions_only=demotions_only,
    ).as_dict()


def _publish(result: dict[str, Any], *, key: str, title_key: str) -> None:
    t = team_words(settings().lang)
    title = t(title_key)
    create_table_artifact(
        table=move_rows(t, result["moves"]),
        key=f"{key}-moves",
        description=t("run.route.moves_table").format(title=title),
    )
    create_markdown_artifact(
        key=f"{key}-summary",
        markdown="\n".join(route_summary_lines(result, title, t)),
        description=t("run.route.summary").format(title=title),
    )


@flow(name="route", on_failure=[on_failure], on_crashed=[on_failure])
def route_flow(
    dry_run: bool = Field(
        False, description="Only report the moves the rules would make; write nothing."
    ),
    rules_path: str | None = Field(
        None, description="A candidate rules file (TOML); default: QUNFLOW_RULES_PATH."
    ),
    database_url: str | None = Field(
        None, description="CRM database URL (default: QUNFLOW_DATABASE_URL)."
    ),
    as_of: datetime | None = Field(None, description="Score as of this time (default: now)."),
) -> dict[str, Any]:
    """Score every contact and move them between tiers; publish the moves as artifacts."""
    url = database_url or settings().sqlalchemy_url
    result = score_and_route(url, rules_path, dry_run, False, as_of)
    get_run_logger().info("route: scored %s, moves %s", result["scored"], result["moves"])
    _publish(result, key="route", title_key="run.route.title")
    publish_alerts(url)  # e.g. a tier whose groups have no room left
    return result


@flow(name="cleanout", on_failure=[on_failure], on_crashed=[on_failure])
def cleanout_flow(
    rules_path: str | None = Field(
        None, description="Rules file (TOML); default: QUNFLOW_RULES_PATH."
    ),
    database_url: str | None = Field(
        None, description="CRM database URL (default: QUNFLOW_DATABASE_URL)."
    ),
    as_of: datetime | None = Field(
        None, description="Judge silence as of this time (default: now)."
    ),
) -> dict[str, Any]:
    """Clean out lurkers and rule breakers: demotions and removals only, no promotions."""
    url = database_url or settings().sqlalchemy_url
    result = score_and_route(url, rules_path, False, True, as_of)
    get_run_logger().info("cleanout: moves %s", result["moves"])
    _publish(result, key="cleanout", title_key="run.cleanout.title")
    return result
