"""The prospect page's "why this score" in words: each signal named, with the events behind it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# The event details that say in words what happened, in the order they are shown.
_WORDS = ("message", "text", "activity", "answers", "product", "violation", "post", "community")


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
