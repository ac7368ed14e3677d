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
    from crm.models import Contact, QueueItem

    with transaction(engine) as s:
        contact = Contact(display_name="李雷", tier="open")
        s.add(contact)
        s.flush()
        lost = QueueItem(contact_id=contact.id, status="lost")
        pool = QueueItem(contact_id=contact.id, status="pool", open_key=contact.id)
        s.add_all([lost, pool])
        s.flush()
        lost_id, pool_id = str(lost.id), str(pool.id)
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
        # an object in a state that refuses the action (the state said in words)
        ("queue", "claim", "--user", "xiaoli", "--item", lost_id): f"{lost_id} is closed (lost)",
        ("queue", "release", pool_id, "--user", "xiaoli"): f"item {pool_id} is pool, not held",
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
        # what the command line itself refuses (Click's parser), in the catalog's words
        ("contacts", "show", "abc"): "contacts show: invalid value for CONTACT_ID: 'abc' is not",
        ("contacts", "show"): "qunflow contacts show: missing argument CONTACT_ID",
        ("groups", "add", "g", "--tier", "vip"): "'vip' is not one of `open`, `active`",
        ("groups", "add", "g"): "qunflow groups add: missing option --tier",
        ("groups", "add", "g", "--tier", "open", "--capacity", "0"): "0 is less than 1",
        ("contacts", "list", "--bogus"): "qunflow contacts list: no such option --bogus",
        ("contacts", "list", "--json=yes"): "option --json does not take a value",
        ("contacts", "list", "extra"): "unexpected extra arguments: extra",
        ("report", "--period"): "qunflow report: option --period requires a value",
        ("contacts", "lis"): "qunflow contacts: no such command 'lis' (did you mean `list`?)",
        ("nosuch",): "qunflow: no such command 'nosuch' (see `qunflow --help`)",
    }
    return cases


_ENGLISH_WORDS = re.compile(r"[A-Za-z]{2,} [A-Za-z]{2,} [A-Za-z]{2,}")
_SNAKE_CASE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_WORD = re.compile(r"[A-Za-z0-9_-]+")  # a name such as paid-onboarding is one word, not a code


def _codes() -> frozenset[str]:
    """Every stored status, kind, tier and role code (crm.core.vocabulary's enums)."""
    from enum import StrEnum

    from crm.core import vocabulary

    enums = [v for v in vars(vocabulary).values() if isinstance(v, type) and issubclass(v, StrEnum)]
    return frozenset(m.value for e in enums for m in e if m.value.isascii() and m.value.isalpha())


def _read_words(line: str, args: tuple[str, ...]) -> str:
    """What a line says in its own words: without the command it names, what is quoted as
    typed (`…`), and the values, names and paths the user typed."""
    text = line.split(": ", 1)[-1]
    text = re.sub(r"`[^`]*`", "", text)
    for typed in args:
        text = re.sub(rf"(?<![\w-]){re.escape(typed)}(?![\w-])", "", text)
    return text


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
    codes = _codes()
    unworded = []
    for args in cases:
        proc = _run(list(args), env, stdin="a-long-password-1\n")
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("qunflow"), (args, proc.stderr)
        said = _read_words(lines[0], args)
        if (
            not _HAN.search(said)
            or _ENGLISH_WORDS.search(said)
            or _SNAKE_CASE.search(said)
            or codes.intersection(_WORD.findall(said))
        ):
            unworded.append(lines[0])
    assert not unworded, "\n".join(unworded)


def test_the_check_for_codes_catches_one():
    said = _read_words("qunflow: 队列项 7 已结束（lost）", ("queue", "claim", "--item", "7"))
    assert "lost" in _codes().intersection(_WORD.findall(said))
    assert _SNAKE_CASE.search(_read_words("qunflow: 同行群「a」：to_join", ("peers",)))
