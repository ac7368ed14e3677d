"""Group posts: a group campaign plans one post per group (not per member) and sends it as a
WeCom group mass-message task, or on the WeChat send list for groups WeCom cannot reach."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from crm.core.db import transaction
from crm.core.errors import ConfigError
from crm.models import Community, Membership, OutboxMessage
from crm.outreach.campaign_file import load_campaigns
from crm.outreach.channels.local import FileChannel
from crm.outreach.channels.wecom import WecomChannel
from crm.outreach.confirmations import poll_confirmations
from crm.outreach.dispatch import dispatch
from crm.outreach.planning import plan_campaign
from tests.fakes.wecom_msg_server import wecom_msg_server
from tests.helpers.followups import make_account, make_contacts, settings_for

SH = ZoneInfo("Asia/Shanghai")
TUESDAY_EVENING = datetime(2026, 3, 3, 11, 0, tzinfo=UTC)  # 19:00 in Shanghai


def _groups(engine) -> dict[str, int]:
    wecom = make_account(engine, "zhangsan", "wecom")
    wechat = make_account(engine, "ops-wx", "wechat")
    members = make_contacts(engine, 3, tier="open")
    with transaction(engine) as s:
        made = {
            "wecom-open": Community(
                name="产品交流1群",
                tier="open",
                platform="wecom",
                external_id="wrA",
                owner_account_id=wecom,
            ),
            "wechat-active": Community(
                name="进阶群", tier="active", platform="wechat", owner_account_id=wechat
            ),
            "archived": Community(name="旧群", tier="open", archived=True),
            "prospect": Community(name="意向群", tier="prospect", owner_account_id=wechat),
        }
        s.add_all(made.values())
        s.flush()
        for cid in members:
            s.add(
                Membership(
                    community_id=made["wecom-open"].id, contact_id=cid, joined_at=TUESDAY_EVENING
                )
            )
        return {k: g.id for k, g in made.items()}


def test_rules_reminder_is_one_post_per_group_sent_to_the_group(engine, tmp_path) -> None:
    st = settings_for(tmp_path)
    groups = _groups(engine)
    report = plan_campaign(engine, "group-rules", now=TUESDAY_EVENING, settings=st)
    assert report.target == "groups"
    assert report.audience == 2 and report.planned == 2  # not the 3 members, not archived
    again = plan_campaign(engine, "group-rules", now=TUESDAY_EVENING, settings=st)
    assert again.planned == 0 and again.already_planned == 2

    with transaction(engine) as s:
        planned = {r.community_id: r for r in s.scalars(select(OutboxMessage))}
    assert set(planned) == {groups["wecom-open"], groups["wechat-active"]}
    assert all(r.contact_id is None for r in planned.values())
    assert planned[groups["wecom-open"]].channel == "wecom"
    assert planned[groups["wechat-active"]].channel == "wechat"  # no chat id: send list
    due = planned[groups["wecom-open"]].due_at.astimezone(SH)
    assert (due.date().isoformat(), due.hour) == ("2026-03-03", 20)

    send_list = tmp_path / "wechat.jsonl"
    at_eight = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
    with wecom_msg_server() as (base, state):
        wecom = WecomChannel(base, state.corp_id, SecretStr(state.secret), client=httpx.Client())
        channels = {"wecom": wecom, "wechat": FileChannel(send_list, name="wechat")}
        result = dispatch(engine, now=at_eight, channels=channels, settings=st)
        assert result.awaiting_confirmation == 1 and result.sent == 1

        (task,) = state.tasks.values()
        assert task["chat_type"] == "group" and task["chat_id_list"] == ["wrA"]
        assert task["sender"] == "zhangsan"
        assert "群规提醒" in task["text"]["content"] and "产品交流1群" in task["text"]["content"]
        assert poll_confirmations(engine, wecom, now=at_eight) == {"pending": 1}
        state.confirm(task["msgid"])
        assert poll_confirmations(engine, wecom, now=at_eight) == {"sent": 1}
        wecom.close()

    (line,) = [json.loads(x) for x in send_list.read_text("utf-8").splitlines()]
    assert line["group"] == "进阶群" and line["address"] == "进阶群"
    assert line["account"] == "ops-wx" and line["contact_id"] is None
    with transaction(engine) as s:
        assert {r.state for r in s.scalars(select(OutboxMessage))} == {"sent"}


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ('anchor = "tier_entered"', "anchored to weekly or event"),
        ('audience = { tiers = ["open"], min_score = 10 }', "min_score select contacts"),
        (
            'steps = [{ name = "r", weekdays = ["tue"], at = "20:00", channel = "email", '
            'template = "group_rules" }]',
            "a group post is an action 'message'",
        ),
    ],
)
def test_group_campaigns_refuse_per_person_settings(tmp_path, change, complaint) -> None:
    lines = {
        "name": 'name = "rules"',
        "anchor": 'anchor = "weekly"',
        "target": 'target = "groups"',
        "audience": 'audience = { tiers = ["open"] }',
        "steps": 'steps = [{ name = "r", weekdays = ["tue"], at = "20:00", '
        'template = "group_rules" }]',
    }
    lines[change.split(" =")[0]] = change
    st = settings_for(tmp_path, "[[campaign]]\n" + "\n".join(lines.values()) + "\n")
    with pytest.raises(ConfigError, match=complaint):
        load_campaigns(st.campaigns_path)
