"""Which source a contact is credited to (first touch) and the dimensions reports group by."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Select, String, cast, func, literal, select

from crm.errors import InputError
from crm.models import SourceInstance, Touch

By = Literal["source", "kind", "promoter", "post", "group", "location", "campaign"]
BY_CHOICES: tuple[str, ...] = (
    "source",
    "kind",
    "promoter",
    "post",
    "group",
    "location",
    "campaign",
)
NONE_LABEL = "(none)"


def check_by(by: str) -> By:
    """Validate a grouping name."""
    if by not in BY_CHOICES:
        raise InputError(f"unknown grouping {by!r} (choose one of: {', '.join(BY_CHOICES)})")
    return by  # type: ignore[return-value]


def dimension(by: str) -> tuple[Any, Any]:
    """(key, label) columns of SourceInstance for a grouping; NULL keys show as '(none)'."""
    by = check_by(by)
    if by == "source":
        return cast(SourceInstance.id, String), SourceInstance.name
    column = {
        "kind": SourceInstance.kind,
        "promoter": SourceInstance.promoter,
        "post": SourceInstance.post,
        "group": SourceInstance.group_name,
        "location": SourceInstance.location,
        "campaign": SourceInstance.campaign,
    }[by]
    key = func.coalesce(column, literal(NONE_LABEL))
    return key, key


def first_touches(contacts: Select[Any] | None = None) -> Any:
    """Subquery (touch_id, contact_id, source_instance_id, touched_at): each first touch.

    ``contacts`` (a SELECT of contact ids) narrows the scan; ties on time go to the lower id.
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
