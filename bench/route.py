"""Score + route throughput against one hand-written SQL statement computing a base score.

    python -m bench.route [--rows N] [--events-per N] [--db postgres|sqlite] [--batch N]

Data: N contacts from three source kinds, about ``--events-per`` events each (messages, a
tenth of them with intent words, shares, referrals, activities) spread over 60 days, and one
open and one active group with room for everybody. Timed in the same run, same database:

- ``route (first)``: every contact enters open and is invited to a group (tier history,
  memberships and outbox rows for all of them);
- ``route (settle n)``: runs until nothing moves (promotions go one tier per run);
- ``route (steady)``: a settled run: every contact scored, nothing to write, no moves;
- ``route (next day)``: a day later, after the baseline (scores restored first): decayed
  engagement changes many scores, which are written;
- ``baseline``: one ``UPDATE contacts … FROM (SELECT … GROUP BY contact_id)`` writing a
  weighted count score (the same base signals without decay, caps or breakdowns).

- ``first baseline``: before the first route, hand-written SQL writing what the first run
  writes: the base score and tier of every contact (one ``UPDATE … FROM``), then one
  ``INSERT … SELECT`` each for the tier changes, the memberships and the invitation outbox
  rows, and the group's member count; timed, then rolled back (and on PostgreSQL the tables
  vacuumed) so the first route starts from the same state.

``ratio`` = steady route seconds / baseline seconds (goal: within 2x); ``next_day_ratio`` the
same for the next-day run; ``first_ratio`` = first route seconds / first baseline seconds
(goal: within 3x).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from bench.common import database
from crm.routing.route import route
from crm.routing.rules import load_rules

NOW = datetime(2026, 11, 20, 4, tzinfo=UTC)

BASELINE_PG = """
UPDATE contacts SET score = s.score
FROM (
    SELECT contact_id,
           LEAST(SUM(CASE WHEN kind = 'message' AND lower(payload->>'message') LIKE '%价格%'
                          THEN 10 ELSE 0 END), 40)
         + SUM(CASE kind WHEN 'message' THEN 1 WHEN 'share' THEN 4 ELSE 0 END)
         + SUM(CASE kind WHEN 'referral' THEN 15 WHEN 'activity_attended' THEN 8 ELSE 0 END)
         + SUM(CASE WHEN kind IN ('message', 'share', 'activity_attended') THEN 3 ELSE 0 END)
           AS score
    FROM events GROUP BY contact_id
) s
WHERE contacts.id = s.contact_id
"""

BASELINE_SQLITE = """
UPDATE contacts SET score = s.score
FROM (
    SELECT contact_id,
           MIN(SUM(CASE WHEN kind = 'message'
                         AND lower(json_extract(payload, '$.message')) LIKE '%价格%'
                        THEN 10 ELSE 0 END), 40)
         + SUM(CASE kind WHEN 'message' THEN 1 WHEN 'share' THEN 4 ELSE 0 END)
         + SUM(CASE kind WHEN 'referral' THEN 15 WHEN 'activity_attended' THEN 8 ELSE 0 END)
         + SUM(CASE WHEN kind IN ('message', 'share', 'activity_attended') THEN 3 ELSE 0 END)
           AS score
    FROM events GROUP BY contact_id
) s
WHERE contacts.id = s.contact_id
"""


FIRST_PG = (
    BASELINE_PG.replace(
        "SET score = s.score", "SET score = s.score, tier = 'open', updated_at = :now"
    ),
    "INSERT INTO tier_changes (contact_id, from_tier, to_tier, reason, reason_key,"
    " reason_params, rules_version, score, actor, changed_at) SELECT id, NULL, 'open',"
    " 'entered the funnel', 'tier.why.entered', '{}', 'baseline', score, 'route', :now"
    " FROM contacts WHERE status = 'active'",
    "INSERT INTO memberships (community_id, contact_id, role, invited_at)"
    " SELECT g.id, c.id, 'member', :now FROM contacts c JOIN communities g ON g.name = 'bench-open'"
    " WHERE c.status = 'active'",
    "INSERT INTO outbox (campaign, step, contact_id, channel, template, community_id, action,"
    " context, state, due_at, attempts, idempotency_key, created_at, updated_at)"
    " SELECT 'tier-invite', 'open', c.id, 'wechat', 'tier_invitation', g.id, 'group_invite',"
    " json_build_object('tier', 'open', 'group', g.name, 'qr_code_url', g.qr_code_url),"
    " 'planned', :now, 0, 'tier-invite:open:' || c.id, :now, :now"
    " FROM contacts c JOIN communities g ON g.name = 'bench-open' WHERE c.status = 'active'",
    "UPDATE communities SET member_count = (SELECT count(*) FROM memberships m"
    " WHERE m.community_id = communities.id) WHERE name = 'bench-open'",
)
FIRST_SQLITE = (
    BASELINE_SQLITE.replace(
        "SET score = s.score", "SET score = s.score, tier = 'open', updated_at = :now"
    ),
    *(q.replace("json_build_object", "json_object") for q in FIRST_PG[1:]),
)


def _first_baseline(eng: Engine) -> float:
    """Seconds for the hand-written first run; its writes are rolled back."""
    pg = eng.dialect.name == "postgresql"
    now: object = (
        NOW if pg else NOW.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    )
    with eng.connect() as conn:
        start = time.perf_counter()
        for sql in FIRST_PG if pg else FIRST_SQLITE:
            conn.execute(text(sql), {"now": now})
        seconds = time.perf_counter() - start
        conn.rollback()
    if pg:
        with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE contacts, tier_changes, memberships, outbox"))
    return seconds


def _generate(eng: Engine, rows: int, per: int) -> int:
    """Contacts, touches, events and groups, generated inside the database."""
    pg = eng.dialect.name == "postgresql"
    seen = (NOW - timedelta(days=61)).replace(tzinfo=None).isoformat(sep=" ")
    with eng.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO source_instances (kind, key, name, extra, created_at) VALUES "
                "('peer_group', 'bench', 'bench peer group', '{}', :t), "
                "('self_media', 'bench', 'bench post', '{}', :t), "
                "('qr_signup', 'bench', 'bench stand', '{}', :t)"
            ),
            {"t": seen},
        )
        series = (
            "generate_series(1, :n) AS g(i)"
            if pg
            else "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n)"
            " SELECT i FROM s) AS g"
        )
        conn.execute(
            text(
                "INSERT INTO contacts (id, display_name, status, score, score_breakdown, locale,"
                " warnings, first_seen_at, created_at, updated_at) "
                f"SELECT i, 'c' || i, 'active', 0, '[]', 'zh-CN', 0, :t, :t, :t FROM {series}"
            ),
            {"n": rows, "t": seen},
        )
        # A WeChat id each: a contact nothing can reach is not invited to a group.
        conn.execute(
            text(
                "INSERT INTO identities (contact_id, kind, value, flags, created_at) "
                f"SELECT i, 'wechat_id', 'wx' || i, '{{}}', :t FROM {series}"
            ),
            {"n": rows, "t": seen},
        )
        conn.execute(
            text(
                "INSERT INTO touches (contact_id, source_instance_id, touched_at) "
                f"SELECT i, 1 + i % 3, :t FROM {series}"
            ),
            {"n": rows, "t": seen},
        )
        # Event e of contact c: kind and age follow from (c, e), so runs are comparable.
        kind = (
            "CASE WHEN e % 10 = 9 THEN 'share' WHEN e % 10 = 8 AND c % 5 = 0 THEN 'referral' "
            "WHEN e % 10 = 7 AND c % 4 = 0 THEN 'activity_attended' ELSE 'message' END"
        )
        message = "CASE WHEN (c + e) % 10 = 0 THEN '请问价格多少' ELSE '谢谢分享' END"
        if pg:
            conn.execute(
                text(
                    "INSERT INTO events (contact_id, kind, occurred_at, payload, created_at) "
                    f"SELECT c, {kind}, :now - make_interval(days => (c * 7 + e * 13) % 60), "
                    f"jsonb_build_object('message', {message}), :now "
                    "FROM generate_series(1, :n) AS a(c), generate_series(1, :per) AS b(e)"
                ),
                {"n": rows, "per": per, "now": NOW},
            )
            conn.execute(text("SELECT setval('contacts_id_seq', :n)"), {"n": rows})
            conn.execute(text("ANALYZE"))
        else:
            conn.execute(
                text(
                    "WITH RECURSIVE a(c) AS (SELECT 1 UNION ALL SELECT c + 1 FROM a WHERE c < :n),"
                    " b(e) AS (SELECT 1 UNION ALL SELECT e + 1 FROM b WHERE e < :per) "
                    "INSERT INTO events (contact_id, kind, occurred_at, payload, created_at) "
                    f"SELECT c, {kind}, datetime(:now, '-' || ((c * 7 + e * 13) % 60) || ' days'),"
                    f" json_object('message', {message}), :now FROM a, b"
                ),
                {"n": rows, "per": per, "now": NOW.replace(tzinfo=None).isoformat(sep=" ")},
            )
        expires = (NOW + timedelta(days=7)).replace(tzinfo=None).isoformat(sep=" ")
        for tier in ("open", "active", "prospect"):
            conn.execute(
                text(
                    "INSERT INTO communities (name, platform, tier, theme, capacity,"
                    " qr_join_limit, member_count, qr_code_url, qr_expires_at, position,"
                    " archived, created_at) VALUES (:name, 'wechat', :tier, 'discussion', :n,"
                    " :n, 0, 'https://qr.example/bench', :exp, 0, false, :t)"
                ),
                {"name": f"bench-{tier}", "tier": tier, "n": rows, "exp": expires, "t": seen},
            )
        return int(conn.execute(text("SELECT count(*) FROM events")).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=100_000, help="contacts")
    parser.add_argument("--events-per", type=int, default=10, help="events per contact")
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--batch", type=int, default=20_000, help="contacts per batch")
    args = parser.parse_args()
    rules = load_rules()
    with tempfile.TemporaryDirectory() as tmp, database(args.db, Path(tmp)) as eng:
        start = time.perf_counter()
        events = _generate(eng, args.rows, args.events_per)
        generate_s = time.perf_counter() - start

        first_base_s = _first_baseline(eng)
        start = time.perf_counter()
        first = route(eng, rules=rules, now=NOW, batch_size=args.batch).as_dict()
        first_s = time.perf_counter() - start

        # Promotions go one tier per run: run until nothing moves, then time the daily run.
        settle: list[tuple[str, float, dict[str, object]]] = []
        for step in range(1, 4):
            start = time.perf_counter()
            moved = route(
                eng, rules=rules, now=NOW + timedelta(hours=step), batch_size=args.batch
            ).as_dict()
            settle.append((f"route (settle {step})", time.perf_counter() - start, moved))
            if not moved["moves"]:
                break

        start = time.perf_counter()
        steady = route(
            eng, rules=rules, now=NOW + timedelta(hours=5), batch_size=args.batch
        ).as_dict()
        steady_s = time.perf_counter() - start

        start = time.perf_counter()
        with eng.begin() as conn:
            conn.execute(text(BASELINE_PG if args.db == "postgres" else BASELINE_SQLITE))
        baseline_s = time.perf_counter() - start

        # The next day every event is a day older: decayed engagement changes many scores.
        # (The baseline overwrote the scores: a run at the steady time restores them first.)
        route(eng, rules=rules, now=NOW + timedelta(hours=5), batch_size=args.batch)
        start = time.perf_counter()
        next_day = route(
            eng, rules=rules, now=NOW + timedelta(days=1, hours=5), batch_size=args.batch
        ).as_dict()
        next_day_s = time.perf_counter() - start

    ratio = steady_s / baseline_s if baseline_s else None
    print(f"database            {args.db}")
    print(f"contacts            {args.rows:>12,}")
    print(f"events              {events:>12,}   (generated in {generate_s:.1f} s)")
    print(f"{'run':<20}{'seconds':>10}{'contacts/s':>14}  moves")
    for name, secs, result in (
        ("route (first)", first_s, first),
        *settle,
        ("route (steady)", steady_s, steady),
        ("route (next day)", next_day_s, next_day),
    ):
        moves = ", ".join(f"{k} {v}" for k, v in dict(result["moves"]).items()) or "none"
        print(f"{name:<20}{secs:>10.2f}{args.rows / secs:>14,.0f}  {moves}")
    print(f"{'baseline SQL':<20}{baseline_s:>10.2f}{args.rows / baseline_s:>14,.0f}")
    print(f"{'first baseline SQL':<20}{first_base_s:>10.2f}{args.rows / first_base_s:>14,.0f}")
    print(f"first ratio (first route / first baseline): {first_s / first_base_s:.2f}x")
    print(f"ratio (steady route / baseline): {ratio:.2f}x" if ratio else "ratio: n/a")
    print(
        json.dumps(
            {
                "bench": "route",
                "db": args.db,
                "rows": args.rows,
                "events": events,
                "first_route_s": round(first_s, 3),
                "steady_route_s": round(steady_s, 3),
                "next_day_route_s": round(next_day_s, 3),
                "baseline_s": round(baseline_s, 3),
                "first_baseline_s": round(first_base_s, 3),
                "first_ratio": round(first_s / first_base_s, 2),
                "contacts_per_s": round(args.rows / steady_s),
                "first_moves": first["moves"],
                "steady_moves": steady["moves"],
                "placed": first["placed"],
                "ratio": round(ratio, 2) if ratio else None,
                "next_day_ratio": round(next_day_s / baseline_s, 2) if baseline_s else None,
            }
        )
    )


if __name__ == "__main__":
    main()
