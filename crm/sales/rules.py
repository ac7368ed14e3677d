"""Plain sales rules: what an outcome needs, who may act on a prospect, how many at once."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta

from crm.core.errors import Forbidden, InputError
from crm.core.vocabulary import QueueStatus
from crm.sales.vocabulary import OUTCOMES

MAX_REASON = 500
# One campaign trigger from the workspace plans for at most this many prospects.
MAX_CAMPAIGN_BATCH = 500
# A snooze holds a prospect out of the pool; a quarter is as far ahead as a follow-up is planned,
# past that the prospect belongs back in the pool (or lost) rather than parked with someone.
MAX_SNOOZE = timedelta(days=90)


def parse_outcome(status: str) -> QueueStatus:
    """The outcome named by ``status``; InputError for anything else."""
    if status not in OUTCOMES:
        expected = ", ".join(o.value for o in OUTCOMES)
        raise InputError("error.sales.outcome_unknown", status=status, expected=expected)
    return QueueStatus(status)


def check_outcome(
    outcome: QueueStatus, reason: str | None, until: datetime | None, now: datetime
) -> str | None:
    """The cleaned reason, once the outcome has what it needs (lost: a reason; snoozed: a time)."""
    reason = (reason or "").strip() or None
    if reason is not None and len(reason) > MAX_REASON:
        raise InputError("error.sales.reason_long", limit=MAX_REASON)
    if outcome is QueueStatus.LOST and reason is None:
        raise InputError("error.sales.lost_needs_reason")
    if outcome is QueueStatus.SNOOZED:
        if until is None:
            raise InputError("error.sales.snooze_needs_time")
        if until.tzinfo is None:
            raise InputError("error.sales.snooze_naive")
        if until <= now:
            raise InputError("error.sales.snooze_past")
        if until > now + MAX_SNOOZE:
            raise InputError("error.sales.snooze_far", days=MAX_SNOOZE.days)
    return reason


def check_may_act_on(is_manager: bool, wanted: Iterable[int], held: Collection[int]) -> None:
    """A salesperson acts only on contacts they hold; managers and admins on any."""
    if is_manager:
        return
    for cid in wanted:
        if cid not in held:
            raise Forbidden("error.sales.contact_not_yours", contact_id=cid)


def check_campaign_batch(contact_ids: Collection[int]) -> None:
    """A campaign trigger names at least one prospect and at most :data:`MAX_CAMPAIGN_BATCH`."""
    if not contact_ids:
        raise InputError("error.sales.batch_empty")
    if len(contact_ids) > MAX_CAMPAIGN_BATCH:
        raise InputError("error.sales.batch_large", limit=MAX_CAMPAIGN_BATCH)
