"""Follow-ups: outbox states per campaign and channel, and today's cap headroom per account.

Messages count in the window by their ``due_at``. ``opted_out`` and ``no_consent`` are the
parts of ``skipped`` that dispatch skipped for an opt-out (退订) or a missing marketing
consent (the reasons crm.compliance.optout names).
Cap headroom reads the caps ledger for the local day of ``as_of``; an account with no
reservation yet that day has the whole limit left, from the named platform limits.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from crm.compliance.optout import NO_CONSENT, OPTED_OUT
from crm.core.vocabulary import OutboxState
from crm.models import CapUsage, OperatorAccount, OutboxMessage, PlatformLimit
from crm.reports.window import ReportWindow

STATES = tuple(s.value for s in OutboxState)
SKIP_REASONS = {"opted_out": OPTED_OUT, "no_consent": NO_CONSENT}


def followups(session: Session, window: ReportWindow) -> dict[str, Any]:
    """Outbox counts by state per campaign and channel in the window, plus cap headroom."""
    rows = session.execute(
        select(
            OutboxMessage.campaign,
            OutboxMessage.channel,
            *(func.sum(case((OutboxMessage.state == s, 1), else_=0)).label(s) for s in STATES),
            *(
                func.sum(
                    case(
                        (
                            (OutboxMessage.state == OutboxState.SKIPPED.value)
                            & (OutboxMessage.reason == reason),
                            1,
                        ),
                        else_=0,
                    )
                ).label(name)
                for name, reason in SKIP_REASONS.items()
            ),
            func.count().label("total"),
        )
        .where(OutboxMessage.due_at >= window.start, OutboxMessage.due_at < window.end)
        .group_by(OutboxMessage.campaign, OutboxMessage.channel)
        .order_by(OutboxMessage.campaign, OutboxMessage.channel)
    )
    by_campaign = [
        {
            "campaign": r.campaign,
            "channel": r.channel,
            **{s: int(getattr(r, s) or 0) for s in STATES},
            **{name: int(getattr(r, name) or 0) for name in SKIP_REASONS},
            "total": int(r.total),
        }
        for r in rows
    ]
    totals = {k: sum(r[k] for r in by_campaign) for k in (*STATES, *SKIP_REASONS, "total")}
    return {
        "totals": totals,
        "by_campaign": by_campaign,
        "caps": cap_headroom(session, window.as_of.astimezone(window.zone).date()),
    }


def cap_headroom(session: Session, day: date) -> list[dict[str, Any]]:
    """Per active account and limited action: cap, used and headroom on a local day."""
    accounts = list(session.scalars(select(OperatorAccount).where(OperatorAccount.active)))
    limits = list(
        session.scalars(
            select(PlatformLimit).where(
                PlatformLimit.scope == "account",
                PlatformLimit.window == "day",
                PlatformLimit.effective_from <= day,
            )
        )
    )
    usage = {
        (u.subject, u.action): u
        for u in session.scalars(
            select(CapUsage).where(CapUsage.day == day, CapUsage.subject.like("account:%"))
        )
    }
    out = []
    for account in sorted(accounts, key=lambda a: a.id):
        # The account's own limit wins over the platform default; the latest one in force.
        best: dict[str, PlatformLimit] = {}
        for lim in limits:
            if lim.platform != account.platform or lim.account_id not in (None, account.id):
                continue
            cur = best.get(lim.action)
            rank = (lim.account_id is not None, lim.effective_from)
            if cur is None or rank > (cur.account_id is not None, cur.effective_from):
                best[lim.action] = lim
        subject = f"account:{account.id}"
        actions = sorted(set(best) | {a for (s, a) in usage if s == subject})
        for action in actions:
            used_row = usage.get((subject, action))
            cap = used_row.cap if used_row is not None else best[action].limit
            used = used_row.used if used_row is not None else 0
            out.append(
                {
                    "account_id": account.id,
                    "account": account.handle,
                    "platform": account.platform,
                    "action": action,
                    "cap": cap,
                    "used": used,
                    "headroom": max(cap - used, 0),
                }
            )
    return out
