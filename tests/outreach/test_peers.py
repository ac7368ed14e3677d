"""Peer groups (同行群): the daily join plan stays within each account's group_join headroom in
its local day, also with two planners at once, and joins are recorded."""

from __future__ import annotations

import json
import subprocess
import threading
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine, select

from crm.core.db import transaction
from crm.core.errors import Conflict
from crm.core.vocabulary import Platform
from crm.models import CapUsage, PeerTask
from crm.outreach.accounts import add_account
from crm.outreach.ledger import Ask, account_subject, reserve_many
from crm.outreach.peer_plan import plan_joins, task_list
from crm.outreach.peers import add_peer, mark_joined, mark_requested, reset_peer
from tests.helpers.followups import settings_for

# 23:00 on 2 March in Shanghai; the machine's clock (UTC) says 15:00 on 2 March.
LATE = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
SH_MIDNIGHT = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)  # 00:00 on 3 March in Shanghai


def _setup(engine: Engine, groups: int, used: int) -> int:
    acct = add_account(engine, "op-sh", Platform.WECHAT, timezone="Asia/Shanghai").id
    for i in range(groups):
        add_peer(engine, f"宝妈交流群{i}", community="某社区", join_ref=f"https://w.qq.com/g/{i}")
    with transaction(engine) as s:  # 7 of its 10 joins spent today (its local day)
        reserve_many(s, [Ask(account_subject(acct), "group_join", date(2026, 3, 2), used, 10)])
    return acct


def _used(engine: Engine, acct: int, day: date) -> int:
    with transaction(engine) as s:
        row = s.get(CapUsage, (account_subject(acct), "group_join", day))
        return row.used if row else 0


def test_three_joins_of_headroom_plan_three_today_none_more_until_local_midnight(
    engine: Engine, tmp_path
) -> None:
    st = settings_for(tmp_path)  # the default zone is irrelevant: the account has its own
    acct = _setup(engine, groups=6, used=7)
    first = plan_joins(engine, settings=st, now=LATE)
    assert len(first) == 3 and {t.day for t in first} == {date(2026, 3, 2)}
    assert _used(engine, acct, date(2026, 3, 2)) == 10
    assert plan_joins(engine, settings=st, now=LATE) == []
    assert plan_joins(engine, settings=st, now=datetime(2026, 3, 2, 15, 59, tzinfo=UTC)) == []
    with transaction(engine) as s:
        listed = task_list(s, settings=st, now=LATE)
    assert [t.peer_group for t in listed] == [t.peer_group for t in first]
    # Midnight in Shanghai (still 2 March in UTC): a fresh plan; yesterday's undone joins missed.
    fresh = plan_joins(engine, settings=st, now=SH_MIDNIGHT)
    assert len(fresh) == 6 and {t.day for t in fresh} == {date(2026, 3, 3)}
    assert _used(engine, acct, date(2026, 3, 3)) == 6
    with transaction(engine) as s:
        states = sorted(t.state for t in s.scalars(select(PeerTask)))
    assert states == ["missed"] * 3 + ["planned"] * 6


def test_two_planners_at_once_never_plan_beyond_the_headroom(engine: Engine, tmp_path) -> None:
    st = settings_for(tmp_path)
    acct = _setup(engine, groups=12, used=7)
    start = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def planner() -> None:
        try:
            start.wait()
            results.append(len(plan_joins(engine, settings=st, now=LATE)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=planner) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(results) == 3
    assert _used(engine, acct, date(2026, 3, 2)) == 10
    with transaction(engine) as s:
        groups = [t.peer_group_id for t in s.scalars(select(PeerTask))]
    assert len(groups) == len(set(groups)) == 3


def test_a_join_is_recorded_and_an_unplanned_one_needs_headroom(engine: Engine, tmp_path) -> None:
    st = settings_for(tmp_path)
    acct = _setup(engine, groups=4, used=7)
    planned = plan_joins(engine, settings=st, now=LATE)
    done = mark_joined(engine, planned[0].peer_group, settings=st, now=LATE)
    assert done.status == "joined" and done.account == "op-sh"
    assert _used(engine, acct, date(2026, 3, 2)) == 10  # the plan had reserved it
    unplanned = next(f"宝妈交流群{i}" for i in range(4) if f"宝妈交流群{i}" not in
                     {t.peer_group for t in planned})  # fmt: skip
    with pytest.raises(Conflict, match="no group_join headroom left on 2026-03-02"):
        mark_joined(engine, unplanned, settings=st, account="op-sh", now=LATE)
    tomorrow = mark_joined(engine, unplanned, settings=st, account="op-sh", now=SH_MIDNIGHT)
    assert tomorrow.status == "joined"
    assert _used(engine, acct, date(2026, 3, 3)) == 1


def test_peers_through_the_cli(cli_env) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([".venv/bin/qunflow", *args], env=cli_env, capture_output=True,
                              text=True)  # fmt: skip

    assert run("db", "upgrade").returncode == 0
    assert run("accounts", "add", "op1", "--platform", "wechat", "--limit",
               "group_join=2").returncode == 0  # fmt: skip
    for i in range(3):
        added = run("peers", "add", f"同行群{i}", "--community", "某机构", "--join", "link",
                    "--ref", f"https://example.com/j/{i}")  # fmt: skip
        assert added.returncode == 0, added.stderr
    tasks = json.loads(run("peers", "plan", "--json").stdout)
    assert [(t["account"], t["kind"], t["peer_group"]) for t in tasks] == [
        ("op1", "join", "同行群0"),
        ("op1", "join", "同行群1"),
    ]
    assert "https://example.com/j/0" in run("peers", "plan").stdout  # the same list as text
    assert run("peers", "joined", "同行群0").returncode == 0
    assert run("peers", "left", "同行群0", "--removed").returncode == 0
    peers = {p["name"]: p for p in json.loads(run("peers", "list", "--json").stdout)}
    assert peers["同行群0"]["status"] == "removed" and peers["同行群0"]["account"] == "op1"
    assert peers["同行群2"]["status"] == "to_join"
    missing = run("peers", "joined", "没有这个群")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1  # NotFound: a user error
    assert "peer group '没有这个群' does not exist" in missing.stderr
    bad = run("peers", "add", "x", "--join", "bribe")
    assert bad.returncode == 2


def test_morning_flow_plans_each_account_in_its_own_morning(
    prefect_harness, engine: Engine, db_url: str, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("QUNFLOW_DATABASE_URL", db_url)
    monkeypatch.setenv("QUNFLOW_DATA_DIR", str(tmp_path / "data"))
    from flows import peers, runtime

    runtime.settings.cache_clear()
    add_account(engine, "op-sh", Platform.WECHAT, timezone="Asia/Shanghai")
    add_account(engine, "op-ny", Platform.WECHAT, timezone="America/New_York")
    add_peer(engine, "群A", account="op-sh")
    add_peer(engine, "群B", account="op-ny")
    # 06:00 UTC: 14:00 in Shanghai (past its morning), 01:00 in New York (not yet).
    at = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    assert peers.peer_plan_flow(as_of=at) == {"joins": 1, "friend_requests": 0}
    with transaction(engine) as s:
        planned = [(t.account_id, t.day) for t in s.scalars(select(PeerTask))]
    assert len(planned) == 1 and planned[0][1] == date(2026, 3, 2)
    # 12:00 UTC: 07:00 in New York; Shanghai (20:00) has its plan for the day already.
    later = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert peers.peer_plan_flow(as_of=later) == {"joins": 2, "friend_requests": 0}  # both lists
    with transaction(engine) as s:
        assert sorted(t.day for t in s.scalars(select(PeerTask))) == [date(2026, 3, 2)] * 2
    runtime.settings.cache_clear()


def test_a_requested_group_is_not_planned_until_joined_or_reset(engine: Engine, tmp_path) -> None:
    st = settings_for(tmp_path)
    acct = _setup(engine, groups=2, used=7)
    planned = plan_joins(engine, settings=st, now=LATE)
    assert len(planned) == 2 and _used(engine, acct, date(2026, 3, 2)) == 9
    asked = mark_requested(
        engine, "宝妈交流群0", account="op-sh", note="群主小王, 等介绍", now=LATE
    )
    assert asked.status == "requested" and asked.request_note == "群主小王, 等介绍"
    assert _used(engine, acct, date(2026, 3, 2)) == 8  # its planned join gave its unit back
    with transaction(engine) as s:
        assert [t.peer_group for t in task_list(s, settings=st, now=LATE)] == ["宝妈交流群1"]
    assert [t.peer_group for t in plan_joins(engine, settings=st, now=SH_MIDNIGHT)] == [
        "宝妈交流群1"  # the next day too: still waiting for the owner
    ]
    with pytest.raises(Conflict, match="'宝妈交流群0' is requested: already asked"):
        mark_requested(engine, "宝妈交流群0")
    assert reset_peer(engine, "宝妈交流群0").status == "to_join"
    assert [t.peer_group for t in plan_joins(engine, settings=st, now=SH_MIDNIGHT)] == [
        "宝妈交流群0"
    ]


def test_requested_through_the_cli_refuses_wrong_transitions(cli_env) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([".venv/bin/qunflow", *args], env=cli_env, capture_output=True,
                              text=True)  # fmt: skip

    assert run("db", "upgrade").returncode == 0
    assert run("accounts", "add", "op1", "--platform", "wechat").returncode == 0
    for name in ("甲群", "乙群"):
        assert run("peers", "add", name, "--join", "introduction").returncode == 0
    ok = run("peers", "requested", "甲群", "--account", "op1", "--note", "老李介绍")
    assert ok.returncode == 0, ok.stderr
    again = run("peers", "requested", "甲群")
    assert again.returncode == 2 and again.stderr.count("\n") == 1
    assert "peer group '甲群' is requested" in again.stderr
    assert run("peers", "joined", "甲群").returncode == 0  # the owner let op1 in
    assert "'甲群' is joined" in run("peers", "requested", "甲群").stderr
    assert run("peers", "left", "乙群", "--removed").returncode == 0
    removed = run("peers", "requested", "乙群")
    assert removed.returncode == 2 and "'乙群' is removed" in removed.stderr
    assert run("peers", "reset", "乙群").returncode == 0
    assert run("peers", "requested", "乙群", "--account", "op1").returncode == 0
    peers = {p["name"]: p for p in json.loads(run("peers", "list", "--json").stdout)}
    assert peers["甲群"]["status"] == "joined" and peers["乙群"]["status"] == "requested"
    assert peers["乙群"]["account"] == "op1"
    missing = run("peers", "requested", "没有这个群")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
