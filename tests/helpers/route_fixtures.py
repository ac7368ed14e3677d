"""Building blocks for the routing tests: contacts with sources and events, groups."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from crm.core.db import transaction
from crm.models import (
    Community,
    Consent,
    Contact,
    Event,
    Identity,
    OperatorAccount,
    SourceInstance,
    Touch,
)

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)


def add_contact(
    engine: Engine,
    name: str,
    source: str = "peer_group",
    *,
    seen: datetime = NOW,
    wechat: bool = True,
) -> int:
    """A contact that arrived through one source instance of the given kind, with a WeChat id
    (a group invitation can reach it) unless told otherwise."""
    with transaction(engine) as s:
        src = s.scalar(
            select(SourceInstance).where(SourceInstance.kind == source, SourceInstance.key == "k")
        )
        if src is None:
            src = SourceInstance(kind=source, key="k", name=f"{source} source")
            s.add(src)
            s.flush()
        contact = Contact(display_name=name, first_seen_at=seen, created_at=seen)
        s.add(contact)
        s.flush()
        s.add(Touch(contact_id=contact.id, source_instance_id=src.id, touched_at=seen))
        if wechat:
            s.add(Identity(contact_id=contact.id, kind="wechat_id", value=f"wxid_{contact.id}"))
        return contact.id


def add_events(
    engine: Engine, contact_id: int, kind: str, n: int = 1, *, at: datetime = NOW, **payload: Any
) -> list[int]:
    """n events of a kind, an hour apart ending at ``at``."""
    with transaction(engine) as s:
        rows = [
            Event(
                contact_id=contact_id,
                kind=kind,
                occurred_at=at - timedelta(hours=i),
                payload=dict(payload),
            )
            for i in range(n)
        ]
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]


def add_group(
    engine: Engine,
    name: str,
    tier: str,
    *,
    limit: int = 200,
    position: int = 0,
    expires: datetime | None = None,
    theme: str = "discussion",
    owner: str | None = "op-1",
) -> int:
    """A group with a QR code valid for a week from NOW unless told otherwise."""
    with transaction(engine) as s:
        account_id = None
        if owner:
            account = s.scalar(select(OperatorAccount).where(OperatorAccount.handle == owner))
            if account is None:
                account = OperatorAccount(platform="wechat", handle=owner)
                s.add(account)
                s.flush()
            account_id = account.id
        group = Community(
            name=name,
            tier=tier,
            theme=theme,
            qr_join_limit=limit,
            position=position,
            owner_account_id=account_id,
            qr_code_url=f"https://qr.example/{name}",
            qr_expires_at=expires or NOW + timedelta(days=7),
        )
        s.add(group)
        s.flush()
        return group.id


# Words that do and do not show intent, in both payload keys and any case; ad labels and
# other violation labels; answers that do and do not pass the default screening questions.
_MESSAGES = ["请问价格多少", "PRICE list?", "谢谢分享", "hi", "how to Sign Up", "100% 报名", "a_b"]
_VIOLATIONS = ["广告", "AD", "Ads", "insult", "spam-link"]
_ANSWERS = [{"goal": "考研"}, {"answers": {"goal": " Exam ", "budget": "有"}}, {"budget": "no"}]


def add_varied_contacts(engine: Engine, n: int, *, seed: int, now: datetime = NOW) -> list[int]:
    """n contacts with random sources, referrers, events of every kind (spread over 120 days),
    consents and activity dates: data on which every signal and tier rule has work to do."""
    rng = random.Random(seed)
    with transaction(engine) as s:
        sources = []
        for kind in ("peer_group", "self_media", "qr_signup", "api", "webinar"):
            src = SourceInstance(kind=kind, key=f"varied-{seed}", name=f"{kind} source")
            s.add(src)
            sources.append(src)
        s.flush()
        ids: list[int] = []
        for i in range(n):
            seen = now - timedelta(days=rng.randint(0, 150), hours=rng.randint(0, 23))
            contact = Contact(
                display_name=f"v{i}",
                first_seen_at=seen,
                created_at=seen,
                referred_by_id=rng.choice(ids) if ids and rng.random() < 0.2 else None,
                last_active_at=(
                    now - timedelta(days=rng.randint(0, 60)) if rng.random() < 0.3 else None
                ),
            )
            s.add(contact)
            s.flush()
            ids.append(contact.id)
            for src in rng.sample(sources, rng.choice([0, 1, 1, 1, 2])):
                s.add(Touch(contact_id=contact.id, source_instance_id=src.id, touched_at=seen))
            for _ in range(rng.choice([0, 1, 3, 8, 15])):
                s.add(_random_event(rng, contact.id, now))
            for kind in rng.choice([[], [], ["opt_out"], ["opt_out", "consent"], ["consent"]]):
                s.add(Consent(contact_id=contact.id, kind=kind, source="test"))
        return ids


def _random_event(rng: random.Random, contact_id: int, now: datetime) -> Event:
    kind = rng.choice(
        ["message"] * 6
        + ["share", "referral", "activity_attended", "violation", "answer", "purchase", "opt_out"]
    )
    payload: dict[str, Any] = {}
    if kind == "message":
        payload = {rng.choice(["message", "text"]): rng.choice(_MESSAGES)}
    elif kind == "violation":
        payload = {"violation": rng.choice(_VIOLATIONS)}
    elif kind == "answer":
        payload = dict(rng.choice(_ANSWERS))
    ago = timedelta(days=rng.randint(0, 120), hours=rng.randint(0, 23), minutes=rng.randint(0, 59))
    return Event(contact_id=contact_id, kind=kind, occurred_at=now - ago, payload=payload)
