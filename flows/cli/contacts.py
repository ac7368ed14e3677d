"""`qunflow contacts …`: look at contacts, and honour personal-data requests (PIPL)."""

from __future__ import annotations

import getpass
from pathlib import Path

import typer

from crm.contacts.queries import contact_detail, list_contacts
from crm.contacts.tags import clean_tag, split_tags, tag_contacts, tag_counts, untag_contacts
from crm.core.db import transaction
from crm.core.errors import InputError
from crm.core.vocabulary import Tier
from flows.cli.common import engine, json_text, print_json, print_table

app = typer.Typer(
    help="Look at contacts in the CRM; export or erase one on request.", no_args_is_help=True
)


@app.command("list")
def list_(
    tier: Tier | None = typer.Option(None, help="Only contacts in this tier."),
    tag: str | None = typer.Option(None, help="Only contacts with this tag."),
    limit: int = typer.Option(50, min=1, max=10_000, help="How many to show."),
    offset: int = typer.Option(0, min=0, help="Skip this many (paging)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List contacts, highest score first."""
    with transaction(engine()) as session:
        page = list_contacts(
            session,
            tier=tier.value if tier else None,
            tag=clean_tag(tag) if tag is not None else None,
            limit=limit,
            offset=offset,
        )
    if as_json:
        print_json(page)
        return
    for item in page["items"]:
        item["tags"] = ", ".join(item["tags"])
        item["name"] = item["label"]  # a contact known only by a handle shows the handle
    print_table(page["items"], ["id", "name", "tier", "score", "phone", "wechat_id", "tags"])
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
    typer.echo(f"#{data['id']} {data['label']}  tier={data['tier']}  score={data['score']}")
    if data["requested_id"] != data["id"]:
        typer.echo(f"(contact {data['requested_id']} was merged into {data['id']})")
    if data["tags"]:
        typer.echo("tags: " + ", ".join(data["tags"]))
    sections = {
        "identities": [{"kind": i["kind"], "value": i["value"]} for i in data["identities"]],
        "score breakdown": [
            {
                "signal": p["signal"],
                "points": f"{p['points']:+d}",
                "events": ", ".join(map(str, p.get("events", []))),
            }
            for p in data["score_breakdown"]
        ],
        "touches": [
            {"at": t["at"], "source kind": t["source_kind"], "source": t["source"]}
            for t in data["touches"]
        ],
        "tier history": [
            {"at": h["at"], "from": h["from"] or "-", "to": h["to"] or "-", "reason": h["reason"]}
            for h in data["tier_history"]
        ],
    }
    for title, rows in sections.items():  # one table each: columns line up in any script
        typer.echo(f"\n{title}:")
        print_table(rows)


@app.command()
def export(
    contact_id: int = typer.Argument(..., help="The contact's id."),
    out: Path | None = typer.Option(
        None, "--out", help="Write the document to this file instead of printing it."
    ),
) -> None:
    """Everything held on one contact as one JSON document (a PIPL access request)."""
    with transaction(engine()) as session:
        from crm.sales.workspace import export_for  # only this command needs it

        data = export_for(session, contact_id, actor=getpass.getuser())
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
    from crm.compliance.privacy import erase_contact  # only this command needs it

    done = erase_contact(engine(), contact_id, actor=actor or getpass.getuser())
    if as_json:
        print_json({"contact_id": contact_id, **done})
        return
    typer.echo(f"erased contact {contact_id}: " + ", ".join(f"{k} {v}" for k, v in done.items()))


@app.command()
def tag(
    contact_ids: list[int] = typer.Argument(..., help="Contact ids."),
    tags: str = typer.Option(
        ..., "--tags", "-t", help="Tags, separated by commas or 、 (e.g. '高意向,宝妈')."
    ),
    remove: bool = typer.Option(False, "--remove", help="Take these tags off instead."),
    actor: str | None = typer.Option(None, help="Who, for the audit log (default: login name)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Put tags on contacts (or take them off with --remove); tagging twice changes nothing."""
    wanted = split_tags(tags)
    if not wanted:  # the service refuses too; here the message names the option
        raise InputError("--tags: no tag given (e.g. --tags '高意向,宝妈')")
    who = actor or getpass.getuser()
    if remove:
        result = {"removed": untag_contacts(engine(), contact_ids, wanted, actor=who)}
    else:
        result = {"added": tag_contacts(engine(), contact_ids, wanted, actor=who)}
    if as_json:
        print_json({"contacts": contact_ids, "tags": wanted, **result})
        return
    ((what, n),) = result.items()
    typer.echo(f"{what} {n} tag(s): {', '.join(wanted)}")


@app.command("tags")
def tags_(as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Every tag in use and how many contacts carry it."""
    with transaction(engine()) as session:
        counts = tag_counts(session)
    if as_json:
        print_json({"tags": counts})
        return
    print_table(counts, ["tag", "contacts"])
