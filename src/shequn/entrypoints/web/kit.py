"""What every page of the console and the portal shares: templates, the language, who is
logged in (and may they do this), CSRF tokens, flash messages, and the answers a page gives.

A page is an async route taking the request: it finds who is asking (`console_for`,
`portal_for`), runs the use cases it needs off the event loop (`Console.run`) and renders a
template (`render`). A refusal of the whole page (not logged in, not allowed, not found) is a
`PageExit` or a domain error, which `page` turns into a redirect or an error page."""

from __future__ import annotations

import functools
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeSerializer

from shequn.console.rules import Capability, ConsoleRole, can, sees_only_assigned_members
from shequn.console.service import (
    ConsoleSession,
    PortalSession,
    resolve_console_session,
    resolve_portal_session,
)
from shequn.context import Ctx
from shequn.entrypoints.api.http import AppState, app_state
from shequn.entrypoints.rendering import error_message
from shequn.entrypoints.web.forms import Form, bp_text, fen_text
from shequn.errors import DomainError, Forbidden
from shequn.i18n import LOCALES, Locale, get_locale, negotiate, set_locale, translate
from shequn.money import format_percent, format_yuan

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

CONSOLE_COOKIE = "shequn_console"
PORTAL_COOKIE = "shequn_portal"
LANG_COOKIE = "shequn_lang"
ANON_COOKIE = "shequn_anon"
FLASH_COOKIE = "shequn_flash"
CSRF_FIELD = "csrf_token"
MAX_FORM_BYTES = 64 * 1024

P = ParamSpec("P")
T = TypeVar("T")


# --- formatting ----------------------------------------------------------------------------------


def local_time(value: datetime | None, time_zone: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A moment as read in the tenant's time zone."""
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(time_zone)).strftime(fmt)


def short_id(value: str | None) -> str:
    """The end of an id, enough to tell rows apart on a page (the whole id is in the link)."""
    if not value:
        return ""
    return "…" + value[-6:]


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(t=translate, yuan=format_yuan, percent=format_percent)
    env.filters.update(
        yuan=format_yuan,
        percent=format_percent,
        fen_text=fen_text,
        bp_text=bp_text,
        short_id=short_id,
        tojson_attr=lambda value: json.dumps(value, ensure_ascii=False, default=str),
    )
    return env


# --- signed cookies ------------------------------------------------------------------------------


def _signer(state: AppState) -> URLSafeSerializer:
    return URLSafeSerializer(state.settings.secret_key, salt="shequn-web")


def _secure(state: AppState) -> bool:
    return state.settings.environment != "development"


def set_cookie(
    response: Response, state: AppState, name: str, value: str, *, max_age: int | None = None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(state),
    )


def _unsign(state: AppState, raw: str | None) -> Any:
    if not raw:
        return None
    try:
        return _signer(state).loads(raw)
    except BadSignature:
        return None


# --- the language --------------------------------------------------------------------------------


def choose_language(request: Request, chosen: str | None = None) -> Locale:
    """The user's own setting, else the language cookie, else Accept-Language."""
    for candidate in (chosen, request.cookies.get(LANG_COOKIE)):
        if candidate in LOCALES:
            locale: Locale = candidate
            set_locale(locale)
            return locale
    state = app_state(request)
    locale = negotiate(request.headers.get("accept-language"), state.settings.default_locale)
    set_locale(locale)
    return locale


# --- who is asking -------------------------------------------------------------------------------


class PageExit(Exception):
    """End a page early with `response` (a redirect to the login page, say)."""

    def __init__(self, response: Response) -> None:
        super().__init__("page exit")
        self.response = response


@dataclass
class Visitor:
    """Anyone on a page: the state, the request and its anonymous CSRF token."""

    request: Request
    state: AppState
    csrf_token: str
    new_anon: str | None = None  # a token just made, to be set as a cookie

    async def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.state.db.run(fn, *args, **kwargs)


@dataclass
class Console(Visitor):
    """A logged-in console user on a page."""

    session: ConsoleSession = field(default=None)  # type: ignore[assignment]
    ctx: Ctx = field(default=None)  # type: ignore[assignment]

    def can(self, capability: Capability | str) -> bool:
        return can(self.session.role, Capability(capability))

    @property
    def role(self) -> ConsoleRole:
        return self.session.role

    @property
    def scoped(self) -> bool:
        """Whether the user sees only the members assigned to them."""
        return sees_only_assigned_members(self.session.role)

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a use case for the user's tenant, as the user."""
        return await self.state.db.run(fn, self.ctx, *args, **kwargs)


@dataclass
class Portal(Visitor):
    """A member logged in to the portal."""

    session: PortalSession = field(default=None)  # type: ignore[assignment]
    ctx: Ctx = field(default=None)  # type: ignore[assignment]

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return await self.state.db.run(fn, self.ctx, *args, **kwargs)


def _anon_token(request: Request, state: AppState) -> tuple[str, str | None]:
    found = _unsign(state, request.cookies.get(ANON_COOKIE))
    if isinstance(found, str) and len(found) >= 16:
        return found, None
    token = secrets.token_urlsafe(24)
    return token, token


def visitor_for(request: Request) -> Visitor:
    state = app_state(request)
    choose_language(request)
    token, new = _anon_token(request, state)
    return Visitor(request=request, state=state, csrf_token=token, new_anon=new)


def _login_redirect(path: str, request: Request) -> PageExit:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return PageExit(RedirectResponse(f"{path}?next={quote(target)}", status_code=303))


async def console_for(request: Request, capability: Capability | None = None) -> Console:
    """The logged-in user of the console, allowed `capability`; otherwise the login page (not
    logged in) or a refusal (not allowed)."""
    state = app_state(request)
    token = request.cookies.get(CONSOLE_COOKIE, "")
    session = (
        await state.db.run(resolve_console_session, db=state.db, clock=state.clock, token=token)
        if token
        else None
    )
    if session is None:
        choose_language(request)
        raise _login_redirect("/console/login", request)
    choose_language(request, session.locale)
    who = Console(
        request=request,
        state=state,
        csrf_token=session.csrf_token,
        session=session,
        ctx=Ctx(
            db=state.db,
            clock=state.clock,
            tenant_id=session.tenant_id,
            actor=session.actor,
            snapshot=state.snapshot,
        ),
    )
    if capability is not None and not who.can(capability):
        raise Forbidden("console_forbidden", role=translate(f"console.role.{session.role.value}"))
    return who


async def portal_for(request: Request) -> Portal:
    """The member logged in to the portal; otherwise the portal's login page."""
    state = app_state(request)
    token = request.cookies.get(PORTAL_COOKIE, "")
    session = (
        await state.db.run(resolve_portal_session, db=state.db, clock=state.clock, token=token)
        if token
        else None
    )
    choose_language(request)
    if session is None:
        tenant = request.cookies.get("shequn_portal_tenant") or ""
        raise PageExit(
            RedirectResponse(f"/portal/{quote(tenant)}/login" if tenant else "/portal/", 303)
        )
    return Portal(
        request=request,
        state=state,
        csrf_token=session.csrf_token,
        session=session,
        ctx=Ctx(
            db=state.db,
            clock=state.clock,
            tenant_id=session.tenant_id,
            actor=session.actor,
            snapshot=state.snapshot,
        ),
    )


# --- forms and CSRF ------------------------------------------------------------------------------


async def submitted(who: Visitor, *, max_bytes: int = MAX_FORM_BYTES) -> Form:
    """The form posted on a page, refused unless it carries the page's CSRF token (and comes
    from this site, when the browser says where it comes from)."""
    request = who.request
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise Forbidden("form_too_large")
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if origin.split("://", 1)[-1] != host:
            raise Forbidden("csrf_failed")
    data = await request.form()
    form = Form.submitted(data.multi_items())
    sent = form.get(CSRF_FIELD)
    if not sent or not hmac.compare_digest(sent, who.csrf_token):
        raise Forbidden("csrf_failed")
    return form


# --- answers -------------------------------------------------------------------------------------


def _flash_of(request: Request, state: AppState) -> list[dict[str, str]]:
    found = _unsign(state, request.cookies.get(FLASH_COOKIE))
    if not isinstance(found, list):
        return []
    return [f for f in found if isinstance(f, dict) and set(f) == {"kind", "text"}][:5]


def render(
    who: Visitor,
    template: str,
    *,
    status: int = 200,
    form: Form | None = None,
    **context: Any,
) -> HTMLResponse:
    """The page `template` with `context`, in the visitor's language."""
    request = who.request
    flashes = _flash_of(request, who.state)
    time_zone = "Asia/Shanghai"
    if isinstance(who, Console | Portal):
        time_zone = who.session.time_zone
    html = (
        environment()
        .get_template(template)
        .render(
            who=who,
            request=request,
            locale=get_locale(),
            csrf_token=who.csrf_token,
            flashes=flashes,
            form=form or Form(),
            when=lambda value, fmt="%Y-%m-%d %H:%M": local_time(value, time_zone, fmt),
            here=request.url.path,
            here_query=str(request.url.query),
            link=link,
            **context,
        )
    )
    refused = status >= 400 and (bool(form and form.errors) or bool(context.get("error")))
    # A page shown again with what was refused, beside the fields, is a page like any other:
    # the refusal is in the page (and in a header for a program that wants to know).
    response = HTMLResponse(html, status_code=200 if refused else status)
    if refused:
        response.headers["X-Refused"] = str(status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'"
    )
    if flashes:
        response.delete_cookie(FLASH_COOKIE, path="/")
    if who.new_anon is not None:
        set_cookie(response, who.state, ANON_COOKIE, _signer(who.state).dumps(who.new_anon))
    return response


def redirect(who: Visitor, url: str, *, flash: str | None = None, kind: str = "ok") -> Response:
    """After a form that changed something: go to `url` and say what happened there."""
    response = RedirectResponse(url, status_code=303)
    if flash is not None:
        set_cookie(
            response,
            who.state,
            FLASH_COOKIE,
            _signer(who.state).dumps([{"kind": kind, "text": flash}]),
        )
    return response


def link(path: str, params: Mapping[str, Any] | None = None, **more: Any) -> str:
    """`path` with the query of `params` and `more` (empty values left out)."""
    merged = {**(params or {}), **more}
    query = urlencode({k: v for k, v in merged.items() if v not in (None, "")})
    return f"{path}?{query}" if query else path


def safe_next(target: str | None, default: str) -> str:
    """A place inside this site to go after logging in (never another site's address)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def error_page(request: Request, exc: DomainError) -> HTMLResponse:
    who = visitor_for(request)
    return render(
        who,
        "error.html",
        status=exc.status,
        message=error_message(exc),
        code=exc.code,
    )


def page(
    handler: Callable[P, Awaitable[Response]],
) -> Callable[P, Awaitable[Response]]:
    """A page: its early exits answer as they say, a refusal as an error page."""

    @functools.wraps(handler)
    async def run(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await handler(*args, **kwargs)
        except PageExit as exit_:
            return exit_.response
        except DomainError as exc:
            request = kwargs.get("request") or next(a for a in args if isinstance(a, Request))
            assert isinstance(request, Request)
            return error_page(request, exc)

    return run


# --- areas of the console and the portal ---------------------------------------------------------


@dataclass(frozen=True)
class NavItem:
    key: str  # the catalog key of its label
    path: str
    capability: Capability | None = None  # who sees it in the navigation


@dataclass(frozen=True)
class Area:
    """One part of the console or portal: its routes and the navigation entries they add."""

    name: str
    router: Any  # an APIRouter
    console_nav: tuple[NavItem, ...] = ()
    portal_nav: tuple[NavItem, ...] = ()
