"""Login and the sales pages: queues, a prospect, claims, outcomes, notes, follow-ups."""

from __future__ import annotations

import math
from collections.abc import Callable

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from crm.contacts.tag_text import split_tags
from crm.contacts.tags import tag_contacts, untag_contacts
from crm.core.audit import audit
from crm.core.db import transaction
from crm.core.errors import InputError
from crm.core.settings import Settings
from crm.core.vocabulary import QueueStatus
from crm.models import utcnow
from crm.routing.rules import configured_rules
from crm.sales import claims, outcomes
from crm.sales.access import check_campaign_selection, check_may_act_on_contacts, holds_contact
from crm.sales.claim_usage import claim_limit_status
from crm.sales.listing import SORTS, QueueFilters, filter_choices, list_queue
from crm.sales.users import StaffUser, authenticate, end_sessions, list_users
from crm.sales.vocabulary import OUTCOMES, QueueView
from crm.sales.workspace import add_note, prospect_page
from flows import trigger
from flows.i18n import keyed_text, translator
from flows.summaries import step_words
from flows.web.auth import LoginThrottle, client_address, tokens_match
from flows.web.breakdown import explain, word_for
from flows.web.common import (
    SCORE_MAX,
    PathId,
    back,
    bounded_int,
    check_id,
    current_user,
    engine_of,
    lang_of,
    local_time,
    render,
    safe_next,
    sessions_of,
    settings_of,
)

login_router = APIRouter()
router = APIRouter()

PAGE_SIZE = 50
VIEWS = (QueueView.MINE, QueueView.POOL, QueueView.TEAM, QueueView.CLOSED)


# --- login -----------------------------------------------------------------------------------


def _login_page(
    request: Request, *, status: int = 200, error: str | None = None, username: str = ""
) -> Response:
    sessions = sessions_of(request)
    token = sessions.prelogin_token(request)
    response = render(
        request, "login.html", status=status, error=error, username=username, login_token=token
    )
    sessions.set_prelogin(response, token)
    return response


@login_router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    """The login form (with its own CSRF token)."""
    if sessions_of(request).read(request) is not None:
        return back("/queue")
    return _login_page(request)


@login_router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    username: str = Form("", max_length=100),
    password: str = Form("", max_length=1000),
    csrf_token: str = Form(""),
) -> Response:
    """Check the password (throttled per user and address) and start a session."""
    sessions = sessions_of(request)
    if not tokens_match(sessions.read_prelogin(request), csrf_token):
        return PlainTextResponse("CSRF token missing or wrong", status_code=403)
    throttle: LoginThrottle = request.app.state.throttle
    address = client_address(
        request.client.host if request.client else None,
        request.headers.get("x-forwarded-for"),
        request.app.state.trusted_proxies,
    )
    t = translator(lang_of(request))
    wait = throttle.admit(username, address)
    if wait > 0:
        page = _login_page(request, status=429, error=t("too_many"), username=username)
        page.headers["Retry-After"] = str(math.ceil(wait))
        return page
    user = await run_in_threadpool(authenticate, engine_of(request), username, password)
    if user is None:
        return _login_page(request, status=401, error=t("bad_login"), username=username)
    throttle.succeeded(username, address)
    redirect = RedirectResponse("/queue", status_code=303)
    sessions.issue(redirect, user.id, user.session_version)
    await run_in_threadpool(_audit_event, request, user, "login")
    return redirect


def _audit_event(request: Request, user: StaffUser, action: str) -> None:
    with transaction(engine_of(request)) as session:
        audit(session, user.username, action, object_type="user", object_id=user.id)


@router.post("/logout")
def logout(request: Request, user: StaffUser = Depends(current_user)) -> Response:
    """End the session, and every other session of this user."""
    end_sessions(engine_of(request), user.id, actor=user.username)
    response = back("/login")
    sessions_of(request).clear(response)
    return response


# --- the queue -------------------------------------------------------------------------------


@router.get("/queue", response_class=HTMLResponse)
def queue_page(
    request: Request,
    user: StaffUser = Depends(current_user),
    view: str = Query(QueueView.MINE.value),
    source_kind: str | None = Query(None, max_length=32),
    promoter: str | None = Query(None, max_length=100),
    post: str | None = Query(None, max_length=500),
    group: str | None = Query(None, max_length=200),
    tag: str | None = Query(None, max_length=40),
    tier: str | None = Query(None, max_length=16),
    min_score: str | None = Query(None),
    max_score: str | None = Query(None),
    due_before: str | None = Query(None, max_length=32),
    sort: str = Query("sla"),
    desc: str | None = Query(None),
    page: int = Query(1, ge=1, le=100_000),
    msg: str | None = Query(None, max_length=300),
) -> Response:
    """My queue, the pool, the team's held items or closed ones, filtered and sorted."""
    view = view if view in VIEWS else QueueView.MINE
    sort = sort if sort in SORTS else "sla"
    filters = QueueFilters(
        source_kind=source_kind or None,
        promoter=promoter or None,
        post=post or None,
        group=group or None,
        tag=tag or None,
        tier=tier or None,
        min_score=bounded_int(min_score, "min_score", -SCORE_MAX, SCORE_MAX),
        max_score=bounded_int(max_score, "max_score", -SCORE_MAX, SCORE_MAX),
        due_before=local_time(due_before, "due_before", settings_of(request).zone),
    )
    now = utcnow()  # a GET writes nothing: run-out leases are listed as available
    with transaction(engine_of(request)) as session:
        data = list_queue(
            session,
            view=view,
            user_id=user.id,
            filters=filters,
            sort=sort,
            descending=bool(desc),
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
            now=now,
        )
        choices = filter_choices(session)
        limits = claim_limit_status(session, user.id, now, zone=settings_of(request).zone)
        staff = [u for u in list_users(session) if u.active] if user.is_manager else []
    params = {
        "view": view,
        "source_kind": source_kind,
        "promoter": promoter,
        "post": post,
        "group": group,
        "tag": tag,
        "tier": tier,
        "min_score": min_score,
        "max_score": max_score,
        "due_before": due_before,
        "sort": sort,
        "desc": desc,
    }
    return render(
        request,
        "queue.html",
        data=data,
        view=view,
        views=VIEWS,
        params=params,
        page=page,
        choices=choices,
        limits=limits,
        sorts=list(SORTS),
        word=word_for,
        staff=staff,
        campaigns=_campaign_names(settings_of(request)),
        msg=msg,
        now=now,
    )


@router.post("/queue/claim-next")
def claim_next(request: Request, user: StaffUser = Depends(current_user)) -> Response:
    """Claim the next prospect in the pool and open it."""
    got = claims.claim_next(engine_of(request), user.id, zone=settings_of(request).zone)
    if got is None:
        return back("/queue?view=pool&msg=pool-empty")
    return back(f"/prospects/{got.contact_id}")


@router.post("/queue/items/{item_id}/claim")
def claim(
    request: Request,
    item_id: PathId,
    user: StaffUser = Depends(current_user),
    next: str | None = Form(None),
) -> Response:
    """Claim one prospect; if someone was faster the page says who."""
    got = claims.claim_item(engine_of(request), item_id, user.id, zone=settings_of(request).zone)
    return back(safe_next(next, f"/prospects/{got.contact_id}"))


@router.post("/queue/items/{item_id}/release")
def release(
    request: Request,
    item_id: PathId,
    user: StaffUser = Depends(current_user),
    next: str | None = Form(None),
) -> Response:
    """Give a held prospect back to the pool."""
    claims.release(engine_of(request), item_id, user.id)
    return back(safe_next(next, "/queue"))


@router.post("/queue/items/{item_id}/attempt")
def attempt(
    request: Request,
    item_id: PathId,
    user: StaffUser = Depends(current_user),
    note: str = Form("", max_length=2000),
    next: str | None = Form(None),
) -> Response:
    """Log a contact attempt on a held prospect."""
    outcomes.record_attempt(engine_of(request), item_id, user.id, note)
    return back(safe_next(next, "/queue"))


@router.post("/queue/items/{item_id}/outcome")
def outcome(
    request: Request,
    item_id: PathId,
    user: StaffUser = Depends(current_user),
    status: str = Form(..., max_length=16),
    reason: str = Form("", max_length=500),
    until: str = Form("", max_length=32),
    next: str | None = Form(None),
) -> Response:
    """Record contacted, qualified, won (→ paid), lost with a reason, or snoozed until."""
    outcomes.record_outcome(
        engine_of(request),
        item_id,
        user.id,
        status,
        reason=reason,
        until=(
            local_time(until, "until", settings_of(request).zone)
            if status == QueueStatus.SNOOZED
            else None
        ),
        rules=configured_rules(settings_of(request)),
    )
    return back(safe_next(next, "/queue"))


# --- one prospect ----------------------------------------------------------------------------


@router.get("/prospects/{contact_id}", response_class=HTMLResponse)
def prospect(
    request: Request, contact_id: PathId, user: StaffUser = Depends(current_user)
) -> Response:
    """Everything about a prospect: identities, touches, events, why this score, history."""
    now = utcnow()
    with transaction(engine_of(request)) as session:
        data = prospect_page(session, contact_id, user, now)
        mine = holds_contact(session, data.contact["id"], user.id, now)
        staff = [u for u in list_users(session) if u.active] if user.is_manager else []
    item = data.queue_item
    lease_over = bool(item and item.lease_expires_at and item.lease_expires_at < now)
    breakdown_total = sum(int(p.get("points", 0)) for p in data.contact["score_breakdown"])
    half_life = configured_rules(settings_of(request)).signals.engagement.half_life_days
    t = translator(lang_of(request))
    signals = explain(
        data.contact["score_breakdown"],
        data.contact["events"],
        t,
        half_life_days=half_life,
    )
    return render(
        request,
        "prospect.html",
        c=data.contact,
        masked=data.masked,
        item=item,
        outbox=data.messages,
        notes=data.notes,
        history=data.queue_history,
        mine=mine,
        lease_over=lease_over,
        can_act=mine or user.is_manager,
        breakdown_total=breakdown_total,
        signals=signals,
        why=lambda move: keyed_text(t, move["reason_key"], move["reason_params"], move["reason"]),
        said=lambda a: keyed_text(t, a.note_key, a.note_params, a.note),
        closed_why=item and keyed_text(t, item.outcome_key, None, item.outcome_reason),
        word=word_for,
        step=_step_words(request),
        staff=staff,
        campaigns=_campaign_names(settings_of(request)),
        outcomes=OUTCOMES,
    )


@router.post("/prospects/{contact_id}/notes")
def note(
    request: Request,
    contact_id: PathId,
    user: StaffUser = Depends(current_user),
    body: str = Form(..., max_length=5000),
) -> Response:
    """Add a note to a prospect you hold (managers: any)."""
    add_note(engine_of(request), contact_id, user, body)
    return back(f"/prospects/{contact_id}")


@router.post("/prospects/{contact_id}/tags")
def add_tags(
    request: Request,
    contact_id: PathId,
    user: StaffUser = Depends(current_user),
    tags: str = Form(..., max_length=400),
) -> Response:
    """Tag a prospect you hold (managers: any); several tags separated by commas."""
    check_may_act_on_contacts(engine_of(request), user, [contact_id])
    tag_contacts(engine_of(request), [contact_id], split_tags(tags), actor=user.username)
    return back(f"/prospects/{contact_id}#tags")


@router.post("/prospects/{contact_id}/tags/remove")
def remove_tag(
    request: Request,
    contact_id: PathId,
    user: StaffUser = Depends(current_user),
    tag: str = Form(..., max_length=100),
) -> Response:
    """Take one tag off a prospect you hold (managers: any)."""
    check_may_act_on_contacts(engine_of(request), user, [contact_id])
    untag_contacts(engine_of(request), [contact_id], [tag], actor=user.username)
    return back(f"/prospects/{contact_id}#tags")


def _step_words(request: Request) -> Callable[[str, str], str]:
    """(campaign, step key) → 第 1 步 as the outbox rows on the page are read."""
    from crm.outreach.campaign_file import load_campaigns
    from crm.outreach.step_names import step_name

    t = translator(lang_of(request))
    campaigns = load_campaigns(settings_of(request).campaigns_path)
    return lambda campaign, key: step_words(t, step_name(campaigns.get(campaign), key))


def _campaign_names(settings: Settings) -> list[str]:
    # Event notices need an event's time and name: they are started from the Prefect form
    # or the CLI, not for one prospect.
    from crm.outreach.campaign_file import triggerable_names

    return triggerable_names(settings)


@router.post("/campaigns/trigger")
async def trigger_campaign(request: Request, user: StaffUser = Depends(current_user)) -> Response:
    """Plan a follow-up campaign for one prospect or a selection (contact_ids)."""
    form = await request.form()
    name = str(form.get("campaign") or "").strip()
    if not name:
        raise InputError("error.web.campaign_unchosen")
    try:
        ids = sorted({check_id(int(str(v)), "contact_ids") for v in form.getlist("contact_ids")})
    except ValueError as exc:
        raise InputError("error.web.contact_ids_bad") from exc
    next_url = safe_next(str(form.get("back_to") or form.get("next") or ""), "/queue")
    await run_in_threadpool(check_campaign_selection, engine_of(request), user, ids)
    result = await run_in_threadpool(_plan, request, user, name, ids)
    planned = "" if result.planned is None else result.planned  # a Prefect run plans later
    sep = "&" if "?" in next_url else "?"
    return back(f"{next_url}{sep}msg=campaign-{name}-{planned}")


def _plan(request: Request, user: StaffUser, name: str, ids: list[int]) -> trigger.TriggerResult:
    # The same trigger as `qunflow campaign run`: through the Prefect deployment when a
    # Prefect API is configured, in-process otherwise; the outbox rows are the same. The
    # app's own settings name the campaigns file, for the check and for the planner.
    return trigger.trigger_campaign(
        engine_of(request),
        name,
        actor=user.username,
        contact_ids=ids,
        settings=settings_of(request),
    )
