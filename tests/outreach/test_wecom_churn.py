"""Churn (流失) holds for messages planned later too: planning and dispatch read the churn
event between a contact and a WeCom staff member, whoever planned the row and when."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from pydantic import SecretStr
from sqlalchemy import select

from crm.core.db import transaction
from crm.intake.wecom_inbox import Claimed
from crm.intake.wecom_live import resolve_churn
from crm.models import OutboxMessage
from crm.outreach.channels.wecom import WecomChannel
from crm.outreach.dispatch import dispatch
from crm.outreach.planning import plan_campaign
from tests.fakes.wecom_msg_server import wecom_msg_server
from tests.helpers.followups import make_account, make_contacts, settings_for

NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
CAMPAIGN = """
[[campaign]]
name = "hello"
anchor = "tier_entered"
audience = { tiers = ["open"] }
max_late = "30d"

[[campaign.steps]]
name = "hi"
offset = "0m"
channel = "wecom"
template = "welcome"
account = "zhangsan"
"""


def _churn(engine, contact_id: int, staff: str, change: str = "del_follow_user") -> None:
    fields = {
        "CreateTime": int(NOW.timestamp()) - 60,
        "Event": "change_external_contact",
        "ChangeType": change,
        "UserID": staff,
        "ExternalUserID": f"wm{contact_id}",
    }
    cb = Claimed(0, "change_external_contact", change, fields, NOW, NOW)
    assert resolve_churn(engine, cb).contact_id == contact_id


def _by_contact(engine) -> dict[int, OutboxMessage]:
    with transaction(engine) as s:
        return {r.contact_id: r for r in s.scalars(select(OutboxMessage))}


def test_planning_after_a_churn_skips_only_that_staff_members_messages(engine, tmp_path) -> None:
    st = settings_for(tmp_path, CAMPAIGN)
    ids = make_contacts(engine, 3)
    make_account(engine, "zhangsan", "wecom")
    make_account(engine, "lisi", "wecom")
    _churn(engine, ids[0], "zhangsan")  # the customer deleted zhangsan
    _churn(engine, ids[1], "lisi", "del_external_contact")  # another staff member: no bearing
    report = plan_campaign(engine, "hello", now=NOW, settings=st)
    assert report.planned == 2 and report.excluded["wecom_churn"] == 1
    rows = _by_contact(engine)
    assert rows[ids[0]].state == "skipped" and rows[ids[0]].reason == "wecom_churn"
    assert rows[ids[1]].state == rows[ids[2]].state == "planned"
    again = plan_campaign(engine, "hello", now=NOW, settings=st)
    assert again.planned == 0 and again.excluded["wecom_churn"] == 0
    assert _by_contact(engine)[ids[0]].state == "skipped"


def test_dispatch_rechecks_churn_recorded_after_planning(engine, tmp_path) -> None:
    st = settings_for(tmp_path, CAMPAIGN)
    ids = make_contacts(engine, 2)
    make_account(engine, "zhangsan", "wecom")
    assert plan_campaign(engine, "hello", now=NOW, settings=st).planned == 2
    _churn(engine, ids[0], "zhangsan")  # the event alone: the planned rows are untouched
    assert _by_contact(engine)[ids[0]].state == "planned"
    with wecom_msg_server() as (base, state):
        ch = WecomChannel(base, state.corp_id, SecretStr(state.secret), client=httpx.Client())
        result = dispatch(engine, now=NOW, channels={"wecom": ch}, settings=st)
        ch.close()
        assert [t["external_userid"] for t in state.tasks.values()] == [[f"wm{ids[1]}"]]
    assert result.skipped == 1 and result.awaiting_confirmation == 1
    rows = _by_contact(engine)
    assert rows[ids[0]].state == "skipped" and rows[ids[0]].reason == "wecom_churn"
