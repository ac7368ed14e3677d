"""Every user error the CLI meets: exit 2 and one line naming what is wrong, never a traceback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

QUNFLOW = str(Path(sys.executable).with_name("qunflow"))


def _run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [QUNFLOW, *args], env=env, input=stdin, capture_output=True, text=True, timeout=300
    )


def _cases(engine, cli_env, tmp_path) -> dict[tuple[str, ...], str]:
    """Each user error the CLI meets (after a small set-up) and what its English line says."""
    from crm.core.db import transaction
    from crm.models import Contact

    with transaction(engine) as s:
        s.add(Contact(display_name="李雷", tier="open"))
    setup = (
        ["groups", "add", "开放群", "--tier", "open"],
        ["users", "add", "xiaoli", "--role", "sales", "--password-stdin"],
    )
    for args in setup:
        assert _run(args, cli_env, stdin="a-long-password-1\n").returncode == 0, args
    headerless = tmp_path / "bad.csv"
    headerless.write_text("a,b\n1,2\n", "utf-8")
    missing = str(tmp_path / "nofile.csv")
    cases = {
        # unknown or missing objects
        ("campaign", "run", "no-such"): "no campaign 'no-such'",
        ("campaign", "run", "welcome-new", "--contact", "4242"): "contact 4242 does not exist",
        ("contacts", "show", "42"): "contact 42 does not exist",
        ("contacts", "export", "42"): "contact 42 does not exist",
        ("contacts", "erase", "42", "--yes"): "contact 42 does not exist",
        ("contacts", "tag", "42", "--tags", "宝妈"): "contact 42 does not exist",
        ("optout", "42"): "contact 42 does not exist",
        ("groups", "rotate-qr", "no-such", "--url", "https://q.example/x"): "group 'no-such'",
        ("groups", "add", "活跃群", "--tier", "active", "--account", "nobody"): "operator account",
        ("users", "disable", "nobody"): "user 'nobody' does not exist",
        ("queue", "claim", "--user", "nobody"): "user 'nobody' does not exist",
        ("queue", "claim", "--user", "xiaoli", "--item", "99"): "queue item 99 does not exist",
        ("queue", "release", "99", "--user", "xiaoli"): "queue item 99 does not exist",
        ("queue", "assign", "99", "--to", "xiaoli", "--by", "xiaoli"): "only managers",
        ("quarantine", "dismiss", "999", "--note", "x"): "no quarantined row 999",
        ("ingest", "peer-group", missing): "no such file",
        ("rules", "check", missing): "cannot read rules file",
        ("report", "--period", "no-such"): "unknown period 'no-such'",
        # duplicates
        ("groups", "add", "开放群", "--tier", "open"): "a group named '开放群' already exists",
        ("users", "add", "xiaoli", "--role", "sales", "--password-stdin"): "already exists",
        # bad values
        ("ingest", "events", str(headerless)): "no recognizable columns",
        ("rules", "check", str(headerless)): "not valid TOML",
        ("groups", "add", "g", "--tier", "open", "--qr-expires", "soon"): "bad duration 'soon'",
        ("accounts", "add", "a1", "--platform", "wecom", "--limit", "many"): "--limit 'many'",
        ("accounts", "add", "a1", "--platform", "wecom", "--timezone", "Mars/Base"): "timezone",
        ("queue", "list", "--view", "everything"): "unknown view 'everything'",
        ("queue", "list", "--sort", "mood"): "unknown sort 'mood'",
        ("report", "--from", "2026-13-01"): "--from: not a date",
        ("report", "--by", "mood"): "--by: unknown grouping 'mood'",
        ("campaign", "run", "welcome-new", "--param", "x"): "--param 'x': expected KEY=VALUE",
        ("contacts", "list", "--tag", ","): "tag ','",
        # values the command line itself refuses
        ("contacts", "show", "abc"): "qunflow contacts show: Invalid value for 'contact_id'",
        ("groups", "add", "g", "--tier", "vip"): "'vip' is not one of 'open', 'active'",
        ("nosuch",): "qunflow: No such command 'nosuch'.",
    }
    return cases


# Click's own refusals (a value the command line cannot parse) are worded by Click.
_CLICK_WORDED = {("contacts", "show", "abc"), ("groups", "add", "g", "--tier", "vip"), ("nosuch",)}
_ENGLISH_WORDS = re.compile(r"[A-Za-z]{2,} [A-Za-z]{2,} [A-Za-z]{2,}")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def test_every_user_error_is_one_line_and_exit_2(engine, cli_env, tmp_path):
    cases = _cases(engine, cli_env, tmp_path)
    for args, message in cases.items():
        proc = _run(list(args), cli_env, stdin="a-long-password-1\n")
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("qunflow"), (args, proc.stderr)
        assert message in lines[0], (args, lines[0])


def test_in_chinese_every_user_error_reads_chinese(engine, cli_env, tmp_path):
    cases = _cases(engine, cli_env, tmp_path)
    env = {**cli_env, "QUNFLOW_LANG": "zh-CN"}
    for args in cases:
        if args in _CLICK_WORDED:
            continue
        proc = _run(list(args), env, stdin="a-long-password-1\n")
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("qunflow"), (args, proc.stderr)
        assert _HAN.search(lines[0]), (args, lines[0])
        assert not _ENGLISH_WORDS.search(lines[0]), (args, lines[0])
