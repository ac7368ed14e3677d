"""Friend requests to members harvested in peer groups (私加好友): planned per operator
account under its daily friend_add cap (reserved in the caps ledger when planned), each with
the purpose line stated up front (添加时直接表明目的) from the ``peer_friend_request`` template;
the operator sends them by hand and records whether they were accepted or ignored.

Each request is due at its own time, spaced by the account's friend_add pacing interval from
the account's latest planned or done one, within its local day. The ledger row is reserved
before the latest one is read, so a second planner for the account waits for the first to
commit and then plans after its slots.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, exists, func, select, update
from sqlalchemy.orm import Session

from crm.core.db import dialect_insert, is_postgres, transaction
from crm.core.errors import InputError, NotFound
from crm.core.settings import Settings
from crm.core.vocabulary import (
    CapAction,
    ContactStatus,
    PeerStatus,
    PeerTaskKind,
    PeerTaskState,
)
from crm.models import CapUsage, Consent, Contact, PeerGroup, PeerTask, Touch, utcnow
from crm.outreach.accounts import SendingAccount, load_limits, sending_accounts
from crm.outreach.ledger import Ask, account_subject, release, reserve_many
from crm.outreach.limits import Scope, local_day, next_day_start, paced_slots
from crm.outreach.peer_plan import JOIN_PLATFORMS
from crm.outreach.templates import MessageTemplate, load

TEMPLATE = "peer_friend_request"
RECORDABLE = (PeerTaskState.DONE, PeerTaskState.ACCEPTED, PeerTaskState.IGNORED)


def plan_friend_requests(
    engine: Engine,
    *,
    settings: Settings,
    purpose: str | None = None,
    locale: str | None = None,
    now: datetime | None = None,
    from_hour: int = 0,
) -> int:
    """Plan today's friend requests for every account in a peer group; returns how many
    (``from_hour``: only accounts whose local time is past this hour)."""
    at = now or utcnow()
    template = load(TEMPLATE, locale=locale, operator_dir=settings.templates_dir)
    with transaction(engine) as session:
        accounts = [
            a
            for a in sending_accounts(session, settings.zone).values()
            if a.platform in JOIN_PLATFORMS and at.astimezone(a.zone).hour >= from_hour
        ]
    total = 0
    for acct in sorted(accounts, key=lambda a: a.id):
        with transaction(engine, immediate=True) as session:
            total += _plan_account(session, acct, at, template, purpose)
    return total


def _plan_account(
    session: Session,
    acct: SendingAccount,
    now: datetime,
    template: MessageTemplate,
    purpose: str | None,
) -> int:
    day = local_day(now, acct.zone)
    limits = load_limits(session)
    cap = limits.daily(acct.platform, Scope.ACCOUNT, CapAction.FRIEND_ADD.value, acct.id)
    if cap is None or cap <= 0:
        return 0
    interval = limits.interval(acct.platform, CapAction.FRIEND_ADD.value, acct.id)
    candidates = _candidates(session, acct.id, cap)
    if not candidates:
        return 0
    subject, action = account_subject(acct.id), CapAction.FRIEND_ADD.value
    paced_at = session.scalar(  # a friend_add sent by dispatch paces these too
        select(CapUsage.last_at).where(
            CapUsage.subject == subject, CapUsage.action == action, CapUsage.day == day
        )
    )
    got = reserve_many(session, [Ask(subject, action, day, len(candidates), cap)], now=now)
    granted = got.get((subject, action, day), 0)
    # Read under the ledger row's lock: the latest request a planner before us committed.
    last = max((t for t in (_latest_request(session, acct.id), paced_at) if t), default=None)
    slots = paced_slots(now, last, interval, granted, next_day_start(day, acct.zone))
    rows = [
        {
            "kind": PeerTaskKind.FRIEND_REQUEST.value,
            "key": f"contact:{cid}",
            "account_id": acct.id,
            "peer_group_id": pid,
            "contact_id": cid,
            "day": day,
            "state": PeerTaskState.PLANNED.value,
            "text": template.render(
                {
                    "contact": {"id": cid, "name": name},
                    "account": acct.handle,
                    "peer_group": pname,
                    "purpose": purpose,
                }
            )[:1000],
            "due_at": due,
            "created_at": now,
        }
        for (cid, (name, pid, pname)), due in zip(candidates, slots, strict=False)
    ]
    inserted: list[datetime] = []
    if rows:
        ins = dialect_insert(session, PeerTask).values(rows).on_conflict_do_nothing()
        inserted = [d for d in session.scalars(ins.returning(PeerTask.due_at)) if d]
    if granted > len(inserted):  # past the day's end, or planned meanwhile: give units back
        release(session, subject, action, day, granted - len(inserted))
    if inserted:
        session.execute(
            update(CapUsage)
            .where(CapUsage.subject == subject, CapUsage.action == action, CapUsage.day == day)
            .values(last_at=max(inserted))
        )
    return len(inserted)


def _candidates(
    session: Session, account_id: int, cap: int
) -> list[tuple[int, tuple[str | None, int, str]]]:
    # Active members harvested in the account's joined groups, not asked yet: (contact, (name,
    # peer group id, peer group name)), each contact once.
    asked = exists().where(
        PeerTask.kind == PeerTaskKind.FRIEND_REQUEST.value,
        PeerTask.contact_id == Contact.id,
        PeerTask.state != PeerTaskState.MISSED.value,
    )
    opted_out = exists().where(Consent.contact_id == Contact.id, Consent.kind == "opt_out")
    stmt = (
        select(Contact.id, Contact.display_name, PeerGroup.id, PeerGroup.name)
        .join(Touch, Touch.contact_id == Contact.id)
        .join(PeerGroup, PeerGroup.source_instance_id == Touch.source_instance_id)
        .where(
            PeerGroup.account_id == account_id,
            PeerGroup.status == PeerStatus.JOINED.value,
            Contact.status == ContactStatus.ACTIVE.value,
            ~asked,
            ~opted_out,
        )
        .order_by(Contact.id)
        .limit(cap * 4)  # a contact harvested in several groups appears once per group
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True, of=Contact)
    seen: dict[int, tuple[str | None, int, str]] = {}
    for cid, name, pid, pname in session.execute(stmt):
        seen.setdefault(int(cid), (name, int(pid), pname))
    return list(seen.items())[:cap]


def _latest_request(session: Session, account_id: int) -> datetime | None:
    # The account's latest friend request, planned (its due time) or done (when it was done).
    live = (
        PeerTask.account_id == account_id,
        PeerTask.kind == PeerTaskKind.FRIEND_REQUEST.value,
        PeerTask.state != PeerTaskState.MISSED.value,
    )
    due = session.scalar(select(func.max(PeerTask.due_at)).where(*live))
    done = session.scalar(select(func.max(PeerTask.done_at)).where(*live))
    return max((t for t in (due, done) if t), default=None)


def record_request(
    engine: Engine, task_id: int, outcome: PeerTaskState, *, now: datetime | None = None
) -> None:
    """Record a friend request as sent (done), accepted or ignored."""
    if outcome not in RECORDABLE:
        raise InputError("error.outreach.request_outcome", outcome=str(outcome))
    with transaction(engine) as session:
        task = session.get(PeerTask, task_id)
        if task is None or task.kind != PeerTaskKind.FRIEND_REQUEST.value:
            raise NotFound("error.outreach.request_missing", task_id=task_id)
        task.state = outcome.value
        task.done_at = task.done_at or now or utcnow()
