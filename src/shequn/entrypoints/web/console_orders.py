"""Orders: the list, one order with its lines, payment, refunds and commissions, the actions of
its state machine (ship, complete, cancel, refund), and the settlement run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shequn.console.rules import Capability
from shequn.context import Ctx
from shequn.entrypoints.web.forms import Form, fen_text
from shequn.entrypoints.web.kit import (
    Area,
    Console,
    NavItem,
    console_for,
    page,
    redirect,
    render,
    submitted,
)
from shequn.errors import DomainError, InvalidInput
from shequn.flows.growth_settlement import settle_with_growth
from shequn.i18n import translate
from shequn.insights.console_money import recent_events
from shequn.money import format_yuan
from shequn.orders.refunds import refund_order
from shequn.orders.rules import OrderStatus
from shequn.orders.transitions import cancel_order, complete_order, ship_order
from shequn.orders.views import get_order, list_orders

router = APIRouter(include_in_schema=False)

STATUSES = tuple(s.value for s in OrderStatus)


@router.get("/console/orders")
@page
async def orders_page(request: Request) -> Response:
    who = await console_for(request, Capability.VIEW)
    params = {k: request.query_params.get(k, "") for k in ("status", "buyer", "key", "after")}
    form = Form(params)
    try:
        found = await who.run(
            list_orders,
            status=params["status"] or None,
            buyer_id=params["buyer"] or None,
            idempotency_key=params["key"] or None,
            after=params["after"] or None,
            limit=50,
        )
    except InvalidInput as exc:
        form.refuse(exc, fields={"after": "key", "idempotency_key": "key"})
        found = {"items": [], "next_after": None}
    return render(
        who,
        "console/orders.html",
        form=form,
        found=found,
        params=params,
        statuses=STATUSES,
        filtered=any(params[k] for k in ("status", "buyer", "key")),
    )


async def _order_page(
    who: Console, order_id: str, *, form: Form | None = None, status: int = 200
) -> Response:
    order = await who.run(get_order, order_id=order_id)
    if form is None:
        open_fen = order["paid_fen"] - order["refunded_fen"]
        form = Form({"amount": fen_text(open_fen) if open_fen > 0 else ""})
    return render(who, "console/order.html", form=form, order=order, status=status)


@router.get("/console/orders/{order_id}")
@page
async def order_page(request: Request, order_id: str) -> Response:
    who = await console_for(request, Capability.VIEW)
    return await _order_page(who, order_id)


_ACTIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "ship": ship_order,
    "complete": complete_order,
    "cancel": cancel_order,
}


@router.post("/console/orders/{order_id}/{action}")
@page
async def order_action(request: Request, order_id: str, action: str) -> Response:
    who = await console_for(request, Capability.OPERATE)
    form = await submitted(who)
    if action == "refund":
        return await _refund(who, order_id, form)
    use_case = _ACTIONS.get(action)
    if use_case is None:
        raise InvalidInput("order_action_unknown", action=action)
    try:
        await who.run(use_case, order_id=order_id)
    except DomainError as exc:
        form.refuse(exc)
        return await _order_page(who, order_id, form=form, status=exc.status)
    return redirect(
        who,
        f"/console/orders/{order_id}",
        flash=translate(f"console.orders.done.{action}"),
    )


async def _refund(who: Console, order_id: str, form: Form) -> Response:
    amount = form.yuan("amount", required=True, min_fen=1)
    reason = form.text("reason", required=True, max_length=500)
    if not form.ok or amount is None or reason is None:
        return await _order_page(who, order_id, form=form, status=422)
    try:
        await who.run(
            refund_order,
            order_id=order_id,
            amount_fen=amount,
            reason=reason,
            idempotency_key=form.text("refund_key", max_length=80),
        )
    except DomainError as exc:
        form.refuse(exc, fields={"amount_fen": "amount"})
        return await _order_page(who, order_id, form=form, status=exc.status)
    return redirect(
        who,
        f"/console/orders/{order_id}",
        flash=translate("console.orders.refunded", amount=format_yuan(amount)),
    )


@router.get("/console/settlement")
@page
async def settlement_page(request: Request) -> Response:
    who = await console_for(request, Capability.VIEW)
    runs = await who.run(recent_events, type="SettlementRun", limit=10)
    return render(who, "console/settlement.html", runs=runs)


@router.post("/console/settlement")
@page
async def settlement_run(request: Request) -> Response:
    who = await console_for(request, Capability.OPERATE)
    await submitted(who)

    def settle(ctx: Ctx) -> dict[str, Any]:
        return settle_with_growth(ctx)

    result = await who.run(settle)
    return redirect(
        who,
        "/console/settlement",
        flash=translate(
            "console.settlement.done",
            closed=result["orders_closed"],
            completed=result["orders_completed"],
            cancelled=result["orders_cancelled"],
            lines=result["commissions_released"],
            amount=format_yuan(result["released_fen"]),
        ),
    )


AREA = Area(
    name="orders",
    router=router,
    console_nav=(
        NavItem("console.nav.orders", "/console/orders", Capability.VIEW),
        NavItem("console.nav.settlement", "/console/settlement", Capability.VIEW),
    ),
)
