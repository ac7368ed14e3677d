"""The sales workspace over HTTP (FastAPI test client) on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import warnings
from datetime import timedelta

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select

from crm.core.db import transaction
from crm.core.settings import get_settings
from crm.models import (
    AuditEntry,
    Contact,
    Identity,
    Note,
    OutboxMessage,
    QueueAction,
    QueueItem,
    RawRecord,
    SourceInstance,
    TierChange,
)
from crm.models import utcnow as now_utc
from crm.sales.claims import claim_item
from flows.web.app import create_app
from flows.web.auth import LoginThrottle
from tests.helpers import queue_seed as seed
from tests.helpers.queue_seed import PASSWORD, T0

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette asks for httpx2, which is not packaged here
    from fastapi.testclient import TestClient

XSS = "<script>alert(1)</script>"
PUBLIC = ("/login", "/healthz", "/s/", "/hooks/", "/u/")  # /u/: signed unsubscribe links


@pytest.fixture
def app(engine):
    return create_app(get_settings(secret_key="test-secret-key-0123456789"), engine)


@pytest.fixture
def world(engine):
    staff = seed.users(engine)
    items = seed.prospects(engine, 6, names=[XSS, "王小明", "李四"], now=now_utc())
    return {"staff": staff, "items": items}


def _token(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in page"
    return m.group(1)


def login(app, name: str, password: str = PASSWORD) -> tuple[TestClient, str]:
    client = TestClient(app, base_url="http://testserver", follow_redirects=False)
    page = client.get("/login")
    assert page.status_code == 200
    r = client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": _token(page.text)},
    )
    assert r.status_code == 303, r.text
    queue_page = client.get("/queue")
    assert queue_page.status_code == 200
    return client, _token(queue_page.text)


def api_routes(routes, prefix: str = "") -> list[tuple[str, APIRoute]]:
    """(full path, route) of every endpoint, looking through included routers.

    FastAPI 0.150 keeps included routers as branches instead of copying their routes.
    """
    out = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            ctx = getattr(route, "include_context", None)
            out += api_routes(inner.routes, prefix + (getattr(ctx, "prefix", "") or ""))
        elif isinstance(route, APIRoute):
            out.append((prefix + route.path, route))
    return out


def all_routes(routes) -> list[tuple[str, set[str]]]:
    """(path, methods) of every endpoint."""
    return [(path, set(route.methods)) for path, route in api_routes(routes)]


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_but_public_ones_needs_a_session(app, world):
    client = TestClient(app, follow_redirects=False)
    checked = 0
    for path, methods in all_routes(app.routes):
        if path.startswith(PUBLIC):
            continue
        for method in methods:
            r = client.request(method, _fill(path))
            if method == "GET":
                assert r.status_code == 303 and r.headers["location"] == "/login", path
            else:
                assert r.status_code == 401, (method, path, r.status_code)
            checked += 1
    assert checked >= 20
    # And the public ones really are reachable without one.
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/login").status_code == 200
    # A forged cookie is no session.
    client.cookies.set("qf_session", "eyJ1IjoxfQ.forged.sig")
    assert client.get("/queue").status_code == 303


def test_public_router_is_mounted(app):
    paths = {path for path, _ in all_routes(app.routes)}
    assert "/s/{token}" in paths and "/hooks/leads" in paths


def test_csrf_is_required_on_every_post(app, world):
    client, token = login(app, "alice")
    assert client.post("/queue/claim-next").status_code == 403
    assert client.post("/queue/claim-next", data={"csrf_token": "wrong"}).status_code == 403
    assert client.post("/queue/claim-next", data={"csrf_token": token}).status_code == 303
    # The token of another session does not work either.
    _, other_token = login(app, "bob")
    assert client.post("/logout", data={"csrf_token": other_token}).status_code == 403
    # Login itself needs the pre-login token.
    fresh = TestClient(app, follow_redirects=False)
    r = fresh.post("/login", data={"username": "alice", "password": PASSWORD})
    assert r.status_code == 403


def test_session_cookie_flags_and_logout(app, world):
    client = TestClient(app, follow_redirects=False)
    page = client.get("/login")
    r = client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": _token(page.text)}
    )
    cookie = r.headers["set-cookie"]
    assert "qf_session=" in cookie and "HttpOnly" in cookie
    assert "SameSite=lax" in cookie and "Max-Age=28800" in cookie
    token = _token(client.get("/queue").text)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/queue").status_code == 303


def _try_login(client: TestClient, name: str, password: str, **headers: str):
    page = client.get("/login")
    return client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": _token(page.text)},
        headers=headers,
    )


def test_login_failures_slow_the_guesser_not_the_owner(engine, world):
    settings = get_settings(secret_key="test-secret-key-0123456789", trusted_proxies="10.0.0.1")
    app = create_app(settings, engine)
    clock = [1000.0]
    app.state.throttle = LoginThrottle(clock=lambda: clock[0])
    guesser = TestClient(app, follow_redirects=False, client=("192.0.2.66", 40000))
    for _ in range(5):
        r = _try_login(guesser, "bob", "nope")
        assert r.status_code == 401 and "用户名或密码错误" in r.text
    r = _try_login(guesser, "bob", PASSWORD)  # even the right password waits its turn there
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    # A forged X-Forwarded-For from an untrusted peer does not give the guesser a new address.
    assert (
        _try_login(guesser, "bob", PASSWORD, **{"x-forwarded-for": "203.0.113.5"}).status_code
        == 429
    )
    # Another user from the same address is not slowed yet.
    colleague = TestClient(app, follow_redirects=False, client=("192.0.2.66", 40001))
    assert _try_login(colleague, "alice", PASSWORD).status_code == 303
    # Bob himself, elsewhere, logs in while the guesser waits; through the trusted proxy too.
    owner = TestClient(app, follow_redirects=False, client=("198.51.100.7", 40000))
    assert _try_login(owner, "bob", PASSWORD).status_code == 303
    proxied = TestClient(app, follow_redirects=False, client=("10.0.0.1", 40000))
    forwarded = {"x-forwarded-for": "192.0.2.66, 198.51.100.8"}  # the proxy appended the last
    assert _try_login(proxied, "bob", PASSWORD, **forwarded).status_code == 303
    # The guesser's next try waits longer after each failure.
    clock[0] += 1.0
    assert _try_login(guesser, "bob", "nope").status_code == 401
    r = _try_login(guesser, "bob", "nope")
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    clock[0] += 2.0
    assert _try_login(guesser, "bob", PASSWORD).status_code == 303


def test_nicknames_render_as_text(app, world):
    client, _ = login(app, "alice")
    page = client.get("/queue?view=pool")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert XSS not in page.text
    cid = world["items"][0]["contact_id"]
    detail = client.get(f"/prospects/{cid}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail.text
    assert XSS not in detail.text


def test_queue_filters_sort_paging_and_english(app, world, engine):
    client, _ = login(app, "alice")
    page = client.get("/queue?view=pool&sort=score&desc=1")
    assert page.status_code == 200 and "公海池" in page.text
    rows = re.findall(r'<tr data-item="(\d+)">', page.text)
    assert len(rows) == 6
    qr = client.get("/queue?view=pool&source_kind=qr_signup")
    assert len(re.findall(r'<tr data-item="', qr.text)) == 3
    scored = client.get("/queue?view=pool&min_score=44&max_score=45")
    assert len(re.findall(r'<tr data-item="', scored.text)) == 2
    grouped = client.get("/queue?view=pool&group=意向群1&promoter=zhang&tier=prospect")
    assert len(re.findall(r'<tr data-item="', grouped.text)) == 3
    due = (now_utc() + timedelta(hours=2, minutes=30)).astimezone(get_settings().zone)
    soon = client.get(f"/queue?view=pool&due_before={due:%Y-%m-%dT%H:%M}")
    assert len(re.findall(r'<tr data-item="', soon.text)) == 2
    # Unknown sort keys fall back to the default instead of reaching SQL.
    assert client.get("/queue?view=pool&sort=id;drop").status_code == 200
    seed.prospects(engine, 55, now=now_utc())
    first = client.get("/queue?view=pool")
    assert "page=2" in first.text
    second = client.get("/queue?view=pool&page=2")
    assert len(re.findall(r'<tr data-item="', second.text)) == 11
    english = client.get("/queue?view=pool&lang=en")
    assert "Pool" in english.text and "Claim" in english.text
    # The language sticks through the cookie.
    assert "My queue" in client.get("/queue").text


def test_claim_outcomes_and_conflict_between_two_people(app, world, engine):
    alice, a_token = login(app, "alice")
    bob, b_token = login(app, "bob")
    item = world["items"][1]
    r = alice.post(f"/queue/items/{item['item_id']}/claim", data={"csrf_token": a_token})
    assert r.status_code == 303 and r.headers["location"] == f"/prospects/{item['contact_id']}"
    r = bob.post(f"/queue/items/{item['item_id']}/claim", data={"csrf_token": b_token})
    assert r.status_code == 409
    assert "已被「alice」认领" in r.text  # the workspace speaks Chinese unless told otherwise
    mine = alice.get("/queue?view=mine")
    assert "王小明" in mine.text
    # Bob may not act on Alice's prospect.
    r = bob.post(
        f"/queue/items/{item['item_id']}/outcome",
        data={"csrf_token": b_token, "status": "contacted"},
    )
    assert r.status_code == 403
    r = bob.post(
        f"/prospects/{item['contact_id']}/notes", data={"csrf_token": b_token, "body": "hi"}
    )
    assert r.status_code == 403
    url = f"/queue/items/{item['item_id']}"
    ok = alice.post(
        f"{url}/attempt", data={"csrf_token": a_token, "note": "打了电话", "next": "/queue"}
    )
    assert ok.status_code == 303
    assert (
        alice.post(
            f"{url}/outcome", data={"csrf_token": a_token, "status": "contacted"}
        ).status_code
        == 303
    )
    lost = alice.post(f"{url}/outcome", data={"csrf_token": a_token, "status": "lost"})
    assert lost.status_code == 400 and "reason" in lost.text
    until = (now_utc() + timedelta(days=1)).astimezone(get_settings().zone)
    snooze = alice.post(
        f"{url}/outcome",
        data={"csrf_token": a_token, "status": "snoozed", "until": f"{until:%Y-%m-%dT%H:%M}"},
    )
    assert snooze.status_code == 303
    note = alice.post(
        f"/prospects/{item['contact_id']}/notes", data={"csrf_token": a_token, "body": XSS}
    )
    assert note.status_code == 303
    page = alice.get(f"/prospects/{item['contact_id']}")
    assert "&lt;script&gt;" in page.text and XSS not in page.text
    assert "打了电话" in page.text
    assert (
        alice.post(
            f"{url}/outcome", data={"csrf_token": a_token, "status": "lost", "reason": "预算不够"}
        ).status_code
        == 303
    )
    with transaction(engine) as s:
        row = s.get(QueueItem, item["item_id"])
        assert (row.status, row.outcome_reason) == ("lost", "预算不够")
        actors = set(
            s.scalars(select(AuditEntry.actor).where(AuditEntry.action.startswith("queue.")))
        )
    assert actors == {"alice"}


def test_won_moves_the_prospect_to_paid(app, world, engine):
    alice, token = login(app, "alice")
    item = world["items"][2]
    alice.post(f"/queue/items/{item['item_id']}/claim", data={"csrf_token": token})
    r = alice.post(
        f"/queue/items/{item['item_id']}/outcome",
        data={"csrf_token": token, "status": "won", "next": f"/prospects/{item['contact_id']}"},
    )
    assert r.status_code == 303
    page = alice.get(f"/prospects/{item['contact_id']}")
    assert '<strong id="tier">付费</strong>' in page.text
    with transaction(engine) as s:
        assert s.get(Contact, item["contact_id"]).tier == "paid"


def test_outcome_after_the_lease_expired_is_refused(app, world, engine):
    alice, token = login(app, "alice")
    item = world["items"][3]
    claim_item(engine, item["item_id"], world["staff"]["alice"], T0, zone=get_settings().zone)
    r = alice.post(
        f"/queue/items/{item['item_id']}/outcome",
        data={"csrf_token": token, "status": "contacted"},
    )
    assert r.status_code == 409
    assert "到期" in r.text and "请重新认领" in r.text


def test_queue_page_lists_a_run_out_lease_as_available_and_writes_nothing(app, world, engine):
    item = world["items"][4]
    zone = get_settings().zone
    claim_item(engine, item["item_id"], world["staff"]["bob"], T0, zone=zone)  # long run out
    alice, token = login(app, "alice")

    def snapshot():
        with transaction(engine) as s:
            items = s.execute(select(QueueItem.__table__).order_by(QueueItem.id)).all()
            actions = s.scalar(select(func.count()).select_from(QueueAction))
            audited = s.scalar(select(func.count()).select_from(AuditEntry))
        return items, actions, audited

    before = snapshot()
    for view in ("pool", "mine", "team"):
        assert alice.get(f"/queue?view={view}").status_code == 200
    page = alice.get("/queue?view=pool")
    assert snapshot() == before
    row = re.search(rf'<tr data-item="{item["item_id"]}">(.*?)</tr>', page.text, re.S)
    assert row is not None and f"/queue/items/{item['item_id']}/claim" in row.group(1)
    assert "bob" not in row.group(1)
    # The write path sweeps it (with its history) and hands it over.
    r = alice.post(f"/queue/items/{item['item_id']}/claim", data={"csrf_token": token})
    assert r.status_code == 303
    with transaction(engine) as s:
        acts = s.execute(
            select(QueueAction.action, QueueAction.user_id)
            .where(QueueAction.item_id == item["item_id"])
            .order_by(QueueAction.id)
        ).all()
        held = s.get(QueueItem, item["item_id"])
        assert (held.status, held.assignee_id) == ("claimed", world["staff"]["alice"])
    staff = world["staff"]
    assert [tuple(a) for a in acts] == [
        ("claim", staff["bob"]),
        ("expired", None),
        ("claim", staff["alice"]),
    ]


def test_claim_next_and_empty_pool(app, world, engine):
    alice, token = login(app, "alice")
    r = alice.post("/queue/claim-next", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"].startswith("/prospects/")
    page = alice.get(r.headers["location"])
    assert "为什么是这个分数" in page.text and "意向（提到学费、试听等）" in page.text
    assert "多少钱" in page.text  # event timeline
    # Tier history: the system's move in the catalog's words, an operator's reason as typed.
    assert re.search(r"分数 \d+ ≥ 升级线 40", page.text) and "score " not in page.text
    cid = int(r.headers["location"].rstrip("/").rsplit("/", 1)[1])
    with transaction(engine) as s:
        s.add(
            TierChange(
                contact_id=cid,
                from_tier="prospect",
                to_tier="active",
                reason="老板说先放一放",
                actor="manager:wang",
            )
        )
    page = alice.get(r.headers["location"])
    assert "老板说先放一放" in page.text


def test_sales_cannot_reach_manager_pages(app, world):
    alice, token = login(app, "alice")
    for path in (
        "/manage/team",
        "/manage/accounts",
        "/manage/funnel",
        "/manage/audit",
        "/manage/quarantine",
    ):
        assert alice.get(path).status_code == 403, path
    assert alice.get(f"/admin/contacts/{world['items'][0]['contact_id']}/export").status_code == 403
    r = alice.post(
        f"/queue/items/{world['items'][0]['item_id']}/assign",
        data={"csrf_token": token, "to_user": world["staff"]["alice"]},
    )
    assert r.status_code == 403


def test_manager_assigns_sets_caps_and_sees_pages(app, world, engine):
    mia, token = login(app, "mia")
    item = world["items"][4]
    r = mia.post(
        f"/queue/items/{item['item_id']}/assign",
        data={"csrf_token": token, "to_user": world["staff"]["bob"]},
    )
    assert r.status_code == 303
    r = mia.post(
        f"/queue/items/{item['item_id']}/assign",
        data={"csrf_token": token, "to_user": world["staff"]["alice"]},
    )
    assert r.status_code == 303
    with transaction(engine) as s:
        assert s.get(QueueItem, item["item_id"]).assignee_id == world["staff"]["alice"]
    r = mia.post(
        f"/manage/users/{world['staff']['bob']}/caps",
        data={"csrf_token": token, "claims": "7", "holding": "3"},
    )
    assert r.status_code == 303
    team = mia.get("/manage/team")
    assert team.status_code == 200 and 'value="7"' in team.text
    r = mia.post("/manage/assign-pool", data={"csrf_token": token, "strategy": "load"})
    assert r.status_code == 303 and "assigned=" in r.headers["location"]
    assert mia.get("/queue?view=team").status_code == 200
    accounts = mia.get("/manage/accounts")
    assert accounts.status_code == 200
    funnel = mia.get("/manage/funnel?by=promoter")
    assert funnel.status_code == 200
    audit = mia.get("/manage/audit?action=queue.")
    assert audit.status_code == 200 and "queue.assign" in audit.text


def test_manager_sees_and_dismisses_quarantined_rows(app, world, engine, tmp_path):
    from crm.intake.pipeline import ingest_path
    from crm.models import QuarantinedRow

    bad = tmp_path / "bad-events.jsonl"
    rows = [
        {"event_id": "Q1", "type": "purchase", "phone": "13800138000", "time": "上周三"},
        {"event_id": "Q2", "type": "message", "phone": "13800138001", "time": XSS},
    ]
    bad.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    assert ingest_path(engine, "events", bad).quarantined == 2
    alice, alice_token = login(app, "alice")
    assert (
        alice.post(
            "/manage/quarantine/dismiss", data={"csrf_token": alice_token, "ids": "1", "note": "x"}
        ).status_code
        == 403
    )
    mia, token = login(app, "mia")
    page = mia.get("/manage/quarantine?origin=bad-events")
    assert page.status_code == 200
    assert "bad-events.jsonl" in page.text and "无法识别的时间：“上周三”" in page.text
    assert XSS not in page.text and "&lt;script&gt;" in page.text
    with transaction(engine) as s:
        ids = sorted(s.scalars(select(QuarantinedRow.id)))
    no_note = mia.post(
        "/manage/quarantine/dismiss", data={"csrf_token": token, "ids": str(ids[0]), "note": " "}
    )
    assert no_note.status_code == 400 and "忽略隔离的行需要写一句原因" in no_note.text
    r = mia.post(
        "/manage/quarantine/dismiss",
        data={"csrf_token": token, "ids": str(ids[0]), "note": "测试数据"},
    )
    assert r.status_code == 303 and r.headers["location"].endswith("dismissed=1")
    open_page = mia.get("/manage/quarantine")
    assert f'value="{ids[0]}"' not in open_page.text and f'value="{ids[1]}"' in open_page.text
    every = mia.get("/manage/quarantine?all=true")
    assert "已忽略 ·" in every.text and "mia: 测试数据" in every.text and "by mia" not in every.text


def test_admin_exports_and_erases_a_contact(app, world, engine):
    root, token = login(app, "root")
    item = world["items"][1]
    cid = item["contact_id"]
    with transaction(engine) as s:
        src = s.scalar(select(SourceInstance.id).limit(1))
        s.add(
            RawRecord(
                source_instance_id=src, record_key="r1", payload={"name": "王小明"}, contact_id=cid
            )
        )
        s.add(Note(contact_id=cid, user_id=None, body="私人备注"))
        s.add(
            OutboxMessage(
                campaign="prospect-nudge",
                step="s1",
                contact_id=cid,
                channel="console",
                template="t",
                due_at=now_utc(),
                idempotency_key="k1",
                rendered="你好 王小明",
            )
        )
    r = root.get(f"/admin/contacts/{cid}/export")
    assert r.status_code == 200
    doc = json.loads(r.text)
    assert doc["contact"]["name"] == "王小明"
    assert doc["contact"]["identities"][0]["kind"] == "phone"
    assert doc["raw_records"][0]["payload"] == {"name": "王小明"}
    assert doc["notes"][0]["body"] == "私人备注"
    assert root.post(f"/admin/contacts/{cid}/erase", data={"csrf_token": token}).status_code == 400
    r = root.post(f"/admin/contacts/{cid}/erase", data={"csrf_token": token, "confirm": "yes"})
    assert r.status_code == 303
    with transaction(engine) as s:
        c = s.get(Contact, cid)
        assert (c.status, c.display_name) == ("erased", None)
        assert (
            s.scalar(select(func.count()).select_from(Identity).where(Identity.contact_id == cid))
            == 0
        )
        assert s.scalar(select(func.count()).select_from(Note).where(Note.contact_id == cid)) == 0
        assert s.scalar(select(RawRecord.payload).where(RawRecord.contact_id == cid)) == {
            "erased": True
        }
        msg = s.scalar(select(OutboxMessage).where(OutboxMessage.contact_id == cid))
        assert (msg.state, msg.rendered) == ("skipped", None)
        erase = s.scalar(select(AuditEntry).where(AuditEntry.action == "contact.erase"))
        assert erase.actor == "root" and "王小明" not in json.dumps(
            erase.details, ensure_ascii=False
        )
    assert "王小明" not in root.get(f"/prospects/{cid}").text


def test_trigger_a_follow_up_campaign(app, world, engine):
    pytest.importorskip("crm.outreach.planning")
    alice, token = login(app, "alice")
    item = world["items"][5]
    alice.post(f"/queue/items/{item['item_id']}/claim", data={"csrf_token": token})
    r = alice.post(
        "/campaigns/trigger",
        data={
            "csrf_token": token,
            "campaign": "prospect-nudge",
            "contact_ids": [item["contact_id"]],
            "next": f"/prospects/{item['contact_id']}",
        },
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"].startswith(f"/prospects/{item['contact_id']}?msg=campaign-")
    # Not her prospect: refused.
    other = world["items"][0]["contact_id"]
    r = alice.post(
        "/campaigns/trigger",
        data={"csrf_token": token, "campaign": "prospect-nudge", "contact_ids": [other]},
    )
    assert r.status_code == 403
    with transaction(engine) as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "campaign.trigger")
            )
            == 1
        )


def test_campaign_trigger_batch_limit_and_empty_selection(app, world):
    alice, token = login(app, "alice")
    too_many = alice.post(
        "/campaigns/trigger",
        data={
            "csrf_token": token,
            "campaign": "prospect-nudge",
            "contact_ids": list(range(1, 502)),
        },
    )
    assert too_many.status_code == 400 and "一次最多 500 个客户" in too_many.text
    empty = alice.post("/campaigns/trigger", data={"csrf_token": token, "campaign": "x"})
    assert empty.status_code == 400 and "请至少选择一个客户" in empty.text


def test_tags_on_a_held_prospect(app, world):
    alice, token = login(app, "alice")
    bob, b_token = login(app, "bob")
    item = world["items"][2]
    cid = item["contact_id"]
    alice.post(f"/queue/items/{item['item_id']}/claim", data={"csrf_token": token})
    r = alice.post(f"/prospects/{cid}/tags", data={"csrf_token": token, "tags": "高意向、ＶＩＰ"})
    assert r.status_code == 303 and r.headers["location"] == f"/prospects/{cid}#tags"
    page = alice.get(f"/prospects/{cid}").text
    assert "高意向" in page and "VIP" in page and "ＶＩＰ" not in page
    assert f"/prospects/{cid}" in alice.get("/queue", params={"view": "mine", "tag": "VIP"}).text
    assert f"/prospects/{cid}" not in alice.get("/queue", params={"view": "mine", "tag": "无"}).text
    # not hers to tag
    assert (
        bob.post(f"/prospects/{cid}/tags", data={"csrf_token": b_token, "tags": "x"}).status_code
        == 403
    )
    too_long = alice.post(f"/prospects/{cid}/tags", data={"csrf_token": token, "tags": "长" * 41})
    assert too_long.status_code == 400 and "超过了 40 个字符" in too_long.text
    empty = alice.post(f"/prospects/{cid}/tags", data={"csrf_token": token, "tags": " 、, "})
    assert empty.status_code == 400 and "没有给出标签" in empty.text
    r = alice.post(f"/prospects/{cid}/tags/remove", data={"csrf_token": token, "tag": "VIP"})
    assert r.status_code == 303
    page = alice.get(f"/prospects/{cid}").text
    assert "高意向" in page and 'value="VIP"' not in page


def test_people_get_error_pages_and_programs_get_json(app, world):
    client, _ = login(app, "alice")
    bad = client.get("/queue?page=abc")
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("text/html")
    assert re.search(r'id="error-message">page: Input should be a valid integer', bad.text)
    missing = client.get("/no/such/page?lang=en")
    assert missing.status_code == 404 and 'id="error-message">No such page<' in missing.text
    assert "/queue" in missing.text  # a way back
    # Outside a session too, and the webhook keeps answering programs in JSON.
    anonymous = TestClient(app, follow_redirects=False)
    assert "页面不存在" in anonymous.get("/nothing-here").text
    assert anonymous.get("/hooks/nothing").json() == {"detail": "Not Found"}


def test_score_breakdown_reads_in_words_with_its_evidence(app, world, engine):
    from datetime import timedelta

    from crm.models import Contact, Event

    cid = world["items"][0]["contact_id"]
    with transaction(engine) as s:
        asked = Event(
            contact_id=cid,
            kind="message",
            occurred_at=now_utc() - timedelta(days=2),
            payload={"message": "学费多少？可以试听吗"},
        )
        s.add(asked)
        s.flush()
        contact = s.get(Contact, cid)
        contact.tier = "prospect"
        contact.score_breakdown = [
            {"signal": "source:self_media+intent", "points": 25, "events": []},
            {"signal": "intent", "points": 40, "events": [asked.id]},
            {"signal": "engagement", "points": 3, "events": [asked.id]},
        ]
    client, _ = login(app, "alice")
    zh = client.get(f"/prospects/{cid}").text
    table = zh[zh.index('id="breakdown"') : zh.index('id="tags"')]
    for words in (
        "来源：自媒体 + 咨询意向",
        "意向（提到学费、试听等）",
        "「学费多少？可以试听吗」",
    ):
        assert words in table
    assert "发言" in table and "半衰期 14 天" in table and "+40" in table
    assert "source:" not in table and "events:" not in table and "engagement" not in table
    assert '<strong id="tier">意向</strong>' in zh
    en = client.get(f"/prospects/{cid}?lang=en").text
    table = en[en.index('id="breakdown"') : en.index('id="tags"')]
    assert "Source: Self-media + enquiry intent" in table and "half-life 14 days" in table
    manager, _ = login(app, "mia")  # may act on any prospect: the follow-up menu shows
    page = manager.get(f"/prospects/{cid}").text
    menu = re.search(r'<select name="campaign"[^>]*>\s*<option[^>]*value="([^"]+)"', page)
    assert menu and menu.group(1) != "group-rules"  # a campaign written to the person first


def test_queue_menus_and_columns_show_words_not_codes(app, world):
    client, _ = login(app, "alice")
    page = client.get("/queue?view=pool").text
    sort_menu = page[page.index('<select name="sort">') :].split("</select>")[0]
    assert ">跟进截止时间<" in sort_menu and ">sla<" not in sort_menu
    table = page[page.index('id="queue-table"') :]
    assert "地推扫码" in table and "qr_signup" not in table.split("<tbody>")[1].split("</tbody>")[0]
    assert ">意向<" in table


def test_peers_page_shows_due_times_and_groups_waiting_for_their_owner(app, world, engine):
    from crm.core.vocabulary import Platform
    from crm.outreach.accounts import add_account
    from crm.outreach.peers import add_peer, mark_requested

    add_account(engine, "op-sh", Platform.WECHAT, timezone="Asia/Shanghai")
    add_peer(engine, "考研互助群")
    add_peer(engine, "宝妈交流群", join_method="introduction")
    mark_requested(engine, "宝妈交流群", account="op-sh", note="等群主老王通过")
    client, _ = login(app, "alice")
    from crm.outreach.peer_plan import plan_joins

    plan_joins(engine, settings=get_settings(secret_key="test-secret-key-0123456789"))
    page = client.get("/peers")
    assert page.status_code == 200
    joins = page.text.split('id="peer-tasks"')[1].split("</table>")[0]
    assert "考研互助群" in joins and "宝妈交流群" not in joins and "Asia/Shanghai" in joins
    asked = page.text.split('id="peer-requested"')[1].split("</table>")[0]
    assert "宝妈交流群" in asked and "等群主老王通过" in asked and "op-sh" in asked
