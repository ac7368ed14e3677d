"""The web app's defences: its own signing key, bounded request bodies, security headers."""

from __future__ import annotations

import asyncio
import time
import warnings

from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select

from crm.core.db import transaction
from crm.core.keys import PUBLISHED
from crm.core.settings import get_settings
from crm.models import RawRecord
from flows.web.app import create_app
from flows.web.auth import SESSION_COOKIE
from tests.helpers import queue_seed as seed

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette asks for httpx2, which is not packaged here
    from fastapi.testclient import TestClient


def _cookie(key: str, user_id: int) -> str:
    serializer = URLSafeTimedSerializer(key, salt="qunflow.session")
    return str(serializer.dumps({"u": user_id, "v": 0, "c": "x" * 32, "t": time.time()}))


def test_a_cookie_forged_with_a_published_default_key_is_refused(engine, tmp_path):
    staff = seed.users(engine)
    settings = get_settings(data_dir=tmp_path)  # no key set: the install generates its own
    app = create_app(settings, engine)
    admin = staff["root"]
    for key in sorted(PUBLISHED):
        client = TestClient(app, base_url="http://testserver", follow_redirects=False)
        client.cookies.set(SESSION_COOKIE, _cookie(key, admin))
        r = client.get(f"/admin/contacts/{admin}/export")
        assert r.status_code == 303 and r.headers["location"] == "/login"
    # The same cookie signed with the install's key is a session: the check above can fail.
    own = TestClient(app, base_url="http://testserver", follow_redirects=False)
    own.cookies.set(SESSION_COOKIE, _cookie(settings.secret_key.get_secret_value(), admin))
    assert own.get("/queue").status_code == 200


def test_oversized_bodies_are_refused_before_they_are_read(engine, tmp_path):
    app = create_app(get_settings(data_dir=tmp_path), engine)
    pulled = 0

    async def chunked_receive():  # 300 MB if all of it were read, with no Content-Length
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 1_000_000, "more_body": pulled < 300}

    answers: list[dict] = []

    async def send(message):
        answers.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/hooks/leads",
        "raw_path": b"/hooks/leads",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, chunked_receive, send))
    assert answers[0]["status"] == 413
    assert pulled <= 2  # the server stopped reading at the limit, not at the end
    client = TestClient(app, base_url="http://testserver", follow_redirects=False)
    r = client.post("/hooks/leads", content=b"[]", headers={"content-length": "5000000"})
    assert r.status_code == 413 and r.json() == {"error": "body too large"}
    with transaction(engine) as s:
        assert s.scalar(select(func.count()).select_from(RawRecord)) == 0


def test_every_answer_carries_the_security_headers(engine, tmp_path):
    client = TestClient(create_app(get_settings(data_dir=tmp_path), engine))
    for path in ("/login", "/healthz", "/no-such-page"):
        headers = client.get(path).headers
        assert headers["x-frame-options"] == "DENY"
        assert headers["content-security-policy"] == "frame-ancestors 'none'"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
