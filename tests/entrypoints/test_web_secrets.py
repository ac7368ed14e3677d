"""The workspace signs with the install's own key: cookies forged with a published key fail."""

from __future__ import annotations

import time
import warnings

from itsdangerous import URLSafeTimedSerializer

from crm.core.keys import PUBLISHED
from crm.core.settings import get_settings
from flows.web.app import create_app
from flows.web.auth import SESSION_COOKIE
from tests.helpers import queue_seed as seed

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette asks for httpx2, which is not packaged here
    from fastapi.testclient import TestClient


def _cookie(key: str, user_id: int) -> str:
    serializer = URLSafeTimedSerializer(key, salt="qunflow.session")
    return str(serializer.dumps({"u": user_id, "c": "x" * 32, "t": time.time()}))


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
