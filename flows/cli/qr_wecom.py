"""`qunflow qr … --wecom`: WeCom channel live codes (渠道活码, "contact me" codes with a state)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TypeVar

import httpx
import typer

from crm.intake.wecom import WeComClient, client_from_settings
from crm.intake.wecom_live import (
    ContactWay,
    create_contact_way,
    delete_contact_way,
    list_contact_ways,
    update_contact_way,
)
from flows.cli.common import engine, print_json, print_table, settings, t

T = TypeVar("T")
COLUMNS = ["state", "staff", "promoter", "location", "campaign", "qr_code"]


def _with_client(call: Callable[[WeComClient], T]) -> T:
    with httpx.Client(timeout=15) as http:
        return call(client_from_settings(settings(), http))


def _row(way: ContactWay) -> dict[str, object]:
    row = dataclasses.asdict(way)
    row["staff"] = ",".join(way.staff)
    return row


def show(way: ContactWay, as_json: bool) -> None:
    """One code, as a JSON object or a line per field."""
    if as_json:
        print_json(_row(way))
        return
    typer.echo(t("cli.contact_way", state=way.state, staff=t("cli.list_sep").join(way.staff)))
    typer.echo(way.qr_code or "")


def create(
    staff: list[str],
    promoter: str | None,
    location: str | None,
    campaign: str | None,
    as_json: bool,
) -> None:
    """A "contact me" code for the staff members, its state registered to the source."""
    way = _with_client(
        lambda client: create_contact_way(
            engine(),
            client,
            staff=staff,
            promoter=promoter,
            location=location,
            campaign=campaign,
        )
    )
    show(way, as_json)


def list_(as_json: bool) -> None:
    """The registered codes with their QR URLs."""
    rows = [_row(w) for w in list_contact_ways(engine())]
    if as_json:
        print_json(rows)
        return
    print_table(rows, COLUMNS)


def update(state: str, staff: list[str], as_json: bool) -> None:
    """Change who a code adds."""
    show(
        _with_client(lambda client: update_contact_way(engine(), client, state, staff=staff)),
        as_json,
    )


def delete(state: str) -> None:
    """Delete a code at WeCom; its scans stay attributed."""
    _with_client(lambda client: delete_contact_way(engine(), client, state))
    typer.echo(t("cli.contact_way_deleted", state=state))
