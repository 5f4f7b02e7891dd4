"""Small builders for test data, all going through the services."""

from __future__ import annotations

from itertools import count
from typing import Any

from shequn.catalog.service import create_product
from shequn.context import Ctx
from shequn.distribution.plans import build_plan_spec
from shequn.flows.plans import activate_plan, create_plan
from shequn.flows.registration import create_member
from shequn.orders.creation import create_order
from shequn.orders.payment import pay_order
from shequn.orders.transitions import complete_order, ship_order

_phones = count(1)


def phone() -> str:
    return f"+86139{next(_phones):08d}"


def member(ctx: Ctx, name: str = "会员", referrer: str | None = None, **extra: Any) -> str:
    created = create_member(ctx, name=name, referrer_id=referrer, **extra)
    return str(created["id"])


def chain(ctx: Ctx, length: int) -> list[str]:
    """Members m0 ← m1 ← … (each referred by the previous); returns ids root first."""
    ids: list[str] = []
    for index in range(length):
        ids.append(member(ctx, f"链{index}", ids[-1] if ids else None))
    return ids


def product(ctx: Ctx, sku: str = "CORE-1", price_fen: int = 10_000, **extra: Any) -> dict[str, Any]:
    extra.setdefault("ladder_role", "core")
    return create_product(ctx, sku=sku, name=f"商品 {sku}", price_fen=price_fen, **extra)


def two_level_plan(ctx: Ctx, l1: int = 1_000, l2: int = 500, **extra: Any) -> str:
    spec = build_plan_spec(
        mode="levels",
        levels=[{"level": 1, "rate_bp": l1}, {"level": 2, "rate_bp": l2}],
        **extra,
    )
    plan = create_plan(ctx, spec=spec)
    activate_plan(ctx, plan_id=plan["id"])
    return str(plan["id"])


_txns = count(1)


def paid_order(ctx: Ctx, buyer: str, sku: str = "CORE-1", quantity: int = 1) -> dict[str, Any]:
    order, _ = create_order(ctx, buyer_id=buyer, lines=[{"sku": sku, "quantity": quantity}])
    paid, _ = pay_order(
        ctx,
        order_id=order["id"],
        provider_txn_id=f"txn-{next(_txns)}",
        amount_fen=order["total_fen"],
    )
    return paid


def completed_order(ctx: Ctx, buyer: str, sku: str = "CORE-1", quantity: int = 1) -> dict[str, Any]:
    order = paid_order(ctx, buyer, sku, quantity)
    ship_order(ctx, order_id=order["id"])
    return complete_order(ctx, order_id=order["id"])
