"""The registry of default limits: every default states its source, date and kind; an
operator overrides any of them per account; `caps limits` lists them all."""

from __future__ import annotations

import json
import subprocess
from datetime import date
from pathlib import Path

import pytest

from crm.core.errors import ConfigError
from crm.outreach.limit_file import default_limits
from crm.outreach.limits import LimitKind

QUNFLOW = ".venv/bin/qunflow"


def test_every_default_has_a_source_a_date_and_a_kind() -> None:
    limits = {lim.name: lim for lim in default_limits()}
    assert limits["wechat.contact.group_join.day"].limit == 10
    assert "10个微信群" in limits["wechat.contact.group_join.day"].source
    friends = limits["wechat.account.friends.total"]
    assert (friends.limit, friends.kind, friends.since.year) == (5000, LimitKind.DOCUMENTED, 2014)
    assert limits["wecom.group.members.total"].limit == 500
    assert limits["wechat.group.qr_code.validity"].limit == 7
    for lim in limits.values():
        assert lim.source.strip() and lim.kind in (LimitKind.DOCUMENTED, LimitKind.PRACTICE)
        assert date(2010, 1, 1) <= lim.since <= date.today()


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ('platform="wechat"\nscope="account"\naction="x"\nwindow="day"\nvalue=1\n'
         'kind="practice"\nsince=2024-01-01', "limit.0.source: Field required"),
        ('platform="wechat"\nscope="account"\naction="x"\nwindow="week"\nvalue=1\n'
         'kind="practice"\nsource="abc"\nsince=2024-01-01', "limit.0.window"),
        ('platform="wechat"\nscope="account"\naction="x"\nwindow="day"\nvalue=1\n'
         'kind="rumour"\nsource="abc"\nsince=2024-01-01', "limit.0.kind"),
    ],
)  # fmt: skip
def test_a_bad_registry_entry_names_the_field(tmp_path: Path, entry: str, needle: str) -> None:
    path = tmp_path / "limits.toml"
    path.write_text(f"[[limit]]\n{entry}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=needle):
        default_limits(path)


def test_a_limit_defined_twice_is_refused(tmp_path: Path) -> None:
    one = ('[[limit]]\nplatform="wechat"\nscope="account"\naction="x"\nwindow="day"\nvalue=1\n'
           'kind="practice"\nsource="abc"\nsince=2024-01-01\n')  # fmt: skip
    path = tmp_path / "limits.toml"
    path.write_text(one + one, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"limit\.1: wechat\.account\.x\.day defined twice"):
        default_limits(path)


def test_caps_limits_lists_sources_and_per_account_overrides(cli_env) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([QUNFLOW, *args], env=cli_env, capture_output=True, text=True)

    assert run("db", "upgrade").returncode == 0
    add = run("accounts", "add", "op1", "--platform", "wechat", "--limit", "group_join=3",
              "--limit", "pacing:friend_add=90", "--limit", "friends.total=4000")  # fmt: skip
    assert add.returncode == 0, add.stderr
    rows = json.loads(run("caps", "limits", "--json").stdout)
    defaults = [r for r in rows if r["account"] is None]
    assert {r["name"] for r in defaults} == {lim.name for lim in default_limits()}
    assert all(r["source"] and r["kind"] in ("documented", "practice") for r in defaults)
    own = {(r["action"], r["window"]): r for r in rows if r["account"] == "op1"}
    assert {k: r["value"] for k, r in own.items()} == {
        ("group_join", "day"): 3,
        ("friend_add", "interval"): 90,
        ("friends", "total"): 4000,
    }
    assert {r["kind"] for r in own.values()} == {"override"}
    caps = {r["action"]: r for r in json.loads(run("caps", "--json").stdout)}
    assert caps["group_join"]["cap"] == 3
    text = run("caps", "limits").stdout
    assert "WeChat · per account · Friends · in all" in text and "Tencent" in text
    bad = run("accounts", "add", "op2", "--platform", "wechat", "--limit", "frends.total=1")
    assert bad.returncode == 2 and "unknown action 'frends'" in bad.stderr
