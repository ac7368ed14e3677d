"""Words the system writes into the prospect queue: a catalog key, its parameters, the English.

A queue action's note (``queue_actions.note``) and a closed item's reason
(``queue_items.outcome_reason``) are free text. What a salesperson types stays as typed and has
no key; what the system writes keeps its English sentence there (logs, exports, SQL readers)
and its catalog key and parameters beside it (``note_key`` / ``note_params``,
``outcome_key``), so pages and the CLI say it in the reader's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class NoteKey(StrEnum):
    """A system-written note or closing reason; the value is its key in the message catalog."""

    LEASE_RAN_OUT = "queue.note.lease_ran_out"
    BY_MANAGER = "queue.note.by_manager"
    BY_ROUND_ROBIN = "queue.note.by_round_robin"
    BY_OWNER = "queue.note.by_owner"
    BY_LOAD = "queue.note.by_load"
    CLOSED_MERGED = "queue.closed.merged"
    CLOSED_ERASED = "queue.closed.erased"


# The stored English sentences, as the queue has always read them.
SENTENCES: Mapping[NoteKey, str] = MappingProxyType(
    {
        NoteKey.LEASE_RAN_OUT: "lease ran out",
        NoteKey.BY_MANAGER: "by {user}",
        NoteKey.BY_ROUND_ROBIN: "by round_robin",
        NoteKey.BY_OWNER: "by owner",
        NoteKey.BY_LOAD: "by load",
        NoteKey.CLOSED_MERGED: "contact merged",
        NoteKey.CLOSED_ERASED: "erased on request",
    }
)


@dataclass(frozen=True)
class SystemNote:
    """A note the system writes: its key, parameters and English sentence."""

    key: NoteKey
    params: Mapping[str, int | str] = field(default_factory=dict, hash=False)

    @property
    def text(self) -> str:
        """The English sentence kept in the free-text column."""
        return SENTENCES[self.key].format(**self.params)

    @property
    def stored_params(self) -> dict[str, int | str] | None:
        """What ``note_params`` keeps: None when the sentence has no parameters."""
        return dict(self.params) or None


def system_note(key: NoteKey, **params: int | str) -> SystemNote:
    """A system note with its parameters."""
    return SystemNote(key, params)


def assigned_by(strategy: str) -> SystemNote:
    """The receiver's note when the pool is handed out by ``strategy`` (an AssignStrategy)."""
    return SystemNote(NoteKey(f"queue.note.by_{strategy}"))
