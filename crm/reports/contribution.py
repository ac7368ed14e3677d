"""Contribution volume (贡献量): messages, shares and referrals per contact, group and source."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, distinct, func, select
from sqlalchemy.orm import Session

from crm.contacts.attribution import first_touches
from crm.core.vocabulary import EventKind
from crm.models import Community, Contact, Event, SourceInstance
from crm.reports.attribution import NONE_LABEL, dimension
from crm.reports.window import ReportWindow

KINDS = (EventKind.MESSAGE.value, EventKind.SHARE.value, EventKind.REFERRAL.value)
COLUMNS = {"message": "messages", "share": "shares", "referral": "referrals"}


def _sums() -> list[Any]:
    return [func.sum(case((Event.kind == kind, 1), else_=0)).label(COLUMNS[kind]) for kind in KINDS]


def _row(r: Any) -> dict[str, int]:
    m, s, f = int(r.messages or 0), int(r.shares or 0), int(r.referrals or 0)
    return {"messages": m, "shares": s, "referrals": f, "total": m + s + f}


def contribution(
    session: Session, window: ReportWindow, *, by: str = "source", top: int = 20
) -> dict[str, Any]:
    """Messages, shares and referrals brought in the window: totals, top contacts, groups, sources.

    Per source, a contact's contributions are credited to the source of its first touch.
    """
    where = (
        (Event.occurred_at >= window.start)
        & (Event.occurred_at < window.end)
        & (Event.kind.in_(KINDS))
    )
    total = session.execute(
        select(*_sums(), func.count(distinct(Event.contact_id)).label("contributors")).where(where)
    ).one()

    top_rows = session.execute(
        select(Event.contact_id, Contact.display_name, *_sums())
        .join(Contact, Contact.id == Event.contact_id)
        .where(where)
        .group_by(Event.contact_id, Contact.display_name)
        .order_by(func.count().desc(), Event.contact_id)
        .limit(top)
    )
    by_contact = [{"contact_id": r.contact_id, "name": r.display_name, **_row(r)} for r in top_rows]

    group_rows = session.execute(
        select(Event.community_id, Community.name, *_sums())
        .outerjoin(Community, Community.id == Event.community_id)
        .where(where)
        .group_by(Event.community_id, Community.name)
    )
    by_group = sorted(
        (
            {"community_id": r.community_id, "name": r.name or NONE_LABEL, **_row(r)}
            for r in group_rows
        ),
        key=lambda r: (-r["total"], r["community_id"] or 0),
    )

    firsts = first_touches(select(Event.contact_id).where(where))
    key, label = dimension(by)
    # The same label objects in SELECT and GROUP BY, so PostgreSQL sees one bound parameter.
    key_col = func.coalesce(key, NONE_LABEL).label("key")
    label_col = func.coalesce(label, NONE_LABEL).label("label")
    source_rows = session.execute(
        select(
            key_col,
            label_col,
            func.count(distinct(Event.contact_id)).label("contributors"),
            *_sums(),
        )
        .select_from(Event)
        .outerjoin(firsts, firsts.c.contact_id == Event.contact_id)
        .outerjoin(SourceInstance, SourceInstance.id == firsts.c.source_instance_id)
        .where(where)
        .group_by(key_col, label_col)
    )
    by_source = sorted(
        (
            {"key": r.key, "label": r.label, "contributors": r.contributors, **_row(r)}
            for r in source_rows
        ),
        key=lambda r: (-r["total"], str(r["key"])),
    )
    return {
        "by": by,
        "totals": {**_row(total), "contributors": int(total.contributors or 0)},
        "by_contact": by_contact,
        "by_group": by_group,
        "by_source": by_source,
    }
