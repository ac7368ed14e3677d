"""The queue's history: appending ``queue_actions`` rows with their audit entries, reading them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from crm.models import AuditEntry, QueueAction, User
from crm.sales.vocabulary import ActionKind


@dataclass(frozen=True)
class Action:
    """One thing done to a queue item, about to be written."""

    item_id: int
    kind: ActionKind
    user_id: int | None = None
    note: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionEntry:
    """One row of an item's history, as the prospect page shows it."""

    item_id: int
    action: str
    user: str | None
    note: str | None
    at: datetime


def record(session: Session, actions: Sequence[Action], *, actor: str, now: datetime) -> None:
    """Append queue actions and their audit entries in two statements (no commit)."""
    if not actions:
        return
    conn = session.connection()
    # One action (a claim) is one plain INSERT; several are one executemany.
    one = len(actions) == 1
    actions_rows = [
        {
            "item_id": a.item_id,
            "user_id": a.user_id,
            "action": a.kind.value,
            "note": a.note,
            "at": now,
        }
        for a in actions
    ]
    conn.execute(_INSERT_ACTION, actions_rows[0] if one else actions_rows)
    audit_rows = [
        {
            "at": now,
            "actor": actor,
            "action": f"queue.{a.kind.value}",
            "object_type": "queue_item",
            "object_id": str(a.item_id),
            "details": a.details,
        }
        for a in actions
    ]
    conn.execute(_INSERT_AUDIT, audit_rows[0] if one else audit_rows)


# Built once: every claim appends an action and an audit entry.
_INSERT_ACTION = insert(QueueAction)
_INSERT_AUDIT = insert(AuditEntry)


def item_actions(session: Session, item_ids: Sequence[int], limit: int = 100) -> list[ActionEntry]:
    """The history of actions on queue items, newest first."""
    if not item_ids:
        return []
    rows = session.execute(
        select(QueueAction, User.username)
        .outerjoin(User, User.id == QueueAction.user_id)
        .where(QueueAction.item_id.in_(list(item_ids)))
        .order_by(QueueAction.at.desc(), QueueAction.id.desc())
        .limit(limit)
    ).all()
    return [
        ActionEntry(item_id=a.item_id, action=a.action, user=name, note=a.note, at=a.at)
        for a, name in rows
    ]
