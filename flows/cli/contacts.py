"""`qunflow contacts …`: look at contacts, and honour personal-data requests (PIPL)."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import typer

from crm.contacts.listing import list_contacts
from crm.contacts.tag_text import clean_tag, split_tags
from crm.core.db import read_only, transaction
from crm.core.errors import InputError
from crm.core.vocabulary import Tier
from flows.cli.common import (
    coded,
    engine,
    headings,
    json_text,
    print_json,
    print_table,
    settings,
    t,
    when,
    word,
)

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
    with read_only(engine()) as conn:
        page = list_contacts(
            conn,
            tier=tier.value if tier else None,
            tag=clean_tag(tag) if tag is not None else None,
            limit=limit,
            offset=offset,
        )
    if as_json:
        print_json(page)
        return
    for item in page["items"]:
        item["tags"] = "、".join(item["tags"])
        item["name"] = item["label"]  # a contact known only by a handle shows the handle
    columns = {
        **headings("id", "name", "tier", "score", "phone", "wechat_id", "tags"),
        "name": t("name"),
    }
    print_table(coded(page["items"], tier="tier"), columns)
    typer.echo(t("cli.n_of_total", n=len(page["items"]), total=page["total"]))


@app.command()
def show(
    contact_id: int = typer.Argument(..., help="The contact's id."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show one contact: identities, touches, events, score breakdown and tier history."""
    # The other commands load the models (the ORM); `list` reads without them.
    from crm.contacts.queries import contact_detail

    with transaction(engine()) as session:
        data = contact_detail(session, contact_id)
    if as_json:
        print_json(data)
        return
    typer.echo(
        t("cli.contact_head", id=data["id"], label=data["label"], tier=word("tier", data["tier"]))
        + "  "
        + t("cli.contact_score", score=data["score"])
    )
    from flows.cli.words import tier_reason  # only this command shows stored reasons

    if data["requested_id"] != data["id"]:
        typer.echo(t("cli.merged_into", requested=data["requested_id"], id=data["id"]))
    if data["tags"]:
        typer.echo(t("cli.tags_line", tags="、".join(data["tags"])))
    sections = {
        t("identities"): (
            [
                {"identity_kind": word("identity", i["kind"]), "value": i["value"]}
                for i in data["identities"]
            ],
            headings("identity_kind", "value"),
        ),
        t("why_score"): (_breakdown(data), headings("signal", "points", "evidence")),
        t("touches"): (
            [
                {
                    "at": h["at"],
                    "source_kind": word("source", h["source_kind"]),
                    "source": h["source"],
                }
                for h in data["touches"]
            ],
            headings("at", "source_kind", "source"),
        ),
        t("tier_history"): (
            [
                {
                    "at": h["at"],
                    "from": word("tier", h["from"] or "new"),
                    "to": word("tier", h["to"] or "removed"),
                    "reason": tier_reason(h),
                }
                for h in data["tier_history"]
            ],
            headings("at", "from", "to", "reason"),
        ),
    }
    for title, (rows, columns) in sections.items():  # one table each: columns line up
        typer.echo("\n" + t("cli.section", title=title))
        print_table(rows, columns)


def _breakdown(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The score breakdown as the prospect page shows it: each signal with its evidence."""
    # Only `show` explains scores: the rules (TOML, pydantic models) load for it alone.
    from crm.routing.rules import configured_rules
    from flows.web.breakdown import explain

    half_life = configured_rules(settings()).signals.engagement.half_life_days
    lines = explain(data["score_breakdown"], data["events"], t, half_life_days=half_life)
    rows: list[dict[str, Any]] = []
    for line in lines:
        said = [
            f"{when(e.at)} {e.kind}" + (f"「{e.words}」" if e.words else "") for e in line.evidence
        ]
        notes = said + ([line.note] if line.note else [])
        rows.append({"signal": line.label, "points": f"{line.points:+d}", "evidence": ""})
        rows[-1]["evidence"] = notes[0] if notes else ""
        rows.extend({"signal": "", "points": "", "evidence": note} for note in notes[1:])
    if lines:
        rows.append({"signal": t("total"), "points": f"{sum(x.points for x in lines):+d}"})
    return rows


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
    typer.echo(t("cli.wrote", path=out))


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
        raise InputError("error.cli.erase_unconfirmed", contact_id=contact_id)
    from crm.compliance.privacy import erase_contact  # only this command needs it

    done = erase_contact(engine(), contact_id, actor=actor or getpass.getuser())
    if as_json:
        print_json({"contact_id": contact_id, **done})
        return
    counts = t("cli.list_sep").join(
        t("cli.count_of", what=word("erased", k), n=v) for k, v in done.items()
    )
    typer.echo(t("cli.erased", id=contact_id, counts=counts))


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
        raise InputError("error.cli.tags_missing")
    who = actor or getpass.getuser()
    from crm.contacts.tags import tag_contacts, untag_contacts

    if remove:
        result = {"removed": untag_contacts(engine(), contact_ids, wanted, actor=who)}
    else:
        result = {"added": tag_contacts(engine(), contact_ids, wanted, actor=who)}
    if as_json:
        print_json({"contacts": contact_ids, "tags": wanted, **result})
        return
    ((what, n),) = result.items()
    typer.echo(t(f"cli.tags_{what}", n=n, tags=t("cli.list_sep").join(wanted)))


@app.command("tags")
def tags_(as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Every tag in use and how many contacts carry it."""
    from crm.contacts.tags import tag_counts

    with transaction(engine()) as session:
        counts = tag_counts(session)
    if as_json:
        print_json({"tags": counts})
        return
    print_table(counts, headings("tag", "contacts"))
