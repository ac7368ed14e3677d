"""Sales: the prospect queue per salesperson — holding, claims, outcomes, win rate, SLA breaches.

Claims are ``queue_actions`` rows with action ``claim`` (taken from the pool by the
salesperson); ``assigned`` rows (handed over by a manager or a distribution run) count
separately. Outcomes are queue items closed as
won or lost in the window, credited to their assignee. An SLA breach is an item whose
``sla_due_at`` passed inside the window (and before now) while it was neither closed nor
worked: no staff action other than claiming, assigning, releasing or renewing a lease by
then. Breaches of unassigned items show under the pool (user ``None``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from crm.core.vocabulary import OPEN_QUEUE_STATUSES, QueueStatus
from crm.models import QueueAction, QueueItem, User
from crm.reports.window import ReportWindow

CLAIM_ACTION = "claim"
ASSIGNED_ACTION = "assigned"
# Actions that move an item between people without working it (crm.sales.vocabulary.ActionKind).
HANDLING_ACTIONS = ("claim", "assign", "assigned", "reassign", "release", "expired")


def sales(session: Session, window: ReportWindow) -> dict[str, Any]:
    """Per salesperson: items held now, claims, won/lost and win rate in the window, breaches."""
    pool = session.scalar(select(func.count()).where(QueueItem.status == QueueStatus.POOL.value))
    holding = _holding(session)
    taken = _taken(session, window)
    claims = {u: n for (u, a), n in taken.items() if a == CLAIM_ACTION}
    assigned = {u: n for (u, a), n in taken.items() if a == ASSIGNED_ACTION}
    outcomes = _outcomes(session, window)
    breaches = _breaches(session, window)
    user_ids = {u for u in (*holding, *claims, *assigned, *outcomes, *breaches) if u is not None}
    users = {
        u.id: u
        for u in session.scalars(
            select(User).where(or_(User.id.in_(user_ids), and_(User.role == "sales", User.active)))
        )
    }
    rows: list[dict[str, Any]] = []
    for uid in sorted(users):
        won = outcomes.get(uid, {}).get(QueueStatus.WON.value, 0)
        lost = outcomes.get(uid, {}).get(QueueStatus.LOST.value, 0)
        rows.append(
            {
                "user_id": uid,
                "username": users[uid].username,
                "holding": holding.get(uid, 0),
                "claims": claims.get(uid, 0),
                "assigned": assigned.get(uid, 0),
                "won": won,
                "lost": lost,
                "win_rate": round(won / (won + lost), 4) if won + lost else None,
                "sla_breaches": breaches.get(uid, 0),
            }
        )
    won_all = sum(o.get(QueueStatus.WON.value, 0) for o in outcomes.values())
    lost_all = sum(o.get(QueueStatus.LOST.value, 0) for o in outcomes.values())
    totals = {
        "pool": int(pool or 0),
        "holding": sum(holding.values()),
        "claims": sum(claims.values()),
        "assigned": sum(assigned.values()),
        "won": won_all,
        "lost": lost_all,
        "win_rate": round(won_all / (won_all + lost_all), 4) if won_all + lost_all else None,
        "sla_breaches": sum(breaches.values()),
        "sla_breaches_in_pool": breaches.get(None, 0),
    }
    return {"totals": totals, "by_user": rows}


def _holding(session: Session) -> dict[int | None, int]:
    """Open items each person holds now."""
    held_statuses = [s.value for s in OPEN_QUEUE_STATUSES if s != QueueStatus.POOL]
    return _counts(
        session.execute(
            select(QueueItem.assignee_id, func.count())
            .where(QueueItem.status.in_(held_statuses), QueueItem.assignee_id.is_not(None))
            .group_by(QueueItem.assignee_id)
        )
    )


def _taken(session: Session, window: ReportWindow) -> dict[tuple[int | None, str], int]:
    """Claims and assignments per person in the window."""
    return {
        (user_id, action): int(n)
        for user_id, action, n in session.execute(
            select(QueueAction.user_id, QueueAction.action, func.count())
            .where(
                QueueAction.action.in_((CLAIM_ACTION, ASSIGNED_ACTION)),
                QueueAction.at >= window.start,
                QueueAction.at < window.end,
            )
            .group_by(QueueAction.user_id, QueueAction.action)
        )
    }


def _outcomes(session: Session, window: ReportWindow) -> dict[Any, dict[str, int]]:
    """Items closed won or lost in the window, per person."""
    outcomes: dict[Any, dict[str, int]] = {}
    for user_id, status, n in session.execute(
        select(QueueItem.assignee_id, QueueItem.status, func.count())
        .where(
            QueueItem.status.in_([QueueStatus.WON.value, QueueStatus.LOST.value]),
            QueueItem.closed_at >= window.start,
            QueueItem.closed_at < window.end,
        )
        .group_by(QueueItem.assignee_id, QueueItem.status)
    ):
        outcomes.setdefault(user_id, {})[status] = n
    return outcomes


def _breaches(session: Session, window: ReportWindow) -> dict[int | None, int]:
    """Items whose SLA fell due in the window (and has passed) with no work done by then."""
    due_end = min(window.end, window.now)
    worked = exists().where(
        (QueueAction.item_id == QueueItem.id)
        & QueueAction.action.not_in(HANDLING_ACTIONS)
        & (QueueAction.at <= QueueItem.sla_due_at)
    )
    return _counts(
        session.execute(
            select(QueueItem.assignee_id, func.count())
            .where(
                QueueItem.sla_due_at >= window.start,
                QueueItem.sla_due_at < due_end,
                or_(QueueItem.closed_at.is_(None), QueueItem.closed_at > QueueItem.sla_due_at),
                ~worked,
            )
            .group_by(QueueItem.assignee_id)
        )
    )


def _counts(rows: Any) -> dict[int | None, int]:
    return {key: int(n) for key, n in rows}
