"""The claim of the next pool item on PostgreSQL: sweep, claim, action and audit rows in one
statement.

Run after the person is locked, in the same transaction. Data-modifying CTEs do what the
separate statements of the SQLite path do (sweep → claim → ``record``), in one round trip
instead of four:

- ``expired``: up to ``sweep`` run-out leases, locked (``SKIP LOCKED``: another claimer is
  sweeping or claiming them already);
- ``nxt``: the first pool item in claim order, locked the same way;
- ``pick``: the first of both in claim order, so an item whose lease just ran out is claimable
  by this very claim, as it is after the sweep on SQLite;
- ``swept`` returns the other run-out items to the pool (one statement must not update a row
  twice, so the picked one goes straight to ``claimed``); every run-out item gets its
  ``expired`` action (the sweep's note with its catalog key, as on SQLite) and audit entry, the
  claim its ``claim`` action and audit entry.
"""

from __future__ import annotations

from sqlalchemy import TextualSelect, bindparam, text

from crm.core.queue_notes import SENTENCES, NoteKey
from crm.core.vocabulary import QueueStatus
from crm.models import UTCDateTime
from crm.sales.vocabulary import HELD, ActionKind

_HELD = ", ".join(f"'{s.value}'" for s in HELD)
_ORDER = "sla_due_at ASC NULLS LAST, priority DESC, created_at, id"  # claims.pool_order
_COLS = "id, contact_id, sla_due_at, priority, created_at"
_EXPIRED, _CLAIM = ActionKind.EXPIRED.value, ActionKind.CLAIM.value
# The sweep's note (leases.sweep on SQLite): its English sentence and catalog key.
_RAN_OUT, _RAN_OUT_KEY = SENTENCES[NoteKey.LEASE_RAN_OUT], NoteKey.LEASE_RAN_OUT.value

CLAIM_NEXT_PG = f"""
WITH expired AS (
  SELECT {_COLS} FROM queue_items
  WHERE status IN ({_HELD}) AND lease_expires_at < :now
  LIMIT :sweep FOR UPDATE SKIP LOCKED),
nxt AS (
  SELECT {_COLS} FROM queue_items WHERE status = '{QueueStatus.POOL.value}'
  ORDER BY {_ORDER} LIMIT 1 FOR UPDATE SKIP LOCKED),
pick AS (
  SELECT id FROM (SELECT * FROM expired UNION ALL SELECT * FROM nxt) AS c
  ORDER BY {_ORDER} LIMIT 1),
swept AS (
  UPDATE queue_items SET status = '{QueueStatus.POOL.value}', assignee_id = NULL,
    lease_expires_at = NULL, snoozed_until = NULL, updated_at = :now
  WHERE id IN (SELECT id FROM expired) AND id NOT IN (SELECT id FROM pick)),
claimed AS (
  UPDATE queue_items SET status = '{QueueStatus.CLAIMED.value}', assignee_id = :uid,
    lease_expires_at = :until, snoozed_until = NULL, updated_at = :now
  WHERE id = (SELECT id FROM pick)
  RETURNING id, contact_id, lease_expires_at, sla_due_at),
acts AS (
  INSERT INTO queue_actions (item_id, user_id, action, note, note_key, note_params, at)
  SELECT id, NULL, '{_EXPIRED}', '{_RAN_OUT}', '{_RAN_OUT_KEY}', CAST(NULL AS JSONB), :now
  FROM (SELECT id FROM expired ORDER BY id) e
  UNION ALL SELECT id, :uid, '{_CLAIM}', NULL, NULL, NULL, :now FROM claimed),
audits AS (
  INSERT INTO audit_log (at, actor, action, object_type, object_id, details)
  SELECT :now, 'system', 'queue.{_EXPIRED}', 'queue_item', CAST(id AS TEXT),
    CAST('{{}}' AS JSONB) FROM expired
  UNION ALL SELECT :now, :actor, 'queue.{_CLAIM}', 'queue_item', CAST(id AS TEXT),
    jsonb_build_object('contact_id', contact_id, 'how', 'next') FROM claimed)
SELECT id, contact_id, lease_expires_at, sla_due_at FROM claimed
"""


# Built once: every claim runs it.
CLAIM_NEXT_PG_STMT: TextualSelect = (
    text(CLAIM_NEXT_PG)
    .bindparams(bindparam("now", type_=UTCDateTime()), bindparam("until", type_=UTCDateTime()))
    .columns(lease_expires_at=UTCDateTime(), sla_due_at=UTCDateTime())
)
