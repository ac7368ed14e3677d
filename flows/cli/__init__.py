"""The ``qunflow`` command line. Each command group lives in its own module.

A command's module is imported only when that command runs: ``--version`` and ``--help`` import
none of them, and ``qunflow contacts list`` does not pay for Prefect, Jinja or the campaign models.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from functools import cache
from typing import Any

import typer
from typer._click import Context
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperCommand, TyperGroup

from crm.core.errors import QunflowError
from flows.cli.lang import use_lang
from flows.cli.option_values import check_values_quickly


@dataclass(frozen=True)
class Entry:
    """One top-level command: where it lives, and the line ``--help`` shows for it."""

    module: str
    attr: str
    group: bool  # a Typer sub-app (``qunflow db …``) rather than one command
    help: str  # first paragraph of the command's own help; tests keep the two equal


# In the order ``--help`` lists them (commands first, then groups, as Typer lists them).
COMMANDS: dict[str, Entry] = {
    "demo": Entry(
        "flows.cli.demo",
        "demo",
        False,
        "Migrate, load the bundled sample (three sources), and run the funnel flow once.",
    ),
    "web": Entry(
        "flows.cli.web", "web", False, "Serve the web app with uvicorn until interrupted."
    ),
    "route": Entry(
        "flows.cli.route",
        "route",
        False,
        "Score every active contact and move them between tiers (open → active → prospect → paid).",
    ),
    "report": Entry(
        "flows.cli.report",
        "report",
        False,
        "Funnel report: UV, contribution, tier conversion, retention, sales and follow-ups.",
    ),
    "dispatch": Entry(
        "flows.cli.dispatch",
        "run",
        False,
        "Send due outbox messages: sent / deferred / failed / skipped counts.",
    ),
    "optout": Entry(
        "flows.cli.optout",
        "optout",
        False,
        "Opt a contact out: planned messages on that channel are skipped at once.",
    ),
    "db": Entry("flows.cli.db", "app", True, "Create and upgrade the CRM database schema."),
    "contacts": Entry(
        "flows.cli.contacts",
        "app",
        True,
        "Look at contacts in the CRM; export or erase one on request.",
    ),
    "users": Entry("flows.cli.users", "app", True, "Staff accounts: sales, managers, admins."),
    "queue": Entry("flows.cli.queue", "app", True, "Work the prospect queue."),
    "qr": Entry("flows.cli.qr", "app", True, "Create and list sign-up QR codes."),
    "rules": Entry("flows.cli.route", "rules_app", True, "Scoring and routing rules files."),
    "groups": Entry(
        "flows.cli.groups", "app", True, "Groups per tier and their QR codes (群活码)."
    ),
    "ingest": Entry(
        "flows.cli.ingest", "app", True, "Import contacts and activity from source exports."
    ),
    "quarantine": Entry(
        "flows.cli.ingest", "quarantine_app", True, "Rows that could not be imported, and why."
    ),
    "campaign": Entry(
        "flows.cli.campaign",
        "app",
        True,
        "Follow-up campaigns: list them, plan one into the outbox.",
    ),
    "caps": Entry(
        "flows.cli.caps",
        "caps_app",
        True,
        "Today's usage and headroom per account; `caps limits` lists every limit.",
    ),
    "accounts": Entry(
        "flows.cli.caps", "accounts", True, "Operator accounts and their per-account limits."
    ),
    "peers": Entry(
        "flows.cli.peers",
        "app",
        True,
        "Peer groups (同行群): join them within each account's daily cap, harvest members.",
    ),
    "alerts": Entry(
        "flows.cli.alerts",
        "app",
        True,
        "Open alerts (no group room, quarantine growth, failed flow runs).",
    ),
}


def _attach_ingest_remote(ingest_app: typer.Typer) -> None:
    from flows.cli import ingest_remote

    ingest_app.command("qr-signups")(ingest_remote.qr_signups)
    ingest_app.command("wecom-groups")(ingest_remote.wecom_groups)


# Commands another module adds to a group when that group is loaded.
_EXTRAS: dict[str, Callable[[typer.Typer], None]] = {"ingest": _attach_ingest_remote}


class WordedContext(Context):
    """A context whose help page (``--help``, a group called bare) is in the reader's language."""

    def get_help(self) -> str:
        from flows.cli.help import help_page  # only for a help page: it measures CJK widths

        return help_page(self)


def give_words(command: Any) -> None:
    """Let this command and every command under it write its help page in words."""
    command.context_class = WordedContext
    for sub in (getattr(command, "commands", None) or {}).values():
        give_words(sub)


@cache
def load_command(name: str) -> Any:
    """The real click command for ``name``, importing its module now."""
    entry = COMMANDS[name]
    target: Any = getattr(importlib.import_module(entry.module), entry.attr)
    holder = typer.Typer(add_completion=False, rich_markup_mode=None)
    holder.callback()(lambda: None)  # a callback keeps the holder a group even with one command
    if entry.group:
        if name in _EXTRAS:
            _EXTRAS[name](target)
        target.rich_markup_mode = None  # Click's plain help, as for the root (below)
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    group = typer.main.get_command(holder)
    assert isinstance(group, TyperGroup)
    command = group.commands[name]
    check_values_quickly(command)
    give_words(command)
    return command


class _LazyCommands(Mapping[str, Any]):
    """COMMANDS by name; a command is loaded when looked up, so listing names imports nothing."""

    def __getitem__(self, name: str) -> Any:
        if name not in COMMANDS:
            raise KeyError(name)
        return load_command(name)

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)


def _lang_given(args: list[str]) -> str | None:
    """The root's ``--lang`` value among these arguments (before the command's name)."""
    rest = iter(args)
    for arg in rest:
        if arg == "--lang":
            return next(rest, None)
        if arg.startswith("--lang="):
            return arg.partition("=")[2]
        if not arg.startswith("-"):
            return None
    return None


class LazyGroup(TyperGroup):
    """The root group: lists every command from COMMANDS, imports one only to run it."""

    context_class = WordedContext

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _LazyCommands()  # type: ignore[assignment]
        # The root's own options (--lang); each command's get theirs in load_command.
        check_values_quickly(self, subcommands=False)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # --help is answered the moment it is read: take --lang first, wherever it stands.
        given = _lang_given(args)
        if given is not None:
            with suppress(QunflowError):  # a bad value: the option's own callback says so
                use_lang(given)
        return super().parse_args(ctx, args)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        return load_command(cmd_name)

    def listed_command(self, ctx: Any, cmd_name: str) -> Any:
        """What --help's list needs of a command (its help line), without importing it."""
        if cmd_name not in COMMANDS:
            return None
        return TyperCommand(cmd_name, help=COMMANDS[cmd_name].help)


app = typer.Typer(
    name="qunflow",
    help="Qunflow: community lead funnels — ingest, score, route, follow up, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=LazyGroup,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib import metadata  # only here: reading package metadata costs ~25 ms

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
    lang: str | None = typer.Option(
        None,
        "--lang",
        metavar="zh-CN|en",
        callback=use_lang,
        is_eager=True,
        help="Language of tables, lines and help (QUNFLOW_LANG).",
    ),
) -> None:
    """Qunflow: community lead funnels — ingest, score, route, follow up, report."""
    # Only when a command runs: common loads SQLAlchemy.
    from flows.cli.common import print_utc

    print_utc(utc)


# Click's plain help for every group: flags carry no `<bool>` metavar and a list of choices
# stays whole on its line (Rich's option table folds it mid-word at 80 columns). Groups get
# the same when they are loaded (load_command).
app.rich_markup_mode = None


def main() -> None:
    """Console entry point: user errors become one line on stderr and an exit code."""
    try:
        app(standalone_mode=False)
    except QunflowError as exc:
        from flows.cli.common import error_line

        sys.stderr.write(f"qunflow: {error_line(exc)}\n")
        sys.exit(exc.exit_code)
    except typer.Abort:
        from flows.cli.common import t

        sys.stderr.write(f"qunflow: {t('cli.aborted')}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except NoArgsIsHelpError as exc:  # a group called without a command: its help, as Click does
        sys.stderr.write(f"{exc.message.rstrip()}\n")
        sys.exit(2)
    except UsageError as exc:
        # Click's refusals (a bad option value, a missing argument, an unknown command) become
        # one line naming the command, in the reader's language, like every other user error.
        from flows.cli.usage import refusal

        try:
            line = refusal(exc, sys.argv[1:], typer.main.get_command(app)).line()
        except QunflowError:  # the settings that choose the language are bad themselves
            line = f"qunflow: {' '.join(exc.format_message().split())}"
        sys.stderr.write(f"{line}\n")
        sys.exit(2)
    except typer.TyperException as exc:  # any other refusal of Click's: still one line
        from flows.cli.common import t

        detail = " ".join(str(exc).split())
        sys.stderr.write(f"qunflow: {t('error.usage.other', detail=detail)}\n")
        sys.exit(int(getattr(exc, "exit_code", 1)))
