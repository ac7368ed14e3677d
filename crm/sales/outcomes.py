"""Working a held prospect: outcomes (contacted, qualified, won → paid, lost, snoozed), attempts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from crm.core.db import transaction
from crm.core.vocabulary import QueueStatus
from crm.models import QueueItem, utcnow
from crm.routing.rules import Rules
from crm.routing.tier_reasons import won
from crm.routing.tiers import mark_paid
from crm.sales.held_items import acting_user, held_item, sweeping_late_actions
from crm.sales.history import Action, record
from crm.sales.rules import check_outcome, parse_outcome
from crm.sales.vocabulary import CLOSED, DEFAULT_LEASE, ActionKind


@dataclass(frozen=True)
class OutcomeRecorded:
    """The item after an outcome: its status and how long its holder keeps it."""

    item_id: int
    contact_id: int
    status: QueueStatus
    lease_expires_at: datetime | None


def record_outcome(
    engine: Engine,
    item_id: int,
    user_id: int,
    status: str,
    *,
    reason: str | None = None,
    until: datetime | None = None,
    rules: Rules,
    now: datetime | None = None,
    lease: timedelta = DEFAULT_LEASE,
) -> OutcomeRecorded:
    """Record contacted / qualified / won (→ paid) / lost (reason required) / snoozed (until).

    ``rules`` are the rules in force: a won prospect is invited to their paid group.
    """
    now = now or utcnow()
    outcome = parse_outcome(status)
    reason = check_outcome(outcome, reason, until, now)
    with sweeping_late_actions(engine, now), transaction(engine, immediate=True) as session:
        actor = acting_user(session, user_id)
        item = held_item(session, item_id, actor, now)
        details: dict[str, Any] = {"contact_id": item.contact_id}
        item.status = outcome
        item.updated_at = now
        if outcome in CLOSED:
            _close(item, reason, now)
            if outcome is QueueStatus.WON:
                mark_paid(
                    session,
                    item.contact_id,
                    why=won(reason),
                    actor=actor.username,
                    rules=rules,
                    now=now,
                )
        elif outcome is QueueStatus.SNOOZED:
            assert until is not None  # check_outcome insists
            item.snoozed_until = until
            item.lease_expires_at = until + lease
            details["until"] = until.isoformat()
        else:
            item.lease_expires_at = now + lease
        action = Action(
            item_id=item.id,
            kind=ActionKind(outcome.value),
            user_id=actor.id,
            note=reason,
            details=details,
        )
        record(session, [action], actor=actor.username, now=now)
        return OutcomeRecorded(item.id, item.contact_id, outcome, item.lease_expires_at)


def _close(item: QueueItem, reason: str | None, now: datetime) -> None:
    item.open_key = None
    item.closed_at = now
    item.lease_expires_at = None
    item.snoozed_until = None
    item.outcome_reason = reason
    item.outcome_key = None  # a salesperson's reason reads as typed


def record_attempt(
    engine: Engine,
    item_id: int,
    user_id: int,
    note: str | None = None,
    *,
    now: datetime | None = None,
    lease: timedelta = DEFAULT_LEASE,
) -> None:
    """Log a contact attempt (call, message) without changing the status; renews the lease."""
    now = now or utcnow()
    note = (note or "").strip() or None
    with sweeping_late_actions(engine, now), transaction(engine, immediate=True) as session:
        actor = acting_user(session, user_id)
        item = held_item(session, item_id, actor, now)
        item.lease_expires_at = max(item.lease_expires_at or now, now + lease)
        item.updated_at = now
        record(
            session,
            [Action(item_id=item.id, kind=ActionKind.ATTEMPT, user_id=actor.id, note=note)],
            actor=actor.username,
            now=now,
        )
