"""Alerts an operator must see: open alerts, and the quarantine growth check."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, update

from crm.core.audit import audit, raise_alert, resolve_alerts
from crm.core.db import transaction
from crm.core.errors import InputError, NotFound
from crm.models import Alert, QuarantinedRow, utcnow

QUARANTINE_KIND = "quarantine_growth"


@dataclass(frozen=True)
class OpenAlert:
    """One unresolved alert as an operator reads it."""

    id: int
    kind: str
    subject: str
    message: str
    at: datetime
    details: dict[str, Any] = field(default_factory=dict)  # what the message says, as values


@dataclass(frozen=True)
class OpenAlerts:
    """The newest open alerts and how many are open in all (a page may show fewer)."""

    total: int
    items: list[OpenAlert]


def open_alerts(engine: Engine, *, limit: int = 50) -> OpenAlerts:
    """Unresolved alerts, newest first, with their total count."""
    with transaction(engine) as session:
        total = session.scalar(
            select(func.count()).select_from(Alert).where(Alert.resolved_at.is_(None))
        )
        rows = session.scalars(
            select(Alert)
            .where(Alert.resolved_at.is_(None))
            .order_by(Alert.created_at.desc(), Alert.id.desc())
            .limit(limit)
        ).all()
        items = [
            OpenAlert(a.id, a.kind, a.subject, a.message, a.created_at, dict(a.details or {}))
            for a in rows
        ]
    return OpenAlerts(total=total or 0, items=items)


def acknowledge_alerts(
    engine: Engine, ids: Sequence[int], *, actor: str, at: datetime | None = None
) -> list[int]:
    """Close open alerts by id (someone has seen to them); refuses ids that are not open."""
    wanted = sorted(set(ids))
    if not wanted:
        raise InputError("error.reports.alert_ids_none")
    at = at or utcnow()
    with transaction(engine) as session:
        found = set(
            session.scalars(
                select(Alert.id).where(Alert.id.in_(wanted), Alert.resolved_at.is_(None))
            )
        )
        missing = [i for i in wanted if i not in found]
        if missing:
            raise NotFound("error.reports.alerts_not_open", ids=", ".join(map(str, missing)))
        session.execute(update(Alert).where(Alert.id.in_(wanted)).values(resolved_at=at))
        for alert_id in wanted:
            audit(session, actor, "alert.ack", object_type="alert", object_id=alert_id, at=at)
    return wanted


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
