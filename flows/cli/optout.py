"""`qunflow optout`: a manual opt-out (退订) of a contact, on one channel or all."""

from __future__ import annotations

import typer

from crm.compliance.optout import opt_out
from crm.core.db import transaction
from crm.outreach.channels.registry import check_names
from flows.cli.common import engine, print_json, t, word


def optout(
    contact_id: int = typer.Argument(..., help="The contact's id."),
    channel: str | None = typer.Option(None, "--channel", help="Only this channel."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Opt a contact out: planned messages on that channel are skipped at once."""
    if channel is not None:  # a misspelt channel would leave the real one sending
        check_names([channel])
    with transaction(engine()) as session:
        skipped = opt_out(session, contact_id, channel=channel, source="manual", actor="cli")
    data = {"contact_id": contact_id, "channel": channel, "skipped": skipped}
    if as_json:
        print_json(data)
    else:
        where = word("channel", channel) if channel else t("cli.all_channels")
        typer.echo(t("cli.opted_out", id=contact_id, channel=where, skipped=skipped))
