"""Building blocks for the routing tests: contacts with sources and events, groups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from crm.db import transaction
from crm.models import Community, Contact, Event, OperatorAccount, SourceInstance, Touch

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)


def add_contact(
    engine: Engine, name: str, source: str = "peer_group", *, seen: datetime = NOW
) -> int:
    """A contact that arrived through one source instance of the given kind."""
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
