from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from shequn.entrypoints.api.http import API_PREFIX, Writer, blocking
from shequn.entrypoints.api.shapes import Shape
from shequn.flows.growth_settlement import settle_with_growth

router = APIRouter(prefix=API_PREFIX, tags=["settlement"])


class GrowthSweepOut(Shape):
    events: int = Field(description="Order events processed.")
    commissions_held: int = Field(description="Commission lines held for an operator.")
    points_earned: int
    rewards: int = Field(description="Sharing rewards recorded (granted, held or capped).")
    coupons_restored: int
    points_restored: int
    rewards_reversed_fen: int
    points_taken_back: int


class SettlementRunOut(Shape):
    run_id: str = Field(description="The run (`stl_…`), named in the events it recorded.")
    orders_cancelled: int = Field(
        description="Unpaid orders older than `unpaid_cancel_minutes`, cancelled."
    )
    orders_completed: int = Field(
        description="Shipped orders older than `auto_complete_days`, completed."
    )
    orders_closed: int = Field(
        description="Completed orders past the after-sales window (`after_sales_days`), closed."
    )
    commissions_released: int = Field(description="Commission lines made available.")
    released_fen: int = Field(description="What they pay, in fen.")
    growth: GrowthSweepOut = Field(
        description="What growth did for the orders' steps: holds before the release, "
        "points and sharing rewards of the orders closed, what refunds gave or took back."
    )


@router.post("/settlement/run", response_model=SettlementRunOut)
@blocking
def run(ctx: Writer) -> dict[str, Any]:
    """Run the settlement

    Cancel the orders left unpaid too long, complete the shipped orders nobody confirmed,
    close every order whose after-sales window has passed and release its commissions to
    the members' wallets, then grant the points and sharing rewards of the orders closed.
    Running it again at once changes nothing."""
    return settle_with_growth(ctx)
