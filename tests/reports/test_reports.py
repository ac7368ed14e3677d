"""Funnel report metrics against a hand-computed history, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from crm.core.db import transaction
from crm.core.errors import InputError
from crm.models import Touch
from crm.reports import (
    funnel_report,
    load_periods,
    make_window,
    report_tables,
    resolve_range,
)
from crm.reports.window import local_day, offset_segments
from tests.helpers.report_history import END, NOW, START, build_history


@pytest.fixture
def report(engine: Engine) -> dict:
    build_history(engine)
    with transaction(engine) as session:
        return funnel_report(session, start=START, end=END, now=NOW)


def by(rows: list[dict], key: str) -> dict:
    return {r[key]: {k: v for k, v in r.items() if k != key} for r in rows}


def test_window(report: dict) -> None:
    assert report["window"] == {
        "label": "2026-03-02..2026-03-08",
        "first_day": "2026-03-02",
        "last_day": "2026-03-08",
        "start": "2026-03-01T16:00:00+00:00",
        "end": "2026-03-08T16:00:00+00:00",
        "timezone": "Asia/Shanghai",
        "as_of": "2026-04-05T00:00:00+00:00",
        "cohort_start": "2026-01-11T16:00:00+00:00",
    }


def test_arrivals(report: dict) -> None:
    a = report["arrivals"]
    # c1..c6 touched (8 touches); c6 arrived in February, so 5 are new; c8/c9 are outside.
    assert a["totals"] == {"touches": 8, "uv": 6, "new_contacts": 5}
    assert by(a["by_kind"], "kind") == {
        "peer_group": {"touches": 2, "uv": 2, "new_contacts": 2},
        "qr_signup": {"touches": 4, "uv": 3, "new_contacts": 3},
        "self_media": {"touches": 2, "uv": 2, "new_contacts": 0},
    }
    # c2's touch at 07:00 Shanghai is still 03-02 in UTC: it counts on local day 03-03.
    assert [(d["day"], d["touches"], d["uv"], d["new_contacts"]) for d in a["by_day"]] == [
        ("2026-03-02", 1, 1, 1),
        ("2026-03-03", 2, 2, 1),
        ("2026-03-04", 2, 2, 2),
        ("2026-03-05", 2, 2, 0),
        ("2026-03-06", 1, 1, 1),
    ]
    assert len(a["by_day_kind"]) == 7
    assert {(d["day"], d["kind"]): d["uv"] for d in a["by_day_kind"]}[
        ("2026-03-05", "self_media")
    ] == 1
    assert [
        (r["label"], r["kind"], r["touches"], r["uv"], r["new_contacts"]) for r in a["by_dimension"]
    ] == [
        ("地推-张三", "qr_signup", 3, 2, 2),
        ("同行群A", "peer_group", 2, 2, 2),
        ("xhs · 小红书帖子1", "self_media", 2, 2, 0),
        ("地推-李四", "qr_signup", 1, 1, 1),
    ]


def test_contribution(report: dict) -> None:
    c = report["contribution"]
    assert c["totals"] == {
        "messages": 6,
        "shares": 2,
        "referrals": 1,
        "total": 9,
        "contributors": 3,
    }
    assert [(r["name"], r["messages"], r["shares"], r["referrals"]) for r in c["by_contact"]] == [
        ("联系人1", 3, 1, 1),
        ("联系人3", 2, 0, 0),
        ("联系人6", 1, 1, 0),
    ]
    assert [(r["name"], r["messages"], r["shares"], r["referrals"]) for r in c["by_group"]] == [
        ("普通群1", 5, 1, 0),
        ("活跃群1", 1, 1, 0),
        ("(none)", 0, 0, 1),
    ]
    # Credited to each contact's first-touch source (c6 came from the post in February).
    assert {r["label"]: (r["contributors"], r["total"]) for r in c["by_source"]} == {
        "同行群A": (1, 5),
        "xhs · 小红书帖子1": (1, 2),
        "地推-张三": (1, 2),
    }


def test_conversion(report: dict) -> None:
    v = report["conversion"]
    # c2's later move to active happens after as_of; c3 jumped active → paid (counts prospect).
    assert v["cohort"] == {
        "arrived": 5,
        "open": 4,
        "active": 2,
        "prospect": 2,
        "paid": 1,
        "rates": {"open": 0.8, "active": 0.5, "prospect": 1.0, "paid": 0.5},
        "paid_rate": 0.2,
    }
    assert {
        r["label"]: (r["arrived"], r["open"], r["active"], r["prospect"], r["paid"])
        for r in v["by_dimension"]
    } == {"同行群A": (2, 2, 1, 1, 0), "地推-张三": (2, 2, 1, 1, 1), "地推-李四": (1, 0, 0, 0, 0)}
    assert [
        (w["week"], w["arrived"], w["open"], w["active"], w["prospect"], w["paid"])
        for w in v["by_week"]
    ] == [
        ("2026-01-19", 1, 1, 1, 1, 1),
        ("2026-02-09", 1, 1, 1, 1, 0),
        ("2026-02-23", 1, 0, 0, 0, 0),
        ("2026-03-02", 5, 4, 2, 2, 1),
    ]
    assert {(m["from"], m["to"]): m["count"] for m in v["moves"]} == {
        (None, "open"): 4,
        ("open", "active"): 2,
        ("active", "prospect"): 2,
        ("active", "paid"): 1,
        ("open", None): 1,
        ("prospect", "paid"): 1,
    }
    # open→active: c1 48 h, c3 24 h; active→prospect: c1 60 h, c6 313 h 55 min;
    # prospect→paid: c7 33 days.
    assert v["median_hours"] == {
        "open->active": {"n": 2, "median": 36.0},
        "active->prospect": {"n": 2, "median": 186.96},
        "prospect->paid": {"n": 1, "median": 792.0},
    }


def test_retention(report: dict) -> None:
    cohorts = by(report["retention"]["cohorts"], "week")
    assert cohorts["2026-01-19"] == {
        "joined": 1,
        "present_14": 1,
        "present_14_rate": 1.0,
        "active_14": 1,
        "active_14_rate": 1.0,
        "present_30": 1,
        "present_30_rate": 1.0,
        "active_30": 0,
        "active_30_rate": 0.0,
    }
    # c6 left before day 14 (but was active that week) and came back before day 30.
    assert cohorts["2026-02-09"] == {
        "joined": 1,
        "present_14": 0,
        "present_14_rate": 0.0,
        "active_14": 1,
        "active_14_rate": 1.0,
        "present_30": 1,
        "present_30_rate": 1.0,
        "active_30": 1,
        "active_30_rate": 1.0,
    }
    # c1, c2, c3, c4 and c8 (joined Sunday 23:30); day 30 of c8 ends after as_of.
    assert cohorts["2026-03-02"] == {
        "joined": 5,
        "present_14": 3,
        "present_14_rate": 0.6,
        "active_14": 2,
        "active_14_rate": 0.4,
        "present_30": None,
        "present_30_rate": None,
        "active_30": None,
        "active_30_rate": None,
    }
    assert list(cohorts) == ["2026-01-19", "2026-02-09", "2026-03-02"]
    sources = {
        r["label"]: (
            r["joined"],
            (r["matured_14"], r["present_14"], r["active_14"]),
            (r["matured_30"], r["present_30"], r["active_30"]),
        )
        for r in report["retention"]["by_dimension"]
    }
    # First-touch sources: c7, c1, c2 → 同行群A; c6 → the post; c3, c4 → 张三; c8 → 李四,
    # whose day 30 has not come yet.
    assert sources == {
        "同行群A": (3, (3, 2, 2), (3, 2, 0)),
        "xhs · 小红书帖子1": (1, (1, 0, 1), (1, 1, 1)),
        "地推-张三": (2, (2, 1, 1), (2, 1, 1)),
        "地推-李四": (1, (1, 1, 0), (0, None, None)),
    }
    assert report["retention"]["by_dimension"][0]["present_14_rate"] == 0.6667


def test_retention_matures_later(engine: Engine) -> None:
    build_history(engine)
    with transaction(engine) as session:
        later = funnel_report(session, start=START, end=END, now=datetime(2026, 4, 8, tzinfo=UTC))
    week = by(later["retention"]["cohorts"], "week")["2026-03-02"]
    assert (week["present_30"], week["active_30"]) == (3, 1)


def test_sales(report: dict) -> None:
    s = report["sales"]
    assert s["totals"] == {
        "pool": 1,
        "holding": 2,
        "claims": 4,
        "assigned": 1,
        "won": 2,
        "lost": 1,
        "win_rate": 0.6667,
        "sla_breaches": 3,
        "sla_breaches_in_pool": 1,
    }
    assert by(s["by_user"], "username") == {
        "wang": {
            "user_id": s["by_user"][0]["user_id"],
            "holding": 1,
            "claims": 2,
            "assigned": 0,
            "won": 1,
            "lost": 0,
            "win_rate": 1.0,
            "sla_breaches": 1,
        },
        "li": {
            "user_id": s["by_user"][1]["user_id"],
            "holding": 1,
            "claims": 2,
            "assigned": 1,
            "won": 1,
            "lost": 1,
            "win_rate": 0.5,
            "sla_breaches": 1,
        },
    }


def test_followups(report: dict) -> None:
    f = report["followups"]
    rows = {(r["campaign"], r["channel"]): r for r in f["by_campaign"]}
    assert list(rows) == [("event-reminder", "wecom"), ("welcome", "email"), ("welcome", "wecom")]
    w = rows[("welcome", "wecom")]
    assert (w["sent"], w["deferred"], w["skipped"], w["opted_out"], w["total"]) == (2, 1, 2, 1, 5)
    e = rows[("event-reminder", "wecom")]
    # c3's reminder was skipped for want of marketing consent, not for an opt-out.
    assert (e["planned"], e["skipped"], e["awaiting_confirmation"], e["opted_out"]) == (1, 1, 1, 0)
    assert e["no_consent"] == 1 and w["no_consent"] == 0
    assert rows[("welcome", "email")]["failed"] == 1
    assert f["totals"] == {
        "planned": 1,
        "claimed": 0,
        "sent": 2,
        "failed": 1,
        "skipped": 3,
        "deferred": 1,
        "awaiting_confirmation": 1,
        "opted_out": 1,
        "no_consent": 1,
        "total": 9,
    }
    assert [(c["account"], c["action"], c["cap"], c["used"], c["headroom"]) for c in f["caps"]] == [
        ("op-1", "friend_add", 15, 0, 15),
        ("op-1", "group_join", 10, 7, 3),
        ("op-2", "message", 200, 50, 150),
    ]


def test_grouping_by_promoter(engine: Engine) -> None:
    build_history(engine)
    with transaction(engine) as session:
        rep = funnel_report(session, start=START, end=END, now=NOW, by="promoter")
    assert {
        r["key"]: (r["touches"], r["uv"], r["new_contacts"])
        for r in rep["arrivals"]["by_dimension"]
    } == {"张三": (3, 2, 2), "李四": (1, 1, 1), "(none)": (4, 3, 2)}
    assert {r["key"]: r["arrived"] for r in rep["conversion"]["by_dimension"]} == {
        "张三": 2,
        "李四": 1,
        "(none)": 2,
    }
    with transaction(engine) as session, pytest.raises(InputError, match="unknown grouping"):
        funnel_report(session, start=START, end=END, by="colour")


def test_report_is_json_and_tables_are_flat(report: dict) -> None:
    assert json.loads(json.dumps(report, ensure_ascii=False)) == report
    tables = report_tables(report)
    assert tables["funnel"][0] == {"stage": "arrived", "contacts": 5, "rate": None}
    for rows in tables.values():
        for row in rows:
            assert all(not isinstance(v, dict | list) for v in row.values())


def test_local_day_follows_daylight_saving(engine: Engine) -> None:
    """In a DST zone, the SQL day of each row is its true local day on both databases."""
    build_history(engine)
    zone = ZoneInfo("America/New_York")
    window = make_window(date(2026, 1, 1), date(2026, 4, 1), tz=zone, now=NOW)
    with transaction(engine) as session:
        rows = session.execute(
            select(Touch.touched_at, local_day(Touch.touched_at, window, window.start, window.end))
        ).all()
    assert len(rows) == 12
    for at, day in rows:
        assert day == at.astimezone(zone).date().isoformat()
    with transaction(engine) as session:
        rep = funnel_report(session, start=date(2026, 3, 1), end=date(2026, 3, 15), tz=zone)
    assert rep["arrivals"]["totals"]["touches"] == 10
    assert sum(d["touches"] for d in rep["arrivals"]["by_day"]) == 10


def test_offset_segments_find_the_transition() -> None:
    zone = ZoneInfo("America/New_York")
    start = datetime(2026, 3, 1, tzinfo=UTC)
    end = datetime(2026, 3, 20, tzinfo=UTC)
    assert offset_segments(zone, start, end) == [
        (datetime(2026, 3, 8, 7, 0, tzinfo=UTC), -300),
        (end, -240),
    ]
    assert offset_segments(ZoneInfo("Asia/Shanghai"), start, end) == [(end, 480)]


def test_resolve_range_and_periods(tmp_path: Path) -> None:
    now = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)  # 09:00 on 03-10 in Shanghai
    assert resolve_range(now=now) == (date(2026, 3, 9), date(2026, 3, 10), None)
    assert resolve_range(days=7, now=now) == (date(2026, 3, 3), date(2026, 3, 10), None)
    assert resolve_range(start_day=date(2026, 3, 1), now=now) == (
        date(2026, 3, 1),
        date(2026, 3, 10),
        None,
    )
    assert resolve_range(period="春节", now=now) == (
        date(2026, 2, 15),
        date(2026, 2, 24),
        "春节 2026",
    )
    with pytest.raises(InputError, match="unknown period 'nope'"):
        resolve_range(period="nope")
    with pytest.raises(InputError, match="must be after"):
        resolve_range(start_day=date(2026, 3, 5), end_day=date(2026, 3, 5))
    assert {p.name for p in load_periods()} >= {"spring-festival-2026", "double-11-2026"}
    bad = tmp_path / "p.toml"
    bad.write_text('[[period]]\nname = "x"\nstart = 2026-01-02\nend = 2026-01-01\n')
    with pytest.raises(InputError, match="ends before it starts"):
        load_periods(bad)


def test_manager_report_has_tables_and_charts(engine: Engine) -> None:
    from crm.reports.page import manager_report

    build_history(engine)
    with transaction(engine) as session:
        page = manager_report(session, str, start_day=START, end_day=END, by="group", now=NOW)
        expected = funnel_report(session, start=START, end=END, by="group", now=NOW)
    assert page["report"] == expected
    assert page["tables"] == report_tables(expected)
    assert set(page["charts"]) == {"funnel", "retention", "arrivals"}
    assert all(uri.startswith("data:image/png;base64,iVBOR") for uri in page["charts"].values())
    with transaction(engine) as session, pytest.raises(InputError):
        manager_report(session, str, period="nope")
    with transaction(engine) as session:  # a Chinese period title stays out of the charts
        spring = manager_report(session, str, period="春节", now=NOW)
    assert spring["report"]["window"]["label"] == "春节 2026"
    assert spring["report"]["window"]["first_day"] == "2026-02-15"
    # Nobody arrived in that period: those charts are not drawn rather than drawn empty.
    assert spring["charts"]["funnel"] is None and spring["charts"]["arrivals"] is None


def test_the_same_post_id_on_two_platforms_is_two_posts(engine: Engine) -> None:
    from crm.core.vocabulary import SourceKind
    from crm.intake.pipeline import ingest_items
    from crm.intake.records import RawItem, SourceSpec

    at = datetime(2026, 3, 5, 4, tzinfo=UTC)  # inside START..END
    for platform, phones in (("douyin", ["13800138000", "13800138001"]), ("xhs", ["13900139000"])):
        spec = SourceSpec(
            kind=SourceKind.SELF_MEDIA,
            key=f"{platform}:note-001",
            name="note-001",
            platform=platform,
            post="note-001",
        )
        items = [RawItem(record_key=p, payload={"phone": p}) for p in phones]
        ingest_items(engine, spec, items, origin="leads.csv", now=at)
    with transaction(engine) as session:
        by_post = funnel_report(session, start=START, end=END, now=NOW, by="post")
        by_source = funnel_report(session, start=START, end=END, now=NOW, by="source")
    assert {r["key"]: r["new_contacts"] for r in by_post["arrivals"]["by_dimension"]} == {
        "douyin · note-001": 2,
        "xhs · note-001": 1,
    }
    labels = sorted(r["label"] for r in by_source["arrivals"]["by_dimension"])
    assert labels == ["douyin · note-001", "xhs · note-001"]


def test_charts_are_drawn_once_per_distinct_numbers() -> None:
    import copy

    from crm.reports import charts
    from crm.reports.conversion import TIERS

    report = {
        "conversion": {"cohort": {"arrived": 9, **dict.fromkeys(TIERS, 3)}},
        "window": {
            "first_day": "2026-03-01",
            "last_day": "2026-03-07",
            "as_of": "2026-03-08T01:00:00+00:00",
        },
        "retention": {"cohorts": []},
        "arrivals": {"by_day_kind": [{"day": "2026-03-02", "kind": "qr_signup", "uv": 4}]},
        "unrelated": {"changes": 1},
    }
    charts._drawn.cache_clear()
    first = charts.render_charts(report, str)
    other_parts = copy.deepcopy(report)
    other_parts["unrelated"]["changes"] = 2
    other_parts["window"]["as_of"] = "2026-03-08T01:05:00+00:00"  # the same numbers, later
    assert charts.render_charts(other_parts, str) == first
    assert charts._drawn.cache_info().hits == 1
    more = copy.deepcopy(report)
    more["conversion"]["cohort"]["arrived"] = 10
    redrawn = charts.render_charts(more, str)
    assert charts._drawn.cache_info().misses == 2
    assert redrawn["funnel"] != first["funnel"] and redrawn["funnel"].startswith(b"\x89PNG")
    assert first["retention"] is None  # no cohorts: no empty chart
    assert charts.render_charts(more, lambda key: key.upper())["funnel"] != redrawn["funnel"]


def test_a_long_range_costs_what_its_data_costs(engine: Engine) -> None:
    # The manager page for 1900…2100 ran for 47 s on the demo: one statement per chunk of days
    # and an hourly walk of the range. The statements must not grow with the range, and the
    # figures of the data's own days must not change.
    from sqlalchemy import event

    build_history(engine)
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        with transaction(engine) as session:
            short = funnel_report(session, start=START, end=END, now=NOW)
        n_short = len(statements)
        statements.clear()
        with transaction(engine) as session:
            long = funnel_report(session, start=date(1900, 1, 1), end=date(2100, 1, 1), now=NOW)
        n_long = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert n_long == n_short
    assert max(len(s) for s in statements) < 200_000  # no statement spelling out every day
    with transaction(engine) as session:  # both ranges hold all of the data: the same figures
        wide = funnel_report(session, start=date(2000, 1, 1), end=date(2050, 1, 1), now=NOW)
    for section in ("arrivals", "retention", "conversion", "contribution"):
        assert {k: v for k, v in long[section].items() if k != "window"} == {
            k: v for k, v in wide[section].items() if k != "window"
        }, section
    assert short["arrivals"]["totals"]["touches"] > 0
