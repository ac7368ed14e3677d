"""Test data for the prospect queue and the sales workspace: users, prospects, queue items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert, select

from crm.core.db import transaction
from crm.core.vocabulary import QueueStatus
from crm.models import (
    Community,
    Contact,
    Event,
    Identity,
    Membership,
    QueueItem,
    SourceInstance,
    TierChange,
    Touch,
    User,
)
from crm.routing.tier_reasons import TierReason, why
from crm.sales.users import hash_password

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
ZONE = ZoneInfo("Asia/Shanghai")  # the business day of claim limits in these tests
PASSWORD = "correct horse battery"


@cache
def _password_hash() -> str:
    # argon2 is slow on purpose; hash the shared test password once per run.
    return hash_password(PASSWORD)


def users(engine: Engine) -> dict[str, int]:
    """alice and bob (sales), mia (manager), root (admin); all with PASSWORD."""
    out = {}
    with transaction(engine) as session:
        for name, role in (
            ("alice", "sales"),
            ("bob", "sales"),
            ("mia", "manager"),
            ("root", "admin"),
        ):
            user = User(username=name, role=role, password_hash=_password_hash(), created_at=T0)
            session.add(user)
            session.flush()
            out[name] = user.id
    return out


def prospects(
    engine: Engine,
    n: int,
    *,
    names: list[str] | None = None,
    now: datetime = T0,
    promoter: str | None = "zhang",
) -> list[dict[str, Any]]:
    """n prospects, each with an identity, a touch, a message event, a breakdown and an item."""
    out = []
    with transaction(engine) as session:
        src = session.scalar(
            select(SourceInstance).where(SourceInstance.kind == "qr_signup")
        ) or SourceInstance(
            kind="qr_signup",
            key="qr:expo",
            name="地推 Expo",
            promoter=promoter,
            post=None,
            created_at=now,
        )
        media = session.scalar(
            select(SourceInstance).where(SourceInstance.kind == "self_media")
        ) or SourceInstance(
            kind="self_media",
            key="xhs:post1",
            name="小红书 post 1",
            platform="xiaohongshu",
            post="post1",
            created_at=now,
        )
        group = session.scalar(select(Community).where(Community.name == "意向群1")) or Community(
            name="意向群1", tier="prospect", created_at=now
        )
        session.add_all([src, media, group])
        session.flush()
        for i in range(n):
            name = names[i] if names and i < len(names) else f"客户{i}"
            score = 40 + i
            contact = Contact(
                display_name=name,
                tier="prospect",
                score=score,
                score_breakdown=[],
                rules_version="test-1",
                first_seen_at=now - timedelta(days=3),
                created_at=now - timedelta(days=3),
            )
            session.add(contact)
            session.flush()
            session.add(
                Identity(
                    contact_id=contact.id,
                    kind="phone",
                    value=f"+86138{contact.id:08d}",
                    created_at=now,
                )
            )
            session.add(
                Touch(
                    contact_id=contact.id,
                    source_instance_id=(src if i % 2 == 0 else media).id,
                    touched_at=now - timedelta(days=3),
                )
            )
            asked = Event(
                contact_id=contact.id,
                kind="message",
                occurred_at=now - timedelta(days=1),
                payload={"text": "多少钱?怎么报名"},
                created_at=now,
            )
            session.add(asked)
            session.flush()
            # As the scorer stores it: each signal names the events behind it.
            contact.score_breakdown = [
                {"signal": "source:qr_signup", "points": 30, "events": []},
                {"signal": "intent", "points": score - 30, "events": [asked.id]},
            ]
            up = why(TierReason.SCORE_UP, score=score, at=40)
            session.add(
                TierChange(
                    contact_id=contact.id,
                    from_tier="active",
                    to_tier="prospect",
                    reason=up.stored_text,
                    reason_key=up.key,
                    reason_params=up.stored_params,
                    score=score,
                    rules_version="test-1",
                    changed_at=now - timedelta(days=1),
                )
            )
            if i % 2 == 0:
                session.add(Membership(community_id=group.id, contact_id=contact.id, joined_at=now))
            session.flush()
            item = QueueItem(
                contact_id=contact.id,
                status=QueueStatus.POOL,
                open_key=contact.id,
                sla_due_at=now + timedelta(hours=1 + i),
                priority=0,
                created_at=now - timedelta(minutes=n - i),
                updated_at=now,
            )
            session.add(item)
            session.flush()
            out.append({"contact_id": contact.id, "item_id": item.id, "name": name})
    return out


def bulk_pool(engine: Engine, n: int, *, now: datetime = T0) -> None:
    """n bare prospects with pool items, inserted set-wise (for concurrency tests)."""
    with transaction(engine) as session:
        first = session.scalar(select(Contact.id).order_by(Contact.id.desc()).limit(1)) or 0
        session.execute(
            insert(Contact),
            [
                {
                    "id": first + i + 1,
                    "display_name": f"p{i}",
                    "tier": "prospect",
                    "score": i % 100,
                    "score_breakdown": [],
                    "first_seen_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(n)
            ],
        )
        session.execute(
            insert(QueueItem),
            [
                {
                    "contact_id": first + i + 1,
                    "status": QueueStatus.POOL,
                    "open_key": first + i + 1,
                    "sla_due_at": now + timedelta(minutes=i),
                    "priority": i % 3,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(n)
            ],
        )
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('contacts', 'id'), "
                "(SELECT max(id) FROM contacts))"
            )
