"""The H5 portal for agents and members, on their phones: logging in with a password or a
one-time code, the home page, the team and its latest orders, the wallet and withdrawals,
commissions with the explanation of each line, and the member's own password."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from shequn.console.service import (
    end_session,
    portal_code_login,
    portal_password_login,
    send_portal_code,
    set_portal_password,
    tenant_name,
)
from shequn.context import Ctx
from shequn.entrypoints.api.http import AppState
from shequn.entrypoints.web.forms import Form
from shequn.entrypoints.web.kit import (
    PORTAL_COOKIE,
    Area,
    NavItem,
    Portal,
    page,
    portal_for,
    redirect,
    render,
    set_cookie,
    submitted,
    visitor_for,
)
from shequn.errors import DomainError, NotFound
from shequn.i18n import translate
from shequn.insights.console_money import commission_page
from shequn.insights.console_portal import team_orders
from shequn.money import format_yuan
from shequn.referrals.tree import team_members, team_summary
from shequn.wallet.service import list_withdrawals, request_withdrawal, wallet

router = APIRouter(include_in_schema=False)

TENANT_COOKIE = "shequn_portal_tenant"


def _remote(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.get("/portal/")
@page
async def portal_root(request: Request) -> Response:
    if request.cookies.get(PORTAL_COOKIE):
        return RedirectResponse("/portal/home", 303)
    tenant = request.cookies.get(TENANT_COOKIE)
    if tenant:
        return RedirectResponse(f"/portal/{tenant}/login", 303)
    return render(visitor_for(request), "portal/start.html")


async def _login_page(
    request: Request, tenant_id: str, form: Form, *, step: str = "password", status: int = 200
) -> Response:
    who = visitor_for(request)
    name = await who.call(tenant_name, db=who.state.db, tenant_id=tenant_id)
    response = render(
        who,
        "portal/login.html",
        form=form,
        tenant_id=tenant_id,
        tenant_name=name,
        step=step,
        status=status,
    )
    set_cookie(response, who.state, TENANT_COOKIE, tenant_id, max_age=365 * 24 * 3600)
    return response


@router.get("/portal/{tenant_id}/login")
@page
async def portal_login_page(request: Request, tenant_id: str) -> Response:
    step = "code" if request.query_params.get("with") == "code" else "password"
    return await _login_page(request, tenant_id, Form(), step=step)


def _signed_in(state: AppState, token: str) -> Response:
    response = RedirectResponse("/portal/home", status_code=303)
    set_cookie(response, state, PORTAL_COOKIE, token)
    return response


@router.post("/portal/{tenant_id}/login")
@page
async def portal_login(request: Request, tenant_id: str) -> Response:
    who = visitor_for(request)
    form = await submitted(who)
    phone = form.text("phone", required=True, max_length=32)
    password = form.raw("password", required=True, max_length=200)
    if not form.ok or phone is None or password is None:
        return await _login_page(request, tenant_id, form, status=422)
    try:
        session = await who.call(
            portal_password_login,
            db=who.state.db,
            clock=who.state.clock,
            tenant_id=tenant_id,
            phone=phone,
            password=password,
            remote=_remote(request),
        )
    except DomainError as exc:
        if exc.code == "tenant_not_found":
            raise
        form.refuse(exc)
        return await _login_page(request, tenant_id, form, status=exc.status)
    return _signed_in(who.state, session.token)


@router.post("/portal/{tenant_id}/code")
@page
async def portal_send_code(request: Request, tenant_id: str) -> Response:
    who = visitor_for(request)
    form = await submitted(who)
    phone = form.text("phone", required=True, max_length=32)
    if not form.ok or phone is None:
        return await _login_page(request, tenant_id, form, step="code", status=422)
    try:
        await who.call(
            send_portal_code,
            db=who.state.db,
            clock=who.state.clock,
            tenant_id=tenant_id,
            phone=phone,
        )
    except DomainError as exc:
        if exc.code == "tenant_not_found":
            raise
        form.refuse(exc)
        return await _login_page(request, tenant_id, form, step="code", status=exc.status)
    return await _login_page(request, tenant_id, form, step="verify")


@router.post("/portal/{tenant_id}/code/verify")
@page
async def portal_verify_code(request: Request, tenant_id: str) -> Response:
    who = visitor_for(request)
    form = await submitted(who)
    phone = form.text("phone", required=True, max_length=32)
    code = form.text("code", required=True, max_length=12)
    if not form.ok or phone is None or code is None:
        return await _login_page(request, tenant_id, form, step="verify", status=422)
    try:
        session = await who.call(
            portal_code_login,
            db=who.state.db,
            clock=who.state.clock,
            tenant_id=tenant_id,
            phone=phone,
            code=code,
            remote=_remote(request),
        )
    except DomainError as exc:
        if exc.code == "tenant_not_found":
            raise
        form.refuse(exc)
        return await _login_page(request, tenant_id, form, step="verify", status=exc.status)
    return _signed_in(who.state, session.token)


@router.post("/portal/logout")
@page
async def portal_logout(request: Request) -> Response:
    who = await portal_for(request)
    await submitted(who)
    await who.call(
        end_session,
        db=who.state.db,
        clock=who.state.clock,
        token=request.cookies.get(PORTAL_COOKIE, ""),
    )
    response = RedirectResponse(f"/portal/{who.session.tenant_id}/login", status_code=303)
    response.delete_cookie(PORTAL_COOKIE, path="/")
    return response


@router.get("/portal/home")
@page
async def portal_home(request: Request) -> Response:
    who = await portal_for(request)
    me = who.session.member_id
    purse = await who.run(wallet, member_id=me)
    team = await who.run(team_summary, member_id=me)
    recent = await who.run(commission_page, beneficiary_id=me, limit=5)
    return render(who, "portal/home.html", wallet=purse, team=team, recent=recent["items"])


@router.get("/portal/team")
@page
async def portal_team(request: Request) -> Response:
    who = await portal_for(request)
    me = who.session.member_id
    team = await who.run(team_summary, member_id=me)
    direct = await who.run(team_members, member_id=me, max_depth=1, after=None, limit=100)
    orders = await who.run(team_orders, member_id=me)
    return render(who, "portal/team.html", team=team, direct=direct, orders=orders)


async def _wallet_page(who: Portal, *, form: Form | None = None, status: int = 200) -> Response:
    me = who.session.member_id
    purse = await who.run(wallet, member_id=me)
    history = await who.run(list_withdrawals, member_id=me, limit=20)
    return render(
        who,
        "portal/wallet.html",
        wallet=purse,
        history=list(reversed(history["items"])),
        form=form or Form(),
        status=status,
    )


@router.get("/portal/wallet")
@page
async def portal_wallet(request: Request) -> Response:
    who = await portal_for(request)
    return await _wallet_page(who)


@router.post("/portal/wallet/withdraw")
@page
async def portal_withdraw(request: Request) -> Response:
    who = await portal_for(request)
    form = await submitted(who)
    amount = form.yuan("amount", required=True, min_fen=1)
    if not form.ok or amount is None:
        return await _wallet_page(who, form=form, status=422)
    try:
        await who.run(
            request_withdrawal,
            member_id=who.session.member_id,
            amount_fen=amount,
            idempotency_key=form.text("key", max_length=80),
        )
    except DomainError as exc:
        form.refuse(exc, fields={"amount_fen": "amount"})
        if "_form" in form.errors:
            form.errors["amount"] = form.errors.pop("_form")
        return await _wallet_page(who, form=form, status=exc.status)
    return redirect(
        who,
        "/portal/wallet",
        flash=translate("portal.wallet.requested", amount=format_yuan(amount)),
    )


@router.get("/portal/commissions")
@page
async def portal_commissions(request: Request) -> Response:
    who = await portal_for(request)
    after = request.query_params.get("after") or None
    found = await who.run(commission_page, beneficiary_id=who.session.member_id, after=after)
    return render(who, "portal/commissions.html", found=found, params={"after": after or ""})


def _my_link(who: Portal) -> Callable[[Ctx], dict[str, Any]]:
    base = str(who.request.base_url)

    def find(ctx: Ctx) -> dict[str, Any]:
        from shequn.growth.links.service import create_share_link

        link, _ = create_share_link(
            ctx,
            member_id=who.session.member_id,
            target_type="community",
            base_url=base,
            api_base=base + "api/v1",
        )
        return link

    return find


@router.get("/portal/share")
@page
async def portal_share(request: Request) -> Response:
    """The member's own share link, its QR code and a poster to download."""
    who = await portal_for(request)
    link = await who.run(_my_link(who))
    return render(who, "portal/share.html", share=link)


@router.get("/portal/share/{image}")
@page
async def portal_share_image(request: Request, image: str) -> Response:
    who = await portal_for(request)
    if image not in ("qr.png", "poster.png"):
        raise NotFound("share_image_not_found", image=image[:20])
    link = await who.run(_my_link(who))
    base = str(request.base_url)

    def draw(ctx: Ctx) -> bytes:
        from shequn.growth.links.service import share_poster, share_qr

        if image == "qr.png":
            return share_qr(ctx, code=link["code"], kind="png", base_url=base)
        return share_poster(ctx, code=link["code"], base_url=base)

    data = await who.run(draw)
    headers = {"Cache-Control": "private, max-age=300"}
    if image == "poster.png":
        headers["Content-Disposition"] = 'attachment; filename="share-poster.png"'
    return Response(data, media_type="image/png", headers=headers)


@router.get("/portal/account")
@page
async def portal_account(request: Request) -> Response:
    who = await portal_for(request)
    return render(who, "portal/account.html")


@router.post("/portal/account/password")
@page
async def portal_password(request: Request) -> Response:
    who = await portal_for(request)
    form = await submitted(who)
    password = form.raw("password", required=True, max_length=200)
    again = form.raw("password_again", required=True, max_length=200)
    if password is not None and again is not None and password != again:
        form.fail("password_again", "portal.account.mismatch")
    if not form.ok or password is None:
        return render(who, "portal/account.html", form=form, status=422)
    try:
        await who.run(set_portal_password, member_id=who.session.member_id, password=password)
    except DomainError as exc:
        form.refuse(exc)
        return render(who, "portal/account.html", form=form, status=exc.status)
    return redirect(who, "/portal/account", flash=translate("portal.account.saved"))


AREA = Area(
    name="portal",
    router=router,
    portal_nav=(
        NavItem("portal.nav.home", "/portal/home"),
        NavItem("portal.nav.team", "/portal/team"),
        NavItem("portal.nav.share", "/portal/share"),
        NavItem("portal.nav.wallet", "/portal/wallet"),
        NavItem("portal.nav.commissions", "/portal/commissions"),
    ),
)
