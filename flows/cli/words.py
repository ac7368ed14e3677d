"""Stored sentences in the reader's words: tier-history reasons, alerts, quarantine reasons.

The database keeps these as short English sentences (the audit trail and --json keep them
as they are); a table shows them through the catalog.
"""

from __future__ import annotations

import re
from typing import Any

from flows.cli.common import t, word

_TIER_REASONS = [
    (re.compile(p), key)
    for p, key in (
        (r"^entered the funnel$", "cli.why.entered"),
        (r"^purchase$", "cli.why.purchase"),
        (r"^won$", "cli.why.won"),
        (r"^removed: (?P<n>\d+) ad\(s\) posted$", "cli.why.ads"),
        (r"^removed: (?P<n>\d+) rule violations \(limit (?P<limit>\d+)\)$", "cli.why.violations"),
        (r"^removed: silent (?P<days>\d+) days$", "cli.why.removed_silent"),
        (r"^silent (?P<days>\d+) days$", "cli.why.silent"),
        (r"^score (?P<score>-?\d+) >= (?P<at>-?\d+)$", "cli.why.score_up"),
        (r"^score (?P<score>-?\d+) < stay_above (?P<at>-?\d+)$", "cli.why.score_down"),
    )
]


def tier_reason(reason: str | None) -> str:
    """Why a contact changed tier, in words; a reason someone typed stays as they typed it."""
    if not reason:
        return ""
    for pattern, key in _TIER_REASONS:
        found = pattern.match(reason)
        if found:
            return t(key, **found.groupdict())
    return reason


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
