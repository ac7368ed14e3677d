"""The operators' peer-group list: today's joins and friend requests per account, recorded
from the page (joined; request sent, accepted or ignored)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response

from crm.core.db import transaction
from crm.core.vocabulary import PeerStatus, PeerTaskState
from crm.outreach.peer_plan import task_list
from crm.outreach.peer_requests import record_request
from crm.outreach.peers import list_peers, mark_joined
from crm.sales.users import StaffUser
from flows.web.common import PathId, back, current_user, engine_of, render, settings_of

router = APIRouter()


@router.get("/peers", response_class=HTMLResponse)
def peers_page(
    request: Request,
    user: StaffUser = Depends(current_user),
    account: str | None = Query(None, max_length=100),
) -> Response:
    """Today's peer-group tasks (one account's with ``account``), in each account's local day."""
    settings = settings_of(request)
    with transaction(engine_of(request)) as session:
        tasks = task_list(session, settings=settings, account=account or None)
        asked = [
            p
            for p in list_peers(session, status=PeerStatus.REQUESTED)
            if not account or p.account == account
        ]
    accounts = sorted({t.account for t in tasks})
    return render(
        request, "peers.html", tasks=tasks, account=account, accounts=accounts, asked=asked
    )


@router.post("/peers/joined")
def joined(
    request: Request,
    user: StaffUser = Depends(current_user),
    group: str = Form(..., min_length=1, max_length=200),
    account: str = Form(..., min_length=1, max_length=100),
) -> Response:
    """Record that an account joined the peer group of its task."""
    mark_joined(engine_of(request), group, settings=settings_of(request), account=account)
    return back("/peers")


@router.post("/peers/requests/{task_id}")
def request_outcome(
    request: Request,
    task_id: PathId,
    user: StaffUser = Depends(current_user),
    outcome: PeerTaskState = Form(...),
) -> Response:
    """Record a friend request as sent, accepted or ignored."""
    record_request(engine_of(request), task_id, outcome)
    return back("/peers")
