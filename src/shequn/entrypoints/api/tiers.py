from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from shequn.entrypoints.api.http import API_PREFIX, Admin, Body, Reader, blocking
from shequn.flows import tiers as service

router = APIRouter(prefix=API_PREFIX, tags=["tiers"])


class TierCreate(Body):
    name: str
    rank: int
    discount_bp: int = 0
    may_distribute: bool = False
    upgrade_spend_fen: int | None = None
    upgrade_single_order_fen: int | None = None
    upgrade_product_sku: str | None = None
    upgrade_team_headcount: int | None = None


class TierUpdate(Body):
    name: str | None = None
    rank: int | None = None
    discount_bp: int | None = None
    may_distribute: bool | None = None
    upgrade_spend_fen: int | None = None
    upgrade_single_order_fen: int | None = None
    upgrade_product_sku: str | None = None
    upgrade_team_headcount: int | None = None


@router.post("/tiers", status_code=status.HTTP_201_CREATED)
@blocking
def create_tier(ctx: Admin, body: TierCreate) -> dict[str, Any]:
    return service.create_tier(ctx, **body.model_dump())


@router.get("/tiers")
@blocking
def list_tiers(ctx: Reader) -> list[dict[str, Any]]:
    return service.list_tiers(ctx)


@router.patch("/tiers/{tier_id}")
@blocking
def update_tier(ctx: Admin, tier_id: str, body: TierUpdate) -> dict[str, Any]:
    return service.update_tier(ctx, tier_id=tier_id, **body.model_dump(exclude_unset=True))
