"""Group placement with QR rotation (群活码): which group of its tier a contact is invited to.

Groups of a tier form a live code: filled in ``position`` order, each only while it is below
its QR-join limit (≈200 members) and its QR code stays valid for the margin the rules ask;
a full or expiring group hands over to the next. An invitation is a membership row
(``invited_at``) plus an outbox message (``campaign="tier-invite"``, ``action="group_join"``)
that the follow-up dispatcher sends against the owner account's daily group-join cap. When no
group has room the operator gets a ``no_group_room`` alert and the contact stays pending: every
route run places pending contacts again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Engine,
    any_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from crm.core.audit import audit, raise_alert, resolve_alerts
from crm.core.db import dialect_insert, is_postgres, transaction
from crm.core.errors import Conflict, InputError, NotFound
from crm.core.vocabulary import ContactStatus, EventKind, Theme, Tier
from crm.models import (
    Community,
    Consent,
    Contact,
    Event,
    Membership,
    OperatorAccount,
    OutboxMessage,
    UTCDateTime,
    utcnow,
)
from crm.routing.rules import Rules

INVITE_CAMPAIGN = "tier-invite"
INVITE_TEMPLATE = "tier_invitation"
ALERT_KIND = "no_group_room"


@dataclass
class GroupRoom:
    """A group of the live code and how many more contacts it can take by QR."""

    id: int
    name: str
    owner_account_id: int | None
    platform: str
    qr_code_url: str | None
    room: int


@dataclass
class PlacementResult:
    """What one placement pass did."""

    placed: int = 0
    pending: dict[str, int] = field(default_factory=dict)
    by_group: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready counts."""
        return {"placed": self.placed, "pending": self.pending, "by_group": self.by_group}


def assign(contact_ids: Sequence[int], groups: list[GroupRoom]) -> tuple[dict[int, int], list[int]]:
    """Fill groups in order (the live code): contact → group id, and who found no room."""
    placed: dict[int, int] = {}
    index = 0
    left: list[int] = []
    for cid in contact_ids:
        while index < len(groups) and groups[index].room <= 0:
            index += 1
        if index == len(groups):
            left.append(cid)
            continue
        placed[cid] = groups[index].id
        groups[index].room -= 1
    return placed, left


def open_groups(session: Session, tier: str, rules: Rules, now: datetime) -> list[GroupRoom]:
    """The tier's groups that can take members now, in live-code order, with their room."""
    margin = now + timedelta(hours=rules.placement.qr_margin_hours)
    stmt = select(Community).where(
        Community.tier == tier,
        Community.archived.is_(False),
        Community.qr_code_url.is_not(None),
        Community.qr_expires_at > margin,
    )
    theme = rules.placement.themes.get(tier)
    if theme:
        stmt = stmt.where(Community.theme == theme)
    groups = session.scalars(stmt.order_by(Community.position, Community.id)).all()
    counts = member_counts(session, [g.id for g in groups])
    return [
        GroupRoom(
            id=g.id,
            name=g.name,
            owner_account_id=g.owner_account_id,
            platform=g.platform,
            qr_code_url=g.qr_code_url,
            room=max(0, min(g.qr_join_limit, g.capacity) - counts.get(g.id, 0)),
        )
        for g in groups
    ]


def member_counts(session: Session, group_ids: Sequence[int]) -> dict[int, int]:
    """Members per group: joined or invited, not left."""
    if not group_ids:
        return {}
    rows = session.execute(
        select(Membership.community_id, func.count())
        .where(
            Membership.community_id.in_(group_ids),
            Membership.left_at.is_(None),
            or_(Membership.joined_at.is_not(None), Membership.invited_at.is_not(None)),
        )
        .group_by(Membership.community_id)
    )
    return {int(gid): int(n) for gid, n in rows}


def opted_out_among(session: Session, contact_ids: Sequence[int]) -> set[int]:
    """Which of these contacts opted out (an opt-out event, or an opt-out after any consent)."""
    out: set[int] = set()
    pg = is_postgres(session)
    # PostgreSQL takes the ids as one array (= ANY), not thousands of bound parameters.
    step = max(len(contact_ids), 1) if pg else 5000
    for start in range(0, len(contact_ids), step):
        chunk = list(contact_ids[start : start + step])

        def among(column: Any, chunk: list[int] = chunk) -> Any:
            return column == any_(literal(chunk, ARRAY(BigInteger))) if pg else column.in_(chunk)

        out.update(
            session.scalars(
                select(Event.contact_id)
                .where(among(Event.contact_id), Event.kind == EventKind.OPT_OUT.value)
                .distinct()
            )
        )
        marks: dict[int, dict[str, int]] = {}
        for cid, kind, last in session.execute(
            select(Consent.contact_id, Consent.kind, func.max(Consent.id))
            .where(among(Consent.contact_id))
            .group_by(Consent.contact_id, Consent.kind)
        ):
            marks.setdefault(int(cid), {})[kind] = int(last)
        out.update(cid for cid, k in marks.items() if k.get("opt_out", 0) > k.get("consent", 0))
    return out


def pending_placements(session: Session, rules: Rules) -> dict[str, list[int]]:
    """Active contacts with no current membership in a group of their tier, by tier."""
    tiers = [t.value for t in rules.placement.tiers]
    in_tier_group = exists().where(
        Membership.contact_id == Contact.id,
        Membership.left_at.is_(None),
        Membership.community_id == Community.id,
        Community.tier == Contact.tier,
    )
    rows = session.execute(
        select(Contact.id, Contact.tier)
        .where(
            Contact.status == ContactStatus.ACTIVE.value,
            Contact.tier.in_(tiers),
            ~in_tier_group,
        )
        .order_by(Contact.id)
    )
    pending: dict[str, list[int]] = {}
    for cid, tier in rows:
        pending.setdefault(tier, []).append(int(cid))
    return pending


def place_contacts(
    session: Session,
    wanted: Mapping[str, Sequence[int]],
    rules: Rules,
    *,
    now: datetime,
) -> PlacementResult:
    """Invite contacts (by tier) into groups with room; alert when a tier has none left."""
    result = PlacementResult()
    for tier, ids in wanted.items():
        if Tier(tier) not in rules.placement.tiers or not ids:
            continue
        skip = opted_out_among(session, ids)
        candidates = [cid for cid in ids if cid not in skip]
        if not candidates:
            continue
        groups = open_groups(session, tier, rules, now)
        placed, left = assign(candidates, groups)
        _invite(session, tier, placed, {g.id: g for g in groups}, now)
        for gid in set(placed.values()):
            name = next(g.name for g in groups if g.id == gid)
            result.by_group[name] = sum(1 for v in placed.values() if v == gid)
        result.placed += len(placed)
        if left:
            result.pending[tier] = len(left)
            theme = rules.placement.themes.get(tier)
            raise_alert(
                session,
                ALERT_KIND,
                tier,
                f"{len(left)} contact(s) wait for a {tier} group"
                + (f" (theme {theme})" if theme else "")
                + " with room and a valid QR code: add a group or rotate a QR code",
                details={"waiting": len(left), "theme": theme},
                at=now,
            )
        else:
            resolve_alerts(session, ALERT_KIND, tier, at=now)
    return result


def _invite(
    session: Session,
    tier: str,
    placed: Mapping[int, int],
    groups: Mapping[int, GroupRoom],
    now: datetime,
) -> None:
    if not placed:
        return
    items = list(placed.items())
    if is_postgres(session):
        _invite_pg(session, tier, items, groups, now)
    else:
        _invite_rows(session, tier, items, groups, now)
    touched = sorted(set(placed.values()))
    for gid, count in member_counts(session, touched).items():
        session.execute(update(Community).where(Community.id == gid).values(member_count=count))


def _invite_pg(
    session: Session,
    tier: str,
    items: list[tuple[int, int]],
    groups: Mapping[int, GroupRoom],
    now: datetime,
) -> None:
    # Two statements over arrays: executemany sent one INSERT per invitation.
    used = sorted({gid for _cid, gid in items})
    params = {
        "cids": [cid for cid, _gid in items],
        "gids": [gid for _cid, gid in items],
        "now": now,
    }
    session.execute(_INSERT_MEMBERS_PG, params)
    session.execute(
        _INSERT_INVITES_PG,
        {
            **params,
            "campaign": INVITE_CAMPAIGN,
            "template": INVITE_TEMPLATE,
            "tier": tier,
            "g_ids": used,
            "g_platforms": [groups[g].platform for g in used],
            "g_owners": [groups[g].owner_account_id for g in used],
            "g_names": [groups[g].name for g in used],
            "g_qrs": [groups[g].qr_code_url for g in used],
        },
    )


_INSERT_MEMBERS_PG = text(
    "INSERT INTO memberships (community_id, contact_id, role, invited_at)"
    " SELECT m.gid, m.cid, 'member', :now"
    " FROM unnest(CAST(:cids AS bigint[]), CAST(:gids AS bigint[])) WITH ORDINALITY"
    " AS m(cid, gid, n) ORDER BY m.n"
).bindparams(bindparam("now", type_=UTCDateTime()))

_INSERT_INVITES_PG = text(
    "INSERT INTO outbox (campaign, step, contact_id, channel, template, account_id,"
    " community_id, action, context, state, due_at, idempotency_key, created_at, updated_at)"
    " SELECT CAST(:campaign AS text), CAST(:tier AS text), m.cid, g.platform,"
    " CAST(:template AS text), g.owner, m.gid, 'group_join',"
    " jsonb_build_object('tier', CAST(:tier AS text), 'group', g.name, 'qr_code_url', g.qr),"
    " 'planned', :now, CAST(:campaign AS text) || ':' || CAST(:tier AS text) || ':' || m.cid,"
    " :now, :now"
    " FROM unnest(CAST(:cids AS bigint[]), CAST(:gids AS bigint[])) WITH ORDINALITY"
    " AS m(cid, gid, n)"
    " JOIN unnest(CAST(:g_ids AS bigint[]), CAST(:g_platforms AS text[]),"
    " CAST(:g_owners AS bigint[]), CAST(:g_names AS text[]), CAST(:g_qrs AS text[]))"
    " AS g(id, platform, owner, name, qr) ON g.id = m.gid"
    " ORDER BY m.n ON CONFLICT DO NOTHING"
).bindparams(bindparam("now", type_=UTCDateTime()))


def _invite_rows(
    session: Session,
    tier: str,
    items: list[tuple[int, int]],
    groups: Mapping[int, GroupRoom],
    now: datetime,
) -> None:
    session.execute(
        insert(Membership),
        [
            {"community_id": gid, "contact_id": cid, "role": "member", "invited_at": now}
            for cid, gid in items
        ],
    )
    stmt = dialect_insert(session, OutboxMessage).on_conflict_do_nothing()
    session.execute(
        stmt,
        [
            {
                "campaign": INVITE_CAMPAIGN,
                "step": tier,
                "contact_id": cid,
                "channel": groups[gid].platform,
                "template": INVITE_TEMPLATE,
                "account_id": groups[gid].owner_account_id,
                "community_id": gid,
                "action": "group_join",
                "context": {
                    "tier": tier,
                    "group": groups[gid].name,
                    "qr_code_url": groups[gid].qr_code_url,
                },
                "state": "planned",
                "due_at": now,
                "idempotency_key": f"{INVITE_CAMPAIGN}:{tier}:{cid}",
                "created_at": now,
                "updated_at": now,
            }
            for cid, gid in items
        ],
    )


# --- managing the groups ---------------------------------------------------------------------


def add_group(
    engine: Engine,
    name: str,
    *,
    tier: str,
    theme: str = Theme.DISCUSSION.value,
    capacity: int = 500,
    qr_join_limit: int = 200,
    qr_url: str | None = None,
    qr_expires: timedelta | None = None,
    account: str | None = None,
    position: int | None = None,
    actor: str = "cli",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Add a group to a tier's live code (last in line unless a position is given)."""
    at = now or utcnow()
    try:
        tier = Tier(tier).value
        theme = Theme(theme).value
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    if capacity < 1 or qr_join_limit < 1:
        raise InputError("capacity and qr_join_limit must be at least 1")
    if qr_url is not None and not qr_url.strip():
        raise InputError("--qr-url must not be empty")
    with transaction(engine) as session:
        if session.scalar(select(Community.id).where(Community.name == name)) is not None:
            raise Conflict(f"a group named {name!r} already exists")
        owner = _account_id(session, account) if account else None
        if position is None:
            last = session.scalar(
                select(func.max(Community.position)).where(Community.tier == tier)
            )
            position = 0 if last is None else int(last) + 1
        group = Community(
            name=name,
            tier=tier,
            theme=theme,
            capacity=capacity,
            qr_join_limit=qr_join_limit,
            owner_account_id=owner,
            qr_code_url=qr_url,
            qr_expires_at=(at + (qr_expires or timedelta(days=7))) if qr_url else None,
            position=position,
            created_at=at,
        )
        session.add(group)
        session.flush()
        audit(session, actor, "group.add", object_type="community", object_id=group.id, at=at)
        return _describe(group, 0, at)


def _account_id(session: Session, handle: str) -> int:
    ids = session.scalars(select(OperatorAccount.id).where(OperatorAccount.handle == handle)).all()
    if not ids:
        raise NotFound(f"operator account {handle!r} does not exist")
    if len(ids) > 1:
        raise InputError(f"operator account {handle!r} exists on several platforms")
    return int(ids[0])


def _find_group(session: Session, ref: str) -> Community:
    group = session.scalar(select(Community).where(Community.name == ref))
    if group is None and ref.isdigit():
        group = session.get(Community, int(ref))
    if group is None:
        raise NotFound(f"group {ref!r} does not exist")
    return group


def rotate_qr(
    engine: Engine,
    group_ref: str,
    *,
    url: str,
    expires: timedelta | None = None,
    actor: str = "cli",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Give a group a fresh QR code (by name or id); it takes members again if it has room."""
    at = now or utcnow()
    if not url.strip():
        raise InputError("--url must not be empty")
    with transaction(engine) as session:
        group = _find_group(session, group_ref)
        group.qr_code_url = url
        group.qr_expires_at = at + (expires or timedelta(days=7))
        audit(session, actor, "group.rotate_qr", object_type="community", object_id=group.id, at=at)
        count = member_counts(session, [group.id]).get(group.id, 0)
        return _describe(group, count, at)


def list_groups(session: Session, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every group with its live member count and whether it takes members by QR now."""
    at = now or utcnow()
    groups = session.scalars(
        select(Community).order_by(Community.tier, Community.position, Community.id)
    ).all()
    counts = member_counts(session, [g.id for g in groups])
    return [_describe(g, counts.get(g.id, 0), at) for g in groups]


def _describe(group: Community, members: int, now: datetime) -> dict[str, Any]:
    limit = min(group.qr_join_limit, group.capacity)
    qr_valid = group.qr_expires_at is not None and group.qr_expires_at > now
    return {
        "id": group.id,
        "name": group.name,
        "tier": group.tier,
        "theme": group.theme,
        "position": group.position,
        "members": members,
        "qr_join_limit": group.qr_join_limit,
        "capacity": group.capacity,
        "qr_code_url": group.qr_code_url,
        "qr_expires_at": group.qr_expires_at,
        "open": bool(group.qr_code_url) and qr_valid and members < limit and not group.archived,
        "archived": group.archived,
        "owner_account_id": group.owner_account_id,
    }


__all__ = [
    "ALERT_KIND",
    "INVITE_CAMPAIGN",
    "GroupRoom",
    "PlacementResult",
    "add_group",
    "assign",
    "list_groups",
    "member_counts",
    "open_groups",
    "opted_out_among",
    "pending_placements",
    "place_contacts",
    "rotate_qr",
]
