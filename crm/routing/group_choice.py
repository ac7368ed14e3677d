"""The live code (群活码) as rules: which group of a tier takes the next contact, and when.

Groups of a tier are filled in ``position`` order, each only while it is below its QR-join
limit (≈200 members, never beyond its capacity) and its QR code stays valid for the margin
the rules ask; a full or expiring group hands over to the next.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from crm.core.errors import Problem
from crm.core.vocabulary import IdentityKind, Tier
from crm.routing.rules.model import Rules


@dataclass
class GroupRoom:
    """A group of the live code and how many more contacts it can take by QR."""

    id: int
    name: str
    owner_account_id: int | None
    platform: str
    qr_code_url: str | None
    room: int


# The reason an invitation is skipped, or a contact not invited, when nothing reaches them.
NO_ADDRESS = "no address"
# The identity kind a group's platform reaches a contact by (platforms not named need none).
PLATFORM_ADDRESS_KIND = {
    "wechat": IdentityKind.WECHAT_ID.value,
    "wecom": IdentityKind.WECOM_EXTERNAL_USERID.value,
}


def reaches(kinds: Collection[str], platform: str) -> bool:
    """Whether a contact with these identity kinds can be invited to a group on ``platform``:
    a handle there, or an email to fall back to."""
    wanted = PLATFORM_ADDRESS_KIND.get(platform)
    return wanted is None or wanted in kinds or IdentityKind.EMAIL.value in kinds


@dataclass(frozen=True)
class Assignment:
    """Who goes to which group, who found no room, and who no open group could reach."""

    placed: dict[int, int] = field(default_factory=dict)
    left: list[int] = field(default_factory=list)
    unreachable: list[int] = field(default_factory=list)


def room_left(qr_join_limit: int, capacity: int, members: int) -> int:
    """How many more members a group takes by QR: up to its join limit, within its capacity."""
    return max(0, min(qr_join_limit, capacity) - members)


def qr_needed_until(now: datetime, rules: Rules) -> datetime:
    """A QR code handed out now must stay valid past this (it is scanned later, on a phone)."""
    return now + timedelta(hours=rules.placement.qr_margin_hours)


# What a copied example still holds: an ellipsis or an <angle-bracketed> blank to fill in.
QR_PLACEHOLDERS = ("…", "...", "<", ">")


def qr_url_problem(url: str) -> Problem | None:
    """Why a group's QR link cannot be handed to contacts, or None when it is a usable URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        return Problem("error.routing.qr_url_not_http")
    for mark in QR_PLACEHOLDERS:
        if mark in url:
            return Problem("error.routing.qr_url_placeholder", mark=mark)
    return None


def takes_members(
    *,
    qr_code_url: str | None,
    qr_expires_at: datetime | None,
    members: int,
    qr_join_limit: int,
    capacity: int,
    archived: bool,
    now: datetime,
) -> bool:
    """Whether a group takes members by QR now: a valid code, room left, not archived."""
    qr_valid = qr_expires_at is not None and qr_expires_at > now
    return (
        bool(qr_code_url)
        and qr_valid
        and room_left(qr_join_limit, capacity, members) > 0
        and not archived
    )


def assign(
    contact_ids: Sequence[int],
    groups: list[GroupRoom],
    can_reach: Callable[[int, GroupRoom], bool] | None = None,
) -> Assignment:
    """Fill groups in order (the live code), each contact into the first with room that can
    reach them; one that no open group could reach waits for an address, not for room."""
    result = Assignment()
    index = 0
    for cid in contact_ids:
        while index < len(groups) and groups[index].room <= 0:
            index += 1
        # With no open group at all everyone waits for room (the operator is alerted).
        if can_reach is not None and groups and not any(can_reach(cid, g) for g in groups):
            result.unreachable.append(cid)
            continue
        target = next(
            (g for g in groups[index:] if g.room > 0 and (can_reach is None or can_reach(cid, g))),
            None,
        )
        if target is None:
            result.left.append(cid)
            continue
        result.placed[cid] = target.id
        target.room -= 1
    return result


def no_room_message(tier: Tier, waiting: int, theme: str | None) -> str:
    """The operator alert when contacts of a tier find no group with room."""
    return (
        f"{waiting} contact(s) wait for a {tier} group"
        + (f" (theme {theme})" if theme else "")
        + " with room and a valid QR code: add a group or rotate a QR code"
    )
