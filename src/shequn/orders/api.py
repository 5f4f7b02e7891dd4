from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response, status
from pydantic import Field

from shequn.orders import service
from shequn.web import API_PREFIX, Body, Reader, Writer, blocking

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


def _replayed(response: Response, replayed: bool) -> None:
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"


@router.post("/orders", status_code=status.HTTP_201_CREATED)
@blocking
def create_order(ctx: Writer, body: OrderCreate, response: Response) -> dict[str, Any]:
    order, replayed = service.create_order(
        ctx,
        buyer_id=body.buyer_id,
        lines=[line.model_dump() for line in body.lines],
        idempotency_key=body.idempotency_key,
        attributed_sharer_id=body.attributed_sharer_id,
    )
    if replayed:
        response.status_code = status.HTTP_200_OK
    _replayed(response, replayed)
    return order


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
    return service.list_orders(
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
    return service.get_order(ctx, order_id=order_id)


@router.post("/orders/{order_id}/pay")
@blocking
def pay_order(ctx: Writer, order_id: str, body: PaymentIn, response: Response) -> dict[str, Any]:
    order, replayed = service.pay_order(
        ctx, order_id=order_id, provider_txn_id=body.provider_txn_id, amount_fen=body.amount_fen
    )
    _replayed(response, replayed)
    return order


@router.post("/orders/{order_id}/ship")
@blocking
def ship_order(ctx: Writer, order_id: str) -> dict[str, Any]:
    return service.ship_order(ctx, order_id=order_id)


@router.post("/orders/{order_id}/complete")
@blocking
def complete_order(ctx: Writer, order_id: str) -> dict[str, Any]:
    return service.complete_order(ctx, order_id=order_id)


@router.post("/orders/{order_id}/cancel")
@blocking
def cancel_order(ctx: Writer, order_id: str) -> dict[str, Any]:
    return service.cancel_order(ctx, order_id=order_id)


@router.post("/orders/{order_id}/refunds", status_code=status.HTTP_201_CREATED)
@blocking
def refund_order(ctx: Writer, order_id: str, body: RefundIn, response: Response) -> dict[str, Any]:
    refund, replayed = service.refund_order(
        ctx,
        order_id=order_id,
        amount_fen=body.amount_fen,
        reason=body.reason,
        idempotency_key=body.idempotency_key,
    )
    if replayed:
        response.status_code = status.HTTP_200_OK
    _replayed(response, replayed)
    return refund
