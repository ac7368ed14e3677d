"""XLSX zip bombs are refused fast and in little memory: time and peak RSS of the import process.

    python -m bench.input_limits [--rows N] [--db sqlite|postgres]

Builds on disk a workbook whose sheet expands to 1 GB, and one whose shared strings expand to
460 MB, then runs ``qunflow ingest peer-group`` on each in its own process and reports how
long the refusal took, the peak resident memory of that process (its rusage, as
``resource.getrusage(RUSAGE_CHILDREN)`` reports it, taken per child with ``os.wait4``), its
exit code and its one line of error. Baseline, same run: the same command importing a normal
member list of N rows. The goal: each bomb refused with one clear error, under 300 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import database
from tests.helpers.xlsx_bombs import cells_bomb, member_list, strings_bomb

GOAL_MB = 300
_CHILD = "from flows.cli import main; main()"


def _run(path: Path, url: str) -> dict[str, Any]:
    """One import in a child process: seconds, peak RSS (MB), exit code, last stderr line."""
    env = {**os.environ, "QUNFLOW_DATABASE_URL": url}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, "ingest", "peer-group", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = err.strip().splitlines()
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: kilobytes
        "exit": proc.returncode,
        "stderr_lines": len(lines),
        "message": lines[-1] if lines else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows of the normal file")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = {
            "baseline": member_list(work / "members.xlsx", args.rows),
            "cells_bomb_1gb": cells_bomb(work / "cells_bomb.xlsx", 1024**3),
            "strings_bomb_460mb": strings_bomb(work / "strings_bomb.xlsx", 460 * 1024**2),
        }
        with database(args.db, work) as eng:
            url = eng.url.render_as_string(hide_password=False)
            results = {name: _run(path, url) for name, path in files.items()}
        sizes = {name: path.stat().st_size for name, path in files.items()}
    print(f"{'file':<20} {'on disk':>10} {'seconds':>8} {'peak RSS':>10} {'exit':>5}  message")
    for name, r in results.items():
        print(
            f"{name:<20} {sizes[name] / 1024:>8,.0f}KB {r['seconds']:>8.2f}"
            f" {r['peak_rss_mb']:>8.1f}MB {r['exit']:>5}  {r['message'][:90]}"
        )
    base = results["baseline"]["peak_rss_mb"]
    bombs = {k: v for k, v in results.items() if k != "baseline"}
    worst = max(v["peak_rss_mb"] for v in bombs.values())
    ok = all(v["exit"] == 2 and v["stderr_lines"] == 1 for v in bombs.values())
    summary = {
        "bench": "input_limits",
        "db": args.db,
        "rows": args.rows,
        "baseline_rss_mb": base,
        "baseline_seconds": results["baseline"]["seconds"],
        **{f"{k}_rss_mb": v["peak_rss_mb"] for k, v in bombs.items()},
        **{f"{k}_seconds": v["seconds"] for k, v in bombs.items()},
        "ratio": round(worst / base, 2) if base else None,  # worst bomb's peak RSS / baseline's
        "refused_in_one_line": ok,
        "under_goal": worst < GOAL_MB,
    }
    print(f"goal: every bomb refused with one line (exit 2) under {GOAL_MB} MB")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
