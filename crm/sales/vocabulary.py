"""The prospect queue's words: held statuses, outcomes, action kinds, strategies, lease lengths."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from crm.core.vocabulary import QueueStatus

DEFAULT_LEASE = timedelta(hours=4)
ASSIGN_LEASE = timedelta(hours=24)

# An item is *held* by its assignee in these statuses while its lease has not run out.
HELD: tuple[QueueStatus, ...] = (
    QueueStatus.CLAIMED,
    QueueStatus.CONTACTED,
    QueueStatus.QUALIFIED,
    QueueStatus.SNOOZED,
)
CLOSED: tuple[QueueStatus, ...] = (QueueStatus.WON, QueueStatus.LOST)
# What a salesperson may record on a held item, in the order the pages offer them.
OUTCOMES: tuple[QueueStatus, ...] = (
    QueueStatus.CONTACTED,
    QueueStatus.QUALIFIED,
    QueueStatus.WON,
    QueueStatus.LOST,
    QueueStatus.SNOOZED,
)


class ActionKind(StrEnum):
    """What a ``queue_actions`` row records (its audit entry is ``queue.<kind>``)."""

    CLAIM = "claim"
    ASSIGNED = "assigned"  # the receiving person's row: counts against their daily claim limit
    ASSIGN = "assign"
    REASSIGN = "reassign"
    RELEASE = "release"
    EXPIRED = "expired"
    ATTEMPT = "attempt"
    CONTACTED = "contacted"
    QUALIFIED = "qualified"
    WON = "won"
    LOST = "lost"
    SNOOZED = "snoozed"


# Actions that use up a person's daily claim limit.
COUNTED_CLAIMS: tuple[ActionKind, ...] = (ActionKind.CLAIM, ActionKind.ASSIGNED)


class AssignStrategy(StrEnum):
    """How a manager hands the pool out."""

    ROUND_ROBIN = "round_robin"
    OWNER = "owner"
    LOAD = "load"


class QueueView(StrEnum):
    """The slices of the queue the pages and the CLI list."""

    MINE = "mine"
    POOL = "pool"
    TEAM = "team"
    CLOSED = "closed"
    ALL = "all"
