"""Alerts an operator must see: open alerts, and the quarantine growth check."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from crm.core.audit import raise_alert, resolve_alerts
from crm.core.db import transaction
from crm.models import Alert, QuarantinedRow, utcnow

QUARANTINE_KIND = "quarantine_growth"


def open_alerts(engine: Engine, *, limit: int = 50) -> list[dict[str, Any]]:
    """Unresolved alerts, newest first."""
    with transaction(engine) as session:
        rows = session.scalars(
            select(Alert)
            .where(Alert.resolved_at.is_(None))
            .order_by(Alert.created_at.desc(), Alert.id.desc())
            .limit(limit)
        ).all()
        return [
            {
                "id": a.id,
                "kind": a.kind,
                "subject": a.subject,
                "message": a.message,
                "at": a.created_at,
            }
            for a in rows
        ]


def check_quarantine(
    engine: Engine,
    *,
    threshold: int = 50,
    window: timedelta = timedelta(days=1),
    now: datetime | None = None,
) -> bool:
    """Alert when more than ``threshold`` rows were quarantined within ``window``; True if open."""
    now = now or utcnow()
    with transaction(engine) as session:
        recent = (
            session.scalar(select(func.count()).where(QuarantinedRow.created_at >= now - window))
            or 0
        )
        if recent > threshold:
            raise_alert(
                session,
                QUARANTINE_KIND,
                "ingest",
                f"{recent} rows quarantined in the last {window} (threshold {threshold}): "
                "check `qunflow quarantine list`",
                details={"recent": recent, "threshold": threshold},
                at=now,
            )
            return True
        resolve_alerts(session, QUARANTINE_KIND, "ingest", at=now)
        return False


def flow_failed(engine: Engine, flow_name: str, message: str, *, run_id: str | None = None) -> None:
    """Record a failed or crashed flow run as an open alert."""
    with transaction(engine) as session:
        raise_alert(
            session,
            "flow_failed",
            flow_name,
            f"flow {flow_name} failed: {message}"[:1000],
            details={"flow_run_id": run_id},
        )
