"""Who a campaign reaches, in SQL: its audience of contacts or groups, and the sending accounts.

The audience query computes in the database what planning needs per contact: the anchor
instant, and per channel whether the contact opted out, lacks marketing consent or has no
address there, so planning reads each contact once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from crm.compliance.optout import lacks_marketing_consent_clause, opted_out_clause
from crm.contacts.tags import tagged_clause
from crm.core.errors import InputError
from crm.core.vocabulary import ContactStatus
from crm.models import (
    Community,
    Contact,
    Identity,
    Membership,
    OperatorAccount,
    SourceInstance,
    TierChange,
    Touch,
)
from crm.outreach.campaign_spec import CHANNEL_IDENTITY, CHANNEL_PLATFORM, Campaign


def contacts_query(
    campaign: Campaign, channels: Sequence[str], contact_ids: Iterable[int] | None
) -> Select[Any]:
    """The campaign's audience, one row per contact: id, zone, locale, anchor instant and, per
    channel, ``out_CH`` (opted out), ``noconsent_CH`` (marketing only) and ``has_CH``."""
    c = Contact.__table__.c
    aud = campaign.audience
    first_touch = (
        select(func.min(Touch.touched_at)).where(Touch.contact_id == c.id).scalar_subquery()
    )
    tier_since = (
        select(func.max(TierChange.changed_at))
        .where(TierChange.contact_id == c.id, TierChange.to_tier == c.tier)
        .scalar_subquery()
    )
    anchor: Any = {
        "tier_entered": func.coalesce(c.tier_entered_at, tier_since),
        "signup": func.coalesce(first_touch, c.first_seen_at),
        "last_active": func.coalesce(c.last_active_at, c.first_seen_at),
    }.get(campaign.anchor, literal(None))
    cols: list[Any] = [
        c.id,
        c.timezone,
        c.locale,
        anchor.label("anchor"),
    ]
    for ch in channels:
        cols.append(opted_out_clause(c.id, ch).label(f"out_{ch}"))
        if campaign.purpose == "marketing":
            cols.append(lacks_marketing_consent_clause(c.id, ch).label(f"noconsent_{ch}"))
        kind = CHANNEL_IDENTITY.get(ch)
        if kind is not None:
            has = exists().where(Identity.contact_id == c.id, Identity.kind == kind)
            cols.append(has.label(f"has_{ch}"))
    stmt = select(*cols).where(c.status == ContactStatus.ACTIVE.value, c.merged_into_id.is_(None))
    if aud.tiers:
        stmt = stmt.where(c.tier.in_([t.value for t in aud.tiers]))
    if aud.min_score is not None:
        stmt = stmt.where(c.score >= aud.min_score)
    if aud.max_score is not None:
        stmt = stmt.where(c.score <= aud.max_score)
    if aud.locales:
        stmt = stmt.where(c.locale.in_(aud.locales))
    if aud.tags:
        stmt = stmt.where(tagged_clause(c.id, aud.tags))
    if aud.sources:
        stmt = stmt.where(
            exists().where(
                Touch.contact_id == c.id,
                SourceInstance.id == Touch.source_instance_id,
                SourceInstance.kind.in_([s.value for s in aud.sources]),
            )
        )
    if aud.groups:
        ids = [int(g) for g in aud.groups if g.isdigit()]
        names = [g for g in aud.groups if not g.isdigit()]
        stmt = stmt.where(
            exists().where(
                Membership.contact_id == c.id,
                Membership.left_at.is_(None),
                Community.id == Membership.community_id,
                or_(Community.id.in_(ids), Community.name.in_(names)),
            )
        )
    if contact_ids is not None:
        stmt = stmt.where(c.id.in_(list(contact_ids)))
    return stmt.order_by(c.id)


def groups_query(campaign: Campaign, contact_ids: Iterable[int] | None) -> Select[Any]:
    """Our live groups a group campaign posts in (tier and group filters)."""
    g = Community.__table__.c
    stmt = select(g.id, g.name, g.platform, g.external_id, g.owner_account_id).where(
        g.archived.is_(False)
    )
    aud = campaign.audience
    if aud.tiers:
        stmt = stmt.where(g.tier.in_([t.value for t in aud.tiers]))
    if aud.groups:
        ids = [int(x) for x in aud.groups if x.isdigit()]
        names = [x for x in aud.groups if not x.isdigit()]
        stmt = stmt.where(or_(g.id.in_(ids), g.name.in_(names)))
    if contact_ids is not None:  # the groups these contacts are in
        stmt = stmt.where(
            exists().where(
                Membership.community_id == g.id,
                Membership.left_at.is_(None),
                Membership.contact_id.in_(list(contact_ids)),
            )
        )
    return stmt.order_by(g.id)


def step_accounts(session: Session, campaign: Campaign) -> dict[tuple[str, str], list[int]]:
    """Per step and channel: the operator accounts messages are spread over (empty: none)."""
    out: dict[tuple[str, str], list[int]] = {}
    for step in campaign.steps:
        for channel in step.channels:
            platform = CHANNEL_PLATFORM.get(channel)
            stmt = select(OperatorAccount.id).where(OperatorAccount.active.is_(True))
            if step.account and channel == step.channel:
                stmt = stmt.where(OperatorAccount.handle == step.account)
            elif platform is not None:
                stmt = stmt.where(OperatorAccount.platform == platform)
            else:
                out[step.name, channel] = []
                continue
            ids = list(session.scalars(stmt.order_by(OperatorAccount.id)))
            if step.account and channel == step.channel and not ids:
                raise InputError(
                    "error.outreach.step_account", step=step.name, account=step.account
                )
            out[step.name, channel] = ids
    return out
