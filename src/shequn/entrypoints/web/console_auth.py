"""Logging in to the console and out of it, and the language switch of every page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from shequn.console.service import (
    console_login,
    end_session,
    resolve_console_session,
    resolve_portal_session,
    set_console_locale,
)
from shequn.context import Ctx
from shequn.entrypoints.api.http import app_state
from shequn.entrypoints.web.forms import Form
from shequn.entrypoints.web.kit import (
    CONSOLE_COOKIE,
    LANG_COOKIE,
    PORTAL_COOKIE,
    Area,
    PageExit,
    Visitor,
    choose_language,
    console_for,
    page,
    render,
    safe_next,
    set_cookie,
    submitted,
    visitor_for,
)
from shequn.errors import DomainError, Forbidden
from shequn.i18n import LOCALES

router = APIRouter(include_in_schema=False)


def _remote(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.get("/console/login")
@page
async def login_page(request: Request) -> Response:
    who = visitor_for(request)
    state = who.state
    token = request.cookies.get(CONSOLE_COOKIE, "")
    session = (
        await state.db.run(resolve_console_session, db=state.db, clock=state.clock, token=token)
        if token
        else None
    )
    if session is not None:
        return RedirectResponse(safe_next(request.query_params.get("next"), "/console/"), 303)
    form = Form({"next": request.query_params.get("next", "")})
    return render(who, "console/login.html", form=form)


@router.post("/console/login")
@page
async def login(request: Request) -> Response:
    who = visitor_for(request)
    form = await submitted(who)
    login_name = form.text("login", required=True, max_length=80)
    password = form.raw("password", required=True, max_length=200)
    if not form.ok or login_name is None or password is None:
        return render(who, "console/login.html", form=form, status=422)
    state = who.state
    try:
        session = await state.db.run(
            console_login,
            db=state.db,
            clock=state.clock,
            login=login_name,
            password=password,
            remote=_remote(request),
        )
    except DomainError as exc:
        form.refuse(exc)
        return render(who, "console/login.html", form=form, status=exc.status)
    response = RedirectResponse(safe_next(form.get("next"), "/console/"), status_code=303)
    set_cookie(response, state, CONSOLE_COOKIE, session.token)
    return response


@router.post("/console/logout")
@page
async def logout(request: Request) -> Response:
    who = await console_for(request)
    await submitted(who)
    state = who.state
    await state.db.run(
        end_session, db=state.db, clock=state.clock, token=request.cookies.get(CONSOLE_COOKIE, "")
    )
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(CONSOLE_COOKIE, path="/")
    return response


async def _language_visitor(request: Request, scope: str) -> Visitor:
    """Whoever sent a language switch, by the page it was on."""
    state = app_state(request)
    if scope == "console":
        return await console_for(request)
    if scope == "portal":
        token = request.cookies.get(PORTAL_COOKIE, "")
        session = await state.db.run(
            resolve_portal_session, db=state.db, clock=state.clock, token=token
        )
        if session is None:
            raise PageExit(RedirectResponse("/portal/", 303))
        return Visitor(request=request, state=state, csrf_token=session.csrf_token)
    return visitor_for(request)


@router.post("/lang")
@page
async def switch_language(request: Request) -> Response:
    """Speak `locale` from now on: on this browser, and for a console user on every browser."""
    raw = await request.form()
    scope = str(raw.get("scope") or "anon")
    who = await _language_visitor(request, scope)
    form = await submitted(who)
    locale = form.choice("locale", LOCALES)
    if locale is None:
        raise Forbidden("language_unknown")
    if scope == "console":
        session = getattr(who, "session", None)
        if session is not None:
            state = who.state
            ctx = Ctx(
                db=state.db, clock=state.clock, tenant_id=session.tenant_id, actor=session.actor
            )
            await state.db.run(set_console_locale, ctx, user_id=session.user_id, locale=locale)
    choose_language(request, locale)
    response = RedirectResponse(safe_next(form.get("next"), "/console/"), status_code=303)
    set_cookie(response, who.state, LANG_COOKIE, locale, max_age=365 * 24 * 3600)
    return response


AREA = Area(name="auth", router=router)
