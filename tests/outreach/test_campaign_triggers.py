"""A campaign triggered from the flow, the CLI and the workspace plans the same rows once."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from crm.core.db import transaction
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
    web = trigger_campaign(engine, "prospect-nudge", actor="alice", contact_ids=chosen)
    assert web["planned"] == 0 and web["via"] == "in-process"

    assert _rows(engine) == after_flow
    with transaction(engine) as s:
        total = s.scalar(select(func.count()).select_from(OutboxMessage))
    assert total == len(after_flow)
