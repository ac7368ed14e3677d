"""The web app: sales workspace, manager pages, QR sign-up pages and the lead webhook."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from crm.core.db import make_engine
from crm.core.errors import QunflowError
from crm.core.settings import Settings, get_settings
from flows.i18n import error_text, translator
from flows.web import funnel_page, manage, pages, peers_page, public, wecom_hook
from flows.web.auth import CsrfFailed, LoginThrottle, NotLoggedIn, Sessions, parse_networks
from flows.web.common import csrf_protect, current_user, lang_of, render
from flows.web.guards import Guards

PUBLIC_PREFIXES = ("/login", "/healthz", "/s/", "/hooks/", "/u/")


def template_dir() -> Path:
    """templates/web, from the installed package or the source tree."""
    try:
        found = Path(str(files("templates") / "web"))
        if found.is_dir():
            return found
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parents[2] / "templates" / "web"


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app around one engine and one settings object (tests pass their own)."""
    settings = settings or get_settings()
    engine = engine or make_engine(settings.sqlalchemy_url)
    app = FastAPI(title="Qunflow", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = Sessions(
        settings.secret_key.get_secret_value(),
        secure=settings.public_base_url.startswith("https://"),
    )
    app.state.throttle = LoginThrottle()
    app.state.trusted_proxies = parse_networks(settings.trusted_proxies)
    app.state.jinja = Environment(
        loader=FileSystemLoader(template_dir()),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )

    @app.exception_handler(NotLoggedIn)
    async def _login_first(request: Request, exc: NotLoggedIn) -> Response:
        if request.method == "GET":
            return RedirectResponse("/login", status_code=303)
        return PlainTextResponse("login required", status_code=401)

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, exc: CsrfFailed) -> Response:
        return PlainTextResponse("CSRF token missing or wrong", status_code=403)

    @app.exception_handler(QunflowError)
    async def _domain_error(request: Request, exc: QunflowError) -> Response:
        status = exc.http_status
        if request.url.path.startswith("/admin/") and request.method == "GET":
            return JSONResponse({"error": str(exc), "code": exc.key}, status_code=status)
        message = error_text(exc, lang_of(request))
        return render(request, "error.html", status=status, message=message)

    # People get pages, programs (the webhooks) keep FastAPI's JSON answers.
    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        if _for_programs(request):
            return await request_validation_exception_handler(request, exc)
        problems = "; ".join(
            f"{err['loc'][-1]}: {err['msg']}" if err.get("loc") else str(err["msg"])
            for err in exc.errors()
        )
        return render(request, "error.html", status=400, message=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _for_programs(request):
            return await http_exception_handler(request, exc)
        key = {404: "not_found", 405: "not_allowed"}.get(exc.status_code)
        message = translator(lang_of(request))(key) if key else str(exc.detail)
        return render(request, "error.html", status=exc.status_code, message=message)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """Liveness and database reachability."""
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return {"status": "ok"}

    app.include_router(pages.login_router)
    guarded = [Depends(current_user), Depends(csrf_protect)]
    app.include_router(pages.router, dependencies=guarded)
    app.include_router(manage.router, dependencies=guarded)
    app.include_router(funnel_page.router, dependencies=guarded)
    app.include_router(peers_page.router, dependencies=guarded)
    app.include_router(public.router)
    app.include_router(wecom_hook.router)

    @app.get("/", include_in_schema=False, dependencies=guarded)
    def home() -> Response:
        return RedirectResponse("/queue", status_code=303)

    app.add_middleware(Guards)
    return app


def _for_programs(request: Request) -> bool:
    return request.url.path.startswith(("/hooks/", "/healthz"))
