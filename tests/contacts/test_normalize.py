"""Normalization rules: text, phones, WeChat ids, emails, handles, headers, times."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.contacts.normalize import (
    canonical_header,
    clean_name,
    clean_text,
    extract_identities,
    normalize_email,
    normalize_external_userid,
    normalize_handle,
    normalize_phone,
    normalize_platform,
    normalize_wechat_id,
    oversized_fields,
    parse_bool,
    parse_time,
)


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "+86 138-0013-8000",
        "+86 13800138000",
        "0086 138 0013 8000",
        "008613800138000",
        "86-13800138000",
        "(+86)13800138000",
        "138 0013 8000",
        "138-0013-8000",
        "１３８００１３８０００",
        "＋８６ １３８ ００１３ ８０００",
        " 13800138000\u200b",
        "\ufeff13800138000",
        "138.0013.8000",
        "[+86] 138 0013 8000",
    ],
)
def test_mainland_mobiles_in_every_spelling_become_one_e164(raw: str) -> None:
    norm = normalize_phone(raw)
    assert norm.value == "+8613800138000"
    assert norm.flags["type"] == "mobile"
    assert norm.error is None


def test_landline_is_kept_and_flagged() -> None:
    norm = normalize_phone("010-6552 9988")
    assert norm.value == "+861065529988"
    assert norm.flags.get("landline") is True


def test_foreign_number_with_country_code() -> None:
    assert normalize_phone("+1 650-253-0000").value == "+16502530000"
    assert normalize_phone("00852 6123 4567").value == "+85261234567"


@pytest.mark.parametrize("raw", ["12345", "abc", "1380013800", "23800138000x", "000"])
def test_invalid_numbers_are_flagged_not_dropped(raw: str) -> None:
    norm = normalize_phone(raw)
    assert norm.value is None
    assert norm.flags.get("invalid") is True
    assert norm.error


def test_empty_phone_is_empty_not_invalid() -> None:
    assert normalize_phone("  ").error == "empty"
    assert normalize_phone(None).error == "empty"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Zhang_San88", "zhang_san88"),
        ("abc123", "abc123"),
        ("a-b_c-d", "a-b_c-d"),
        ("wxid_abcd1234efgh", "wxid_abcd1234efgh"),
        (" WXID_ABCD1234 ", "wxid_abcd1234"),
        ("ｚｈａｎｇｓａｎ", "zhangsan"),
        ("abcdefghij0123456789", "abcdefghij0123456789"),
    ],
)
def test_valid_wechat_ids_lowercased(raw: str, expected: str) -> None:
    assert normalize_wechat_id(raw).value == expected


@pytest.mark.parametrize(
    "raw",
    ["abc", "1abcdef", "abc def", "张三abcdef", "abcdefghij01234567890", "ab.cdef", "_abcdef"],
)
def test_invalid_wechat_ids(raw: str) -> None:
    norm = normalize_wechat_id(raw)
    assert norm.value is None
    assert norm.error and "WeChat" in norm.error


def test_email_lowercased_and_checked() -> None:
    assert normalize_email(" Li.Na@Example.COM ").value == "li.na@example.com"
    assert normalize_email("not-an-email").value is None


def test_handle_is_scoped_by_platform() -> None:
    assert normalize_handle("小红书", "@Lucky_Cat").value == "xiaohongshu:lucky_cat"
    assert normalize_handle(None, "x").error == "handle without a platform"
    assert normalize_platform("抖音") == "douyin"


def test_clean_text_nfkc_and_invisibles() -> None:
    assert clean_text("\u200b ＡＢＣ１２３\u2060 ") == "ABC123"
    assert clean_text(None) == ""


def test_nicknames_kept_verbatim_with_emoji() -> None:
    assert clean_name(" 小美🌸（宝妈）\u200b") == "小美🌸（宝妈）"
    family = "家\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert clean_name(family) == family


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("群名称", "group"),
        ("群名", "group"),
        ("Group", "group"),
        ("昵称", "name"),
        ("群昵称", "name"),
        ("Nickname", "name"),
        ("微信号", "wechat_id"),
        ("WeChat", "wechat_id"),
        ("手机号", "phone"),
        ("手机", "phone"),
        ("电话", "phone"),
        ("Mobile", "phone"),
        ("入群时间", "occurred_at"),
        ("joined_at", "occurred_at"),
        ("备注", "note"),
        ("平台", "platform"),
        ("帖子", "post"),
        ("post_url", "post"),
        ("账号", "handle"),
        ("留言", "message"),
        ("内容", "message"),
        ("时间", "occurred_at"),
        (" 手机号： ", "phone"),
        ("\ufeff昵称", "name"),
        ("referrer_phone", "referrer_phone"),
    ],
)
def test_header_aliases(header: str, key: str) -> None:
    assert canonical_header(header) == key


def test_unknown_header() -> None:
    assert canonical_header("星座") is None


def test_parse_time_forms() -> None:
    assert parse_time("2024-05-06 09:00") == datetime(2024, 5, 6, 1, 0, tzinfo=UTC)
    assert parse_time("2024-05-06T01:00:00Z") == datetime(2024, 5, 6, 1, 0, tzinfo=UTC)
    assert parse_time("2024年5月6日 09:00") == datetime(2024, 5, 6, 1, 0, tzinfo=UTC)
    assert parse_time("1714957200") == datetime(2024, 5, 6, 1, 0, tzinfo=UTC)
    assert parse_time("soon") is None
    assert parse_time(1714957200000) == datetime(2024, 5, 6, 1, 0, tzinfo=UTC)  # milliseconds
    assert parse_time(45418) is None  # a spreadsheet's day number is not a Unix time


def test_parse_bool() -> None:
    assert parse_bool("同意") and parse_bool(True) and parse_bool("1")
    assert not parse_bool("否") and not parse_bool(None)


def test_extract_identities_keeps_invalid_as_unmatchable() -> None:
    found, problems = extract_identities({"phone": "12345", "wechat_id": "Li_Lei_88"})
    matchable = [(i.kind, i.value) for i in found if i.matchable]
    assert matchable == [("wechat_id", "li_lei_88")]
    assert [i.value for i in found if not i.matchable] == ["invalid:12345"]
    shown = [(p.field, p.key, p.value) for p in problems]
    assert shown == [("phone", "reason.invalid_phone", "12345")]
    assert problems[0].text == "phone: invalid phone number: 12345"


def test_extract_referrer_identities() -> None:
    found, _ = extract_identities({"referrer_phone": "13900000001"}, "referrer_")
    assert [(i.kind, i.value) for i in found] == [("phone", "+8613900000001")]


def test_oversized_fields() -> None:
    assert oversized_fields({"note": "x" * 2001, "name": "ok"}) == ["note"]


@pytest.mark.parametrize("clean", [clean_text, clean_name])
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\x1b[31mred\x1b[0m", "a[31mred[0m"),  # ESC: a terminal colour sequence, disarmed
        ("bell\x07\x08\x7f", "bell"),  # BEL, backspace, DEL
        ("nul\x00x", "nulx"),
        ("王\x1b]0;title\x07芳", "王]0;title芳"),  # an OSC sequence in a Chinese name
        ("c1\x9b2J", "c12J"),  # C1 control sequence introducer
    ],
)
def test_control_characters_are_stripped_from_stored_text(
    clean: Callable[[object], str], raw: str, expected: str
) -> None:
    assert clean(raw) == expected


def test_ordinary_whitespace_stays_in_text_and_names() -> None:
    assert clean_name(" 王\t芳\n乙\r ") == "王\t芳\n乙"
    assert clean_text("a\tb\nc") == "a\tb\nc"


@settings(max_examples=300, deadline=None, database=None)
@given(st.text())
def test_no_control_character_survives_cleaning(raw: str) -> None:
    for clean in (clean_text, clean_name):
        out = clean(raw)
        assert not [ch for ch in out if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r"]
        assert out == out.strip()


@settings(max_examples=300, deadline=None, database=None)
@given(st.one_of(st.text(), st.integers(), st.floats(), st.none(), st.booleans()))
def test_normalizers_take_any_value_without_raising(raw: object) -> None:
    for norm in (normalize_phone, normalize_wechat_id, normalize_email, normalize_external_userid):
        result = norm(raw)
        assert (result.value is None) or isinstance(result.value, str)
    normalize_handle("xhs", raw)
    canonical_header(raw)
    parse_bool(raw)
    parse_time(raw)
    extract_identities({"phone": raw, "wechat_id": raw, "email": raw, "handle": raw})
