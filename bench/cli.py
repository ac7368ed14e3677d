"""How soon the ``qunflow`` command answers, against Python importing SQLAlchemy alone.

    python -m bench.cli [--repeat N] [--database URL]

Each command runs ``--repeat`` times as a fresh process (as a user types it); the figure is the
median wall time. Baseline, same run: ``python -c "import sqlalchemy"``, the least any command
that reads the database must load. Without ``--database`` the demo database is built first
(``qunflow db upgrade`` and ``qunflow demo``, outside the timing) in a temporary directory.

Goals: ``--version`` and ``--help`` under 0.3 s, ``contacts list --json`` under 0.6 s.
``ratio`` = contacts list seconds / baseline seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
GOALS = {"version": 0.3, "help": 0.3, "contacts_list": 0.6}


def _median_seconds(cmd: list[str], env: dict[str, str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _demo_database(workdir: Path, env: dict[str, str]) -> None:
    for args in (["db", "upgrade"], ["demo", "--json"]):
        subprocess.run(
            [str(BIN / "qunflow"), *args], env=env, check=True, stdout=subprocess.DEVNULL
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--database", help="An existing demo database (else one is built).")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="qunflow-bench-") as tmp:
        workdir = Path(tmp)
        env = {
            **os.environ,
            "QUNFLOW_DATA_DIR": str(workdir),
            "QUNFLOW_DATABASE_URL": args.database or f"sqlite:///{workdir / 'demo.db'}",
            "PREFECT_HOME": str(workdir / "prefect"),
        }
        if not args.database:
            _demo_database(workdir, env)
        qunflow = str(BIN / "qunflow")
        seconds = {
            "import_sqlalchemy": _median_seconds(
                [sys.executable, "-c", "import sqlalchemy"], env, args.repeat
            ),
            "version": _median_seconds([qunflow, "--version"], env, args.repeat),
            "help": _median_seconds([qunflow, "--help"], env, args.repeat),
            "contacts_list": _median_seconds(
                [qunflow, "contacts", "list", "--json"], env, args.repeat
            ),
        }
    base = seconds["import_sqlalchemy"]
    figures: dict[str, object] = {"bench": "cli", "repeat": args.repeat}
    for name, value in seconds.items():
        figures[f"{name}_seconds"] = round(value, 3)
    for name, goal in GOALS.items():
        figures[f"{name}_goal_met"] = seconds[name] < goal
    figures["baseline_seconds"] = round(base, 3)
    figures["ratio"] = round(seconds["contacts_list"] / base, 2)
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
