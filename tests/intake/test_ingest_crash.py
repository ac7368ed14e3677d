"""A killed import (kill -9 in the middle of a batch) loses nothing and duplicates nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from sqlalchemy import func, select

from crm.core.db import make_engine, transaction
from crm.intake.pipeline import ingest_path
from crm.models import Contact, Identity, RawRecord, Touch
from crm.sample.data import SAMPLE_AS_OF, write_member_csv

# Runs the import and SIGKILLs itself at the end of the third batch's transaction: its raw
# records, contacts, identities and touches are written, the commit is not.
SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from sqlalchemy import event
    from crm.core.db import make_engine
    from crm.intake.pipeline import ingest_path
    from crm.sample.data import SAMPLE_AS_OF

    engine = make_engine(sys.argv[1])
    seen = {"commits": 0}

    @event.listens_for(engine, "commit")
    def _kill(conn):
        seen["commits"] += 1
        if seen["commits"] == 3:
            os.kill(os.getpid(), signal.SIGKILL)

    ingest_path(engine, "peer-group", sys.argv[2], now=SAMPLE_AS_OF, batch_size=200)
    """
)


def _counts(url: str) -> dict[str, int]:
    eng = make_engine(url)
    with transaction(eng) as s:
        out = {
            m.__tablename__: int(s.scalar(select(func.count()).select_from(m)) or 0)
            for m in (Contact, Identity, Touch, RawRecord)
        }
        out["pending"] = int(
            s.scalar(select(func.count()).where(RawRecord.status == "pending")) or 0
        )
    eng.dispose()
    return out


def test_kill_9_mid_import_then_rerun(db_url: str, tmp_path: Path) -> None:
    path = write_member_csv(tmp_path / "members.csv", 1000, seed=11)
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, db_url, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    crashed = _counts(db_url)
    # Two committed batches of 200 rows (a row repeated inside a batch is stored once).
    assert 380 <= crashed["raw_records"] <= 400
    assert crashed["touches"] == crashed["raw_records"]
    assert crashed["pending"] == 0

    eng = make_engine(db_url)
    report = ingest_path(eng, "peer-group", path, now=SAMPLE_AS_OF, batch_size=200)
    eng.dispose()
    assert report.read == 1000 and report.skipped_duplicates >= crashed["raw_records"]
    recovered = _counts(db_url)

    # A clean import of the same file into an empty database gives the same result.
    clean_url = f"sqlite:///{tmp_path / 'clean.db'}"
    from crm.core.migrate import upgrade

    clean = make_engine(clean_url)
    upgrade(clean)
    ingest_path(clean, "peer-group", path, now=SAMPLE_AS_OF, batch_size=1000)
    clean.dispose()
    assert recovered == _counts(clean_url)
    assert recovered["touches"] == recovered["raw_records"]
    assert recovered["pending"] == 0
