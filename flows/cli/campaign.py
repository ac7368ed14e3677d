"""`qunflow campaign …`: list follow-up campaigns and plan one into the outbox."""

from __future__ import annotations

import typer

from crm.contacts.queries import resolve_contact_id
from crm.core.db import transaction
from crm.core.errors import InputError
from crm.outreach.campaign_file import describe
from flows.cli.common import engine, print_json, print_table, settings, t, word
from flows.trigger import trigger_campaign

app = typer.Typer(help="Follow-up campaigns: list them, plan one into the outbox.")


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print one JSON document.")) -> None:
    """List the defined campaigns and their steps."""
    rows = describe(settings())
    if as_json:
        print_json(rows)
        return
    print_table(
        [
            {
                "name": r.name,
                "purpose": r.purpose,
                "anchor": r.anchor,
                "tiers": ",".join(r.tiers),
                "steps": ", ".join(f"{s.name}→{s.channel}" for s in r.steps),
            }
            for r in rows
        ]
    )


@app.command()
def run(
    name: str = typer.Argument(..., help="Campaign name (see `qunflow campaign list`)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be planned only."),
    contact: list[int] = typer.Option([], "--contact", help="Only these contact ids."),
    param: list[str] = typer.Option(
        [], "--param", help="KEY=VALUE, e.g. event_start=2026-12-01T19:30:00+08:00."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Plan a campaign's due messages into the outbox (idempotent)."""
    params: dict[str, object] = {}
    for item in param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError("error.cli.param_bad", item=item)
        params[key] = value
    if contact:  # a mistyped id would otherwise plan nothing without a word
        with transaction(engine()) as session:
            for contact_id in contact:
                resolve_contact_id(session, contact_id)
    report = trigger_campaign(
        engine(),
        name,
        actor="cli",
        dry_run=dry_run,
        contact_ids=contact or None,
        params=params,
        settings=settings(),
        wait_seconds=120,
    )
    if report.prefect_unavailable:
        typer.echo(t("cli.planned_in_process", why=report.prefect_unavailable), err=True)
    if as_json:
        print_json(report.document())
        return
    if report.plan is None:
        typer.echo(
            t(
                "cli.flow_run",
                name=name,
                run=report.flow_run,
                run_id=report.flow_run_id,
                state=word("flow_state", report.state),
            )
        )
        return
    plan = report.plan
    said = "cli.campaign_would_plan" if dry_run else "cli.campaign_planned"
    typer.echo(
        t(
            said,
            name=name,
            planned=plan.planned,
            already=plan.already_planned,
            audience=plan.audience,
        )
        + "".join(
            t("cli.campaign_excluded", n=n, reason=word("exclusion", why))
            for why, n in plan.excluded.items()
            if n
        )
    )
