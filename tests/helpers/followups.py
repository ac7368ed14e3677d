"""Test helpers for follow-ups: contacts, accounts and settings on a fresh database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from crm.core.db import transaction
from crm.core.settings import Settings, get_settings
from crm.core.vocabulary import Platform
from crm.models import Contact, Identity, SourceInstance, Touch
from crm.outreach.accounts import add_account


def make_contacts(
    engine: Engine,
    n: int,
    *,
    tier: str = "open",
    entered: datetime | None = None,
    tz: str | None = None,
    email: bool = True,
    wecom: bool = True,
    name: str = "学员",
    source_kind: str | None = None,
) -> list[int]:
    entered = entered or datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    ids = []
    with transaction(engine) as s:
        src = None
        if source_kind:
            src = SourceInstance(kind=source_kind, key=f"k-{source_kind}-{n}", name="src")
            s.add(src)
            s.flush()
        for i in range(n):
            c = Contact(
                display_name=f"{name}{i}",
                tier=tier,
                tier_entered_at=entered,
                timezone=tz,
                first_seen_at=entered,
                last_active_at=entered,
            )
            s.add(c)
            s.flush()
            if email:
                s.add(Identity(contact_id=c.id, kind="email", value=f"c{c.id}@example.com"))
            if wecom:
                s.add(Identity(contact_id=c.id, kind="wecom_external_userid", value=f"wm{c.id}"))
            if src is not None:
                s.add(Touch(contact_id=c.id, source_instance_id=src.id, touched_at=entered))
            ids.append(c.id)
    return ids


def make_account(engine: Engine, handle: str, platform: str, **limits: int) -> int:
    return add_account(engine, handle, Platform(platform), limits=limits).id


def settings_for(tmp_path: Path, campaigns: str | None = None, **extra: Any) -> Settings:
    kw: dict[str, Any] = {"data_dir": tmp_path / "data"}
    if campaigns is not None:
        path = tmp_path / "campaigns.toml"
        path.write_text(campaigns, encoding="utf-8")
        kw["campaigns_path"] = path
    kw.update(extra)
    return get_settings(**kw)
