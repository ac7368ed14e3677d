"""Stored sentences and run summaries in words: tier-move reasons as the prospect page and
`contacts show` say them, and the demo and route summaries in the team's language."""

from __future__ import annotations

import re
from string import Formatter

from crm.routing.tier_reasons import SENTENCES, TierReason, typed, why, won
from flows.i18n import keyed_text, translator
from flows.summaries import funnel_summary_lines, route_summary_lines

SNAKE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")

SUMMARY = {
    "contacts": 12,
    "raw_records": 20,
    "duplicate_records": 3,
    "merged": 1,
    "removed": 2,
    "by_source": {"peer_group": 7, "self_media": 5},
    "by_tier": {"open": 6, "active": 4, "unplaced": 2},
    "followups": {"planned_total": 4, "by_state": {"planned": 3, "sent": 1}},
    "prospect_queue": 2,
    "quarantined": 1,
    "this_run": {
        "totals": {
            "read": 20,
            "new_contacts": 12,
            "matched": 7,
            "skipped_duplicates": 0,
            "quarantined": 1,
            "already_quarantined": 0,
            "events": 0,
        },
        "routed": {"moves": {"new->open": 12, "open->active": 4}, "placed": 10},
        "planned": {"planned": 4},
    },
}
ROUTE = {
    "dry_run": True,
    "rules_version": "2026-11",
    "scored": 12,
    "batches": 1,
    "moves": {"open->active": 4},
    "placed": 3,
    "pending_placement": {"paid": 1},
    "waiting_address": {},
    "queued": 2,
}


def test_stored_tier_reasons_read_in_words_and_typed_ones_stay():
    zh, en = translator("zh"), translator("en")

    def said(t, w):
        return keyed_text(t, w.key, w.stored_params, w.stored_text)

    assert said(zh, why(TierReason.SCORE_UP, score=45, at=40)) == "分数 45 ≥ 升级线 40"
    assert said(zh, why(TierReason.SCORE_DOWN, score=30, at=45)) == "分数 30 < 保级线 45"
    assert said(zh, why(TierReason.REMOVED_SILENT, days=90)) == "移出：沉默 90 天"
    assert said(zh, won("签了年卡")) == "销售成交：签了年卡"
    assert said(en, why(TierReason.ENTERED)) == "entered the funnel"
    assert said(zh, typed("老板说先升上来")) == "老板说先升上来"
    assert said(en, typed("boss said so")) == "boss said so"
    assert keyed_text(zh, None, None, None) == ""
    # Every reason the rules write has its words in both languages, every parameter filled.
    for key, sentence in SENTENCES.items():
        params = {name: 7 for _, name, _, _ in Formatter().parse(sentence) if name}
        for t in (zh, en):
            text = keyed_text(t, key, params, None)
            assert text != key and "{" not in text and "=7" not in text, text


def test_the_demo_and_route_summaries_speak_chinese_with_the_same_figures():
    zh = translator("zh")
    lines = funnel_summary_lines(SUMMARY, zh)
    text = "\n".join(lines + route_summary_lines(ROUTE, zh("run.route.title"), zh))
    assert "普通 → 活跃 4" in text and "同行群 7" in text and "未分级 2" in text
    assert "读取 20 行" in text and "试运行" in text and "付费 1" in text
    assert not SNAKE.search(text) and "run." not in text and "tier." not in text, text


def test_the_english_summary_keeps_its_sentences():
    lines = funnel_summary_lines(SUMMARY, translator("en"))
    assert lines[0].startswith("contacts: 12 active from 20 raw records;")
    assert lines[3].startswith(
        "this run: read 20 rows: 12 new contacts, 7 matched (0 already imported), "
        "1 newly quarantined (0 already quarantined); moves "
    )


def test_the_sign_up_page_names_the_campaign_never_by_its_slug():
    from flows.web.public import _campaign_title

    zh, en = translator("zh"), translator("en")
    assert _campaign_title(zh, "welcome-new") == "入群欢迎"  # the catalog's name
    assert _campaign_title(en, "welcome-new") == "Welcome to the group"
    assert _campaign_title(zh, "春季试听课") == "春季试听课"  # a name typed on the code
    assert _campaign_title(zh, "spring-expo") is None  # the page says 活动报名
    assert _campaign_title(zh, None) is None


def test_the_alerts_artifact_names_each_alert_in_the_team_language():
    from datetime import UTC, datetime

    from crm.reports.alerts import OpenAlert, OpenAlerts
    from flows.summaries import alerts_markdown

    alert = OpenAlert(1, "no_group_room", "paid", "3 wait", datetime.now(UTC), {"waiting": 3})
    text = alerts_markdown(OpenAlerts(total=2, items=[alert]), translator("zh"))
    assert "群已满" in text and "付费" in text and "还有 1 条" in text, text
    assert not SNAKE.search(text.replace("qunflow alerts list", "")), text
