"""The funnel flow: ingest every source → score and route → plan follow-ups, once.

`qunflow demo` runs it on the bundled sample; operators can run it from the Prefect UI on
their own inbox folder. Each stage is one Prefect task per source file or per pass (batches
of thousands of rows inside), never a task per contact.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import Field
from sqlalchemy import Engine

from crm.core import migrate
from crm.core.db import transaction
from crm.core.settings import Settings
from crm.reports.summary import funnel_summary
from flows import runtime
from flows.alerts import on_failure
from flows.runtime import engine_for
from flows.runtime import settings as worker_settings
from flows.summaries import funnel_summary_lines, headed, ingest_totals, team_words

# The bundled sample's files, in the order a day's imports arrive.
SAMPLE_ORDER = ("peer-group", "peer-group-bom", "self-media", "qr-signups", "events")


@task(name="write-sample")
def write_sample(directory: str, contacts: int) -> dict[str, str]:
    """Write the bundled sample (deterministic; an existing sample is kept as is)."""
    from crm.sample.data import write_sample as generate

    return {name: str(path) for name, path in generate(Path(directory), contacts=contacts).items()}


@task(name="ingest-file")
def ingest_file(database_url: str, kind: str, path: str, as_of: datetime | None) -> dict[str, Any]:
    """Import one file of one source kind; re-importing the same file adds nothing."""
    from crm.intake.pipeline import ingest_path

    report = ingest_path(engine_for(database_url), kind, Path(path), now=as_of)
    return report.as_dict()


@task(name="set-up-groups")
def set_up_groups(database_url: str, as_of: datetime | None) -> dict[str, Any]:
    """The sample's operator accounts and one live code of groups per tier (idempotent)."""
    from crm.models import utcnow
    from crm.sample.groups import set_up_sample_groups

    return set_up_sample_groups(engine_for(database_url), now=as_of or utcnow())


@task(name="score-and-route")
def score_and_route(database_url: str, as_of: datetime | None, passes: int) -> dict[str, Any]:
    """Score every contact and move them between tiers until settled (set-based batches).

    A run moves a contact at most one tier (no tier is skipped), as the every-15-minutes
    schedule does in production; the demo repeats the run at one business time until no
    contact moves, so a fresh sample shows its whole funnel at once.
    """
    from crm.routing.route import route
    from crm.routing.rules import configured_rules

    rules = configured_rules(worker_settings())
    moves: dict[str, int] = {}
    totals = {"scored": 0, "placed": 0, "queued": 0}  # summed over passes; the rest: last pass
    result: dict[str, Any] = {}
    done = 0
    while done < passes:
        done += 1
        result = route(engine_for(database_url), rules=rules, now=as_of).as_dict()
        for move, count in result["moves"].items():
            moves[move] = moves.get(move, 0) + count
        for key in ("placed", "queued"):
            totals[key] += result[key]
        totals["scored"] = result["scored"]
        if not any(result["moves"].values()):
            break
    return {**result, **totals, "moves": moves, "passes": done}


@task(name="plan-follow-ups")
def plan_followups(database_url: str, as_of: datetime | None) -> dict[str, Any]:
    """Plan every campaign's due messages into the outbox (idempotent)."""
    from crm.outreach.planning import plan_all

    per_campaign = plan_all(engine_for(database_url), now=as_of, settings=runtime.settings())
    return {
        "planned": sum(r.planned for r in per_campaign.values()),
        "campaigns": {name: r.planned for name, r in per_campaign.items()},
    }


@task(name="summarize")
def summarize(database_url: str) -> dict[str, Any]:
    """Count the funnel as it now stands."""
    with transaction(engine_for(database_url)) as session:
        return funnel_summary(session)


@flow(name="funnel", on_failure=[on_failure], on_crashed=[on_failure], log_prints=False)
def funnel_flow(
    database_url: str = Field(description="CRM database URL (SQLAlchemy form)."),
    sample_dir: str = Field(description="Folder of the sample files (written if missing)."),
    sample_contacts: Annotated[int, Field(ge=10, le=100_000)] = Field(
        300, description="Sample size."
    ),
    as_of: datetime | None = Field(None, description="Business time of the run (default: now)."),
) -> dict[str, Any]:
    """Run the whole funnel once over the sample: ingest, score and route, plan follow-ups."""
    logger = get_run_logger()
    groups = set_up_groups(database_url, as_of)
    files = write_sample(sample_dir, sample_contacts)
    ingested: dict[str, dict[str, Any]] = {}
    for name in SAMPLE_ORDER:
        if name in files:
            kind = name.removesuffix("-bom")
            ingested[name] = ingest_file(database_url, kind, files[name], as_of)
    routed = score_and_route(database_url, as_of, passes=4)
    planned = plan_followups(database_url, as_of)
    summary = summarize(database_url)
    summary["this_run"] = {
        "groups": groups,
        "ingested": ingested,
        "totals": ingest_totals(ingested),
        "routed": routed,
        "planned": planned,
    }
    logger.info("funnel: %s contacts, tiers %s", summary["contacts"], summary["by_tier"])
    _publish(summary)
    return summary


def _publish(summary: dict[str, Any]) -> None:
    t = team_words(worker_settings().lang)
    rows = [
        {"file": name, **{k: v for k, v in rep.items() if k != "reasons"}}
        for name, rep in summary["this_run"]["ingested"].items()
    ]
    create_table_artifact(
        table=headed(t, rows), key="funnel-ingest", description=t("run.demo.imports")
    )
    lines = funnel_summary_lines(summary, t)
    create_markdown_artifact(
        key="funnel-summary",
        markdown="\n".join([f"# {t('run.demo.title')}", "", *(f"- {line}" for line in lines)]),
        description=t("run.demo.artifact"),
    )


def run_demo(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Migrate, then run the funnel flow over the bundled sample at the sample's own date."""
    from crm.sample.data import SAMPLE_AS_OF

    migrate.upgrade(engine)
    url = engine.url.render_as_string(hide_password=False)
    sample_dir = settings.data_dir / "sample"
    return funnel_flow(database_url=url, sample_dir=str(sample_dir), as_of=SAMPLE_AS_OF)
