"""Managers hand out prospects: one item to a person, or the pool by a strategy.

The strategies themselves are plain functions in :mod:`crm.sales.assignment`; this module
reads what they need (the pool, everyone's headroom and load in one query, the owners of
contacts), writes their picks, and records an ``assigned`` action per item for the receiver
(so assignments count against the receiver's daily claim limit).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from crm.contacts.attribution import first_touches
from crm.core.db import is_postgres, transaction
from crm.core.errors import Conflict, Forbidden, InputError, NotFound, Problem
from crm.core.queue_notes import NoteKey, assigned_by, system_note
from crm.core.vocabulary import QueueStatus
from crm.models import OperatorAccount, QueueAction, QueueItem, SourceInstance, User, utcnow
from crm.sales.assignment import PoolItem, by_load, by_owner, items_to_consider, round_robin
from crm.sales.claim_limits import check_may_receive
from crm.sales.claim_usage import Headroom, holding_count, sales_headroom
from crm.sales.claims import claim_values, pool_order
from crm.sales.held_items import MANAGERS, acting_user, locked_item
from crm.sales.history import Action, record
from crm.sales.leases import sweep
from crm.sales.vocabulary import ASSIGN_LEASE, HELD, ActionKind, AssignStrategy


@dataclass(frozen=True)
class Assignment:
    """An item now with ``assignee``; ``from_user_id`` held it before (None: from the pool)."""

    item_id: int
    assignee: str
    from_user_id: int | None


@dataclass(frozen=True)
class PoolAssignment:
    """What assigning the pool did: how many items, and how many each person received."""

    strategy: AssignStrategy
    assigned: int
    by_user: dict[str, int]


def _lock_receiver(session: Session, user_id: int) -> User:
    # Serializes assignments to one person so two managers cannot both fill the last slot.
    stmt = select(User).where(User.id == user_id)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    user = session.scalar(stmt)
    if user is None:
        raise NotFound("error.sales.user_id_missing", user_id=user_id)
    if not user.active:
        raise Forbidden("error.sales.user_disabled", username=user.username)
    return user


def assign(
    engine: Engine,
    item_id: int,
    to_user_id: int,
    manager_id: int,
    now: datetime | None = None,
    *,
    lease: timedelta = ASSIGN_LEASE,
) -> Assignment:
    """Assign or reassign an open item to a person (managers and admins only)."""
    now = now or utcnow()
    with transaction(engine, immediate=True) as session:
        manager = acting_user(session, manager_id)
        if manager.role not in MANAGERS:
            raise Forbidden("error.sales.managers_only")
        target = _lock_receiver(session, to_user_id)
        item = locked_item(session, item_id)
        if item.open_key is None:
            status = Problem(f"queue.{item.status}")  # the status in words
            raise Conflict("error.sales.item_closed", item_id=item_id, status=status)
        if item.assignee_id == target.id and item.status in HELD:
            raise Conflict("error.sales.item_with", item_id=item_id, username=target.username)
        check_may_receive(
            target.username, holding_count(session, target.id, now), target.holding_cap
        )
        previous = item.assignee_id if item.status in HELD else None
        if item.status not in HELD or item.status == QueueStatus.SNOOZED:
            item.status = QueueStatus.CLAIMED
            item.snoozed_until = None
        item.assignee_id = target.id
        item.lease_expires_at = now + lease
        item.updated_at = now
        handed = Action(
            item_id=item.id,
            kind=ActionKind.REASSIGN if previous else ActionKind.ASSIGN,
            user_id=manager.id,
            details={"to_user_id": target.id, "from_user_id": previous},
        )
        received = Action(
            item_id=item.id,
            kind=ActionKind.ASSIGNED,
            user_id=target.id,
            note=system_note(NoteKey.BY_MANAGER, user=manager.username),
        )
        record(session, [handed, received], actor=manager.username, now=now)
        return Assignment(item_id=item.id, assignee=target.username, from_user_id=previous)


def parse_strategy(strategy: str) -> AssignStrategy:
    """The strategy named by ``strategy``; InputError for anything else."""
    try:
        return AssignStrategy(strategy)
    except ValueError as exc:
        expected = ", ".join(s.value for s in AssignStrategy)
        raise InputError(
            "error.sales.strategy_unknown", strategy=strategy, expected=expected
        ) from exc


def assign_pool(
    engine: Engine,
    strategy: str,
    now: datetime | None = None,
    *,
    zone: ZoneInfo,
    lease: timedelta = ASSIGN_LEASE,
    actor: str = "system",
) -> PoolAssignment:
    """Hand pool items to sales staff within their claim limits: round_robin, owner or load."""
    how = parse_strategy(strategy)
    now = now or utcnow()
    with transaction(engine, immediate=True) as session:
        sweep(session, now)
        people = sales_headroom(session, now, zone)
        total = sum(p.room for p in people)
        if total == 0:
            return PoolAssignment(strategy=how, assigned=0, by_user={})
        items = _pool_items(session, items_to_consider(how, total))
        picks = _pick(session, how, items, people)
        actions = _write_picks(session, picks, how, now, lease)
        record(session, actions, actor=actor, now=now)
        names = {p.user_id: p.username for p in people}
        by_user = {names[uid]: len(ids) for uid, ids in picks.items()}
        return PoolAssignment(strategy=how, assigned=len(actions), by_user=by_user)


def _pool_items(session: Session, limit: int) -> list[PoolItem]:
    pick = (
        select(QueueItem.id, QueueItem.contact_id)
        .where(QueueItem.status == QueueStatus.POOL)
        .order_by(*pool_order())
        .limit(limit)
    )
    if is_postgres(session):
        pick = pick.with_for_update(skip_locked=True)
    return [PoolItem(int(i), int(c)) for i, c in session.execute(pick)]


def _pick(
    session: Session, how: AssignStrategy, items: list[PoolItem], people: Sequence[Headroom]
) -> dict[int, list[int]]:
    room = {p.user_id: p.room for p in people}
    if how is AssignStrategy.OWNER:
        return by_owner(items, room, _owners(session, (i.contact_id for i in items)))
    if how is AssignStrategy.ROUND_ROBIN:
        return round_robin(items, room, last=_last_round_robin(session))
    return by_load(items, room, {p.user_id: p.holding for p in people})


def _write_picks(
    session: Session,
    picks: dict[int, list[int]],
    how: AssignStrategy,
    now: datetime,
    lease: timedelta,
) -> list[Action]:
    actions: list[Action] = []
    by_strategy = assigned_by(how.value)
    for uid, ids in picks.items():
        session.execute(
            update(QueueItem)
            .where(QueueItem.id.in_(ids), QueueItem.status == QueueStatus.POOL)
            .values(**claim_values(uid, now, lease))
            .execution_options(synchronize_session=False)
        )
        actions.extend(
            Action(
                item_id=i,
                kind=ActionKind.ASSIGNED,
                user_id=uid,
                note=by_strategy,
                details={"to_user_id": uid, "strategy": how.value},
            )
            for i in ids
        )
    return actions


def _owners(session: Session, contact_ids: Iterable[int]) -> dict[int, int]:
    """contact id → the user who owns its first source (promoter, else operator account owner)."""
    ids = list(contact_ids)
    if not ids:
        return {}
    first = first_touches(ids)
    stmt = (
        select(first.c.contact_id, OperatorAccount.owner_user_id, User.id)
        .join(SourceInstance, SourceInstance.id == first.c.source_instance_id)
        .outerjoin(OperatorAccount, OperatorAccount.id == SourceInstance.operator_account_id)
        .outerjoin(User, User.username == SourceInstance.promoter)
    )
    out: dict[int, int] = {}
    for contact_id, owner_id, promoter_id in session.execute(stmt):
        chosen = promoter_id if promoter_id is not None else owner_id
        if chosen is not None:
            out[int(contact_id)] = int(chosen)
    return out


def _last_round_robin(session: Session) -> int | None:
    """Who received the last item of a round-robin hand-out (the next round starts after)."""
    row = session.scalar(
        select(QueueAction.user_id)
        .where(
            QueueAction.action == ActionKind.ASSIGNED,
            QueueAction.note_key == NoteKey.BY_ROUND_ROBIN.value,
        )
        .order_by(QueueAction.id.desc())
        .limit(1)
    )
    return None if row is None else int(row)
