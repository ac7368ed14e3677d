"""Friend requests to members harvested in peer groups (私加好友): planned per operator
account under its daily friend_add cap (reserved in the caps ledger when planned), each with
the purpose line stated up front (添加时直接表明目的) from the ``peer_friend_request`` template;
the operator sends them by hand and records whether they were accepted or ignored.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, exists, select
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
from crm.models import Consent, Contact, PeerGroup, PeerTask, Touch, utcnow
from crm.outreach.accounts import SendingAccount, load_limits, sending_accounts
from crm.outreach.ledger import Ask, account_subject, release, reserve_many
from crm.outreach.limits import Scope, local_day
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
    cap = load_limits(session).daily(acct.platform, Scope.ACCOUNT, "friend_add", acct.id)
    if cap is None or cap <= 0:
        return 0
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
            PeerGroup.account_id == acct.id,
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
    candidates = list(seen.items())[:cap]
    if not candidates:
        return 0
    subject, action = account_subject(acct.id), CapAction.FRIEND_ADD.value
    got = reserve_many(session, [Ask(subject, action, day, len(candidates), cap)], now=now)
    granted = got.get((subject, action, day), 0)
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
            "created_at": now,
        }
        for cid, (name, pid, pname) in candidates[:granted]
    ]
    inserted = 0
    if rows:
        ins = dialect_insert(session, PeerTask).values(rows).on_conflict_do_nothing()
        inserted = len(session.scalars(ins.returning(PeerTask.id)).all())
    if granted > inserted:
        release(session, subject, action, day, granted - inserted)
    return inserted


def record_request(
    engine: Engine, task_id: int, outcome: PeerTaskState, *, now: datetime | None = None
) -> None:
    """Record a friend request as sent (done), accepted or ignored."""
    if outcome not in RECORDABLE:
        raise InputError(f"outcome {outcome!r}: expected done, accepted or ignored")
    with transaction(engine) as session:
        task = session.get(PeerTask, task_id)
        if task is None or task.kind != PeerTaskKind.FRIEND_REQUEST.value:
            raise NotFound(f"friend request task {task_id} does not exist")
        task.state = outcome.value
        task.done_at = task.done_at or now or utcnow()
