"""Named platform limits as data: the defaults with their sources, which limit is in force,
and the local day a daily cap counts in (pure).

A limit is named by (platform, scope, action, window): ``scope`` is whose allowance it is
(an operator account, or a contact's own account), ``window`` is ``day`` (a daily cap) or
``interval`` (pacing: the minimum number of seconds between two actions). An account's own
limit wins over its platform's default; of several, the latest effective one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Window(StrEnum):
    """What a limit's value counts."""

    DAY = "day"  # actions per local calendar day
    INTERVAL = "interval"  # pacing: the minimum number of seconds between actions


class Scope(StrEnum):
    """Whose allowance a limit is."""

    ACCOUNT = "account"  # an operator account
    CONTACT = "contact"  # a contact's own account (e.g. the groups it may join a day)


TENCENT_JOIN_RULE = (
    "Tencent: one WeChat account can join at most 10 groups a day by scanning a QR code "
    "(DOMAIN.md, 注意事项)"
)


@dataclass(frozen=True, slots=True)
class NamedLimit:
    """A platform limit with where its value comes from."""

    platform: str
    scope: Scope
    action: str
    window: Window
    limit: int
    source: str

    @property
    def name(self) -> str:
        """The limit's name, e.g. ``wechat.account.message.day``."""
        return f"{self.platform}.{self.scope}.{self.action}.{self.window}"


_A, _C, _D, _I = Scope.ACCOUNT, Scope.CONTACT, Window.DAY, Window.INTERVAL

# The defaults seeded on first use.
DEFAULT_LIMITS: tuple[NamedLimit, ...] = (
    NamedLimit("wechat", _C, "group_join", _D, 10, TENCENT_JOIN_RULE),
    NamedLimit("wechat", _A, "group_join", _D, 10, TENCENT_JOIN_RULE),
    NamedLimit("wecom", _C, "group_join", _D, 10, TENCENT_JOIN_RULE),
    NamedLimit("wecom", _A, "group_join", _D, 10, TENCENT_JOIN_RULE),
    NamedLimit("wechat", _A, "friend_add", _D, 20, "practice: fast friend adds get restricted"),
    NamedLimit("wechat", _A, "friend_add", _I, 60, "operator practice: pace friend requests"),
    NamedLimit("wecom", _A, "friend_add", _D, 100, "operator practice for WeCom staff accounts"),
    NamedLimit("wechat", _A, "message", _D, 200, "practice: few private messages a day"),
    NamedLimit("wecom", _A, "message", _D, 1000, "practice; WeCom also limits per customer"),
    NamedLimit("email", _A, "message", _D, 2000, "typical SMTP relay daily quota"),
    NamedLimit("webhook", _A, "message", _D, 100000, "receiver's capacity"),
)  # fmt: skip

# A stored limit: (platform, scope, action, window, account id or None, effective from, value).
LimitRow = tuple[str, str, str, str, int | None, date, int]


class LimitBook:
    """The named limits in force: account overrides win over platform defaults."""

    def __init__(self, rows: Iterable[LimitRow]) -> None:
        self._rows: dict[tuple[str, str, str, str, int | None], tuple[date, int]] = {}
        for platform, scope, action, window, account_id, since, value in rows:
            key = (platform, scope, action, window, account_id)
            if key not in self._rows or self._rows[key][0] <= since:
                self._rows[key] = (since, value)

    def get(
        self, platform: str, scope: str, action: str, window: str, account_id: int | None = None
    ) -> int | None:
        """The limit value, or None when no limit of that name exists (then nothing binds)."""
        for acct in (account_id, None) if account_id is not None else (None,):
            hit = self._rows.get((platform, scope, action, window, acct))
            if hit is not None:
                return hit[1]
        return None

    def daily(
        self, platform: str, scope: str, action: str, account_id: int | None = None
    ) -> int | None:
        """The daily cap for an account (or for contacts, scope ``contact``)."""
        return self.get(platform, scope, action, Window.DAY, account_id)

    def interval(self, platform: str, action: str, account_id: int | None = None) -> int:
        """The pacing interval in seconds for an account's action (0: no pacing)."""
        return self.get(platform, Scope.ACCOUNT, action, Window.INTERVAL, account_id) or 0


def local_day(now: datetime, zone: ZoneInfo) -> date:
    """The calendar day ``now`` falls on in a time zone: the day a daily cap counts in."""
    return now.astimezone(zone).date()


def next_day_start(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant the local day after ``day`` begins: when a full daily cap frees up."""
    return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=zone).astimezone(UTC)
