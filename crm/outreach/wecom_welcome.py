"""The welcome message by WelcomeCode (send_welcome_msg): once, within 20 s of the event.

Sent from the callback path at once, not on the dispatch schedule, and recorded in the outbox
(campaign ``wecom-welcome``, one row per staff member and contact) with its outcome. 41051
means the welcome is already out (another app, or the staff member typed one): recorded, not
retried. 41096 means another app is sending right now and may fail: retried inside the window.
A code past its window is skipped with that reason and never sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

from sqlalchemy import Engine, insert, select, update

from crm.core.db import dialect_insert, transaction
from crm.core.vocabulary import OutboxState, Platform
from crm.intake.records import SourceSpec
from crm.intake.wecom import WeComApiError, WeComClient
from crm.intake.wecom_inbox import Claimed
from crm.models import OperatorAccount, OutboxAttempt, OutboxMessage, utcnow
from crm.outreach.templates import TemplateError, load

CAMPAIGN = "wecom-welcome"
TEMPLATE = "wecom_welcome"
ALREADY_SENT = 41051  # externaluser has started chatting: the welcome is out
BEING_SENT = 41096  # welcome msg is being distributed (by another app): may still fail
RETRY_PAUSE = 1.0


class WelcomeOutcome(StrEnum):
    """What became of one WelcomeCode; the values are reason keys of the message catalog."""

    SENT = "sent"
    ALREADY_SENT = "welcome_already_sent"
    LATE = "welcome_late"
    FAILED = "welcome_failed"
    DUPLICATE = "welcome_duplicate"  # this callback's welcome was handled before


@dataclass(frozen=True)
class Welcome:
    """The outcome and the outbox row it is recorded in."""

    outcome: WelcomeOutcome
    outbox_id: int | None
    detail: str = ""


def template_for(campaign: str | None, operator_dir: Path | None) -> str:
    """``wecom_welcome_<campaign>`` when the operator wrote one, else ``wecom_welcome``."""
    if campaign:
        name = f"{TEMPLATE}_{campaign}"
        try:
            load(name, operator_dir=operator_dir)
            return name
        except TemplateError:
            pass
    return TEMPLATE


def send_welcome(
    engine: Engine,
    client: WeComClient,
    cb: Claimed,
    *,
    contact_id: int,
    contact_name: str | None,
    source: SourceSpec,
    window_seconds: float,
    operator_dir: Path | None = None,
    clock: Callable[[], datetime] = utcnow,
    sleep: Callable[[float], None] = time.sleep,
) -> Welcome:
    """Send the welcome of an add_external_contact callback, at most once, inside its window."""
    code = str(cb.fields.get("WelcomeCode") or "")
    staff = str(cb.fields.get("UserID") or "")
    deadline = cb.received_at + timedelta(seconds=window_seconds)
    name = template_for(source.campaign, operator_dir)
    outbox_id = _reserve(engine, cb, contact_id, staff, name, clock())
    if outbox_id is None:
        return Welcome(WelcomeOutcome.DUPLICATE, None)
    if clock() >= deadline:
        return _finish(
            engine, outbox_id, WelcomeOutcome.LATE, clock(), f"after {window_seconds:g} s"
        )
    context = {
        "contact": {"name": contact_name},
        "source": {
            "promoter": source.promoter,
            "location": source.location,
            "campaign": source.campaign,
        },
    }
    try:
        text = load(name, operator_dir=operator_dir).render(context)
    except TemplateError as exc:
        return _finish(engine, outbox_id, WelcomeOutcome.FAILED, clock(), str(exc))
    while True:
        try:
            client.post(
                "externalcontact/send_welcome_msg",
                {"welcome_code": code, "text": {"content": text}},
            )
            return _finish(engine, outbox_id, WelcomeOutcome.SENT, clock(), "", rendered=text)
        except WeComApiError as exc:
            if exc.errcode == ALREADY_SENT:
                return _finish(engine, outbox_id, WelcomeOutcome.ALREADY_SENT, clock(), str(exc))
            if exc.errcode == BEING_SENT and clock() + timedelta(seconds=RETRY_PAUSE) < deadline:
                _attempt(engine, outbox_id, "retry", str(exc), clock())
                sleep(RETRY_PAUSE)
                continue
            outcome = WelcomeOutcome.LATE if exc.errcode == BEING_SENT else WelcomeOutcome.FAILED
            return _finish(engine, outbox_id, outcome, clock(), str(exc))


def _reserve(
    engine: Engine, cb: Claimed, contact_id: int, staff: str, template: str, now: datetime
) -> int | None:
    """The outbox row of this welcome, inserted claimed; None if it exists (a retried event)."""
    with transaction(engine, immediate=True) as session:
        account_id = session.scalar(
            select(OperatorAccount.id).where(
                OperatorAccount.platform == Platform.WECOM.value, OperatorAccount.handle == staff
            )
        )
        stmt = (
            dialect_insert(session, OutboxMessage)
            .values(
                campaign=CAMPAIGN,
                step=f"welcome:{staff}"[:100],
                contact_id=contact_id,
                channel=Platform.WECOM.value,
                template=template,
                account_id=account_id,
                context={"callback_id": cb.id, "staff": staff},
                state=OutboxState.CLAIMED.value,
                due_at=cb.received_at,
                attempts=1,
                idempotency_key=f"{CAMPAIGN}:{contact_id}:{staff}"[:100],
                sending_at=now,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing()
            .returning(OutboxMessage.id)
        )
        return session.scalar(stmt)


def _attempt(engine: Engine, outbox_id: int, outcome: str, detail: str, now: datetime) -> None:
    with transaction(engine) as session:
        session.execute(
            insert(OutboxAttempt).values(
                outbox_id=outbox_id, worker="wecom-callback", outcome=outcome, detail=detail, at=now
            )
        )


def _finish(
    engine: Engine,
    outbox_id: int,
    outcome: WelcomeOutcome,
    now: datetime,
    detail: str,
    *,
    rendered: str | None = None,
) -> Welcome:
    state = {
        WelcomeOutcome.SENT: OutboxState.SENT,
        WelcomeOutcome.FAILED: OutboxState.FAILED,
    }.get(outcome, OutboxState.SKIPPED)
    reason = None if outcome is WelcomeOutcome.SENT else f"{outcome.value}: {detail}"[:500]
    with transaction(engine) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == outbox_id)
            .values(
                state=state.value,
                reason=reason,
                rendered=rendered,
                sent_at=now if outcome is WelcomeOutcome.SENT else None,
                claimed_by=None,
                updated_at=now,
            )
        )
        session.execute(
            insert(OutboxAttempt).values(
                outbox_id=outbox_id,
                worker="wecom-callback",
                outcome=outcome.value,
                detail=detail[:1000] or None,
                at=now,
            )
        )
    return Welcome(outcome, outbox_id, detail)
