"""Ending sessions: a captured session cookie stops working once its user's sessions end."""

from __future__ import annotations

import warnings

import pytest

from crm.core.settings import get_settings
from crm.sales.users import set_active, set_password, set_role
from flows.web.app import create_app
from flows.web.auth import SESSION_COOKIE
from tests.entrypoints.test_web import login
from tests.helpers import queue_seed as seed

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette asks for httpx2, which is not packaged here
    from fastapi.testclient import TestClient


@pytest.fixture
def app(engine):
    seed.users(engine)
    return create_app(get_settings(secret_key="test-secret-key-0123456789"), engine)


def _replay(app, cookie: str) -> TestClient:
    client = TestClient(app, base_url="http://testserver", follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, cookie)
    return client


@pytest.mark.parametrize("ending", ["logout", "password", "role", "disable"])
def test_a_captured_cookie_is_refused_once_the_users_sessions_end(app, engine, ending):
    client, token = login(app, "alice")
    elsewhere, _ = login(app, "alice")  # the same person on a second device
    bob, _ = login(app, "bob")
    captured = client.cookies.get(SESSION_COOKIE)
    assert _replay(app, captured).get("/queue").status_code == 200  # a real session until now
    if ending == "logout":
        assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    elif ending == "password":
        set_password(engine, "alice", "a brand new password", actor="root")
    elif ending == "role":
        assert set_role(engine, "alice", "manager", actor="root").role == "manager"
    else:
        set_active(engine, "alice", False, actor="root")
    for stale in (_replay(app, captured), elsewhere):
        r = stale.get("/queue")
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert stale.post("/queue/claim-next", data={"csrf_token": token}).status_code == 401
    assert bob.get("/queue").status_code == 200  # other people's sessions go on
    if ending in ("logout", "role"):
        login(app, "alice")  # logging in again starts a session that works (asserted inside)
