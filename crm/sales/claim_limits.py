"""Per-person claim limits: a daily number of claims and a number of prospects held at once.

These are a salesperson's limits, not the platforms' caps on operator accounts
(``crm.outreach.limits``). The database columns (``daily_claim_cap``, ``holding_cap``), the
CLI flags and the web form keep their historical names; the messages people read too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from crm.core.errors import Forbidden, InputError

MAX_LIMIT = 10_000


def local_day_start(now: datetime, zone: ZoneInfo) -> datetime:
    """Midnight of ``now``'s local day in the business time zone, as an aware time."""
    local = now.astimezone(zone)
    return datetime.combine(local.date(), time(0), tzinfo=zone).astimezone(now.tzinfo)


@dataclass(frozen=True)
class ClaimLimits:
    """A person's two claim limits and how much of each is used now."""

    daily_claim_limit: int
    claimed_today: int
    holding_limit: int
    holding: int

    @property
    def claims_left(self) -> int:
        """Claims (and assignments) still allowed today."""
        return max(0, self.daily_claim_limit - self.claimed_today)

    @property
    def holding_left(self) -> int:
        """Prospects the person may still take on before releasing or closing one."""
        return max(0, self.holding_limit - self.holding)

    @property
    def room(self) -> int:
        """How many more items this person may receive right now."""
        return min(self.claims_left, self.holding_left)


def check_may_claim(username: str, limits: ClaimLimits) -> None:
    """Forbidden when a claim would break the holding limit or today's claim limit."""
    if limits.holding >= limits.holding_limit:
        raise Forbidden(
            "error.sales.holding_full",
            username=username,
            holding=limits.holding,
            limit=limits.holding_limit,
        )
    if limits.claimed_today >= limits.daily_claim_limit:
        raise Forbidden("error.sales.claim_cap", username=username, limit=limits.daily_claim_limit)


def check_may_receive(username: str, holding: int, holding_limit: int) -> None:
    """Forbidden when a manager's assignment would break the receiver's holding limit."""
    if holding >= holding_limit:
        raise Forbidden(
            "error.sales.receiver_full", username=username, holding=holding, limit=holding_limit
        )


def check_limit_values(*, claims: int | None, holding: int | None) -> None:
    """InputError unless each given limit is between 0 and :data:`MAX_LIMIT`."""
    if claims is not None and not 0 <= claims <= MAX_LIMIT:
        raise InputError("error.sales.claims_cap_range", max=MAX_LIMIT, value=claims)
    if holding is not None and not 0 <= holding <= MAX_LIMIT:
        raise InputError("error.sales.holding_cap_range", max=MAX_LIMIT, value=holding)
