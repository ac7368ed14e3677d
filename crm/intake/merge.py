"""Merging contacts: everything a duplicate contact owns moves to the one it is folded into.

Runs inside the caller's transaction, which holds the contact-graph lock (see
:mod:`crm.core.locks`): resolution merges the contacts a batch proves to be one person.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from crm.core.audit import audit
from crm.core.queue_notes import NoteKey, system_note
from crm.core.vocabulary import ContactStatus, OutboxState, QueueStatus
from crm.models import UTCDateTime

# Tables whose contact references follow a merge, as (table, column).
_MOVE_ALWAYS = (
    ("identities", "contact_id"),
    ("touches", "contact_id"),
    ("events", "contact_id"),
    ("events", "related_contact_id"),
    ("consents", "contact_id"),
    ("tier_changes", "contact_id"),
    ("notes", "contact_id"),
    ("raw_records", "contact_id"),
    ("contacts", "referred_by_id"),
    ("source_instances", "referrer_contact_id"),
    ("qr_codes", "referrer_contact_id"),
)

# Tags, memberships and outbox rows move unless the winner already has the same one.
_MOVE_UNLESS_SHARED = (
    "UPDATE contact_tags SET contact_id = :w WHERE contact_id = :l AND NOT EXISTS"
    " (SELECT 1 FROM contact_tags t WHERE t.contact_id = :w AND t.tag = contact_tags.tag)",
    "DELETE FROM contact_tags WHERE contact_id = :l",
    "UPDATE memberships SET contact_id = :w WHERE contact_id = :l AND NOT EXISTS"
    " (SELECT 1 FROM memberships m WHERE m.contact_id = :w"
    " AND m.community_id = memberships.community_id"
    " AND m.joined_at IS NOT DISTINCT FROM memberships.joined_at)",
    "UPDATE outbox SET contact_id = :w WHERE contact_id = :l AND NOT EXISTS"
    " (SELECT 1 FROM outbox o WHERE o.contact_id = :w"
    " AND o.campaign = outbox.campaign AND o.step = outbox.step)",
)

# What stays with the loser is closed, dated :now.
_MERGED = system_note(NoteKey.CLOSED_MERGED)
_CLOSE_LEFTOVERS = (
    f"UPDATE outbox SET state = '{OutboxState.SKIPPED.value}', reason = 'contact merged',"
    " updated_at = :now WHERE contact_id = :l"
    f" AND state IN ('{OutboxState.PLANNED.value}', '{OutboxState.DEFERRED.value}')",
    # At most one open queue item per contact: keep the winner's, close the loser's.
    f"UPDATE queue_items SET status = '{QueueStatus.LOST.value}', open_key = NULL,"
    f" outcome_reason = '{_MERGED.text}', outcome_key = '{_MERGED.key.value}',"
    " closed_at = :now, updated_at = :now"
    " WHERE contact_id = :l AND open_key IS NOT NULL AND EXISTS"
    " (SELECT 1 FROM queue_items q WHERE q.open_key = :w)",
)

_MOVE_QUEUE = (
    "UPDATE queue_items SET contact_id = :w,"
    " open_key = CASE WHEN open_key IS NULL THEN NULL ELSE :w END"
    " WHERE contact_id = :l"
)

# The winner keeps its own values and takes the loser's where it has none.
_FOLD_CONTACT = (
    "UPDATE contacts SET"
    " display_name = COALESCE(contacts.display_name, l.display_name),"
    " first_seen_at = CASE WHEN l.first_seen_at < contacts.first_seen_at"
    " THEN l.first_seen_at ELSE contacts.first_seen_at END,"
    " last_active_at = CASE WHEN contacts.last_active_at IS NULL"
    " OR l.last_active_at > contacts.last_active_at"
    " THEN l.last_active_at ELSE contacts.last_active_at END,"
    " referred_by_id = COALESCE(contacts.referred_by_id,"
    " CASE WHEN l.referred_by_id <> contacts.id THEN l.referred_by_id END),"
    " tier = COALESCE(contacts.tier, l.tier),"
    " warnings = contacts.warnings + l.warnings,"
    " updated_at = :now"
    " FROM contacts l WHERE contacts.id = :w AND l.id = :l"
)

_MARK_MERGED = (
    f"UPDATE contacts SET status = '{ContactStatus.MERGED.value}', merged_into_id = :w,"
    " updated_at = :now WHERE id = :l"
)


def merge_contacts(
    session: Session, pairs: Sequence[tuple[int, int]], *, now: datetime, actor: str
) -> None:
    """Fold each (loser, winner): history moves, the loser is marked merged, audited."""
    ts = bindparam("now", type_=UTCDateTime())
    for loser, winner in pairs:
        params: dict[str, Any] = {"l": loser, "w": winner, "now": now}
        for table, column in _MOVE_ALWAYS:
            session.execute(text(f"UPDATE {table} SET {column} = :w WHERE {column} = :l"), params)
        session.execute(
            text("UPDATE contacts SET referred_by_id = NULL WHERE id = :w AND referred_by_id = :w"),
            params,
        )
        for sql in _MOVE_UNLESS_SHARED:
            session.execute(text(sql), params)
        outbox, queue = _CLOSE_LEFTOVERS
        session.execute(text(outbox).bindparams(ts), params)
        session.execute(text(queue).bindparams(ts), params)
        session.execute(text(_MOVE_QUEUE), params)
        session.execute(text(_FOLD_CONTACT).bindparams(ts), params)
        session.execute(text(_MARK_MERGED).bindparams(ts), params)
        audit(
            session,
            actor,
            "contact.merge",
            object_type="contact",
            object_id=winner,
            details={"merged": loser, "into": winner},
            at=now,
        )
