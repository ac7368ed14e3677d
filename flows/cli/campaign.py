"""`qunflow campaign …`: list follow-up campaigns and plan one into the outbox."""

from __future__ import annotations

import typer

from crm.contacts.queries import resolve_contact_id
from crm.core.db import transaction
from crm.core.errors import InputError
from crm.outreach.campaign_file import describe
from flows.cli.common import engine, print_json, print_table, settings
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
            raise InputError(f"--param {item!r}: expected KEY=VALUE")
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
        typer.echo(f"note: planned in-process ({report.prefect_unavailable})", err=True)
    if as_json:
        print_json(report.document())
        return
    if report.plan is None:
        typer.echo(f"{name}: flow run {report.flow_run} ({report.flow_run_id}): {report.state}")
        return
    plan = report.plan
    verb = "would plan" if dry_run else "planned"
    typer.echo(
        f"{name}: {verb} {plan.planned} (already planned {plan.already_planned}, "
        f"audience {plan.audience})"
        + "".join(f"; {n} {why.replace('_', ' ')}" for why, n in plan.excluded.items() if n)
    )
