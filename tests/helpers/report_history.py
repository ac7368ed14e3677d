"""A small known history for the funnel report tests: every row inserted directly.

Local times are Asia/Shanghai (UTC+8). The report window is the local week
2026-03-02 .. 2026-03-09 (excluded); the report is read at NOW. The expected figures in
tests/test_reports.py are computed by hand from the rows below.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from crm.core.db import transaction
from crm.models import (
    CapUsage,
    Community,
    Consent,
    Contact,
    Event,
    Membership,
    OperatorAccount,
    OutboxMessage,
    PlatformLimit,
    QueueAction,
    QueueItem,
    SourceInstance,
    TierChange,
    Touch,
    User,
)

SH = ZoneInfo("Asia/Shanghai")
START = date(2026, 3, 2)
END = date(2026, 3, 9)
NOW = datetime(2026, 4, 5, 0, 0, tzinfo=UTC)


def L(month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A Shanghai wall-clock time in 2026, as aware UTC."""
    return datetime(2026, month, day, hour, minute, second, tzinfo=SH).astimezone(UTC)


def build_history(engine: Engine) -> dict[str, int]:
    """Insert the history; returns the ids the assertions need."""
    with transaction(engine) as s:
        srcs = {
            "S1": SourceInstance(kind="peer_group", key="g1", name="同行群A", group_name="同行群A"),
            "S2": SourceInstance(
                kind="self_media", key="xhs:1", name="小红书帖子1", platform="xhs", post="xhs:1"
            ),
            "S3": SourceInstance(
                kind="qr_signup",
                key="qr:1",
                name="地推-张三",
                promoter="张三",
                location="人民广场",
                campaign="spring",
            ),
            "S4": SourceInstance(
                kind="qr_signup",
                key="qr:2",
                name="地推-李四",
                promoter="李四",
                location="人民广场",
                campaign="spring",
            ),
        }
        s.add_all(srcs.values())
        c = {f"c{i}": Contact(display_name=f"联系人{i}") for i in range(1, 10)}
        s.add_all(c.values())
        g1 = Community(name="普通群1", tier="open")
        g2 = Community(name="活跃群1", tier="active")
        s.add_all([g1, g2])
        s.flush()

        def touch(contact: str, src: str, at: datetime) -> Touch:
            return Touch(contact_id=c[contact].id, source_instance_id=srcs[src].id, touched_at=at)

        s.add_all(
            [
                touch("c1", "S1", L(3, 2, 10)),
                touch("c1", "S2", L(3, 3, 9)),
                touch("c2", "S1", L(3, 3, 7)),  # 2026-03-02 23:00 UTC: local day 03-03
                touch("c3", "S3", L(3, 4, 12)),
                touch("c4", "S3", L(3, 4, 13)),
                touch("c4", "S3", L(3, 5, 10)),
                touch("c5", "S4", L(3, 6, 18)),
                touch("c6", "S2", L(2, 10, 10)),
                touch("c6", "S2", L(3, 5, 11)),
                touch("c7", "S1", L(1, 20, 10)),
                touch("c8", "S4", L(3, 9, 0)),  # exactly the end: outside
                touch("c9", "S4", L(3, 1, 23, 59, 59)),  # just before the start: outside
            ]
        )

        def ev(contact: str, kind: str, at: datetime, group: Community | None = None) -> Event:
            return Event(
                contact_id=c[contact].id,
                kind=kind,
                occurred_at=at,
                community_id=group.id if group else None,
            )

        s.add_all(
            [
                ev("c1", "message", L(3, 2, 12), g1),
                ev("c1", "message", L(3, 3, 12), g1),
                ev("c1", "message", L(3, 4, 12), g1),
                ev("c1", "share", L(3, 4, 13), g1),
                Event(
                    contact_id=c["c1"].id,
                    kind="referral",
                    occurred_at=L(3, 5, 10),
                    related_contact_id=c["c3"].id,
                ),
                ev("c3", "message", L(3, 5, 9), g1),
                ev("c3", "message", L(3, 6, 9), g1),
                ev("c6", "message", L(3, 5, 12), g2),
                ev("c6", "share", L(3, 7, 23, 30), g2),
                ev("c2", "activity_attended", L(3, 4, 19)),
                ev("c4", "message", L(3, 9, 0), g1),
                ev("c4", "message", L(3, 1, 23), g1),
                # Outside the window, for retention:
                ev("c7", "message", L(1, 30, 10), g1),
                ev("c6", "message", L(2, 19, 12), g1),
                ev("c1", "message", L(3, 12, 10), g1),
                ev("c3", "message", L(3, 18, 23, 59), g2),
                ev("c3", "message", L(4, 3, 23), g2),
            ]
        )

        def tc(contact: str, frm: str | None, to: str | None, at: datetime) -> TierChange:
            return TierChange(
                contact_id=c[contact].id, from_tier=frm, to_tier=to, reason="test", changed_at=at
            )

        s.add_all(
            [
                tc("c1", None, "open", L(3, 2, 10, 5)),
                tc("c1", "open", "active", L(3, 4, 10, 5)),
                tc("c1", "active", "prospect", L(3, 6, 22, 5)),
                tc("c2", None, "open", L(3, 3, 7, 5)),
                tc("c2", "open", "active", L(4, 25, 10)),  # after NOW: not counted
                tc("c3", None, "open", L(3, 4, 12, 5)),
                tc("c3", "open", "active", L(3, 5, 12, 5)),
                tc("c3", "active", "paid", L(3, 7, 12, 5)),
                tc("c4", None, "open", L(3, 4, 13, 5)),
                tc("c4", "open", None, L(3, 6, 9)),
                tc("c6", None, "open", L(2, 10, 10, 5)),
                tc("c6", "open", "active", L(2, 20, 10, 5)),
                tc("c6", "active", "prospect", L(3, 5, 12)),
                tc("c7", None, "open", L(1, 20, 10, 5)),
                tc("c7", "open", "active", L(1, 25, 10, 5)),
                tc("c7", "active", "prospect", L(2, 1, 10)),
                tc("c7", "prospect", "paid", L(3, 6, 10)),
            ]
        )

        def mem(
            contact: str, group: Community, joined: datetime, left: datetime | None = None
        ) -> Membership:
            return Membership(
                community_id=group.id, contact_id=c[contact].id, joined_at=joined, left_at=left
            )

        s.add_all(
            [
                mem("c7", g1, L(1, 20, 10, 10), L(2, 1, 10)),
                mem("c7", g2, L(2, 1, 10)),
                mem("c6", g1, L(2, 10, 10, 10), L(2, 22, 9)),
                mem("c6", g2, L(3, 5, 11, 30)),
                mem("c1", g1, L(3, 2, 10, 10)),
                mem("c2", g1, L(3, 3, 7, 10), L(3, 10, 8)),
                mem("c3", g1, L(3, 4, 12, 10), L(3, 5, 12, 10)),
                mem("c3", g2, L(3, 5, 12, 10)),
                mem("c4", g1, L(3, 4, 13, 10), L(3, 6, 9)),
                mem("c8", g1, L(3, 8, 23, 30)),
            ]
        )

        u1 = User(username="wang", role="sales", password_hash="x")
        u2 = User(username="li", role="sales", password_hash="x")
        u3 = User(username="boss", role="manager", password_hash="x")
        s.add_all([u1, u2, u3])
        s.flush()

        def item(contact: str, status: str, user: User | None, sla: datetime, **kw: object):
            open_key = c[contact].id if status in ("pool", "claimed", "contacted") else None
            return QueueItem(
                contact_id=c[contact].id,
                status=status,
                open_key=open_key,
                assignee_id=user.id if user else None,
                sla_due_at=sla,
                **kw,
            )

        q1 = item("c1", "claimed", u1, L(3, 7, 22, 5))
        q2 = item("c3", "won", u1, L(3, 6, 12), closed_at=L(3, 7, 12, 5))
        q3 = item("c6", "lost", u2, L(3, 5, 20), closed_at=L(3, 6, 10))
        q4 = item("c7", "won", u2, L(2, 2, 10), closed_at=L(3, 6, 10))
        q5 = item("c2", "pool", None, L(3, 4, 9))
        q6 = item("c4", "contacted", u2, L(3, 10, 10))
        q7 = item("c5", "lost", u1, L(3, 1, 10), closed_at=L(3, 9, 10))
        s.add_all([q1, q2, q3, q4, q5, q6, q7])
        s.flush()

        def act(q: QueueItem, user: User, action: str, at: datetime) -> QueueAction:
            return QueueAction(item_id=q.id, user_id=user.id, action=action, at=at)

        s.add_all(
            [
                act(q1, u1, "claim", L(3, 7, 9)),
                act(q2, u1, "claim", L(3, 5, 13)),
                act(q2, u1, "call", L(3, 5, 14)),
                act(q3, u2, "claim", L(3, 5, 13)),
                act(q3, u2, "assigned", L(3, 5, 13, 30)),  # handling, not work: still a breach
                act(q6, u2, "claim", L(3, 8, 10)),
                act(q6, u2, "contact", L(3, 8, 11)),
                act(q7, u1, "claim", L(3, 1, 12)),
            ]
        )

        def out(
            campaign: str,
            channel: str,
            contact: str,
            state: str,
            due: datetime,
            reason: str | None = None,
        ):
            return OutboxMessage(
                reason=reason,
                campaign=campaign,
                step="s1",
                contact_id=c[contact].id,
                channel=channel,
                template="t",
                state=state,
                due_at=due,
                idempotency_key=f"{campaign}:s1:{contact}",
            )

        s.add_all(
            [
                out("welcome", "wecom", "c1", "sent", L(3, 2, 12)),
                out("welcome", "wecom", "c2", "sent", L(3, 3, 12)),
                out("welcome", "wecom", "c3", "deferred", L(3, 4, 12)),
                out("welcome", "wecom", "c4", "skipped", L(3, 4, 14), "opted_out"),
                out("welcome", "wecom", "c5", "skipped", L(3, 6, 19), "not in tier"),
                out("welcome", "email", "c6", "failed", L(3, 5, 12)),
                out("event-reminder", "wecom", "c1", "planned", L(3, 8, 20)),
                out(
                    "event-reminder", "wecom", "c3", "skipped", L(3, 8, 20), "no_marketing_consent"
                ),
                out("event-reminder", "wecom", "c7", "awaiting_confirmation", L(3, 8, 20)),
                out("welcome", "wecom", "c8", "planned", L(3, 9, 0)),
            ]
        )
        s.add_all(
            [
                Consent(contact_id=c["c4"].id, kind="opt_out", channel=None, source="reply 退订"),
                Consent(contact_id=c["c3"].id, kind="opt_out", channel="email", source="link"),
            ]
        )

        a1 = OperatorAccount(platform="wechat", handle="op-1")
        a2 = OperatorAccount(platform="wecom", handle="op-2")
        a3 = OperatorAccount(platform="wechat", handle="op-3", active=False)
        s.add_all([a1, a2, a3])
        s.flush()

        def lim(platform: str, action: str, n: int, since: date, account=None) -> PlatformLimit:
            return PlatformLimit(
                name=f"{platform} {action}",
                platform=platform,
                action=action,
                limit=n,
                account_id=account.id if account else None,
                source="test",
                effective_from=since,
            )

        s.add_all(
            [
                lim("wechat", "group_join", 10, date(2020, 1, 1)),
                lim("wechat", "friend_add", 20, date(2020, 1, 1)),
                lim("wechat", "friend_add", 15, date(2026, 1, 1), a1),
                lim("wecom", "message", 200, date(2020, 1, 1)),
                lim("wecom", "message", 300, date(2026, 5, 1)),
                CapUsage(
                    subject=f"account:{a1.id}",
                    action="group_join",
                    day=date(2026, 4, 5),
                    used=7,
                    cap=10,
                ),
                CapUsage(
                    subject=f"account:{a2.id}",
                    action="message",
                    day=date(2026, 4, 5),
                    used=50,
                    cap=200,
                ),
                CapUsage(
                    subject=f"account:{a1.id}",
                    action="friend_add",
                    day=date(2026, 4, 4),
                    used=15,
                    cap=15,
                ),
            ]
        )
        s.flush()
        ids = {k: v.id for k, v in c.items()}
        ids.update({k: v.id for k, v in srcs.items()})
        ids.update(g1=g1.id, g2=g2.id, u1=u1.id, u2=u2.id, a1=a1.id, a2=a2.id)
        return ids
