"""The web desk (SPEC §8, ``collections desk``): FastAPI, Jinja2 templates,
server-rendered, no front-end build.

Pages: sign in / out; *my queue*; a *task page* (case summary, the approved
script, the outcome form); the *supervisor page*. Every action goes through
:class:`desk.store.DeskStore`, which checks the operator's role and team,
validates, changes nothing when it refuses and writes the desk_actions row;
a refusal is a page with its HTTP status (4xx) and the store's one line.

Security: sessions in signed HttpOnly SameSite=Lax cookies (Secure with
``COLLECTIONS_DESK_HTTPS``), a CSRF token on every form checked on every POST
(:mod:`desk.web.auth`), argon2 passwords (:mod:`desk.operators`), and headers
that keep the pages out of frames and caches (a Content-Security-Policy with
no script at all).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from temporalio.client import Client

from db.session import Database
from desk import charts, operators, supervisor
from desk.entries import Conflict, DeskError, Forbidden, Invalid, NotFound
from desk.store import DeskStore
from desk.web import auth
from desk.web.auth import PageError
from support.logs import get_logger
from support.settings import Settings
from workflows.presentation import local_stamp

HERE = Path(__file__).resolve().parent
STATUS = {NotFound: 404, Forbidden: 403, Conflict: 409, Invalid: 422}
RECONNECT_SECONDS = 30.0
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

Clock = Callable[[], Awaitable[datetime]]


async def wall_clock() -> datetime:
    return datetime.now(timezone.utc)


class Desk:
    """What every page shares: settings, database, Temporal client (connected on first need), templates."""

    def __init__(self, settings: Settings, db: Database, client: Client | None, clock: Clock,
                 connect: bool) -> None:
        self.settings, self.db, self.clock = settings, db, clock
        self._client, self._connect, self._failed_at = client, connect, 0.0
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.filters["local"] = lambda at, tz: local_stamp(at, tz or "UTC") if at else ""
        self.templates.env.globals["csrf_token"] = auth.csrf_token

    async def client(self) -> Client | None:
        """The Temporal client, or None while it cannot be reached (retried every 30 s)."""
        if self._client is None and self._connect and time.monotonic() - self._failed_at > RECONNECT_SECONDS:
            from support.temporal import connect
            try:
                self._client = await asyncio.wait_for(connect(self.settings), timeout=10)
            except Exception as e:  # the pages still work; completions reach the case when its wait ends
                self._failed_at = time.monotonic()
                get_logger().warning("desk cannot reach Temporal", error=str(e).splitlines()[0] if str(e) else "")
        return self._client

    async def store(self) -> DeskStore:
        return DeskStore(self.db, self.settings, await self.client(), self.clock)

    def page(self, request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
        context.setdefault("actor", getattr(request.state, "actor", None))
        context.setdefault("flash", request.session.pop("flash", None) if "session" in request.scope else None)
        return self.templates.TemplateResponse(request, template, context, status_code=status)


def session_secret(settings: Settings) -> str:
    if settings.desk_secret is not None:
        return settings.desk_secret.get_secret_value()
    get_logger().warning("COLLECTIONS_DESK_SECRET is not set: using a new random key; sessions end when the "
                         "desk restarts (set it for production, at least 32 characters)")
    return secrets.token_urlsafe(48)


def create_app(settings: Settings, *, db: Database | None = None, client: Client | None = None,
               clock: Clock | None = None, connect_temporal: bool = True) -> FastAPI:
    """The desk's ASGI app. ``db``/``client``/``clock``: a test's database, Temporal client and clock."""
    owned = db is None
    database = db or Database(settings.database_url)
    desk = Desk(settings, database, client, clock or wall_clock, connect_temporal)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        if owned:
            await database.dispose()

    app = FastAPI(title="Collections work desk", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.desk = desk
    app.add_middleware(SessionMiddleware, secret_key=session_secret(settings), session_cookie=auth.SESSION_COOKIE,
                       max_age=auth.SESSION_IDLE_SECONDS, same_site="lax", https_only=settings.desk_https)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next) -> Response:
        response = await call_next(request)
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        return response

    _errors(app, desk)
    _sign_in_routes(app, desk)
    from desk.web import pages
    pages.add_routes(app, desk)
    return app


def _errors(app: FastAPI, desk: Desk) -> None:
    @app.exception_handler(PageError)
    async def page_error(request: Request, e: PageError) -> Response:
        if isinstance(e, auth.SignInNeeded) and request.method == "GET":
            request.session["flash"] = e.message
            return RedirectResponse("/login", status_code=303)
        return desk.page(request, "error.html", e.status, title=e.title, message=e.message)

    @app.exception_handler(DeskError)
    async def desk_error(request: Request, e: DeskError) -> Response:
        status = next((code for kind, code in STATUS.items() if isinstance(e, kind)), 400)
        return desk.page(request, "error.html", status, title="Not done", message=e.message,
                         back=request.headers.get("referer"))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, e: RequestValidationError) -> Response:
        where = request.url.path
        if where.startswith("/tasks/"):
            raw = where.split("/")[2]
            return desk.page(request, "error.html", 404, title="No such task",
                             message=f"no task {raw!r}: a task id is a number")
        return desk.page(request, "error.html", 400, title="Bad request", message="the request is not understood")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> Response:
        message = "no such page" if e.status_code == 404 else str(e.detail)
        return desk.page(request, "error.html", e.status_code, title="Not found" if e.status_code == 404 else
                         "Not done", message=message)


def _sign_in_routes(app: FastAPI, desk: Desk) -> None:
    @app.get("/", include_in_schema=False)
    async def home(request: Request) -> Response:
        return RedirectResponse("/queue" if request.session.get("operator") else "/login", status_code=303)

    @app.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request) -> Response:
        if request.session.get("operator"):
            return RedirectResponse("/queue", status_code=303)
        return desk.page(request, "login.html")

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await auth.posted_form(request)
        name, password = str(form.get("name") or "").strip(), str(form.get("password") or "")
        try:
            actor = await operators.authenticate(desk.db, name, password)
        except operators.SignInRefused as e:
            await operators.audit(desk.db, name or "(no name)", "sign_in", "refused", str(e))
            return desk.page(request, "login.html", 401, error=str(e), name=name)
        auth.start_session(request, actor)
        await operators.audit(desk.db, actor.name, "sign_in", "done")
        landing = "/supervisor" if actor.role == "supervisor" else "/queue"
        return RedirectResponse("/operators" if actor.role == "admin" else landing, status_code=303)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        await auth.posted_form(request)
        name = request.session.get("operator")
        auth.end_session(request)
        if isinstance(name, str):
            await operators.audit(desk.db, name, "sign_out", "done")
        request.session["flash"] = "signed out"
        return RedirectResponse("/login", status_code=303)


async def supervisor_context(desk: Desk) -> dict:
    """The supervisor page's figures and charts."""
    at = await desk.clock()
    f = await supervisor.figures(desk.db, at, contact_rules=desk.settings.contact_rules,
                                 complaint_threshold=desk.settings.complaint_threshold)
    c = f.contacts
    cap = c.connected_cap if c else 3
    contact_bars = [charts.Bar(f"{n} connected call{'s' if n != 1 else ''}", c.debtors.get(n, 0),
                               tone="alert" if n >= cap else "normal") for n in range(1, cap + 1)] if c else []
    return {
        "f": f,
        "stage_chart": charts.bar_chart("open cases by stage", [charts.Bar(s, n) for s, n in f.by_stage],
                                        empty="no open case"),
        "protection_chart": charts.bar_chart(
            "open cases by protection",
            [charts.Bar(k, n, tone="muted" if k.startswith("none") else "warn") for k, n in f.by_protection],
            empty="no open case"),
        "contacts_chart": charts.bar_chart("debtors called today, by connected calls (cap marked)", contact_bars,
                                           limit=None),
        "complaints_chart": charts.bar_chart(
            "complaints today per team (threshold marked)",
            [charts.Bar(t.team_id, t.complaints_today, tone="alert" if t.suspended_since else "normal")
             for t in f.teams], limit=f.complaint_threshold, limit_label=f"threshold {f.complaint_threshold}",
            empty="no complaint"),
        "recovery_charts": [(r, charts.share_bar(
            f"recovered in {r.currency}", r.recovered, r.due,
            part_label=f"{r.recovered:,.2f} {r.currency} recovered ({r.rate} %)",
            rest_label=f"of {r.due:,.2f} {r.currency} due")) for r in f.recovery],
        "at": at,
    }
