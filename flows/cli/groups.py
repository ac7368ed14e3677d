"""`qunflow groups …`: our groups per tier, their live-code order and QR codes."""

from __future__ import annotations

import dataclasses

import typer

from crm.core.clock import parse_expiry
from crm.core.db import transaction
from crm.core.vocabulary import Theme, Tier
from crm.routing.groups import add_group, list_groups, rotate_qr
from flows.cli.common import coded, engine, headings, print_json, print_table, t, when, word

app = typer.Typer(help="Groups per tier and their QR codes (群活码).", no_args_is_help=True)


@app.command("add")
def add(
    name: str = typer.Argument(..., help="The group's name (unique)."),
    tier: Tier = typer.Option(..., "--tier", help="The tier whose contacts it takes."),
    theme: Theme = typer.Option(Theme.DISCUSSION, "--theme", help="discussion | trial | paid"),
    capacity: int = typer.Option(500, "--capacity", min=1, help="Most members the group holds."),
    qr_join_limit: int = typer.Option(
        200, "--qr-join-limit", min=1, help="Members beyond which the QR code stops working."
    ),
    qr_url: str | None = typer.Option(None, "--qr-url", help="The group's join QR code URL."),
    qr_expires: str = typer.Option("7d", "--qr-expires", help="QR validity, e.g. 7d, 36h."),
    account: str | None = typer.Option(
        None, "--account", help="Handle of the operator account that owns it."
    ),
    position: int | None = typer.Option(
        None, "--position", help="Order in the tier's live code (default: last)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Add a group to a tier's live code."""
    group = add_group(
        engine(),
        name,
        tier=tier,
        theme=theme,
        capacity=capacity,
        qr_join_limit=qr_join_limit,
        qr_url=qr_url,
        qr_expires=parse_expiry(qr_expires),
        account=account,
        position=position,
    )
    if as_json:
        print_json(group)
    else:
        typer.echo(
            t("cli.group_added", id=group.id, name=group.name, tier=word("tier", group.tier))
        )


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print one JSON array.")) -> None:
    """List groups by tier in live-code order, with members and QR validity."""
    with transaction(engine()) as session:
        groups = list_groups(session)
    if as_json:
        print_json(groups)
        return
    print_table(
        coded([dataclasses.asdict(g) for g in groups], tier="tier", theme="theme"),
        headings(
            "id",
            "name",
            "tier",
            "theme",
            "position",
            "members",
            "qr_join_limit",
            "qr_expires_at",
            "open",
        ),
    )


@app.command("rotate-qr")
def rotate(
    group: str = typer.Argument(..., help="The group's name or id."),
    url: str = typer.Option(..., "--url", help="The new QR code URL."),
    expires: str = typer.Option("7d", "--expires", help="Validity, e.g. 7d."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Give a group a fresh QR code (a group QR code expires after 7 days)."""
    data = rotate_qr(engine(), group, url=url, expires=parse_expiry(expires))
    if as_json:
        print_json(data)
    else:
        assert data.qr_expires_at is not None  # a rotated code always has one
        typer.echo(t("cli.qr_rotated", name=data.name, until=when(data.qr_expires_at)))


@app.command("join-way")
def join_way(
    tier: Tier = typer.Option(..., "--tier", help="The tier whose WeCom groups the code spans."),
    room_base_name: str | None = typer.Option(
        None, "--room-base-name", help="Name prefix of groups WeCom opens when the last is full."
    ),
    auto_create_room: bool = typer.Option(
        True, "--auto-create-room/--no-auto-create-room", help="Open a new group when full."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """A WeCom group live code (groupchat/add_join_way) over the tier's first five groups."""
    import httpx

    from crm.intake.wecom import client_from_settings
    from crm.routing.wecom_join_ways import create_join_way
    from flows.cli.common import settings

    with httpx.Client(timeout=15) as http:
        way = create_join_way(
            engine(),
            client_from_settings(settings(), http),
            tier,
            auto_create_room=auto_create_room,
            room_base_name=room_base_name,
        )
    if as_json:
        print_json(dataclasses.asdict(way))
    else:
        typer.echo(
            t("cli.join_way", tier=word("tier", way.tier), n=len(way.chat_ids), state=way.state)
        )
        typer.echo(way.qr_code)
