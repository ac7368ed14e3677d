"""Named platform limits: what a limit is, which one is in force, and the local day a daily cap
counts in (pure). The defaults are data, in limits.toml (read by crm.outreach.limit_file).

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
    TOTAL = "total"  # a standing count (friends an account holds, members a group holds)
    VALIDITY = "validity"  # days a code stays valid


class Scope(StrEnum):
    """Whose allowance a limit is."""

    ACCOUNT = "account"  # an operator account
    CONTACT = "contact"  # a contact's own account (e.g. the groups it may join a day)
    GROUP = "group"  # a group (its members, its QR code)


class LimitKind(StrEnum):
    """Whether a platform publishes a limit or operators learnt it."""

    DOCUMENTED = "documented"
    PRACTICE = "practice"
    OVERRIDE = "override"  # set for one account by an operator


@dataclass(frozen=True, slots=True)
class NamedLimit:
    """A platform limit with where its value comes from, since when, and of which kind."""

    platform: str
    scope: Scope
    action: str
    window: Window
    limit: int
    source: str
    since: date
    kind: LimitKind

    @property
    def name(self) -> str:
        """The limit's name, e.g. ``wechat.account.message.day``."""
        return f"{self.platform}.{self.scope}.{self.action}.{self.window}"


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


def paced_slots(
    now: datetime, last: datetime | None, interval: int, want: int, day_end: datetime
) -> list[datetime]:
    """Due times for up to ``want`` paced actions: the first no earlier than ``now`` and at
    least ``interval`` seconds after ``last`` (the account's latest planned or done one), each
    next ``interval`` later, all before ``day_end`` (what does not fit waits for its own day)."""
    step = timedelta(seconds=max(interval, 0))
    first = max(now, last + step) if last is not None else now
    out: list[datetime] = []
    while len(out) < want:
        at = first + step * len(out)
        if at >= day_end:
            break
        out.append(at)
        if not step:  # no pacing: every action is due now
            out += [first] * (want - len(out))
    return out
