"""The README's "A day with Qunflow" is examples/day/day.sh: run as written on a fresh database."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "day" / "day.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sections(stdout: str) -> dict[str, str]:
    """The script's output per step, keyed by the first words of the step's title."""
    out = {}
    for chunk in stdout.split("\n== ")[1:]:
        title, _, body = chunk.partition("\n")
        out[title.split(":")[0].split(",")[0]] = body
    return out


def documents(text: str) -> list[Any]:
    """Every JSON object a step printed, in order (each starts a line with "{")."""
    found, decoder, at = [], json.JSONDecoder(), 0
    while at < len(text):
        if text[at] == "{" and (at == 0 or text[at - 1] == "\n"):
            doc, at = decoder.raw_decode(text, at)
            found.append(doc)
        else:
            at += 1
    return found


@pytest.mark.slow
def test_the_walkthrough_runs_as_written(cli_env, tmp_path):
    env = dict(
        cli_env,
        QUNFLOW=str(Path(sys.executable).with_name("qunflow")),
        PYTHON=sys.executable,
        DAY_PORT=str(free_port()),
        DAY_OUT=str(tmp_path / "out"),
        PREFECT_HOME=str(tmp_path / "prefect"),
    )
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.run(
        ["sh", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    step = sections(proc.stdout)

    groups = step["an operator account and one group per tier"]
    for tier in ("Open", "Active", "Prospect", "Paid"):  # tiers in words (QUNFLOW_LANG=en)
        assert f": tier {tier}\n" in groups

    peers = step["a peer group (同行群)"]
    assert "joined by yunying_a01" in peers
    assert "read 4  new contacts 3  matched 0  merged 0  quarantined 1" in peers
    assert "no usable identity" in peers

    files = step["self-media leads (自媒体) and activity events"]
    assert "read 3  new contacts 2  matched 1" in files  # 林小雨 was in the member list
    # Every event kind but the bad one is read; the unknown kind is quarantined by name.
    assert "read 10  new contacts 1  matched 8  merged 0  quarantined 1  events 9" in files
    assert "unknown event kind" in files

    pushed = step["an in-person QR code (地推扫码)"]
    assert "sign-up: HTTP 200" in pushed
    leads, events = documents(pushed)
    assert leads == {"accepted": 1, "duplicates": 0, "rejected": 0, "reasons": []}
    assert (events["accepted"], events["rejected"]) == (1, 1)
    assert "read 3  new contacts 2  matched 1" in pushed  # sign-up, pushed lead and event
    for origin in ("events", "activity.jsonl", "members.csv"):
        assert f" {origin} " in pushed  # the quarantine list names where each bad row came from

    funnel = step["the funnel"]
    first, second, third, dry = documents(funnel)
    assert first["moves"] == {"new->open": first["scored"]} and first["placed"] > 0
    assert second["moves"].get("open->active", 0) > 0 and second["moves"].get("open->paid") == 1
    assert third["moves"].get("active->prospect", 0) > 0 and third["queued"] > 0
    assert not any(r["pending_placement"] for r in (first, second, third))  # a group per tier
    assert dry["dry_run"] is True and dry["rules_version"] == "reading-camp-2026.12"
    assert "林小雨" in funnel and "Why this score:" in funnel and "tier: Prospect" in funnel
    assert "added 4 tag(s): 高意向, 宝妈" in funnel and "2 of 2" in funnel

    followups = step["follow-ups within caps and send windows"]
    planned, dispatched = documents(followups)
    assert planned["campaign"] == "welcome-new" and planned["planned"] >= 1
    assert dispatched["sent"] > 0 and dispatched["failed"] == 0
    assert "Join group  " in followups and "宝妈交流群3群" in followups

    people = step["people and reports"]
    assert "added alice (sales)" in people
    assert "Funnel report" in people and "小张" in people


def test_the_readme_shows_the_script_as_it_runs():
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("## A day with Qunflow\n", 1)[1]
    shown = section.split("```sh\n")[2].split("```\n", 1)[0]
    script = SCRIPT.read_text("utf-8")
    assert shown.startswith('step "schema"') and script.endswith(shown)
