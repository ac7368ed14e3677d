"""The public sign-up page (over real HTTP) and the signed lead/event webhooks."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

with warnings.catch_warnings():
    # starlette announces a move from httpx to httpx2 for its test client; httpx is what we use.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crm.core.db import transaction
from crm.core.settings import get_settings
from crm.intake.qr import QrClaims, sign_token
from crm.intake.signatures import sign, sign_untimed, signed_headers
from crm.models import QuarantinedRow, RawRecord, SourceInstance
from flows.web.app import create_app

SECRET = "signing-key-for-tests"
HOOK_SECRET = "hook-secret-for-tests"


def make_app(engine, **settings) -> FastAPI:
    """The whole web app (guards, error pages) around the test database."""
    return create_app(
        get_settings(secret_key=SECRET, webhook_secret=HOOK_SECRET, **settings), engine
    )


def token(**kw) -> str:
    claims = dict(
        code_id="code01",
        promoter="小李",
        location="五道口",
        campaign="spring",
        expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    claims.update(kw)
    return sign_token(QrClaims(**claims), SECRET)


def raw_count(engine) -> int:
    with transaction(engine) as s:
        return s.scalar(select(func.count()).select_from(RawRecord)) or 0


def nonce_of(html: str) -> str:
    match = re.search(r'name="nonce" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


GOOD = {
    "name": "张三",
    "phone": "138 0013 8000",
    "wechat_id": "",
    "consent": "1",
    "q_goal": "考研",
    "q_budget": "有",
}


@pytest.fixture
def live(engine) -> Iterator[str]:
    """The router under a real uvicorn server on a free port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(make_app(engine), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_signup_over_http_is_stored_once_even_if_sent_twice(engine, live):
    t = token()
    with httpx.Client(base_url=live, timeout=10) as http:
        page = http.get(f"/s/{t}")
        assert page.status_code == 200
        assert '<meta name="viewport"' in page.text and 'lang="zh-CN"' in page.text
        assert "您的目标是" in page.text  # the campaign's screening questions
        form = {**GOOD, "nonce": nonce_of(page.text)}
        first = http.post(f"/s/{t}", data=form)
        again = http.post(f"/s/{t}", data=form)
    assert first.status_code == again.status_code == 200
    assert "报名成功" in first.text and "报名成功" in again.text
    with transaction(engine) as s:
        rows = s.execute(select(RawRecord, SourceInstance).join(SourceInstance)).all()
    assert len(rows) == 1
    raw, src = rows[0]
    assert raw.status == "pending"
    assert raw.payload["phone"] == "+8613800138000"
    assert raw.payload["consent"] is True
    assert raw.payload["answers"] == {"goal": "考研", "budget": "有"}
    assert (src.kind, src.key, src.promoter, src.location, src.campaign) == (
        "qr_signup",
        "code01",
        "小李",
        "五道口",
        "spring",
    )


def test_two_page_loads_are_two_sign_ups(engine):
    client = TestClient(make_app(engine))
    t = token()
    for phone in ("13800138000", "13900139000"):
        nonce = nonce_of(client.get(f"/s/{t}").text)
        assert client.post(f"/s/{t}", data={**GOOD, "phone": phone, "nonce": nonce}).is_success
    assert raw_count(engine) == 2


def test_expired_code_gets_a_clear_page_and_nothing_is_stored(engine):
    client = TestClient(make_app(engine))
    good = token()
    nonce = nonce_of(client.get(f"/s/{good}").text)
    old = token(expires_at=datetime.now(UTC) - timedelta(minutes=1))
    page = client.get(f"/s/{old}")
    assert page.status_code == 410 and "已过期" in page.text
    posted = client.post(f"/s/{old}", data={**GOOD, "nonce": nonce})
    assert posted.status_code == 410
    assert raw_count(engine) == 0


def test_tampered_code_gets_a_clear_page_and_nothing_is_stored(engine):
    client = TestClient(make_app(engine))
    t = token()
    nonce = nonce_of(client.get(f"/s/{t}").text)
    forged = token(promoter="冒充者")[:-3] + t[-3:]
    assert client.get(f"/s/{forged}").status_code == 400
    posted = client.post(f"/s/{forged}", data={**GOOD, "nonce": nonce})
    assert posted.status_code == 400 and "链接无效" in posted.text
    assert raw_count(engine) == 0


def test_missing_consent_rerenders_the_form_with_the_error(engine):
    client = TestClient(make_app(engine))
    t = token()
    nonce = nonce_of(client.get(f"/s/{t}").text)
    form = {k: v for k, v in GOOD.items() if k != "consent"} | {"nonce": nonce}
    page = client.post(f"/s/{t}", data=form)
    assert page.status_code == 422
    assert "请阅读并勾选同意后提交" in page.text
    assert 'value="张三"' in page.text  # what was typed is kept
    assert nonce_of(page.text) == nonce  # fixing and resending is still the same form
    assert raw_count(engine) == 0


@pytest.mark.parametrize(
    ("change", "field_error"),
    [
        ({"phone": "12345", "wechat_id": ""}, "手机号格式不正确"),
        ({"phone": "", "wechat_id": ""}, "请至少填写手机号或微信号"),
        ({"phone": "", "wechat_id": "1abc"}, "微信号格式不正确"),
        ({"q_goal": "<script>x</script>"}, "请选择一个选项"),
        ({"name": ""}, "请填写姓名"),
    ],
)
def test_server_side_validation(engine, change, field_error):
    client = TestClient(make_app(engine))
    t = token()
    nonce = nonce_of(client.get(f"/s/{t}").text)
    page = client.post(f"/s/{t}", data={**GOOD, **change, "nonce": nonce})
    assert page.status_code == 422 and field_error in page.text
    assert "<script>x" not in page.text  # autoescaped
    assert raw_count(engine) == 0


CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def _page_words(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def test_the_sign_up_reads_in_english_from_form_to_thanks(engine):
    client = TestClient(make_app(engine))
    t = token(campaign="spring-trial", location="Hall A")
    form = client.get(f"/s/{t}?lang=en")
    assert '<html lang="en">' in form.text and "Mobile number" in form.text
    assert f'action="/s/{t}?lang=en"' in form.text  # the answer page keeps the language
    assert not CJK.findall(_page_words(form.text)), _page_words(form.text)
    # The stored answer is the option as the screening rules know it.
    assert re.search(r'value="考研"\s*> Graduate entrance exam', form.text)
    bad = client.post(
        f"/s/{t}?lang=en",
        data={**GOOD, "phone": "12345", "consent": "", "nonce": nonce_of(form.text)},
    )
    assert bad.status_code == 422
    assert "This is not a valid mobile number" in bad.text
    assert "Please read and tick the consent box" in bad.text
    assert not CJK.findall(_page_words(bad.text).replace("张三", ""))
    done = client.post(f"/s/{t}?lang=en", data={**GOOD, "nonce": nonce_of(form.text)})
    assert done.status_code == 200 and "Thank you, you are signed up!" in done.text
    assert not CJK.findall(_page_words(done.text))
    gone = client.get(f"/s/{t}x?lang=en")
    assert "This link is not valid" in gone.text and not CJK.findall(_page_words(gone.text))
    zh = client.get(f"/s/{t}")  # Chinese unless asked otherwise
    assert '<html lang="zh-CN">' in zh.text and "手机号" in zh.text


def test_forged_form_nonce_is_refused(engine):
    client = TestClient(make_app(engine))
    t = token()
    page = client.post(f"/s/{t}", data={**GOOD, "nonce": "made-up"})
    assert page.status_code == 400
    assert raw_count(engine) == 0


def test_wechat_id_alone_is_enough(engine):
    client = TestClient(make_app(engine))
    t = token()
    nonce = nonce_of(client.get(f"/s/{t}").text)
    form = {**GOOD, "phone": "", "wechat_id": "Zhang_San88", "nonce": nonce}
    assert client.post(f"/s/{t}", data=form).status_code == 200
    with transaction(engine) as s:
        assert s.scalar(select(RawRecord.payload))["wechat_id"] == "zhang_san88"


def sign_up(client: TestClient, t: str, phone: str):
    nonce = nonce_of(client.get(f"/s/{t}").text)
    return client.post(f"/s/{t}", data={**GOOD, "phone": phone, "nonce": nonce})


def test_a_burst_of_sign_ups_from_one_address_is_held_at_the_limit(engine):
    from crm.intake.signup_throttle import SIGNUPS_PER_ADDRESS

    client = TestClient(make_app(engine))
    t = token()
    answers = [sign_up(client, t, f"1380013{n:04d}") for n in range(50)]
    assert [a.status_code for a in answers] == [200] * SIGNUPS_PER_ADDRESS + [429] * (
        50 - SIGNUPS_PER_ADDRESS
    )
    assert raw_count(engine) == SIGNUPS_PER_ADDRESS
    busy = answers[-1]
    assert "现在报名的人太多" in busy.text
    assert 'value="张三"' in busy.text and 'value="13800130049"' in busy.text  # kept to resend
    assert 1 <= int(busy.headers["Retry-After"]) <= 60
    english = client.post(f"/s/{t}?lang=en", data={**GOOD, "nonce": nonce_of(busy.text)})
    assert english.status_code == 429 and "Too many sign-ups right now" in english.text
    # Another code from another address is not held back by this one.
    other = TestClient(make_app(engine), client=("203.0.113.9", 4000))
    assert sign_up(other, token(code_id="code02"), "13900139000").status_code == 200


def test_sign_ups_through_one_code_are_held_at_the_limit_across_addresses(engine):
    from crm.intake.signup_throttle import SIGNUPS_PER_CODE

    app = make_app(engine)
    t = token()
    codes = []
    for n in range(SIGNUPS_PER_CODE + 2):
        client = TestClient(app, client=(f"198.51.100.{n}", 4000))
        codes.append(sign_up(client, t, f"1370013{n:04d}").status_code)
    assert codes == [200] * SIGNUPS_PER_CODE + [429, 429]
    assert raw_count(engine) == SIGNUPS_PER_CODE
    fresh = TestClient(app, client=("198.51.100.250", 4000))
    assert sign_up(fresh, token(code_id="code02"), "13600136000").status_code == 200


def test_a_form_with_mistakes_does_not_use_up_the_allowance(engine):
    from crm.intake.signup_throttle import SIGNUPS_PER_ADDRESS

    client = TestClient(make_app(engine))
    t = token()
    for _ in range(SIGNUPS_PER_ADDRESS + 5):
        assert sign_up(client, t, "12345").status_code == 422
    assert sign_up(client, t, "13800138000").status_code == 200


# --- webhooks ----------------------------------------------------------------------------

LEADS = [
    {
        "platform": "小红书",
        "post": "note-123",
        "handle": "@momo",
        "message": "多少钱？怎么报名",
        "phone": "13700137000",
    },
    {"platform": "douyin", "post_url": "https://v.douyin.com/x1", "handle": "lin", "id": "d-1"},
]


def post_signed(client: TestClient, path: str, data, secret: str = HOOK_SECRET, header=None):
    body = data if isinstance(data, bytes) else json.dumps(data, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", **signed_headers(body, secret, now())}
    if header is False:
        del headers["X-Qunflow-Signature"]
    elif header is not None:
        headers["X-Qunflow-Signature"] = header
    return client.post(path, content=body, headers=headers)


def now() -> int:
    return int(time.time())


@pytest.mark.parametrize("path", ["/hooks/leads", "/hooks/events"])
@pytest.mark.parametrize(
    "how",
    ["missing", "wrong-secret", "garbage", "other-body", "no-prefix", "other-time", "untimed"],
)
def test_bad_or_missing_signature_is_401_and_nothing_stored(engine, path, how):
    client = TestClient(make_app(engine))
    data = LEADS if path == "/hooks/leads" else {"event": "share", "phone": "13700137000"}
    body = json.dumps(data, ensure_ascii=False).encode()
    header = {
        "missing": False,
        "wrong-secret": sign(body, "not-the-secret", now()),
        "garbage": "sha256=zz",
        "other-body": sign(body + b" ", HOOK_SECRET, now()),
        "no-prefix": sign(body, HOOK_SECRET, now()).removeprefix("sha256="),
        "other-time": sign(body, HOOK_SECRET, now() - 1),
        "untimed": sign_untimed(body, HOOK_SECRET),  # the old format, sent with a timestamp
    }[how]
    response = post_signed(client, path, data, header=header)
    assert response.status_code == 401
    assert response.json() == {"error": "bad or missing signature"}
    assert raw_count(engine) == 0
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(SourceInstance)) == 0


@pytest.mark.parametrize(
    ("shift", "side"), [(-400, "behind"), (400, "ahead of"), (-4000, "behind")]
)
def test_a_signed_push_outside_the_tolerance_is_401(engine, shift, side):
    client = TestClient(make_app(engine))
    body = json.dumps(LEADS).encode()
    sent = now() + shift
    headers = signed_headers(body, HOOK_SECRET, sent)
    response = client.post("/hooks/leads", content=body, headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert re.fullmatch(
        rf"X-Qunflow-Timestamp is \d+ s {side} the receiver's clock \(allowed: 300 s\): .*", error
    )
    assert raw_count(engine) == 0
    # Within the tolerance (here widened by the setting) the same request is taken.
    wide = TestClient(make_app(engine, webhook_tolerance_seconds=5000))
    again = wide.post("/hooks/leads", content=body, headers=headers)
    assert again.status_code == 202 and again.json()["accepted"] == 2


@pytest.mark.parametrize("stamp", ["yesterday", "-5", "1e9", "9" * 13, "17 00", "0x10"])
def test_a_timestamp_that_is_not_unix_seconds_is_401(engine, stamp):
    client = TestClient(make_app(engine))
    body = json.dumps(LEADS).encode()
    headers = {"X-Qunflow-Timestamp": stamp, "X-Qunflow-Signature": sign(body, HOOK_SECRET, now())}
    response = client.post("/hooks/leads", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "X-Qunflow-Timestamp must be Unix seconds (digits)"}
    assert raw_count(engine) == 0


def test_the_untimed_signature_is_accepted_only_when_allowed(engine):
    body = json.dumps(LEADS).encode()
    old_style = {"X-Qunflow-Signature": sign_untimed(body, HOOK_SECRET)}
    refused = TestClient(make_app(engine)).post("/hooks/leads", content=body, headers=old_style)
    assert refused.status_code == 401
    assert refused.json()["error"].startswith("missing X-Qunflow-Timestamp")
    assert raw_count(engine) == 0
    lenient = TestClient(make_app(engine, webhook_accept_untimed=True))
    forged = {"X-Qunflow-Signature": sign_untimed(body, "not-the-secret")}
    assert lenient.post("/hooks/leads", content=body, headers=forged).status_code == 401
    assert raw_count(engine) == 0
    taken = lenient.post("/hooks/leads", content=body, headers=old_style)
    assert taken.status_code == 202 and taken.json()["accepted"] == 2
    # A timestamped request is still held to the tolerance when untimed ones are allowed.
    stale = signed_headers(body, HOOK_SECRET, now() - 3600)
    assert lenient.post("/hooks/leads", content=body, headers=stale).status_code == 401


def test_signed_leads_are_stored_per_post_and_replays_add_nothing(engine):
    client = TestClient(make_app(engine))
    first = post_signed(client, "/hooks/leads", LEADS)
    assert first.status_code == 202
    assert first.json() == {"accepted": 2, "duplicates": 0, "rejected": 0, "reasons": []}
    again = post_signed(client, "/hooks/leads", LEADS[0])  # one object, not a list
    assert again.json()["duplicates"] == 1 and again.json()["accepted"] == 0
    with transaction(engine) as s:
        sources = s.execute(
            select(SourceInstance.kind, SourceInstance.platform, SourceInstance.post).order_by(
                SourceInstance.post
            )
        ).all()
    assert sources == [
        ("self_media", "douyin", "https://v.douyin.com/x1"),
        ("self_media", "xiaohongshu", "note-123"),
    ]
    assert raw_count(engine) == 2


def test_unusable_objects_in_a_signed_body_are_quarantined(engine):
    client = TestClient(make_app(engine))
    body = [{"event": "share", "phone": "13700137000"}, {"event": "dance"}, "text"]
    response = post_signed(client, "/hooks/events", body)
    assert response.status_code == 202
    assert response.json()["accepted"] == 1 and response.json()["rejected"] == 2
    with transaction(engine) as s:
        reasons = s.scalars(select(QuarantinedRow.reason).order_by(QuarantinedRow.row_number))
        found = list(reasons)
    assert found[0].startswith("event must be one of") and found[1] == "not a JSON object"
    assert raw_count(engine) == 1


def test_a_pushed_lead_fixed_after_quarantine_gets_in_once(engine):
    from crm.intake.inbox import ingest_qr_signups
    from crm.intake.pending import replay
    from crm.models import Touch

    client = TestClient(make_app(engine))
    lead = {"id": "L1", "platform": "xhs", "post": "n-9", "phone": "13700137001"}

    def push(obj: dict) -> dict:
        return post_signed(client, "/hooks/leads", obj).json()

    assert push({**lead, "occurred_at": "上周三"})["accepted"] == 1
    assert ingest_qr_signups(engine).quarantined == 1
    assert push({**lead, "occurred_at": "上周三"})["duplicates"] == 1  # the same bad lead
    fixed = {**lead, "occurred_at": "2026-11-18T10:00:00+08:00"}
    assert push(fixed)["accepted"] == 1
    assert push(fixed)["duplicates"] == 1  # a retried push of the fix, before it is resolved
    report = ingest_qr_signups(engine)
    assert (report.new_contacts, report.corrected, report.quarantined) == (1, 1, 0)
    assert push(fixed)["duplicates"] == 1
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(Touch)) == 1
        entry = s.scalars(select(QuarantinedRow)).one()
    assert entry.resolution == "corrected" and entry.corrected_by_raw_record_id is not None
    assert replay(engine) == 0  # every record still has what it gave
    assert ingest_qr_signups(engine).corrected == 0
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(Touch)) == 1

    # A lead without its own time gets the push's: a retry of it is not a correction.
    no_identity = {"id": "L2", "platform": "xhs", "post": "n-9", "message": "hi"}
    assert push(no_identity)["accepted"] == 1
    assert ingest_qr_signups(engine).quarantined == 1
    assert push(no_identity)["duplicates"] == 1
    assert raw_count(engine) == 3


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "body is not JSON: Expecting value at line 1 column 1"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON nested deeper than 32 levels"),
        (b"[" * 40 + b"]" * 40, "JSON nested deeper than 32 levels"),
        (b'{"a": ' * 33 + b"1" + b"}" * 33, "JSON nested deeper than 32 levels"),
        (b'{"platform": "xhs", "post": "n", "id": ' + b"7" * 5000 + b"}", "has 5000 digits"),
        (b'{"platform": "xhs", "post": "n", "score": 0.' + b"1" * 50 + b"}", "has 52 characters"),
        (b'[{"platform": "xhs", "post": "n", "score": NaN}]', "NaN is not JSON"),
        (b'{"platform": "xhs", "post": "n", "score": -Infinity}', "-Infinity is not JSON"),
        (b'{"platform": "xhs", "post": "n", "score": 1e999}', "number 1e999 is out of range"),
        (b"[]", "no objects in body"),
        (b"[" + b",".join([b"{}"] * 1001) + b"]", "1001 objects in one body (at most 1000)"),
        ('{"handle": "张"}'.encode("utf-16"), "body is not UTF-8 text"),
    ],
)
def test_a_signed_body_that_is_not_acceptable_json_is_400_with_the_reason(engine, body, reason):
    client = TestClient(make_app(engine))
    response = post_signed(client, "/hooks/leads", body)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert raw_count(engine) == 0
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(QuarantinedRow)) == 0


def test_nesting_up_to_the_limit_is_stored(engine):
    client = TestClient(make_app(engine))
    deep: object = "end"
    for _ in range(30):  # with the list and the lead itself: 32 levels
        deep = {"x": deep}
    lead = {
        "platform": "xhs",
        "post": "n-1",
        "handle": "a",
        "meta": deep,
        "id": 12345678901234567890,
    }
    response = post_signed(client, "/hooks/leads", [lead])
    assert response.status_code == 202 and response.json()["accepted"] == 1
    with transaction(engine) as s:
        key, payload = s.execute(select(RawRecord.record_key, RawRecord.payload)).one()
    assert key == "id:12345678901234567890"
    assert payload["meta"] == deep


def test_objects_that_cannot_be_stored_are_quarantined_and_the_rest_accepted(engine):
    client = TestClient(make_app(engine))
    good = {"event": "share", "phone": "13700137000"}
    body = (
        "["
        + json.dumps(good)
        + r', {"event": "share", "phone": "13700137001", "note": "a\u0000b"}'
        + r', {"event": "share", "meta": {"who": ["x", "\ud83d"]}}'
        + r', {"event": "share", "\u0000": 1}'
        + r', {"event": "share", "handle": "\ud83d\ude00"}'  # a whole pair is a character
        + "]"
    ).encode()
    response = post_signed(client, "/hooks/events", body)
    assert response.status_code == 202
    answer = response.json()
    assert (answer["accepted"], answer["rejected"]) == (2, 3)
    assert answer["reasons"] == [
        '#2: text at ["note"] holds a NUL character (\\u0000), which cannot be stored',
        '#3: text at ["meta"]["who"][1] holds a lone surrogate (\\ud83d), which is not a character',
        '#4: field name ["\\u0000"] holds a NUL character (\\u0000), which cannot be stored',
    ]
    with transaction(engine) as s:
        rows = s.execute(
            select(QuarantinedRow.row_number, QuarantinedRow.raw_content).order_by(
                QuarantinedRow.row_number
            )
        ).all()
        payloads = s.scalars(select(RawRecord.payload)).all()
    assert [n for n, _ in rows] == [2, 3, 4]
    assert '"note": "a\\u0000b"' in rows[0][1]  # kept as it came, escaped
    assert json.loads(rows[1][1])["meta"]["who"][1] == "\ud83d"
    assert sorted(p.get("handle", "") for p in payloads) == ["", "😀"]


def test_unsubscribe_link_asks_then_opts_out(engine, tmp_path):
    """GET only asks (link scanners change nothing); POST opts out; a forged link is refused."""
    from fastapi.testclient import TestClient

    from crm.compliance.optout import unsubscribe_token
    from crm.core.settings import get_settings
    from crm.models import Consent
    from flows.web.app import create_app
    from tests.helpers.followups import make_contacts

    st = get_settings(data_dir=tmp_path / "data")
    (cid,) = make_contacts(engine, 1)
    token = unsubscribe_token(cid, "email", settings=st)
    client = TestClient(create_app(settings=st, engine=engine))

    def opt_outs():
        with transaction(engine) as s:
            return s.scalars(select(Consent).where(Consent.kind == "opt_out")).all()

    page = client.get(f"/u/{token}")
    assert page.status_code == 200 and "确认退订" in page.text
    assert opt_outs() == []
    done = client.post(f"/u/{token}")
    assert done.status_code == 200 and "已退订" in done.text
    assert [(c.contact_id, c.channel) for c in opt_outs()] == [(cid, "email")]
    assert client.post(f"/u/{token}x").status_code == 400
    assert len(opt_outs()) == 1


def test_english_options_must_match_the_options_one_for_one(tmp_path):
    from crm.core.errors import ConfigError
    from crm.intake.signup import load_questions

    path = tmp_path / "questions.toml"
    path.write_text(
        '[[default.questions]]\nid = "goal"\nlabel = "目标"\nkind = "choice"\n'
        'options = ["考研", "留学"]\noptions_en = ["Exam"]\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="options_en"):
        load_questions(path)
