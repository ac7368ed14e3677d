"""Named PostgreSQL advisory locks: every key is spelled once, here, with what it excludes.

Each lock is held for the rest of the caller's transaction (``pg_advisory_xact_lock``) and
released by its commit or rollback. SQLite needs none of them: every writer there takes the
database's one write lock (``BEGIN IMMEDIATE``), which already excludes all of these.
"""

from __future__ import annotations

from enum import IntEnum

from sqlalchemy import text
from sqlalchemy.orm import Session


class Lock(IntEnum):
    """The advisory locks Qunflow takes; values are arbitrary but must never collide."""

    # Writers of the contact graph in bulk: identity resolution (new contacts, merges, the
    # last-seen of existing ones) and a routing pass (scores, tiers, placements, invitations).
    # They exclude each other on purpose: a route holds row locks on every contact it moves
    # until its one transaction commits, and resolution updates and merges existing contacts,
    # so side by side they deadlock on the rows both touch, and a route could move or invite a
    # contact that a merge is folding into another. Two resolutions exclude each other too, so
    # new identities can be appended without ON CONFLICT; two route passes, so nothing is
    # placed or invited twice. Ingest waits for a running route and the other way round.
    CONTACT_GRAPH = 0x71756E66  # "qunf"


def hold(session: Session, lock: Lock) -> None:
    """Take ``lock`` until the session's transaction ends (no-op on SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": int(lock)})
