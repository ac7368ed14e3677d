"""Peer-group yield: which peer groups (同行群) are worth an operator's ten joins a day.

Per peer group: contacts harvested from its member lists, friend requests sent and accepted,
and how many harvested contacts reached the active, prospect and paid tiers (a contact that
went straight to paid counts for the tiers below too). Ranked by paid, then prospect, active,
accepted and harvested.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, distinct, func, select
from sqlalchemy.orm import Session

from crm.core.vocabulary import TIER_ORDER, PeerTaskKind, PeerTaskState, Tier
from crm.models import OperatorAccount, PeerGroup, PeerTask, TierChange, Touch


@dataclass(frozen=True)
class PeerYield:
    """One peer group's yield."""

    peer_group: str
    account: str | None
    joined_at: datetime | None
    harvested: int
    requests: int
    accepted: int
    active: int
    prospect: int
    paid: int


def _reached(tier: Tier) -> list[str]:
    return [t.value for t in TIER_ORDER if t.rank >= tier.rank]


def peer_yield(session: Session) -> list[PeerYield]:
    """Every peer group's yield, best first."""
    fr = PeerTask.kind == PeerTaskKind.FRIEND_REQUEST.value
    sent = (PeerTaskState.DONE.value, PeerTaskState.ACCEPTED.value, PeerTaskState.IGNORED.value)
    tasks = (
        select(
            PeerTask.peer_group_id.label("pid"),
            func.count().filter(PeerTask.state.in_(sent)).label("requests"),
            func.count().filter(PeerTask.state == PeerTaskState.ACCEPTED.value).label("accepted"),
        )
        .where(fr)
        .group_by(PeerTask.peer_group_id)
        .subquery()
    )

    def reached(tier: Tier):  # type: ignore[no-untyped-def]
        hit = TierChange.to_tier.in_(_reached(tier))
        return func.count(distinct(case((hit, Touch.contact_id))))

    stmt = (
        select(
            PeerGroup.name,
            OperatorAccount.handle,
            PeerGroup.joined_at,
            func.count(distinct(Touch.contact_id)),
            func.coalesce(func.max(tasks.c.requests), 0),
            func.coalesce(func.max(tasks.c.accepted), 0),
            reached(Tier.ACTIVE),
            reached(Tier.PROSPECT),
            reached(Tier.PAID),
        )
        .select_from(PeerGroup)
        .outerjoin(OperatorAccount, OperatorAccount.id == PeerGroup.account_id)
        .outerjoin(Touch, Touch.source_instance_id == PeerGroup.source_instance_id)
        .outerjoin(TierChange, TierChange.contact_id == Touch.contact_id)
        .outerjoin(tasks, tasks.c.pid == PeerGroup.id)
        .group_by(PeerGroup.id, PeerGroup.name, OperatorAccount.handle, PeerGroup.joined_at)
    )
    rows = [PeerYield(*r) for r in session.execute(stmt).tuples()]
    return sorted(
        rows,
        key=lambda y: (-y.paid, -y.prospect, -y.active, -y.accepted, -y.harvested, y.peer_group),
    )
