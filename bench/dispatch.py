"""Dispatch throughput: the full outbox worker against bare SKIP LOCKED claim-and-mark.

    python -m bench.dispatch [--rows N] [--accounts 1000] [--workers 8] [--db postgres|sqlite]

Data: N due outbox rows over ``--accounts`` operator accounts (``null`` platform), each with a
daily message cap of 90% of its share, so caps bind. Timed in the same run, same database, both
from a vacuumed and analyzed outbox, each worker (PostgreSQL) on one connection of its own:

- ``baseline``: every worker loops on ``UPDATE outbox … WHERE id = ANY(ARRAY(SELECT … LIMIT n
  FOR UPDATE SKIP LOCKED)) RETURNING id`` then ``UPDATE outbox SET state = 'sent' WHERE id =
  ANY(…)``, each in its own transaction (SQLite: ``id IN (…)``, claims in BEGIN IMMEDIATE);
- ``dispatch``: ``crm.outreach.dispatch.dispatch`` (claim with render data, opt-out check,
  conditional cap upsert, render, send to the null channel, mark and attempt log) until idle.

Cap violations (an account sending more than its cap, or a ledger row above its cap) and
duplicates (a key the provider saw twice) must be 0. ``ratio`` = dispatch seconds ÷ baseline
seconds for the same number of rows (goal ≤ 2.0). CPU per message is reported for this process
(the workers are its threads) and, on a local PostgreSQL, for the server's processes: when the
machine's cores are saturated, wall time follows their sum.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, text

from bench.common import CpuMeter, database, per_row_us
from crm.core.db import prepared_statements
from crm.core.settings import get_settings
from crm.models import Contact, OperatorAccount, OutboxMessage, PlatformLimit, UTCDateTime
from crm.outreach.channels.base import OutgoingMessage, SendResult
from crm.outreach.channels.local import NullChannel
from crm.outreach.dispatch import dispatch

NOW = datetime(2026, 11, 20, 4, tzinfo=UTC)


class CountingNull(NullChannel):
    """The null provider, keeping every idempotency key it saw (counted after the run)."""

    def __init__(self) -> None:
        self.keys: list[str] = []  # list.append is atomic: no lock on the send path

    def send(self, message: OutgoingMessage) -> SendResult:
        self.keys.append(message.idempotency_key)
        return super().send(message)

    def duplicates(self) -> int:
        """Sends beyond the first of each key."""
        return len(self.keys) - len(set(self.keys))


def load(eng: Engine, rows: int, accounts: int) -> dict[int, int]:
    """Accounts with caps, contacts and due outbox rows; returns the cap per account id."""
    per = max(rows // accounts, 1)
    cap = max(int(per * 0.9), 1)
    with eng.begin() as conn:
        conn.execute(
            insert(OperatorAccount),
            [{"platform": "null", "handle": f"acct{i}"} for i in range(accounts)],
        )
        ids = [r[0] for r in conn.execute(text("SELECT id FROM operator_accounts ORDER BY id"))]
        conn.execute(
            insert(PlatformLimit),
            [
                {
                    "name": "bench",
                    "platform": "null",
                    "scope": "account",
                    "action": "message",
                    "window": "day",
                    "limit": cap,
                    "source": "bench",
                    "effective_from": NOW.date(),
                    "account_id": None,
                }
            ],
        )
        for start in range(0, rows, 10_000):
            n = min(10_000, rows - start)
            conn.execute(
                insert(Contact),
                [{"display_name": f"c{start + i}", "tier": "open"} for i in range(n)],
            )
        contact_ids = [r[0] for r in conn.execute(text("SELECT id FROM contacts ORDER BY id"))]
        for start in range(0, rows, 10_000):
            batch = []
            for i in range(start, min(start + 10_000, rows)):
                batch.append(
                    {
                        "campaign": "bench",
                        "step": "s",
                        "contact_id": contact_ids[i],
                        "channel": "null",
                        "template": "welcome",
                        "account_id": ids[i % accounts],
                        "due_at": NOW,
                        "idempotency_key": f"bench-{i}",
                        "context": {"tz": "Asia/Shanghai"},
                    }
                )
            conn.execute(insert(OutboxMessage), batch)
    return dict.fromkeys(ids, cap)


def reset(eng: Engine) -> None:
    with eng.begin() as conn:
        conn.execute(
            text(
                "UPDATE outbox SET state = 'planned', claimed_by = NULL, claim_expires_at = NULL, "
                "attempts = 0, sending_at = NULL, due_at = :now, sent_at = NULL, reason = NULL"
            ).bindparams(bindparam("now", type_=UTCDateTime())),
            {"now": NOW},
        )
        conn.execute(text("DELETE FROM cap_usage"))
        conn.execute(text("DELETE FROM outbox_attempts"))
    vacuum(eng)


def vacuum(eng: Engine) -> None:
    """Both runs start from a vacuumed, analyzed outbox (a fresh load is slower to scan)."""
    if eng.dialect.name == "postgresql":
        with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE outbox"))


def baseline(eng: Engine, workers: int, batch: int) -> tuple[float, int]:
    pg = eng.dialect.name == "postgresql"
    # On PostgreSQL ``id = ANY(ARRAY(…))`` keeps both updates index lookups by id (``IN
    # (subquery)`` plans a hash join over a scan of the whole outbox).
    pick = (
        "SELECT id FROM outbox WHERE state = 'planned' AND due_at <= :now "
        f"ORDER BY due_at LIMIT :n{' FOR UPDATE SKIP LOCKED' if pg else ''}"
    )
    claim = text(
        "UPDATE outbox SET state = 'claimed', claimed_by = :w, claim_expires_at = :now "
        + (f"WHERE id = ANY(ARRAY({pick}))" if pg else f"WHERE id IN ({pick})")
        + " RETURNING id"
    ).bindparams(bindparam("now", type_=UTCDateTime()))
    done = text(
        "UPDATE outbox SET state = 'sent', claimed_by = NULL, sent_at = :now "
        + ("WHERE id = ANY(:ids)" if pg else "WHERE id IN :ids")
    ).bindparams(bindparam("ids", expanding=not pg), bindparam("now", type_=UTCDateTime()))
    total = Counter[str]()
    mu = threading.Lock()

    def loop(w: int, claim_tx: Any, mark_tx: Any) -> int:
        n = 0
        while True:
            with claim_tx() as conn:
                ids = [r[0] for r in conn.execute(claim, {"w": f"b{w}", "now": NOW, "n": batch})]
            if not ids:
                return n
            with mark_tx() as conn:
                conn.execute(done, {"ids": ids, "now": NOW})
            n += len(ids)

    def work(w: int) -> None:
        if pg:  # like dispatch: each worker keeps one connection, with cached plans
            with eng.connect() as conn, prepared_statements(conn):

                @contextlib.contextmanager
                def tx() -> Iterator[Connection]:
                    with conn.begin():
                        yield conn

                n = loop(w, tx, tx)
        else:  # like dispatch: claims inside BEGIN IMMEDIATE, pooled connections
            n = loop(w, eng.execution_options(sqlite_begin="IMMEDIATE").begin, eng.begin)
        with mu:
            total["sent"] += n

    start = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, total["sent"]


def violations(eng: Engine, caps: dict[int, int]) -> int:
    with eng.connect() as conn:
        sent = conn.execute(
            text("SELECT account_id, COUNT(*) FROM outbox WHERE state = 'sent' GROUP BY 1")
        ).all()
        over_ledger = conn.execute(text("SELECT COUNT(*) FROM cap_usage WHERE used > cap")).scalar()
    return sum(1 for a, n in sent if n > caps[a]) + int(over_ledger or 0)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    args = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="qunflow-bench-"))
    settings = get_settings(data_dir=workdir)
    with database(args.db, workdir, pool_size=args.workers + 4) as eng:
        t0 = time.perf_counter()
        caps = load(eng, args.rows, args.accounts)
        load_s = time.perf_counter() - t0
        vacuum(eng)
        meter = CpuMeter(eng)
        base_s, base_n = baseline(eng, args.workers, args.batch)
        base_cpu = meter.client_seconds(), meter.server_seconds()
        reset(eng)
        null = CountingNull()
        meter = CpuMeter(eng)
        t0 = time.perf_counter()
        result = dispatch(
            eng,
            workers=args.workers,
            now=NOW,
            channels={"null": null},
            batch=args.batch,
            settings=settings,
        )
        disp_s = time.perf_counter() - t0
        disp_cpu = meter.client_seconds(), meter.server_seconds()
        handled = result.sent + result.deferred + result.failed + result.skipped
        figures = {
            "db": args.db,
            "rows": args.rows,
            "accounts": args.accounts,
            "workers": args.workers,
            "batch": args.batch,
            "load_s": round(load_s, 2),
            "baseline_s": round(base_s, 2),
            "baseline_msgs_per_s": round(base_n / base_s, 1),
            "baseline_client_cpu_us_per_msg": per_row_us(base_cpu[0], base_n),
            "baseline_server_cpu_us_per_msg": per_row_us(base_cpu[1], base_n),
            "dispatch_s": round(disp_s, 2),
            "dispatch_msgs_per_s": round(handled / disp_s, 1),
            "dispatch_client_cpu_us_per_msg": per_row_us(disp_cpu[0], handled),
            "dispatch_server_cpu_us_per_msg": per_row_us(disp_cpu[1], handled),
            "sent": result.sent,
            "deferred_by_caps": result.deferred,
            "cap_violations": violations(eng, caps),
            "duplicates": null.duplicates(),
            "ratio": round(disp_s / base_s, 2),
        }
    width = max(len(k) for k in figures)
    print(f"{'figure':<{width}}  value")
    for k, v in figures.items():
        print(f"{k:<{width}}  {v}")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
