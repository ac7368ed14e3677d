"""End to end: `qunflow ingest … --json` in a subprocess, and the folder flow under Prefect."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm.core.db import make_engine, transaction
from crm.models import Contact
from crm.sample.data import write_sample

QUNFLOW = str(Path(sys.executable).parent / "qunflow")


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [QUNFLOW, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_ingest_json_and_quarantine(cli_env: dict[str, str], tmp_path: Path) -> None:
    paths = write_sample(tmp_path / "s", contacts=40, seed=2)
    first = _run(
        cli_env, "ingest", "peer-group", str(paths["peer-group"]), "--account", "op1", "--json"
    )
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert {"read", "new_contacts", "matched", "merged", "quarantined"} <= set(data)
    assert data["read"] == data["new_contacts"] + data["matched"] + data["quarantined"]
    assert data["new_contacts"] > 0 and data["quarantined"] == 2
    again = json.loads(
        _run(cli_env, "ingest", "peer-group", str(paths["peer-group"]), "--json").stdout
    )
    assert again["new_contacts"] == 0 and again["read"] == data["read"]
    media = _run(
        cli_env, "ingest", "self-media", str(paths["self-media"]), "--platform", "xhs", "--json"
    )
    assert media.returncode == 0, media.stderr
    listed = json.loads(_run(cli_env, "quarantine", "list", "--json").stdout)
    assert listed["count"] >= 3 and all(item["reason"] for item in listed["items"])


def test_cli_bad_file_is_one_line_exit_2(cli_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "members.csv"
    bad.write_bytes(b"\x00\x01\x02binary")
    proc = _run(cli_env, "ingest", "peer-group", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "members.csv" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.usefixtures("prefect_harness")
def test_folder_flow_imports_new_files_once(db_url: str, tmp_path: Path) -> None:
    from flows.ingest import ingest_folder_flow

    paths = write_sample(tmp_path / "s", contacts=30, seed=4)
    inbox = tmp_path / "inbox"
    (inbox / "peer-group").mkdir(parents=True)
    (inbox / "events").mkdir(parents=True)
    paths["peer-group"].rename(inbox / "peer-group" / paths["peer-group"].name)
    paths["events"].rename(inbox / "events" / paths["events"].name)
    (inbox / "peer-group" / "junk.csv").write_text("星座\n白羊\n", encoding="utf-8")
    results = ingest_folder_flow(folder=str(inbox), database_url=db_url)
    assert results["peer-group/peer_group_baoma.csv"]["new_contacts"] > 0
    assert "error" in results["peer-group/junk.csv"]
    assert (inbox / "peer-group" / "done" / "peer_group_baoma.csv").exists()
    assert (inbox / "peer-group" / "failed" / "junk.csv").exists()
    eng = make_engine(db_url)
    with transaction(eng) as s:
        before = s.scalar(select(func.count()).select_from(Contact))
    again = ingest_folder_flow(folder=str(inbox), database_url=db_url)
    with transaction(eng) as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == before
    eng.dispose()
    assert set(again) == {"pending"}
