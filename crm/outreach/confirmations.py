"""WeCom mass-message tasks awaiting a staff member's confirmation: asking what became of them.

A task sent from a staff account waits until the staff member confirms it in the WeCom app;
each poll asks the provider once per task and writes each outcome in one statement.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select, update

from crm.core.db import transaction
from crm.core.vocabulary import OutboxState
from crm.models import Community, Identity, OperatorAccount, OutboxMessage, utcnow
from crm.outreach.wecom_limits import Per, mass_limit, next_window

# status 3: the customer already got its mass messages of this window (创建企业群发).
MASS_LIMIT_REACHED = "wecom_mass_limit"


def poll_confirmations(
    engine: Engine,
    channel: Any,
    *,
    now: datetime | None = None,
    limit: int = 500,
    mass_per: Per | str = Per.MONTH,
    zone: ZoneInfo | None = None,
) -> dict[str, int]:
    """Ask WeCom what became of mass-message tasks awaiting a staff member's confirmation.

    A recipient that already received its allowance (``status = 3``) is deferred to the next
    window of the mass-message limit in force (``mass_per``), not failed."""
    now = now or utcnow()
    in_force = mass_limit(mass_per)
    next_start = next_window(now, zone or ZoneInfo("Asia/Shanghai"), in_force.per)
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
            elif status == "sent":
                settled.setdefault((OutboxState.SENT.value, None), []).append(r.id)
            elif status == "duplicate":
                limit_reason = f"{MASS_LIMIT_REACHED}: {in_force.name} ({in_force.date})"
                settled.setdefault((OutboxState.DEFERRED.value, limit_reason), []).append(r.id)
            else:
                settled.setdefault((OutboxState.FAILED.value, f"wecom: {status}"), []).append(r.id)
        for (state, reason), ids in settled.items():
            values: dict[str, Any] = {"state": state, "reason": reason, "updated_at": now}
            if state == OutboxState.SENT.value:
                values["sent_at"] = now
            if state == OutboxState.DEFERRED.value:
                # A new task is created at the next window: the old msgid is spent.
                values.update(due_at=next_start, provider_message_id=None, sending_at=None)
            # Still awaiting: a concurrent dispatch run may have settled the row already.
            changed = session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id.in_(ids),
                    OutboxMessage.state == OutboxState.AWAITING_CONFIRMATION.value,
                )
                .values(**values)
            )
            done[state] += int(getattr(changed, "rowcount", 0) or 0)
    return dict(done)
