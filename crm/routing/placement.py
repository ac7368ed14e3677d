"""Group placement: inviting contacts waiting for a group of their tier, by the live code.

An invitation is a membership row (``invited_at``) plus an outbox message
(``campaign="tier-invite"``, ``action="group_invite"``) that the follow-up dispatcher sends
against the invited contact's own daily group joins (the contact is the one who scans); a
contact with no handle on the group's platform is invited by email if it has an address. When
no group has room the operator gets a ``no_group_room`` alert and the contact stays pending:
every route run places pending contacts again. Which group takes whom is
:mod:`crm.routing.group_choice`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    case,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.orm import Session

from crm.core.audit import raise_alert, resolve_alerts
from crm.core.db import dialect_insert, is_postgres
from crm.core.vocabulary import (
    CapAction,
    ContactStatus,
    IdentityKind,
    OutboxState,
    Tier,
)
from crm.models import (
    Community,
    Contact,
    Identity,
    Membership,
    OutboxMessage,
    UTCDateTime,
)
from crm.routing.group_choice import (
    NO_ADDRESS,
    GroupRoom,
    assign,
    no_room_message,
    qr_needed_until,
    reaches,
    room_left,
)
from crm.routing.placement_filters import address_kinds_among, chunks, opted_out_among
from crm.routing.rules.model import Rules

INVITE_CAMPAIGN = "tier-invite"
INVITE_TEMPLATE = "tier_invitation"
ALERT_KIND = "no_group_room"


@dataclass(frozen=True)
class PlacementResult:
    """What one placement pass did: invited, still waiting (for room, for an address) per
    tier, invited per group."""

    placed: int = 0
    pending: dict[Tier, int] = field(default_factory=dict)
    no_address: dict[Tier, int] = field(default_factory=dict)
    by_group: dict[str, int] = field(default_factory=dict)


def open_groups(session: Session, tier: Tier, rules: Rules, now: datetime) -> list[GroupRoom]:
    """The tier's groups that can take members now, in live-code order, with their room."""
    stmt = select(Community).where(
        Community.tier == tier.value,
        Community.archived.is_(False),
        Community.qr_code_url.is_not(None),
        Community.qr_expires_at > qr_needed_until(now, rules),
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
            room=room_left(g.qr_join_limit, g.capacity, counts.get(g.id, 0)),
        )
        for g in groups
    ]


def member_counts(session: Session | Connection, group_ids: Sequence[int]) -> dict[int, int]:
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


def pending_placements(session: Session, rules: Rules) -> dict[Tier, list[int]]:
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
    pending: dict[Tier, list[int]] = {}
    for cid, tier in rows:
        pending.setdefault(Tier(tier), []).append(int(cid))
    return pending


def place_contacts(
    session: Session,
    wanted: Mapping[Tier, Sequence[int]],
    rules: Rules,
    *,
    now: datetime,
) -> PlacementResult:
    """Invite contacts (by tier) into groups with room; alert when a tier has none left."""
    placed_total = 0
    pending: dict[Tier, int] = {}
    no_address: dict[Tier, int] = {}
    by_group: dict[str, int] = {}
    for tier, ids in wanted.items():
        if tier not in rules.placement.tiers or not ids:
            continue
        skip = opted_out_among(session, ids)
        candidates = [cid for cid in ids if cid not in skip]
        if not candidates:
            continue
        groups = open_groups(session, tier, rules, now)
        # Invited with nothing to reach them by, a contact would hold a slot it never uses.
        kinds = address_kinds_among(session, candidates)
        chosen = assign(candidates, groups, partial(_reaches, kinds))
        placed, left = chosen.placed, chosen.left
        if chosen.unreachable:
            no_address[tier] = len(chosen.unreachable)
        _invite(session, tier, placed, {g.id: g for g in groups}, now)
        names = {g.id: g.name for g in groups}
        for gid in set(placed.values()):
            by_group[names[gid]] = sum(1 for v in placed.values() if v == gid)
        placed_total += len(placed)
        if left:
            pending[tier] = len(left)
            theme = rules.placement.themes.get(tier)
            raise_alert(
                session,
                ALERT_KIND,
                tier.value,
                no_room_message(tier, len(left), theme),
                details={"waiting": len(left), "theme": theme},
                at=now,
            )
        else:
            resolve_alerts(session, ALERT_KIND, tier.value, at=now)
    return PlacementResult(
        placed=placed_total, pending=pending, no_address=no_address, by_group=by_group
    )


def _reaches(kinds: Mapping[int, set[str]], contact_id: int, group: GroupRoom) -> bool:
    return reaches(kinds.get(contact_id, set()), group.platform)


def _invite(
    session: Session,
    tier: Tier,
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
    _replan_skipped(session, tier, placed, groups, now)
    _fall_back_to_email(session, now)
    _refresh_counts(session, placed.values())


def _refresh_counts(session: Session | Connection, group_ids: Iterable[int]) -> None:
    touched = sorted(set(group_ids))
    counts = member_counts(session, touched)
    for gid in touched:  # a group left empty counts 0 (it has no row among the counts)
        session.execute(
            update(Community).where(Community.id == gid).values(member_count=counts.get(gid, 0))
        )


def withdraw_invitations(
    session: Session | Connection, invited: Sequence[tuple[int, int]], at: datetime
) -> None:
    """End the memberships of invitations (group id, contact id) skipped unsent for want of an
    address, so their slots free up; one the contact already joined by stays."""
    if not invited:
        return
    m = Membership
    session.execute(
        update(m)
        .where(
            tuple_(m.community_id, m.contact_id).in_(list(invited)),
            m.left_at.is_(None),
            m.joined_at.is_(None),
        )
        .values(left_at=at, left_reason=NO_ADDRESS)
        .execution_options(synchronize_session=False)
    )
    _refresh_counts(session, (gid for gid, _cid in invited))


def _replan_skipped(
    session: Session,
    tier: Tier,
    placed: Mapping[int, int],
    groups: Mapping[int, GroupRoom],
    now: datetime,
) -> None:
    # An invitation skipped for want of an address was never sent, and its key allows one per
    # tier: placed again (now reachable), the contact gets that row back, for its new group.
    o = OutboxMessage
    rows: list[tuple[int, int]] = []
    for among in chunks(session, list(placed)):
        rows.extend(
            (int(rid), int(cid))
            for rid, cid in session.execute(
                select(o.id, o.contact_id).where(
                    o.campaign == INVITE_CAMPAIGN,
                    o.step == tier.value,
                    o.state == OutboxState.SKIPPED.value,
                    o.reason == NO_ADDRESS,
                    among(o.contact_id),
                )
            )
        )
    if not rows:
        return
    session.execute(
        update(o),
        [
            {
                "id": rid,
                "channel": groups[placed[cid]].platform,
                "account_id": groups[placed[cid]].owner_account_id,
                "community_id": placed[cid],
                "context": _invite_context(tier, groups[placed[cid]]),
                "state": OutboxState.PLANNED.value,
                "reason": None,
                "rendered": None,
                "due_at": now,
                "updated_at": now,
            }
            for rid, cid in rows
        ],
    )


def _invite_context(tier: Tier, group: GroupRoom) -> dict[str, Any]:
    return {"tier": tier.value, "group": group.name, "qr_code_url": group.qr_code_url}


def _fall_back_to_email(session: Session, now: datetime) -> None:
    # An invitation on a chat platform goes to a contact with no handle there by email when
    # they have an address; with none at all dispatch skips it ("no address").
    o = OutboxMessage
    kind = case((o.channel == "wecom", IdentityKind.WECOM_EXTERNAL_USERID.value),
                else_=IdentityKind.WECHAT_ID.value)  # fmt: skip
    has = Identity.contact_id == o.contact_id
    session.execute(
        update(o)
        .where(
            o.campaign == INVITE_CAMPAIGN,
            o.state == "planned",
            o.updated_at == now,  # written by this pass: new, or planned again
            o.channel.in_(("wechat", "wecom")),
            ~exists().where(has, Identity.kind == kind),
            exists().where(has, Identity.kind == IdentityKind.EMAIL.value),
        )
        .values(channel="email")
        .execution_options(synchronize_session=False)
    )


def _invite_pg(
    session: Session,
    tier: Tier,
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
            "tier": tier.value,
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
    " CAST(:template AS text), g.owner, m.gid, 'group_invite',"
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
    tier: Tier,
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
                "step": tier.value,
                "contact_id": cid,
                "channel": groups[gid].platform,
                "template": INVITE_TEMPLATE,
                "account_id": groups[gid].owner_account_id,
                "community_id": gid,
                "action": CapAction.GROUP_INVITE.value,
                "context": _invite_context(tier, groups[gid]),
                "state": "planned",
                "due_at": now,
                "idempotency_key": f"{INVITE_CAMPAIGN}:{tier.value}:{cid}",
                "created_at": now,
                "updated_at": now,
            }
            for cid, gid in items
        ],
    )
