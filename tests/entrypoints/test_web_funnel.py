"""The manager's funnel dashboard, accounts and quarantine pages in words, and the CSV export."""

from __future__ import annotations

import csv
import io
import re

from sqlalchemy import update

from crm.core.db import transaction
from crm.intake.reasons import Reason, why
from crm.models import SourceInstance
from flows.i18n import translator
from flows.i18n.quarantine_reasons import quarantine_reason_text, reason_count_text
from flows.web.dashboard import Column, Table, safe_cell, table_csv
from tests.entrypoints.test_web import app, login, world  # noqa: F401  (fixtures)

SNAKE = re.compile(r"\b[a-z]+_[a-z_]+\b")


def _visible(html: str) -> str:
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r"<img[^>]*>|<[^>]+>", " ", html)
    return re.sub(r"\s+", " ", html)


def test_report_words_come_from_the_catalog() -> None:
    assert translator("en")("table.tier_step_hours") == "Hours per tier step"
    assert translator("zh")("col.active_14_rate") == "14 天活跃率"


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted() -> None:
    for bad in ('=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(bad) == "'" + bad
    assert safe_cell("王小明") == "王小明" and safe_cell("12.5%") == "12.5%"
    table = Table("t", "表", [Column("label", "=名称"), Column("uv", "人数")], [["=1+1", "3"]])
    body = table_csv(table)
    assert body.startswith("\ufeff")
    assert list(csv.reader(io.StringIO(body[1:]))) == [["'=名称", "人数"], ["'=1+1", "3"]]


def test_reasons_read_in_the_page_language() -> None:
    zh, en = translator("zh"), translator("en")
    time = why(Reason.UNREADABLE_TIME, value="上周三")
    said = quarantine_reason_text(zh, time.key, time.stored_params, time.text)
    assert said == "无法识别的时间：“上周三”"
    assert quarantine_reason_text(en, time.key, time.stored_params, time.text) == time.text
    kind = why(Reason.UNKNOWN_EVENT, kind="dance")
    assert quarantine_reason_text(zh, kind.key, kind.params, kind.text) == "未知的事件类型：dance"
    # Rows quarantined before reasons had keys read as stored.
    assert quarantine_reason_text(zh, None, None, "something old") == "something old"
    assert reason_count_text(zh, kind.code) == "未知的事件类型"
    assert reason_count_text(zh, "already_quarantined") == "此前已隔离"
    assert reason_count_text(zh, "a file's own error") == "a file's own error"


def test_funnel_dashboard_in_chinese_and_english(app, world, engine):  # noqa: F811
    mia, _ = login(app, "mia")
    zh = mia.get("/manage/funnel?period=7d")
    assert zh.status_code == 200
    text = _visible(zh.text)
    for heading in ("按来源类型的到达", "各阶段用时（小时）", "账号额度剩余", "概览", "下载 CSV"):
        assert heading in text
    assert "最近 30 天" in text and "春节 2026" in text and "自定义" in text
    assert not SNAKE.findall(text), SNAKE.findall(text)
    assert re.search(r"\d+\.\d%", text) and not re.search(r"\b0\.\d{3,}\b", text)
    en = _visible(mia.get("/manage/funnel?period=30d&lang=en").text)
    assert "Arrivals by source kind" in en and "Funnel report" in en
    assert not SNAKE.findall(en), SNAKE.findall(en)
    empty = mia.get("/manage/funnel?period=spring-festival-2026&lang=zh")
    assert empty.status_code == 200 and "这段时间没有数据" in empty.text
    assert 'src="data:image/png' in zh.text
    custom = mia.get("/manage/funnel?period=custom&start=2026-03-01&end=2026-03-01")
    assert custom.status_code == 200 and "2026-03-01 – 2026-03-01" in custom.text
    assert mia.get("/manage/funnel?period=custom&start=2026-03-01").status_code == 400
    assert mia.get("/manage/funnel?period=yesteryear").status_code == 400


def test_funnel_table_downloads_as_safe_csv(app, world, engine):  # noqa: F811
    with transaction(engine) as s:
        s.execute(update(SourceInstance).values(name='=HYPERLINK("http://evil","x")'))
    mia, _ = login(app, "mia")
    r = mia.get("/manage/funnel.csv?table=arrivals_by_source&period=7d")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert rows[0][:3] == ["编号", "名称", "来源类型"]
    labels = [row[1] for row in rows[1:]]
    assert '\'=HYPERLINK("http://evil","x")' in labels
    assert not [label for label in labels if label[:1] in "=+-@"]
    assert mia.get("/manage/funnel.csv?table=nope&period=today").status_code == 400


def test_accounts_page_headers_in_words(app, world):  # noqa: F811
    mia, _ = login(app, "mia")
    zh = _visible(mia.get("/manage/accounts").text)
    assert "平台" in zh and "日期" in zh and "platform" not in zh
    en = _visible(mia.get("/manage/accounts?lang=en").text)
    assert "Platform" in en and "Day" in en
