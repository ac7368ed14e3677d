"""The dimensions reports group by: the touch a contact is credited to (contacts.attribution)."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import String, case, cast, func, literal

from crm.core.errors import InputError
from crm.core.vocabulary import SourceKind
from crm.models import SourceInstance

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
        raise InputError("error.reports.by_unknown", by=by, known=", ".join(BY_CHOICES))
    return by  # type: ignore[return-value]


def dimension(by: str) -> tuple[Any, Any]:
    """(key, label) columns of SourceInstance for a grouping; NULL keys show as '(none)'."""
    by = check_by(by)
    # Post ids are only unique per platform (two platforms can both have a "note-001").
    on_platform = func.coalesce(SourceInstance.platform, literal("?")) + literal(" · ")
    if by == "source":
        label = case(
            (SourceInstance.kind == SourceKind.SELF_MEDIA.value, on_platform + SourceInstance.name),
            else_=SourceInstance.name,
        )
        return cast(SourceInstance.id, String), label
    column = {
        "kind": SourceInstance.kind,
        "promoter": SourceInstance.promoter,
        "post": on_platform + SourceInstance.post,  # NULL when there is no post
        "group": SourceInstance.group_name,
        "location": SourceInstance.location,
        "campaign": SourceInstance.campaign,
    }[by]
    key = func.coalesce(column, literal(NONE_LABEL))
    return key, key
