"""`qunflow demo` as a user runs it, twice: the second run changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

QUNFLOW = str(Path(sys.executable).with_name("qunflow"))
STABLE_KEYS = (
    "contacts",
    "by_source",
    "by_tier",
    "merged",
    "duplicate_records",
    "removed",
    "raw_records",
    "quarantined",
    "followups",
    "prospect_queue",
)


def demo(env):
    proc = subprocess.run(
        [QUNFLOW, "demo", "--json"], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_demo_twice_reports_the_same_funnel(cli_env, tmp_path):
    env = dict(cli_env, PREFECT_HOME=str(tmp_path / "prefect"))
    env.pop("PREFECT_API_URL", None)
    first = demo(env)
    assert first["contacts"] > 100
    assert set(first["by_source"]) >= {"peer_group", "self_media", "qr_signup"}
    assert sum(first["by_tier"].values()) == first["contacts"]
    assert first["duplicate_records"] > 0, "the sample holds duplicates across sources"
    assert first["merged"] > 0, "some sign-ups link two known contacts"
    assert first["quarantined"] > 0, "the sample holds bad rows"
    assert first["followups"]["planned_total"] > 0
    # The outbox holds what this first run planned: campaign messages and group invitations.
    run = first["this_run"]
    assert (
        run["planned"]["planned"] + run["routed"]["placed"] == first["followups"]["planned_total"]
    )
    ingested = first["this_run"]["ingested"]
    for report in ingested.values():
        assert report["read"] == report["new_contacts"] + report["matched"] + report["quarantined"]

    second = demo(env)
    assert {k: second[k] for k in STABLE_KEYS} == {k: first[k] for k in STABLE_KEYS}
    again = second["this_run"]
    assert sum(r["new_contacts"] for r in again["ingested"].values()) == 0
    assert again["routed"]["moves"] == {} or all(v == 0 for v in again["routed"]["moves"].values())
    assert again["planned"]["planned"] == 0 and again["routed"]["placed"] == 0
    # Contacts known only by phone hold no group slot: they wait for an address, run after run.
    assert sum(run["routed"]["waiting_address"].values()) > 0
    assert again["routed"]["waiting_address"] == run["routed"]["waiting_address"]
    # Nothing new: every row read again matched as already imported or was already quarantined.
    totals = again["totals"]
    assert totals["quarantined"] == totals["already_quarantined"] == first["quarantined"]
    assert (
        totals["skipped_duplicates"] == totals["matched"] == totals["read"] - totals["quarantined"]
    )
    for report in again["ingested"].values():
        assert report["skipped_duplicates"] <= report["matched"]

    # The readable summary prints the JSON's own figures.
    text = subprocess.run([QUNFLOW, "demo"], env=env, capture_output=True, text=True, timeout=600)
    line = next(x for x in text.stdout.splitlines() if x.startswith("this run:"))
    assert line.startswith(
        f"this run: read {totals['read']} rows: 0 new contacts, {totals['matched']} matched "
        f"({totals['skipped_duplicates']} already imported), 0 newly quarantined "
        f"({totals['already_quarantined']} already quarantined); no tier moves"
    ), line
    assert f"from {second['raw_records']} raw records" in text.stdout


def test_demo_prints_a_readable_summary(cli_env, tmp_path):
    env = dict(cli_env, PREFECT_HOME=str(tmp_path / "prefect"))
    if not env["QUNFLOW_DATABASE_URL"].startswith("sqlite"):
        pytest.skip("the readable summary is the same on both databases")
    proc = subprocess.run([QUNFLOW, "demo"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "contacts:" in proc.stdout and "by tier:" in proc.stdout
    assert os.path.exists(Path(env["QUNFLOW_DATA_DIR"]) / "sample")
