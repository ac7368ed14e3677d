"""Arrivals and unique contacts (UV): every touch and first touches, by source, kind and day."""

from __future__ import annotations

from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from crm.contacts.attribution import first_touches
from crm.models import SourceInstance, Touch
from crm.reports.attribution import dimension
from crm.reports.window import ReportWindow, data_span, local_day


def arrivals(session: Session, window: ReportWindow, *, by: str = "source") -> dict[str, Any]:
    """Touches, unique contacts and new contacts (first touch) in the window.

    ``touches`` counts every touch, ``uv`` distinct contacts touched, ``new_contacts`` those
    whose first touch ever falls in the window (credited to that touch's source).
    """
    in_range = (Touch.touched_at >= window.start) & (Touch.touched_at < window.end)
    firsts = first_touches(select(Touch.contact_id).where(in_range))
    day = local_day(
        Touch.touched_at, window, *data_span(session, Touch.touched_at, window.start, window.end)
    )
    key, label = dimension(by)

    def grouped(*cols: Any) -> list[Any]:
        q = (
            select(
                *cols,
                func.count(Touch.id).label("touches"),
                func.count(distinct(Touch.contact_id)).label("uv"),
                func.count(firsts.c.touch_id).label("new_contacts"),
            )
            .select_from(Touch)
            .join(SourceInstance, SourceInstance.id == Touch.source_instance_id)
            .outerjoin(firsts, firsts.c.touch_id == Touch.id)
            .where(in_range)
        )
        if cols:
            q = q.group_by(*cols).order_by(*cols)
        return list(session.execute(q))

    def counts(row: Any) -> dict[str, int]:
        return {"touches": row.touches, "uv": row.uv, "new_contacts": row.new_contacts}

    total = grouped()[0]
    by_kind = [{"kind": r.kind, **counts(r)} for r in grouped(SourceInstance.kind.label("kind"))]
    by_day = [{"day": r.day, **counts(r)} for r in grouped(day.label("day"))]
    by_day_kind = [
        {"day": r.day, "kind": r.kind, **counts(r)}
        for r in grouped(day.label("day"), SourceInstance.kind.label("kind"))
    ]
    # A source instance has one kind; other groupings (a promoter, a campaign) may span kinds.
    extra = [SourceInstance.kind.label("kind")] if by == "source" else []
    by_dim = grouped(key.label("key"), label.label("label"), *extra)
    by_dimension = sorted(
        (
            {"key": r.key, "label": r.label, "kind": r.kind if extra else None, **counts(r)}
            for r in by_dim
        ),
        key=lambda r: (-r["uv"], -r["touches"], str(r["key"])),
    )
    return {
        "by": by,
        "totals": counts(total),
        "by_kind": by_kind,
        "by_day": by_day,
        "by_day_kind": by_day_kind,
        "by_dimension": by_dimension,
    }
