"""What every benchmark shares: a fresh migrated database of the kind asked for."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, text

from crm.core.db import make_engine
from crm.core.migrate import upgrade


@contextlib.contextmanager
def database(kind: str, workdir: Path, *, pool_size: int = 5) -> Iterator[Engine]:
    """SQLite in ``workdir``, or PostgreSQL: QUNFLOW_BENCH_POSTGRES_URL or a throwaway cluster."""
    if kind == "sqlite":
        with _migrated(f"sqlite:///{workdir / 'bench.db'}") as eng:
            yield eng
        return
    url = os.environ.get("QUNFLOW_BENCH_POSTGRES_URL")
    if url:
        with _migrated(url, pool_size=pool_size, max_overflow=4) as eng:
            yield eng
        return
    from tests.helpers.pgcluster import local_cluster

    with local_cluster() as server, _migrated(server, pool_size=pool_size, max_overflow=4) as eng:
        yield eng


@contextlib.contextmanager
def _migrated(url: str, **kwargs: int) -> Iterator[Engine]:
    eng = make_engine(url, **kwargs)
    try:
        upgrade(eng)
        yield eng
    finally:
        eng.dispose()


def _server_ticks(eng: Engine) -> dict[int, int] | None:
    """CPU clock ticks used so far by each server process of this database, if local."""
    if eng.dialect.name != "postgresql":
        return None
    with eng.connect() as conn:
        pids = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).scalars()
        ticks = {}
        try:
            for pid in pids:
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks[int(pid)] = int(stat[11]) + int(stat[12])  # utime + stime
        except (OSError, IndexError, ValueError):
            return None  # a remote server, or one this user cannot see
    return ticks


class CpuMeter:
    """CPU seconds this process and (local PostgreSQL) the database's server processes spend.

    On a machine whose cores are all busy, wall time follows the sum of both, so the split
    says where a run's time goes. Server processes are compared one by one, so connections
    opened during the run count from zero (one that closes before the end is not counted).
    """

    def __init__(self, eng: Engine) -> None:
        self.eng = eng
        self._server = _server_ticks(eng)
        self._client = time.process_time()

    def client_seconds(self) -> float:
        return time.process_time() - self._client

    def server_seconds(self) -> float | None:
        after = _server_ticks(self.eng)
        if self._server is None or after is None:
            return None
        ticks = sum(t - self._server.get(pid, 0) for pid, t in after.items())
        return ticks / os.sysconf("SC_CLK_TCK")


def per_row_us(seconds: float | None, rows: int) -> float | None:
    """Microseconds per row, rounded; None when the seconds are unknown."""
    return None if seconds is None or not rows else round(seconds / rows * 1e6, 1)
