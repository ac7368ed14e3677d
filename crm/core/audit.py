"""Writing to the audit log and raising operator alerts (inside the caller's transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.models import Alert, AuditEntry, utcnow


def audit(
    session: Session,
    actor: str,
    action: str,
    *,
    object_type: str | None = None,
    object_id: object = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Append who did what to the audit log; never store personal data in ``details``."""
    session.add(
        AuditEntry(
            at=at or utcnow(),
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=None if object_id is None else str(object_id),
            details=details or {},
        )
    )


def raise_alert(
    session: Session,
    kind: str,
    subject: str,
    message: str,
    *,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> bool:
    """Open an alert unless one of the same kind and subject is still open; True if new."""
    open_one = session.scalar(
        select(Alert.id).where(
            Alert.kind == kind, Alert.subject == subject, Alert.resolved_at.is_(None)
        )
    )
    if open_one is not None:
        return False
    session.add(
        Alert(
            kind=kind,
            subject=subject,
            message=message,
            details=details or {},
            created_at=at or utcnow(),
        )
    )
    return True


def resolve_alerts(
    session: Session, kind: str, subject: str, *, at: datetime | None = None
) -> None:
    """Close the open alerts of a kind and subject (the condition went away)."""
    for alert in session.scalars(
        select(Alert).where(
            Alert.kind == kind, Alert.subject == subject, Alert.resolved_at.is_(None)
        )
    ):
        alert.resolved_at = at or utcnow()
