"""Sending one rendered message and judging the outcome: sent, awaiting a staff member's
confirmation, retried later, or failed — never sent twice.

A row whose earlier attempt may have reached the provider is first looked up there; a
channel that cannot be asked marks it failed ("unknown outcome, not resent"). Transient
errors back off and retry up to ``MAX_ATTEMPTS``; a permanent refusal fails the row.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from crm.core.errors import PermanentChannelError, TransientChannelError
from crm.core.vocabulary import OutboxState
from crm.outreach.channels.base import (
    AWAITING_CONFIRMATION,
    Channel,
    OutcomeUnknown,
    OutgoingMessage,
    SendResult,
    mask_phone,
)
from crm.outreach.outbox import Claimed, Outcome

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BACKOFF = (30, 120, 600, 1800, 3600)  # seconds before retry n


def send_row(channel: Channel, row: Claimed, msg: OutgoingMessage, now: datetime) -> Outcome:
    """Send (or, for an uncertain row, first look up) one message; the attempt's outcome."""
    try:
        if row.uncertain:
            if not channel.can_lookup:
                return Outcome(
                    row.id,
                    row.token,
                    OutboxState.FAILED,
                    reason="unknown outcome, not resent (worker stopped mid-send)",
                    rendered=msg.text,
                    attempt="unknown",
                )
            found = channel.lookup(msg)
            if found is not None:
                return _accepted(row, msg, found, now, "found")
        return _accepted(row, msg, channel.send(msg), now, "sent")
    except TransientChannelError as exc:
        return _transient(channel, row, msg, now, mask_phone(str(exc)))
    except OutcomeUnknown as exc:
        return Outcome(
            row.id,
            row.token,
            OutboxState.FAILED,
            reason=f"unknown outcome, not resent: {mask_phone(str(exc))}",
            rendered=msg.text,
            attempt="unknown",
        )
    except PermanentChannelError as exc:
        return Outcome(
            row.id,
            row.token,
            OutboxState.FAILED,
            reason=mask_phone(str(exc)),
            rendered=msg.text,
            attempt="refused",
        )


def _transient(
    channel: Channel, row: Claimed, msg: OutgoingMessage, now: datetime, detail: str
) -> Outcome:
    # Still possibly at the provider when the channel can be asked: the retry looks it up.
    if row.attempts >= MAX_ATTEMPTS:
        return Outcome(
            row.id,
            row.token,
            OutboxState.FAILED,
            reason=f"gave up after {row.attempts} attempts: {detail}",
            rendered=msg.text,
            attempt="transient",
            keep_sending=channel.can_lookup,
        )
    wait = BACKOFF[min(row.attempts - 1, len(BACKOFF) - 1)]
    log.info("outbox %s: transient error, retry in %ss: %s", row.id, wait, detail)
    return Outcome(
        row.id,
        row.token,
        OutboxState.DEFERRED,
        reason=f"retry: {detail}",
        due_at=now + timedelta(seconds=wait),
        attempt="transient",
        keep_sending=channel.can_lookup,
    )


def _accepted(
    row: Claimed, msg: OutgoingMessage, result: SendResult, now: datetime, how: str
) -> Outcome:
    waiting = result.state == AWAITING_CONFIRMATION
    return Outcome(
        row.id,
        row.token,
        OutboxState.AWAITING_CONFIRMATION if waiting else OutboxState.SENT,
        provider_id=result.provider_id,
        sent_at=None if waiting else now,
        rendered=msg.text,
        attempt=how,
    )
