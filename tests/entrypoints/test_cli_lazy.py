"""The CLI loads a command's module only to run that command, and still lists them all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.cli import COMMANDS, load_command


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_line_matches_the_command_it_stands_for(name):
    command = load_command(name)
    assert command.name == name
    first_paragraph = (command.help or "").split("\n\n")[0].strip()
    assert COMMANDS[name].help == first_paragraph, (
        f"flows/cli/__init__.py: COMMANDS[{name!r}].help must be {first_paragraph!r}"
    )


def _modules_after(*argv: str) -> tuple[str, set[str]]:
    probe = (
        "import sys\n"
        f"sys.argv = ['qunflow', *{list(argv)!r}]\n"
        "from flows.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write('\\n'.join(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return proc.stdout, set(proc.stderr.split())


def test_help_and_version_import_no_command_and_no_database_library():
    for argv in (["--help"], ["--version"]):
        out, modules = _modules_after(*argv)
        loaded = {m for m in modules if m.startswith("flows.cli.")}
        # The root's option checks and --help's page in words: no command module.
        expected = {"flows.cli.option_values", "flows.cli.lang"}
        assert loaded == expected | ({"flows.cli.help"} if argv == ["--help"] else set()), argv
        assert "sqlalchemy" not in modules and "prefect" not in modules, argv
        assert "flows.i18n" not in modules, argv  # no message catalog either
    out, _ = _modules_after("--help")
    for name in COMMANDS:
        assert f" {name} " in out, name


def test_a_group_runs_with_the_commands_other_modules_add_to_it():
    out, modules = _modules_after("ingest", "--help")
    assert "qr-signups" in out and "wecom-groups" in out
    assert "flows.cli.contacts" not in modules


def test_a_plain_read_does_not_load_prefect_jinja_or_campaigns():
    _, modules = _modules_after("contacts", "list", "--help")
    assert "flows.cli.contacts" in modules
    for heavy in ("prefect", "jinja2", "matplotlib", "crm.outreach.campaign_file", "alembic"):
        assert heavy not in modules, heavy


def test_a_typo_still_gets_a_suggestion():
    proc = subprocess.run(
        [sys.executable, "-c", "from flows.cli import main; main()", "contact"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "did you mean `contacts`?" in proc.stderr


@pytest.mark.parametrize("options", [[], ["--limit", "10", "--tier", "active", "--tag", "VIP"]])
def test_contacts_list_reads_without_write_dialects_phone_parsing_or_commands(tmp_path, options):
    # A plain environment: only the two variables that name the database.
    plain = {k: v for k, v in os.environ.items() if not k.upper().startswith("QUNFLOW_")}
    env = {
        **plain,
        "QUNFLOW_DATA_DIR": str(tmp_path),
        "QUNFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'crm.db'}",
    }
    qunflow = str(Path(sys.executable).with_name("qunflow"))
    subprocess.run([qunflow, "db", "upgrade"], env=env, check=True, timeout=120)
    probe = (
        "import sys\n"
        f"sys.argv = ['qunflow', 'contacts', 'list', '--json', *{options!r}]\n"
        "from flows.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write('\\n'.join(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert '"items": []' in proc.stdout
    loaded = set(proc.stderr.split())
    assert "sqlalchemy.dialects.sqlite" in loaded  # the probe did read the database
    heavy = ("phonenumbers", "prefect", "jinja2", "matplotlib", "crm.outreach", "alembic")
    # The scoring rules are for `contacts show`; a SQLite read needs no PostgreSQL dialect.
    heavy += ("crm.routing", "tomllib", "sqlalchemy.dialects.postgresql")
    # A list is read with Core statements: the mapped models and the ORM would cost it more
    # than the read itself.
    heavy += ("crm.models", "sqlalchemy.orm", "crm.contacts.queries", "crm.contacts.tags")
    # Nor pydantic: the database settings are read alone, option values checked without it.
    heavy += ("pydantic", "pydantic_settings", "typer._adapters", "crm.core.settings")
    for name in heavy:
        assert not {m for m in loaded if m == name or m.startswith(name + ".")}, name
    others = {m for m in loaded if m.startswith("flows.cli.")}
    others -= {"flows.cli.common", "flows.cli.option_values", "flows.cli.lang"}
    assert others == {"flows.cli.contacts"}, others
