from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Path, Query, status
from pydantic import Field

from shequn.catalog import service
from shequn.catalog.rules import LadderRole
from shequn.entrypoints.api.http import API_PREFIX, Body, Reader, Writer, blocking
from shequn.entrypoints.api.shapes import Shape, limits, text_limits
from shequn.money import MAX_AMOUNT_FEN

router = APIRouter(prefix=API_PREFIX, tags=["catalog"])

Role = Literal["bait", "core", "partner"]
ROLE_TEXT = (
    "Its step on the product ladder: `bait` (引流/试用), `core` (会员), `partner` (合伙人礼包)."
)
NAME_TEXT = "1 to 120 characters once spaces are collapsed (else 422 `product_name_invalid`)."
CATEGORY_TEXT = "1 to 40 characters once spaces are collapsed (else 422 `category_invalid`)."
PRICE: dict[str, Any] = {"minimum": 0, "maximum": MAX_AMOUNT_FEN}
SKU_ID = "The product's SKU."
TIER_PRICES_TEXT = (
    "A price per tier (each tier once, else 422 `tier_price_duplicate`), never above the "
    "list price (else 422 `tier_price_above_list`)."
)


class TierPrice(Body):
    tier_id: str = Field(description="The tier (`tier_…`).")
    member_price_fen: int | None = Field(
        default=None,
        description="What a member of the tier pays for one unit, in fen (else 422 "
        "`amount_invalid`).",
        json_schema_extra=limits(**PRICE),
    )
    wholesale_price_fen: int | None = Field(
        default=None,
        description="What an agent of the tier pays for one unit of cloud stock, in fen (else "
        "422 `amount_invalid`).",
        json_schema_extra=limits(**PRICE),
    )


class ProductCreate(Body):
    sku: str = Field(
        description="Letters, digits, `.`, `_` and `-`, starting with a letter or digit, at most "
        "64 (else 422 `sku_invalid`); another product's: 409 `sku_taken`.",
        json_schema_extra=limits(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"),
    )
    name: str = Field(description=NAME_TEXT, json_schema_extra=limits(**text_limits(120)))
    price_fen: int = Field(
        description="The list price of one unit, in fen (else 422 `amount_invalid`).",
        json_schema_extra=limits(**PRICE),
    )
    ladder_role: Role = Field(description=ROLE_TEXT)
    category: str | None = Field(
        default=None, description=CATEGORY_TEXT, json_schema_extra=limits(**text_limits(40))
    )
    active: bool = Field(default=True, description="Only an active product can be ordered.")
    tier_prices: list[TierPrice] = Field(default_factory=list, description=TIER_PRICES_TEXT)


class ProductUpdate(Body):
    name: str | None = Field(
        default=None,
        description=NAME_TEXT,
        json_schema_extra=limits(nullable=False, **text_limits(120)),
    )
    price_fen: int | None = Field(
        default=None,
        description="The list price of one unit, in fen (else 422 `amount_invalid`).",
        json_schema_extra=limits(nullable=False, **PRICE),
    )
    ladder_role: Role | None = Field(
        default=None, description=ROLE_TEXT, json_schema_extra=limits(nullable=False)
    )
    category: str | None = Field(
        default=None,
        description=CATEGORY_TEXT + " Null: no category.",
        json_schema_extra=limits(**text_limits(40)),
    )
    active: bool | None = Field(
        default=None,
        description="Only an active product can be ordered.",
        json_schema_extra=limits(nullable=False),
    )
    tier_prices: list[TierPrice] | None = Field(
        default=None,
        description="The whole set of tier prices, replacing the one the product has. "
        + TIER_PRICES_TEXT,
        json_schema_extra=limits(nullable=False),
    )


class TierPriceOut(Shape):
    tier_id: str
    member_price_fen: int | None
    wholesale_price_fen: int | None


class ProductOut(Shape):
    id: str
    sku: str
    name: str
    price_fen: int = Field(description="The list price of one unit, in fen.")
    ladder_role: LadderRole
    category: str | None
    active: bool
    tier_prices: list[TierPriceOut]
    created_at: datetime


@router.post("/products", status_code=status.HTTP_201_CREATED, response_model=ProductOut)
@blocking
def create_product(ctx: Writer, body: ProductCreate) -> dict[str, Any]:
    """Add a product to the catalog

    With its list price, its step on the product ladder and any tier prices."""
    data = body.model_dump()
    return service.create_product(ctx, **data)


@router.get("/products", response_model=list[ProductOut])
@blocking
def list_products(
    ctx: Reader,
    ladder_role: str | None = Query(
        default=None,
        description="Only products at this step of the ladder (else 422 `ladder_role_invalid`).",
        json_schema_extra={"enum": [r.value for r in LadderRole]},
    ),
    category: str | None = Query(default=None, description="Only products of this category."),
    active: bool | None = Query(default=None, description="Only active or inactive products."),
) -> list[dict[str, Any]]:
    """List the catalog

    Every product, in SKU order, with its tier prices."""
    return service.list_products(ctx, ladder_role=ladder_role, category=category, active=active)


@router.get("/products/{sku}", response_model=ProductOut)
@blocking
def get_product(ctx: Reader, sku: str = Path(description=SKU_ID)) -> dict[str, Any]:
    """Read a product

    With its tier prices."""
    return service.get_product(ctx, sku=sku)


@router.patch("/products/{sku}", response_model=ProductOut)
@blocking
def update_product(
    ctx: Writer, body: ProductUpdate, sku: str = Path(description=SKU_ID)
) -> dict[str, Any]:
    """Change a product

    Only the fields sent change; `tier_prices` replaces the whole set. Orders already made
    keep the prices they were made at."""
    return service.update_product(ctx, sku=sku, **body.model_dump(exclude_unset=True))
