"""`qunflow route` (score and move contacts between tiers) and `qunflow rules check`."""

from __future__ import annotations

from pathlib import Path

import typer

from crm.routing.route import route as route_contacts
from crm.routing.rules import configured_rules, load_rules
from flows.cli.common import engine, print_json, print_table, settings

rules_app = typer.Typer(help="Scoring and routing rules files.", no_args_is_help=True)


def route(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Report the moves the rules would make; write nothing."
    ),
    rules: Path | None = typer.Option(
        None, "--rules", help="Rules file (TOML). Default: QUNFLOW_RULES_PATH or the bundled one."
    ),
    batch_size: int = typer.Option(20_000, min=1, help="Contacts scored per batch."),
    demotions_only: bool = typer.Option(
        False, "--demotions-only", help="Apply only demotions and removals (clean-out)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Score every active contact and move them between tiers (open → active → prospect → paid)."""
    chosen = load_rules(rules) if rules is not None else configured_rules(settings())
    result = route_contacts(
        engine(),
        rules=chosen,
        dry_run=dry_run,
        batch_size=batch_size,
        demotions_only=demotions_only,
    ).as_dict()
    if as_json:
        print_json(result)
        return
    prefix = "would move" if dry_run else "moved"
    typer.echo(f"scored {result['scored']} contacts under rules {result['rules_version']}")
    print_table([{"move": k, "contacts": v} for k, v in result["moves"].items()])
    typer.echo(f"{prefix} {sum(result['moves'].values())} contacts")
    if not dry_run:
        typer.echo(f"invited to groups: {result['placed']}; queued prospects: {result['queued']}")
        for tier, waiting in result["pending_placement"].items():
            typer.echo(f"waiting for a {tier} group with room: {waiting}")


@rules_app.command("check")
def check(
    path: Path = typer.Argument(..., help="The rules file to validate."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Validate a rules file; errors name the line and the field."""
    loaded = load_rules(path)
    data = {
        "path": str(path),
        "version": loaded.version,
        "valid": True,
        "tiers": loaded.tiers.model_dump(),
    }
    if as_json:
        print_json(data)
    else:
        typer.echo(f"{path}: ok (version {loaded.version})")
