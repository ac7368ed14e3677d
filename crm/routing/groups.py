"""Managing the groups of the live codes: adding a group, rotating its QR code, listing them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from crm.core.audit import audit
from crm.core.db import transaction
from crm.core.errors import Conflict, InputError, NotFound
from crm.core.vocabulary import Theme, Tier
from crm.models import Community, OperatorAccount, utcnow
from crm.routing.group_choice import qr_url_problem, takes_members
from crm.routing.placement import member_counts

# A platform's group QR code is valid for seven days.
QR_VALIDITY = timedelta(days=7)


@dataclass(frozen=True)
class GroupView:
    """A group as operators see it: its place in the live code, members, QR code, whether open."""

    id: int
    name: str
    tier: Tier
    theme: Theme
    position: int
    members: int
    qr_join_limit: int
    capacity: int
    qr_code_url: str | None
    qr_expires_at: datetime | None
    open: bool
    archived: bool
    owner_account_id: int | None


def add_group(
    engine: Engine,
    name: str,
    *,
    tier: Tier | str,
    theme: Theme | str = Theme.DISCUSSION,
    capacity: int = 500,
    qr_join_limit: int = 200,
    qr_url: str | None = None,
    qr_expires: timedelta | None = None,
    account: str | None = None,
    position: int | None = None,
    actor: str = "cli",
    now: datetime | None = None,
) -> GroupView:
    """Add a group to a tier's live code (last in line unless a position is given)."""
    at = now or utcnow()
    if tier not in set(Tier):
        raise InputError("error.routing.tier_unknown", value=tier, known=", ".join(Tier))
    if theme not in set(Theme):
        raise InputError("error.routing.theme_unknown", value=theme, known=", ".join(Theme))
    tier, theme = Tier(tier), Theme(theme)
    if capacity < 1 or qr_join_limit < 1:
        raise InputError("error.group_capacity")
    if qr_url is not None:
        _check_qr_url("--qr-url", qr_url)
    with transaction(engine) as session:
        if session.scalar(select(Community.id).where(Community.name == name)) is not None:
            raise Conflict("error.group_exists", name=name)
        owner = _account_id(session, account) if account else None
        if position is None:
            last = session.scalar(
                select(func.max(Community.position)).where(Community.tier == tier.value)
            )
            position = 0 if last is None else int(last) + 1
        group = Community(
            name=name,
            tier=tier.value,
            theme=theme.value,
            capacity=capacity,
            qr_join_limit=qr_join_limit,
            owner_account_id=owner,
            qr_code_url=qr_url,
            qr_expires_at=(at + (qr_expires or QR_VALIDITY)) if qr_url else None,
            position=position,
            created_at=at,
        )
        session.add(group)
        session.flush()
        audit(session, actor, "group.add", object_type="community", object_id=group.id, at=at)
        return _view(group, 0, at)


def rotate_qr(
    engine: Engine,
    group_ref: str,
    *,
    url: str,
    expires: timedelta | None = None,
    actor: str = "cli",
    now: datetime | None = None,
) -> GroupView:
    """Give a group a fresh QR code (by name or id); it takes members again if it has room."""
    at = now or utcnow()
    _check_qr_url("--url", url)
    with transaction(engine) as session:
        group = _find_group(session, group_ref)
        group.qr_code_url = url
        group.qr_expires_at = at + (expires or QR_VALIDITY)
        audit(session, actor, "group.rotate_qr", object_type="community", object_id=group.id, at=at)
        count = member_counts(session, [group.id]).get(group.id, 0)
        return _view(group, count, at)


def _check_qr_url(option: str, url: str) -> None:
    # The link is sent to every invited contact as is: a placeholder would reach them all.
    problem = qr_url_problem(url)
    if problem:
        raise InputError(problem.key, **problem.params, option=option, url=url)


def list_groups(session: Session, *, now: datetime | None = None) -> list[GroupView]:
    """Every group with its live member count and whether it takes members by QR now."""
    at = now or utcnow()
    groups = session.scalars(
        select(Community).order_by(Community.tier, Community.position, Community.id)
    ).all()
    counts = member_counts(session, [g.id for g in groups])
    return [_view(g, counts.get(g.id, 0), at) for g in groups]


def _account_id(session: Session, handle: str) -> int:
    ids = session.scalars(select(OperatorAccount.id).where(OperatorAccount.handle == handle)).all()
    if not ids:
        raise NotFound("error.account_missing", handle=handle)
    if len(ids) > 1:
        raise InputError("error.account_ambiguous", handle=handle)
    return int(ids[0])


def _find_group(session: Session, ref: str) -> Community:
    group = session.scalar(select(Community).where(Community.name == ref))
    if group is None and ref.isdigit():
        group = session.get(Community, int(ref))
    if group is None:
        raise NotFound("error.group_missing", ref=ref)
    return group


def _view(group: Community, members: int, now: datetime) -> GroupView:
    return GroupView(
        id=group.id,
        name=group.name,
        tier=Tier(group.tier),
        theme=Theme(group.theme),
        position=group.position,
        members=members,
        qr_join_limit=group.qr_join_limit,
        capacity=group.capacity,
        qr_code_url=group.qr_code_url,
        qr_expires_at=group.qr_expires_at,
        open=takes_members(
            qr_code_url=group.qr_code_url,
            qr_expires_at=group.qr_expires_at,
            members=members,
            qr_join_limit=group.qr_join_limit,
            capacity=group.capacity,
            archived=group.archived,
            now=now,
        ),
        archived=group.archived,
        owner_account_id=group.owner_account_id,
    )
