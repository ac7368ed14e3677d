"""Stored reasons in the reader's words: tier-history reasons, alerts, quarantine reasons.

A tier move keeps a catalog key and its parameters; the others are short English sentences
(the audit trail and --json keep them as they are). A table shows them through the catalog.
"""

from __future__ import annotations

from typing import Any

from flows.cli.common import t


def tier_reason(move: dict[str, Any]) -> str:
    """Why a contact changed tier, in words (as the web's prospect page says it)."""
    from flows.i18n.tier_moves import tier_reason_text

    return tier_reason_text(
        lambda key: t(key), move.get("reason_key"), move.get("reason_params"), move["reason"]
    )


def quarantine_reason(reason: str | None) -> str:
    """A quarantine or skip reason in words (the patterns the web's quarantine page uses)."""
    from flows.web.dashboard import reason_text

    return reason_text(lambda key: t(key), reason)


def alert_text(kind: str, subject: str, details: dict[str, Any], message: str) -> str:
    """An open alert in words (the words of the alerts artifact)."""
    from flows.summaries import alert_words

    return alert_words(lambda key: t(key), kind, subject, details, message)
