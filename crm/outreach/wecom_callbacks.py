"""Processing the WeCom callback inbox: each claimed event resolved, welcomed or churned.

Runs right after a callback is stored (the web app's follow-up, so the welcome goes out
inside WeCom's 20 s) and on a schedule (whatever the follow-up missed, and expired claims).
Oldest event first; an event that fails is quarantined in the inbox with its reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update

from crm.core.audit import raise_alert
from crm.core.db import transaction
from crm.core.errors import QunflowError
from crm.core.vocabulary import OutboxState, Platform
from crm.intake.wecom import WeComClient
from crm.intake.wecom_chats import apply_chat_change
from crm.intake.wecom_inbox import Claimed, claim_callbacks, finish_callback
from crm.intake.wecom_live import CHURN_EVENTS, resolve_churn, resolve_new_customer
from crm.models import Contact, OperatorAccount, OutboxMessage, utcnow
from crm.outreach.churn import CHURN_SKIP
from crm.outreach.wecom_welcome import send_welcome

log = logging.getLogger(__name__)

CHURN_ALERT = "wecom_churn"


@dataclass(frozen=True)
class LiveConfig:
    """What processing needs beyond the engine and the client (from settings)."""

    welcome_window_seconds: float = 18.0
    templates_dir: Path | None = None


@dataclass
class Processed:
    """Counts of one processing run, by what happened."""

    claimed: int = 0
    contacts: int = 0
    churn: int = 0
    chat_changes: int = 0
    ignored: int = 0
    quarantined: int = 0
    skipped_messages: int = 0
    welcomes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape the CLI and the flows print."""
        return {
            "claimed": self.claimed,
            "contacts": self.contacts,
            "churn": self.churn,
            "chat_changes": self.chat_changes,
            "ignored": self.ignored,
            "quarantined": self.quarantined,
            "skipped_messages": self.skipped_messages,
            "welcomes": dict(self.welcomes),
        }


def process_inbox(
    engine: Engine,
    client: WeComClient,
    config: LiveConfig,
    *,
    worker: str,
    only: int | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Processed:
    """Claim and process pending callbacks (``only``: just that one, the web follow-up)."""
    result = Processed()
    while True:
        batch = claim_callbacks(engine, worker, only=only, now=clock())
        if not batch:
            return result
        result.claimed += len(batch)
        for cb in batch:
            _process_one(engine, client, config, cb, result, clock)
        if only is not None:
            return result


def _process_one(
    engine: Engine,
    client: WeComClient,
    config: LiveConfig,
    cb: Claimed,
    result: Processed,
    clock: Callable[[], datetime],
) -> None:
    try:
        outcome = _handle(engine, client, config, cb, result, clock)
        status = "processed"
    except QunflowError as exc:  # the API refused, or the event is malformed: keep it, say why
        log.warning("wecom callback %s quarantined: %s", cb.id, exc)
        outcome, status = str(exc), "quarantined"
        result.quarantined += 1
    with transaction(engine) as session:
        finish_callback(session, cb.id, status=status, outcome=outcome, now=clock())


def _handle(
    engine: Engine,
    client: WeComClient,
    config: LiveConfig,
    cb: Claimed,
    result: Processed,
    clock: Callable[[], datetime],
) -> str:
    if cb.event == "change_external_contact" and cb.change_type == "add_external_contact":
        resolved = resolve_new_customer(engine, client, cb)
        result.contacts += 1
        if resolved.contact_id is None:
            return "quarantined by resolution"
        if not cb.fields.get("WelcomeCode"):
            return f"contact {resolved.contact_id}; no WelcomeCode"
        welcome = send_welcome(
            engine,
            client,
            cb,
            contact_id=resolved.contact_id,
            contact_name=_name(engine, resolved.contact_id),
            source=resolved.source,
            window_seconds=config.welcome_window_seconds,
            operator_dir=config.templates_dir,
            clock=clock,
        )
        key = welcome.outcome.value
        result.welcomes[key] = result.welcomes.get(key, 0) + 1
        return f"contact {resolved.contact_id}; welcome {key}"
    if cb.event == "change_external_contact" and cb.change_type in CHURN_EVENTS:
        resolved = resolve_churn(engine, cb)
        result.churn += 1
        if resolved.contact_id is None:
            return "quarantined by resolution"
        skipped = after_churn(engine, cb, resolved.contact_id, clock())
        result.skipped_messages += skipped
        return f"contact {resolved.contact_id}; churn; {skipped} planned message(s) skipped"
    if cb.event == "change_external_chat":
        result.chat_changes += 1
        return apply_chat_change(engine, cb)
    result.ignored += 1
    return f"not handled: {cb.event}/{cb.change_type or ''}"


def _name(engine: Engine, contact_id: int) -> str | None:
    with transaction(engine) as session:
        return session.scalar(select(Contact.display_name).where(Contact.id == contact_id))


def after_churn(engine: Engine, cb: Claimed, contact_id: int, now: datetime) -> int:
    """No more messages from that staff member to that person: skip the planned ones, and
    alert the staff member's owner. Returns how many planned messages were skipped."""
    staff = str(cb.fields.get("UserID") or "")
    kind = CHURN_EVENTS.get(cb.change_type or "", "churn")
    with transaction(engine, immediate=True) as session:
        accounts = session.execute(
            select(OperatorAccount.id, OperatorAccount.owner_user_id).where(
                OperatorAccount.platform == Platform.WECOM.value, OperatorAccount.handle == staff
            )
        ).all()
        ids = [a.id for a in accounts]
        skipped = 0
        if ids:
            done = session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.contact_id == contact_id,
                    OutboxMessage.account_id.in_(ids),
                    OutboxMessage.state.in_(
                        [OutboxState.PLANNED.value, OutboxState.DEFERRED.value]
                    ),
                )
                .values(
                    state=OutboxState.SKIPPED.value,
                    reason=f"{CHURN_SKIP}: {kind} ({staff})",
                    updated_at=now,
                )
            )
            skipped = int(getattr(done, "rowcount", 0) or 0)
        raise_alert(
            session,
            CHURN_ALERT,
            f"{staff}:{contact_id}",
            f"{kind}: contact {contact_id}, staff {staff}",
            details={
                "contact_id": contact_id,
                "staff": staff,
                "churn": kind,
                "owner_user_ids": sorted({a.owner_user_id for a in accounts if a.owner_user_id}),
                "skipped_messages": skipped,
            },
            at=now,
        )
    return skipped
