"""A database that looks like a working week: every tier, source kind, queue status, alert
kind, quarantine reason, peer task and campaign shows up somewhere on the workspace pages."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update

from crm.core.audit import audit, raise_alert
from crm.core.db import transaction
from crm.core.queue_notes import NoteKey, assigned_by, system_note
from crm.core.settings import Settings
from crm.core.vocabulary import JoinMethod, OutboxState, Platform, QueueStatus, SourceKind, Tier
from crm.intake.pipeline import ingest_path
from crm.intake.qr import create_qr
from crm.models import Contact, OutboxMessage, QueueAction, QueueItem, SourceInstance, Touch, utcnow
from crm.sales.history import Action, record
from crm.sales.vocabulary import ActionKind
from tests.helpers import queue_seed as seed
from tests.helpers.report_history import build_history

MEMBERS = """群昵称,微信号,手机,入群时间
小雨,wx_xiaoyu01,13800000001,2026-03-01 09:00
阿杰,wx_ajie02,13800000002,2026-03-01 09:05
"""
# Rows that are quarantined, one per reason the intake gives.
BAD_EVENTS = [
    {"event_id": "Q1", "type": "purchase", "phone": "13800138000", "time": "上周三"},
    {"event_id": "Q2", "event": "dance", "phone": "13800138001"},
    {"event_id": "Q3", "type": "message", "nickname": "没有手机号"},
    {"event_id": "Q4", "type": "message", "phone": "12", "time": "2026-03-02 10:00"},
]
# A note a salesperson typed, with the system's English in it: it reads as typed everywhere.
TYPED_NOTE = "周五再打 (lease ran out?)"
ALERT_KINDS = ("capacity", "wecom_callback", "stalled_promotion", "caps_exhausted")


def build(engine: Engine, settings: Settings, tmp: Path) -> dict[str, Any]:
    """Fill the database; returns the staff ids, contact ids and a QR sign-up URL."""
    from crm.intake.peer_link import ingest_peer_list
    from crm.outreach.accounts import add_account
    from crm.outreach.peer_plan import plan_joins
    from crm.outreach.peer_requests import plan_friend_requests
    from crm.outreach.peers import add_peer, mark_joined, mark_requested

    staff = seed.users(engine)
    build_history(engine)
    now = utcnow()
    items = seed.prospects(engine, len(QueueStatus), names=["王小明", "李四"], now=now)
    _every_status_tier_and_source(engine, items, now)
    bad = tmp / "bad-events.jsonl"
    bad.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in BAD_EVENTS), "utf-8")
    ingest_path(engine, "events", bad)

    add_account(engine, "yunying_a01", Platform.WECHAT, limits={"group_join": 5, "friend_add": 2})
    add_peer(engine, "宝妈交流群3群", join_ref="https://weixin.qq.com/g/peer3")
    add_peer(engine, "考研互助群", join_method=JoinMethod.LINK, join_ref="https://example.cn/j")
    add_peer(engine, "读书会", join_method=JoinMethod.INTRODUCTION, join_ref="群主 老王")
    add_peer(engine, "亲子阅读群")
    add_peer(engine, "留学家长群", join_method=JoinMethod.INTRODUCTION)
    mark_requested(engine, "留学家长群", account="yunying_a01", note="托老王介绍")
    mark_joined(engine, "亲子阅读群", settings=settings, account="yunying_a01")
    members = tmp / "members.csv"
    members.write_text(MEMBERS, encoding="utf-8")
    ingest_peer_list(engine, members, "亲子阅读群")
    plan_joins(engine, settings=settings)
    plan_friend_requests(engine, settings=settings, purpose="亲子阅读营")

    _outbox(engine, items[0]["contact_id"], now)
    _audit_trail(engine, staff, items, now)
    with transaction(engine) as s:
        for kind in ALERT_KINDS:
            raise_alert(s, kind, f"subject-{kind}", f"{kind} message", at=now)
    code = create_qr(
        engine,
        promoter="zhang",
        location="展会 A 馆",
        campaign="spring-expo",
        expires=timedelta(days=3),
        out_dir=tmp / "qr",
        base_url=settings.public_base_url,
        secret_key=settings.secret_key.get_secret_value(),
    )
    return {"staff": staff, "items": items, "qr_url": code.url}


def _audit_trail(engine: Engine, staff: dict[str, int], items: list[dict], now: Any) -> None:
    """An audit entry for each shape of details the services write (the same fields and
    values), so the audit page shows every kind of detail in words."""
    contact, other = items[0]["contact_id"], items[1]["contact_id"]
    until = (now + timedelta(days=1)).isoformat()
    entries = [
        ("alice", "queue.claim", "queue_item", {"contact_id": contact, "how": "next"}),
        ("alice", "queue.snoozed", "queue_item", {"contact_id": contact, "until": until}),
        ("mia", "queue.assign", "queue_item", {"to_user_id": staff["bob"], "from_user_id": None}),
        ("mia", "queue.assigned", "queue_item", {"to_user_id": staff["bob"], "strategy": "load"}),
        (
            "alice",
            "tier.mark_paid",
            "contact",
            {"from": "prospect", "reason": "sales won", "reason_key": "tier.why.won"},
        ),
        (
            "mia",
            "user.caps",
            "user",
            {"before": {"claims": 20, "holding": 30}, "after": {"claims": 25, "holding": 30}},
        ),
        ("root", "user.role", "user", {"from": "sales", "to": "manager"}),
        ("root", "user.active", "user", {"active": False}),
        (
            "system",
            "contact.opt_out",
            "contact",
            {"channel": "wechat", "source": "reply 退订", "skipped": 2},
        ),
        (
            "mia",
            "contact.opt_out",
            "contact",
            {"channel": None, "source": "unsubscribe link", "skipped": 0},
        ),
        ("root", "contact.erase", "contact", {"counts": {"events": 3, "notes": 1, "contacts": 1}}),
        ("alice", "contact.reveal", "contact", {"kinds": ["phone", "wechat_id"]}),
        ("cli", "campaign.trigger", "campaign", {"contacts": None, "via": "in-process"}),
        (
            "mia",
            "quarantine.dismiss",
            "quarantine",
            {"ids": list(range(1, 13)), "count": 12, "note": "重复导入"},
        ),
        ("cli", "contact.merge", "contact", {"merged": other, "into": contact}),
        ("alice", "contacts.tag", "contact", {"contacts": 2, "tags": ["试听"], "added": 2}),
    ]
    with transaction(engine) as s:
        for actor, action, kind, details in entries:
            audit(s, actor, action, object_type=kind, object_id=contact, details=details, at=now)
        # The follow-up history on the prospect page, one of each thing done to the item.
        for kind in ("claim", "attempt", "snoozed", "release"):
            s.add(
                QueueAction(
                    item_id=items[0]["item_id"], user_id=staff["alice"], action=kind, at=now
                )
            )
        # And every note the system writes, beside one a salesperson typed.
        item = items[0]["item_id"]
        record(
            s,
            [
                Action(item, ActionKind.EXPIRED, note=system_note(NoteKey.LEASE_RAN_OUT)),
                Action(
                    item,
                    ActionKind.ASSIGNED,
                    staff["bob"],
                    note=system_note(NoteKey.BY_MANAGER, user="mia"),
                ),
                Action(item, ActionKind.ASSIGNED, staff["bob"], note=assigned_by("round_robin")),
                Action(item, ActionKind.ASSIGNED, staff["bob"], note=assigned_by("owner")),
                Action(item, ActionKind.ASSIGNED, staff["bob"], note=assigned_by("load")),
                Action(item, ActionKind.ATTEMPT, staff["bob"], note=TYPED_NOTE),
            ],
            actor="system",
            now=now,
        )
        # The lost item was closed by a merge: the system's reason.
        merged = system_note(NoteKey.CLOSED_MERGED)
        s.execute(
            update(QueueItem)
            .where(QueueItem.id == items[-1]["item_id"])
            .values(outcome_reason=merged.text, outcome_key=merged.key.value)
        )


def _every_status_tier_and_source(engine: Engine, items: list[dict], now: Any) -> None:
    """Give the seeded prospects one queue status each, and every tier and source kind a
    contact."""
    with transaction(engine) as s:
        for item, status in zip(items, QueueStatus, strict=True):
            s.execute(
                update(QueueItem).where(QueueItem.id == item["item_id"]).values(status=status)
            )
        for item, tier in zip(items, Tier, strict=False):
            s.execute(update(Contact).where(Contact.id == item["contact_id"]).values(tier=tier))
        known = set(s.scalars(select(SourceInstance.kind)))
        missing = [kind for kind in SourceKind if kind not in known]
        for n, (kind, item) in enumerate(zip(missing, items, strict=False)):
            src = SourceInstance(kind=kind, key=f"demo:{n}", name=f"渠道{n}", created_at=now)
            s.add(src)
            s.flush()
            s.add(Touch(contact_id=item["contact_id"], source_instance_id=src.id, touched_at=now))


CAMPAIGNS = (
    "welcome-new",
    "group-rules",
    "event-notice",
    "prospect-nudge",
    "paid-onboarding",
    "reengagement",
)


def _outbox(engine: Engine, contact_id: int, now: Any) -> None:
    """One message to the contact in every outbox state, from the bundled campaigns in turn,
    each at a step of its campaign (a repeating one at one of its days)."""
    from crm.outreach.campaign_file import load_campaigns

    campaigns = load_campaigns()
    # Every campaign's first step, then the second steps, and so on.
    steps = sorted(
        ((i, n, name, step) for n, name in enumerate(CAMPAIGNS)
         for i, step in enumerate(campaigns[name].steps)),
        key=lambda s: s[:2],
    )  # fmt: skip
    assert len(steps) >= len(OutboxState)
    with transaction(engine) as s:
        for n, state in enumerate(OutboxState):
            _, _, name, step = steps[n]
            key = f"{step.name}@2026-03-03" if step.weekdays else step.name
            s.add(
                OutboxMessage(
                    campaign=name,
                    step=key,
                    contact_id=contact_id,
                    channel=(Platform.WECOM, Platform.WECHAT, Platform.EMAIL)[n % 3],
                    template="welcome",
                    state=state,
                    due_at=now - timedelta(hours=n),
                    idempotency_key=f"world-{n}",
                    rendered="欢迎加入！",
                )
            )
