"""`qunflow contacts …`: look at contacts, and honour personal-data requests (PIPL)."""

from __future__ import annotations

import getpass
from pathlib import Path

import typer

from crm.contacts import contact_detail, list_contacts
from crm.db import transaction
from crm.domain import Tier
from crm.errors import InputError
from crm.privacy import erase_contact, export_contact
from flows.cli.common import engine, json_text, print_json, print_table

app = typer.Typer(
    help="Look at contacts in the CRM; export or erase one on request.", no_args_is_help=True
)


@app.command("list")
def list_(
    tier: Tier | None = typer.Option(None, help="Only contacts in this tier."),
    limit: int = typer.Option(50, min=1, max=10_000, help="How many to show."),
    offset: int = typer.Option(0, min=0, help="Skip this many (paging)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List contacts, highest score first."""
    with transaction(engine()) as session:
        page = list_contacts(session, tier=tier.value if tier else None, limit=limit, offset=offset)
    if as_json:
        print_json(page)
        return
    print_table(page["items"], ["id", "name", "tier", "score", "phone", "wechat_id"])
    typer.echo(f"{len(page['items'])} of {page['total']}")


@app.command()
def show(
    contact_id: int = typer.Argument(..., help="The contact's id."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show one contact: identities, touches, events, score breakdown and tier history."""
    with transaction(engine()) as session:
        data = contact_detail(session, contact_id)
    if as_json:
        print_json(data)
        return
    typer.echo(f"#{data['id']} {data['name'] or ''}  tier={data['tier']}  score={data['score']}")
    if data["requested_id"] != data["id"]:
        typer.echo(f"(contact {data['requested_id']} was merged into {data['id']})")
    typer.echo("identities:")
    for ident in data["identities"]:
        typer.echo(f"  {ident['kind']:<22} {ident['value']}")
    typer.echo("score breakdown:")
    for part in data["score_breakdown"]:
        typer.echo(f"  {part['signal']:<22} {part['points']:>+5}")
    typer.echo("touches:")
    for t in data["touches"]:
        typer.echo(f"  {t['at']:%Y-%m-%d %H:%M}  {t['source_kind']:<11} {t['source']}")
    typer.echo("tier history:")
    for h in data["tier_history"]:
        typer.echo(
            f"  {h['at']:%Y-%m-%d %H:%M}  {h['from'] or '-'} -> {h['to'] or '-'}  {h['reason']}"
        )


@app.command()
def export(
    contact_id: int = typer.Argument(..., help="The contact's id."),
    out: Path | None = typer.Option(
        None, "--out", help="Write the document to this file instead of printing it."
    ),
) -> None:
    """Everything held on one contact as one JSON document (a PIPL access request)."""
    with transaction(engine()) as session:
        data = export_contact(session, contact_id)
    if out is None:
        print_json(data)
        return
    out.write_text(json_text(data), "utf-8")
    typer.echo(f"wrote {out}")


@app.command()
def erase(
    contact_id: int = typer.Argument(..., help="The contact's id."),
    yes: bool = typer.Option(False, "--yes", help="Confirm: erasing cannot be undone."),
    actor: str | None = typer.Option(
        None, help="Who asked for it, for the audit log (default: the login name)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Erase a contact's personal data on request (PIPL); keeps counts in the audit log."""
    if not yes:
        raise InputError(f"erasing contact {contact_id} cannot be undone: add --yes to confirm")
    done = erase_contact(engine(), contact_id, actor=actor or getpass.getuser())
    if as_json:
        print_json({"contact_id": contact_id, **done})
        return
    typer.echo(f"erased contact {contact_id}: " + ", ".join(f"{k} {v}" for k, v in done.items()))
