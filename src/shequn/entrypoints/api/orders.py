"""Order routes. Creating and paying an order are what a shop sends for every sale, so those
two are written lean (`lean_post`); the others are plain definitions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import Field

from shequn.catalog.rules import LadderRole
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
from shequn.entrypoints.api.shapes import (
    IDEMPOTENCY_KEY,
    IDEMPOTENCY_KEY_TEXT,
    CommissionKind,
    CommissionStatus,
    OrderCommissionOut,
    Page,
    Shape,
    cursor,
    limits,
    page_limit,
    replay_responses,
    text_limits,
)
from shequn.flows.growth_orders import create_order_with_offers
from shequn.money import MAX_AMOUNT_FEN
from shequn.orders import creation, payment, refunds, transitions, views
from shequn.orders.rules import OrderStatus
from shequn.tenancy.rules import Permission

router = APIRouter(prefix=API_PREFIX, tags=["orders"])

ORDER_ID = "The order's id (`ord_…`)."
SKU: dict[str, Any] = {"pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}


# --- requests ------------------------------------------------------------------------------


class LineIn(Body):
    sku: str = Field(
        description="The product's SKU; it must be active (else 409 `product_inactive`).",
        json_schema_extra=limits(**SKU),
    )
    quantity: int = Field(
        description=f"Units, 1 to {creation.MAX_QUANTITY} (else 422 `quantity_invalid`).",
        json_schema_extra=limits(minimum=1, maximum=creation.MAX_QUANTITY),
    )


class OrderCreate(Body):
    buyer_id: str = Field(description="The buying member's id (`mem_…`).")
    lines: list[LineIn] = Field(
        description=f"1 to {creation.MAX_LINES} lines (else 422 `order_lines_invalid`), each SKU "
        "once (else 422 `order_sku_repeated`). Each is priced at the buyer's tier.",
        json_schema_extra=limits(minItems=1, maxItems=creation.MAX_LINES),
    )
    idempotency_key: str | None = Field(
        default=None,
        description="Often the shop's own order number. " + IDEMPOTENCY_KEY_TEXT,
        json_schema_extra=limits(**IDEMPOTENCY_KEY),
    )
    attributed_sharer_id: str | None = Field(
        default=None,
        description="The member whose share led to the sale (`mem_…`), not the buyer itself; "
        "an agent's cloud stock fills the order when it holds the units.",
    )
    share_code: str | None = Field(
        default=None,
        description="The share link the buyer came through: its member is the sharer (else "
        "404 `share_link_not_found`; with another `attributed_sharer_id`, 422 "
        "`share_code_sharer_mismatch`).",
        json_schema_extra=limits(minLength=1, maxLength=16),
    )
    coupon_ids: list[str] | None = Field(
        default=None,
        description="The buyer's coupons to apply (at most 5, one per template): each takes "
        "its discount from the lines in its scope, so commissions are on what is paid.",
        json_schema_extra=limits(maxItems=5),
    )
    points_fen: int = Field(
        default=0,
        description="Pay this much with points (whole points, at most the tenant's "
        "`points_cap_bp` of the order; else 409 `points_over_cap`, `insufficient_points`).",
        json_schema_extra=limits(minimum=0, maximum=MAX_AMOUNT_FEN),
    )


class PaymentIn(Body):
    provider_txn_id: str = Field(
        description="The payment provider's transaction id: the same callback sent again "
        "changes nothing. Trimmed; 1 to 120 characters (else 422 `provider_txn_id_invalid`).",
        json_schema_extra=limits(**text_limits(120)),
    )
    amount_fen: int = Field(
        description="The amount paid, in fen: exactly the order's `total_fen` (else 422 "
        "`payment_amount_mismatch`).",
        json_schema_extra=limits(minimum=0, maximum=MAX_AMOUNT_FEN),
    )


class RefundIn(Body):
    amount_fen: int = Field(
        description="The amount to refund, in fen: at most what is paid and not yet refunded "
        "(else 409 `refund_exceeds_paid`); spread over the lines in proportion.",
        json_schema_extra=limits(minimum=1, maximum=MAX_AMOUNT_FEN),
    )
    reason: str = Field(
        max_length=500,
        description="Why, for the audit trail: 1 to 500 characters once spaces are collapsed "
        "(else 422 `refund_reason_required`).",
        json_schema_extra=limits(minLength=1, pattern=r"\S"),
    )
    idempotency_key: str | None = Field(
        default=None,
        description=IDEMPOTENCY_KEY_TEXT,
        json_schema_extra=limits(**IDEMPOTENCY_KEY),
    )


# --- answers -------------------------------------------------------------------------------


class OrderLineOut(Shape):
    id: str
    sku: str
    name: str = Field(description="The product's name at the time of the order.")
    ladder_role: LadderRole
    quantity: int
    list_price_fen: int = Field(description="The list price of one unit, in fen.")
    unit_price_fen: int = Field(description="The price of one unit at the buyer's tier, in fen.")
    line_total_fen: int = Field(description="`unit_price_fen` × `quantity`, in fen.")
    refunded_fen: int = Field(description="Refunded on this line so far, in fen.")


class OrderSummaryOut(Shape):
    id: str
    buyer_id: str
    status: OrderStatus = Field(
        description="created → paid → shipped → completed → closed (after the after-sales "
        "window, commissions released); created → cancelled; refunded once refunded in full."
    )
    subtotal_fen: int = Field(description="At list prices, in fen.")
    discount_fen: int = Field(description="The buyer's tier discount, in fen.")
    total_fen: int = Field(description="The amount due, in fen.")
    paid_fen: int
    refunded_fen: int
    attributed_sharer_id: str | None
    idempotency_key: str | None
    created_at: datetime
    paid_at: datetime | None
    shipped_at: datetime | None
    completed_at: datetime | None
    closed_at: datetime | None
    cancelled_at: datetime | None


class OrderOut(OrderSummaryOut):
    """An order with its lines."""

    lines: list[OrderLineOut]


class OrderDiscountOut(Shape):
    line_id: str
    kind: Literal["coupon", "points"]
    coupon_id: str | None
    amount_fen: int = Field(description="Taken off this line, in fen.")


class OfferedOrderOut(OrderOut):
    """An order with its lines and, when coupons or points paid part of it, each line's
    discounts."""

    discounts: list[OrderDiscountOut] | None = Field(
        default=None, description="With `coupon_ids` or `points_fen` only."
    )


class PaidCommissionOut(Shape):
    """What the payment pays one member, in brief (`GET /orders/{order_id}` has each line)."""

    beneficiary_id: str
    level: int
    kind: CommissionKind
    amount_fen: int
    status: CommissionStatus


class PaidOrderOut(OrderOut):
    """A paid order with the commissions its payment accrued."""

    commissions: list[PaidCommissionOut]


class PaymentOut(Shape):
    provider_txn_id: str
    amount_fen: int
    created_at: datetime


class RefundOut(Shape):
    id: str
    order_id: str
    amount_fen: int
    reason: str
    phase: Literal["before_close", "after_close"] = Field(
        description="Before close, pending commission is cancelled; after close, released "
        "commission is reversed (a debt where the wallet cannot cover it)."
    )
    commission_cancelled_fen: int
    commission_reversed_fen: int
    created_at: datetime


class OrderDetailOut(OrderOut):
    """An order with its lines, its payment, its refunds and its commission lines."""

    payment: PaymentOut | None
    refunds: list[RefundOut]
    commissions: list[OrderCommissionOut]


class OrderPage(Page[OrderSummaryOut]):
    pass


# --- routes --------------------------------------------------------------------------------


@lean_post(
    router,
    "/orders",
    body=OrderCreate,
    response=OfferedOrderOut,
    status_code=status.HTTP_201_CREATED,
    responses=replay_responses(OfferedOrderOut, "order"),
)
async def create_order(request: Request) -> Response:
    """Create an order

    Prices the lines at the buyer's tier, takes off the coupons' and points' discounts line
    by line (commissions are computed on what each line pays) and records the order, unpaid.
    With an
    `idempotency_key` already used for the same request, it answers 200 with the first order
    and `Idempotent-Replayed: true`."""
    read = await read_body(request, OrderCreate)
    ctx = await authorize(request, Permission.WRITE)
    body = validate_body(OrderCreate, read)
    if body.coupon_ids or body.points_fen or body.share_code is not None:
        order, replayed = await run_use_case(
            ctx.db,
            create_order_with_offers,
            ctx,
            buyer_id=body.buyer_id,
            lines=[{"sku": line.sku, "quantity": line.quantity} for line in body.lines],
            idempotency_key=body.idempotency_key,
            attributed_sharer_id=body.attributed_sharer_id,
            share_code=body.share_code,
            coupon_ids=body.coupon_ids or (),
            points_fen=body.points_fen,
        )
        return json_response(order, 200 if replayed else 201, replayed=replayed)
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


@router.get("/orders", response_model=OrderPage)
@blocking
def list_orders(
    ctx: Reader,
    buyer_id: str | None = Query(default=None, description="Only this buyer's (`mem_…`)."),
    status: str | None = Query(
        default=None,
        description="Only orders in this state (else 422 `order_status_invalid`).",
        json_schema_extra={"enum": [s.value for s in OrderStatus]},
    ),
    idempotency_key: str | None = Query(
        default=None,
        description="The order made with this key (often the shop's order number).",
        json_schema_extra=IDEMPOTENCY_KEY,
    ),
    after: str | None = Query(
        default=None,
        description="The `next_after` of the page before (else 422 `cursor_invalid`).",
        json_schema_extra=cursor("ord"),
    ),
    limit: int = Query(
        default=50,
        description="Orders per page, 1 to 500 (else 422 `limit_out_of_range`).",
        json_schema_extra=page_limit(),
    ),
) -> dict[str, Any]:
    """List orders

    Oldest first, a page at a time."""
    return views.list_orders(
        ctx,
        buyer_id=buyer_id,
        status=status,
        idempotency_key=idempotency_key,
        after=after,
        limit=limit,
    )


@router.get("/orders/{order_id}", response_model=OrderDetailOut)
@blocking
def get_order(ctx: Reader, order_id: str = Path(description=ORDER_ID)) -> dict[str, Any]:
    """Read an order

    With its lines, its payment, its refunds and every commission line it pays."""
    return views.get_order(ctx, order_id=order_id)


@lean_post(
    router,
    "/orders/{order_id}/pay",
    body=PaymentIn,
    response=PaidOrderOut,
    parameters={"order_id": Path(description=ORDER_ID)},
)
async def pay_order(request: Request) -> Response:
    """Record an order's payment

    The payment provider's callback: marks the order paid and accrues the commissions of
    the active plan (pending until the order closes). The same callback again answers the
    order as it is now with `Idempotent-Replayed: true` and changes nothing. A payment for an
    order already cancelled is recorded and refunded in full at once."""
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


@router.post("/orders/{order_id}/ship", response_model=OrderDetailOut)
@blocking
def ship_order(ctx: Writer, order_id: str = Path(description=ORDER_ID)) -> dict[str, Any]:
    """Mark a paid order shipped

    Only a paid order ships (else 409 `order_transition_invalid`)."""
    return transitions.ship_order(ctx, order_id=order_id)


@router.post("/orders/{order_id}/complete", response_model=OrderDetailOut)
@blocking
def complete_order(ctx: Writer, order_id: str = Path(description=ORDER_ID)) -> dict[str, Any]:
    """Mark a shipped order completed

    The buyer confirmed receipt: the after-sales window (`after_sales_days`) starts now, and
    the settlement run closes the order and releases its commissions once it has passed."""
    return transitions.complete_order(ctx, order_id=order_id)


@router.post("/orders/{order_id}/cancel", response_model=OrderDetailOut)
@blocking
def cancel_order(ctx: Writer, order_id: str = Path(description=ORDER_ID)) -> dict[str, Any]:
    """Cancel an unpaid order

    A payment that arrives afterwards is recorded and refunded in full."""
    return transitions.cancel_order(ctx, order_id=order_id)


@router.post(
    "/orders/{order_id}/refunds",
    status_code=status.HTTP_201_CREATED,
    response_model=RefundOut,
    responses=replay_responses(RefundOut, "refund"),
)
@blocking
def refund_order(
    ctx: Writer, body: RefundIn, response: Response, order_id: str = Path(description=ORDER_ID)
) -> dict[str, Any]:
    """Refund part or all of a paid order

    Before or after close. Commission follows: pending lines are cancelled, released lines
    reversed (a debt where the member's wallet cannot cover it). With an `idempotency_key`
    already used for the same refund, it answers 200 with the first refund and
    `Idempotent-Replayed: true`."""
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
