"""Stock orders awaiting payment: an agent's stock order is asked for (priced and checked
against the tenant's cover limit and first order minimum), then paid through the payment
provider's notification (or confirmed by an operator in the console), or cancelled."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field

from shequn.entrypoints.api.http import API_PREFIX, Body, Reader, Writer, blocking
from shequn.entrypoints.api.shapes import Page, Shape, cursor, limits, page_limit, text_limits
from shequn.growth.stock import requests as stock_requests
from shequn.growth.stock import service as stock
from shequn.money import MAX_AMOUNT_FEN

router = APIRouter(prefix=API_PREFIX, tags=["growth"])

REQUEST_ID = "The stock order request's id (`sor_…`); unknown: 404."
RequestStatus = Literal["awaiting_payment", "paid", "cancelled", "expired"]


class StockRequestLineIn(Body):
    sku: str = Field(description="The product (else 404 `product_not_found`).")
    quantity: int = Field(
        description="Units, 1 to 100,000.", json_schema_extra=limits(minimum=1, maximum=100_000)
    )


class StockRequestIn(Body):
    member_id: str = Field(
        description="The agent (`mem_…`): a member with a tier.",
        json_schema_extra=limits(**text_limits(40)),
    )
    lines: list[StockRequestLineIn] = Field(description="Each SKU once, 1 to 50 lines.")


class StockQuoteLineOut(Shape):
    sku: str
    product_id: str
    name: str
    quantity: int
    unit_cost_fen: int = Field(description="The tier's wholesale price of a unit.")
    amount_fen: int
    units_after: int = Field(description="The agent's units of the product after the order.")
    cover_days_after: str = Field(description="Days of cover after the order, one decimal.")


class StockQuoteOut(Shape):
    member_id: str
    tier_id: str
    lines: list[StockQuoteLineOut]
    amount_fen: int = Field(description="What the agent pays.")
    first_order: bool = Field(description="True: the agent's first stock order.")
    min_first_stock_order_fen: int = Field(description="A first order's minimum (0: none).")
    cover_limit_days: int


class StockRequestLineOut(Shape):
    sku: str
    product_id: str
    name: str
    quantity: int
    unit_cost_fen: int = Field(description="The price quoted, kept until it is paid.")


class StockRequestOut(Shape):
    id: str
    member_id: str
    tier_id: str
    lines: list[StockRequestLineOut]
    amount_fen: int = Field(description="What the agent has to pay (and the payment must be).")
    status: RequestStatus = Field(
        description="`awaiting_payment`, then `paid` once, or `cancelled`, or `expired` past "
        "`expires_at`."
    )
    payment_reference: str = Field(description="What the agent writes on a bank transfer.")
    expires_at: datetime
    provider_txn_id: str | None = Field(description="The payment's transaction id, once paid.")
    stock_order_id: str | None = Field(description="The stock order it became (`sto_…`).")
    paid_by: str | None = Field(description="Who recorded the payment.")
    created_at: datetime
    paid_at: datetime | None
    cancelled_at: datetime | None


class StockPaymentIn(Body):
    provider_txn_id: str = Field(
        description="The payment provider's transaction id: the same one again changes nothing.",
        json_schema_extra=limits(**text_limits(120)),
    )
    amount_fen: int = Field(
        description="What was paid: exactly the request's amount (else 422 "
        "`stock_amount_mismatch`).",
        json_schema_extra=limits(minimum=0, maximum=MAX_AMOUNT_FEN),
    )


def _lines(body: StockRequestIn) -> list[dict[str, Any]]:
    return [line.model_dump() for line in body.lines]


@router.post("/stock-order-quotes", response_model=StockQuoteOut)
@blocking
def quote_stock_order(ctx: Reader, body: StockRequestIn) -> dict[str, Any]:
    """Quote a stock order

    What the units cost at the agent's tier and the days of cover they leave, or the refusal
    an order would meet (409 `stock_cover_exceeded` with the figure, 409
    `stock_first_order_minimum`); changes nothing."""
    return stock.quote_stock_order(ctx, member_id=body.member_id, lines=_lines(body))


@router.post("/stock-order-requests", status_code=201, response_model=StockRequestOut)
@blocking
def create_stock_order_request(ctx: Writer, body: StockRequestIn) -> dict[str, Any]:
    """Ask for a stock order awaiting payment

    Priced at the agent's tier and checked as a paid order would be; nothing is created when
    it is refused. It is paid within three days or expires."""
    return stock_requests.create_stock_order_request(
        ctx, member_id=body.member_id, lines=_lines(body)
    )


class StockRequestPage(Page[StockRequestOut]):
    pass


@router.get("/stock-order-requests", response_model=StockRequestPage)
@blocking
def list_stock_order_requests(
    ctx: Reader,
    member_id: str | None = Query(default=None, description="Only this agent's (`mem_…`)."),
    status: RequestStatus | None = Query(default=None, description="Only those in this state."),
    after: str | None = Query(
        default=None,
        description="The `next_after` of the page before (else 422 `cursor_invalid`).",
        json_schema_extra=cursor("sor"),
    ),
    limit: int = Query(
        default=50,
        description="Requests per page, 1 to 200 (else 422 `limit_out_of_range`).",
        json_schema_extra=page_limit(200),
    ),
) -> dict[str, Any]:
    """List stock order requests

    Oldest first; a request awaiting payment past its window is `expired`."""
    return stock_requests.list_stock_order_requests(
        ctx, member_id=member_id, status=status, after=after, limit=limit
    )


@router.get("/stock-order-requests/{request_id}", response_model=StockRequestOut)
@blocking
def get_stock_order_request(
    ctx: Reader, request_id: str = Path(description=REQUEST_ID)
) -> dict[str, Any]:
    """Read a stock order request

    Its lines, the amount to pay and the reference, its state and the stock order it became."""
    return stock_requests.get_stock_order_request(ctx, request_id=request_id)


@router.post(
    "/stock-order-requests/{request_id}/payment",
    response_model=StockRequestOut,
    responses={200: {"description": "Paid (the same payment again: `Idempotent-Replayed: true`)."}},
)
@blocking
def pay_stock_order_request(
    ctx: Writer,
    body: StockPaymentIn,
    response: Response,
    request_id: str = Path(description=REQUEST_ID),
) -> dict[str, Any]:
    """Record a stock order request's payment

    What a payment provider's notification handler calls: the request becomes a paid stock
    order in the same transaction, its cover checked again. Refused when cancelled or
    expired (409), or for another amount (422 `stock_amount_mismatch`)."""
    paid, replayed = stock_requests.pay_stock_order_request(
        ctx,
        request_id=request_id,
        provider_txn_id=body.provider_txn_id,
        amount_fen=body.amount_fen,
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return paid


@router.post("/stock-order-requests/{request_id}/cancel", response_model=StockRequestOut)
@blocking
def cancel_stock_order_request(
    ctx: Writer, request_id: str = Path(description=REQUEST_ID)
) -> dict[str, Any]:
    """Cancel a stock order request

    Only while it awaits payment (else 409 `stock_request_already_paid`,
    `stock_request_cancelled` or `stock_request_expired`)."""
    return stock_requests.cancel_stock_order_request(ctx, request_id=request_id)
