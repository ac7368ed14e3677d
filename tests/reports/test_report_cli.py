"""`qunflow report` end to end: same figures as funnel_report, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from sqlalchemy import Engine

from crm.core.db import transaction
from crm.reports import funnel_report
from tests.helpers.report_history import END, NOW, START, build_history

QUNFLOW = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "qunflow")
RANGE = ["--from", "2026-03-02", "--to", "2026-03-09", "--as-of", "2026-04-05T00:00:00+00:00"]


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [QUNFLOW, "report", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_report_json_matches_the_query(engine: Engine, cli_env: dict[str, str]) -> None:
    build_history(engine)
    done = run(cli_env, *RANGE, "--by", "promoter", "--json")
    assert done.returncode == 0, done.stderr
    with transaction(engine) as session:
        expected = funnel_report(session, start=START, end=END, now=NOW, by="promoter")
    assert json.loads(done.stdout) == json.loads(json.dumps(expected))

    tables = run(cli_env, *RANGE)
    assert tables.returncode == 0, tables.stderr
    assert "8 touches, 6 unique contacts, 5 new" in tables.stdout
    assert "Retention by join week" in tables.stdout
    assert "地推-张三" in tables.stdout


BAD = [
    (["--from", "2026-13-01"], "--from: not a date: '2026-13-01'"),
    (["--period", "nope"], "unknown period 'nope'"),
    (["--from", "2026-03-05", "--to", "2026-03-01"], "must be after --from"),
    (["--by", "colour"], "unknown grouping 'colour'"),
]


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["QUNFLOW_DATA_DIR"] = str(tmp_path)
    env["QUNFLOW_DATABASE_URL"] = f"sqlite:///{tmp_path / 'unused.db'}"
    for args, message in BAD:
        done = run(env, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.count("\n") == 1 and message in done.stderr
        assert done.stdout == ""
