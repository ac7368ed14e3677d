"""Outreach rules without a database: cadence verdicts, channel choice, limits in force, the
campaigns file's errors and the trigger's JSON document."""

from __future__ import annotations

import dataclasses
import pickle
import tomllib
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from crm.core.errors import ConfigError
from crm.outreach.cadence import Cadence, Verdict
from crm.outreach.campaign_file import describe, load_campaigns
from crm.outreach.campaign_spec import CampaignFile
from crm.outreach.limit_file import default_limits
from crm.outreach.limits import LimitBook, local_day, next_day_start
from crm.outreach.plan_rows import Exclusion, group_channel, idempotency_key, pick_channel
from crm.outreach.planning import PlanReport
from crm.outreach.templates import TemplateError, render
from flows.i18n import error_text
from flows.trigger import TriggerResult
from tests.helpers.followups import settings_for

SH = ZoneInfo("Asia/Shanghai")

WELCOME = """
[[campaign]]
name = "hello"
anchor = "tier_entered"
window = { start = "09:00", end = "21:30" }
max_late = "1d"
horizon = "2d"
steps = [
  { name = "now", offset = "0m", channel = "wecom", fallback = ["email"], template = "welcome" },
  { name = "later", offset = "5d", channel = "email", template = "welcome" },
]
"""


def _campaign(text: str = WELCOME):
    return CampaignFile.model_validate(tomllib.loads(text)).campaign[0]


def test_cadence_judges_each_occurrence() -> None:
    campaign = _campaign()
    now = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai: after the window
    cadence = Cadence(campaign, now)
    first, later = campaign.steps
    (slot,) = cadence.slots(first, now, SH)
    assert slot.key == "now" and slot.verdict is Verdict.DUE
    assert slot.due.astimezone(SH) == datetime(2026, 3, 3, 9, 0, tzinfo=SH)  # next window
    assert cadence.slots(later, now, SH)[0].verdict is Verdict.NOT_YET_DUE
    long_ago = datetime(2026, 2, 20, tzinfo=UTC)
    assert cadence.slots(first, long_ago, SH)[0].verdict is Verdict.TOO_LATE
    assert cadence.slots(first, None, SH) == []  # no anchor yet: nothing to plan


def test_channel_choice_reports_the_preferred_channels_refusal() -> None:
    step = _campaign().steps[0]  # wecom, then email
    reachable = {"out_wecom": False, "has_wecom": False, "out_email": False, "has_email": True}
    assert pick_channel(reachable, step, "service") == ("email", None)
    opted = {**reachable, "out_wecom": True, "has_email": False}
    assert pick_channel(opted, step, "service") == (None, Exclusion.OPTED_OUT)
    marketing = {**reachable, "noconsent_wecom": True, "noconsent_email": True}
    assert pick_channel(marketing, step, "marketing") == (None, Exclusion.NO_CONSENT)
    # a group post needs the group's chat id for WeCom, else the next channel
    assert group_channel("wecom", "wrA", step) == "wecom"
    assert group_channel("wechat", None, step) == "email"
    assert (
        idempotency_key("c", "s", 1)
        == idempotency_key("c", "s", 1)
        != idempotency_key("c", "s", "group:1")
    )


def test_limit_book_prefers_the_accounts_own_latest_limit() -> None:
    book = LimitBook(
        [
            ("wechat", "account", "message", "day", None, date(2024, 1, 1), 200),
            ("wechat", "account", "message", "day", 7, date(2026, 1, 1), 50),
            ("wechat", "account", "message", "day", 7, date(2026, 2, 1), 60),
            ("wechat", "account", "friend_add", "interval", None, date(2024, 1, 1), 60),
        ]
    )
    assert book.daily("wechat", "account", "message", 7) == 60
    assert book.daily("wechat", "account", "message", 8) == 200
    assert book.daily("wecom", "account", "message", 7) is None  # no such limit: none binds
    assert book.interval("wechat", "friend_add", 7) == 60
    assert book.interval("wechat", "message", 7) == 0
    names = [lim.name for lim in default_limits()]
    assert "wechat.contact.group_join.day" in names and len(set(names)) == len(names)
    day = local_day(datetime(2026, 3, 2, 16, 30, tzinfo=UTC), SH)  # 00:30 on the 3rd
    assert day == date(2026, 3, 3)
    assert next_day_start(day, SH) == datetime(2026, 3, 3, 16, 0, tzinfo=UTC)


def test_campaigns_file_names_the_field_of_a_bad_tag(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(WELCOME.replace('anchor = "tier_entered"', 'anchor = "tier_entered"\n'
                                    'audience = { tags = ["VIP", "a,b"] }'), "utf-8")  # fmt: skip
    with pytest.raises(ConfigError, match=r"campaign\.0\.audience\.tags: Value error, tag 'a,b'"):
        load_campaigns(path)
    path.write_text(WELCOME.replace('offset = "5d"', 'offset = "5x"'), "utf-8")
    with pytest.raises(ConfigError, match=r"c\.toml: campaign\.0\.steps\.1\.offset: "):
        load_campaigns(path)
    clean = tmp_path / "ok.toml"
    clean.write_text(
        WELCOME.replace("steps =", 'audience = { tags = ["ＶＩＰ"] }\nsteps ='), "utf-8"
    )
    assert load_campaigns(clean)["hello"].audience.tags == ["VIP"]


def test_a_broken_campaign_rule_reads_in_both_languages_and_survives_pickling(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(WELCOME.replace('channel = "email", template', 'channel = "emial", template'))
    with pytest.raises(ConfigError) as err:
        load_campaigns(path)
    assert err.value.key == "error.outreach.campaigns_rule"
    assert err.value.params["detail"].key == "error.outreach.campaign_channel"
    assert str(err.value) == (
        f"{path}: campaign.0.steps.1.channel: Value error, unknown channel 'emial' "
        "(one of wecom, wechat, email, webhook, file, console, null)"
    )
    assert error_text(err.value, "zh").startswith(
        f"「{path}」中 campaign.0.steps.1.channel：未知的渠道「emial」"
    )
    again = pickle.loads(pickle.dumps(err.value))  # a Prefect worker hands it back pickled
    assert (type(again), again.key, again.params) == (ConfigError, err.value.key, err.value.params)
    # A template past its bounds: named with its line, in the reader's words, after pickling.
    (tmp_path / "zh-CN").mkdir()
    (tmp_path / "zh-CN" / "big.txt.j2").write_text("你好\n{{ 2 ** 100000 }}\n", "utf-8")
    with pytest.raises(TemplateError) as bad:
        render("big", {}, operator_dir=tmp_path)
    back = pickle.loads(pickle.dumps(bad.value))
    assert (back.template, back.line, str(back)) == ("big", 2, "template big:2: power too large")
    assert error_text(back, "zh") == "模板「big:2」：乘方太大"


def test_listing_and_trigger_documents_keep_their_shape(tmp_path: Path) -> None:
    (listed,) = describe(settings_for(tmp_path, WELCOME))
    assert list(dataclasses.asdict(listed)) == [
        "name", "purpose", "anchor", "tiers", "steps", "description"
    ]  # fmt: skip
    assert dataclasses.asdict(listed)["steps"][0] == {
        "name": "now", "channel": "wecom", "template": "welcome", "offset": "0m",
        "day_offset": None, "at": None, "weekdays": None,
    }  # fmt: skip
    report = PlanReport(
        campaign="hello", target="contacts", audience=3, planned=2, already_planned=1,
        excluded={e.value: 0 for e in Exclusion}, not_yet_due=0, by_step={"now": 2},
        dry_run=False,
    )  # fmt: skip
    doc = TriggerResult(campaign="hello", via="in-process", plan=report).document()
    assert list(doc) == [
        "campaign", "target", "audience", "planned", "already_planned", "excluded",
        "not_yet_due", "by_step", "dry_run", "via",
    ]  # fmt: skip
    assert doc["excluded"] == {
        "opted_out": 0,
        "no_consent": 0,
        "no_channel": 0,
        "too_late": 0,
        "wecom_churn": 0,
    }
    assert TriggerResult(campaign="hello", via="prefect").planned is None
