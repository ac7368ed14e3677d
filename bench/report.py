"""The full daily funnel report on a large history, against a plain COUNT(*)-by-day scan.

    python -m bench.report [--rows N] [--db sqlite|postgres] [--days D]

Generates N contacts arriving over 90 days from 200 sources, 10N events, tier changes
(all open, 30% active, 10% prospect, 3% paid), one membership each (20% left), a prospect
queue worked by 20 salespeople and N outbox rows — with set-based INSERT … SELECT over
generate_series (PostgreSQL; plain indexes rebuilt after each table, FK triggers skipped for
the generated, consistent rows) or a recursive CTE (SQLite). Then times
``funnel_report`` for the last day (and for the last ``--days`` days) next to the baseline:
``SELECT day, COUNT(*) FROM events GROUP BY day`` over the whole events table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from bench.common import database
from crm.core.db import transaction
from crm.models import Community, OperatorAccount, PlatformLimit, SourceInstance, User
from crm.reports import funnel_report

BASE = datetime(2026, 1, 1, tzinfo=UTC)
SPAN_DAYS = 90
KINDS = ("peer_group", "self_media", "qr_signup", "referral")


class _Sql:
    """The few dialect differences of the generator statements."""

    def __init__(self, pg: bool) -> None:
        self.pg = pg
        self.json = "'{}'::jsonb" if pg else "'{}'"

    def ts(self, seconds: str) -> str:
        """A UTC timestamp BASE + seconds, in each database's stored form."""
        if self.pg:
            return f"(TIMESTAMPTZ '2026-01-01 00:00:00+00' + ({seconds}) * INTERVAL '1 second')"
        return (
            f"(strftime('%Y-%m-%d %H:%M:%S', '2026-01-01 00:00:00', '+' || ({seconds}) "
            "|| ' seconds') || '.000000')"
        )

    def insert(self, table: str, cols: str, exprs: str, n: int, where: str = "") -> str:
        cond = f" WHERE {where}" if where else ""
        if self.pg:
            return (
                f"INSERT INTO {table} ({cols}) SELECT {exprs} "
                f"FROM generate_series(1, {n}) AS g(n){cond}"
            )
        return (
            f"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {n}) "
            f"INSERT INTO {table} ({cols}) SELECT {exprs} FROM g{cond}"
        )


def generate(eng: Engine, n: int) -> dict[str, float]:
    """Fill the database; returns seconds per table."""
    pg = eng.dialect.name == "postgresql"
    q = _Sql(pg)
    with transaction(eng) as s:
        s.add_all(
            SourceInstance(
                kind=KINDS[i % 4],
                key=f"src-{i}",
                name=f"source {i}",
                group_name=f"peer group {i % 40}" if i % 4 == 0 else None,
                post=f"post {i}" if i % 4 == 1 else None,
                promoter=f"promoter {i % 25}" if i % 4 == 2 else None,
                campaign=f"campaign {i % 5}",
            )
            for i in range(200)
        )
        s.add_all(Community(name=f"group {i}", tier="open") for i in range(50))
        s.add_all(User(username=f"sales{i}", role="sales", password_hash="x") for i in range(20))
        s.add_all(OperatorAccount(platform="wechat", handle=f"op{i}") for i in range(10))
        s.add(
            PlatformLimit(
                name="group joins",
                platform="wechat",
                action="group_join",
                limit=10,
                source="bench",
                effective_from=date(2020, 1, 1),
            )
        )
    now = q.ts("0")
    arrive = f"CAST(n AS BIGINT) * {SPAN_DAYS * 86400} / {n}"
    contact = f"(((n - 1) % {n}) + 1)"
    arrive_of = f"CAST({contact} AS BIGINT) * {SPAN_DAYS * 86400} / {n}"
    statements = {
        "contacts": q.insert(
            "contacts",
            "id, display_name, status, score_breakdown, first_seen_at, created_at, updated_at",
            f"n, 'contact ' || n, 'active', '[]', {q.ts(arrive)}, {now}, {now}",
            n,
        ),
        "touches": q.insert(
            "touches",
            "contact_id, source_instance_id, touched_at",
            f"{contact}, ((n * 7) % 200) + 1, "
            f"{q.ts(f'{arrive_of} + CASE WHEN n > {n} THEN 86400 * (n % 20) ELSE 0 END')}",
            n + n // 5,
        ),
        "events": q.insert(
            "events",
            "contact_id, kind, occurred_at, community_id, payload, created_at",
            f"{contact}, CASE n % 10 WHEN 0 THEN 'activity_attended' WHEN 1 THEN 'referral' "
            "WHEN 2 THEN 'share' WHEN 3 THEN 'share' ELSE 'message' END, "
            f"{q.ts(f'{arrive_of} + 600 + (CAST(n AS BIGINT) * 7919) % 3456000')}, "
            f"({contact} % 50) + 1, {q.json}, {now}",
            10 * n,
        ),
        "tier_changes": q.insert(
            "tier_changes",
            "contact_id, from_tier, to_tier, reason, changed_at",
            f"{contact}, CASE WHEN n <= {n} THEN NULL WHEN n <= {2 * n} THEN 'open' "
            f"WHEN n <= {3 * n} THEN 'active' ELSE 'prospect' END, "
            f"CASE WHEN n <= {n} THEN 'open' WHEN n <= {2 * n} THEN 'active' "
            f"WHEN n <= {3 * n} THEN 'prospect' ELSE 'paid' END, 'bench', "
            f"{q.ts(f'{arrive_of} + 300 + 86400 * ((n - 1) / {n}) * 3')}",
            4 * n,
            where=f"n <= {n} OR (n <= {2 * n} AND n % 10 < 3) OR (n <= {3 * n} AND n % 10 < 1)"
            f" OR (n % 100 < 3)",
        ),
        "memberships": q.insert(
            "memberships",
            "community_id, contact_id, role, joined_at, left_at",
            f"(n % 50) + 1, n, 'member', {q.ts(f'{arrive} + 600')}, "
            f"CASE WHEN n % 5 = 0 THEN {q.ts(f'{arrive} + 600 + 86400 * 12')} END",
            n,
        ),
        "queue_items": q.insert(
            "queue_items",
            "contact_id, status, open_key, assignee_id, sla_due_at, created_at, updated_at,"
            " closed_at",
            f"n, CASE n % 7 WHEN 0 THEN 'pool' WHEN 1 THEN 'won' WHEN 2 THEN 'lost' "
            "ELSE 'claimed' END, CASE WHEN n % 7 IN (1, 2) THEN NULL ELSE n END, "
            f"CASE WHEN n % 7 = 0 THEN NULL ELSE (n % 20) + 1 END, "
            f"{q.ts(f'{arrive} + 86400 * 6')}, {now}, {now}, "
            f"CASE WHEN n % 7 IN (1, 2) THEN {q.ts(f'{arrive} + 86400 * 8')} END",
            n,
            where="n % 10 = 0",
        ),
        "queue_actions": (
            "INSERT INTO queue_actions (item_id, user_id, action, at) "
            "SELECT id, assignee_id, 'claim', sla_due_at FROM queue_items "
            "WHERE assignee_id IS NOT NULL"
        ),
        "outbox": q.insert(
            "outbox",
            "campaign, step, contact_id, channel, template, context, state, due_at,"
            " idempotency_key, created_at, updated_at",
            "'campaign ' || (n % 5), 's1', n, CASE WHEN n % 2 = 0 THEN 'wecom' ELSE 'email' END,"
            f" 't', {q.json}, CASE n % 4 WHEN 0 THEN 'sent' WHEN 1 THEN 'planned' "
            f"WHEN 2 THEN 'skipped' ELSE 'deferred' END, {q.ts(f'{arrive} + 3600')}, "
            f"'bench:' || n, {now}, {now}",
            n,
        ),
    }
    timings: dict[str, float] = {}
    for table, sql in statements.items():
        t0 = time.perf_counter()
        with eng.begin() as conn:
            indexes = _drop_indexes(conn, table) if pg else []
            if pg:
                # Generated rows are consistent by construction: skip per-row FK triggers.
                conn.execute(text("SET LOCAL session_replication_role = replica"))
                conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
            conn.execute(text(sql))
            for definition in indexes:  # building once is far cheaper than row by row
                conn.execute(text(definition))
        timings[table] = time.perf_counter() - t0
    with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    if pg:  # contacts were inserted with explicit ids
        with eng.begin() as conn:
            conn.execute(text("SELECT setval('contacts_id_seq', (SELECT max(id) FROM contacts))"))
    return timings


def _drop_indexes(conn: Any, table: str) -> list[str]:
    """Drop a table's plain (non-constraint) indexes; returns their definitions."""
    rows = conn.execute(
        text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t AND indexname "
            "NOT IN (SELECT conname FROM pg_constraint)"
        ),
        {"t": table},
    ).all()
    for name, _ in rows:
        conn.execute(text(f'DROP INDEX "{name}"'))
    return [definition for _, definition in rows]


def baseline(eng: Engine) -> tuple[float, int]:
    """Seconds for COUNT(*) of all events by UTC day (a plain full scan and aggregate)."""
    day = "CAST(occurred_at AS DATE)" if eng.dialect.name == "postgresql" else "date(occurred_at)"
    t0 = time.perf_counter()
    with eng.connect() as conn:
        rows = conn.execute(text(f"SELECT {day}, COUNT(*) FROM events GROUP BY 1")).all()
    return time.perf_counter() - t0, len(rows)


def timed_report(eng: Engine, days: int) -> tuple[float, dict[str, Any]]:
    end = (BASE + timedelta(days=SPAN_DAYS)).date()
    now = BASE + timedelta(days=SPAN_DAYS, hours=2)
    t0 = time.perf_counter()
    with transaction(eng) as session:
        report = funnel_report(session, start=end - timedelta(days=days), end=end, now=now)
    return time.perf_counter() - t0, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000, help="contacts (events: 10x)")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--days", type=int, default=30, help="also time a report over D days")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, database(args.db, Path(tmp)) as eng:
        t0 = time.perf_counter()
        loads = generate(eng, args.rows)
        load_s = time.perf_counter() - t0
        base_s, base_days = baseline(eng)
        daily_s, daily = timed_report(eng, 1)
        long_s, _ = timed_report(eng, args.days)
        base2_s, _ = baseline(eng)  # again, so cache warmth favours neither side
    base_best = min(base_s, base2_s)
    figures = {
        "db": args.db,
        "contacts": args.rows,
        "events": 10 * args.rows,
        "load_s": round(load_s, 2),
        "baseline_count_by_day_s": round(base_best, 3),
        "baseline_days": base_days,
        "daily_report_s": round(daily_s, 3),
        f"report_{args.days}d_s": round(long_s, 3),
        "daily_uv": daily["arrivals"]["totals"]["uv"],
        "ratio": round(daily_s / base_best, 2) if base_best else None,
        f"ratio_{args.days}d": round(long_s / base_best, 2) if base_best else None,
    }
    width = max(len(k) for k in figures)
    for table, secs in loads.items():
        print(f"{'load ' + table:<{width}}  {secs:.2f} s")
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
