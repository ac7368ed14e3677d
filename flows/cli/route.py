"""`qunflow route` (score and move contacts between tiers) and `qunflow rules check`."""

from __future__ import annotations

from pathlib import Path

import typer

from crm.routing.route import route as route_contacts
from crm.routing.rules import configured_rules, load_rules
from flows.cli.common import engine, headings, print_json, print_table, settings, t, word

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
    typer.echo(t("cli.scored", n=result["scored"], version=result["rules_version"]))
    moves = [{"move": _move_words(k), "contacts": v} for k, v in result["moves"].items()]
    print_table(moves, headings("move", "contacts"))
    moved = sum(result["moves"].values())
    typer.echo(t("cli.would_move", n=moved) if dry_run else t("cli.moved", n=moved))
    if not dry_run:
        typer.echo(t("cli.placed", placed=result["placed"], queued=result["queued"]))
        for tier, waiting in result["pending_placement"].items():
            typer.echo(t("cli.waiting_room", tier=word("tier", tier), n=waiting))
        for tier, waiting in result["waiting_address"].items():
            typer.echo(t("cli.waiting_address", tier=word("tier", tier), n=waiting))


def _move_words(move: str) -> str:
    """``new->open`` → 新线索 → 普通."""
    return " → ".join(word("tier", part) for part in move.split("->"))


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
        typer.echo(t("cli.rules_ok", path=path, version=loaded.version))
