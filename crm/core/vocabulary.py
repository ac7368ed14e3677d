"""The domain's vocabulary: the kinds, tiers, roles and states every layer speaks."""

from __future__ import annotations

from enum import StrEnum


class IdentityKind(StrEnum):
    PHONE = "phone"
    WECHAT_ID = "wechat_id"
    WECOM_EXTERNAL_USERID = "wecom_external_userid"
    UNIONID = "unionid"  # the same person across WeChat apps of one developer account
    EMAIL = "email"
    PLATFORM_HANDLE = "platform_handle"


class SourceKind(StrEnum):
    PEER_GROUP = "peer_group"  # 同行群
    SELF_MEDIA = "self_media"  # 自媒体
    QR_SIGNUP = "qr_signup"  # 地推扫码
    REFERRAL = "referral"  # 裂变
    API = "api"


class Tier(StrEnum):
    OPEN = "open"  # 普通粉丝群
    ACTIVE = "active"  # 活跃粉丝群
    PROSPECT = "prospect"  # 意向客户群
    PAID = "paid"  # 学员群 / 付费群

    @property
    def rank(self) -> int:
        return TIER_ORDER.index(self)


TIER_ORDER: tuple[Tier, ...] = (Tier.OPEN, Tier.ACTIVE, Tier.PROSPECT, Tier.PAID)


class Theme(StrEnum):
    DISCUSSION = "discussion"  # 交流群
    TRIAL = "trial"  # 体验群
    PAID = "paid"  # 付费群


class Role(StrEnum):
    OWNER = "owner"  # 群主
    ADMIN = "admin"  # 管理
    EXPERT = "expert"  # 专家 / KOL
    HOST = "host"  # 主持人
    WARMUP = "warmup"  # 暖场
    VALUABLE = "valuable"  # 有料成员
    MEMBER = "member"


class EventKind(StrEnum):
    MESSAGE = "message"
    SHARE = "share"
    REFERRAL = "referral"
    ACTIVITY_ATTENDED = "activity_attended"
    ANSWER = "answer"
    PURCHASE = "purchase"
    VIOLATION = "violation"
    OPT_OUT = "opt_out"
    # WeCom churn (流失): the customer deleted the staff member, or the staff member the customer.
    CHURN = "churn"


class ContactStatus(StrEnum):
    ACTIVE = "active"
    REMOVED = "removed"  # cleaned out of the funnel (ads, lurking)
    MERGED = "merged"  # folded into another contact; see merged_into_id
    ERASED = "erased"  # personal data erased on request (PIPL)


class RecordStatus(StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    QUARANTINED = "quarantined"


class OutboxState(StrEnum):
    PLANNED = "planned"
    CLAIMED = "claimed"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    DEFERRED = "deferred"
    AWAITING_CONFIRMATION = (
        "awaiting_confirmation"  # WeCom mass message a staff member must confirm
    )


class QueueStatus(StrEnum):
    POOL = "pool"
    CLAIMED = "claimed"
    CONTACTED = "contacted"
    QUALIFIED = "qualified"
    SNOOZED = "snoozed"
    WON = "won"
    LOST = "lost"


OPEN_QUEUE_STATUSES = (
    QueueStatus.POOL,
    QueueStatus.CLAIMED,
    QueueStatus.CONTACTED,
    QueueStatus.QUALIFIED,
    QueueStatus.SNOOZED,
)


class UserRole(StrEnum):
    SALES = "sales"
    MANAGER = "manager"
    ADMIN = "admin"


class CapAction(StrEnum):
    GROUP_JOIN = "group_join"  # the account itself joins a group (by scanning its code)
    GROUP_INVITE = "group_invite"  # the account invites a contact, who is the one joining
    FRIEND_ADD = "friend_add"
    MESSAGE = "message"


class Platform(StrEnum):
    WECHAT = "wechat"
    WECOM = "wecom"
    EMAIL = "email"
    WEBHOOK = "webhook"


class PeerStatus(StrEnum):
    """Where our operator account stands with a peer group (同行群)."""

    TO_JOIN = "to_join"
    REQUESTED = "requested"  # asked to be let in (an introduction, an approval)
    JOINED = "joined"
    LEFT = "left"
    REMOVED = "removed"  # the group's owner removed our account


class JoinMethod(StrEnum):
    QR = "qr"
    LINK = "link"
    INTRODUCTION = "introduction"


class PeerTaskKind(StrEnum):
    JOIN = "join"
    FRIEND_REQUEST = "friend_request"


class PeerTaskState(StrEnum):
    PLANNED = "planned"
    DONE = "done"  # joined / request sent
    MISSED = "missed"  # its day passed undone; the group or contact is planned again
    ACCEPTED = "accepted"  # a friend request the member accepted
    IGNORED = "ignored"  # a friend request the member did not accept
