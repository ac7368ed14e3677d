"""What every benchmark shares: a fresh migrated database of the kind asked for."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine

from crm.db import make_engine
from crm.migrate import upgrade


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
    from tests.pgcluster import local_cluster

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
