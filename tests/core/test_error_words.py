"""Errors raised in crm/ say their sentence in the reader's language, also after crossing a
process boundary (Prefect workers pickle them), and problems nested in them follow along."""

from __future__ import annotations

import pickle

import pytest

from crm.contacts.tag_text import clean_tag
from crm.core.errors import ConfigError, InputError
from crm.core.settings import get_settings
from crm.intake.pushed_json import BodyRefused, parse_pushed
from crm.intake.wecom import WeComApiError
from crm.routing.rules import parse_rules
from flows.i18n import error_text


def test_a_crm_error_reads_in_both_languages_and_survives_pickling() -> None:
    with pytest.raises(InputError) as info:
        clean_tag("高意向,宝妈")
    error = info.value
    assert error_text(error, "en") == "tag '高意向,宝妈' contains a separator or control character"
    assert error_text(error, "zh") == "标签「高意向,宝妈」里有分隔符或控制字符"

    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is InputError
    assert (copy.key, copy.params) == ("error.contacts.tag_separator", {"tag": "高意向,宝妈"})
    assert str(copy) == str(error)
    assert error_text(copy, "zh") == error_text(error, "zh")


def test_subclass_attributes_come_back_from_the_parameters() -> None:
    with pytest.raises(BodyRefused) as refused:
        parse_pushed(b"[" * 100 + b"]" * 100)
    assert error_text(pickle.loads(pickle.dumps(refused.value)), "zh") == "JSON 嵌套超过 32 层"

    error = WeComApiError(
        "error.intake.wecom_refused", api="externalcontact/get", errcode=60011, detail="no priv"
    )
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.api, copy.errcode, copy.errmsg) == ("externalcontact/get", 60011, "no priv")
    assert str(copy) == "WeCom externalcontact/get: errcode 60011: no priv"
    assert error_text(copy, "zh") == "企业微信 externalcontact/get：错误码 60011：no priv"


def test_a_bad_setting_names_the_variable_in_the_readers_language(monkeypatch) -> None:
    monkeypatch.setenv("QUNFLOW_LANG", "fr")
    with pytest.raises(ConfigError) as info:
        get_settings()
    assert str(info.value) == "QUNFLOW_LANG: unknown language 'fr' (expected zh-CN or en)"
    assert error_text(info.value, "zh") == "QUNFLOW_LANG：未知的语言「fr」（可选 zh-CN 或 en）"


def test_every_bad_field_of_a_rules_file_is_said_in_one_language() -> None:
    text = '[tiers.active]\nenter_at = 20\nstay_above = 25\n[signals.intent]\nweight = "x"\n'
    with pytest.raises(InputError) as info:
        parse_rules(text)
    error = pickle.loads(pickle.dumps(info.value))
    en, zh = error_text(error, "en"), error_text(error, "zh")
    assert "rules.toml line 1: version: Field required; " in en
    assert "rules.toml line 1: tiers.active: stay_above (25) must not exceed enter_at (20)" in en
    assert "rules.toml 第 1 行：tiers.active：stay_above（25）不能超过 enter_at（20）" in zh
    assert "；" in zh and "line" not in zh
