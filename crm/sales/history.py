"""The queue's history: appending ``queue_actions`` rows with their audit entries, reading them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from crm.core.queue_notes import SystemNote
from crm.models import AuditEntry, QueueAction, User
from crm.sales.vocabulary import ActionKind


@dataclass(frozen=True)
class Action:
    """One thing done to a queue item, about to be written: ``note`` as typed, or the system's."""

    item_id: int
    kind: ActionKind
    user_id: int | None = None
    note: str | SystemNote | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionEntry:
    """One row of an item's history, as the prospect page shows it.

    ``note_key`` (with ``note_params``) says a system note in words; without it ``note`` is
    what someone typed."""

    item_id: int
    action: str
    user: str | None
    note: str | None
    at: datetime
    note_key: str | None = None
    note_params: dict[str, Any] | None = None


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
            **_note_columns(a.note),
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


def _note_columns(note: str | SystemNote | None) -> dict[str, Any]:
    if isinstance(note, SystemNote):
        return {"note": note.text, "note_key": note.key.value, "note_params": note.stored_params}
    return {"note": note, "note_key": None, "note_params": None}


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
        ActionEntry(
            item_id=a.item_id,
            action=a.action,
            user=name,
            note=a.note,
            at=a.at,
            note_key=a.note_key,
            note_params=a.note_params,
        )
        for a, name in rows
    ]
