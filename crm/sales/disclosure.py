"""Who sees a contact's phone and WeChat id in full, and what everyone else sees instead.

Need to know: a salesperson sees them for prospects they hold or could claim from the pool
right now; managers and admins see every contact's. Anyone else gets a masked value that
still tells two contacts apart on the page (138****8000, wx_***), never one to call.
"""

from __future__ import annotations

from crm.core.vocabulary import IdentityKind

PHONE_KEPT_TAIL = 4  # the last digits people quote to tell numbers apart
PHONE_HIDDEN = 4  # the middle block hidden, as on Chinese bills and receipts: 138****8000
HANDLE_KEPT = 3  # the start of an id or handle: wx_***


def may_see_contact_details(*, is_manager: bool, holds: bool, claimable: bool) -> bool:
    """Full phone and ids: managers and admins always; sales for items held or claimable."""
    return is_manager or holds or claimable


def mask_identity(kind: str, value: str) -> str:
    """The identity value as shown to someone without the need to know it."""
    if kind == IdentityKind.PHONE:
        return _mask_phone(value)
    if kind == IdentityKind.EMAIL and "@" in value:
        local, _, domain = value.rpartition("@")
        return f"{local[:1]}***@{domain}"
    return value[:HANDLE_KEPT] + "***" if len(value) > HANDLE_KEPT else "***"


def _mask_phone(value: str) -> str:
    keep_head = len(value) - PHONE_KEPT_TAIL - PHONE_HIDDEN
    if keep_head < 1:
        return "*" * max(len(value) - 2, 1) + value[-2:]
    return value[:keep_head] + "*" * PHONE_HIDDEN + value[-PHONE_KEPT_TAIL:]
