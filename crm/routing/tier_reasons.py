"""Why a contact moved tier: a catalog key and its parameters, and the English sentence.

The tier history stores all three. Pages and the CLI say the key in the reader's language;
the English sentence stays in ``tier_changes.reason`` for logs, exports and SQL readers. A
move an operator makes with a typed reason has no key: the typed text is shown as typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

# The longest reason the history keeps (tier_changes.reason is String(200)).
MAX_REASON = 200


class TierReason(StrEnum):
    """A system move's reason; the value is its key in the message catalog."""

    ENTERED = "tier.why.entered"
    PURCHASE = "tier.why.purchase"
    WON = "tier.why.won"
    WON_NOTE = "tier.why.won_note"
    ADS = "tier.why.ads"
    VIOLATIONS = "tier.why.violations"
    REMOVED_SILENT = "tier.why.removed_silent"
    SILENT = "tier.why.silent"
    SCORE_UP = "tier.why.score_up"
    SCORE_DOWN = "tier.why.score_down"


# The stored English sentences, as the history has always read them.
SENTENCES: Mapping[TierReason, str] = MappingProxyType(
    {
        TierReason.ENTERED: "entered the funnel",
        TierReason.PURCHASE: "purchase",
        TierReason.WON: "sales won",
        TierReason.WON_NOTE: "sales won: {note}",
        TierReason.ADS: "removed: {n} ad(s) posted",
        TierReason.VIOLATIONS: "removed: {n} rule violations (limit {limit})",
        TierReason.REMOVED_SILENT: "removed: silent {days} days",
        TierReason.SILENT: "silent {days} days",
        TierReason.SCORE_UP: "score {score} >= {at}",
        TierReason.SCORE_DOWN: "score {score} < stay_above {at}",
    }
)


@dataclass(frozen=True)
class TierWhy:
    """A move's reason: ``key`` None for a reason someone typed (``text`` is then theirs)."""

    key: TierReason | None
    text: str
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def stored_params(self) -> dict[str, Any] | None:
        """What ``tier_changes.reason_params`` keeps: None for a typed reason."""
        return dict(self.params) if self.key is not None else None

    @property
    def stored_text(self) -> str:
        """The sentence for ``tier_changes.reason``, cut to the column's length."""
        return self.text[:MAX_REASON]


def why(key: TierReason, **params: int | str) -> TierWhy:
    """A system move's reason with its parameters and English sentence."""
    return TierWhy(key, SENTENCES[key].format(**params), params)


def typed(text: str) -> TierWhy:
    """A reason an operator typed: no key, kept as typed."""
    return TierWhy(None, text)


def won(note: str | None) -> TierWhy:
    """A sales "won" outcome, with the salesperson's note when there is one."""
    return why(TierReason.WON_NOTE, note=note) if note else why(TierReason.WON)
