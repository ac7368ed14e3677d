"""Outbox persistence: claiming due rows in batches and marking outcomes, set-based.

A claim is one statement that locks due rows with ``FOR UPDATE SKIP LOCKED``, marks them
claimed and returns what rendering needs (contact, address, opt-out flag, group), so a batch
costs one round trip to claim (on SQLite the same inside ``BEGIN IMMEDIATE``). Rows whose
lease expired are claimed again. ``sending_at`` records that an attempt may have reached the
provider: the claim sets it for channels that can be asked afterwards, other channels set it
right before the provider call. Outcomes are written by one statement per batch.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Connection, TextualSelect, bindparam, func, insert, select, text
from sqlalchemy.orm import Session

from crm.core.db import dialect_of, is_postgres
from crm.core.vocabulary import OutboxState
from crm.models import OutboxAttempt, OutboxMessage, UTCDateTime
from crm.outreach.churn import churned_sql

# The reason an invitation waits: its group's QR code expires before the contact could scan it.
QR_EXPIRING = "qr code expiring"
LOOKUP_CHANNELS = ("webhook", "wecom", "wechat", "file", "null", "console")
# The identity kind each channel addresses a contact by.
ADDRESS_KIND_SQL = (
    "CASE outbox.channel WHEN 'email' THEN 'email' WHEN 'wecom' THEN 'wecom_external_userid' "
    "WHEN 'wechat' THEN 'wechat_id' END"
)
# The channels that reach a contact only through an address of theirs (the kinds above).
ADDRESSED_CHANNELS = frozenset({"email", "wecom", "wechat"})


@dataclass(slots=True)
class Claimed:
    """A claimed outbox row with what is needed to render and send it."""

    id: int
    token: str
    campaign: str
    step: str
    contact_id: int | None  # None: a post in the group ``community_id``
    channel: str
    template: str
    account_id: int | None
    community_id: int | None
    action: str
    context: dict[str, Any]  # read only: rows with the same document share one dict
    attempts: int
    idempotency_key: str
    uncertain: bool  # an earlier attempt may have reached the provider
    contact_name: str | None
    contact_tier: str | None
    address: str | None
    opted_out: bool
    group: dict[str, Any] | None = None
    churned: bool = False  # the sending WeCom staff member and the contact churned (流失)
    extra: dict[str, Any] = field(default_factory=dict)


_CLAIM_SET = """
  state = 'claimed', claimed_by = :token, claim_expires_at = :expires,
  attempts = attempts + 1, updated_at = :now,
  sending_at = CASE WHEN sending_at IS NOT NULL THEN sending_at
                    WHEN channel IN ({lookups}) THEN :now ELSE NULL END
""".format(lookups=", ".join(f"'{c}'" for c in LOOKUP_CHANNELS))

_CLAIM_RETURNS = """id, campaign, step, contact_id, channel, template, account_id,
  community_id, action, context, attempts, idempotency_key, sending_at"""

_ADDRESSED = ", ".join(f"'{c}'" for c in sorted(ADDRESSED_CHANNELS))
# An earlier attempt may have reached the provider: the claim found ``sending_at`` already set
# (it sets it to :now itself only where it was empty). Decided by the server: a flag is
# cheaper to return and read than a timestamp.
_UNCERTAIN_PG = "(upd.sending_at IS NOT NULL AND upd.sending_at <> :now) AS uncertain"

# PostgreSQL: each state is read in (state, due_at) index order, so a claim touches only the
# rows it takes (an OR over states, or ORDER BY across them, sorts every due row instead).
# Expired leases go first, then deferred rows, then planned ones; the CTE scans are pulled
# lazily, so rows beyond the batch are neither read nor locked (the LIMIT inside each one
# makes the planner pick the ordered index scan over sorting every due row). ``id =
# ANY(ARRAY(…))`` keeps the update an index lookup by id; contacts and groups are joined once
# per row, identities only for channels that address a contact. The context comes back as
# text, parsed once per distinct document, not per row.
_CLAIM_PG = f"""
WITH expired AS (
  SELECT id FROM outbox WHERE state = 'claimed' AND claim_expires_at < :now
  ORDER BY due_at LIMIT :n FOR UPDATE SKIP LOCKED),
deferred AS (
  SELECT id FROM outbox WHERE state = 'deferred' AND due_at <= :now
  ORDER BY due_at LIMIT :n FOR UPDATE SKIP LOCKED),
planned AS (
  SELECT id FROM outbox WHERE state = 'planned' AND due_at <= :now
  ORDER BY due_at LIMIT :n FOR UPDATE SKIP LOCKED),
pick AS (
  SELECT id FROM expired UNION ALL SELECT id FROM deferred UNION ALL SELECT id FROM planned
  LIMIT :n),
upd AS (
  UPDATE outbox SET {_CLAIM_SET}
  WHERE id = ANY(ARRAY(SELECT id FROM pick))
  RETURNING {_CLAIM_RETURNS})
SELECT upd.id, upd.campaign, upd.step, upd.contact_id, upd.channel, upd.template,
  upd.account_id, upd.community_id, upd.action, CAST(upd.context AS TEXT) AS context,
  upd.attempts, upd.idempotency_key, {_UNCERTAIN_PG},
  c.display_name AS contact_name, c.tier AS contact_tier,
  CASE WHEN upd.channel IN ({_ADDRESSED}) THEN (SELECT i.value FROM identities i
     WHERE i.contact_id = upd.contact_id
     AND i.kind = {ADDRESS_KIND_SQL.replace("outbox.", "upd.")} ORDER BY i.id LIMIT 1)
  END AS address,
  EXISTS (SELECT 1 FROM consents k WHERE k.contact_id = upd.contact_id AND k.kind = 'opt_out'
     AND (k.channel IS NULL OR k.channel = upd.channel)) AS opted_out,
  (upd.channel = 'wecom' AND {churned_sql("upd")}) AS churned,
  g.name AS group_name, g.qr_code_url AS group_qr, g.external_id AS group_chat_id,
  g.qr_expires_at AS group_qr_expires
FROM upd
LEFT JOIN contacts c ON c.id = upd.contact_id
LEFT JOIN communities g ON g.id = upd.community_id
"""

# SQLite (no data-modifying CTEs; the write lock is taken by BEGIN IMMEDIATE).
_CLAIM_SQLITE = f"""
UPDATE outbox SET {_CLAIM_SET}
WHERE id IN (
  SELECT id FROM outbox
  WHERE (state IN ('planned', 'deferred') AND due_at <= :now)
     OR (state = 'claimed' AND claim_expires_at < :now)
  ORDER BY due_at LIMIT :n)
RETURNING {_CLAIM_RETURNS},
  (SELECT c.display_name FROM contacts c WHERE c.id = outbox.contact_id) AS contact_name,
  (SELECT c.tier FROM contacts c WHERE c.id = outbox.contact_id) AS contact_tier,
  (SELECT i.value FROM identities i WHERE i.contact_id = outbox.contact_id
     AND i.kind = {ADDRESS_KIND_SQL} ORDER BY i.id LIMIT 1) AS address,
  EXISTS (SELECT 1 FROM consents k WHERE k.contact_id = outbox.contact_id AND k.kind = 'opt_out'
     AND (k.channel IS NULL OR k.channel = outbox.channel)) AS opted_out,
  (outbox.channel = 'wecom' AND {churned_sql("outbox")}) AS churned,
  (SELECT g.name FROM communities g WHERE g.id = outbox.community_id) AS group_name,
  (SELECT g.qr_code_url FROM communities g WHERE g.id = outbox.community_id) AS group_qr,
  (SELECT g.external_id FROM communities g WHERE g.id = outbox.community_id) AS group_chat_id,
  (SELECT g.qr_expires_at FROM communities g WHERE g.id = outbox.community_id)
    AS group_qr_expires
"""


def _claim_stmt(sql: str, *, typed: bool) -> TextualSelect:
    stmt = text(sql).bindparams(
        bindparam("now", type_=UTCDateTime()), bindparam("expires", type_=UTCDateTime())
    )
    # psycopg returns aware datetimes and parsed JSON already; SQLite needs the column types.
    if not typed:
        return stmt.columns()
    return stmt.columns(sending_at=UTCDateTime(), context=JSON(), group_qr_expires=UTCDateTime())


_CLAIM_STMTS = {
    True: _claim_stmt(_CLAIM_PG, typed=False),
    False: _claim_stmt(_CLAIM_SQLITE, typed=True),
}


def claim(
    session: Session | Connection, *, worker: str, limit: int, lease: timedelta, now: datetime
) -> list[Claimed]:
    """Claim up to ``limit`` due rows (and rows whose lease expired) for this worker.

    The caller owns the transaction (``transaction(engine, immediate=True)`` so SQLite takes
    its write lock up front) and reserves caps in it, so a committed claim has its caps.
    """
    token = f"{worker}:{uuid.uuid4().hex[:12]}"
    pg = is_postgres(session)
    stmt = _CLAIM_STMTS[pg]
    params = {"token": token, "expires": now + lease, "now": now, "n": limit}
    out = []
    contexts: dict[str, dict[str, Any]] = {}  # rows of one step share a context document
    for (
        id_,
        campaign,
        step,
        contact_id,
        channel,
        template,
        account_id,
        community_id,
        action,
        context,
        attempts,
        idempotency_key,
        sending,  # PostgreSQL: the uncertainty flag; SQLite: sending_at
        contact_name,
        contact_tier,
        address,
        opted_out,
        churned,
        group_name,
        group_qr,
        group_chat_id,
        group_qr_expires,
    ) in session.execute(stmt, params).tuples().all():
        if isinstance(context, dict):
            ctx = context
        else:
            raw = context or "{}"
            ctx = contexts.get(raw) or contexts.setdefault(raw, json.loads(raw))
        group = None
        if community_id is not None:
            group = {
                "name": group_name,
                "qr_code_url": group_qr,
                "chat_id": group_chat_id,
                "qr_expires_at": group_qr_expires,
            }
        out.append(
            Claimed(
                int(id_),
                token,
                campaign,
                step,
                None if contact_id is None else int(contact_id),
                channel,
                template,
                account_id,
                community_id,
                action,
                ctx,
                int(attempts),
                idempotency_key,
                bool(sending) if pg else sending is not None and sending != now,
                contact_name,
                contact_tier,
                address,
                bool(opted_out),
                group,
                churned=bool(churned),
            )
        )
    out.sort(key=lambda c: c.id)
    return out


@dataclass(slots=True)
class Outcome:
    """How one claimed row ends this attempt."""

    id: int
    token: str
    state: OutboxState
    reason: str | None = None
    provider_id: str | None = None
    due_at: datetime | None = None
    sent_at: datetime | None = None
    rendered: str | None = None
    keep_sending: bool = False  # keep sending_at: the attempt may have reached the provider
    attempt: str | None = None  # outcome for outbox_attempts; None: no provider attempt logged


_MARK_SET = """
  state = v.state,
  reason = v.reason,
  provider_message_id = COALESCE(v.pid, outbox.provider_message_id),
  due_at = COALESCE(v.due_at, outbox.due_at),
  sent_at = COALESCE(v.sent_at, outbox.sent_at),
  rendered = COALESCE(v.rendered, outbox.rendered),
  sending_at = CASE WHEN v.keep = 1 THEN outbox.sending_at ELSE NULL END,
  claimed_by = NULL, claim_expires_at = NULL, updated_at = :now
"""

# PostgreSQL: one fixed statement over a JSON array of outcomes, each an array of values in a
# fixed order (one plan, whatever the batch size; encoding one JSON text is far cheaper than a
# bound array per column, and arrays cheaper than objects repeating their keys).
# The attempt log is written by the same statement (every attempt, as on SQLite: a row whose
# lease ran out was still tried); its detail is the reason, else the provider's id.
_MARK_PG = f"""
WITH v AS (
  SELECT (e->>0)::bigint AS id, e->>1 AS token, e->>2 AS state,
    NULLIF(LEFT(e->>3, 500), '') AS reason, e->>4 AS pid, (e->>5)::timestamptz AS due_at,
    (e->>6)::timestamptz AS sent_at, e->>7 AS rendered, (e->>8)::int AS keep,
    e->>9 AS outcome, LEFT(COALESCE(NULLIF(e->>3, ''), NULLIF(e->>4, '')), 1000) AS detail
  FROM jsonb_array_elements(CAST(:doc AS jsonb)) AS e),
upd AS (
UPDATE outbox SET {_MARK_SET}
FROM v
WHERE outbox.id = v.id AND outbox.claimed_by = v.token)
INSERT INTO outbox_attempts (outbox_id, worker, outcome, detail, at)
SELECT id, :worker, outcome, detail, :now FROM v WHERE outcome IS NOT NULL
"""

_MARK_PG_STMT = text(_MARK_PG)

# SQLite: the same per row, executed many times inside the caller's transaction.
_MARK_ONE = """
UPDATE outbox SET
  state = :state, reason = :reason,
  provider_message_id = COALESCE(:pid, provider_message_id),
  due_at = COALESCE(:due_at, due_at), sent_at = COALESCE(:sent_at, sent_at),
  rendered = COALESCE(:rendered, rendered),
  sending_at = CASE WHEN :keep = 1 THEN sending_at ELSE NULL END,
  claimed_by = NULL, claim_expires_at = NULL, updated_at = :now
WHERE id = :id AND claimed_by = :token
"""


def mark(
    session: Session | Connection, outcomes: Sequence[Outcome], *, worker: str, now: datetime
) -> None:
    """Record outcomes set-based (rows still held by their claim token only) and log attempts."""
    if not outcomes:
        return
    if is_postgres(session):
        # A batch's rows share a few instants: each formatted once (None stays None). States
        # are StrEnums, which JSON writes as their values.
        stamps: dict[datetime | None, str | None] = {None: None}
        for o in outcomes:
            for t in (o.due_at, o.sent_at):
                if t not in stamps:
                    stamps[t] = t.isoformat()  # type: ignore[union-attr]
        doc = [
            (
                o.id,
                o.token,
                o.state,
                o.reason,
                o.provider_id,
                stamps[o.due_at],
                stamps[o.sent_at],
                o.rendered,
                1 if o.keep_sending else 0,
                o.attempt,
            )
            for o in outcomes
        ]
        session.execute(
            _MARK_PG_STMT,
            {"now": now, "doc": json.dumps(doc, ensure_ascii=False), "worker": worker},
        )
        return
    else:
        ts = UTCDateTime()
        dialect = dialect_of(session)
        session.execute(
            text(_MARK_ONE),
            [
                {
                    "id": o.id,
                    "token": o.token,
                    "state": o.state.value,
                    "reason": (o.reason or None) and o.reason[:500],
                    "pid": o.provider_id,
                    "due_at": ts.process_bind_param(o.due_at, dialect),
                    "sent_at": ts.process_bind_param(o.sent_at, dialect),
                    "rendered": o.rendered,
                    "keep": 1 if o.keep_sending else 0,
                    "now": ts.process_bind_param(now, dialect),
                }
                for o in outcomes
            ],
        )
    attempts = [
        {
            "outbox_id": o.id,
            "worker": worker,
            "outcome": o.attempt,
            "detail": _detail(o),
            "at": now,
        }
        for o in outcomes
        if o.attempt is not None
    ]
    if attempts:
        session.execute(insert(OutboxAttempt.__table__), attempts)  # type: ignore[arg-type]


def _detail(o: Outcome) -> str | None:
    return (o.reason or o.provider_id or "")[:1000] or None


def mark_sending(
    session: Session | Connection, ids: Sequence[int], token: str, now: datetime
) -> None:
    """Flag rows as possibly at the provider, just before a call that cannot be asked later."""
    if not ids:
        return
    session.execute(
        text(
            "UPDATE outbox SET sending_at = :now WHERE claimed_by = :token AND id IN :ids"
        ).bindparams(bindparam("ids", expanding=True), bindparam("now", type_=UTCDateTime())),
        {"now": now, "token": token, "ids": list(ids)},
    )


def counts(session: Session) -> dict[str, int]:
    """Outbox rows per state."""
    rows = session.execute(text("SELECT state, COUNT(*) FROM outbox GROUP BY state")).all()
    return {str(s): int(n) for s, n in rows}


def still_coming(session: Session, now: datetime) -> tuple[int, datetime | None]:
    """Rows planned or deferred but not yet due, and the earliest time one falls due."""
    o = OutboxMessage
    n, first = session.execute(
        select(func.count(), func.min(o.due_at)).where(
            o.state.in_((OutboxState.PLANNED.value, OutboxState.DEFERRED.value)), o.due_at > now
        )
    ).one()
    return int(n), first
