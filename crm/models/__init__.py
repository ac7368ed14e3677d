"""The CRM schema as typed SQLAlchemy models; Alembic migrations are generated from these."""

from crm.models.accounts import CapUsage, OperatorAccount, PlatformLimit
from crm.models.audit import Alert, AuditEntry
from crm.models.base import Base, UTCDateTime, utcnow
from crm.models.contacts import (
    Consent,
    Contact,
    ContactTag,
    Event,
    Identity,
    Note,
    TierChange,
    Touch,
)
from crm.models.groups import Community, Membership
from crm.models.outbox import OutboxAttempt, OutboxMessage
from crm.models.peers import PeerGroup, PeerTask
from crm.models.sales import QueueAction, QueueItem, User
from crm.models.sources import QrCode, QuarantinedRow, RawRecord, SourceInstance
from crm.models.wecom import WecomCallback, WecomChatVersion, WecomContactWay, WecomJoinWay

__all__ = [
    "Alert",
    "AuditEntry",
    "Base",
    "CapUsage",
    "Community",
    "Consent",
    "Contact",
    "ContactTag",
    "Event",
    "Identity",
    "Membership",
    "Note",
    "OperatorAccount",
    "OutboxAttempt",
    "OutboxMessage",
    "PeerGroup",
    "PeerTask",
    "PlatformLimit",
    "QrCode",
    "QuarantinedRow",
    "QueueAction",
    "QueueItem",
    "RawRecord",
    "SourceInstance",
    "TierChange",
    "Touch",
    "UTCDateTime",
    "User",
    "WecomCallback",
    "WecomChatVersion",
    "WecomContactWay",
    "WecomJoinWay",
    "utcnow",
]
