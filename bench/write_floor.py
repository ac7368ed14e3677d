"""What the rows an import wrote cost to write again, with the same indexes, keys and checks.

``snapshot`` counts every table before the work; ``measure`` then dumps exactly the rows the
work added (the tables were empty before it: a table that already held rows is refused, so
the floor never counts rows the work did not write), empties those tables in one committed
statement, and loads the rows back in foreign-key order in one transaction, timed: PostgreSQL
with COPY, SQLite with executemany. Emptying and loading are separate transactions so
PostgreSQL cannot skip WAL for tables created or truncated in the loading transaction.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, func, select

from crm.models import Base


@dataclass(frozen=True)
class Floor:
    seconds: float
    rows: int
    tables: dict[str, int]


def snapshot(eng: Engine) -> dict[str, int]:
    """Rows per table now."""
    with eng.connect() as conn:
        return {
            t.name: int(conn.scalar(select(func.count()).select_from(t)) or 0)
            for t in Base.metadata.sorted_tables
        }


def measure(eng: Engine, before: dict[str, int]) -> Floor:
    """Seconds to write again the rows added since ``before`` (which is left as it was)."""
    after = snapshot(eng)
    written = [t for t in Base.metadata.sorted_tables if after[t.name] > before[t.name]]
    held = [t.name for t in written if before[t.name]]
    if held:
        raise RuntimeError(f"tables held rows before the work, cannot isolate its rows: {held}")
    load = _copy_back if eng.dialect.name == "postgresql" else _executemany_back
    seconds = load(eng, written)
    if snapshot(eng) != after:
        raise RuntimeError("the rows loaded back differ from the rows the work wrote")
    return Floor(
        seconds, sum(after[t.name] for t in written), {t.name: after[t.name] for t in written}
    )


def _copy_back(eng: Engine, tables: list[Table]) -> float:
    with tempfile.TemporaryDirectory(prefix="qunflow-floor-") as tmp:
        files = {t.name: Path(tmp) / f"{t.name}.copy" for t in tables}
        with eng.begin() as conn:
            cur: Any = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            for t in tables:
                with files[t.name].open("wb") as fh, cur.copy(f"COPY {t.name} TO STDOUT") as cp:
                    for block in cp:
                        fh.write(block)
            names = ", ".join(t.name for t in tables)
            # CASCADE reaches only tables the work left empty: the snapshot check below says so.
            cur.execute(f"TRUNCATE {names} CASCADE")
        start = time.perf_counter()
        with eng.begin() as conn:
            cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            for t in tables:  # parents first: every foreign key is checked as rows arrive
                with files[t.name].open("rb") as fh, cur.copy(f"COPY {t.name} FROM STDIN") as cp:
                    while chunk := fh.read(1 << 20):
                        cp.write(chunk)
        return time.perf_counter() - start


def _executemany_back(eng: Engine, tables: list[Table]) -> float:
    dumped: dict[str, list[tuple[Any, ...]]] = {}
    with eng.connect() as conn:
        raw: Any = conn.connection.driver_connection  # autocommit: BEGIN and COMMIT are ours
        for t in tables:
            dumped[t.name] = raw.execute(f"SELECT * FROM {t.name}").fetchall()
        # Emptying with foreign keys on would scan the unindexed referencing columns once per
        # deleted row; the same rows go back below, with every key checked.
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            raw.execute("BEGIN")
            for t in reversed(tables):
                raw.execute(f"DELETE FROM {t.name}")
            raw.execute("COMMIT")
        finally:
            raw.execute("PRAGMA foreign_keys=ON")
    start = time.perf_counter()
    with eng.begin() as conn:
        raw = conn.connection.driver_connection
        for t in tables:
            marks = ", ".join("?" * len(dumped[t.name][0]))
            raw.executemany(f"INSERT INTO {t.name} VALUES ({marks})", dumped[t.name])
    return time.perf_counter() - start
