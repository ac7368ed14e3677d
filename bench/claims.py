"""Queue claims under contention: the claim service against a bare SKIP LOCKED loop.

    python -m bench.claims [--rows N] [--workers 32] [--db postgres|sqlite]

Data: N prospects with pool items (SLA spread over a day, three priorities) and one sales
user per worker with claim limits out of the way. Timed in the same run, same database:

- ``service``: every worker calls ``crm.sales.claims.claim_next`` until the pool is empty (locks
  the person, checks the holding and daily claim limits, sweeps expired leases, claims one item,
  writes a queue action and an audit entry, one transaction);
- ``baseline``: the pool is reset and every worker loops on the bare statement
  ``UPDATE queue_items … WHERE id IN (SELECT id … FOR UPDATE SKIP LOCKED LIMIT n) RETURNING id``.

Double claims (an item handed to two people) must be 0 in both. ``ratio`` = baseline
claims/s ÷ service claims/s (how many times the bare statement outruns the service).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from bench.common import database
from crm.core.settings import get_settings
from crm.sales.claims import claim_next
from crm.sales.users import hash_password

NOW = datetime(2026, 11, 20, 4, tzinfo=UTC)

BASELINE = (
    "UPDATE queue_items SET status = 'claimed', assignee_id = :uid, "
    "lease_expires_at = :exp, updated_at = :now "
    "WHERE id IN (SELECT id FROM queue_items WHERE status = 'pool' "
    "ORDER BY sla_due_at, priority DESC, created_at LIMIT :n{lock}) RETURNING id"
)


def _t(eng: Engine, value: datetime) -> Any:
    # SQLite keeps naive UTC text; PostgreSQL takes the aware value.
    if eng.dialect.name == "postgresql":
        return value
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


def generate_prospects(eng: Engine, rows: int, *, now: datetime = NOW) -> None:
    """N prospects with a touch from one of three sources and a pool item, set-wise."""
    pg = eng.dialect.name == "postgresql"
    series = (
        "generate_series(1, :n) AS g(i)"
        if pg
        else "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n) "
        "SELECT i FROM s) AS g"
    )
    empty_list = "CAST('[]' AS JSONB)" if pg else "'[]'"
    empty_doc = "CAST('{}' AS JSONB)" if pg else "'{}'"
    minutes = (
        "CAST(:t AS TIMESTAMPTZ) + (id % 1440) * INTERVAL '1 minute'"
        if pg
        else "strftime('%Y-%m-%d %H:%M:%f', :t, '+' || (id % 1440) || ' minutes')"
    )
    t = _t(eng, now)
    with eng.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO source_instances (kind, key, name, promoter, post, extra, created_at)"
                f" VALUES ('qr_signup', 'bench-qr', '地推 bench', 'zhang', NULL, {empty_doc}, :t),"
                f" ('self_media', 'bench-post', '小红书 bench', NULL, 'post-1', {empty_doc}, :t),"
                f" ('peer_group', 'bench-peer', '同行群 bench', 'li', NULL, {empty_doc}, :t)"
            ),
            {"t": t},
        )
        conn.execute(
            text(
                "INSERT INTO contacts (display_name, status, tier, score, score_breakdown, "
                "locale, warnings, first_seen_at, created_at, updated_at) "
                f"SELECT '客户' || i, 'active', 'prospect', i % 100, {empty_list}, 'zh-CN', 0, "
                f":t, :t, :t FROM {series}"
            ),
            {"n": rows, "t": t},
        )
        conn.execute(
            text(
                "INSERT INTO touches (contact_id, source_instance_id, touched_at) "
                "SELECT c.id, s.id, :t FROM contacts c JOIN source_instances s "
                "ON s.key = CASE c.id % 3 WHEN 0 THEN 'bench-qr' WHEN 1 THEN 'bench-post' "
                "ELSE 'bench-peer' END"
            ),
            {"t": t},
        )
        conn.execute(
            text(
                "INSERT INTO queue_items (contact_id, status, open_key, sla_due_at, priority, "
                f"created_at, updated_at) SELECT id, 'pool', id, {minutes}, id % 3, :t, :t "
                "FROM contacts"
            ),
            {"t": t},
        )
        if pg:
            conn.execute(text("ANALYZE"))


def add_sales(eng: Engine, n: int) -> list[int]:
    """N sales users with claim limits out of the way (one password hash shared)."""
    digest = hash_password("bench-password")
    with eng.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (username, role, password_hash, active, locale, "
                "daily_claim_cap, holding_cap, created_at) "
                "VALUES (:u, 'sales', :h, TRUE, 'zh-CN', 1000000, 1000000, :t)"
            ),
            [{"u": f"bench{i}", "h": digest, "t": _t(eng, NOW)} for i in range(n)],
        )
        return [int(r[0]) for r in conn.execute(text("SELECT id FROM users ORDER BY id"))]


def _run(workers: list[int], claim: Callable[[int], list[int]]) -> dict[str, Any]:
    lat: list[float] = []
    got: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    start_gate = threading.Barrier(len(workers))

    def work(uid: int) -> None:
        mine_lat: list[float] = []
        mine: list[int] = []
        start_gate.wait()
        try:
            while True:
                t0 = time.perf_counter()
                ids = claim(uid)
                mine_lat.append(time.perf_counter() - t0)
                if not ids:
                    break
                mine.extend(ids)
        except BaseException as exc:  # reported after the run
            errors.append(exc)
        with lock:
            lat.extend(mine_lat)
            got.extend(mine)

    threads = [threading.Thread(target=work, args=(u,)) for u in workers]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    seconds = time.perf_counter() - t0
    if errors:
        raise errors[0]
    lat.sort()
    doubles = sum(1 for n in Counter(got).values() if n > 1)
    return {
        "claims": len(got),
        "seconds": round(seconds, 3),
        "claims_per_s": round(len(got) / seconds, 1) if seconds else 0.0,
        "p50_ms": round(lat[len(lat) // 2] * 1000, 2) if lat else 0.0,
        "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 2) if lat else 0.0,
        "double_claims": doubles,
    }


def _reset(eng: Engine) -> None:
    with eng.begin() as conn:
        conn.execute(
            text(
                "UPDATE queue_items SET status = 'pool', assignee_id = NULL, "
                "lease_expires_at = NULL"
            )
        )
        if eng.dialect.name == "postgresql":
            conn.execute(text("ANALYZE queue_items"))


def bench(eng: Engine, rows: int, workers: int, batch: int) -> dict[str, Any]:
    """Generate, run the service and the baseline, and check for double claims."""
    t0 = time.perf_counter()
    generate_prospects(eng, rows)
    users = add_sales(eng, workers)
    setup = time.perf_counter() - t0

    zone = get_settings().zone

    def service(uid: int) -> list[int]:
        r = claim_next(eng, uid, NOW, zone=zone)
        return [] if r is None else [r.item_id]

    svc = _run(users, service)
    with eng.connect() as conn:
        svc["double_claims_db"] = int(
            conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT item_id FROM queue_actions "
                    "WHERE action = 'claim' GROUP BY item_id HAVING count(*) > 1) d"
                )
            ).scalar_one()
        )
    _reset(eng)
    pg = eng.dialect.name == "postgresql"
    stmt = text(BASELINE.format(lock=" FOR UPDATE SKIP LOCKED" if pg else ""))
    exp = NOW + timedelta(hours=4)
    bind = eng if pg else eng.execution_options(sqlite_begin="IMMEDIATE")

    def bare(uid: int) -> list[int]:
        with bind.begin() as conn:
            params = {"uid": uid, "exp": _t(eng, exp), "now": _t(eng, NOW), "n": batch}
            return [int(r[0]) for r in conn.execute(stmt, params)]

    base = _run(users, bare)
    return {"setup_s": round(setup, 2), "service": svc, "baseline": base}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=5000, help="pool items to claim")
    parser.add_argument("--workers", type=int, default=32, help="concurrent claimers")
    parser.add_argument("--batch", type=int, default=1, help="LIMIT n of the baseline statement")
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="qunflow-bench-") as tmp,
        database(args.db, Path(tmp), pool_size=args.workers) as eng,
    ):
        result = bench(eng, args.rows, args.workers, args.batch)
    svc, base = result["service"], result["baseline"]
    print(f"claims: {args.rows} pool items, {args.workers} claimers, {args.db}")
    print(
        f"{'':10} {'claims':>8} {'seconds':>8} {'claims/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'double':>7}"
    )
    for name, r in (("service", svc), ("baseline", base)):
        print(
            f"{name:10} {r['claims']:>8} {r['seconds']:>8} {r['claims_per_s']:>9} "
            f"{r['p50_ms']:>8} {r['p99_ms']:>8} {r['double_claims']:>7}"
        )
    ratio = round(base["claims_per_s"] / svc["claims_per_s"], 2) if svc["claims_per_s"] else None
    print(f"ratio (baseline claims/s ÷ service claims/s): {ratio}")
    print(
        json.dumps(
            {
                "bench": "claims",
                "db": args.db,
                "rows": args.rows,
                "workers": args.workers,
                "service_claims_per_s": svc["claims_per_s"],
                "service_p99_ms": svc["p99_ms"],
                "service_double_claims": svc["double_claims"] + svc["double_claims_db"],
                "baseline_claims_per_s": base["claims_per_s"],
                "baseline_p99_ms": base["p99_ms"],
                "baseline_double_claims": base["double_claims"],
                "ratio": ratio,
            }
        )
    )


if __name__ == "__main__":
    main()
