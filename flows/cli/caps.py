"""`qunflow caps` and `qunflow accounts …`: today's cap usage and the operator accounts."""

from __future__ import annotations

import dataclasses

import typer
from sqlalchemy import select

from crm.core.db import transaction
from crm.core.errors import InputError
from crm.core.vocabulary import Platform
from crm.models import OperatorAccount
from crm.outreach.accounts import (
    OVERRIDE_SOURCE,
    LimitView,
    add_account,
    list_limits,
    usage_today,
)
from crm.outreach.limit_file import default_limits
from crm.outreach.limits import LimitKind
from flows.cli.common import coded, engine, headings, print_json, print_table, settings, t, word

accounts = typer.Typer(help="Operator accounts and their per-account limits.")
caps_app = typer.Typer(
    help="Today's usage and headroom per account; `caps limits` lists every limit.",
    invoke_without_command=True,
)


@caps_app.callback()
def caps(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Today's usage and headroom per account and action (local day of each account)."""
    if ctx.invoked_subcommand is not None:
        return
    with transaction(engine()) as session:
        rows = usage_today(session, zone=settings().zone)
    if as_json:
        print_json(rows)
        return
    print_table(
        coded([dataclasses.asdict(r) for r in rows], platform="platform", action="action"),
        headings("handle", "platform", "action", "day", "used", "cap", "headroom"),
    )


@caps_app.command("limits")
def limits(as_json: bool = typer.Option(False, "--json", help="Print one JSON document.")) -> None:
    """Every limit with its value, source, date and kind (documented, practice, override)."""
    with transaction(engine()) as session:
        rows = list_limits(session)
    if as_json:
        print_json(rows)
        return
    bundled = {lim.name: lim.source for lim in default_limits()}
    shown = [
        {
            **dataclasses.asdict(r),
            "limit": _limit_words(r),
            "limit_kind": r.kind,
            "source": _source_words(r, bundled),
        }
        for r in rows
    ]
    print_table(
        coded(shown, limit_kind="limit_kind"),
        headings("limit", "value", "limit_kind", "since", "account", "source"),
    )


def _source_words(limit: LimitView, bundled: dict[str, str]) -> str:
    """Where a limit comes from, in words: the catalog's for the bundled file's own sources and
    for overrides; a source someone wrote into their limits file stays as they wrote it."""
    if limit.account is None and bundled.get(limit.name) == limit.source:
        return t(f"limit_source.{limit.name}")
    if limit.kind == LimitKind.OVERRIDE and limit.source == OVERRIDE_SOURCE:
        return t("limit_source.override")
    return limit.source


def _limit_words(limit: LimitView) -> str:
    """A limit's name in words: platform, whose allowance, what is counted, per what."""
    parts = [
        word("platform", limit.platform),
        word("scope", limit.scope),
        word("action", limit.action),
        word("window", limit.window),
    ]
    return " · ".join(parts)


def _limits(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not value.isdigit():
            raise InputError("error.cli.limit_bad", item=item)
        out[key] = int(value)
    return out


@accounts.command("add")
def add(
    handle: str = typer.Argument(..., help="The account's handle (WeCom userid, email, …)."),
    platform: Platform = typer.Option(..., "--platform", help="wechat, wecom, email, webhook."),
    limit: list[str] = typer.Option(
        [],
        "--limit",
        help="ACTION=N per day; pacing:ACTION=SECONDS; ACTION.WINDOW=N for another window.",
    ),
    timezone: str | None = typer.Option(None, "--timezone", help="IANA zone for its day."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Add (or update) an operator account with per-account limit overrides."""
    acct = add_account(engine(), handle, platform, limits=_limits(limit), timezone=timezone)
    data = {"id": acct.id, "handle": acct.handle, "platform": acct.platform}
    if as_json:
        print_json(data)
    else:
        typer.echo(
            t(
                "cli.account_added",
                id=data["id"],
                handle=handle,
                platform=word("platform", platform),
            )
        )


@accounts.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print one JSON document.")) -> None:
    """List operator accounts."""
    with transaction(engine()) as session:
        rows = [
            {
                "id": a.id,
                "handle": a.handle,
                "platform": a.platform,
                "timezone": a.timezone,
                "active": a.active,
            }
            for a in session.scalars(select(OperatorAccount).order_by(OperatorAccount.id))
        ]
    if as_json:
        print_json(rows)
        return
    columns = {**headings("id", "handle", "platform", "timezone"), "active": t("cli.col.enabled")}
    print_table(coded(rows, platform="platform"), columns)
