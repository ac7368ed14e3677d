"""Ingest + dedupe throughput against a raw bulk load of the same file, and peak memory.

    python -m bench.ingest [--rows N] [--db sqlite|postgres] [--batch N]

The file is a peer-group member list (about 20% repeated people, messy phones, Chinese names)
written by crm.sample.data as it is generated. Baseline, same run, same database: the file's rows
loaded into an unindexed table (PostgreSQL: COPY FROM the CSV; SQLite: executemany).

The raw-COPY baseline writes one narrow row per record into a table with no index; an import
writes about six rows per record (raw record, contact, identities, touch) with their indexes
and keys. So the bench also measures the import's *write floor* (:mod:`bench.write_floor`):
the rows the import wrote, dumped, the tables emptied, and the rows loaded back into the same
tables with the same indexes, constraints and foreign keys, timed in the same run.
``write_floor_ratio`` = import seconds / floor seconds (goal at 1M rows on PostgreSQL: ≤ 2.0).

Besides wall-clock throughput it reports the CPU seconds this process spent ingesting (on a
busy machine wall time mostly measures the neighbours), on PostgreSQL the CPU seconds the
database's server processes spent (when they run on this machine: read from /proc), and the
peak resident memory of the process (ru_maxrss; compare it at 100k and 1M rows to see that
the file is streamed).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text

from bench import write_floor
from bench.common import CpuMeter, database, per_row_us
from crm.core.db import transaction
from crm.intake.pipeline import BATCH_SIZE, ingest_path
from crm.models import Contact
from crm.sample.data import SAMPLE_AS_OF, write_member_csv


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
        raw: Any = conn.connection.driver_connection
        if eng.dialect.name == "postgresql":
            with (
                raw.cursor() as cur,
                cur.copy("COPY bench_raw FROM STDIN WITH (FORMAT csv, HEADER true)") as cp,
                path.open("rb") as fh,
            ):
                while chunk := fh.read(1 << 20):
                    cp.write(chunk)
        else:
            import csv

            with path.open(encoding="utf-8", newline="") as fh:
                reader = csv.reader(fh)
                next(reader)
                raw.executemany("INSERT INTO bench_raw VALUES (?, ?, ?, ?, ?, ?)", reader)
    elapsed = time.perf_counter() - start
    with eng.begin() as conn:
        conn.execute(text("DROP TABLE bench_raw"))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--batch", type=int, default=BATCH_SIZE)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="qunflow-bench-") as tmp:
        workdir = Path(tmp)
        path = write_member_csv(workdir / "members.csv", args.rows, seed=args.seed)
        with database(args.db, workdir) as eng:
            meter = CpuMeter(eng)
            base = _baseline(eng, path)
            base_server = meter.server_seconds()
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            before = write_floor.snapshot(eng)
            meter = CpuMeter(eng)
            start = time.perf_counter()
            report = ingest_path(
                eng, "peer-group", path, account="bench", now=SAMPLE_AS_OF, batch_size=args.batch
            )
            elapsed = time.perf_counter() - start
            cpu = meter.client_seconds()
            ingest_server = meter.server_seconds()
            with transaction(eng) as s:
                contacts = int(s.scalar(select(func.count()).select_from(Contact)) or 0)
            # Peak memory of the import itself (the floor below holds its own copy of the rows).
            maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            floor = write_floor.measure(eng, before)
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
        "ingest_cpu_seconds": round(cpu, 2),
        "ingest_cpu_us_per_row": round(cpu / args.rows * 1e6, 1),
        "ingest_server_cpu_us_per_row": per_row_us(ingest_server, args.rows),
        "baseline_seconds": round(base, 3),
        "baseline_rows_per_s": round(args.rows / base),
        "baseline_server_cpu_us_per_row": per_row_us(base_server, args.rows),
        "ratio": round(base / elapsed, 4),
        "write_floor_seconds": round(floor.seconds, 2),
        "write_floor_rows": floor.rows,
        "write_floor_ratio": round(elapsed / floor.seconds, 2),
        "rss_before_ingest_mb": round(rss_before, 1),
        "peak_rss_mb": round(maxrss_mb, 1),
    }
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
