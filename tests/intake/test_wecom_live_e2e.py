"""WeCom live intake end to end over real HTTP: the local WeCom server pushes encrypted,
signed callbacks to the running web app, which stores, resolves and welcomes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from crm.core.db import transaction
from crm.core.settings import Settings, get_settings
from crm.intake.wecom import WeComClient, client_from_settings
from crm.intake.wecom_chats import reconcile_chats
from crm.intake.wecom_live import create_contact_way
from crm.models import (
    Alert,
    Community,
    Contact,
    Event,
    Identity,
    Membership,
    OperatorAccount,
    OutboxMessage,
    Touch,
    WecomCallback,
)
from crm.outreach.wecom_callbacks import LiveConfig, process_inbox
from crm.routing.route import route
from crm.routing.rules.loader import load_rules
from flows.web.app import create_app
from tests.fakes.wecom_live_server import FakeLiveWeCom, event_xml
from tests.fakes.wecom_server import serve

STAFF = "zhangsan"
QUNFLOW = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "qunflow")


@dataclass
class Live:
    fake: FakeLiveWeCom
    url: str  # our /hooks/wecom
    settings: Settings
    http: httpx.Client

    def client(self) -> WeComClient:
        return client_from_settings(self.settings, self.http)


@pytest.fixture
def live(engine) -> Iterator[Live]:
    fake = FakeLiveWeCom()
    with serve(fake) as (_, base), httpx.Client(timeout=10) as http:
        settings = get_settings(
            secret_key="signing-key-for-tests",
            wecom_corp_id=fake.corp_id,
            wecom_secret=fake.secret,
            wecom_base_url=base,
            wecom_token=fake.token,
            wecom_aes_key=fake.aes_key,
        )
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, engine), host="127.0.0.1", port=port, log_level="warning"
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        try:
            yield Live(fake, f"http://127.0.0.1:{port}/hooks/wecom", settings, http)
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def _settled(engine, n: int) -> None:
    """Wait until ``n`` callbacks are stored and none is still open (processing follows the
    answer, in the app's background)."""
    deadline = time.monotonic() + 30
    while True:
        with transaction(engine) as s:
            total = s.scalar(select(func.count()).select_from(WecomCallback))
            open_ = s.scalar(
                select(func.count()).where(WecomCallback.status.in_(["pending", "claimed"]))
            )
        if total == n and open_ == 0:
            return
        assert time.monotonic() < deadline, f"{total} stored, {open_} open"
        time.sleep(0.05)


def _add_event(fake: FakeLiveWeCom, external: str, state: str, code: str | None, at: int) -> dict:
    fields = {
        "CreateTime": at,
        "Event": "change_external_contact",
        "ChangeType": "add_external_contact",
        "UserID": STAFF,
        "ExternalUserID": external,
        "State": state,
    }
    if code:
        fields["WelcomeCode"] = code
    return fields


def test_scan_pushed_three_times_is_one_contact_one_welcome_counted_by_promoter(
    engine, live, db_url, tmp_path
):
    way = create_contact_way(
        engine,
        live.client(),
        staff=[STAFF],
        promoter="xiaowang",
        location="人民广场",
        campaign="spring",
    )
    assert len(way.state) <= 30 and way.qr_code
    external = "wmAbCdEf0123456789"
    live.fake.add_customer(external, "李雷", STAFF, way.state)
    event = _add_event(live.fake, external, way.state, live.fake.welcome_code(), int(time.time()))
    answers = [live.fake.push(live.url, event) for _ in range(3)]  # WeCom retries
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all(a.text == "success" for a in answers)
    _settled(engine, 1)

    with transaction(engine) as s:
        contacts = s.scalars(select(Contact)).all()
        assert len(contacts) == 1 and contacts[0].display_name == "李雷"
        kinds = set(s.scalars(select(Identity.kind).where(Identity.contact_id == contacts[0].id)))
        assert kinds == {"wecom_external_userid", "unionid"}
        welcome = s.scalars(select(OutboxMessage)).one()
    assert welcome.state == "sent" and welcome.campaign == "wecom-welcome"
    assert len(live.fake.welcomes) == 1
    assert "spring" in live.fake.welcomes[0]["text"]["content"]

    env = {**os.environ, "QUNFLOW_DATABASE_URL": db_url, "QUNFLOW_DATA_DIR": str(tmp_path)}
    today = datetime.now(UTC).astimezone(live.settings.zone).date()
    out = subprocess.run(
        [
            QUNFLOW,
            "report",
            "--by",
            "promoter",
            "--json",
            "--from",
            str(today),
            "--to",
            str(today + timedelta(days=1)),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"xiaowang"' in out.stdout
    report = json.loads(out.stdout)
    rows = [
        r for r in _rows(report) if r.get("promoter") == "xiaowang" or r.get("key") == "xiaowang"
    ]
    assert rows and any(v == 1 for r in rows for k, v in r.items() if "contact" in k or k == "new")


def _rows(data):
    if isinstance(data, dict):
        for value in data.values():
            yield from _rows(value)
    elif isinstance(data, list):
        for value in data:
            if isinstance(value, dict) and any(isinstance(v, str) for v in value.values()):
                yield value
            yield from _rows(value)


def test_unknown_state_is_stored_as_unknown_code_and_late_code_is_skipped(engine, live):
    external = "wmUnknownState000001"
    live.fake.add_customer(external, "韩梅梅", STAFF, "never-registered")
    # The event says it was received long ago: processing now finds its code past the window.
    event = _add_event(live.fake, external, "never-registered", live.fake.welcome_code(), 1)
    with transaction(engine) as s:
        from crm.intake.wecom_inbox import parse_xml, store_callback

        store_callback(
            engine,
            parse_xml(event_xml(live.fake.corp_id, event).encode()),
            "",
            now=datetime.now(UTC) - timedelta(seconds=60),
        )
    config = LiveConfig(welcome_window_seconds=18.0)
    done = process_inbox(engine, live.client(), config, worker="test")
    assert done.welcomes == {"welcome_late": 1}
    assert live.fake.welcomes == []
    with transaction(engine) as s:
        names = s.execute(
            select(Touch.contact_id, Contact.display_name).join(
                Contact, Contact.id == Touch.contact_id
            )
        ).all()
        assert [n for _, n in names] == ["韩梅梅"]
        from crm.models import SourceInstance

        source = s.scalar(
            select(SourceInstance.key).join(Touch, Touch.source_instance_id == SourceInstance.id)
        )
        assert source == "wecom-state:?"
        row = s.scalars(select(OutboxMessage)).one()
    assert row.state == "skipped" and row.reason.startswith("welcome_late")


def test_welcome_retried_on_41096_and_not_on_41051(engine, live):
    way = create_contact_way(engine, live.client(), staff=[STAFF], campaign="c1")
    live.fake.being_sent = 1
    for n, external in enumerate(["wmRetry00000000001", "wmRetry00000000002"]):
        live.fake.add_customer(external, f"客户{n}", STAFF, way.state)
    code = live.fake.welcome_code()
    live.fake.push(live.url, _add_event(live.fake, "wmRetry00000000001", way.state, code, 100))
    _settled(engine, 1)
    assert len(live.fake.welcomes) == 1  # 41096 once, then sent inside the window
    live.fake.used_codes.add(code2 := live.fake.welcome_code())  # already out: 41051
    live.fake.push(live.url, _add_event(live.fake, "wmRetry00000000002", way.state, code2, 101))
    _settled(engine, 2)
    with transaction(engine) as s:
        states = dict(s.execute(select(OutboxMessage.contact_id, OutboxMessage.reason)).all())
    reasons = sorted(str(r) for r in states.values())
    assert reasons[0] == "None" and reasons[1].startswith("welcome_already_sent")
    assert live.fake.count("/externalcontact/send_welcome_msg") == 3


def test_churn_lowers_score_alerts_and_skips_that_staffs_planned_messages(engine, live):
    way = create_contact_way(engine, live.client(), staff=[STAFF], promoter="p1", campaign="c1")
    external = "wmChurn00000000001"
    live.fake.add_customer(external, "王五", STAFF, way.state)
    live.fake.push(live.url, _add_event(live.fake, external, way.state, None, 1000))
    _settled(engine, 1)
    rules = load_rules()
    route(engine, rules=rules)
    with transaction(engine) as s:
        contact = s.scalars(select(Contact)).one()
        before = contact.score
        account = s.scalar(select(OperatorAccount.id).where(OperatorAccount.handle == STAFF))
        if account is None:
            s.add(OperatorAccount(platform="wecom", handle=STAFF))
            s.flush()
            account = s.scalar(select(OperatorAccount.id).where(OperatorAccount.handle == STAFF))
        s.add(
            OutboxMessage(
                campaign="nurture",
                step="d1",
                contact_id=contact.id,
                channel="wecom",
                template="prospect_nudge",
                account_id=account,
                state="planned",
                due_at=datetime.now(UTC) + timedelta(days=1),
                idempotency_key="nurture:d1:x",
            )
        )
    churn = {
        "CreateTime": 2000,
        "Event": "change_external_contact",
        "ChangeType": "del_follow_user",
        "UserID": STAFF,
        "ExternalUserID": external,
    }
    assert live.fake.push(live.url, churn).status_code == 200
    _settled(engine, 2)
    route(engine, rules=rules)
    with transaction(engine) as s:
        after = s.scalar(select(Contact.score).where(Contact.id == contact.id))
        events = s.scalars(select(Event.kind).where(Event.contact_id == contact.id)).all()
        planned = s.scalars(select(OutboxMessage).where(OutboxMessage.campaign == "nurture")).one()
        alert = s.scalars(select(Alert).where(Alert.kind == "wecom_churn")).one()
    assert "churn" in events
    assert after < before
    assert planned.state == "skipped" and planned.reason.startswith("wecom_churn")
    assert alert.details["staff"] == STAFF and alert.details["skipped_messages"] == 1


def test_delete_before_add_and_lost_add_member_found_by_reconciliation(engine, live):
    chat_id = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"
    with transaction(engine) as s:
        s.add(Community(name="体验群1", platform="wecom", external_id=chat_id, tier="open"))
    members = [
        {
            "userid": "wmMember0000000001",
            "type": 2,
            "join_time": 1_700_000_100,
            "join_scene": 3,
            "name": "甲",
        },
        {"userid": STAFF, "type": 1, "join_time": 1_700_000_000, "join_scene": 1},
    ]
    live.fake.add_group(chat_id, "体验群1", members, owner=STAFF)
    assert reconcile_chats(engine, live.client()).joined == 1
    # Member 2 joins, but WeCom's add_member callback is lost; member 1 leaves, and the leave
    # of a member 3 arrives before that member's join.
    live.fake.groups[chat_id]["member_list"].append(
        {"userid": "wmMember0000000002", "type": 2, "join_time": 1_700_000_300, "join_scene": 3}
    )
    live.fake.groups[chat_id]["member_list"].pop(0)
    live.fake.groups[chat_id]["member_version"] = "v2"
    base = {"Event": "change_external_chat", "ChatId": chat_id, "ChangeType": "update"}
    live.fake.push(
        live.url,
        {
            **base,
            "CreateTime": 1_700_000_400,
            "UpdateDetail": "del_member",
            "QuitScene": 0,
            "MemChangeList": ["wmMember0000000001"],
        },
    )
    live.fake.push(
        live.url,
        {
            **base,
            "CreateTime": 1_700_000_600,
            "UpdateDetail": "del_member",
            "QuitScene": 0,
            "MemChangeList": ["wmMember0000000003"],
        },
    )
    live.fake.push(
        live.url,
        {
            **base,
            "CreateTime": 1_700_000_500,
            "UpdateDetail": "add_member",
            "JoinScene": 3,
            "MemChangeList": ["wmMember0000000003"],
        },
    )
    _settled(engine, 3)

    def open_members() -> set[str]:
        with transaction(engine) as s:
            return set(
                s.scalars(
                    select(Identity.value)
                    .join(Membership, Membership.contact_id == Identity.contact_id)
                    .where(Membership.left_at.is_(None), Identity.kind == "wecom_external_userid")
                )
            )

    assert open_members() == set()  # 1 left; 3 left after joining; 2's join was lost
    fixed = reconcile_chats(engine, live.client())
    assert fixed.changed == 1 and fixed.joined == 1
    assert open_members() == {"wmMember0000000002"}
    assert reconcile_chats(engine, live.client()).changed == 0  # same member_version


def test_url_verification_and_refusals_store_nothing(engine, live):
    import base64

    from wechatpy.enterprise.crypto import PrpCrypto
    from wechatpy.utils import to_text

    from crm.intake.wecom_crypto import signature

    prp = PrpCrypto(base64.b64decode(live.fake.aes_key + "="))
    echostr = to_text(prp.encrypt("echo-1234567890", live.fake.corp_id))
    sig = signature(live.fake.token, "1700000000", "n1", echostr)
    ok = httpx.get(
        live.url,
        params={"msg_signature": sig, "timestamp": "1700000000", "nonce": "n1", "echostr": echostr},
    )
    assert ok.status_code == 200 and ok.text == "echo-1234567890"
    bad = httpx.get(
        live.url,
        params={
            "msg_signature": "0" * 40,
            "timestamp": "1700000000",
            "nonce": "n1",
            "echostr": echostr,
        },
    )
    assert bad.status_code == 401
    event = _add_event(live.fake, "wmX", "s", None, 1)
    assert live.fake.push(live.url, event, signature="f" * 40).status_code == 401
    other = FakeLiveWeCom(corp_id="ww-someone-else")
    assert other.push(live.url, event).status_code == 400  # another receive id
    assert (
        httpx.post(
            live.url,
            content=b"<xml><Encrypt>!!</Encrypt></xml>",
            params={
                "msg_signature": signature(live.fake.token, "1", "2", "!!"),
                "timestamp": "1",
                "nonce": "2",
            },
        ).status_code
        == 400
    )
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(WecomCallback)) == 0


def test_qr_cli_creates_lists_updates_and_deletes_wecom_codes(cli_env):
    fake = FakeLiveWeCom()
    with serve(fake) as (_, base):
        env = {
            **cli_env,
            "QUNFLOW_WECOM_CORP_ID": fake.corp_id,
            "QUNFLOW_WECOM_SECRET": fake.secret,
            "QUNFLOW_WECOM_BASE_URL": base,
        }

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([QUNFLOW, *args], env=env, capture_output=True, text=True)

        assert run("db", "upgrade").returncode == 0
        made = run(
            "qr",
            "create",
            "--wecom",
            "--staff",
            "zhangsan",
            "--staff",
            "lisi",
            "--promoter",
            "xiaowang",
            "--location",
            "展会A",
            "--campaign",
            "spring",
            "--json",
        )
        assert made.returncode == 0, made.stderr
        way = json.loads(made.stdout)
        assert len(way["state"]) <= 30 and way["qr_code"].startswith("https://")
        sent = fake.contact_ways[way["config_id"]]
        assert sent["type"] == 2 and sent["scene"] == 2 and sent["state"] == way["state"]
        listed = json.loads(run("qr", "list", "--wecom", "--json").stdout)
        assert [w["state"] for w in listed] == [way["state"]]
        assert run("qr", "update", way["state"], "--staff", "wangwu").returncode == 0
        assert fake.contact_ways[way["config_id"]]["user"] == ["wangwu"]
        assert run("qr", "delete", way["state"]).returncode == 0
        assert way["config_id"] not in fake.contact_ways
        assert json.loads(run("qr", "list", "--wecom", "--json").stdout) == []
        missing = run("qr", "delete", "no-such-state")
        assert missing.returncode == 2 and "no channel live code" in missing.stderr
        assert len(missing.stderr.strip().splitlines()) == 1
        no_staff = run("qr", "create", "--wecom")
        assert no_staff.returncode == 2 and "--staff" in no_staff.stderr


def test_join_way_spans_five_groups_of_a_tier_and_becomes_their_qr_code(engine, live):
    from crm.core.vocabulary import Tier
    from crm.routing.wecom_join_ways import create_join_way

    with transaction(engine) as s:
        for n in range(6):
            s.add(Community(name=f"活跃群{n}", platform="wecom", external_id=f"wrJoin{n}",
                            tier="active", position=n))  # fmt: skip
    way = create_join_way(engine, live.client(), Tier.ACTIVE, room_base_name="活跃群")
    sent = live.fake.join_ways[way.config_id]
    assert sent["chat_id_list"] == [f"wrJoin{n}" for n in range(5)]
    assert sent["auto_create_room"] == 1 and sent["room_base_name"] == "活跃群"
    assert len(sent["state"]) <= 30
    with transaction(engine) as s:
        urls = dict(s.execute(select(Community.external_id, Community.qr_code_url)).all())
    assert {urls[f"wrJoin{n}"] for n in range(5)} == {way.qr_code} and urls["wrJoin5"] is None


def test_a_scan_records_consent_for_wecom_only_as_the_in_person_source_asks(engine, live):
    from crm.compliance.optout import lacks_marketing_consent_clause
    from crm.models import Consent

    way = create_contact_way(engine, live.client(), staff=[STAFF], campaign="c1")
    scanned, added = "wmConsentScan000001", "wmConsentNoState001"
    live.fake.add_customer(scanned, "赵六", STAFF, way.state)
    live.fake.add_customer(added, "钱七", STAFF, "")  # the staff member added them: no code
    event = _add_event(live.fake, scanned, way.state, None, 3000)
    for _ in range(2):  # a retry records the consent once
        live.fake.push(live.url, event)
    live.fake.push(live.url, _add_event(live.fake, added, "", None, 3001))
    _settled(engine, 2)
    with transaction(engine) as s:
        ids = dict(s.execute(select(Identity.value, Identity.contact_id)).all())
        consents = s.execute(
            select(
                Consent.contact_id, Consent.kind, Consent.channel, Consent.purpose, Consent.source
            )
        ).all()
        lacks = {
            (who, ch): s.scalar(select(lacks_marketing_consent_clause(ids[who], ch)))
            for who in (scanned, added)
            for ch in ("wecom", "email")
        }
    assert consents == [(ids[scanned], "consent", "wecom", "marketing", "wecom channel code scan")]
    assert lacks == {
        (scanned, "wecom"): False,  # the scan is the in-person source's consent, on WeCom
        (scanned, "email"): True,  # other channels still need the sign-up form's
        (added, "wecom"): True,
        (added, "email"): True,
    }
