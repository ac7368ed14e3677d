"""The daily join plan for peer groups: per operator account, at most its remaining group_join
headroom in its own local day, reserved in the caps ledger when planned.

Each account is planned in its own transaction: the candidate groups are locked with ``FOR
UPDATE SKIP LOCKED`` (SQLite: ``BEGIN IMMEDIATE``) so two planners at once take different
groups, and the ledger's conditional upsert grants at most the headroom left, so together they
never plan more than the cap. Planned joins of a past day that were not done are marked missed
and their groups planned again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine, exists, or_, select, update
from sqlalchemy.orm import Session

from crm.core.db import dialect_insert, is_postgres, transaction
from crm.core.settings import Settings
from crm.core.vocabulary import CapAction, PeerStatus, PeerTaskKind, PeerTaskState, Platform
from crm.models import OperatorAccount, PeerGroup, PeerTask, utcnow
from crm.outreach.accounts import SendingAccount, load_limits, sending_accounts
from crm.outreach.ledger import Ask, account_subject, release, reserve_many
from crm.outreach.limits import Scope, local_day

JOIN_PLATFORMS = (Platform.WECHAT.value, Platform.WECOM.value)  # accounts that join groups


@dataclass(frozen=True)
class PlannedTask:
    """One task on an operator's list."""

    id: int
    kind: PeerTaskKind
    account: str
    day: date
    peer_group: str
    join_method: str | None
    join_ref: str | None
    contact_id: int | None
    text: str | None
    state: PeerTaskState
    due_at: datetime | None  # in the account's local time
    zone: str  # the account's time zone
    due_now: bool  # its time has come (doing it earlier is allowed)


def plan_joins(
    engine: Engine, *, settings: Settings, now: datetime | None = None, from_hour: int = 0
) -> list[PlannedTask]:
    """Plan today's peer-group joins for every operator account; returns the new tasks.

    ``from_hour``: only accounts whose local time is past this hour (each account is planned
    in its own morning, however often the flow runs)."""
    at = now or utcnow()
    with transaction(engine) as session:
        accounts = [
            a
            for a in sending_accounts(session, settings.zone).values()
            if a.platform in JOIN_PLATFORMS and at.astimezone(a.zone).hour >= from_hour
        ]
    out: list[PlannedTask] = []
    for acct in sorted(accounts, key=lambda a: a.id):
        with transaction(engine, immediate=True) as session:
            out += _plan_account(session, acct, at)
    return out


def _plan_account(session: Session, acct: SendingAccount, now: datetime) -> list[PlannedTask]:
    day = local_day(now, acct.zone)
    _mark_missed(session, acct.id, day)
    cap = load_limits(session).daily(acct.platform, Scope.ACCOUNT, "group_join", acct.id)
    if cap is None or cap <= 0:
        return []
    open_task = exists().where(
        PeerTask.kind == PeerTaskKind.JOIN.value,
        PeerTask.peer_group_id == PeerGroup.id,
        PeerTask.state == PeerTaskState.PLANNED.value,
    )
    stmt = (
        select(PeerGroup)
        .where(
            PeerGroup.status == PeerStatus.TO_JOIN.value,
            or_(PeerGroup.account_id == acct.id, PeerGroup.account_id.is_(None)),
            ~open_task,
        )
        .order_by(PeerGroup.account_id.is_(None), PeerGroup.id)  # its own groups first
        .limit(cap)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True, of=PeerGroup)
    candidates = list(session.scalars(stmt))
    if not candidates:
        return []
    subject, action = account_subject(acct.id), CapAction.GROUP_JOIN.value
    got = reserve_many(session, [Ask(subject, action, day, len(candidates), cap)], now=now)
    granted = got.get((subject, action, day), 0)
    chosen = candidates[:granted]
    rows = [
        {
            "kind": PeerTaskKind.JOIN.value,
            "key": f"group:{p.id}",
            "account_id": acct.id,
            "peer_group_id": p.id,
            "day": day,
            "state": PeerTaskState.PLANNED.value,
            "due_at": now,
            "created_at": now,
        }
        for p in chosen
    ]
    inserted: list[int] = []
    if rows:
        ins = dialect_insert(session, PeerTask).values(rows).on_conflict_do_nothing()
        inserted = [int(i) for i in session.scalars(ins.returning(PeerTask.id))]
    if granted > len(inserted):  # a group planned meanwhile: give its unit back
        release(session, subject, action, day, granted - len(inserted))
    ids = set(inserted)
    tasks = session.scalars(select(PeerTask).where(PeerTask.id.in_(ids))).all()
    by_group = {p.id: p for p in chosen}
    for t in tasks:
        by_group[t.peer_group_id].account_id = acct.id
    return [_task(t, acct, by_group[t.peer_group_id], now) for t in sorted(tasks, key=_id)]


def _id(t: PeerTask) -> int:
    return t.id


def _mark_missed(session: Session, account_id: int, day: date) -> None:
    session.execute(
        update(PeerTask)
        .where(
            PeerTask.account_id == account_id,
            PeerTask.state == PeerTaskState.PLANNED.value,
            PeerTask.day < day,
        )
        .values(state=PeerTaskState.MISSED.value)
    )


def task_list(
    session: Session,
    *,
    settings: Settings,
    account: str | None = None,
    now: datetime | None = None,
) -> list[PlannedTask]:
    """The operators' open tasks for their local today (one account's if named), by due time."""
    at = now or utcnow()
    accounts = sending_accounts(session, settings.zone)
    stmt = (
        select(PeerTask, PeerGroup)
        .join(PeerGroup, PeerGroup.id == PeerTask.peer_group_id)
        .where(PeerTask.state == PeerTaskState.PLANNED.value)
        .order_by(PeerTask.due_at, PeerTask.account_id, PeerTask.kind.desc(), PeerTask.id)
    )
    if account is not None:
        stmt = stmt.join(OperatorAccount, OperatorAccount.id == PeerTask.account_id).where(
            OperatorAccount.handle == account
        )
    out = []
    for t, p in session.execute(stmt):
        acct = accounts[t.account_id]
        if t.day == local_day(at, acct.zone):
            out.append(_task(t, acct, p, at))
    return out


def _task(t: PeerTask, acct: SendingAccount, p: PeerGroup, now: datetime) -> PlannedTask:
    return PlannedTask(
        id=t.id,
        kind=PeerTaskKind(t.kind),
        account=acct.handle,
        day=t.day,
        peer_group=p.name,
        join_method=p.join_method,
        join_ref=p.join_ref,
        contact_id=t.contact_id,
        text=t.text,
        state=PeerTaskState(t.state),
        due_at=t.due_at.astimezone(acct.zone) if t.due_at else None,
        zone=acct.zone.key,
        due_now=t.due_at is None or t.due_at <= now,
    )
