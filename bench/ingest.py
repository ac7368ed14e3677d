"""Ingest + dedupe throughput against a raw bulk load of the same file, and peak memory.

    python -m bench.ingest [--rows N] [--db sqlite|postgres] [--batch N]

The file is a peer-group member list (about 20% repeated people, messy phones, Chinese names)
written by crm.sample as it is generated. Baseline, same run, same database: the file's rows
loaded into an unindexed table (PostgreSQL: COPY FROM the CSV; SQLite: executemany).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, func, select, text

from crm.db import make_engine, transaction
from crm.ingest.service import ingest_path
from crm.migrate import upgrade
from crm.models import Contact
from crm.sample import SAMPLE_AS_OF, write_member_csv


@contextlib.contextmanager
def _database(kind: str, workdir: Path) -> Iterator[Engine]:
    if kind == "sqlite":
        eng = make_engine(f"sqlite:///{workdir / 'bench.db'}")
        upgrade(eng)
        yield eng
        eng.dispose()
        return
    url = os.environ.get("QUNFLOW_BENCH_POSTGRES_URL")
    if url:
        eng = make_engine(url)
        upgrade(eng)
        yield eng
        eng.dispose()
        return
    from tests.pgcluster import local_cluster

    with local_cluster() as server:
        eng = make_engine(server)
        upgrade(eng)
        yield eng
        eng.dispose()


def _baseline(eng: Engine, path: Path) -> float:
    """Seconds to bulk-load the same CSV into an unindexed table."""
    with eng.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_raw"))
        conn.execute(
            text(
                "CREATE TABLE bench_raw (grp text, name text, wechat text, phone text,"
                " joined text, note text)"
            )
        )
    start = time.perf_counter()
    with eng.begin() as conn:
        raw = conn.connection.driver_connection
        if eng.dialect.name == "postgresql":
            with (
                raw.cursor() as cur,
                cur.copy(  # type: ignore[union-attr]
                    "COPY bench_raw FROM STDIN WITH (FORMAT csv, HEADER true)"
                ) as cp,
                path.open("rb") as fh,
            ):
                while chunk := fh.read(1 << 20):
                    cp.write(chunk)
        else:
            import csv

            with path.open(encoding="utf-8", newline="") as fh:
                reader = csv.reader(fh)
                next(reader)
                raw.executemany("INSERT INTO bench_raw VALUES (?, ?, ?, ?, ?, ?)", reader)  # type: ignore[union-attr]
    elapsed = time.perf_counter() - start
    with eng.begin() as conn:
        conn.execute(text("DROP TABLE bench_raw"))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="qunflow-bench-") as tmp:
        workdir = Path(tmp)
        path = write_member_csv(workdir / "members.csv", args.rows, seed=args.seed)
        with _database(args.db, workdir) as eng:
            base = _baseline(eng, path)
            tracemalloc.start()
            start = time.perf_counter()
            report = ingest_path(
                eng, "peer-group", path, account="bench", now=SAMPLE_AS_OF, batch_size=args.batch
            )
            elapsed = time.perf_counter() - start
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            with transaction(eng) as s:
                contacts = int(s.scalar(select(func.count()).select_from(Contact)) or 0)
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {
        "bench": "ingest",
        "db": args.db,
        "rows": args.rows,
        "batch": args.batch,
        "contacts": contacts,
        "new_contacts": report.new_contacts,
        "matched": report.matched,
        "quarantined": report.quarantined,
        "ingest_seconds": round(elapsed, 2),
        "ingest_rows_per_s": round(args.rows / elapsed),
        "baseline_seconds": round(base, 3),
        "baseline_rows_per_s": round(args.rows / base),
        "ratio": round(base / elapsed, 4),
        "peak_traced_mb": round(peak / 2**20, 1),
        "maxrss_mb": round(maxrss_mb, 1),
    }
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
