"""Every kind of quarantine keeps its reason as a catalog key and parameters, read in zh-CN."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from crm.contacts.normalize import MAX_FIELD_CHARS
from crm.core.db import transaction
from crm.core.vocabulary import SourceKind
from crm.intake.inbox import PushKind, accept_pushed
from crm.intake.jsonl_reader import MAX_LINE_CHARS
from crm.intake.pipeline import ingest_items, ingest_path
from crm.intake.quarantine import list_quarantine
from crm.intake.reasons import SENTENCES, Reason, why
from crm.intake.records import RawItem, SourceSpec
from crm.models import QuarantinedRow
from flows.i18n import translator
from flows.i18n.quarantine_reasons import quarantine_reason_text, reason_count_text

EVENT_LINES = {
    "unknown event": {"event_id": "e1", "event": "dance", "phone": "13800138001"},
    "no identity": {"event_id": "e2", "event": "share", "name": "路人"},
    "bad identity": {
        "event_id": "e3",
        "event": "share",
        "phone": "abc",
        "email": "not-an-email",
        "referrer_wechat_id": "1x",
    },
    "unreadable time": {
        "event_id": "e4",
        "event": "purchase",
        "phone": "13800138002",
        "occurred_at": "上周三",
    },
    "oversized": {"event_id": "e5", "event": "share", "phone": "13800138003", "note": "长" * 2001},
}
BAD_LINES = {
    "not json": '{"event_id": "e6", ',
    "not an object": "[1, 2]",
    "nan": '{"event_id": "e7", "phone": "13800138004", "amount": NaN}',
    "too long": '{"note": "' + "x" * (MAX_LINE_CHARS + 10) + '"}',
}
# What the sentences may keep in Latin letters in Chinese: names of formats and characters.
LATIN_OK = {"JSON", "CSV", "NUL", "ID", "NaN", "Infinity", "u0000"}


def _stored(engine: Engine) -> dict[str | None, tuple[dict[str, Any], str]]:
    with transaction(engine) as s:
        rows = s.execute(
            select(QuarantinedRow.reason_key, QuarantinedRow.reason_params, QuarantinedRow.reason)
        ).tuples()
        return {key: (params, reason) for key, params, reason in rows}


def _values(params: Any) -> list[str]:
    if isinstance(params, dict):
        return [v for p in params.values() for v in _values(p)]
    if isinstance(params, list):
        return [v for p in params for v in _values(p)]
    return [str(params)]


def _in_chinese(key: str, params: dict[str, Any], english: str) -> str:
    said = quarantine_reason_text(translator("zh"), key, params, english)
    assert said and said != english, (key, said)
    plain = said
    for value in sorted(_values(params), key=len, reverse=True):
        plain = plain.replace(value, " ")
    latin = set(re.findall(r"[A-Za-z][A-Za-z0-9]+", plain)) - LATIN_OK
    assert not latin, (key, said, latin)
    assert re.search(r"[\u4e00-\u9fff]", said), (key, said)
    return said


def test_every_file_quarantine_keeps_its_key_and_params(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = [json.dumps(o, ensure_ascii=False) for o in EVENT_LINES.values()]
    path.write_text("\n".join([*lines, *BAD_LINES.values()]) + "\n", encoding="utf-8")
    report = ingest_path(engine, "events", path)
    assert report.quarantined == len(EVENT_LINES) + len(BAD_LINES)
    csv = tmp_path / "members.csv"
    # A bad byte past what the reader samples to tell the encoding (a blank line pads it).
    good = "手机号,昵称\n13800138009,甲\n" + " " * 70_000 + "\n"
    csv.write_bytes(good.encode() + b"13800138010,\xff\xfe\n")
    assert ingest_path(engine, "peer-group", csv).quarantined == 1
    stored = _stored(engine)
    expected: dict[Reason, dict[str, Any]] = {
        Reason.UNKNOWN_EVENT: {"kind": "dance"},
        Reason.NO_IDENTITY: {},
        Reason.BAD_IDENTITY: {
            "problems": [
                {"field": "phone", "kind": "phone", "key": "reason.not_phone", "value": "abc"},
                {
                    "field": "email",
                    "kind": "email",
                    "key": "reason.invalid_email",
                    "value": "not-an-email",
                },
                {
                    "field": "referrer_wechat_id",
                    "kind": "wechat_id",
                    "key": "reason.invalid_wechat_id",
                    "value": "1x",
                },
            ]
        },
        Reason.UNREADABLE_TIME: {"value": "上周三"},
        Reason.OVERSIZED_FIELD: {"field": "note", "size": 2001, "limit": MAX_FIELD_CHARS},
        Reason.NOT_JSON: {"detail": "Expecting property name enclosed in double quotes"},
        Reason.NOT_OBJECT: {},
        Reason.JSON_CONSTANT: {"name": "NaN"},
        Reason.LINE_TOO_LONG: {"limit": MAX_LINE_CHARS},
        Reason.UNDECODABLE: {"encoding": "utf-8"},
    }
    assert {k: p for k, (p, _) in stored.items()} == {k.value: p for k, p in expected.items()}
    # The English sentence is the one the quarantine has always stored.
    assert stored[Reason.UNREADABLE_TIME][1] == "unreadable time: '上周三'"
    assert stored[Reason.BAD_IDENTITY][1] == (
        "no usable identity (phone: not a phone number: abc; email: invalid email: not-an-email;"
        " referrer_wechat_id: invalid WeChat id: 1x)"
    )
    said = {k: _in_chinese(k or "", p, r) for k, (p, r) in stored.items()}
    assert said[Reason.BAD_IDENTITY] == (
        "没有可用的身份（手机：不是手机号：abc；邮箱：邮箱无效：not-an-email；"
        "邀请人的微信号：微信号无效：1x）"
    )
    assert said[Reason.UNREADABLE_TIME] == "无法识别的时间：“上周三”"
    # Reports count by the reason's code, said by its own word.
    assert report.reasons["bad_identity"] == 1
    zh = translator("zh")
    assert {reason_count_text(zh, code) for code in report.reasons}.isdisjoint(report.reasons)


def test_records_and_pushed_objects_keep_their_key_and_params(engine: Engine) -> None:
    spec = SourceSpec(kind=SourceKind.API, key="events", name="activity events")
    items = [RawItem("k1", {"phone": "13800138001", "a": "x" * 2001, "b": "y" * 2001})]
    assert ingest_items(engine, spec, items, origin="api").quarantined == 1
    pushed = [
        {"id": "l1", "post": "p1", "phone": "13800138002"},
        {"id": "l2", "platform": "xhs", "post": "p2", "note": "a\x00b"},
        "not an object",
    ]
    assert accept_pushed(engine, PushKind.LEADS, pushed).rejected == 3
    stored = _stored(engine)
    assert {k: p for k, (p, _) in stored.items()} == {
        Reason.OVERSIZED_FIELDS.value: {"fields": "a, b"},
        Reason.LEAD_NO_PLATFORM.value: {},
        Reason.TEXT_NUL.value: {"where": '["note"]'},
        Reason.NOT_OBJECT.value: {},
    }
    for key, (params, english) in stored.items():
        _in_chinese(key or "", params, english)
    with transaction(engine) as s:
        listed = {e.reason_key: e for e in list_quarantine(s)}
    nul = listed[Reason.TEXT_NUL.value]
    assert nul.reason == 'text at ["note"] holds a NUL character (\\u0000), which cannot be stored'


def test_every_reason_reads_in_both_languages() -> None:
    zh, en = translator("zh"), translator("en")
    for key, sentence in SENTENCES.items():
        names = re.findall(r"{(\w+)", sentence)
        reason = why(key, **{name: "v" for name in names})
        for t in (zh, en):
            said = quarantine_reason_text(t, reason.key, reason.params, reason.text)
            assert said != key.value and "{" not in said, (key, said)
            assert reason_count_text(t, reason.code) != reason.code, key
    assert reason_count_text(zh, "already_quarantined") == "此前已隔离"
