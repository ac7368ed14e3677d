"""Alerts: a failed flow run and quarantine growth open alerts an operator sees."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from crm.core.audit import raise_alert
from crm.core.db import transaction
from crm.models import Alert, AuditEntry, QuarantinedRow
from crm.reports.alerts import acknowledge_alerts, check_quarantine, open_alerts

ALERTS_KEY = "qunflow-alerts"
QUNFLOW = str(Path(sys.executable).with_name("qunflow"))


def _cli(args, env, ok=True):
    proc = subprocess.run([QUNFLOW, *args], env=env, capture_output=True, text=True, timeout=300)
    assert not ok or proc.returncode == 0, proc.stderr
    return proc


def _quarantine(engine, n: int, at: datetime) -> None:
    with transaction(engine) as s:
        for i in range(n):
            s.add(
                QuarantinedRow(
                    origin="x.csv",
                    row_number=i,
                    raw_content="?",
                    reason="bad",
                    fingerprint=f"{at.isoformat()}-{i}",
                    created_at=at,
                )
            )


def test_quarantine_growth_opens_then_resolves(engine):
    now = datetime(2026, 5, 1, tzinfo=UTC)
    _quarantine(engine, 3, now - timedelta(hours=1))
    assert check_quarantine(engine, threshold=2, now=now) is True
    assert check_quarantine(engine, threshold=2, now=now) is True  # still one alert, not two
    alerts = open_alerts(engine)
    assert [(a.kind, a.subject) for a in alerts.items] == [("quarantine_growth", "ingest")]
    assert alerts.total == 1 and "3 rows quarantined" in alerts.items[0].message
    # a day later the window holds nothing new: the alert resolves itself
    assert check_quarantine(engine, threshold=2, now=now + timedelta(days=2)) is False
    assert open_alerts(engine).total == 0


def test_failed_flow_run_opens_an_alert(prefect_harness, engine, db_url, monkeypatch):
    from prefect import flow

    from flows import runtime
    from flows.alerts import on_failure

    monkeypatch.setenv("QUNFLOW_DATABASE_URL", db_url)
    runtime.settings.cache_clear()

    @flow(name="always-fails", on_failure=[on_failure], retries=0)
    def always_fails() -> None:
        raise RuntimeError("the source was unreachable")

    try:
        with pytest.raises(RuntimeError):
            always_fails()
    finally:
        runtime.settings.cache_clear()
    with transaction(engine) as s:
        alert = s.scalars(select(Alert).where(Alert.kind == "flow_failed")).one()
    assert alert.subject == "always-fails"
    assert "the source was unreachable" in alert.message
    from prefect.artifacts import Artifact

    shown = Artifact.get(ALERTS_KEY)  # published by the hook, not left for the next import
    assert shown is not None and "always-fails" in str(shown.data)


def _raise(engine, n: int) -> list[int]:
    with transaction(engine) as s:
        for i in range(n):
            raise_alert(s, "no_group_room", f"tier-{i}", f"{i} contacts wait for a group")
    with transaction(engine) as s:
        return list(s.scalars(select(Alert.id).order_by(Alert.id)))


def test_cli_lists_and_acknowledges_alerts(engine, cli_env):
    first, second = _raise(engine, 2)
    listed = json.loads(_cli(["alerts", "list", "--json"], cli_env).stdout)
    assert listed["total"] == 2 and [a["id"] for a in listed["items"]] == [second, first]
    table = _cli(["alerts", "list"], cli_env).stdout
    assert "tier-1" in table and table.strip().endswith("2 of 2 open")

    done = json.loads(_cli(["alerts", "ack", str(first), "--json"], cli_env).stdout)
    assert done == {"acknowledged": [first], "open": 1}
    again = _cli(["alerts", "ack", str(first)], cli_env, ok=False)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [f"qunflow: no open alert {first}"]
    listed = json.loads(_cli(["alerts", "list", "--json"], cli_env).stdout)
    assert [a["id"] for a in listed["items"]] == [second]
    with transaction(engine) as s:
        acked = s.scalars(select(AuditEntry.object_id).where(AuditEntry.action == "alert.ack"))
        assert list(acked) == [str(first)]


def test_artifact_counts_every_open_alert_as_alerts_list_does(prefect_harness, engine, db_url):
    from prefect.artifacts import Artifact

    from flows.alerts import publish_alerts_flow

    ids = _raise(engine, 55)  # more than one page of the list
    published = publish_alerts_flow(db_url)
    shown = Artifact.get(ALERTS_KEY)
    assert shown is not None and shown.description == "55 open alert(s)"
    assert published == open_alerts(engine).total == 55
    assert "… and 5 more" in str(shown.data)

    acknowledge_alerts(engine, ids[:10], actor="ops")
    publish_alerts_flow(db_url)
    shown = Artifact.get(ALERTS_KEY)
    assert shown is not None and shown.description == "45 open alert(s)"
    assert "more" not in str(shown.data)
