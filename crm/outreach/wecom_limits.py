"""WeCom's enterprise mass-message (群发) limits per customer, as data with their sources (pure).

A customer, or a customer group, receives at most as many enterprise mass messages a month as
the month has days; an administrator may set 7 a week or 1 a day instead (WeCom API
documentation, "创建企业群发", updated 2025-11; the earlier wording was 4 a month). When the
allowance is spent, WeCom reports the recipient with ``status = 3`` and the row waits for the
next window instead of failing. Each limit carries the same fields as the platform limit
registry (value, source, date, documented by the platform or operator practice) so the two
can be joined.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

CREATE_MASS_MESSAGE_DOC = (
    "WeCom API documentation, 客户联系 > 消息推送 > 创建企业群发 "
    "(externalcontact/add_msg_template), https://developer.work.weixin.qq.com/document/path/92135"
)
STATUS_ALREADY_RECEIVED = 3  # get_groupmsg_send_result: 因客户已经收到其他群发消息导致发送失败


class Per(StrEnum):
    """The calendar window a mass-message allowance counts in (the customer's local time)."""

    MONTH = "month"
    WEEK = "week"
    DAY = "day"


@dataclass(frozen=True, slots=True)
class MassLimit:
    """One allowance: ``value`` messages per ``per`` (None for a month: its number of days)."""

    name: str
    per: Per
    value: int | None
    source: str
    date: str  # when the source said so (YYYY-MM)
    documented: bool  # True: published by the platform; False: operator practice
    in_force: bool = True

    def allowance(self, at: datetime, zone: ZoneInfo) -> int:
        """How many mass messages the window holding ``at`` allows."""
        if self.value is not None:
            return self.value
        local = at.astimezone(zone)
        return calendar.monthrange(local.year, local.month)[1]


MASS_LIMITS: tuple[MassLimit, ...] = (
    MassLimit(
        "wecom.contact.mass_message.month",
        Per.MONTH,
        None,
        CREATE_MASS_MESSAGE_DOC,
        "2025-11",
        True,
    ),
    MassLimit(
        "wecom.contact.mass_message.week", Per.WEEK, 7, CREATE_MASS_MESSAGE_DOC, "2025-11", True
    ),
    MassLimit(
        "wecom.contact.mass_message.day", Per.DAY, 1, CREATE_MASS_MESSAGE_DOC, "2025-11", True
    ),
    # Kept for history: what the same page said before the 2025-11 update.
    MassLimit(
        "wecom.contact.mass_message.month.before_2025_11",
        Per.MONTH,
        4,
        CREATE_MASS_MESSAGE_DOC + " (earlier wording: 每个自然月内仅可针对一个客户发送4条消息)",
        "2020-01",
        True,
        in_force=False,
    ),
)


def mass_limit(per: Per | str) -> MassLimit:
    """The in-force default for an administrator's setting (month, week or day)."""
    wanted = Per(per)
    return next(m for m in MASS_LIMITS if m.per is wanted and m.in_force)


def next_window(now: datetime, zone: ZoneInfo, per: Per | str) -> datetime:
    """Where the next allowance window starts after ``now`` (local midnight), in UTC."""
    local = now.astimezone(zone).date()
    kind = Per(per)
    if kind is Per.DAY:
        start = local + timedelta(days=1)
    elif kind is Per.WEEK:  # WeCom's weeks begin on Monday
        start = local + timedelta(days=7 - local.weekday())
    else:
        start = (local.replace(day=1) + timedelta(days=32)).replace(day=1)
    return datetime.combine(start, time(), zone).astimezone(UTC)
