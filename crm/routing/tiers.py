"""Writing tier moves: the tier history, the contacts' tiers, and what a move entails.

A removed contact leaves its groups; a contact entering prospect gets a pool item in the
prospect queue (unless one is open). :func:`mark_paid` is the sales "won" entry to paid: a
row-locked move with history, audit and a paid-group invitation. Which moves to make is
decided by :mod:`crm.routing.tier_rules`; this module only writes them, in the caller's
transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, any_, bindparam, insert, literal, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from crm.core.audit import audit
from crm.core.db import dialect_insert, is_postgres
from crm.core.errors import InputError, Problem
from crm.core.vocabulary import ContactStatus, QueueStatus, Tier
from crm.models import Contact, Membership, QueueItem, TierChange, UTCDateTime, utcnow
from crm.routing.placement import place_contacts
from crm.routing.rules import Rules
from crm.routing.tier_reasons import TierWhy
from crm.routing.tier_rules import Move, Transition


def write_moves(
    session: Session, moves: Sequence[Move], rules: Rules, *, actor: str, now: datetime
) -> int:
    """Record moves, take removed contacts out of their groups, queue new prospects.

    Returns how many prospect queue items were created.
    """
    record_transitions(session, moves, rules_version=rules.version, actor=actor, now=now)
    leave_groups(
        session, [(m.transition, m.contact_id) for m in moves if m.transition.removed], now
    )
    return queue_prospects(
        session,
        [(m.contact_id, m.score) for m in moves if m.transition.to_tier == Tier.PROSPECT],
        rules,
        now,
    )


def _value(tier: Tier | None) -> str | None:
    # The driver writes an enum as its name: tiers are stored as their values.
    return tier.value if tier is not None else None


def record_transitions(
    session: Session,
    moves: Sequence[Move],
    *,
    rules_version: str | None,
    actor: str,
    now: datetime,
) -> None:
    """Apply moves to contacts and append them to the tier history."""
    if not moves:
        return
    if is_postgres(session):
        # One statement over arrays: an executemany sent one INSERT per move.
        session.execute(
            _INSERT_CHANGES_PG,
            {
                "cids": [cid for _t, cid, _s in moves],
                "froms": [_value(t.from_tier) for t, _c, _s in moves],
                "tos": [_value(t.to_tier) for t, _c, _s in moves],
                "reasons": [t.reason for t, _c, _s in moves],
                "keys": [t.why.key for t, _c, _s in moves],
                "params": [_json(t.why.stored_params) for t, _c, _s in moves],
                "scores": [score for _t, _c, score in moves],
                "version": rules_version,
                "actor": actor,
                "at": now,
            },
        )
    else:
        _insert_changes(session, moves, rules_version=rules_version, actor=actor, now=now)
    _apply_moves(session, moves, now)


_INSERT_CHANGES_PG = text(
    "INSERT INTO tier_changes (contact_id, from_tier, to_tier, reason, reason_key,"
    " reason_params, rules_version, score, actor, changed_at)"
    " SELECT m.cid, m.from_tier, m.to_tier, m.reason, m.reason_key, m.reason_params,"
    " :version, m.score, :actor, :at"
    " FROM unnest(CAST(:cids AS bigint[]), CAST(:froms AS text[]), CAST(:tos AS text[]),"
    " CAST(:reasons AS text[]), CAST(:keys AS text[]), CAST(CAST(:params AS text[]) AS jsonb[]),"
    " CAST(:scores AS integer[]))"
    " WITH ORDINALITY AS m(cid, from_tier, to_tier, reason, reason_key, reason_params, score, n)"
    " ORDER BY m.n"
).bindparams(bindparam("at", type_=UTCDateTime()))


def _json(params: dict[str, object] | None) -> str | None:
    # Sent as text and cast in SQL, so a typed reason's None stays SQL NULL.
    return json.dumps(params, ensure_ascii=False) if params is not None else None


def _insert_changes(
    session: Session,
    moves: Sequence[Move],
    *,
    rules_version: str | None,
    actor: str,
    now: datetime,
) -> None:
    session.execute(
        insert(TierChange),
        [
            {
                "contact_id": cid,
                "from_tier": _value(t.from_tier),
                "to_tier": _value(t.to_tier),
                "reason": t.reason,
                "reason_key": t.why.key,
                "reason_params": t.why.stored_params,
                "rules_version": rules_version,
                "score": score,
                "actor": actor,
                "changed_at": now,
            }
            for t, cid, score in moves
        ],
    )


def _apply_moves(session: Session, moves: Sequence[Move], now: datetime) -> None:
    by_target: dict[Tier | None, list[int]] = {}
    for t, cid, _score in moves:
        by_target.setdefault(t.to_tier, []).append(cid)
    pg = is_postgres(session)
    for target, ids in by_target.items():
        # PostgreSQL takes the ids as one array (= ANY), not thousands of bound parameters.
        step = max(len(ids), 1) if pg else 5000
        for start in range(0, len(ids), step):
            chunk = ids[start : start + step]
            values: dict[str, object] = {"tier_entered_at": now, "updated_at": now}
            if target is None:
                values["status"] = ContactStatus.REMOVED.value
            else:
                values["tier"] = target.value
            match = (
                Contact.id == any_(literal(chunk, ARRAY(BigInteger)))
                if pg
                else Contact.id.in_(chunk)
            )
            session.execute(
                update(Contact).where(match).values(**values),
                execution_options={"synchronize_session": False},
            )


def leave_groups(session: Session, removed: Sequence[tuple[Transition, int]], at: datetime) -> None:
    """End the current memberships of removed contacts, with the removal's reason."""
    by_reason: dict[str, list[int]] = {}
    for move, cid in removed:
        by_reason.setdefault(move.reason, []).append(cid)
    for reason, ids in by_reason.items():
        for start in range(0, len(ids), 5000):
            session.execute(
                update(Membership)
                .where(Membership.contact_id.in_(ids[start : start + 5000]))
                .where(Membership.left_at.is_(None))
                .values(left_at=at, left_reason=reason),
                execution_options={"synchronize_session": False},
            )


_QUEUE_PROSPECTS_PG = text(
    "INSERT INTO queue_items (contact_id, status, open_key, sla_due_at, priority,"
    " created_at, updated_at)"
    " SELECT m.cid, :status, m.cid, :due, m.score, :at, :at"
    " FROM unnest(CAST(:cids AS bigint[]), CAST(:scores AS integer[])) WITH ORDINALITY"
    " AS m(cid, score, n) ORDER BY m.n ON CONFLICT DO NOTHING"
).bindparams(bindparam("due", type_=UTCDateTime()), bindparam("at", type_=UTCDateTime()))


def queue_prospects(
    session: Session, entering: Sequence[tuple[int, int]], rules: Rules, at: datetime
) -> int:
    """A pool item per contact (id, score) entering prospect, unless one is already open."""
    if not entering:
        return 0
    due = at + timedelta(hours=rules.queue.sla_hours)
    if is_postgres(session):
        # One statement over arrays; the open_key unique constraint skips open items.
        inserted = session.execute(
            _QUEUE_PROSPECTS_PG,
            {
                "cids": [cid for cid, _ in entering],
                "scores": [score for _, score in entering],
                "status": QueueStatus.POOL.value,
                "due": due,
                "at": at,
            },
        )
        return int(getattr(inserted, "rowcount", 0) or 0)
    existing: set[int] = set()
    ids = [cid for cid, _ in entering]
    for start in range(0, len(ids), 5000):
        existing.update(
            int(k)
            for k in session.scalars(
                select(QueueItem.open_key).where(QueueItem.open_key.in_(ids[start : start + 5000]))
            )
            if k is not None
        )
    rows = [
        {
            "contact_id": cid,
            "status": QueueStatus.POOL.value,
            "open_key": cid,
            "sla_due_at": due,
            "priority": score,
            "created_at": at,
            "updated_at": at,
        }
        for cid, score in entering
        if cid not in existing
    ]
    if not rows:
        return 0
    session.execute(dialect_insert(session, QueueItem).on_conflict_do_nothing(), rows)
    return len(rows)


def mark_paid(
    session: Session,
    contact_id: int,
    *,
    why: TierWhy,
    actor: str,
    rules: Rules,
    now: datetime | None = None,
) -> Transition | None:
    """Move a contact to paid (a sales "won" outcome); history and a paid-group invitation.

    Runs in the caller's transaction. Returns None when the contact already is paid.
    ``why`` is :func:`crm.routing.tier_reasons.won` for a sales outcome, ``typed`` for an
    operator's own words.
    ``rules`` are the rules in force (they pick the paid group).
    """
    at = now or utcnow()
    contact = session.get(Contact, contact_id, with_for_update=True)
    if contact is None:
        raise InputError("error.contacts.contact_missing", id=contact_id)
    if contact.status != ContactStatus.ACTIVE:
        status = Problem(f"status.{contact.status}")  # the status in words
        raise InputError("error.routing.contact_inactive", id=contact_id, status=status)
    if contact.tier == Tier.PAID:
        return None
    move = Transition(Tier(contact.tier) if contact.tier else None, Tier.PAID, why)
    session.add(
        TierChange(
            contact_id=contact.id,
            from_tier=contact.tier,
            to_tier=Tier.PAID.value,
            reason=move.reason,
            reason_key=why.key,
            reason_params=why.stored_params,
            rules_version=contact.rules_version,
            score=contact.score,
            actor=actor,
            changed_at=at,
        )
    )
    contact.tier = Tier.PAID.value
    contact.tier_entered_at = at
    audit(
        session,
        actor,
        "tier.mark_paid",
        object_type="contact",
        object_id=contact.id,
        details={
            "from": _value(move.from_tier),
            "reason": move.reason,
            "reason_key": why.key,
            "reason_params": why.stored_params,
        },
        at=at,
    )
    session.flush()
    place_contacts(session, {Tier.PAID: [contact.id]}, rules, now=at)
    return move
