"""A campaign triggered from the flow, the CLI and the workspace plans the same rows once."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import func, select

from crm.core.db import transaction
from crm.core.settings import get_settings
from crm.models import OutboxMessage
from flows.trigger import trigger_campaign
from tests.helpers.followups import make_contacts

QUNFLOW = str(Path(sys.executable).with_name("qunflow"))


def _rows(engine) -> list[tuple[str, str, int]]:
    with transaction(engine) as s:
        return sorted(
            s.execute(select(OutboxMessage.campaign, OutboxMessage.step, OutboxMessage.contact_id))
            .tuples()
            .all()
        )


def test_three_triggers_one_set_of_rows(prefect_harness, engine, db_url, cli_env, monkeypatch):
    entered = datetime.now(UTC) - timedelta(hours=2)
    ids = make_contacts(engine, 3, tier="prospect", entered=entered)
    chosen = ids[:2]
    monkeypatch.setenv("QUNFLOW_DATABASE_URL", db_url)
    monkeypatch.setenv("QUNFLOW_DATA_DIR", cli_env["QUNFLOW_DATA_DIR"])
    from flows import followups, runtime

    runtime.settings.cache_clear()
    try:
        # 1. the Prefect flow, as the UI's "Run" form starts it
        first = followups.plan_campaign_flow(campaign="prospect-nudge", contact_ids=chosen)
    finally:
        runtime.settings.cache_clear()
    assert first["planned"] > 0
    after_flow = _rows(engine)
    assert {c for _, _, c in after_flow} == set(chosen)

    # 2. the CLI
    cli = subprocess.run(
        [
            QUNFLOW,
            "campaign",
            "run",
            "prospect-nudge",
            "--json",
            *(arg for cid in chosen for arg in ("--contact", str(cid))),
        ],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr
    report = json.loads(cli.stdout)
    assert report["planned"] == 0 and report["already_planned"] == len(after_flow)

    # 3. the sales workspace's trigger (the web route calls exactly this)
    web = trigger_campaign(
        engine, "prospect-nudge", actor="alice", contact_ids=chosen, settings=get_settings()
    )
    assert web.planned == 0 and web.via == "in-process"

    assert _rows(engine) == after_flow
    with transaction(engine) as s:
        total = s.scalar(select(func.count()).select_from(OutboxMessage))
    assert total == len(after_flow)


class _NoDeployments(BaseHTTPRequestHandler):
    """A Prefect API that serves no deployment: every request is answered 404."""

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = b'{"detail": "Not Found"}'
        self.send_response(404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, *args: object) -> None:
        pass


def test_workspace_trigger_finds_a_campaign_only_in_the_operators_file(
    engine, tmp_path, monkeypatch
):
    # With a Prefect API configured, the workspace checks the campaign name before creating a
    # run: against the app's own campaigns file, not the bundled one.
    from fastapi.testclient import TestClient

    from flows.web.app import create_app
    from tests.helpers import queue_seed as seed

    path = tmp_path / "campaigns.toml"
    path.write_text(
        '[[campaign]]\nname = "only-ours"\npurpose = "service"\nanchor = "last_active"\n'
        'audience = { tiers = ["prospect"] }\nmax_late = "2d"\n'
        'steps = [{ name = "hi", offset = "3d", channel = "console", template = "welcome" }]\n',
        encoding="utf-8",
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoDeployments)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{server.server_port}/api")
    try:
        settings = get_settings(secret_key="test-secret-key-0123456789", campaigns_path=path)
        app = create_app(settings, engine)
        seed.users(engine)
        item = seed.prospects(engine, 1, now=datetime.now(UTC))[0]
        client = TestClient(app, base_url="http://testserver", follow_redirects=False)
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)[1]
        client.post(
            "/login", data={"username": "alice", "password": seed.PASSWORD, "csrf_token": token}
        )
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/queue").text)[1]
        client.post(f"/queue/items/{item['item_id']}/claim", data={"csrf_token": token})
        r = client.post(
            "/campaigns/trigger",
            data={
                "csrf_token": token,
                "campaign": "only-ours",
                "contact_ids": [item["contact_id"]],
            },
        )
    finally:
        server.shutdown()
    assert r.status_code == 303, r.text
    assert "msg=campaign-only-ours-1" in r.headers["location"]
    with transaction(engine) as s:
        rows = s.execute(select(OutboxMessage.campaign, OutboxMessage.contact_id)).all()
    assert [tuple(row) for row in rows] == [("only-ours", item["contact_id"])]
