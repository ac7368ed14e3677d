"""Queue words in the reader's language: an action's note, a closed item's reason.

What the system wrote is stored with a catalog key and its parameters (crm.core.queue_notes);
what a salesperson typed has no key and reads as typed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flows.i18n import render


def queue_note_text(
    t: Callable[[str], str],
    key: str | None,
    params: Mapping[str, Any] | None,
    note: str | None,
) -> str:
    """The catalog's sentence for ``key`` with ``params``; without a key, ``note`` as typed."""
    if key:
        return render(t, key, params or {})
    return note or ""
