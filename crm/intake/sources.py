"""Source instances (a group, a post, a QR code, a feed): found or created by (kind, key)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.core.db import dialect_insert
from crm.core.vocabulary import Platform
from crm.intake.records import SourceSpec
from crm.models import OperatorAccount, SourceInstance, utcnow

_KEY_MAX = 300  # source_instances.key


def ensure_source(session: Session, spec: SourceSpec) -> int:
    """The id of the source instance for ``spec`` (kind, key), created on first use."""
    found = session.scalar(
        select(SourceInstance.id).where(
            SourceInstance.kind == spec.kind.value, SourceInstance.key == spec.key[:_KEY_MAX]
        )
    )
    if found is not None:
        return int(found)
    account_id = None
    if spec.operator_handle:
        account_id = _ensure_account(session, spec.operator_handle)
    values = {
        "kind": spec.kind.value,
        "key": spec.key[:_KEY_MAX],
        "name": spec.name[:300],
        "group_name": spec.group_name and spec.group_name[:200],
        "platform": spec.platform and spec.platform[:50],
        "post": spec.post and spec.post[:500],
        "promoter": spec.promoter and spec.promoter[:100],
        "location": spec.location and spec.location[:200],
        "campaign": spec.campaign and spec.campaign[:100],
        "operator_account_id": account_id,
        "referrer_contact_id": spec.referrer_contact_id,
        "extra": dict(spec.extra),
        "created_at": utcnow(),
    }
    stmt = dialect_insert(session, SourceInstance).values(**values).on_conflict_do_nothing()
    session.execute(stmt)
    return int(
        session.scalar(
            select(SourceInstance.id).where(
                SourceInstance.kind == spec.kind.value, SourceInstance.key == spec.key[:_KEY_MAX]
            )
        )
        or 0
    )


def _ensure_account(session: Session, handle: str) -> int:
    handle = handle.strip()[:100]
    stmt = (
        dialect_insert(session, OperatorAccount)
        .values(platform=Platform.WECHAT.value, handle=handle, created_at=utcnow())
        .on_conflict_do_nothing()
    )
    session.execute(stmt)
    return int(
        session.scalar(
            select(OperatorAccount.id).where(
                OperatorAccount.platform == Platform.WECHAT.value, OperatorAccount.handle == handle
            )
        )
        or 0
    )
