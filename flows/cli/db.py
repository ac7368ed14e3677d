"""`qunflow db …`: create and upgrade the CRM schema."""

from __future__ import annotations

import typer

from crm.core import migrate
from flows.cli.common import database, headings, print_json, settings, t

app = typer.Typer(help="Create and upgrade the CRM database schema.", no_args_is_help=True)


@app.command()
def upgrade() -> None:
    """Apply every pending migration (creates the schema on a new database)."""
    eng = database()
    before = migrate.current_revision(eng)
    migrate.upgrade(eng)
    after = migrate.current_revision(eng)
    url = eng.url.render_as_string(hide_password=True)
    if before == after:
        typer.echo(t("cli.db_current", url=url, revision=after))
    else:
        typer.echo(t("cli.db_upgraded", url=url, before=before or t("cli.db_empty"), after=after))


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Show the database, its schema revision and the newest one available."""
    eng = database()
    data = {
        "database": eng.url.render_as_string(hide_password=True),
        "current": migrate.current_revision(eng),
        "head": migrate.head_revision(),
        "timezone": settings().timezone,
    }
    if as_json:
        print_json(data)
    else:
        titles = headings(*data)
        for key, value in data.items():
            typer.echo(t("cli.field", name=titles[key], value=value))
