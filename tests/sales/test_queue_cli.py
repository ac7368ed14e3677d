"""`qunflow users …` and `qunflow queue …` end to end in a subprocess, on both databases."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta

from crm.core.db import make_engine
from crm.sales.rules import MAX_SNOOZE
from tests.helpers import queue_seed as seed


def run(env, *args, stdin: str | None = None, ok: bool = True):
    proc = subprocess.run(
        [".venv/bin/qunflow", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_users_and_queue_commands(cli_env, db_url):
    eng = make_engine(db_url)
    items = seed.prospects(eng, 3)
    eng.dispose()
    run(
        cli_env, "users", "add", "ann", "--role", "sales", "--password-stdin", stdin="s3cret-pass\n"
    )
    run(
        cli_env, "users", "add", "max", "--role", "manager", "--password-stdin", stdin="s3cret-p2\n"
    )
    dup = run(
        cli_env,
        "users",
        "add",
        "ann",
        "--role",
        "sales",
        "--password-stdin",
        stdin="s3cret-pass\n",
        ok=False,
    )
    assert dup.returncode == 2 and "already exists" in dup.stderr
    short = run(
        cli_env,
        "users",
        "add",
        "bo",
        "--role",
        "sales",
        "--password-stdin",
        stdin="short\n",
        ok=False,
    )
    assert short.returncode == 2 and "too short" in short.stderr
    run(cli_env, "users", "set-caps", "ann", "--claims", "2", "--holding", "5")
    users = json.loads(run(cli_env, "users", "list", "--json").stdout)
    ann = next(u for u in users if u["username"] == "ann")
    assert (ann["role"], ann["daily_claim_cap"], ann["holding_cap"]) == ("sales", 2, 5)
    assert "password_hash" not in ann

    pool = json.loads(run(cli_env, "queue", "list", "--json").stdout)
    assert [i["item_id"] for i in pool["items"]] == [i["item_id"] for i in items]
    got = json.loads(run(cli_env, "queue", "claim", "--user", "ann", "--json").stdout)
    assert got["item_id"] == items[0]["item_id"] and got["assignee"] == "ann"
    lost = run(cli_env, "queue", "outcome", str(got["item_id"]), "lost", ok=False)
    assert lost.returncode == 2 and "reason" in lost.stderr
    done = run(cli_env, "queue", "outcome", str(got["item_id"]), "lost", "--reason", "没预算")
    assert "lost" in done.stdout
    run(cli_env, "queue", "claim", "--user", "ann")
    capped = run(cli_env, "queue", "claim", "--user", "ann", ok=False)
    assert capped.returncode == 2 and "claim cap" in capped.stderr
    mine = json.loads(
        run(cli_env, "queue", "list", "--view", "mine", "--user", "ann", "--json").stdout
    )
    assert [i["item_id"] for i in mine["items"]] == [items[1]["item_id"]]
    held = str(items[1]["item_id"])
    far = (datetime.now(UTC) + MAX_SNOOZE + timedelta(days=1)).isoformat()
    parked = run(cli_env, "queue", "outcome", held, "snoozed", "--until", far, ok=False)
    assert parked.returncode == 2 and "within 90 days" in parked.stderr
    soon = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    assert "snoozed" in run(cli_env, "queue", "outcome", held, "snoozed", "--until", soon).stdout
    run(cli_env, "queue", "assign", str(items[2]["item_id"]), "--to", "ann", "--by", "max")
    refused = run(
        cli_env, "queue", "assign", str(items[2]["item_id"]), "--to", "max", "--by", "ann", ok=False
    )
    assert refused.returncode == 2 and "managers" in refused.stderr
    assert json.loads(run(cli_env, "queue", "expire", "--json").stdout) == {"expired": 0}


def test_password_role_and_disable_commands(cli_env, db_url):
    run(
        cli_env, "users", "add", "ann", "--role", "sales", "--password-stdin", stdin="s3cret-pass\n"
    )
    assert (
        "sessions ended"
        in run(
            cli_env, "users", "password", "ann", "--password-stdin", stdin="an0ther-pass\n"
        ).stdout
    )
    assert "now manager" in run(cli_env, "users", "set-role", "ann", "manager").stdout
    bad = run(cli_env, "users", "set-role", "ann", "boss", ok=False)
    assert bad.returncode == 2
    run(cli_env, "users", "disable", "ann")
    users = json.loads(run(cli_env, "users", "list", "--json").stdout)
    assert [(u["role"], u["active"]) for u in users if u["username"] == "ann"] == [
        ("manager", False)
    ]
    run(cli_env, "users", "enable", "ann")
    eng = make_engine(db_url)
    try:
        from crm.sales.users import authenticate

        assert authenticate(eng, "ann", "an0ther-pass") is not None
        assert authenticate(eng, "ann", "s3cret-pass") is None
    finally:
        eng.dispose()
