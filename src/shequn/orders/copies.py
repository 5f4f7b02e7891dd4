"""The copies the order path keeps in the snapshot (`shequn.snapshot`): products at the price
of a tier, and the orders this process created and has not seen paid. Each is checked by the
write that uses it: a product by its version, an order by its status (a paid order is never
paid again, and an unpaid order's lines do not change)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shequn.distribution.rules import SaleLine
from shequn.members.repo import Buyer
from shequn.snapshot import Snapshot


@dataclass(frozen=True)
class ProductPrice:
    """A product as an order reads it, with its member price at one tier (None: no tier, or
    no explicit price at it)."""

    product_id: str
    sku: str
    name: str
    price_fen: int
    ladder_role: str
    category: str | None
    active: bool
    member_price_fen: int | None
    version: int


@dataclass(frozen=True)
class UnpaidOrder:
    """An order as its creation wrote it, with its buyer as the creation found it."""

    order: Mapping[str, Any]  # the summary keys
    lines: tuple[Mapping[str, Any], ...]  # the line views
    sale_lines: tuple[SaleLine, ...]
    buyer: Buyer


def remember_product(
    snapshot: Snapshot, tenant_id: str, tier_id: str | None, product: ProductPrice
) -> None:
    snapshot.kind("products").put((tenant_id, product.sku, tier_id), product)


def remembered_product(
    snapshot: Snapshot, tenant_id: str, sku: str, tier_id: str | None
) -> ProductPrice | None:
    found: ProductPrice | None = snapshot.kind("products").get((tenant_id, sku, tier_id))
    return found


def remember_unpaid(snapshot: Snapshot, tenant_id: str, order: UnpaidOrder) -> None:
    snapshot.kind("unpaid_orders").put((tenant_id, order.order["id"]), order)


def take_unpaid(snapshot: Snapshot, tenant_id: str, order_id: str) -> UnpaidOrder | None:
    """The order as created here, forgotten (a payment uses it once)."""
    found: UnpaidOrder | None = snapshot.kind("unpaid_orders").take((tenant_id, order_id))
    return found


def sale_line(line: Mapping[Any, Any]) -> SaleLine:
    return SaleLine(
        line_id=line["id"],
        sku=line["sku"],
        category=line["category"],
        ladder_role=line["ladder_role"],
        quantity=line["quantity"],
        base_fen=line["line_total_fen"],
    )
