"""Stored reasons in the reader's words: tier-history reasons, alerts, quarantine reasons.

Tier moves and quarantined rows keep a catalog key and its parameters; alerts keep short
English sentences (the audit trail and --json keep them as they are). A table shows them
through the catalog.
"""

from __future__ import annotations

from typing import Any

from flows.cli.common import t


def tier_reason(move: dict[str, Any]) -> str:
    """Why a contact changed tier, in words (as the web's prospect page says it)."""
    from flows.i18n import keyed_text

    return keyed_text(
        lambda key: t(key), move.get("reason_key"), move.get("reason_params"), move["reason"]
    )


def quarantine_reason(key: str | None, params: dict[str, Any] | None, reason: str) -> str:
    """A quarantined row's reason in words (as the web's quarantine page says it)."""
    from flows.i18n.quarantine_reasons import quarantine_reason_text

    return quarantine_reason_text(lambda k: t(k), key, params, reason)


def reason_count(code: str) -> str:
    """What an import report counts under a reason's code, in words."""
    from flows.i18n.quarantine_reasons import reason_count_text

    return reason_count_text(lambda k: t(k), code)


def alert_text(kind: str, subject: str, details: dict[str, Any], message: str) -> str:
    """An open alert in words (the words of the alerts artifact)."""
    from flows.summaries import alert_words

    return alert_words(lambda key: t(key), kind, subject, details, message)
