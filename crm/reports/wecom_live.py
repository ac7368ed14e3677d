"""Today's WeCom live intake: adds per channel live code (promoter, location, campaign),
churn, and welcomes by outcome — what the inbox flow publishes as its artifact."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.core.vocabulary import EventKind
from crm.models import Event, OutboxMessage, SourceInstance, Touch
from crm.reports.window import local_midnight

WECOM_STATE_PREFIX = "wecom-state:"
WELCOME_CAMPAIGN = "wecom-welcome"  # crm.outreach.wecom_welcome.CAMPAIGN (a later context)


def live_intake_today(session: Session, *, now: datetime, zone: ZoneInfo) -> dict[str, Any]:
    """Adds per state, churn events and welcome outcomes of the local day holding ``now``."""
    start = local_midnight(now.astimezone(zone).date(), zone)
    end = start + timedelta(days=1)
    adds = session.execute(
        select(
            SourceInstance.key,
            SourceInstance.promoter,
            SourceInstance.location,
            SourceInstance.campaign,
            func.count(func.distinct(Touch.contact_id)),
        )
        .join(Touch, Touch.source_instance_id == SourceInstance.id)
        .where(
            SourceInstance.key.startswith(WECOM_STATE_PREFIX),
            Touch.touched_at >= start,
            Touch.touched_at < end,
        )
        .group_by(
            SourceInstance.key,
            SourceInstance.promoter,
            SourceInstance.location,
            SourceInstance.campaign,
        )
        .order_by(SourceInstance.key)
    ).all()
    churn = session.scalar(
        select(func.count()).where(
            Event.kind == EventKind.CHURN.value, Event.occurred_at >= start, Event.occurred_at < end
        )
    )
    welcomes = session.execute(
        select(OutboxMessage.state, OutboxMessage.reason, func.count())
        .where(
            OutboxMessage.campaign == WELCOME_CAMPAIGN,
            OutboxMessage.created_at >= start,
            OutboxMessage.created_at < end,
        )
        .group_by(OutboxMessage.state, OutboxMessage.reason)
    ).all()
    by_outcome: dict[str, int] = {}
    for state, reason, n in welcomes:
        key = state if not reason else str(reason).split(":", 1)[0]
        by_outcome[key] = by_outcome.get(key, 0) + int(n)
    return {
        "day": start.astimezone(zone).date().isoformat(),
        "adds": [
            {
                "state": key[len(WECOM_STATE_PREFIX) :],
                "promoter": promoter,
                "location": location,
                "campaign": campaign,
                "contacts": int(n),
            }
            for key, promoter, location, campaign, n in adds
        ],
        "churn": int(churn or 0),
        "welcomes": by_outcome,
    }
