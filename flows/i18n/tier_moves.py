"""A tier move's reason in the reader's words, for every page, table and report that lists moves.

A system move is stored with a catalog key and its parameters (crm.routing.tier_reasons); a
reason an operator typed has no key and reads as typed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flows.i18n import render


def tier_reason_text(
    t: Callable[[str], str],
    key: str | None,
    params: Mapping[str, Any] | None,
    reason: str | None,
) -> str:
    """The catalog's sentence for ``key`` with ``params``; without a key, ``reason`` as typed."""
    if key:
        return render(t, key, params or {})
    return reason or ""
