"""End to end: sign-ups and WeCom groups become contacts with their source on the touch."""

from __future__ import annotations

import json
import re
import subprocess
import warnings
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select

from crm.core.db import transaction
from crm.core.settings import get_settings
from crm.intake.qr import create_qr
from crm.intake.wecom import WeComApiError, WeComClient, feed_spec, pull_wecom_groups
from crm.models import Contact, Identity, RawRecord, SourceInstance, Touch
from flows.web import public
from tests.fakes.wecom_server import FakeWeCom, serve

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's httpx2 notice
    from fastapi.testclient import TestClient

SECRET = "e2e-secret-key-0123456789"


def test_signup_then_cli_creates_the_contact_with_promoter_on_its_touch(engine, cli_env, tmp_path):
    code = create_qr(
        engine,
        promoter="小王",
        location="中关村书店",
        campaign="spring",
        expires=timedelta(days=7),
        out_dir=tmp_path,
        base_url="http://testserver",
        secret_key=SECRET,
    )
    app = FastAPI()
    app.include_router(public.router)
    app.state.engine = engine
    app.state.settings = get_settings(secret_key=SECRET)
    client = TestClient(app)
    path = f"/s/{code.token}"
    nonce = re.search(r'name="nonce" value="([^"]+)"', client.get(path).text).group(1)
    form = {
        "name": "李雷",
        "phone": "+86 139-0013-9000",
        "consent": "1",
        "q_goal": "考研",
        "q_budget": "有",
        "nonce": nonce,
    }
    assert client.post(path, data=form).status_code == 200
    assert client.post(path, data=form).status_code == 200  # double submit

    run = subprocess.run(
        [".venv/bin/qunflow", "ingest", "qr-signups", "--json"],
        env=cli_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert (report["read"], report["new_contacts"], report["quarantined"]) == (1, 1, 0)

    with transaction(engine) as s:
        rows = s.execute(
            select(Contact, SourceInstance)
            .join(Touch, Touch.contact_id == Contact.id)
            .join(SourceInstance, SourceInstance.id == Touch.source_instance_id)
        ).all()
        assert len(rows) == 1
        contact, source = rows[0]
        assert contact.display_name == "李雷"
        assert (source.kind, source.promoter, source.location, source.campaign) == (
            "qr_signup",
            "小王",
            "中关村书店",
            "spring",
        )
        phone = s.scalar(select(Identity.value).where(Identity.contact_id == contact.id))
        assert phone == "+8613900139000"
        assert s.scalar(select(RawRecord.status)) == "processed"

    again = subprocess.run(
        [".venv/bin/qunflow", "ingest", "qr-signups", "--json"],
        env=cli_env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(again.stdout)["read"] == 0


def test_wecom_pull_creates_contacts_once(engine):
    fake = FakeWeCom()
    for g in range(3):
        members = [{"userid": "staff1", "type": 1, "join_time": 1_700_000_000, "name": "客服"}]
        members += [
            {
                "userid": f"wmExt{i}",  # the same people sit in several groups
                "type": 2,
                "join_time": 1_700_000_000 + g,
                "join_scene": 3,
                "group_nickname": f"会员{i}",
                "name": f"会员{i}",
                "unionid": f"u{i}",
            }
            for i in range(g, g + 3)
        ]
        fake.add_group(f"wrChat{g}", f"考研{g}群", members)
    with serve(fake) as (srv, base), httpx.Client(timeout=5) as http:
        client = WeComClient(srv.corp_id, SecretStr(srv.secret), base, http, backoff=(0, 0))
        first = pull_wecom_groups(engine, client, page_size=2)
        assert (first.read, first.new_contacts, first.quarantined) == (9, 5, 0)
        assert first.new_contacts + first.matched + first.quarantined == first.read
        second = pull_wecom_groups(engine, client, page_size=2)
        assert (second.new_contacts, second.skipped_duplicates) == (0, 9)

    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 5
        # unionid links the same person across WeChat apps: an identity of its own
        assert set(s.scalars(select(Identity.kind))) == {"wecom_external_userid", "unionid"}
        groups = s.scalars(
            select(SourceInstance.group_name).where(SourceInstance.key.like("wecom-group:%"))
        ).all()
        assert sorted(groups) == ["考研0群", "考研1群", "考研2群"]
        assert s.scalar(select(func.count()).select_from(Touch)) == 9  # every touch kept
        feed = s.scalar(
            select(SourceInstance).where(SourceInstance.key == feed_spec(fake.corp_id).key)
        )
        assert feed is not None and feed.cursor is None  # the listing completed


def test_wecom_pull_broken_mid_listing_resumes_at_the_stored_cursor(engine):
    fake = FakeWeCom()
    for g in range(4):
        member = {"userid": f"wm{g}", "type": 2, "join_time": 1_700_000_000, "name": f"人{g}"}
        fake.add_group(f"wrChat{g}", f"群{g}", [member])
    with serve(fake) as (srv, base), httpx.Client(timeout=5) as http:
        client = WeComClient(srv.corp_id, SecretStr(srv.secret), base, http, backoff=())
        # The first page (2 groups) goes through; the second page's first group fails for good.
        ok_get = fake.routes[("POST", "/externalcontact/groupchat/get")]
        broken = {"on": True}

        def get(query, body):
            if broken["on"] and body.get("chat_id") == "wrChat2":
                return {"errcode": 60011, "errmsg": "no privilege to access/modify contact"}
            return ok_get(query, body)

        fake.routes[("POST", "/externalcontact/groupchat/get")] = get
        with pytest.raises(WeComApiError) as info:
            pull_wecom_groups(engine, client, page_size=2)
        assert info.value.errcode == 60011
        with transaction(engine) as s:
            feed = s.scalar(
                select(SourceInstance).where(SourceInstance.key == feed_spec(fake.corp_id).key)
            )
            assert feed is not None and feed.cursor == "c2"
            assert s.scalar(select(func.count()).select_from(Contact)) == 2

        broken["on"] = False
        seen = len(fake.calls)
        resumed = pull_wecom_groups(engine, client, page_size=2)
        assert resumed.new_contacts == 2 and resumed.skipped_duplicates == 0
        lists = [c for c in fake.calls[seen:] if c.path.endswith("/list")]
        assert lists[0].body.get("cursor") == "c2"
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 4
