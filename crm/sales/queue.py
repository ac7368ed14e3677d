"""The prospect queue: claims with a lease, release, assignment, outcomes and per-person caps.

An item is *held* by its assignee while its status is claimed, contacted, qualified or
snoozed and its lease has not run out; a held item is never handed to anyone else.
Claims are one ``UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING``
on PostgreSQL and run inside ``BEGIN IMMEDIATE`` on SQLite. Expired leases go back to the
pool lazily (every claim sweeps first) and through :func:`expire_leases`.

Every action appends a ``queue_actions`` row and an audit entry. Daily claim caps count
today's ``claim`` and ``assigned`` actions of the person (``assigned`` rows carry the
receiving person as ``user_id``; the manager who assigned is in the note and the audit log).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Engine,
    and_,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from crm.contacts.attribution import first_touches
from crm.core.db import is_postgres, transaction
from crm.core.errors import Conflict, Forbidden, InputError, NotFound
from crm.core.settings import get_settings
from crm.core.vocabulary import QueueStatus, UserRole
from crm.models import (
    AuditEntry,
    Community,
    Contact,
    ContactTag,
    Membership,
    OperatorAccount,
    QueueAction,
    QueueItem,
    SourceInstance,
    Touch,
    User,
    utcnow,
)
from crm.routing.tiers import mark_paid

DEFAULT_LEASE = timedelta(hours=4)
ASSIGN_LEASE = timedelta(hours=24)
HELD = (
    QueueStatus.CLAIMED.value,
    QueueStatus.CONTACTED.value,
    QueueStatus.QUALIFIED.value,
    QueueStatus.SNOOZED.value,
)
OUTCOMES = ("contacted", "qualified", "won", "lost", "snoozed")
STRATEGIES = ("round_robin", "owner", "load")
# Sort keys the pages and the CLI may ask for, mapped to columns (never SQL from input).
SORTS: dict[str, Any] = {
    "sla": QueueItem.sla_due_at,
    "priority": QueueItem.priority,
    "created": QueueItem.created_at,
    "score": Contact.score,
    "updated": QueueItem.updated_at,
}


@cache
def _default_zone() -> ZoneInfo:
    # Reading settings costs milliseconds; callers that care pass ``zone``.
    return get_settings().zone


def _zone(zone: ZoneInfo | None) -> ZoneInfo:
    return zone or _default_zone()


def local_day_start(now: datetime, zone: ZoneInfo | None = None) -> datetime:
    """Midnight of ``now``'s local day (business time zone), as an aware UTC time."""
    tz = _zone(zone)
    local = now.astimezone(tz)
    return datetime.combine(local.date(), time(0), tzinfo=tz).astimezone(now.tzinfo)


def _pool_order() -> tuple[Any, ...]:
    # Due first (no SLA last), then priority, then oldest.
    return (
        QueueItem.sla_due_at.asc().nulls_last(),
        QueueItem.priority.desc(),
        QueueItem.created_at,
        QueueItem.id,
    )


def _record(
    session: Session,
    rows: Sequence[dict[str, Any]],
    *,
    actor: str,
    now: datetime,
) -> None:
    """Append queue actions and their audit entries in two statements."""
    if not rows:
        return
    session.connection().execute(
        insert(QueueAction),
        [
            {
                "item_id": r["item_id"],
                "user_id": r.get("user_id"),
                "action": r["action"],
                "note": r.get("note"),
                "at": now,
            }
            for r in rows
        ],
    )
    session.connection().execute(
        insert(AuditEntry),
        [
            {
                "at": now,
                "actor": actor,
                "action": f"queue.{r['action']}",
                "object_type": "queue_item",
                "object_id": str(r["item_id"]),
                "details": r.get("details") or {},
            }
            for r in rows
        ],
    )


# --- expiry ------------------------------------------------------------------------------


def _expire(session: Session, now: datetime, *, limit: int | None = None) -> list[int]:
    held = and_(QueueItem.status.in_(HELD), QueueItem.lease_expires_at < now)
    if is_postgres(session):
        ids = select(QueueItem.id).where(held).with_for_update(skip_locked=True)
        if limit is not None:
            ids = ids.limit(limit)
        cond: ColumnElement[bool] = QueueItem.id.in_(ids.scalar_subquery())
    else:
        cond = held
    rows = (
        session.connection()
        .execute(
            update(QueueItem)
            .where(cond)
            .values(
                status=QueueStatus.POOL.value,
                assignee_id=None,
                lease_expires_at=None,
                snoozed_until=None,
                updated_at=now,
            )
            .returning(QueueItem.id)
            .execution_options(synchronize_session=False)
        )
        .all()
    )
    ids_out = [int(r.id) for r in rows]
    _record(
        session,
        [{"item_id": i, "action": "expired", "note": "lease ran out"} for i in ids_out],
        actor="system",
        now=now,
    )
    return ids_out


def expire_leases(engine: Engine, now: datetime | None = None) -> int:
    """Return every item whose lease ran out to the pool; how many returned."""
    now = now or utcnow()
    with transaction(engine, immediate=True) as session:
        return len(_expire(session, now))


# --- caps --------------------------------------------------------------------------------


def _holding(session: Session, user_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(QueueItem)
            .where(QueueItem.assignee_id == user_id, QueueItem.status.in_(HELD))
        )
        or 0
    )


def _claimed_today(session: Session, user_id: int, now: datetime, zone: ZoneInfo | None) -> int:
    start = local_day_start(now, zone)
    return int(
        session.scalar(
            select(func.count())
            .select_from(QueueAction)
            .where(
                QueueAction.user_id == user_id,
                QueueAction.action.in_(("claim", "assigned")),
                QueueAction.at >= start,
            )
        )
        or 0
    )


def cap_status(
    session: Session, user_id: int, now: datetime | None = None, zone: ZoneInfo | None = None
) -> dict[str, int]:
    """A person's caps, today's claims and current holding, with what is left of each."""
    now = now or utcnow()
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    claimed = _claimed_today(session, user_id, now, zone)
    holding = _holding(session, user_id)
    return {
        "daily_claim_cap": user.daily_claim_cap,
        "claimed_today": claimed,
        "claims_left": max(0, user.daily_claim_cap - claimed),
        "holding_cap": user.holding_cap,
        "holding": holding,
        "holding_left": max(0, user.holding_cap - holding),
    }


def _lock_user(session: Session, user_id: int) -> User:
    # Serializes one person's claims so two tabs cannot both slip under a cap.
    stmt = select(User).where(User.id == user_id)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    user = session.scalar(stmt)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    if not user.active:
        raise Forbidden(f"user {user.username} is disabled")
    return user


def _lock_and_check_caps(
    session: Session, user_id: int, now: datetime, zone: ZoneInfo | None
) -> Any:
    """Lock the person (one claim at a time per person) and check both caps in one query."""
    start = local_day_start(now, zone)
    held = (
        select(func.count())
        .select_from(QueueItem)
        .where(QueueItem.assignee_id == user_id, QueueItem.status.in_(HELD))
        .scalar_subquery()
    )
    today = (
        select(func.count())
        .select_from(QueueAction)
        .where(
            QueueAction.user_id == user_id,
            QueueAction.action.in_(("claim", "assigned")),
            QueueAction.at >= start,
        )
        .scalar_subquery()
    )
    stmt = select(
        User.id,
        User.username,
        User.active,
        User.holding_cap,
        User.daily_claim_cap,
        held.label("holding"),
        today.label("claimed"),
    ).where(User.id == user_id)
    if is_postgres(session):
        stmt = stmt.with_for_update(of=User)
    user = session.connection().execute(stmt).first()
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    holding, claimed = int(user.holding), int(user.claimed)
    if not user.active:
        raise Forbidden(f"user {user.username} is disabled")
    if holding >= user.holding_cap:
        raise Forbidden(
            f"{user.username} already holds {holding} prospects (holding cap {user.holding_cap}):"
            " close or release one first"
        )
    if claimed >= user.daily_claim_cap:
        raise Forbidden(
            f"{user.username} reached today's claim cap ({user.daily_claim_cap}); "
            "it resets at midnight"
        )
    return user


# --- claims ------------------------------------------------------------------------------


def _claimed(session: Session, row: Any, user: Any, now: datetime, how: str) -> dict[str, Any]:
    _record(
        session,
        [
            {
                "item_id": int(row.id),
                "user_id": user.id,
                "action": "claim",
                "details": {"contact_id": int(row.contact_id), "how": how},
            }
        ],
        actor=user.username,
        now=now,
    )
    return {
        "item_id": int(row.id),
        "contact_id": int(row.contact_id),
        "assignee": user.username,
        "lease_expires_at": row.lease_expires_at,
        "sla_due_at": row.sla_due_at,
    }


def _claim_values(user_id: int, now: datetime, lease: timedelta) -> dict[str, Any]:
    return {
        "status": QueueStatus.CLAIMED.value,
        "assignee_id": user_id,
        "lease_expires_at": now + lease,
        "snoozed_until": None,
        "updated_at": now,
    }


_RETURNING = (QueueItem.id, QueueItem.contact_id, QueueItem.lease_expires_at, QueueItem.sla_due_at)


def claim_next(
    engine: Engine,
    user_id: int,
    now: datetime | None = None,
    *,
    lease: timedelta = DEFAULT_LEASE,
    zone: ZoneInfo | None = None,
) -> dict[str, Any] | None:
    """Claim the next pool item (SLA due first, then priority, then oldest); None if empty."""
    now = now or utcnow()
    with transaction(engine, immediate=True) as session:
        user = _lock_and_check_caps(session, user_id, now, zone)
        _expire(session, now, limit=100)
        pick = (
            select(QueueItem.id)
            .where(QueueItem.status == QueueStatus.POOL.value)
            .order_by(*_pool_order())
            .limit(1)
        )
        if is_postgres(session):
            pick = pick.with_for_update(skip_locked=True)
        row = (
            session.connection()
            .execute(
                update(QueueItem)
                .where(QueueItem.id == pick.scalar_subquery())
                .values(**_claim_values(user.id, now, lease))
                .returning(*_RETURNING)
                .execution_options(synchronize_session=False)
            )
            .first()
        )
        if row is None:
            return None
        return _claimed(session, row, user, now, "next")


def claim_item(
    engine: Engine,
    item_id: int,
    user_id: int,
    now: datetime | None = None,
    *,
    lease: timedelta = DEFAULT_LEASE,
    zone: ZoneInfo | None = None,
) -> dict[str, Any]:
    """Claim one named item; Conflict when someone else holds it (or it is closed)."""
    now = now or utcnow()
    with transaction(engine, immediate=True) as session:
        user = _lock_and_check_caps(session, user_id, now, zone)
        free = or_(
            QueueItem.status == QueueStatus.POOL.value,
            and_(QueueItem.status.in_(HELD), QueueItem.lease_expires_at < now),
        )
        # On PostgreSQL a concurrent claimer waits for the row lock, then re-checks
        # ``free`` against the committed row and finds nothing: exactly one wins.
        row = (
            session.connection()
            .execute(
                update(QueueItem)
                .where(QueueItem.id == item_id, free)
                .values(**_claim_values(user.id, now, lease))
                .returning(*_RETURNING)
                .execution_options(synchronize_session=False)
            )
            .first()
        )
        if row is not None:
            return _claimed(session, row, user, now, "item")
        item = session.get(QueueItem, item_id)
        if item is None:
            raise NotFound(f"queue item {item_id} does not exist")
        if item.status in HELD:
            holder = session.get(User, item.assignee_id) if item.assignee_id else None
            if holder is not None and holder.id == user.id:
                raise Conflict(f"you already hold queue item {item_id}")
            who = holder.username if holder else "someone else"
            raise Conflict(f"queue item {item_id} was already claimed by {who}")
        raise Conflict(f"queue item {item_id} is closed ({item.status})")


# --- acting on a held item --------------------------------------------------------------


def _held_item(session: Session, item_id: int, actor: User, now: datetime) -> QueueItem:
    """The item, locked, if ``actor`` may act on it; explains why not otherwise."""
    stmt = select(QueueItem).where(QueueItem.id == item_id)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    item = session.scalar(stmt)
    if item is None:
        raise NotFound(f"queue item {item_id} does not exist")
    manager = actor.role in (UserRole.MANAGER, UserRole.ADMIN)
    if item.status not in HELD:
        raise Conflict(f"queue item {item_id} is {item.status}, not held by anyone")
    if item.assignee_id != actor.id and not manager:
        raise Forbidden(f"queue item {item_id} is not yours: claim it first")
    if item.lease_expires_at is not None and item.lease_expires_at < now:
        raise Conflict(
            f"your lease on queue item {item_id} expired at "
            f"{item.lease_expires_at:%Y-%m-%d %H:%M} UTC and it went back to the pool: "
            "claim it again to record this"
        )
    return item


def _actor(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    if not user.active:
        raise Forbidden(f"user {user.username} is disabled")
    return user


def release(engine: Engine, item_id: int, user_id: int, now: datetime | None = None) -> None:
    """Give a held item back to the pool (its holder, or a manager)."""
    now = now or utcnow()
    with transaction(engine, immediate=True) as session:
        actor = _actor(session, user_id)
        item = _held_item(session, item_id, actor, now)
        previous = item.assignee_id
        item.status = QueueStatus.POOL.value
        item.assignee_id = None
        item.lease_expires_at = None
        item.snoozed_until = None
        item.updated_at = now
        _record(
            session,
            [
                {
                    "item_id": item.id,
                    "user_id": actor.id,
                    "action": "release",
                    "details": {"from_user_id": previous},
                }
            ],
            actor=actor.username,
            now=now,
        )


def record_outcome(
    engine: Engine,
    item_id: int,
    user_id: int,
    status: str,
    *,
    reason: str | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
    lease: timedelta = DEFAULT_LEASE,
) -> dict[str, Any]:
    """Record contacted / qualified / won (→ paid) / lost (reason required) / snoozed (until)."""
    now = now or utcnow()
    if status not in OUTCOMES:
        raise InputError(f"unknown outcome {status!r} (expected one of {', '.join(OUTCOMES)})")
    reason = (reason or "").strip() or None
    if reason is not None and len(reason) > 500:
        raise InputError("reason too long (500 characters at most)")
    if status == "lost" and reason is None:
        raise InputError("a lost prospect needs a reason (--reason)")
    if status == "snoozed":
        if until is None:
            raise InputError("snoozed needs a time to come back (until)")
        if until.tzinfo is None:
            raise InputError("snooze time must carry a time zone")
        if until <= now:
            raise InputError("snooze time must be in the future")
    with transaction(engine, immediate=True) as session:
        actor = _actor(session, user_id)
        item = _held_item(session, item_id, actor, now)
        details: dict[str, Any] = {"contact_id": item.contact_id}
        item.status = status
        item.updated_at = now
        if status in ("won", "lost"):
            item.open_key = None
            item.closed_at = now
            item.lease_expires_at = None
            item.snoozed_until = None
            item.outcome_reason = reason
            if status == "won":
                mark_paid(
                    session,
                    item.contact_id,
                    reason=f"sales won: {reason}" if reason else "sales won",
                    actor=actor.username,
                    now=now,
                )
        elif status == "snoozed":
            assert until is not None
            item.snoozed_until = until
            item.lease_expires_at = until + lease
            details["until"] = until.isoformat()
        else:
            item.lease_expires_at = now + lease
        _record(
            session,
            [
                {
                    "item_id": item.id,
                    "user_id": actor.id,
                    "action": status,
                    "note": reason,
                    "details": details,
                }
            ],
            actor=actor.username,
            now=now,
        )
        return {
            "item_id": item.id,
            "contact_id": item.contact_id,
            "status": item.status,
            "lease_expires_at": item.lease_expires_at,
        }


def record_attempt(
    engine: Engine,
    item_id: int,
    user_id: int,
    note: str | None = None,
    *,
    now: datetime | None = None,
    lease: timedelta = DEFAULT_LEASE,
) -> None:
    """Log a contact attempt (call, message) without changing the status; renews the lease."""
    now = now or utcnow()
    note = (note or "").strip() or None
    with transaction(engine, immediate=True) as session:
        actor = _actor(session, user_id)
        item = _held_item(session, item_id, actor, now)
        item.lease_expires_at = max(item.lease_expires_at or now, now + lease)
        item.updated_at = now
        _record(
            session,
            [{"item_id": item.id, "user_id": actor.id, "action": "attempt", "note": note}],
            actor=actor.username,
            now=now,
        )


# --- assignment (managers) -------------------------------------------------------------


def _assignable(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    if not user.active:
        raise InputError(f"user {user.username} is disabled")
    return user


def assign(
    engine: Engine,
    item_id: int,
    to_user_id: int,
    manager_id: int,
    now: datetime | None = None,
    *,
    lease: timedelta = ASSIGN_LEASE,
    zone: ZoneInfo | None = None,
) -> dict[str, Any]:
    """Assign or reassign an open item to a person (managers and admins only)."""
    now = now or utcnow()
    with transaction(engine, immediate=True) as session:
        manager = _actor(session, manager_id)
        if manager.role not in (UserRole.MANAGER, UserRole.ADMIN):
            raise Forbidden("only managers and admins assign prospects")
        target = _lock_user(session, to_user_id)
        stmt = select(QueueItem).where(QueueItem.id == item_id)
        if is_postgres(session):
            stmt = stmt.with_for_update()
        item = session.scalar(stmt)
        if item is None:
            raise NotFound(f"queue item {item_id} does not exist")
        if item.open_key is None:
            raise Conflict(f"queue item {item_id} is closed ({item.status})")
        if item.assignee_id == target.id and item.status in HELD:
            raise Conflict(f"queue item {item_id} is already with {target.username}")
        holding = _holding(session, target.id)
        if holding >= target.holding_cap:
            raise Forbidden(
                f"{target.username} already holds {holding} prospects "
                f"(holding cap {target.holding_cap})"
            )
        previous = item.assignee_id if item.status in HELD else None
        if item.status not in HELD or item.status == QueueStatus.SNOOZED.value:
            item.status = QueueStatus.CLAIMED.value
            item.snoozed_until = None
        item.assignee_id = target.id
        item.lease_expires_at = now + lease
        item.updated_at = now
        action = "reassign" if previous else "assign"
        _record(
            session,
            [
                {
                    "item_id": item.id,
                    "user_id": manager.id,
                    "action": action,
                    "details": {"to_user_id": target.id, "from_user_id": previous},
                },
                {
                    "item_id": item.id,
                    "user_id": target.id,
                    "action": "assigned",
                    "note": f"by {manager.username}",
                },
            ],
            actor=manager.username,
            now=now,
        )
        return {"item_id": item.id, "assignee": target.username, "from_user_id": previous}


def _usage_per_person(now: datetime, zone: ZoneInfo | None) -> tuple[Any, Any]:
    """Per person: items held under a live lease, and claims plus assignments today."""
    holding = (
        select(QueueItem.assignee_id.label("uid"), func.count().label("n"))
        .where(QueueItem.status.in_(HELD), QueueItem.lease_expires_at >= now)
        .group_by(QueueItem.assignee_id)
        .subquery()
    )
    today = (
        select(QueueAction.user_id.label("uid"), func.count().label("n"))
        .where(
            QueueAction.action.in_(("claim", "assigned")),
            QueueAction.at >= local_day_start(now, zone),
        )
        .group_by(QueueAction.user_id)
        .subquery()
    )
    return holding, today


def _sales_headroom(
    session: Session, now: datetime, zone: ZoneInfo | None
) -> dict[int, tuple[str, int]]:
    """Active sales staff and how many more items each may take now: {id: (name, left)}."""
    holding, today = _usage_per_person(now, zone)
    stmt = (
        select(
            User.id,
            User.username,
            User.holding_cap - func.coalesce(holding.c.n, 0),
            User.daily_claim_cap - func.coalesce(today.c.n, 0),
        )
        .outerjoin(holding, holding.c.uid == User.id)
        .outerjoin(today, today.c.uid == User.id)
        .where(User.active.is_(True), User.role == UserRole.SALES.value)
        .order_by(User.id)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(of=User)
    out: dict[int, tuple[str, int]] = {}
    for uid, name, hold_left, day_left in session.execute(stmt):
        left = min(int(hold_left), int(day_left))
        if left > 0:
            out[int(uid)] = (str(name), left)
    return out


def _owners(session: Session, contact_ids: Iterable[int]) -> dict[int, int]:
    """contact id → the user who owns its first source (operator account owner or promoter)."""
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
    row = session.scalar(
        select(QueueAction.user_id)
        .where(QueueAction.action == "assigned", QueueAction.note == "by round_robin")
        .order_by(QueueAction.id.desc())
        .limit(1)
    )
    return None if row is None else int(row)


def assign_pool(
    engine: Engine,
    strategy: str,
    now: datetime | None = None,
    *,
    lease: timedelta = ASSIGN_LEASE,
    zone: ZoneInfo | None = None,
    actor: str = "system",
) -> dict[str, Any]:
    """Hand pool items to sales staff within their caps: round_robin, owner or load."""
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r} (expected one of {', '.join(STRATEGIES)})")
    now = now or utcnow()
    with transaction(engine, immediate=True) as session:
        _expire(session, now)
        room = _sales_headroom(session, now, zone)
        total = sum(left for _, left in room.values())
        if total == 0:
            return {"strategy": strategy, "assigned": 0, "by_user": {}}
        pick = (
            select(QueueItem.id, QueueItem.contact_id)
            .where(QueueItem.status == QueueStatus.POOL.value)
            .order_by(*_pool_order())
            .limit(total if strategy != "owner" else total * 20)
        )
        if is_postgres(session):
            pick = pick.with_for_update(skip_locked=True)
        items = [(int(i), int(c)) for i, c in session.execute(pick)]
        left = {uid: n for uid, (_, n) in room.items()}
        chosen: dict[int, list[int]] = {}
        if strategy == "owner":
            owners = _owners(session, (c for _, c in items))
            for item_id, contact_id in items:
                uid = owners.get(contact_id)
                if uid is not None and left.get(uid, 0) > 0:
                    chosen.setdefault(uid, []).append(item_id)
                    left[uid] -= 1
        elif strategy == "round_robin":
            order = sorted(left)
            last = _last_round_robin(session)
            start = next((k for k, uid in enumerate(order) if last is not None and uid > last), 0)
            pos = start
            for item_id, _ in items:
                for _ in range(len(order)):
                    uid = order[pos % len(order)]
                    pos += 1
                    if left[uid] > 0:
                        chosen.setdefault(uid, []).append(item_id)
                        left[uid] -= 1
                        break
                else:
                    break
        else:  # load: whoever holds least right now gets the next one
            load = {uid: _holding(session, uid) for uid in left}
            for item_id, _ in items:
                candidates = [uid for uid in left if left[uid] > 0]
                if not candidates:
                    break
                uid = min(candidates, key=lambda u: (load[u], u))
                chosen.setdefault(uid, []).append(item_id)
                left[uid] -= 1
                load[uid] += 1
        rows: list[dict[str, Any]] = []
        for uid, ids in chosen.items():
            session.execute(
                update(QueueItem)
                .where(QueueItem.id.in_(ids), QueueItem.status == QueueStatus.POOL.value)
                .values(**_claim_values(uid, now, lease))
                .execution_options(synchronize_session=False)
            )
            rows.extend(
                {
                    "item_id": i,
                    "user_id": uid,
                    "action": "assigned",
                    "note": f"by {strategy}",
                    "details": {"to_user_id": uid, "strategy": strategy},
                }
                for i in ids
            )
        _record(session, rows, actor=actor, now=now)
        return {
            "strategy": strategy,
            "assigned": len(rows),
            "by_user": {room[uid][0]: len(ids) for uid, ids in chosen.items()},
        }


# --- reading -----------------------------------------------------------------------------


def _source_match(column: Any, value: str) -> Any:
    return exists(
        select(literal(1))
        .select_from(Touch)
        .join(SourceInstance, SourceInstance.id == Touch.source_instance_id)
        .where(Touch.contact_id == QueueItem.contact_id, column == value)
    )


def list_queue(
    session: Session,
    *,
    view: str = "pool",
    user_id: int | None = None,
    source_kind: str | None = None,
    promoter: str | None = None,
    post: str | None = None,
    group: str | None = None,
    tag: str | None = None,
    tier: str | None = None,
    min_score: int | None = None,
    max_score: int | None = None,
    due_before: datetime | None = None,
    status: str | None = None,
    sort: str = "sla",
    descending: bool = False,
    limit: int = 50,
    offset: int = 0,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A page of queue items for a view (mine, pool, team, closed) with filters and a sort key.

    ``sort`` must be one of :data:`SORTS`; filters are bound values, never SQL.
    """
    now = now or utcnow()
    if sort not in SORTS:
        raise InputError(f"unknown sort {sort!r} (expected one of {', '.join(SORTS)})")
    limit = max(1, min(limit, 500))
    offset = max(0, offset)
    conds: list[Any] = []
    if view == "mine":
        if user_id is None:
            raise InputError("the 'mine' view needs a user")
        conds += [QueueItem.assignee_id == user_id, QueueItem.status.in_(HELD)]
    elif view == "pool":
        # Expired leases join the pool through the sweep (claims and expire_leases); an
        # OR here would make every pool page sort the whole table.
        conds.append(QueueItem.status == QueueStatus.POOL.value)
    elif view == "team":
        conds.append(QueueItem.status.in_(HELD))
    elif view == "closed":
        conds.append(QueueItem.status.in_((QueueStatus.WON.value, QueueStatus.LOST.value)))
    elif view != "all":
        raise InputError(f"unknown view {view!r} (expected mine, pool, team, closed or all)")
    if status:
        conds.append(QueueItem.status == status)
    if tier:
        conds.append(Contact.tier == tier)
    if min_score is not None:
        conds.append(Contact.score >= min_score)
    if max_score is not None:
        conds.append(Contact.score <= max_score)
    if due_before is not None:
        conds.append(QueueItem.sla_due_at <= due_before)
    if source_kind:
        conds.append(_source_match(SourceInstance.kind, source_kind))
    if promoter:
        conds.append(_source_match(SourceInstance.promoter, promoter))
    if post:
        conds.append(_source_match(SourceInstance.post, post))
    if group:
        conds.append(
            exists(
                select(literal(1))
                .select_from(Membership)
                .join(Community, Community.id == Membership.community_id)
                .where(Membership.contact_id == QueueItem.contact_id, Community.name == group)
            )
        )
    if tag:
        conds.append(
            exists().where(ContactTag.contact_id == QueueItem.contact_id, ContactTag.tag == tag)
        )
    col = SORTS[sort]
    # NULL SLAs sort last either way.
    order = [(col.desc() if descending else col.asc()).nulls_last(), QueueItem.id]
    base = (
        select(
            QueueItem.id,
            QueueItem.contact_id,
            QueueItem.status,
            QueueItem.priority,
            QueueItem.sla_due_at,
            QueueItem.lease_expires_at,
            QueueItem.snoozed_until,
            QueueItem.created_at,
            QueueItem.assignee_id,
            Contact.display_name,
            Contact.tier,
            Contact.score,
            User.username,
        )
        .join(Contact, Contact.id == QueueItem.contact_id)
        .outerjoin(User, User.id == QueueItem.assignee_id)
        .where(*conds)
    )
    rows = session.execute(base.order_by(*order).limit(limit + 1).offset(offset)).all()
    has_next = len(rows) > limit
    rows = rows[:limit]
    sources = _first_sources(session, [int(r.contact_id) for r in rows])
    items = []
    for r in rows:
        lease_over = r.lease_expires_at is not None and r.lease_expires_at < now
        held = r.status in HELD and not lease_over
        items.append(
            {
                "item_id": int(r.id),
                "contact_id": int(r.contact_id),
                "name": r.display_name,
                "tier": r.tier,
                "score": int(r.score),
                "status": r.status if held or r.status not in HELD else "pool",
                "priority": int(r.priority),
                "sla_due_at": r.sla_due_at,
                "overdue": r.sla_due_at is not None and r.sla_due_at < now,
                "lease_expires_at": r.lease_expires_at if held else None,
                "snoozed_until": r.snoozed_until,
                "assignee": r.username if held else None,
                "created_at": r.created_at,
                **sources.get(
                    int(r.contact_id), {"source_kind": None, "source": None, "promoter": None}
                ),
            }
        )
    return {
        "view": view,
        "sort": sort,
        "descending": descending,
        "limit": limit,
        "offset": offset,
        "has_next": has_next,
        "items": items,
    }


def _first_sources(session: Session, contact_ids: list[int]) -> dict[int, dict[str, Any]]:
    if not contact_ids:
        return {}
    first = first_touches(contact_ids)
    stmt = select(
        first.c.contact_id, SourceInstance.kind, SourceInstance.name, SourceInstance.promoter
    ).join(SourceInstance, SourceInstance.id == first.c.source_instance_id)
    return {
        int(cid): {"source_kind": kind, "source": name, "promoter": promoter}
        for cid, kind, name, promoter in session.execute(stmt)
    }


def filter_choices(session: Session) -> dict[str, list[str]]:
    """Values offered in the queue filters: source kinds, promoters, posts, groups, tags."""

    def distinct(col: Any, limit: int = 200) -> list[str]:
        rows = session.scalars(
            select(col).where(col.is_not(None)).distinct().order_by(col).limit(limit)
        )
        return [str(v) for v in rows]

    return {
        "source_kinds": distinct(SourceInstance.kind),
        "promoters": distinct(SourceInstance.promoter),
        "posts": distinct(SourceInstance.post),
        "groups": distinct(Community.name),
        "tags": distinct(ContactTag.tag),
    }


def item_for_contact(session: Session, contact_id: int) -> dict[str, Any] | None:
    """The open queue item of a contact (or its latest closed one), for the prospect page."""
    row = session.execute(
        select(QueueItem, User.username)
        .outerjoin(User, User.id == QueueItem.assignee_id)
        .where(QueueItem.contact_id == contact_id)
        .order_by(QueueItem.open_key.is_(None), QueueItem.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    item, username = row
    return _item_dict(item, username)


def _item_dict(item: QueueItem, username: str | None) -> dict[str, Any]:
    return {
        "item_id": item.id,
        "contact_id": item.contact_id,
        "status": item.status,
        "assignee_id": item.assignee_id,
        "assignee": username,
        "lease_expires_at": item.lease_expires_at,
        "sla_due_at": item.sla_due_at,
        "snoozed_until": item.snoozed_until,
        "priority": item.priority,
        "outcome_reason": item.outcome_reason,
        "closed_at": item.closed_at,
    }


def get_item(session: Session, item_id: int) -> dict[str, Any]:
    """One queue item with its holder; NotFound otherwise."""
    row = session.execute(
        select(QueueItem, User.username)
        .outerjoin(User, User.id == QueueItem.assignee_id)
        .where(QueueItem.id == item_id)
    ).first()
    if row is None:
        raise NotFound(f"queue item {item_id} does not exist")
    return _item_dict(row[0], row[1])


def item_actions(
    session: Session, item_ids: Sequence[int], limit: int = 100
) -> list[dict[str, Any]]:
    """The history of actions on queue items, newest first."""
    if not item_ids:
        return []
    rows = session.execute(
        select(QueueAction, User.username)
        .outerjoin(User, User.id == QueueAction.user_id)
        .where(QueueAction.item_id.in_(list(item_ids)))
        .order_by(QueueAction.at.desc(), QueueAction.id.desc())
        .limit(limit)
    ).all()
    return [
        {"item_id": a.item_id, "action": a.action, "user": name, "note": a.note, "at": a.at}
        for a, name in rows
    ]


def team_caps(
    session: Session, now: datetime | None = None, zone: ZoneInfo | None = None
) -> list[dict[str, Any]]:
    """Every active staff member's claim and holding caps with today's usage."""
    now = now or utcnow()
    holding, today = _usage_per_person(now, zone)
    stmt = (
        select(
            User.id,
            User.username,
            User.role,
            User.active,
            User.daily_claim_cap,
            User.holding_cap,
            func.coalesce(today.c.n, 0),
            func.coalesce(holding.c.n, 0),
        )
        .outerjoin(holding, holding.c.uid == User.id)
        .outerjoin(today, today.c.uid == User.id)
        .order_by(User.username)
    )
    return [
        {
            "id": int(uid),
            "username": name,
            "role": role,
            "active": bool(active),
            "daily_claim_cap": int(dcap),
            "claimed_today": int(claimed),
            "claims_left": max(0, int(dcap) - int(claimed)),
            "holding_cap": int(hcap),
            "holding": int(held),
            "holding_left": max(0, int(hcap) - int(held)),
        }
        for uid, name, role, active, dcap, hcap, claimed, held in session.execute(stmt)
    ]


def status_counts(session: Session) -> dict[str, int]:
    """How many queue items are in each status (for the page header)."""
    rows = session.execute(select(QueueItem.status, func.count()).group_by(QueueItem.status)).all()
    return {str(s): int(n) for s, n in rows}
