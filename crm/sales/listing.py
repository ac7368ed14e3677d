"""The queue listing: a page of items for a view (mine, pool, team, closed, all).

Reading never writes: an item whose lease ran out is listed as available (status ``pool``,
no assignee) until a write path sweeps it. Filters and sort keys are bound values and
known columns, never SQL from input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, literal, select, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from crm.contacts.attribution import first_touches
from crm.contacts.naming import contact_label
from crm.core.errors import InputError
from crm.core.vocabulary import IdentityKind, QueueStatus
from crm.models import (
    Community,
    Contact,
    ContactTag,
    Identity,
    Membership,
    QueueItem,
    SourceInstance,
    Touch,
    User,
    utcnow,
)
from crm.sales.leases import held_now, lease_ran_out
from crm.sales.vocabulary import CLOSED, HELD, QueueView

MAX_PAGE = 500
# Sort keys the pages and the CLI may ask for, mapped to columns (never SQL from input).
SORTS: dict[str, Any] = {
    "sla": QueueItem.sla_due_at,
    "priority": QueueItem.priority,
    "created": QueueItem.created_at,
    "score": Contact.score,
    "updated": QueueItem.updated_at,
}
_COLUMNS = (
    QueueItem.id,
    QueueItem.contact_id,
    QueueItem.status,
    QueueItem.priority,
    QueueItem.sla_due_at,
    QueueItem.lease_expires_at,
    QueueItem.snoozed_until,
    QueueItem.created_at,
    QueueItem.updated_at,
    QueueItem.assignee_id,
    Contact.display_name,
    Contact.tier,
    Contact.score,
    User.username,
)


@dataclass(frozen=True)
class QueueFilters:
    """What a listing may be narrowed by; None (or empty) means no filter."""

    source_kind: str | None = None
    promoter: str | None = None
    post: str | None = None
    group: str | None = None
    tag: str | None = None
    tier: str | None = None
    min_score: int | None = None
    max_score: int | None = None
    due_before: datetime | None = None
    status: QueueStatus | None = None


@dataclass(frozen=True)
class QueueRow:
    """One item as the queue pages and ``qunflow queue list`` show it."""

    item_id: int
    contact_id: int
    name: str | None
    tier: str | None
    score: int
    status: QueueStatus
    priority: int
    sla_due_at: datetime | None
    overdue: bool
    lease_expires_at: datetime | None
    snoozed_until: datetime | None
    assignee: str | None
    created_at: datetime
    source_kind: str | None
    source: str | None
    promoter: str | None


@dataclass(frozen=True)
class QueuePage:
    """A page of a view, with how it was sorted and whether there is a next page."""

    view: QueueView
    sort: str
    descending: bool
    limit: int
    offset: int
    has_next: bool
    items: list[QueueRow]


def parse_view(view: str) -> QueueView:
    """The view named by ``view``; InputError for anything else."""
    try:
        return QueueView(view)
    except ValueError as exc:
        raise InputError("error.sales.view_unknown", view=view) from exc


def list_queue(
    session: Session,
    *,
    view: str = QueueView.POOL,
    user_id: int | None = None,
    filters: QueueFilters | None = None,
    sort: str = "sla",
    descending: bool = False,
    limit: int = 50,
    offset: int = 0,
    now: datetime | None = None,
) -> QueuePage:
    """A page of queue items for a view with filters and a sort key (one of :data:`SORTS`)."""
    now = now or utcnow()
    which = parse_view(view)
    if sort not in SORTS:
        raise InputError("error.sales.sort_unknown", sort=sort, known=", ".join(SORTS))
    limit = max(1, min(limit, MAX_PAGE))
    offset = max(0, offset)
    narrowed = filter_conditions(filters or QueueFilters())
    branches = [[*view_cond, *narrowed] for view_cond in view_conditions(which, user_id, now)]
    rows = _page(session, branches, sort, descending, limit + 1, offset)
    shown = [int(r.contact_id) for r in rows[:limit]]
    sources = _first_sources(session, shown)
    handles = _handles(session, shown)
    return QueuePage(
        view=which,
        sort=sort,
        descending=descending,
        limit=limit,
        offset=offset,
        has_next=len(rows) > limit,
        items=[_row(r, sources, handles, now) for r in rows[:limit]],
    )


def view_conditions(
    view: QueueView, user_id: int | None, now: datetime
) -> list[list[ColumnElement[bool]]]:
    """The WHERE conditions of a view, one list per branch of a UNION ALL.

    The pool is two branches — items in the pool, and held items whose lease ran out — so
    each can walk its own index in page order instead of one OR sorting the whole table.
    """
    if view is QueueView.MINE:
        if user_id is None:
            raise InputError("error.sales.mine_needs_user")
        return [[QueueItem.assignee_id == user_id, held_now(now)]]
    if view is QueueView.POOL:
        return [[QueueItem.status == QueueStatus.POOL], [lease_ran_out(now)]]
    if view is QueueView.TEAM:
        return [[held_now(now)]]
    if view is QueueView.CLOSED:
        return [[QueueItem.status.in_(CLOSED)]]
    return [[]]


def filter_conditions(f: QueueFilters) -> list[ColumnElement[bool]]:
    """The WHERE conditions of the filters that are set."""
    conds: list[ColumnElement[bool]] = []
    if f.status:
        conds.append(QueueItem.status == f.status)
    if f.tier:
        conds.append(Contact.tier == f.tier)
    if f.min_score is not None:
        conds.append(Contact.score >= f.min_score)
    if f.max_score is not None:
        conds.append(Contact.score <= f.max_score)
    if f.due_before is not None:
        conds.append(QueueItem.sla_due_at <= f.due_before)
    for column, value in (
        (SourceInstance.kind, f.source_kind),
        (SourceInstance.promoter, f.promoter),
        (SourceInstance.post, f.post),
    ):
        if value:
            conds.append(_source_match(column, value))
    if f.group:
        conds.append(
            exists(
                select(literal(1))
                .select_from(Membership)
                .join(Community, Community.id == Membership.community_id)
                .where(Membership.contact_id == QueueItem.contact_id, Community.name == f.group)
            )
        )
    if f.tag:
        conds.append(
            exists().where(ContactTag.contact_id == QueueItem.contact_id, ContactTag.tag == f.tag)
        )
    return conds


def _source_match(column: Any, value: str) -> ColumnElement[bool]:
    return exists(
        select(literal(1))
        .select_from(Touch)
        .join(SourceInstance, SourceInstance.id == Touch.source_instance_id)
        .where(Touch.contact_id == QueueItem.contact_id, column == value)
    )


def sort_order(columns: Mapping[str, Any], sort: str, descending: bool) -> list[Any]:
    """ORDER BY for a sort key over ``columns`` (by name); NULLs last either way, then id."""
    col = columns[SORTS[sort].key]
    return [(col.desc() if descending else col.asc()).nulls_last(), columns["id"]]


_BY_NAME = {c.key: c for c in _COLUMNS}


def _rows(conds: Sequence[ColumnElement[bool]]) -> Select[Any]:
    return (
        select(*_COLUMNS)
        .join(Contact, Contact.id == QueueItem.contact_id)
        .outerjoin(User, User.id == QueueItem.assignee_id)
        .where(*conds)
    )


def _page(
    session: Session,
    branches: list[list[ColumnElement[bool]]],
    sort: str,
    descending: bool,
    limit: int,
    offset: int,
) -> Sequence[Any]:
    """``limit`` rows from ``offset`` of the branches' union, in sort order."""
    order = sort_order(_BY_NAME, sort, descending)
    if len(branches) == 1:
        stmt = _rows(branches[0]).order_by(*order).limit(limit).offset(offset)
        return session.execute(stmt).all()
    # Each branch contributes at most the rows up to the end of the page.
    parts = [_rows(b).order_by(*order).limit(offset + limit).subquery() for b in branches]
    union = union_all(*(select(*p.c) for p in parts)).subquery()
    stmt = (
        select(*union.c)
        .order_by(*sort_order(dict(union.c.items()), sort, descending))
        .limit(limit)
        .offset(offset)
    )
    return session.execute(stmt).all()


def _row(
    r: Any,
    sources: Mapping[int, tuple[str | None, ...]],
    handles: Mapping[int, list[tuple[str, str]]],
    now: datetime,
) -> QueueRow:
    lease_over = r.lease_expires_at is not None and r.lease_expires_at < now
    held = r.status in HELD and not lease_over
    kind, source, promoter = sources.get(int(r.contact_id), (None, None, None))
    return QueueRow(
        item_id=int(r.id),
        contact_id=int(r.contact_id),
        name=contact_label(r.display_name, handles.get(int(r.contact_id), [])) or None,
        tier=r.tier,
        score=int(r.score),
        status=QueueStatus(r.status) if held or r.status not in HELD else QueueStatus.POOL,
        priority=int(r.priority),
        sla_due_at=r.sla_due_at,
        overdue=r.sla_due_at is not None and r.sla_due_at < now,
        lease_expires_at=r.lease_expires_at if held else None,
        snoozed_until=r.snoozed_until,
        assignee=r.username if held else None,
        created_at=r.created_at,
        source_kind=kind,
        source=source,
        promoter=promoter,
    )


def _handles(session: Session, contact_ids: list[int]) -> dict[int, list[tuple[str, str]]]:
    """contact id → its platform handles, so a contact known only by one still has a label."""
    out: dict[int, list[tuple[str, str]]] = {}
    if not contact_ids:
        return out
    stmt = select(Identity.contact_id, Identity.kind, Identity.value).where(
        Identity.contact_id.in_(contact_ids), Identity.kind == IdentityKind.PLATFORM_HANDLE
    )
    for cid, kind, value in session.execute(stmt):
        out.setdefault(int(cid), []).append((kind, value))
    return out


def _first_sources(session: Session, contact_ids: list[int]) -> dict[int, tuple[str | None, ...]]:
    """contact id → (source kind, source name, promoter) of its first touch."""
    if not contact_ids:
        return {}
    first = first_touches(contact_ids)
    stmt = select(
        first.c.contact_id, SourceInstance.kind, SourceInstance.name, SourceInstance.promoter
    ).join(SourceInstance, SourceInstance.id == first.c.source_instance_id)
    return {int(cid): (kind, name, promoter) for cid, kind, name, promoter in session.execute(stmt)}


@dataclass(frozen=True)
class FilterChoices:
    """Values offered in the queue filters."""

    source_kinds: list[str]
    promoters: list[str]
    posts: list[str]
    groups: list[str]
    tags: list[str]


def filter_choices(session: Session) -> FilterChoices:
    """Values offered in the queue filters: source kinds, promoters, posts, groups, tags."""

    def distinct(col: Any, limit: int = 200) -> list[str]:
        rows = session.scalars(
            select(col).where(col.is_not(None)).distinct().order_by(col).limit(limit)
        )
        return [str(v) for v in rows]

    return FilterChoices(
        source_kinds=distinct(SourceInstance.kind),
        promoters=distinct(SourceInstance.promoter),
        posts=distinct(SourceInstance.post),
        groups=distinct(Community.name),
        tags=distinct(ContactTag.tag),
    )
