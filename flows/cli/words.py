"""Stored sentences in the reader's words: tier-history reasons, alerts, quarantine reasons.

The database keeps these as short English sentences (the audit trail and --json keep them
as they are); a table shows them through the catalog.
"""

from __future__ import annotations

from typing import Any

from flows.cli.common import t, word


def tier_reason(reason: str | None) -> str:
    """Why a contact changed tier, in words (the patterns the web's prospect page uses)."""
    from flows.web.breakdown import tier_reason_text

    return tier_reason_text(lambda key: t(key), reason)


def quarantine_reason(reason: str | None) -> str:
    """A quarantine or skip reason in words (the patterns the web's quarantine page uses)."""
    from flows.web.dashboard import reason_text

    return reason_text(lambda key: t(key), reason)


def alert_text(kind: str, subject: str, details: dict[str, Any], message: str) -> str:
    """An open alert in words, from its kind and details; an unknown kind keeps its message."""
    key = f"cli.alert.{kind}"
    if kind == "no_group_room":
        return t(key, waiting=details.get("waiting", "?"), tier=word("tier", subject))
    if kind == "quarantine_growth":
        return t(key, recent=details.get("recent", "?"), threshold=details.get("threshold", "?"))
    if kind == "flow_failed":
        return t(key, flow=subject, message=message.removeprefix(f"flow {subject} failed: "))
    if kind == "wecom_churn":
        return t(key, contact=details.get("contact_id", "?"), staff=details.get("staff", "?"))
    return message
