"""Render time of the sales queue page with many prospects, next to its bare SQL query.

    python -m bench.queue_page [--rows 100000] [--db postgres|sqlite] [--repeat 15]

Data: N prospects with a source touch and a pool item (see ``bench.claims``). A logged-in
salesperson requests ``/queue`` through the whole app (session, CSRF token, filters, query,
template); timed per variant: the pool by SLA, by score, filtered by source kind and score,
a deep page, and "my queue". ``baseline``: one hand-written SELECT of the pool's first page
(same joins, ORDER BY and LIMIT). ``ratio`` = median page time of the default pool view ÷
median baseline time.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from bench.claims import NOW, add_sales, database, generate_prospects
from crm.core.settings import get_settings
from crm.sales.claims import claim_next

VARIANTS = {
    "pool by SLA": "/queue?view=pool",
    "pool by score desc": "/queue?view=pool&sort=score&desc=1",
    "pool qr_signup, score 50-90": (
        "/queue?view=pool&source_kind=qr_signup&min_score=50&max_score=90"
    ),
    "pool page 200": "/queue?view=pool&page=200",
    "my queue": "/queue?view=mine",
}

BASELINE = (
    "SELECT q.id, q.contact_id, q.status, q.sla_due_at, c.display_name, c.tier, c.score "
    "FROM queue_items q JOIN contacts c ON c.id = q.contact_id "
    "WHERE q.status = 'pool' ORDER BY q.sla_due_at, q.priority DESC, q.created_at, q.id "
    "LIMIT 51"
)


def _time(fn: Any, repeat: int) -> list[float]:
    fn()  # warm caches and compiled statements
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def bench(eng: Engine, rows: int, repeat: int) -> dict[str, Any]:
    """Generate, log in, time each page variant and the bare query."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from flows.web.app import create_app

    t0 = time.perf_counter()
    generate_prospects(eng, rows)
    users = add_sales(eng, 2)
    setup = time.perf_counter() - t0
    # The second salesperson holds 30 prospects, so "my queue" has rows.
    settings = get_settings(secret_key="bench-secret-0123456789")
    for _ in range(30):
        claim_next(eng, users[1], NOW, zone=settings.zone)
    app = create_app(settings, eng)
    client = TestClient(app, follow_redirects=False)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    r = client.post(
        "/login",
        data={"username": "bench1", "password": "bench-password", "csrf_token": token.group(1)},
    )
    assert r.status_code == 303, r.text
    pages: dict[str, dict[str, float]] = {}
    for name, url in VARIANTS.items():

        def get(url: str = url) -> None:
            resp = client.get(url)
            assert resp.status_code == 200, resp.text[:300]

        ms = _time(get, repeat)
        pages[name] = {
            "median_ms": round(statistics.median(ms), 1),
            "p95_ms": round(sorted(ms)[int(len(ms) * 0.95) - 1], 1),
        }

    def bare() -> None:
        with eng.connect() as conn:
            conn.execute(text(BASELINE)).all()

    base = _time(bare, repeat)
    return {
        "setup_s": round(setup, 1),
        "pages": pages,
        "baseline_median_ms": round(statistics.median(base), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=100_000, help="prospects in the queue")
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--repeat", type=int, default=15, help="requests per variant")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="qunflow-bench-") as tmp,
        database(args.db, Path(tmp)) as eng,
    ):
        result = bench(eng, args.rows, args.repeat)
    print(f"queue page: {args.rows} prospects, {args.db}, {args.repeat} requests per variant")
    print(f"{'variant':32} {'median ms':>10} {'p95 ms':>8}")
    for name, r in result["pages"].items():
        print(f"{name:32} {r['median_ms']:>10} {r['p95_ms']:>8}")
    print(f"{'baseline (bare SELECT)':32} {result['baseline_median_ms']:>10}")
    default = result["pages"]["pool by SLA"]["median_ms"]
    ratio = (
        round(default / result["baseline_median_ms"], 1) if result["baseline_median_ms"] else None
    )
    print(f"ratio (pool page ÷ bare SELECT): {ratio}")
    print(
        json.dumps(
            {
                "bench": "queue_page",
                "db": args.db,
                "rows": args.rows,
                "pages_median_ms": {k: v["median_ms"] for k, v in result["pages"].items()},
                "baseline_median_ms": result["baseline_median_ms"],
                "ratio": ratio,
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
