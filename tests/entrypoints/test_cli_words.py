"""The CLI's tables and lines in the reader's language: no code name or snake-case key in zh-CN,
no missing catalog key in en, --json unchanged."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from enum import StrEnum
from pathlib import Path

import pytest

from crm.core import vocabulary

QUNFLOW = [sys.executable, "-c", "from flows.cli import main; main()"]

MEMBERS = (
    "昵称,微信号,手机号,备注\n"
    "林小雨,linxiaoyu88,13800138001,想报阅读营\n"
    "王妈妈,wangmama,13900138002,\n"
)
LEADS = [
    {"lead_id": "x1", "post": "note-1", "handle": "yuedumama", "message": "学费多少？可以试听吗"},
    {"lead_id": "x2", "post": "note-1", "name": "阅读妈妈", "phone": "13800138003"},
    {"lead_id": "x3", "post": "note-1", "message": "路过"},  # no identity: quarantined
]
EVENTS = [
    {
        "event_id": "e1",
        "event": "message",
        "phone": "13800138001",
        "message": "学费多少？可以试听吗",
    },
    {"event_id": "e2", "event": "share", "phone": "13800138001"},
    {"event_id": "e3", "event": "activity_attended", "phone": "13800138001", "activity": "直播课"},
    {"event_id": "e4", "event": "purchase", "phone": "13800138003", "product": "年卡"},
    {"event_id": "e5", "event": "dance", "phone": "13800138001"},  # unknown kind: quarantined
]
# The read commands that print tables and lines.
READS = [
    ["caps", "limits"],
    ["contacts", "list"],
    ["queue", "list", "--view", "all"],
    ["caps"],
    ["accounts", "list"],
    ["alerts", "list"],
    ["report", "--from", "2020-01-01", "--to", "2030-01-01"],
    ["quarantine", "list"],
    ["groups", "list"],
    ["peers", "list"],
    ["peers", "yield"],
    ["users", "list"],
    ["contacts", "tags"],
]
CODES = {
    m.value
    for e in vars(vocabulary).values()
    if isinstance(e, type) and issubclass(e, StrEnum) and e is not StrEnum
    for m in e
}
SNAKE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")
WORD = re.compile(r"[A-Za-z_]+")


def run(args: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(
        [*QUNFLOW, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc.stdout


@pytest.fixture
def day(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """A small day's database: accounts, groups for three tiers (paid has none), imports, routes."""
    env = dict(cli_env, QUNFLOW_LANG="en")
    (tmp_path / "members.csv").write_text(MEMBERS, "utf-8")
    for name, rows in (("leads.jsonl", LEADS), ("events.jsonl", EVENTS)):
        (tmp_path / name).write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        )
    steps = [
        ["db", "upgrade"],
        ["accounts", "add", "yunying", "--platform", "wechat"],
        ["groups", "add", "粉丝群", "--tier", "open", "--qr-url", "https://w.example/g/1"],
        ["groups", "add", "活跃群", "--tier", "active", "--qr-url", "https://w.example/g/2"],
        ["groups", "add", "意向群", "--tier", "prospect", "--qr-url", "https://w.example/g/3"],
        ["peers", "add", "宝妈群", "--join", "qr"],
        ["users", "add", "xiaozhang", "--role", "sales", "--password-stdin"],
        ["ingest", "peer-group", str(tmp_path / "members.csv"), "--group", "宝妈群"],
        ["ingest", "self-media", str(tmp_path / "leads.jsonl"), "--platform", "xiaohongshu"],
        ["ingest", "events", str(tmp_path / "events.jsonl")],
        ["route"],
        ["route"],
        ["route"],
    ]
    for args in steps:
        proc = subprocess.run(
            [*QUNFLOW, *args],
            env=env,
            input="s3cret-Passw0rd\ns3cret-Passw0rd\n",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return env


def _shows(env: dict[str, str], lang: str) -> dict[str, str]:
    env = dict(env, QUNFLOW_LANG=lang)
    out = {" ".join(a): run(a, env) for a in READS}
    contacts = json.loads(run(["contacts", "list", "--json"], env))["items"]
    for c in contacts:
        out[f"contacts show {c['id']}"] = run(["contacts", "show", str(c["id"])], env)
    return out


def _data(env: dict[str, str]) -> set[str]:
    """Words that are the test's own data (handles, ids), which may be any text."""
    return {
        "yunying",
        "xiaozhang",
        "linxiaoyu88",
        "wangmama",
        "yuedumama",
        "xiaohongshu",
        "https",
        "example",
        "qr_code",
        "members.csv",
    }


def _worded(shown: dict[str, str], data: set[str]) -> None:
    """No snake-case key or code name outside the test's own data, links, files and raw rows."""
    for command, text in shown.items():
        plain = re.sub(
            r"[a-z+]+://\S+|[\w.-]+\.(?:csv|jsonl)|xiaohongshu:\w+|\{\"[^\n]*", " ", text
        )
        for word in WORD.findall(plain):
            if word in data:
                continue
            assert not SNAKE.fullmatch(word), (command, word, text)
            assert word not in CODES, (command, word, text)


def test_zh_cn_tables_show_no_code_name_or_snake_case_key(day):
    shown = _shows(day, "zh-CN")
    assert "等级" in shown["contacts list"] and "普通" in shown["contacts list"]
    assert "群已满" in shown["alerts list"]  # paid has no group: the alert, in words
    assert "运营经验" in shown["caps limits"] and "腾讯未公布" in shown["caps limits"]
    _worded(shown, _data(day))  # and the quarantined rows as they came (from `{"` on)


def test_zh_cn_plans_tasks_join_ways_dispatch_and_status_lines_are_in_words(day, db_url):
    from crm.core.db import make_engine, transaction
    from crm.models import Community
    from tests.fakes.wecom_live_server import FakeLiveWeCom
    from tests.fakes.wecom_server import serve

    eng = make_engine(db_url)
    with transaction(eng) as s:  # WeCom groups of the active tier, as a WeCom pull leaves them
        for n in range(2):
            s.add(Community(name=f"企微活跃群{n}", platform="wecom", external_id=f"wrWords{n}",
                            tier="active", position=10 + n))  # fmt: skip
    eng.dispose()
    zh = dict(day, QUNFLOW_LANG="zh-CN")
    contact = json.loads(run(["contacts", "list", "--json"], zh))["items"][0]["id"]
    fake = FakeLiveWeCom()
    with serve(fake) as (_, base):
        wecom = dict(
            zh,
            QUNFLOW_WECOM_CORP_ID=fake.corp_id,
            QUNFLOW_WECOM_SECRET=fake.secret,
            QUNFLOW_WECOM_BASE_URL=base,
        )
        shown = {
            "groups join-way": run(
                ["groups", "join-way", "--tier", "active", "--room-base-name", "活跃群"], wecom
            )
        }
    assert "活跃：2 个群" in shown["groups join-way"]
    # the code's state is WeCom's parameter (tier-active-…), data like a link
    shown["groups join-way"] = re.sub(r"渠道参数 \S+", "", shown["groups join-way"])
    commands = [
        ["peers", "plan"],
        ["peers", "tasks"],
        ["dispatch"],
        ["db", "status"],
        ["contacts", "tag", str(contact), "--tags", "宝妈"],
        ["optout", str(contact)],
        ["peers", "requested", "宝妈群"],
        ["peers", "reset", "宝妈群"],
    ]
    for args in commands:
        shown[" ".join(args)] = run(args, zh)
    assert "宝妈群" in shown["peers tasks"]
    assert "已加上 1 个标签" in shown[f"contacts tag {contact} --tags 宝妈"]
    assert "全部渠道" in shown[f"optout {contact}"]
    _worded(shown, _data(day) | {"Asia", "Shanghai"})


def test_en_has_every_word_and_json_keeps_its_codes(day):
    for command, text in _shows(day, "en").items():
        assert not re.search(r"\b(cli|col|tier|source|queue|alert|table|sum)\.[a-z_]+", text), (
            command,
            text,
        )
    listed = json.loads(run(["contacts", "list", "--json"], dict(day, QUNFLOW_LANG="zh-CN")))
    assert {c["tier"] for c in listed["items"]} <= {t.value for t in vocabulary.Tier}


def test_the_language_setting_is_checked_and_follows_the_locale(tmp_path):
    from crm.core.errors import ConfigError
    from crm.core.settings import get_settings, locale_lang

    assert locale_lang({"LANG": "en_US.UTF-8"}) == "en"
    assert locale_lang({"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}) == "zh-CN"
    assert locale_lang({"LANG": "fr_FR.UTF-8"}) == "zh-CN" and locale_lang({}) == "zh-CN"
    env = dict(os.environ, QUNFLOW_DATA_DIR=str(tmp_path), QUNFLOW_LANG="klingon")
    proc = subprocess.run(
        [*QUNFLOW, "contacts", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "QUNFLOW_LANG" in proc.stderr and "zh-CN or en" in proc.stderr
    proc = subprocess.run(
        [*QUNFLOW, "--lang", "xx", "contacts", "list"],
        env=dict(env, QUNFLOW_LANG="en"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "--lang" in proc.stderr
    with pytest.raises(ConfigError):
        get_settings(lang="de")
