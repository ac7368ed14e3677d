"""WeCom mass-message tasks awaiting a staff member's confirmation: asking what became of them.

A task sent from a staff account waits until the staff member confirms it in the WeCom app;
each poll asks the provider once per task and writes each outcome in one statement.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update

from crm.core.db import transaction
from crm.core.vocabulary import OutboxState
from crm.models import Community, Identity, OperatorAccount, OutboxMessage, utcnow


def poll_confirmations(
    engine: Engine, channel: Any, *, now: datetime | None = None, limit: int = 500
) -> dict[str, int]:
    """Ask WeCom what became of mass-message tasks awaiting a staff member's confirmation."""
    now = now or utcnow()
    done: Counter[str] = Counter()
    external_id = (
        select(Identity.value)
        .where(
            Identity.contact_id == OutboxMessage.contact_id,
            Identity.kind == "wecom_external_userid",
        )
        .order_by(Identity.id)
        .limit(1)
        .scalar_subquery()
    )
    with transaction(engine) as session:
        rows = session.execute(
            select(
                OutboxMessage.id,
                OutboxMessage.provider_message_id,
                OutboxMessage.contact_id,
                OperatorAccount.handle,
                Community.external_id.label("chat_id"),
                external_id.label("external_userid"),
            )
            .outerjoin(OperatorAccount, OperatorAccount.id == OutboxMessage.account_id)
            .outerjoin(Community, Community.id == OutboxMessage.community_id)
            .where(OutboxMessage.state == OutboxState.AWAITING_CONFIRMATION.value)
            .limit(limit)
        ).all()
        # (state, reason) -> outbox ids; the provider is asked once per task, the database
        # is written once per outcome.
        settled: dict[tuple[str, str | None], list[int]] = {}
        for r in rows:
            group = r.contact_id is None  # a group post: the group's chat id is the recipient
            recipient = (r.chat_id if group else r.external_userid) or ""
            status = channel.confirmation(r.provider_message_id, recipient, r.handle, group=group)
            if status is None:
                done["pending"] += 1
            elif status in ("sent", "duplicate"):
                reason = None if status == "sent" else "contact already received it"
                settled.setdefault((OutboxState.SENT.value, reason), []).append(r.id)
            else:
                settled.setdefault((OutboxState.FAILED.value, f"wecom: {status}"), []).append(r.id)
        for (state, reason), ids in settled.items():
            values: dict[str, Any] = {"state": state, "reason": reason, "updated_at": now}
            if state == OutboxState.SENT.value:
                values["sent_at"] = now
            session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(ids)).values(**values))
            done[state] += len(ids)
    return dict(done)
