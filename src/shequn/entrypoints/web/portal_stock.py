"""The portal's stock pages for an agent: its stock with days of cover, composing a stock order
(进货) at its tier's wholesale prices with the quote and the cover it leaves, the order awaiting
payment with what to pay and how, and cancelling it while it waits."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shequn.entrypoints.rendering import error_message
from shequn.entrypoints.web.forms import FORM_ERROR, Form
from shequn.entrypoints.web.kit import Area, Portal, page, portal_for, redirect, render, submitted
from shequn.errors import DomainError, NotFound
from shequn.growth.stock.requests import (
    cancel_stock_order_request,
    create_stock_order_request,
    get_stock_order_request,
    list_stock_order_requests,
    orderable_products,
)
from shequn.growth.stock.rules import PAYMENT_WINDOW, RequestStatus
from shequn.growth.stock.service import agent_stock, quote_stock_order
from shequn.i18n import translate
from shequn.insights.console_community import stock_history
from shequn.money import format_yuan

router = APIRouter(include_in_schema=False)

MAX_QUANTITY = 100_000
TOTAL_FIELD = "total"  # where a refusal of the whole order is shown: beside its total


@router.get("/portal/stock")
@page
async def portal_stock(request: Request) -> Response:
    who = await portal_for(request)
    me = who.session.member_id
    stock = await who.run(agent_stock, member_id=me)
    history = await who.run(stock_history, member_id=me)
    waiting = await who.run(
        list_stock_order_requests, member_id=me, status=RequestStatus.AWAITING_PAYMENT
    )
    orderable = await who.run(orderable_products, member_id=me)
    return render(
        who,
        "portal/stock.html",
        stock=stock,
        history=history,
        waiting=waiting["items"],
        can_order=bool(orderable["products"]),
    )


async def _order_page(
    who: Portal,
    *,
    form: Form | None = None,
    quote: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    me = who.session.member_id
    orderable = await who.run(orderable_products, member_id=me)
    stock = await who.run(agent_stock, member_id=me)
    held = {p["sku"]: p for p in stock["products"]}
    return render(
        who,
        "portal/stock_order.html",
        form=form or Form(),
        status=status,
        products=[{**p, "held": held.get(p["sku"])} for p in orderable["products"]],
        stock=stock,
        quote=quote,
        window_days=PAYMENT_WINDOW.days,
    )


@router.get("/portal/stock/order")
@page
async def portal_stock_order(request: Request) -> Response:
    who = await portal_for(request)
    return await _order_page(who)


def _wanted(form: Form, skus: list[str]) -> list[dict[str, Any]]:
    lines = []
    for sku in skus:
        quantity = form.integer(f"qty_{sku}", low=0, high=MAX_QUANTITY)
        if quantity:
            lines.append({"sku": sku, "quantity": quantity})
    if form.ok and not lines:
        form.fail(TOTAL_FIELD, "portal.stock.order.empty")
    return lines


def _refused(form: Form, exc: DomainError, skus: list[str]) -> None:
    """A refusal beside the quantity of the product it names, else beside the total."""
    sku = exc.params.get("sku")
    name = f"qty_{sku}" if isinstance(sku, str) and sku in skus else TOTAL_FIELD
    form.errors.setdefault(name, error_message(exc))


@router.post("/portal/stock/order")
@page
async def portal_stock_order_submit(request: Request) -> Response:
    """Quote the order (`intent=quote`) or ask for it (`intent=submit`): either way it is
    priced and checked first, and a refusal creates nothing."""
    who = await portal_for(request)
    form = await submitted(who)
    me = who.session.member_id
    skus = [p["sku"] for p in (await who.run(orderable_products, member_id=me))["products"]]
    lines = _wanted(form, skus)
    if not form.ok:
        return await _order_page(who, form=form, status=422)
    try:
        if form.get("intent") != "submit":
            quote = await who.run(quote_stock_order, member_id=me, lines=lines)
            return await _order_page(who, form=form, quote=quote)
        asked = await who.run(create_stock_order_request, member_id=me, lines=lines)
    except DomainError as exc:
        if exc.code == "member_not_found":
            raise
        _refused(form, exc, skus)
        return await _order_page(who, form=form, status=exc.status)
    return redirect(
        who,
        f"/portal/stock/requests/{asked['id']}",
        flash=translate("portal.stock.order.asked", amount=format_yuan(asked["amount_fen"])),
    )


async def _request_page(
    who: Portal, request_id: str, *, form: Form | None = None, status: int = 200
) -> Response:
    asked = await who.run(
        get_stock_order_request, request_id=request_id, member_id=who.session.member_id
    )
    return render(who, "portal/stock_request.html", form=form or Form(), status=status, asked=asked)


@router.get("/portal/stock/requests/{request_id}")
@page
async def portal_stock_request(request: Request, request_id: str) -> Response:
    who = await portal_for(request)
    return await _request_page(who, request_id)


@router.post("/portal/stock/requests/{request_id}/cancel")
@page
async def portal_stock_request_cancel(request: Request, request_id: str) -> Response:
    who = await portal_for(request)
    me = who.session.member_id
    await who.run(get_stock_order_request, request_id=request_id, member_id=me)
    form = await submitted(who)
    try:
        await who.run(cancel_stock_order_request, request_id=request_id, member_id=me)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        form.errors[FORM_ERROR] = error_message(exc)
        return await _request_page(who, request_id, form=form, status=exc.status)
    return redirect(
        who, f"/portal/stock/requests/{request_id}", flash=translate("portal.stock.order.cancelled")
    )


AREA = Area(name="portal-stock", router=router)
