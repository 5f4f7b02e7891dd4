"""Growth accounts: points (balance, lots, history, awards, the redemption list), fraud
signals and the holds operators decide, and agents' cloud stock."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import Field

from shequn.entrypoints.api.http import API_PREFIX, Admin, Body, Reader, Writer, blocking
from shequn.entrypoints.api.shapes import (
    IDEMPOTENCY_KEY,
    IDEMPOTENCY_KEY_TEXT,
    Page,
    Shape,
    cursor,
    limits,
    page_limit,
    replay_responses,
    text_limits,
)
from shequn.growth import decisions
from shequn.growth.holds import service as holds
from shequn.growth.points import service as points
from shequn.growth.stock import service as stock
from shequn.money import MAX_AMOUNT_FEN

router = APIRouter(prefix=API_PREFIX, tags=["growth"])

MEMBER_ID = "The member's id (`mem_…`)."
HOLD_ID = "The hold's id (`hld_…`)."
HoldStatus = Literal["held", "released", "cancelled"]
HoldReason = Literal["self_referral", "linked_accounts", "velocity", "re_registration"]


# --- points --------------------------------------------------------------------------------


class PointLotOut(Shape):
    id: str
    source: str = Field(description="`purchase`, `rule`, `manual`, `sharing`, `refund`…")
    ref: str
    amount: int
    remaining: int
    expired: int
    earned_at: datetime
    expires_at: datetime
    spendable: bool


class PointMoveOut(Shape):
    kind: str = Field(description="The journal transaction's kind (`points_earned`, …).")
    ref_type: str
    ref_id: str
    points: int = Field(description="Positive: earned; negative: spent, expired or taken back.")
    at: datetime


class MemberPointsOut(Shape):
    member_id: str
    tier_id: str | None = Field(description="The member's status track, apart from its points.")
    balance: int = Field(description="Spendable points now.")
    awaiting_expiry: int = Field(description="Points in lots past their date, not yet expired.")
    lots: list[PointLotOut] = Field(description="Newest first; spent oldest first.")
    history: list[PointMoveOut] = Field(description="The points account's moves, newest first.")


class PointsAwardIn(Body):
    rule: str = Field(
        description="A rule of the tenant's `points_rules` (else 404 `points_rule_not_found`), "
        "or `manual` with `points`.",
        json_schema_extra=limits(**text_limits(40)),
    )
    ref: str = Field(
        description="What earned them (a ritual's or event's id): once per rule and ref.",
        json_schema_extra=limits(**text_limits(60)),
    )
    points: int | None = Field(
        default=None,
        description="With `manual` only (else 422 `points_set_by_rule`).",
        json_schema_extra=limits(minimum=1, maximum=10_000_000),
    )


class PointsAwardOut(Shape):
    member_id: str
    rule: str
    ref: str
    points: int
    replayed: bool = Field(description="True: this rule and ref had already earned them.")


class RedemptionItemIn(Body):
    name: str = Field(
        description="1 to 60 characters.", json_schema_extra=limits(**text_limits(60))
    )
    points: int = Field(
        description="Points per unit.", json_schema_extra=limits(minimum=1, maximum=10_000_000)
    )
    stock: int | None = Field(
        default=None,
        description="Units available; none: unlimited.",
        json_schema_extra=limits(minimum=0, maximum=10_000_000),
    )


class RedemptionItemOut(Shape):
    id: str
    name: str
    points: int
    stock: int | None
    active: bool
    created_at: datetime


class RedemptionIn(Body):
    member_id: str = Field(description="The member spending its points (`mem_…`).")
    item_id: str = Field(description="The redemption list's item (`rit_…`).")
    quantity: int = Field(
        default=1, description="1 to 1000.", json_schema_extra=limits(minimum=1, maximum=1_000)
    )
    idempotency_key: str | None = Field(
        default=None, description=IDEMPOTENCY_KEY_TEXT, json_schema_extra=limits(**IDEMPOTENCY_KEY)
    )


class RedemptionOut(Shape):
    id: str
    member_id: str
    item_id: str
    quantity: int
    points: int
    created_at: datetime


@router.get("/members/{member_id}/points", response_model=MemberPointsOut)
@blocking
def member_points(ctx: Reader, member_id: str = Path(description=MEMBER_ID)) -> dict[str, Any]:
    """Read a member's points

    The spendable balance, the lots with their expiry and the history of moves."""
    return points.member_points(ctx, member_id=member_id)


@router.post(
    "/members/{member_id}/points",
    status_code=status.HTTP_201_CREATED,
    response_model=PointsAwardOut,
)
@blocking
def award_points(
    ctx: Writer, body: PointsAwardIn, member_id: str = Path(description=MEMBER_ID)
) -> dict[str, Any]:
    """Award points

    For a ritual, an event or anything the tenant's rules name, once per rule and ref."""
    return points.award_points(
        ctx, member_id=member_id, rule=body.rule, ref=body.ref, points=body.points
    )


@router.post(
    "/redemption-items", status_code=status.HTTP_201_CREATED, response_model=RedemptionItemOut
)
@blocking
def create_redemption_item(ctx: Admin, body: RedemptionItemIn) -> dict[str, Any]:
    """Add an item to the redemption list

    Members spend points on it."""
    return points.create_redemption_item(ctx, name=body.name, points=body.points, stock=body.stock)


@router.get("/redemption-items", response_model=list[RedemptionItemOut])
@blocking
def list_redemption_items(ctx: Reader) -> list[dict[str, Any]]:
    """List the redemption list

    Oldest first."""
    return points.list_redemption_items(ctx)


@router.post(
    "/redemptions",
    status_code=status.HTTP_201_CREATED,
    response_model=RedemptionOut,
    responses=replay_responses(RedemptionOut, "redemption"),
)
@blocking
def redeem(ctx: Writer, body: RedemptionIn, response: Response) -> dict[str, Any]:
    """Redeem points

    Takes the item's stock and the points, oldest lot first (409 `insufficient_points`)."""
    found, replayed = points.redeem(
        ctx,
        member_id=body.member_id,
        item_id=body.item_id,
        quantity=body.quantity,
        idempotency_key=body.idempotency_key,
    )
    if replayed:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return found


# --- fraud signals and holds ---------------------------------------------------------------


class SignalIn(Body):
    kind: Literal["registration", "order", "login"] = Field(description="When it was seen.")
    device_id: str | None = Field(
        default=None, description="The device's id.", json_schema_extra=limits(**text_limits(200))
    )
    address: str | None = Field(
        default=None,
        description="A delivery address.",
        json_schema_extra=limits(**text_limits(200)),
    )
    payment_account: str | None = Field(
        default=None,
        description="A payment account.",
        json_schema_extra=limits(**text_limits(200)),
    )


class SignalOut(Shape):
    id: str
    member_id: str
    kind: Literal["registration", "order", "login"]
    seen_at: datetime


class HoldOut(Shape):
    id: str
    kind: Literal["commission", "reward"]
    subject_id: str = Field(description="The commission line or the sharing reward held.")
    member_id: str = Field(description="Who would be paid.")
    buyer_id: str
    order_id: str
    amount_fen: int
    points: int
    reasons: list[HoldReason]
    status: HoldStatus
    decided_by: str | None
    decision_reason: str | None
    released_fen: int
    created_at: datetime
    decided_at: datetime | None


class HoldPage(Page[HoldOut]):
    pass


class DecisionIn(Body):
    reason: str = Field(
        description="Why, 1 to 500 characters (else 422 `hold_reason_required`).",
        json_schema_extra=limits(**text_limits(500)),
    )


@router.post(
    "/members/{member_id}/signals", status_code=status.HTTP_201_CREATED, response_model=SignalOut
)
@blocking
def record_signal(
    ctx: Writer, body: SignalIn, member_id: str = Path(description=MEMBER_ID)
) -> dict[str, Any]:
    """Record what a shop saw of a member

    Device, address and payment account, kept as fingerprints, for the fraud checks."""
    return holds.record_signal(ctx, member_id=member_id, **body.model_dump())


@router.get("/holds", response_model=HoldPage)
@blocking
def list_holds(
    ctx: Reader,
    status: HoldStatus | None = Query(default=None, description="Only holds in this state."),
    member_id: str | None = Query(default=None, description="Only this member's (`mem_…`)."),
    after: str | None = Query(
        default=None,
        description="The `next_after` of the page before (else 422 `cursor_invalid`).",
        json_schema_extra=cursor("hld"),
    ),
    limit: int = Query(
        default=50,
        description="Holds per page, 1 to 500 (else 422 `limit_out_of_range`).",
        json_schema_extra=page_limit(),
    ),
) -> dict[str, Any]:
    """List fraud holds

    Commissions and rewards withheld for an operator, oldest first."""
    return holds.list_holds(ctx, status=status, member_id=member_id, after=after, limit=limit)


@router.post("/holds/{hold_id}/release", response_model=HoldOut)
@blocking
def release_hold(
    ctx: Writer, body: DecisionIn, hold_id: str = Path(description=HOLD_ID)
) -> dict[str, Any]:
    """Release a hold

    Pays what it withheld, as far as the order still stands; a decided hold cannot be
    decided again (409 `hold_already_decided`)."""
    return decisions.release_hold(ctx, hold_id=hold_id, reason=body.reason)


@router.post("/holds/{hold_id}/cancel", response_model=HoldOut)
@blocking
def cancel_hold(
    ctx: Writer, body: DecisionIn, hold_id: str = Path(description=HOLD_ID)
) -> dict[str, Any]:
    """Cancel a hold

    What it withheld is never paid; it stays on the brand's books."""
    return decisions.cancel_hold(ctx, hold_id=hold_id, reason=body.reason)


# --- cloud stock ---------------------------------------------------------------------------


class StockProductOut(Shape):
    sku: str
    name: str
    units: int
    cost_fen: int = Field(description="What the units held cost the agent.")
    sold_30d: int = Field(description="Units sold from stock in the last 30 days.")
    monthly_sales_used: int = Field(
        description="The units per 30 days cover is counted against (the tenant's default "
        "for an agent with under 30 days of history)."
    )
    cover_days: str = Field(description="Days of cover, one decimal; `∞` when nothing sells.")
    buyback_eligible_units: int


class AgentStockOut(Shape):
    member_id: str
    tier_id: str | None
    cover_limit_days: int
    buyback_window_days: int
    buyback_price_bp: int
    own_sale_proceeds_fen: int = Field(description="Margin earned on retail drawn from stock.")
    products: list[StockProductOut]


class StockLineIn(Body):
    sku: str = Field(description="The product.")
    quantity: int = Field(
        description="Units, 1 to 100,000.", json_schema_extra=limits(minimum=1, maximum=100_000)
    )


class StockOrderIn(Body):
    lines: list[StockLineIn] = Field(description="Each SKU once.")
    provider_txn_id: str = Field(
        description="The payment's transaction id: the same one again changes nothing.",
        json_schema_extra=limits(**text_limits(120)),
    )
    amount_fen: int = Field(
        description="Exactly the units at the agent's tier's wholesale price (else 422 "
        "`stock_amount_mismatch`).",
        json_schema_extra=limits(minimum=0, maximum=MAX_AMOUNT_FEN),
    )


class StockOrderLineOut(Shape):
    sku: str
    product_id: str
    quantity: int
    unit_cost_fen: int


class StockOrderOut(Shape):
    id: str
    member_id: str
    tier_id: str
    lines: list[StockOrderLineOut]
    amount_fen: int
    provider_txn_id: str
    created_at: datetime


class BuybackIn(Body):
    sku: str = Field(description="The product.")
    quantity: int = Field(
        description="Units, at most the eligible ones (else 409 `stock_buyback_exceeds`).",
        json_schema_extra=limits(minimum=1, maximum=100_000),
    )


class BuybackOut(Shape):
    id: str
    member_id: str
    sku: str
    quantity: int
    amount_fen: int = Field(description="Paid into the agent's wallet.")
    stock_after: int
    created_at: datetime


@router.get("/members/{member_id}/stock", response_model=AgentStockOut)
@blocking
def agent_stock(ctx: Reader, member_id: str = Path(description=MEMBER_ID)) -> dict[str, Any]:
    """Read an agent's cloud stock

    Units by product, sales, days of cover, buyback terms and own-sale proceeds."""
    return stock.agent_stock(ctx, member_id=member_id)


@router.post(
    "/members/{member_id}/stock-orders",
    status_code=status.HTTP_201_CREATED,
    response_model=StockOrderOut,
    responses=replay_responses(StockOrderOut, "stock order"),
)
@blocking
def place_stock_order(
    ctx: Writer,
    body: StockOrderIn,
    response: Response,
    member_id: str = Path(description=MEMBER_ID),
) -> dict[str, Any]:
    """Buy cloud stock

    At the agent's tier's wholesale price; refused when a product would hold more days of
    cover than the tenant allows (409 `stock_cover_exceeded`, with the figure)."""
    order, replayed = stock.place_stock_order(
        ctx,
        member_id=member_id,
        lines=[line.model_dump() for line in body.lines],
        provider_txn_id=body.provider_txn_id,
        amount_fen=body.amount_fen,
    )
    if replayed:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return order


@router.post(
    "/members/{member_id}/stock-buybacks",
    status_code=status.HTTP_201_CREATED,
    response_model=BuybackOut,
)
@blocking
def buy_back(
    ctx: Writer, body: BuybackIn, member_id: str = Path(description=MEMBER_ID)
) -> dict[str, Any]:
    """Buy back unsold stock

    Units bought within the tenant's window, at its share of their cost, into the wallet."""
    return stock.buy_back(ctx, member_id=member_id, sku=body.sku, quantity=body.quantity)
