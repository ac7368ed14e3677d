"""Every parameter of every route is bounded: values past the database's range are a 400."""

from __future__ import annotations

import re
import warnings
from datetime import timedelta

import pytest
from sqlalchemy import select

from crm.core.db import transaction
from crm.core.settings import get_settings
from crm.models import QueueItem, utcnow
from crm.sales.rules import MAX_SNOOZE
from flows.web.app import create_app
from tests.entrypoints.test_web import api_routes, login
from tests.helpers import queue_seed as seed

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette asks for httpx2, which is not packaged here
    from fastapi.testclient import TestClient

HUGE = "9" * 25
EXTREMES = (HUGE, "-" + HUGE, "0", "9999-12-31T23:59", "9999-12-31", "0001-01-01T00:00")
# Every other parameter gets a value its handler accepts, so each extreme reaches the code
# behind its own parameter instead of stopping at a neighbour's validation.
PLAUSIBLE = {
    "status": "snoozed",
    "strategy": "load",
    "view": "pool",
    "by": "source",
    "campaign": "prospect-nudge",
    "confirm": "no",
    "all": "false",
    "body": "hello",
    "tags": "x",
    "tag": "x",
    "note": "x",
}
# Read from the raw form by their handlers, so not declared on the route.
UNDECLARED_FORM = {"/campaigns/trigger": ("contact_ids", "campaign")}


@pytest.fixture
def app(engine):
    seed.users(engine)
    seed.prospects(engine, 2, now=utcnow())
    # WeCom callbacks configured, so the walk reaches their signature check (not the 503 of
    # an unconfigured integration).
    settings = get_settings(
        secret_key="test-secret-key-0123456789",
        wecom_corp_id="ww-test-corp",
        wecom_token="test-wecom-token",
        wecom_aes_key="a" * 43,
    )
    return create_app(settings, engine)


def _params(route) -> tuple[list[str], list[str], list[str]]:
    path, query, body = [], [], []
    for dep in [route.dependant, *route.dependant.dependencies]:
        path += [p.name for p in dep.path_params]
        query += [p.alias for p in dep.query_params]
        body += [p.alias for p in dep.body_params]
    return path, query, body


@pytest.mark.parametrize("who", ["root", "alice"])
def test_every_route_answers_extreme_numbers_and_dates_without_a_server_error(app, who):
    logged_in, token = login(app, who)
    client = TestClient(
        app,
        base_url="http://testserver",
        follow_redirects=False,
        cookies=logged_in.cookies,
        raise_server_exceptions=False,
    )
    failures, walked = [], 0
    for path, route in api_routes(app.routes):
        if path == "/logout":
            continue
        names, query, body = _params(route)
        body = [*body, *UNDECLARED_FORM.get(path, ())]
        for method in route.methods:
            for extreme_one in [*names, *query, *body]:
                for value in EXTREMES:

                    def pick(name: str, v: str = value, one: str = extreme_one) -> str:
                        return v if name == one else PLAUSIBLE.get(name, "1")

                    url = re.sub(r"\{([^}]+)\}", lambda m: pick(m.group(1)), path)
                    form = {name: pick(name) for name in body} | {"csrf_token": token}
                    r = client.request(
                        method,
                        url,
                        params={name: pick(name) for name in query},
                        data=form if method == "POST" else None,
                    )
                    if r.status_code >= 500:
                        failures.append((method, path, extreme_one, value, r.status_code))
                    walked += 1
    assert failures == []
    assert walked >= 40 * len(EXTREMES)
    assert client.get("/queue").status_code == 200  # still logged in: the walk reached the app


def test_out_of_range_values_are_named_in_a_400_page(app):
    client, _ = login(app, "alice")
    for url, named in (
        (f"/prospects/{HUGE}", "contact_id"),
        (f"/queue?min_score={HUGE}", "min_score"),
        ("/queue?due_before=9999-12-31T23:59", "due_before"),
    ):
        r = client.get(url)
        assert r.status_code == 400, url
        assert r.headers["content-type"].startswith("text/html")
        assert named in r.text, url


def test_a_snooze_is_at_most_ninety_days(app, engine):
    client, token = login(app, "alice")
    got = client.post("/queue/claim-next", data={"csrf_token": token})
    assert got.status_code == 303
    with transaction(engine) as s:
        item = s.scalar(select(QueueItem.id).where(QueueItem.status == "claimed"))
    zone = get_settings().zone

    def snooze(days: int):
        until = (utcnow() + timedelta(days=days)).astimezone(zone)
        return client.post(
            f"/queue/items/{item}/outcome",
            data={"csrf_token": token, "status": "snoozed", "until": f"{until:%Y-%m-%dT%H:%M}"},
        )

    far = snooze(MAX_SNOOZE.days + 1)
    assert far.status_code == 400 and "90 天之内" in far.text
    assert snooze(MAX_SNOOZE.days - 1).status_code == 303
