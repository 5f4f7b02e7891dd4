"""Agents' stock orders awaiting payment in the console: the list by state, and an operator's
confirmation of an offline payment (a bank transfer, by its reference and the amount
received), which turns the request into a paid stock order."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shequn.console.rules import Capability
from shequn.entrypoints.rendering import error_message
from shequn.entrypoints.web.forms import Form
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
from shequn.errors import DomainError, NotFound
from shequn.growth.stock.requests import (
    agent_names,
    confirm_offline_payment,
    get_stock_order_request,
    list_stock_order_requests,
)
from shequn.growth.stock.rules import REQUEST_STATUSES, RequestStatus
from shequn.i18n import translate
from shequn.ids import is_id
from shequn.money import format_yuan

router = APIRouter(include_in_schema=False)

PATH = "/console/growth/stock-requests"


def _filters(request: Request) -> dict[str, str]:
    status = request.query_params.get("status", RequestStatus.AWAITING_PAYMENT)
    after = request.query_params.get("after") or ""
    return {
        "status": status if status in REQUEST_STATUSES else "",
        "after": after if is_id(after, "sor") else "",
    }


async def _list_view(
    who: Console, params: dict[str, str], *, form: Form | None = None, status: int = 200
) -> Response:
    found = await who.run(
        list_stock_order_requests,
        status=params["status"] or None,
        after=params["after"] or None,
        limit=50,
    )
    names: dict[str, Any] = await who.run(
        agent_names, member_ids=[r["member_id"] for r in found["items"]]
    )
    return render(
        who,
        "console/stock_requests.html",
        form=form or Form(),
        status=status,
        found=found,
        names=names,
        params=params,
        statuses=REQUEST_STATUSES,
    )


@router.get(PATH)
@page
async def stock_requests_page(request: Request) -> Response:
    who = await console_for(request, Capability.VIEW)
    return await _list_view(who, _filters(request))


@router.post(PATH + "/{request_id}/confirm")
@page
async def confirm_stock_payment(request: Request, request_id: str) -> Response:
    """An offline payment received: its reference and amount, checked against the request."""
    who = await console_for(request, Capability.OPERATE)
    await who.run(get_stock_order_request, request_id=request_id)
    form = await submitted(who)
    reference_field, amount_field = f"reference_{request_id}", f"amount_{request_id}"
    reference = form.text(reference_field, required=True, max_length=100)
    amount = form.yuan(amount_field, required=True)
    params = {"status": RequestStatus.AWAITING_PAYMENT, "after": ""}
    if not form.ok or reference is None or amount is None:
        return await _list_view(who, params, form=form, status=422)
    try:
        await who.run(
            confirm_offline_payment, request_id=request_id, reference=reference, amount_fen=amount
        )
    except DomainError as exc:
        if isinstance(exc, NotFound) and exc.code == "stock_request_not_found":
            raise
        name = amount_field if exc.code == "stock_amount_mismatch" else reference_field
        form.errors.setdefault(name, error_message(exc))
        return await _list_view(who, params, form=form, status=exc.status)
    return redirect(
        who, PATH, flash=translate("console.stock_requests.confirmed", amount=format_yuan(amount))
    )


AREA = Area(
    name="stock-requests",
    router=router,
    console_nav=(NavItem("console.nav.stock_requests", PATH, Capability.VIEW),),
)
