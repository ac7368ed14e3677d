"""First-touch attribution: the one touch a contact is credited to.

Every touch is kept (multi-touch reports count them all); where one source must be named — the
funnel summary, reports by source, a prospect's owner in the queue — it is the contact's first
touch, ties on time going to the lower touch id. One definition here, so every page agrees.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select

from crm.models import Touch


def first_touches(contacts: Select[Any] | Sequence[int] | None = None) -> Any:
    """Subquery (touch_id, contact_id, source_instance_id, touched_at): each first touch.

    ``contacts`` (a SELECT of contact ids, or the ids) narrows the scan.
    """
    ranked_q = select(
        Touch.id.label("touch_id"),
        Touch.contact_id,
        Touch.source_instance_id,
        Touch.touched_at,
        func.row_number()
        .over(partition_by=Touch.contact_id, order_by=(Touch.touched_at, Touch.id))
        .label("rn"),
    )
    if contacts is not None:
        ranked_q = ranked_q.where(Touch.contact_id.in_(contacts))
    ranked = ranked_q.subquery("ranked_touches")
    return (
        select(
            ranked.c.touch_id, ranked.c.contact_id, ranked.c.source_instance_id, ranked.c.touched_at
        )
        .where(ranked.c.rn == 1)
        .subquery("first_touch")
    )
