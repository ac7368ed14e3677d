"""Peer groups (同行群) as data: adding one, listing them, and recording that an operator
account joined or left it (a join is counted in the account's group_join ledger)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from crm.core.audit import audit
from crm.core.db import transaction
from crm.core.errors import Conflict, InputError, NotFound
from crm.core.settings import Settings
from crm.core.vocabulary import CapAction, JoinMethod, PeerStatus, PeerTaskKind, PeerTaskState
from crm.models import OperatorAccount, PeerGroup, PeerTask, utcnow
from crm.outreach.accounts import load_limits, sending_accounts
from crm.outreach.ledger import account_subject, release, reserve
from crm.outreach.limits import Scope, local_day


@dataclass(frozen=True)
class PeerView:
    """A peer group as an operator sees it."""

    id: int
    name: str
    community: str | None
    join_method: JoinMethod
    join_ref: str | None
    theme: str | None
    notes: str | None
    status: PeerStatus
    account: str | None
    joined_at: datetime | None
    left_at: datetime | None
    requested_at: datetime | None = None
    request_note: str | None = None


def add_peer(
    engine: Engine,
    name: str,
    *,
    community: str | None = None,
    join_method: JoinMethod | str = JoinMethod.QR,
    join_ref: str | None = None,
    theme: str | None = None,
    notes: str | None = None,
    account: str | None = None,
    actor: str = "cli",
) -> PeerView:
    """Add a peer group to join (optionally already assigned to one of our accounts)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InputError("error.outreach.peer_name")
    try:
        method = JoinMethod(join_method)
    except ValueError as exc:
        raise InputError("error.outreach.peer_join", method=str(join_method)) from exc
    if notes and len(notes) > 1000:
        raise InputError("error.outreach.peer_notes", limit=1000)
    with transaction(engine) as session:
        if session.scalar(select(PeerGroup.id).where(PeerGroup.name == name)) is not None:
            raise Conflict("error.outreach.peer_exists", name=name)
        peer = PeerGroup(
            name=name,
            community=community,
            join_method=method.value,
            join_ref=join_ref,
            theme=theme,
            notes=notes,
            account_id=account_id(session, account) if account else None,
        )
        session.add(peer)
        session.flush()
        audit(session, actor, "peer.add", object_type="peer_group", object_id=peer.id)
        return _view(peer, account)


def list_peers(session: Session, *, status: PeerStatus | None = None) -> list[PeerView]:
    """Every peer group (or those of one status), by name."""
    stmt = select(PeerGroup, OperatorAccount.handle).outerjoin(
        OperatorAccount, OperatorAccount.id == PeerGroup.account_id
    )
    if status is not None:
        stmt = stmt.where(PeerGroup.status == status.value)
    return [_view(p, handle) for p, handle in session.execute(stmt.order_by(PeerGroup.name))]


def mark_joined(
    engine: Engine,
    name: str,
    *,
    settings: Settings,
    account: str | None = None,
    now: datetime | None = None,
) -> PeerView:
    """Record that an account joined a peer group: its planned task is done; an unplanned join
    takes a unit of the account's group_join headroom today, refused when none is left."""
    at = now or utcnow()
    with transaction(engine, immediate=True) as session:
        peer = find_peer(session, name)
        acct_id = account_id(session, account) if account else peer.account_id
        if acct_id is None:
            raise InputError("error.outreach.peer_account", name=peer.name)
        acct = sending_accounts(session, settings.zone)[acct_id]
        day = local_day(at, acct.zone)
        task = session.scalar(
            select(PeerTask).where(
                PeerTask.kind == PeerTaskKind.JOIN.value,
                PeerTask.key == f"group:{peer.id}",
                PeerTask.account_id == acct_id,
                PeerTask.day == day,
                PeerTask.state == PeerTaskState.PLANNED.value,
            )
        )
        if task is None:
            cap = load_limits(session).daily(acct.platform, Scope.ACCOUNT, "group_join", acct_id)
            subject = account_subject(acct_id)
            if cap is not None and not reserve(
                session, subject, CapAction.GROUP_JOIN.value, cap=cap, day=day, now=at
            ):
                raise Conflict(
                    "error.outreach.peer_no_headroom",
                    account=acct.handle,
                    day=day.isoformat(),
                    cap=cap,
                    name=peer.name,
                )
        else:
            task.state, task.done_at = PeerTaskState.DONE.value, at
        peer.status, peer.account_id, peer.joined_at = PeerStatus.JOINED.value, acct_id, at
        audit(session, "cli", "peer.joined", object_type="peer_group", object_id=peer.id, at=at)
        return _view(peer, acct.handle)


def mark_left(
    engine: Engine, name: str, *, removed: bool = False, now: datetime | None = None
) -> PeerView:
    """Record that our account left (or was removed from) a peer group."""
    at = now or utcnow()
    status = PeerStatus.REMOVED if removed else PeerStatus.LEFT
    with transaction(engine) as session:
        peer = find_peer(session, name)
        peer.status, peer.left_at = status.value, at
        # Friend requests not yet sent from it are dropped with the group.
        session.execute(
            update(PeerTask)
            .where(PeerTask.peer_group_id == peer.id, PeerTask.state == PeerTaskState.PLANNED)
            .values(state=PeerTaskState.MISSED.value)
        )
        audit(session, "cli", f"peer.{status}", object_type="peer_group", object_id=peer.id, at=at)
        handle = session.scalar(
            select(OperatorAccount.handle).where(OperatorAccount.id == peer.account_id)
        )
        return _view(peer, handle)


# Where asking to be let in makes sense: a group not joined yet, or one we left of our own
# accord. A group whose owner removed us is not asked again until an operator resets it.
REQUESTABLE = (PeerStatus.TO_JOIN.value, PeerStatus.LEFT.value)


def mark_requested(
    engine: Engine,
    name: str,
    *,
    account: str | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> PeerView:
    """Record that an account asked to be let in (the owner's approval, an introduction):
    no join is planned for the group until it is marked joined or reset; a join planned for
    it and not done is dropped and its group_join unit given back."""
    at = now or utcnow()
    if note and len(note) > 500:
        raise InputError("error.outreach.peer_note", limit=500)
    with transaction(engine, immediate=True) as session:
        peer = find_peer(session, name)
        if peer.status not in REQUESTABLE:
            _refuse_request(peer)
        acct_id = account_id(session, account) if account else peer.account_id
        planned = session.execute(
            update(PeerTask)
            .where(
                PeerTask.kind == PeerTaskKind.JOIN.value,
                PeerTask.peer_group_id == peer.id,
                PeerTask.state == PeerTaskState.PLANNED.value,
            )
            .values(state=PeerTaskState.MISSED.value)
            .returning(PeerTask.account_id, PeerTask.day)
        ).all()
        for task_account, day in planned:
            release(session, account_subject(task_account), CapAction.GROUP_JOIN.value, day)
        peer.status, peer.account_id = PeerStatus.REQUESTED.value, acct_id
        peer.requested_at, peer.request_note = at, note
        audit(session, "cli", "peer.requested", object_type="peer_group", object_id=peer.id, at=at)
        handle = session.scalar(
            select(OperatorAccount.handle).where(OperatorAccount.id == peer.account_id)
        )
        return _view(peer, handle)


def reset_peer(engine: Engine, name: str) -> PeerView:
    """Put a requested, left or removed peer group back to join (planning takes it again)."""
    with transaction(engine) as session:
        peer = find_peer(session, name)
        if peer.status == PeerStatus.TO_JOIN.value:
            raise Conflict("error.outreach.peer_reset_to_join", name=peer.name)
        if peer.status == PeerStatus.JOINED.value:
            raise Conflict("error.outreach.peer_reset_joined", name=peer.name)
        peer.status, peer.requested_at, peer.request_note = PeerStatus.TO_JOIN.value, None, None
        audit(session, "cli", "peer.reset", object_type="peer_group", object_id=peer.id)
        handle = session.scalar(
            select(OperatorAccount.handle).where(OperatorAccount.id == peer.account_id)
        )
        return _view(peer, handle)


def _refuse_request(peer: PeerGroup) -> NoReturn:
    if peer.status == PeerStatus.REQUESTED.value:
        raise Conflict("error.outreach.peer_requested", name=peer.name)
    if peer.status == PeerStatus.JOINED.value:
        raise Conflict("error.outreach.peer_joined", name=peer.name)
    raise Conflict("error.outreach.peer_removed", name=peer.name)


def find_peer(session: Session, ref: str) -> PeerGroup:
    """A peer group by name or id (NotFound names it)."""
    peer = session.scalar(select(PeerGroup).where(PeerGroup.name == ref))
    if peer is None and ref.isdigit() and len(ref) < 19:  # an id fits in a bigint
        peer = session.get(PeerGroup, int(ref))
    if peer is None:
        raise NotFound("error.outreach.peer_missing", ref=ref)
    return peer


def account_id(session: Session, handle: str) -> int:
    """The id of the operator account with this handle."""
    ids = session.scalars(select(OperatorAccount.id).where(OperatorAccount.handle == handle)).all()
    if not ids:
        raise NotFound("error.account_missing", handle=handle)
    if len(ids) > 1:
        raise InputError("error.account_ambiguous", handle=handle)
    return int(ids[0])


def _view(p: PeerGroup, handle: str | None) -> PeerView:
    return PeerView(
        id=p.id,
        name=p.name,
        community=p.community,
        join_method=JoinMethod(p.join_method),
        join_ref=p.join_ref,
        theme=p.theme,
        notes=p.notes,
        status=PeerStatus(p.status),
        account=handle,
        joined_at=p.joined_at,
        left_at=p.left_at,
        requested_at=p.requested_at,
        request_note=p.request_note,
    )
