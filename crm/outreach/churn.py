"""WeCom churn (流失) as a fact planning and dispatch read: no message from a staff member to a
person after a churn event between them (``del_follow_user`` / ``del_external_contact``).

The churn event is stored on the person with the staff member's relationship source
(``wecom-staff:USERID``, crm.intake.wecom_live); a message's sending account is that staff
member when it is the WeCom account with that handle.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, literal, update
from sqlalchemy.orm import Session

from crm.core.vocabulary import EventKind, OutboxState, Platform, SourceKind
from crm.intake.wecom_live import STAFF_SOURCE_PREFIX
from crm.models import Event, OperatorAccount, OutboxMessage, SourceInstance

CHURN_SKIP = "wecom_churn"  # reason key of messages skipped after a churn


def churned_clause(contact_id: Any, account_id: Any) -> ColumnElement[bool]:
    """SQL: a churn event stands between this contact and the staff member behind the account."""
    return exists().where(
        Event.contact_id == contact_id,
        Event.kind == EventKind.CHURN.value,
        SourceInstance.id == Event.source_instance_id,
        SourceInstance.kind == SourceKind.API.value,
        OperatorAccount.id == account_id,
        OperatorAccount.platform == Platform.WECOM.value,
        SourceInstance.key == literal(STAFF_SOURCE_PREFIX) + OperatorAccount.handle,
    )


def churned_sql(row: str) -> str:
    """The same test as raw SQL over the outbox row aliased ``row`` (the dispatch claim)."""
    return f"""EXISTS (SELECT 1 FROM events e
     JOIN source_instances s ON s.id = e.source_instance_id
     JOIN operator_accounts a ON a.id = {row}.account_id
     WHERE e.contact_id = {row}.contact_id AND e.kind = '{EventKind.CHURN.value}'
       AND s.kind = '{SourceKind.API.value}' AND a.platform = '{Platform.WECOM.value}'
       AND s.key = '{STAFF_SOURCE_PREFIX}' || a.handle)"""


def skip_churned(session: Session, campaign: str, *, planned_at: datetime) -> int:
    """Skip the rows a planning pass of ``campaign`` just inserted (``created_at`` =
    ``planned_at``) whose sender has churned with the recipient, in one statement."""
    o = OutboxMessage
    done = session.execute(
        update(o)
        .where(
            o.campaign == campaign,
            o.created_at == planned_at,
            o.state == OutboxState.PLANNED.value,
            o.contact_id.is_not(None),
            o.account_id.is_not(None),
            churned_clause(o.contact_id, o.account_id),
        )
        .values(state=OutboxState.SKIPPED.value, reason=CHURN_SKIP, updated_at=planned_at)
    )
    return int(getattr(done, "rowcount", 0) or 0)
