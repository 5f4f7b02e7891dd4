"""Order routes. Creating and paying an order are what a shop sends for every sale, so those
two are written lean (`lean_post`); the others are plain definitions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import Field

from shequn.entrypoints.api.http import (
    API_PREFIX,
    Body,
    Reader,
    Writer,
    authorize,
    blocking,
    json_response,
    lean_post,
    read_body,
    run_use_case,
    validate_body,
)
from shequn.orders import creation, payment, refunds, transitions, views
from shequn.tenancy.rules import Permission

router = APIRouter(prefix=API_PREFIX, tags=["orders"])


class LineIn(Body):
    sku: str
    quantity: int


class OrderCreate(Body):
    buyer_id: str
    lines: list[LineIn]
    idempotency_key: str | None = None
    attributed_sharer_id: str | None = None


class PaymentIn(Body):
    provider_txn_id: str
    amount_fen: int


class RefundIn(Body):
    amount_fen: int
    reason: str = Field(max_length=500)
    idempotency_key: str | None = None


@lean_post(router, "/orders", body=OrderCreate, status_code=status.HTTP_201_CREATED)
async def create_order(request: Request) -> Response:
    read = await read_body(request, OrderCreate)
    ctx = await authorize(request, Permission.WRITE)
    body = validate_body(OrderCreate, read)
    order, replayed = await run_use_case(
        ctx.db,
        creation.create_order,
        ctx,
        buyer_id=body.buyer_id,
        lines=[{"sku": line.sku, "quantity": line.quantity} for line in body.lines],
        idempotency_key=body.idempotency_key,
        attributed_sharer_id=body.attributed_sharer_id,
    )
    return json_response(order, 200 if replayed else 201, replayed=replayed)


@router.get("/orders")
@blocking
def list_orders(
    ctx: Reader,
    buyer_id: str | None = None,
    status: str | None = None,
    idempotency_key: str | None = None,
    after: str | None = None,
    limit: int = Query(default=50),
) -> dict[str, Any]:
    return views.list_orders(
        ctx,
        buyer_id=buyer_id,
        status=status,
        idempotency_key=idempotency_key,
        after=after,
        limit=limit,
    )


@router.get("/orders/{order_id}")
@blocking
def get_order(ctx: Reader, order_id: str) -> dict[str, Any]:
    return views.get_order(ctx, order_id=order_id)


@lean_post(router, "/orders/{order_id}/pay", body=PaymentIn)
async def pay_order(request: Request) -> Response:
    order_id: str = request.path_params["order_id"]
    read = await read_body(request, PaymentIn)
    ctx = await authorize(request, Permission.WRITE)
    body = validate_body(PaymentIn, read)
    order, replayed = await run_use_case(
        ctx.db,
        payment.pay_order,
        ctx,
        order_id=order_id,
        provider_txn_id=body.provider_txn_id,
        amount_fen=body.amount_fen,
    )
    return json_response(order, 200, replayed=replayed)


@router.post("/orders/{order_id}/ship")
@blocking
def ship_order(ctx: Writer, order_id: str) -> dict[str, Any]:
    return transitions.ship_order(ctx, order_id=order_id)


@router.post("/orders/{order_id}/complete")
@blocking
def complete_order(ctx: Writer, order_id: str) -> dict[str, Any]:
    return transitions.complete_order(ctx, order_id=order_id)


@router.post("/orders/{order_id}/cancel")
@blocking
def cancel_order(ctx: Writer, order_id: str) -> dict[str, Any]:
    return transitions.cancel_order(ctx, order_id=order_id)


@router.post("/orders/{order_id}/refunds", status_code=status.HTTP_201_CREATED)
@blocking
def refund_order(ctx: Writer, order_id: str, body: RefundIn, response: Response) -> dict[str, Any]:
    refund, replayed = refunds.refund_order(
        ctx,
        order_id=order_id,
        amount_fen=body.amount_fen,
        reason=body.reason,
        idempotency_key=body.idempotency_key,
    )
    if replayed:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return refund
