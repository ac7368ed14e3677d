"""WeCom customer groups live: change_external_chat events and the reconciliation that
fixes what callbacks missed.

Callbacks can be lost or arrive out of order. A member's leave recorded before its join
(the events crossed) is kept as a closed membership without a join time, which the late
join then completes instead of opening a new one. The scheduled reconciliation reads
``groupchat/get`` and, where ``member_version`` changed since the last run, makes our
memberships match WeCom's member list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from crm.core.db import dialect_insert, transaction
from crm.core.vocabulary import IdentityKind, Platform
from crm.intake.pipeline import ingest_items
from crm.intake.records import RawItem
from crm.intake.wecom import WeComClient, group_spec, member_items
from crm.intake.wecom_inbox import Claimed
from crm.models import Community, Identity, Membership, WecomChatVersion, utcnow


def _community(session: Session, chat_id: str) -> Community | None:
    return session.scalar(select(Community).where(Community.external_id == chat_id))


def _contacts(session: Session, userids: list[str]) -> dict[str, int]:
    rows = session.execute(
        select(Identity.value, Identity.contact_id).where(
            Identity.kind == IdentityKind.WECOM_EXTERNAL_USERID.value, Identity.value.in_(userids)
        )
    )
    return {value: cid for value, cid in rows}


def _members(fields: dict[str, Any]) -> list[str]:
    raw = fields.get("MemChangeList") or []
    items = raw if isinstance(raw, list) else [raw]
    return [str(u) for u in items if u]


def apply_chat_change(engine: Engine, cb: Claimed) -> str:
    """Apply one change_external_chat event to our memberships."""
    f = cb.fields
    chat_id, detail = str(f.get("ChatId") or ""), str(f.get("UpdateDetail") or "")
    at = cb.created_at_wecom or cb.received_at
    userids = _members(f)
    with transaction(engine) as session:
        community = _community(session, chat_id)
    if community is None:
        return f"chat {chat_id} is not one of our groups"
    if detail in ("add_member", "del_member") and userids:
        # A leave may come before the join that would have made the contact: keep it.
        _resolve_unknown(engine, community, userids, at)
    with transaction(engine, immediate=True) as session:
        cids = _contacts(session, userids)
        if detail == "add_member":
            n = sum(_join(session, community.id, cid, at) for cid in cids.values())
            return f"{n} member(s) joined {chat_id} (JoinScene {f.get('JoinScene', '')})"
        if detail == "del_member":
            reason = f"QuitScene {f.get('QuitScene', '')}".strip()
            n = sum(_leave(session, community.id, cid, at, reason) for cid in cids.values())
            return f"{n} member(s) left {chat_id}"
    return f"chat {chat_id}: {detail or 'change'} noted"


def _resolve_unknown(
    engine: Engine, community: Community, userids: list[str], at: datetime
) -> None:
    """Members we do not know yet become contacts of the group's source, like a pull would."""
    spec = group_spec({"chat_id": community.external_id, "name": community.name})
    items = [
        RawItem(
            record_key=f"{community.external_id}:{u}:{int(at.timestamp())}",
            payload={
                "wecom_external_userid": u,
                "occurred_at": at.isoformat(),
                "community": community.name,
            },
            source=spec,
        )
        for u in userids
        if u.startswith("wm") or u.startswith("wo")  # external ids; staff userids are ours
    ]
    if items:
        ingest_items(engine, spec, items, origin="wecom callback change_external_chat")


def _join(session: Session, community_id: int, contact_id: int, at: datetime) -> int:
    rows = session.execute(
        select(Membership.id, Membership.joined_at, Membership.left_at).where(
            Membership.community_id == community_id, Membership.contact_id == contact_id
        )
    ).all()
    if any(r.left_at is None for r in rows):
        return 0  # already in (a retried or reconciled join)
    # A leave that came before its join (the events crossed): complete it, do not reopen.
    crossed = [r for r in rows if r.joined_at is None and r.left_at is not None and r.left_at >= at]
    if crossed:
        session.execute(
            update(Membership).where(Membership.id == crossed[0].id).values(joined_at=at)
        )
        return 0
    if any(r.left_at is not None and r.left_at >= at for r in rows):
        return 0  # a later leave is already known
    session.execute(
        dialect_insert(session, Membership)
        .values(community_id=community_id, contact_id=contact_id, joined_at=at, role="member")
        .on_conflict_do_nothing()
    )
    return 1


def _leave(session: Session, community_id: int, contact_id: int, at: datetime, reason: str) -> int:
    opened = session.scalar(
        select(Membership.id).where(
            Membership.community_id == community_id,
            Membership.contact_id == contact_id,
            Membership.left_at.is_(None),
        )
    )
    if opened is not None:
        session.execute(
            update(Membership).where(Membership.id == opened).values(left_at=at, left_reason=reason)
        )
        return 1
    session.execute(
        dialect_insert(session, Membership)
        .values(
            community_id=community_id,
            contact_id=contact_id,
            joined_at=None,
            left_at=at,
            left_reason=reason,
            role="member",
        )
        .on_conflict_do_nothing()
    )
    return 1


@dataclass
class Reconciled:
    """What one reconciliation run found and fixed."""

    chats: int = 0
    changed: int = 0
    joined: int = 0
    left: int = 0

    def as_dict(self) -> dict[str, int]:
        """The JSON shape the CLI and the flows print."""
        return {
            "chats": self.chats,
            "changed": self.changed,
            "joined": self.joined,
            "left": self.left,
        }


def reconcile_chats(
    engine: Engine, client: WeComClient, *, now: datetime | None = None
) -> Reconciled:
    """Compare each of our WeCom groups with groupchat/get; fix memberships where it changed."""
    at = now or utcnow()
    result = Reconciled()
    with transaction(engine) as session:
        groups = session.execute(
            select(Community.id, Community.external_id, WecomChatVersion.member_version)
            .outerjoin(WecomChatVersion, WecomChatVersion.community_id == Community.id)
            .where(
                Community.platform == Platform.WECOM.value,
                Community.external_id.is_not(None),
                Community.archived.is_(False),
            )
        ).all()
    for community_id, chat_id, known in groups:
        result.chats += 1
        chat = client.get_group_chat(str(chat_id))
        version = str(chat.get("member_version") or "")
        if version and version == known:
            continue
        result.changed += 1
        joined, left = _match_members(engine, community_id, chat, at)
        result.joined += joined
        result.left += left
        with transaction(engine, immediate=True) as session:
            values = {"community_id": community_id, "member_version": version, "reconciled_at": at}
            session.execute(
                dialect_insert(session, WecomChatVersion)
                .values(values)
                .on_conflict_do_update(
                    index_elements=["community_id"],
                    set_={"member_version": version, "reconciled_at": at},
                )
            )
            session.execute(
                update(Community)
                .where(Community.id == community_id)
                .values(member_count=len(chat.get("member_list") or []))
            )
    return result


def _match_members(
    engine: Engine, community_id: int, chat: dict[str, Any], at: datetime
) -> tuple[int, int]:
    items = [i for i in member_items(chat) if isinstance(i, RawItem)]
    spec = group_spec(chat)
    if items:
        ingest_items(engine, spec, items, origin="wecom reconciliation groupchat/get", now=at)
    joined_at = {
        str(i.payload["wecom_external_userid"]): datetime.fromisoformat(
            str(i.payload["occurred_at"])
        )
        for i in items
    }
    joined = left = 0
    with transaction(engine, immediate=True) as session:
        present = _contacts(session, list(joined_at))
        opened = set(
            session.scalars(
                select(Membership.contact_id).where(
                    Membership.community_id == community_id, Membership.left_at.is_(None)
                )
            )
        )
        for userid, cid in present.items():
            if cid not in opened:
                joined += _join(session, community_id, cid, joined_at[userid])
        gone = opened - set(present.values())
        for cid in gone:
            left += _leave(session, community_id, cid, at, "reconciliation: not in groupchat/get")
    return joined, left
