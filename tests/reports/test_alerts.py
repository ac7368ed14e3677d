"""Alerts: a failed flow run and quarantine growth open alerts an operator sees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from crm.core.db import transaction
from crm.models import Alert, QuarantinedRow
from crm.reports.alerts import check_quarantine, open_alerts


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
    assert [(a["kind"], a["subject"]) for a in alerts] == [("quarantine_growth", "ingest")]
    assert "3 rows quarantined" in alerts[0]["message"]
    # a day later the window holds nothing new: the alert resolves itself
    assert check_quarantine(engine, threshold=2, now=now + timedelta(days=2)) is False
    assert open_alerts(engine) == []


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
