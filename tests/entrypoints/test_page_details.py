"""The audit page's details and a campaign's step names in words, in zh-CN and en."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from crm.core.errors import ConfigError
from crm.outreach.campaign_file import load_campaigns
from crm.outreach.planning import PlanReport
from crm.outreach.step_names import step_name
from flows.i18n import translator
from flows.summaries import plan_summary_lines, step_words
from flows.web.audit_details import detail_lines
from flows.web.common import local_moment

SHANGHAI = ZoneInfo("Asia/Shanghai")
USERS = {3: "bob"}


def shown(lang: str, action: str, details: dict) -> dict[str, str]:
    lines = detail_lines(
        translator(lang), action, details, when=lambda v: local_moment(v, SHANGHAI), users=USERS
    )
    return {d.label: d.value for d in lines}


def test_known_fields_read_as_words_with_codes_named_and_times_local():
    won = {"from": "prospect", "reason": "sales won", "reason_key": "tier.why.won"}
    assert shown("zh", "tier.mark_paid", won) == {"原来": "意向", "原因": "销售成交"}
    typed = {"from": "prospect", "reason": "老客户转介绍", "reason_key": None}
    assert shown("zh", "tier.mark_paid", typed) == {"原来": "意向", "原因": "老客户转介绍"}
    until = datetime(2026, 3, 5, 6, 30, tzinfo=UTC).isoformat()
    assert shown("zh", "queue.snoozed", {"contact_id": 7, "until": until}) == {
        "客户编号": "7",
        "下次跟进": "2026-03-05 14:30",  # Shanghai time, as the page's other times
    }
    assert shown("en", "queue.assign", {"to_user_id": 3, "from_user_id": None}) == {
        "New owner": "bob",
        "Previous owner": "—",
    }
    assert shown("zh", "contact.opt_out", {"channel": "wechat", "source": "reply 退订"}) == {
        "渠道": "微信",
        "来自": "回复「退订」",
    }


def test_from_and_to_are_roles_on_a_role_change_and_tiers_elsewhere():
    assert shown("zh", "user.role", {"from": "sales", "to": "manager"}) == {
        "原来": "销售",
        "改为": "主管",
    }
    assert shown("en", "tier.move", {"from": "open", "to": "active"}) == {
        "From": "Open",
        "To": "Active",
    }


def test_nested_counts_lists_and_yes_no_are_words():
    zh = shown("zh", "user.caps", {"before": {"claims": 20, "holding": 30}, "active": False})
    assert zh == {"修改前": "每日认领上限 20、持有上限 30", "账号启用": "否"}
    erased = shown("zh", "contact.erase", {"counts": {"events": 3, "notes": 1}})
    assert erased == {"删除的数据": "事件 3、备注 1"}
    dismissed = shown("zh", "quarantine.dismiss", {"ids": list(range(1, 14))})
    assert dismissed["记录编号"].startswith("1、2、3") and dismissed["记录编号"].endswith(
        "共 13 条"
    )
    assert "11" not in dismissed["记录编号"].split("、")  # only the first ten are listed


def test_an_unknown_field_still_shows_as_its_name_and_value():
    zh = shown("zh", "campaign.trigger", {"via": "prefect", "batch_size": 500, "x": {"a": 1}})
    assert zh == {"执行方式": "Prefect 部署", "batch_size": "500", "x": "a 1"}


def test_the_page_never_drops_or_dumps_a_field():
    details = {"tier": "prospect", "status": "won", "kind": "message", "channel": "wecom"}
    assert shown("zh", "x.y", details) == {
        "分级": "意向",
        "状态": "成交",
        "类型": "发言",
        "渠道": "企业微信",
    }


CAMPAIGNS = """
[[campaign]]
name = "trial"
anchor = "tier_entered"
window = { start = "09:00", end = "21:30" }
steps = [
  { name = "hello", offset = "0m", template = "welcome" },
  { name = "remind", title = "开课提醒", offset = "1d", template = "welcome" },
  { name = "weekly", weekdays = ["tue"], at = "20:00", template = "welcome" },
]
"""


@pytest.fixture
def trial(tmp_path: Path):
    path = tmp_path / "campaigns.toml"
    path.write_text(CAMPAIGNS, encoding="utf-8")
    return load_campaigns(path)["trial"]


def test_steps_read_by_their_place_and_title(trial):
    zh, en = translator("zh"), translator("en")
    assert step_words(zh, step_name(trial, "hello")) == "第 1 步"
    assert step_words(en, step_name(trial, "hello")) == "Step 1"
    assert step_words(zh, step_name(trial, "remind")) == "第 2 步「开课提醒」"
    assert step_words(en, step_name(trial, "remind")) == "Step 2: 开课提醒"
    assert step_words(zh, step_name(trial, "weekly@2026-03-03")) == "第 3 步（2026-03-03）"
    gone = step_words(zh, step_name(trial, "step-0"))
    assert "第" not in gone and "step-0" in gone  # a step the file no longer has says so


def test_the_plan_artifact_names_steps_in_words(trial):
    report = PlanReport(
        campaign="trial", target="contacts", audience=3, planned=3, already_planned=0,
        excluded={}, not_yet_due=0, by_step={"hello": 2, "remind": 1}, dry_run=False,
    )  # fmt: skip
    zh = "\n".join(plan_summary_lines(report, translator("zh"), trial))
    assert "第 1 步 2、第 2 步「开课提醒」 1" in zh and "hello" not in zh
    en = "\n".join(plan_summary_lines(report, translator("en"), trial))
    assert "Step 1 2, Step 2: 开课提醒 1" in en


def test_a_step_title_is_bounded(tmp_path: Path):
    path = tmp_path / "campaigns.toml"
    path.write_text(CAMPAIGNS.replace("开课提醒", "长" * 41), encoding="utf-8")
    with pytest.raises(ConfigError):
        load_campaigns(path)


def test_paired_fields_read_in_order_and_a_whole_audience_is_said():
    lines = detail_lines(
        translator("zh"),
        "user.caps",
        {"note": "x", "after": {"claims": 25}, "before": {"claims": 20}},
        when=lambda v: local_moment(v, SHANGHAI),
        users=USERS,
    )
    assert [d.label for d in lines] == ["修改前", "修改后", "说明"]
    assert shown("zh", "campaign.trigger", {"contacts": None}) == {"客户数": "活动的全部受众"}
    assert shown("en", "contact.opt_out", {"channel": None}) == {"Channel": "all channels"}
