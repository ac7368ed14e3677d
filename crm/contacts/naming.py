"""What to call a contact in lists and pages when no name is known."""

from __future__ import annotations

from collections.abc import Iterable

from crm.core.vocabulary import IdentityKind


def contact_label(name: str | None, identities: Iterable[tuple[str, str]]) -> str:
    """The contact's name, else its platform handle (``xiaohongshu:abc``), else empty.

    Phone numbers and WeChat ids are never used: they are shown on a need-to-know basis.
    """
    if name and name.strip():
        return name
    handles = sorted(v for k, v in identities if k == IdentityKind.PLATFORM_HANDLE)
    return handles[0] if handles else ""
