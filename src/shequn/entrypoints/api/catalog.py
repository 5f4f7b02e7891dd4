from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, status
from pydantic import Field

from shequn.catalog import service
from shequn.entrypoints.api.http import API_PREFIX, Body, Reader, Writer, blocking

router = APIRouter(prefix=API_PREFIX, tags=["catalog"])


class TierPrice(Body):
    tier_id: str
    member_price_fen: int | None = None
    wholesale_price_fen: int | None = None


class ProductCreate(Body):
    sku: str
    name: str
    price_fen: int
    ladder_role: Literal["bait", "core", "partner"]
    category: str | None = None
    active: bool = True
    tier_prices: list[TierPrice] = Field(default_factory=list)


class ProductUpdate(Body):
    name: str | None = None
    price_fen: int | None = None
    ladder_role: Literal["bait", "core", "partner"] | None = None
    category: str | None = None
    active: bool | None = None
    tier_prices: list[TierPrice] | None = None


@router.post("/products", status_code=status.HTTP_201_CREATED)
@blocking
def create_product(ctx: Writer, body: ProductCreate) -> dict[str, Any]:
    data = body.model_dump()
    return service.create_product(ctx, **data)


@router.get("/products")
@blocking
def list_products(
    ctx: Reader,
    ladder_role: str | None = None,
    category: str | None = None,
    active: bool | None = None,
) -> list[dict[str, Any]]:
    return service.list_products(ctx, ladder_role=ladder_role, category=category, active=active)


@router.get("/products/{sku}")
@blocking
def get_product(ctx: Reader, sku: str) -> dict[str, Any]:
    return service.get_product(ctx, sku=sku)


@router.patch("/products/{sku}")
@blocking
def update_product(ctx: Writer, sku: str, body: ProductUpdate) -> dict[str, Any]:
    return service.update_product(ctx, sku=sku, **body.model_dump(exclude_unset=True))
