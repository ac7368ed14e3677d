"""The ``qunflow`` command line. Each command group lives in its own module."""

from __future__ import annotations

import sys
from importlib import metadata

import typer

from crm.core.errors import QunflowError
from flows.cli import (
    alerts,
    campaign,
    caps,
    contacts,
    db,
    demo,
    dispatch,
    groups,
    ingest,
    ingest_remote,
    optout,
    peers,
    qr,
    queue,
    report,
    route,
    users,
    web,
)
from flows.cli.common import print_utc

app = typer.Typer(
    name="qunflow",
    help="Qunflow: community lead funnels — ingest, score, route, follow up, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"qunflow {metadata.version('qunflow')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
    utc: bool = typer.Option(
        False, "--utc", help="Print times in UTC, not in QUNFLOW_TIMEZONE (for scripts)."
    ),
) -> None:
    """Qunflow: community lead funnels — ingest, score, route, follow up, report."""
    print_utc(utc)


app.add_typer(db.app, name="db")
app.add_typer(contacts.app, name="contacts")
app.command("demo")(demo.demo)
app.add_typer(users.app, name="users")
app.add_typer(queue.app, name="queue")
app.command("web")(web.web)
app.add_typer(qr.app, name="qr")
app.command("route")(route.route)
app.add_typer(route.rules_app, name="rules")
app.add_typer(groups.app, name="groups")
app.add_typer(ingest.app, name="ingest")
app.add_typer(ingest.quarantine_app, name="quarantine")
ingest.app.command("qr-signups")(ingest_remote.qr_signups)
ingest.app.command("wecom-groups")(ingest_remote.wecom_groups)
app.command("report")(report.report)

app.add_typer(campaign.app, name="campaign")
app.command("dispatch")(dispatch.run)
app.add_typer(caps.caps_app, name="caps")
app.add_typer(caps.accounts, name="accounts")
app.add_typer(peers.app, name="peers")
app.command("optout")(optout.optout)
app.add_typer(alerts.app, name="alerts")

# Click's plain help for every group: flags carry no `<bool>` metavar and a list of choices
# stays whole on its line (Rich's option table folds it mid-word at 80 columns).
app.rich_markup_mode = None
for _group in app.registered_groups:
    if _group.typer_instance is not None:
        _group.typer_instance.rich_markup_mode = None


def main() -> None:
    """Console entry point: user errors become one line on stderr and an exit code."""
    try:
        app(standalone_mode=False)
    except QunflowError as exc:
        sys.stderr.write(f"qunflow: {exc}\n")
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("qunflow: aborted\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:
        # Click's usage errors (a bad option value, a missing argument, an unknown command)
        # become one line naming the command, like every other user error. A group called
        # without a command has already printed its help: nothing to add.
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if message.strip():
            ctx = getattr(exc, "ctx", None)
            where = ctx.command_path if ctx is not None else "qunflow"
            sys.stderr.write(f"{where}: {' '.join(message.split())} (see --help)\n")
        sys.exit(int(getattr(exc, "exit_code", 2)))
