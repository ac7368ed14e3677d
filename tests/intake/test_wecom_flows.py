"""The WeCom live deployments' flows: the inbox catch-up with its artifact, and reconciliation."""

from __future__ import annotations

import time

import httpx
from sqlalchemy import func, select

from crm.core.db import transaction
from crm.core.settings import get_settings
from crm.intake.wecom import client_from_settings
from crm.intake.wecom_inbox import parse_xml, store_callback
from crm.intake.wecom_live import create_contact_way
from crm.models import Community, Contact, Membership, WecomCallback
from flows.wecom_live import wecom_inbox_flow, wecom_reconcile_flow
from tests.fakes.wecom_live_server import FakeLiveWeCom, event_xml
from tests.fakes.wecom_server import serve


def test_inbox_flow_processes_what_the_web_missed_and_reports_today(
    engine, db_url, prefect_harness, monkeypatch
):
    fake = FakeLiveWeCom()
    with serve(fake) as (_, base):
        for name, value in {
            "QUNFLOW_WECOM_CORP_ID": fake.corp_id,
            "QUNFLOW_WECOM_SECRET": fake.secret,
            "QUNFLOW_WECOM_BASE_URL": base,
        }.items():
            monkeypatch.setenv(name, value)
        with httpx.Client() as http:
            client = client_from_settings(get_settings(), http)
            way = create_contact_way(engine, client, staff=["zhangsan"], promoter="p9",
                                     location="车站", campaign="winter")  # fmt: skip
        fake.add_customer("wmFlow000000000001", "赵六", "zhangsan", way.state)
        fields = {
            "CreateTime": int(time.time()),
            "Event": "change_external_contact",
            "ChangeType": "add_external_contact",
            "UserID": "zhangsan",
            "ExternalUserID": "wmFlow000000000001",
            "State": way.state,
        }
        store_callback(engine, parse_xml(event_xml(fake.corp_id, fields).encode()), "")
        result = wecom_inbox_flow(database_url=db_url)
    assert result["processed"]["contacts"] == 1
    assert result["today"]["adds"] == [
        {"state": way.state, "promoter": "p9", "location": "车站", "campaign": "winter",
         "contacts": 1}
    ]  # fmt: skip
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 1
        assert s.scalar(select(WecomCallback.status)) == "processed"


def test_reconcile_flow_adds_the_members_wecom_lists(engine, db_url, prefect_harness, monkeypatch):
    fake = FakeLiveWeCom()
    fake.add_group("wrFlowChat", "活跃群", [
        {"userid": "wmFlowMember000001", "type": 2, "join_time": 1_700_000_000, "join_scene": 3},
    ])  # fmt: skip
    with transaction(engine) as s:
        s.add(Community(name="活跃群", platform="wecom", external_id="wrFlowChat", tier="active"))
    with serve(fake) as (_, base):
        monkeypatch.setenv("QUNFLOW_WECOM_CORP_ID", fake.corp_id)
        monkeypatch.setenv("QUNFLOW_WECOM_SECRET", fake.secret)
        monkeypatch.setenv("QUNFLOW_WECOM_BASE_URL", base)
        assert wecom_reconcile_flow(database_url=db_url) == {
            "chats": 1, "changed": 1, "joined": 1, "left": 0,
        }  # fmt: skip
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(Membership)) == 1
