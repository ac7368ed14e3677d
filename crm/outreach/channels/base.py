"""The channel interface, the message a channel receives, and log-safe formatting."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

SENT = "sent"
AWAITING_CONFIRMATION = "awaiting_confirmation"


@dataclass(frozen=True)
class OutgoingMessage:
    """One rendered message for a contact or a group post, with the key the provider dedupes on.

    A group post has no contact; its ``meta`` names the group (``group``) and, for WeCom, its
    chat id (``chat_id``).
    """

    outbox_id: int
    idempotency_key: str
    contact_id: int | None
    channel: str
    text: str
    address: str | None = None  # email address, WeCom external_userid, WeChat id …
    subject: str | None = None
    account: str | None = None  # the sending operator account's handle (WeCom: staff userid)
    action: str = "message"
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    """What the provider said: its id for the message and whether it still needs a confirmation."""

    provider_id: str
    state: str = SENT


@runtime_checkable
class Channel(Protocol):
    """A way to deliver messages. ``lookup`` answers "did you already accept this one?"."""

    name: str
    # True when lookup() can tell whether a message reached the provider; channels without it
    # mark an interrupted send as failed ("unknown outcome") instead of risking a duplicate.
    can_lookup: bool

    def send(self, message: OutgoingMessage) -> SendResult: ...

    def lookup(self, message: OutgoingMessage) -> SendResult | None: ...

    def close(self) -> None: ...


_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def mask_phone(text: str) -> str:
    """Mask mainland mobile numbers for logs: 13800138000 → 138****8000."""
    return _PHONE.sub(r"\1****\2", text)


class OutcomeUnknown(Exception):
    """The provider may or may not have accepted the message (e.g. the link broke mid-send)."""
