"""The groups and operator accounts the bundled sample is routed into (idempotent set-up)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from crm.core.db import transaction
from crm.core.vocabulary import Platform, Theme, Tier
from crm.models import Community, utcnow
from crm.outreach.accounts import add_account
from crm.routing.groups import add_group

QR_DAYS = timedelta(days=7)
ACCOUNTS = (("yunying_a01", Platform.WECHAT), ("yunying_b02", Platform.WECHAT))

# A live code per tier: two open groups so placement can roll over, one group for each
# higher tier; QR codes valid for the platform's 7 days from the sample's date, or from today
# when the sample is replayed later (as an operator would rotate the codes before sending:
# dispatch holds back an invitation whose code has expired).
GROUPS: tuple[tuple[str, Tier, Theme, str], ...] = (
    ("粉丝交流1群", Tier.OPEN, Theme.DISCUSSION, "yunying_a01"),
    ("粉丝交流2群", Tier.OPEN, Theme.DISCUSSION, "yunying_b02"),
    ("活跃粉丝群", Tier.ACTIVE, Theme.DISCUSSION, "yunying_a01"),
    ("意向客户体验群", Tier.PROSPECT, Theme.TRIAL, "yunying_a01"),
    ("学员群", Tier.PAID, Theme.PAID, "yunying_b02"),
)


def set_up_sample_groups(engine: Engine, *, now: datetime) -> dict[str, Any]:
    """Create the sample's operator accounts and groups unless they exist; counts created."""
    for handle, platform in ACCOUNTS:
        add_account(engine, handle, platform)
    with transaction(engine) as session:
        existing = set(session.scalars(select(Community.name)))
    created = 0
    # From the sample's date, codes stay valid 7 days past the later of that date and today.
    valid_for = QR_DAYS + max(utcnow() - now, timedelta(0))
    for position, (name, tier, theme, owner) in enumerate(GROUPS):
        if name in existing:
            continue
        add_group(
            engine,
            name,
            tier=tier.value,
            theme=theme.value,
            qr_url=f"https://weixin.qq.com/g/sample-{position}",
            qr_expires=valid_for,
            account=owner,
            actor="sample",
            now=now,
        )
        created += 1
    return {"groups_created": created, "groups": len(GROUPS)}
