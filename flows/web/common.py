"""What every workspace route shares: the acting user, CSRF checks, rendering, redirects."""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from crm.core.db import transaction
from crm.core.errors import Forbidden, InputError
from crm.core.settings import Settings
from crm.sales.users import StaffUser, get_user
from flows.i18n import normalize_lang, translator
from flows.web.auth import LANG_COOKIE, CsrfFailed, NotLoggedIn, Sessions, tokens_match
from flows.web.breakdown import word_for

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Every id column is a BIGINT (SQLite's INTEGER is as wide): a larger number is no id and would
# overflow the driver, so it is a 400 at the door.
ID_MAX = 2**63 - 1
PathId = Annotated[int, Path(ge=1, le=ID_MAX)]
# Scores are sums of rule points (tens to hundreds); a filter beyond this finds nothing anyway.
SCORE_MAX = 1_000_000
# Dates people type into the workspace: far enough either side of today for any real use,
# and far from the edges where converting between time zones overflows.
FIRST_YEAR, LAST_YEAR = 2000, 2100


def bounded_int(value: str | None, name: str, low: int, high: int) -> int | None:
    """A whole number typed into a field, within [low, high]; blank is None; InputError else."""
    if value is None or value.strip() == "":
        return None
    try:
        number = int(value)
    except ValueError as exc:
        raise InputError("error.web.not_number", name=name, value=value) from exc
    if not low <= number <= high:
        raise InputError("error.web.out_of_range", name=name, value=value, low=low, high=high)
    return number


def check_id(value: int, name: str) -> int:
    """An id within the range of the id columns; InputError naming the field otherwise."""
    if not 1 <= value <= ID_MAX:
        raise InputError("error.web.not_id", name=name, value=value, high=ID_MAX)
    return value


def check_day(value: date | None, name: str) -> date | None:
    """A day within :data:`FIRST_YEAR` to :data:`LAST_YEAR`; InputError naming the field."""
    if value is not None and not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise InputError(
            "error.web.year_outside", name=name, value=value, first=FIRST_YEAR, last=LAST_YEAR
        )
    return value


def local_time(value: str | None, name: str, zone: tzinfo) -> datetime | None:
    """A date and time typed in local time (or with an offset), within the year window."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InputError("error.web.moment_bad", name=name, value=value) from exc
    check_day(parsed.date(), name)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)


def engine_of(request: Request) -> Engine:
    """The app's database engine."""
    engine: Engine = request.app.state.engine
    return engine


def settings_of(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


def sessions_of(request: Request) -> Sessions:
    """The app's cookie signer."""
    sessions: Sessions = request.app.state.sessions
    return sessions


def _load_user(engine: Engine, user_id: int) -> StaffUser | None:
    with transaction(engine) as session:
        return get_user(session, user_id)


async def current_user(request: Request) -> StaffUser:
    """The logged-in, active user whose sessions were not ended since this cookie was issued;
    NotLoggedIn otherwise (pages redirect to /login)."""
    data = sessions_of(request).read(request)
    if data is None:
        raise NotLoggedIn()
    user = await run_in_threadpool(_load_user, engine_of(request), data.user_id)
    if user is None or not user.active or user.session_version != data.version:
        raise NotLoggedIn()
    request.state.user = user
    request.state.csrf = data.csrf
    return user


async def csrf_protect(request: Request) -> None:
    """Refuse a state-changing request unless it carries the session's CSRF token."""
    if request.method not in UNSAFE:
        return
    given = request.headers.get("x-csrf-token")
    if given is None:
        form = await request.form()
        value = form.get("csrf_token")
        given = value if isinstance(value, str) else None
    if not tokens_match(getattr(request.state, "csrf", None), given):
        raise CsrfFailed()


def require_manager(user: StaffUser) -> None:
    """Managers and admins only."""
    if not user.is_manager:
        raise Forbidden("error.web.managers_only")


def require_admin(user: StaffUser) -> None:
    """Admins only."""
    if not user.is_admin:
        raise Forbidden("error.web.admins_only")


def lang_of(request: Request) -> str:
    """?lang=, then the language cookie, then the user's locale; Chinese by default."""
    chosen = normalize_lang(request.query_params.get("lang"))
    if chosen:
        return chosen
    chosen = normalize_lang(request.cookies.get(LANG_COOKIE))
    if chosen:
        return chosen
    user = getattr(request.state, "user", None)
    if user is not None:
        return normalize_lang(user.locale) or "zh"
    return "zh"


def local_moment(value: datetime | None, zone: Any) -> str:
    """A stored moment as the workspace shows it: local date and time, to the minute."""
    if value is None:
        return ""
    if value.tzinfo is None:  # stored moments are UTC (SQLite returns them without a zone)
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def render(request: Request, name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a workspace template with the user, language, CSRF token and helpers."""
    lang = lang_of(request)
    zone = settings_of(request).zone
    env = request.app.state.jinja
    html = env.get_template(name).render(
        request=request,
        user=getattr(request.state, "user", None),
        csrf_token=getattr(request.state, "csrf", ""),
        lang=lang,
        t=translator(lang),
        say=lambda prefix, code: word_for(translator(lang), prefix, code),
        when=lambda v: local_moment(v, zone),
        qs=lambda **kw: urlencode({k: v for k, v in kw.items() if v not in (None, "")}),
        **context,
    )
    response = HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
    if request.query_params.get("lang") in ("zh", "en"):
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/")
    return response


def safe_next(value: str | None, default: str) -> str:
    """A local path to go back to after a form; anything else falls back to ``default``."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def back(to: str) -> RedirectResponse:
    """303 See Other after a successful form post."""
    return RedirectResponse(to, status_code=303)
