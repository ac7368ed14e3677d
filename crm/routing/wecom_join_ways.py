"""Group live codes through WeCom join ways (groupchat/add_join_way): one QR code over at
most five of a tier's groups, opening a new group when the last is full.

The code becomes the QR code of those groups, so invitations of the tier carry it. WeCom
documents no expiry for a join way's code (客户群「加入群聊」管理, updated 2026-01-05), unlike
a group's own 7-day code; it is given a ten-year validity so the 7-day check stays one rule.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update

from crm.core.db import transaction
from crm.core.errors import InputError, Problem
from crm.core.vocabulary import Platform, Tier
from crm.intake.wecom import WeComClient
from crm.models import Community, WecomJoinWay, utcnow

MAX_CHATS = 5  # add_join_way: chat_id_list 支持5个
MAX_ROOM_BASE_NAME = 40  # room_base_name: 最长40个utf8字符
NO_EXPIRY = timedelta(days=3650)


@dataclass(frozen=True)
class JoinWay:
    """A tier's group live code."""

    tier: str
    state: str
    config_id: str
    chat_ids: tuple[str, ...]
    qr_code: str


def create_join_way(
    engine: Engine,
    client: WeComClient,
    tier: Tier,
    *,
    auto_create_room: bool = True,
    room_base_name: str | None = None,
    now: datetime | None = None,
) -> JoinWay:
    """A join way over the tier's first WeCom groups (by position); their QR code becomes it."""
    at = now or utcnow()
    if auto_create_room and not (room_base_name or "").strip():
        raise InputError("error.routing.room_base_name_missing")
    if room_base_name and len(room_base_name) > MAX_ROOM_BASE_NAME:
        raise InputError("error.routing.room_base_name_long", limit=MAX_ROOM_BASE_NAME)
    with transaction(engine) as session:
        chats = session.execute(
            select(Community.id, Community.external_id)
            .where(
                Community.tier == tier.value,
                Community.platform == Platform.WECOM.value,
                Community.external_id.is_not(None),
                Community.archived.is_(False),
            )
            .order_by(Community.position, Community.id)
            .limit(MAX_CHATS)
        ).all()
    if not chats:
        raise InputError("error.routing.tier_no_wecom_group", tier=Problem(f"tier.{tier.value}"))
    state = f"tier-{tier.value}-{secrets.token_hex(4)}"[:30]
    chat_ids = [str(c.external_id) for c in chats]
    payload: dict[str, object] = {
        "scene": 2,  # 群的二维码插件
        "chat_id_list": chat_ids,
        "auto_create_room": 1 if auto_create_room else 0,
        "state": state,
    }
    if auto_create_room:
        payload.update(room_base_name=room_base_name, room_base_id=1)
    config_id = str(client.post("externalcontact/groupchat/add_join_way", payload)["config_id"])
    got = client.post("externalcontact/groupchat/get_join_way", {"config_id": config_id})
    qr_code = str(got["join_way"]["qr_code"])
    with transaction(engine) as session:
        session.add(
            WecomJoinWay(
                tier=tier.value,
                state=state,
                config_id=config_id,
                chat_ids=chat_ids,
                auto_create_room=auto_create_room,
                room_base_name=room_base_name,
                qr_code=qr_code,
                created_at=at,
            )
        )
        session.execute(
            update(Community)
            .where(Community.id.in_([c.id for c in chats]))
            .values(qr_code_url=qr_code, qr_expires_at=at + NO_EXPIRY)
        )
    return JoinWay(tier.value, state, config_id, tuple(chat_ids), qr_code)
