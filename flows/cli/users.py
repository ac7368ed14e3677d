"""`qunflow users …`: staff accounts for the sales workspace (roles, passwords, caps)."""

from __future__ import annotations

import dataclasses
import getpass
import sys

import typer

from crm.core.db import transaction
from crm.core.errors import InputError
from crm.core.vocabulary import UserRole
from crm.sales.claim_usage import set_claim_limits
from crm.sales.users import add_user, clean_username, list_users, set_active, set_password, set_role
from flows.cli.common import coded, engine, headings, print_json, print_table, t, word

app = typer.Typer(help="Staff accounts: sales, managers, admins.", no_args_is_help=True)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise InputError("error.cli.password_missing")
        return password
    first = getpass.getpass(t("cli.password_prompt"))
    second = getpass.getpass(t("cli.password_again"))
    if first != second:
        raise InputError("error.cli.password_mismatch")
    return first


@app.command("add")
def add(
    name: str = typer.Argument(..., help="Login name."),
    role: UserRole = typer.Option(..., "--role", help="sales, manager or admin."),
    display_name: str | None = typer.Option(None, "--display-name", help="Name shown in pages."),
    locale: str = typer.Option("zh-CN", help="Page language: zh-CN or en."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
) -> None:
    """Add a staff user (the password is prompted for twice unless --password-stdin)."""
    clean_username(name)  # before asking for a password
    password = _read_password(password_stdin)
    user = add_user(
        engine(),
        name,
        role=role.value,
        password=password,
        display_name=display_name,
        locale=locale,
        actor="cli",
    )
    typer.echo(t("cli.user_added", user=user.username, role=word("role", user.role), id=user.id))


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print one JSON document.")) -> None:
    """List staff users with role and claim limits."""
    with transaction(engine()) as session:
        users = list_users(session)
    if as_json:
        print_json(users)
        return
    print_table(
        coded([dataclasses.asdict(u) for u in users], role="role"),
        {
            **headings("id", "username", "role", "active", "daily_claim_cap", "holding_cap"),
            "active": t("cli.col.enabled"),
            "locale": t("cli.col.locale"),
        },
    )


@app.command("set-caps")
def caps(
    name: str = typer.Argument(..., help="Login name."),
    claims: int | None = typer.Option(None, "--claims", min=0, help="Daily claim limit."),
    holding: int | None = typer.Option(None, "--holding", min=0, help="Holding limit."),
) -> None:
    """Set a person's daily claim limit and holding limit."""
    if claims is None and holding is None:
        raise InputError("error.cli.limits_missing")
    result = set_claim_limits(engine(), name, claims=claims, holding=holding, actor="cli")
    typer.echo(
        t(
            "cli.user_caps",
            user=result.username,
            claims=result.daily_claim_limit,
            holding=result.holding_limit,
        )
    )


@app.command("password")
def password(
    name: str = typer.Argument(..., help="Login name."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
) -> None:
    """Set a new password; the user's open workspace sessions end."""
    set_password(engine(), clean_username(name), _read_password(password_stdin), actor="cli")
    typer.echo(t("cli.user_password", user=name))


@app.command("set-role")
def role(
    name: str = typer.Argument(..., help="Login name."),
    new_role: UserRole = typer.Argument(..., help="sales, manager or admin."),
) -> None:
    """Give a user another role; their open workspace sessions end."""
    user = set_role(engine(), name, new_role.value, actor="cli")
    typer.echo(t("cli.user_role", user=user.username, role=word("role", user.role)))


@app.command("disable")
def disable(name: str = typer.Argument(..., help="Login name.")) -> None:
    """Disable a login (history stays); their open workspace sessions end."""
    set_active(engine(), name, False, actor="cli")
    typer.echo(t("cli.user_disabled", user=name))


@app.command("enable")
def enable(name: str = typer.Argument(..., help="Login name.")) -> None:
    """Enable a disabled login again."""
    set_active(engine(), name, True, actor="cli")
    typer.echo(t("cli.user_enabled", user=name))
