"""`qunflow dispatch`: run outbox workers locally and print what happened."""

from __future__ import annotations

from datetime import timedelta

import typer

from crm.core.errors import InputError
from crm.outreach.channels import build_channels
from crm.outreach.channels.registry import REQUIRES, check_names
from crm.outreach.dispatch import dispatch
from flows.cli.common import engine, headings, print_json, print_table, settings, t, when


def run(
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Worker threads."),
    until_idle: bool = typer.Option(
        False, "--until-idle", help="Keep claiming until nothing is due (default: one batch)."
    ),
    batch: int = typer.Option(100, "--batch", min=1, max=5000, help="Rows per claim."),
    lease: float = typer.Option(300.0, "--lease", min=0.5, help="Claim lease in seconds."),
    channel: list[str] = typer.Option(
        [], "--channel", help="Use only these channels (default: every configured one)."
    ),
    route: list[str] = typer.Option(
        [], "--route", help="FROM=TO: deliver FROM's messages through channel TO (dry runs)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Send due outbox messages: sent / deferred / failed / skipped counts."""
    # A misspelt or unconfigured channel would defer every row meant for it: refuse instead.
    check_names(channel)
    chans = build_channels(settings(), channel or None)
    for name in channel:
        if name not in chans:
            raise InputError("error.cli.channel_unconfigured", name=name, needs=REQUIRES[name])
    for item in route:
        src, sep, dst = item.partition("=")
        if not sep or dst not in chans:
            raise InputError("error.cli.route_bad", item=item)
        check_names([src], "--route")
        chans[src] = chans[dst]
    result = dispatch(
        engine(),
        workers=workers,
        until_idle=until_idle,
        channels=chans,
        batch=batch,
        lease=timedelta(seconds=lease),
        settings=settings(),
    )
    for ch in set(map(id, chans.values())):
        next(c for c in chans.values() if id(c) == ch).close()
    if as_json:
        print_json(result)
        return
    totals = {
        "sent": result.sent,
        "awaiting_confirmation": result.awaiting_confirmation,
        "deferred": result.deferred,
        "failed": result.failed,
        "skipped": result.skipped,
    }
    rows = [{"account": a, **c} for a, c in result.per_account.items()]
    shown = [k for k in ("account", *totals) if any(k in row for row in rows)]
    print_table(rows, headings(*shown))
    typer.echo(t("cli.dispatch_totals", **totals))
    nxt = result.next_due_at
    typer.echo(
        t("cli.not_due", n=result.not_due) + (t("cli.next_due", at=when(nxt)) if nxt else "")
    )
