"""Manager and admin pages: assignment, claim limits, account headroom, audit, PIPL."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import Field
from starlette.responses import Response

from crm.compliance.privacy import erase_contact
from crm.core.db import transaction
from crm.core.errors import InputError
from crm.intake.quarantine import dismiss, list_quarantine
from crm.models import User, utcnow
from crm.outreach.accounts import usage_today
from crm.sales.assign import assign as assign_item
from crm.sales.assign import assign_pool as assign_the_pool
from crm.sales.claim_usage import set_claim_limits, team_claim_limits
from crm.sales.users import StaffUser, list_users
from crm.sales.vocabulary import AssignStrategy
from crm.sales.workspace import audit_page, export_for
from flows.i18n import translator
from flows.i18n.quarantine_reasons import quarantine_reason_text
from flows.web.audit_details import detail_lines
from flows.web.breakdown import word_for
from flows.web.common import (
    ID_MAX,
    PathId,
    back,
    current_user,
    engine_of,
    lang_of,
    local_moment,
    render,
    require_admin,
    require_manager,
    safe_next,
    settings_of,
)

router = APIRouter()
QUARANTINE_PAGE = 200


@router.post("/queue/items/{item_id}/assign")
def assign(
    request: Request,
    item_id: PathId,
    user: StaffUser = Depends(current_user),
    to_user: int = Form(..., ge=1, le=ID_MAX),
    next: str | None = Form(None),
) -> Response:
    """Assign or reassign a prospect to a person."""
    require_manager(user)
    assign_item(engine_of(request), item_id, to_user, user.id)
    return back(safe_next(next, "/queue?view=team"))


@router.get("/manage/team", response_class=HTMLResponse)
def team(request: Request, user: StaffUser = Depends(current_user)) -> Response:
    """Each person's claim limits and today's usage; set them; hand out the pool."""
    require_manager(user)
    with transaction(engine_of(request)) as session:
        rows = team_claim_limits(session, utcnow(), zone=settings_of(request).zone)
    return render(request, "team.html", rows=rows, strategies=[s.value for s in AssignStrategy])


@router.post("/manage/users/{user_id}/caps")
def caps(
    request: Request,
    user_id: PathId,
    user: StaffUser = Depends(current_user),
    claims: int = Form(..., ge=0, le=10_000),
    holding: int = Form(..., ge=0, le=10_000),
) -> Response:
    """Set a person's daily claim limit and holding limit."""
    require_manager(user)
    with transaction(engine_of(request)) as session:
        target = session.get(User, user_id)
        if target is None:
            raise InputError("error.web.user_missing", user_id=user_id)
        name = target.username
    set_claim_limits(engine_of(request), name, claims=claims, holding=holding, actor=user.username)
    return back("/manage/team")


@router.post("/manage/assign-pool")
def assign_pool(
    request: Request,
    user: StaffUser = Depends(current_user),
    strategy: str = Form(...),
) -> Response:
    """Hand pool items to sales staff within their claim limits."""
    require_manager(user)
    result = assign_the_pool(
        engine_of(request), strategy, zone=settings_of(request).zone, actor=user.username
    )
    return back(f"/manage/team?assigned={result.assigned}")


@router.get("/manage/accounts", response_class=HTMLResponse)
def accounts(request: Request, user: StaffUser = Depends(current_user)) -> Response:
    """Each operator account's cap usage and headroom today."""
    require_manager(user)
    with transaction(engine_of(request)) as session:
        rows = usage_today(session, zone=settings_of(request).zone)
    t = translator(lang_of(request))
    return render(request, "accounts.html", rows=rows, word=lambda p, c: word_for(t, p, c))


# The audit filter offers families of actions (a prefix of the code), each named in words;
# "contact" takes contact.* and contacts.*, "log" login and logout.
AUDIT_FAMILIES = (
    "queue.",
    "contact",
    "peer.",
    "group.",
    "user.",
    "log",
    "campaign.",
    "alert.",
    "note.",
    "quarantine.",
    "tier.",
)


@router.get("/manage/audit", response_class=HTMLResponse)
def audit_log(
    request: Request,
    user: StaffUser = Depends(current_user),
    actor: str | None = Query(None, max_length=100),
    action: str | None = Query(None, max_length=64),
    before: int | None = Query(None, ge=1, le=ID_MAX),
) -> Response:
    """The audit log, newest first."""
    require_manager(user)
    with transaction(engine_of(request)) as session:
        page = audit_page(session, actor=actor or None, action=action or None, before_id=before)
        users = {u.id: u.username for u in list_users(session)}
    t, zone = translator(lang_of(request)), settings_of(request).zone
    details = {
        e.id: detail_lines(
            t, e.action, e.details, when=lambda v: local_moment(v, zone), users=users
        )
        for e in page.entries
    }
    return render(
        request,
        "audit.html",
        page=page,
        actor=actor or "",
        action=action or "",
        people=list(users.values()),
        families=AUDIT_FAMILIES,
        details=details,
        zone_name=settings_of(request).timezone,
    )


@router.get("/manage/quarantine", response_class=HTMLResponse)
def quarantine(
    request: Request,
    user: StaffUser = Depends(current_user),
    origin: str | None = Query(None, max_length=200),
    show_all: bool = Query(False, alias="all"),
) -> Response:
    """Rows that could not be imported and are still open (or all of them), newest first."""
    require_manager(user)
    with transaction(engine_of(request)) as session:
        rows = list_quarantine(
            session, limit=QUARANTINE_PAGE, include_resolved=show_all, origin=origin or None
        )
    return render(
        request,
        "quarantine.html",
        rows=rows,
        origin=origin or "",
        show_all=show_all,
        limit=QUARANTINE_PAGE,
        reason=lambda row: quarantine_reason_text(
            translator(lang_of(request)), row.reason_key, row.reason_params, row.reason
        ),
    )


@router.post("/manage/quarantine/dismiss")
def quarantine_dismiss(
    request: Request,
    user: StaffUser = Depends(current_user),
    ids: list[Annotated[int, Field(ge=1, le=ID_MAX)]] = Form([]),
    note: str = Form("", max_length=400),
) -> Response:
    """Close the chosen rows nobody will correct, with the note saying why."""
    require_manager(user)
    with transaction(engine_of(request)) as session:
        closed = dismiss(session, ids, actor=user.username, note=note)
    return back(f"/manage/quarantine?dismissed={closed.count}")


@router.get("/admin/contacts/{contact_id}/export")
def export(
    request: Request, contact_id: PathId, user: StaffUser = Depends(current_user)
) -> Response:
    """Everything held on one contact, as a JSON download (admins)."""
    require_admin(user)
    with transaction(engine_of(request)) as session:
        data = export_for(session, contact_id, actor=user.username)
    body = json.dumps(data, ensure_ascii=False, indent=2, default=_json_default)
    return Response(
        body,
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="contact-{int(contact_id)}.json"',
            "Cache-Control": "no-store",
        },
    )


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


@router.post("/admin/contacts/{contact_id}/erase")
def erase(
    request: Request,
    contact_id: PathId,
    user: StaffUser = Depends(current_user),
    confirm: str = Form(""),
) -> Response:
    """Erase a contact's personal data on request (PIPL); needs the confirmation box."""
    require_admin(user)
    if confirm != "yes":
        raise InputError("error.web.erase_unconfirmed")
    erase_contact(engine_of(request), contact_id, actor=user.username)
    return back(f"/prospects/{contact_id}")
