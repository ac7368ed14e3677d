"""The prospect page's "why this score" in words: each signal named, with the events behind it."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# The event details that say in words what happened, in the order they are shown.
_WORDS = ("message", "activity", "answers", "product", "violation", "post", "community")


@dataclass(frozen=True)
class Evidence:
    """One event behind a signal: when, what kind, and its own words."""

    at: datetime | None
    kind: str
    words: str


@dataclass(frozen=True)
class SignalLine:
    """One line of the breakdown as a salesperson reads it."""

    label: str
    points: int
    evidence: list[Evidence]
    note: str


def word_for(t: Callable[[str], str], prefix: str, code: str | None) -> str:
    """A code's word from the catalog (``tier.open`` → 普通); an unknown code as it is."""
    if not code:
        return ""
    key = f"{prefix}.{code}"
    word = t(key)
    return code if word == key else word


def _words(details: Mapping[str, Any]) -> str:
    for name in _WORDS:
        value = details.get(name)
        if isinstance(value, Mapping):
            return "；".join(f"{k}：{v}" for k, v in value.items())
        if isinstance(value, list):
            return "；".join(map(str, value))
        if value not in (None, ""):
            return str(value)
    return ""


def _label(t: Callable[[str], str], signal: str) -> str:
    if signal.startswith("source:"):
        source, _, bonus = signal.removeprefix("source:").partition("+")
        label = t("signal.source").format(source=word_for(t, "source", source))
        return label + (t("signal.intent_bonus") if bonus else "")
    return word_for(t, "signal", signal)


def explain(
    breakdown: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    t: Callable[[str], str],
    *,
    half_life_days: float,
) -> list[SignalLine]:
    """The stored breakdown with words, the evidence events and the decay rule where it applies."""
    by_id = {e["id"]: e for e in events}
    lines = []
    for part in breakdown:
        signal = str(part.get("signal", ""))
        evidence = [
            Evidence(e.get("at"), word_for(t, "event", e.get("kind")), _words(e.get("payload", {})))
            for e in (by_id.get(i) for i in part.get("events", []))
            if e is not None
        ]
        note = (
            t("signal.half_life").format(days=f"{half_life_days:g}")
            if signal == "engagement"
            else ""
        )
        lines.append(SignalLine(_label(t, signal), int(part.get("points", 0)), evidence, note))
    return lines


# The sentences crm.routing stores as a tier move's reason, and their words in the catalog.
_TIER_REASONS = [
    (re.compile(p), key)
    for p, key in (
        (r"^entered the funnel$", "cli.why.entered"),
        (r"^purchase$", "cli.why.purchase"),
        (r"^won$", "cli.why.won"),
        (r"^sales won$", "cli.why.won"),  # a salesperson's "won" marks the contact paid
        (r"^sales won: (?P<note>.+)$", "cli.why.won_note"),
        (r"^removed: (?P<n>\d+) ad\(s\) posted$", "cli.why.ads"),
        (r"^removed: (?P<n>\d+) rule violations \(limit (?P<limit>\d+)\)$", "cli.why.violations"),
        (r"^removed: silent (?P<days>\d+) days$", "cli.why.removed_silent"),
        (r"^silent (?P<days>\d+) days$", "cli.why.silent"),
        (r"^score (?P<score>-?\d+) >= (?P<at>-?\d+)$", "cli.why.score_up"),
        (r"^score (?P<score>-?\d+) < stay_above (?P<at>-?\d+)$", "cli.why.score_down"),
        (r"^score above (?P<at>-?\d+)$", "cli.why.above"),  # older rows' sentences
        (r"^score below (?P<at>-?\d+)$", "cli.why.below"),
    )
]


def tier_reason_text(t: Callable[[str], str], reason: str | None) -> str:
    """Why a contact changed tier, in words; a reason someone typed stays as they typed it."""
    if not reason:
        return ""
    for pattern, key in _TIER_REASONS:
        found = pattern.match(reason)
        if found:
            return t(key).format(**found.groupdict())
    return reason
