"""Public pages and hooks (no login): the QR sign-up form and the signed lead/event webhooks.

The app that includes :data:`router` may put ``engine`` and ``settings`` on ``app.state``;
otherwise they are built from the environment on first use.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

import templates as templates_pkg
from crm.core.db import make_engine
from crm.core.errors import InputError, Problem
from crm.core.settings import Settings, get_settings
from crm.intake.inbox import PushKind, accept_pushed, accept_signup
from crm.intake.pushed_json import BodyRefused, parse_pushed
from crm.intake.qr import ExpiredToken, InvalidToken, QrClaims, new_nonce, sign_nonce, verify_nonce
from crm.intake.qr import verify_token as verify_qr_token
from crm.intake.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from crm.intake.signup import questions_for, validate_signup
from crm.intake.signup_throttle import SignupThrottle
from flows.i18n import normalize_lang, render, translator
from flows.web.auth import Network, client_address, parse_networks
from flows.web.breakdown import word_for
from flows.web.common import lang_of

router = APIRouter()

MAX_FORM_FIELDS = 50

_env = Environment(
    loader=FileSystemLoader(Path(templates_pkg.__file__).parent / "web"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _settings(request: Request) -> Settings:
    state = request.app.state
    if getattr(state, "settings", None) is None:
        state.settings = get_settings()
    settings: Settings = state.settings
    return settings


def _engine(request: Request) -> Engine:
    state = request.app.state
    if getattr(state, "engine", None) is None:
        state.engine = make_engine(_settings(request).sqlalchemy_url)
    engine: Engine = state.engine
    return engine


def _throttle(request: Request) -> SignupThrottle:
    state = request.app.state
    if getattr(state, "signup_throttle", None) is None:
        state.signup_throttle = SignupThrottle()
    throttle: SignupThrottle = state.signup_throttle
    return throttle


def _client_address(request: Request) -> str:
    # Behind a trusted reverse proxy (QUNFLOW_TRUSTED_PROXIES) the address it forwards.
    return client_address(
        request.client.host if request.client else None,
        request.headers.get("x-forwarded-for"),
        _trusted_proxies(request),
    )


def _trusted_proxies(request: Request) -> tuple[Network, ...]:
    state = request.app.state
    if getattr(state, "trusted_proxies", None) is None:
        state.trusted_proxies = parse_networks(_settings(request).trusted_proxies)
    proxies: tuple[Network, ...] = state.trusted_proxies
    return proxies


_SLUG = re.compile(r"[A-Za-z0-9_.-]+")


def _page(
    request: Request,
    name: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    # The workspace's rule (?lang=, the language cookie, else Chinese): the code is printed
    # for a Chinese-speaking crowd, and ?lang=en on its link serves everyone else.
    lang = lang_of(request)
    html = _env.get_template(name).render(lang=lang, t=translator(lang), **context)
    return HTMLResponse(
        html, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})}
    )


def _same_lang(request: Request, path: str) -> str:
    """A form's target keeping the ``?lang=`` the page was opened with."""
    lang = normalize_lang(request.query_params.get("lang"))
    return f"{path}?lang={lang}" if lang else path


def _campaign_title(t: Callable[[str], str], campaign: str | None) -> str | None:
    """What the form calls the campaign: its catalog name or the name as typed on the code;
    None (the page says 活动) when the code carries only a slug such as ``spring-trial``."""
    if not campaign:
        return None
    named = word_for(t, "campaign", campaign)
    return named if named != campaign or not _SLUG.fullmatch(campaign) else None


def _claims_or_page(request: Request, token: str) -> QrClaims | HTMLResponse:
    try:
        return verify_qr_token(token, _settings(request).secret_key)
    except ExpiredToken:
        return _page(
            request,
            "signup_invalid.html",
            ExpiredToken.http_status,
            title="signup.expired_title",
            message="signup.expired_body",
        )
    except InvalidToken:
        return _page(
            request,
            "signup_invalid.html",
            InvalidToken.http_status,
            title="signup.link_invalid_title",
            message="signup.link_invalid_body",
        )


def _form_page(
    request: Request,
    token: str,
    claims: QrClaims,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, Problem] | None = None,
    nonce: str | None = None,
    busy_for: int = 0,
) -> HTMLResponse:
    settings = _settings(request)
    status = 429 if busy_for else 422 if errors else 200
    t = translator(lang_of(request))
    return _page(
        request,
        "signup.html",
        status,
        {"Retry-After": str(busy_for)} if busy_for else None,
        notice=t("signup_busy") if busy_for else None,
        action=_same_lang(request, f"/s/{token}"),
        campaign=_campaign_title(t, claims.campaign),
        location=claims.location,
        questions=questions_for(claims.campaign),
        form=form or {},
        errors={field: render(t, p.key, p.params) for field, p in (errors or {}).items()},
        nonce=nonce or sign_nonce(claims.code_id, new_nonce(), settings.secret_key),
    )


@router.get("/s/{token}", response_class=HTMLResponse)
def signup_form(request: Request, token: str) -> HTMLResponse:
    """The sign-up form of a QR code, with a fresh one-time form nonce."""
    claims = _claims_or_page(request, token)
    if isinstance(claims, HTMLResponse):
        return claims
    return _form_page(request, token, claims)


@router.post("/s/{token}", response_class=HTMLResponse)
async def signup_submit(request: Request, token: str) -> HTMLResponse:
    """Check and store a sign-up (pending); the same form posted twice is stored once."""
    claims = _claims_or_page(request, token)
    if isinstance(claims, HTMLResponse):
        return claims
    posted = await request.form(max_fields=MAX_FORM_FIELDS)
    form = {k: v for k, v in posted.items() if isinstance(v, str)}
    settings = _settings(request)
    try:
        nonce = verify_nonce(claims.code_id, form.get("nonce", ""), settings.secret_key)
    except InvalidToken:
        return _page(
            request,
            "signup_invalid.html",
            400,
            title="signup.form_stale_title",
            message="signup.form_stale_body",
        )
    checked = validate_signup(form, questions_for(claims.campaign))
    if not checked.ok:
        return _form_page(
            request, token, claims, form=form, errors=checked.errors, nonce=form["nonce"]
        )
    admitted = _throttle(request).admit(claims.code_id, _client_address(request))
    if not admitted.ok:  # the form comes back as filled in, to be sent again in a moment
        return _form_page(
            request, token, claims, form=form, nonce=form["nonce"], busy_for=admitted.retry_after
        )
    engine = _engine(request)
    await run_in_threadpool(accept_signup, engine, claims.source_spec(), nonce, checked.values)
    t = translator(lang_of(request))
    return _page(request, "signup_thanks.html", campaign=_campaign_title(t, claims.campaign))


async def _hook(request: Request, kind: PushKind) -> Response:
    body = await request.body()  # at most guards.MAX_BODY: larger bodies are refused unread
    settings = _settings(request)
    verdict = verify(
        body,
        signature=request.headers.get(SIGNATURE_HEADER),
        timestamp=request.headers.get(TIMESTAMP_HEADER),
        secret=settings.webhook_secret,
        now=time.time(),
        tolerance=settings.webhook_tolerance_seconds,
        accept_untimed=settings.webhook_accept_untimed,
    )
    if not verdict.ok:
        return JSONResponse({"error": verdict.reason}, status_code=401)
    try:
        objects = parse_pushed(body)
    except BodyRefused as exc:
        return JSONResponse({"error": str(exc), "code": exc.key}, status_code=400)
    result = await run_in_threadpool(accept_pushed, _engine(request), kind, objects)
    return JSONResponse(result.as_dict(), status_code=202)


@router.post("/hooks/leads")
async def hook_leads(request: Request) -> Response:
    """Leads pushed by a self-media platform connector, signed with the webhook secret."""
    return await _hook(request, PushKind.LEADS)


@router.post("/hooks/events")
async def hook_events(request: Request) -> Response:
    """Activity events pushed by another system, signed with the webhook secret."""
    return await _hook(request, PushKind.EVENTS)


# --- unsubscribe links (退订) ------------------------------------------------------------
# The signed token is the credential. GET only asks, so a mail scanner that follows links
# cannot opt anyone out; the POST from the page does it.


@router.get("/u/{token}", response_class=HTMLResponse)
def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    """Ask the contact to confirm the opt-out the link carries."""
    from crm.compliance.optout import read_unsubscribe

    try:
        data = read_unsubscribe(token, settings=_settings(request))
    except InputError:
        return _page(request, "unsubscribe.html", 400, invalid=True)
    return _page(
        request,
        "unsubscribe.html",
        action=_same_lang(request, f"/u/{token}"),
        channel=_channel_word(request, data.channel),
    )


@router.post("/u/{token}", response_class=HTMLResponse)
def unsubscribe(request: Request, token: str) -> HTMLResponse:
    """Opt the contact out at once; planned messages on that channel are skipped."""
    from crm.compliance.optout import apply_unsubscribe

    try:
        result = apply_unsubscribe(_engine(request), token, settings=_settings(request))
    except InputError:
        return _page(request, "unsubscribe.html", 400, invalid=True)
    return _page(
        request, "unsubscribe.html", channel=_channel_word(request, result.channel), done=True
    )


def _channel_word(request: Request, channel: str | None) -> str | None:
    """The channel as the contact reads it on the unsubscribe page."""
    return word_for(translator(lang_of(request)), "platform", channel) or None
