"""Growth races with real parallel connections on PostgreSQL: stock orders, retail draws and
buybacks of one agent never make its stock negative (and the books hold every unit); parallel
claims never give a member more coupons than the per-member limit, and one coupon used by
parallel orders pays one discount; parallel redemptions never spend points below zero."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from shequn.catalog.service import update_product
from shequn.context import Ctx
from shequn.errors import DomainError
from shequn.flows.growth_orders import create_order_with_offers
from shequn.flows.tiers import create_tier
from shequn.growth.coupons.service import (
    claim_coupon,
    create_template,
    issue_coupons,
    member_coupons,
)
from shequn.growth.coupons.tables import order_discounts
from shequn.growth.points.service import (
    award_points,
    create_redemption_item,
    member_points,
    redeem,
)
from shequn.growth.settings.service import update_growth_settings
from shequn.growth.stock.service import agent_stock, buy_back, place_stock_order
from shequn.ledger.rules import stock_account
from shequn.ledger.service import verify_ledger_of
from shequn.ledger.tables import postings
from shequn.orders.creation import create_order
from shequn.orders.payment import pay_order
from tests import factories as f
from tests.races import race

pytestmark = pytest.mark.postgres


def test_parallel_stock_orders_retail_draws_and_buybacks_never_make_stock_negative(
    pg_ctx: Ctx,
) -> None:
    ctx = pg_ctx
    tier = create_tier(ctx, name="代理", rank=1)["id"]
    product = f.product(ctx, price_fen=10_000)
    update_product(ctx, sku="CORE-1", tier_prices=[{"tier_id": tier, "wholesale_price_fen": 5_000}])
    update_growth_settings(
        ctx, patch={"new_agent_monthly_sales": 3_000, "stock_cover_limit_days": 3_650}
    )
    agent = f.member(ctx, "代理", tier_id=tier)
    buyer = f.member(ctx, "顾客")
    place_stock_order(
        ctx,
        member_id=agent,
        lines=[{"sku": "CORE-1", "quantity": 4}],
        provider_txn_id="seed",
        amount_fen=20_000,
    )
    retail = [
        create_order(
            ctx,
            buyer_id=buyer,
            lines=[{"sku": "CORE-1", "quantity": 2}],
            attributed_sharer_id=agent,
        )[0]
        for _ in range(8)
    ]

    def step(i: int) -> Any:
        if i < 8:
            return pay_order(
                ctx,
                order_id=retail[i]["id"],
                provider_txn_id=f"retail-{i}",
                amount_fen=retail[i]["total_fen"],
            )
        if i < 14:
            return place_stock_order(
                ctx,
                member_id=agent,
                lines=[{"sku": "CORE-1", "quantity": 1}],
                provider_txn_id=f"stock-{i}",
                amount_fen=5_000,
            )
        return buy_back(ctx, member_id=agent, sku="CORE-1", quantity=3)

    results = race(18, step)
    refused = [r for r in results if isinstance(r, DomainError)]
    assert all(r.code == "stock_buyback_exceeds" for r in refused), refused
    bought_back = 3 * sum(1 for r in results[14:] if not isinstance(r, DomainError))
    with ctx.db.read() as tx:
        held = tx.execute(
            select(func.coalesce(func.sum(postings.c.amount), 0)).where(
                postings.c.tenant_id == ctx.tenant_id,
                postings.c.account_id == stock_account(agent, str(product["id"])),
            )
        ).scalar_one()
        moved = tx.execute(
            select(func.coalesce(func.sum(postings.c.amount), 0)).where(
                postings.c.tenant_id == ctx.tenant_id,
                postings.c.currency == str(product["id"]),
            )
        ).scalar_one()
    shown = agent_stock(ctx, member_id=agent)
    units = shown["products"][0]["units"]
    assert units == held >= 0
    assert moved == 0
    drawn = 4 + 6 - bought_back - units
    assert drawn % 2 == 0
    assert 0 <= drawn <= 16
    # every unit drawn paid the agent its retail price as own-sale proceeds
    assert shown["own_sale_proceeds_fen"] == drawn * 10_000
    assert verify_ledger_of(ctx)["ok"]


def test_parallel_claims_never_exceed_the_per_member_limit(pg_ctx: Ctx) -> None:
    ctx = pg_ctx
    create_template(
        ctx,
        name="限领两张",
        kind="amount",
        amount_off_fen=100,
        per_member_limit=2,
        claim_code="TWO2026",
    )
    member = f.member(ctx)
    results = race(10, lambda _: claim_coupon(ctx, member_id=member, code="TWO2026"))
    claimed = [r for r in results if isinstance(r, dict)]
    assert len(claimed) == 2
    assert {r.code for r in results if isinstance(r, DomainError)} == {"coupon_limit_reached"}
    assert len(member_coupons(ctx, member_id=member)) == 2


def test_one_coupon_used_by_parallel_orders_discounts_one(pg_ctx: Ctx) -> None:
    ctx = pg_ctx
    f.product(ctx, price_fen=10_000)
    template = create_template(ctx, name="一张", kind="amount", amount_off_fen=1_000)
    buyer = f.member(ctx)
    issue_coupons(ctx, template_id=template["id"], member_ids=[buyer])
    (coupon,) = member_coupons(ctx, member_id=buyer)

    results = race(
        8,
        lambda _: create_order_with_offers(
            ctx,
            buyer_id=buyer,
            lines=[{"sku": "CORE-1", "quantity": 1}],
            coupon_ids=[coupon["id"]],
        )[0],
    )
    made = [r for r in results if isinstance(r, dict)]
    assert len(made) == 1
    assert {r.code for r in results if isinstance(r, DomainError)} == {"coupon_not_available"}
    with ctx.db.read() as tx:
        used = tx.execute(
            select(func.count()).where(
                order_discounts.c.tenant_id == ctx.tenant_id,
                order_discounts.c.coupon_id == coupon["id"],
            )
        ).scalar_one()
    assert used == 1
    assert member_coupons(ctx, member_id=buyer)[0]["order_id"] == made[0]["id"]


def test_parallel_redemptions_never_spend_points_below_zero(pg_ctx: Ctx) -> None:
    ctx = pg_ctx
    member = f.member(ctx)
    award_points(ctx, member_id=member, rule="manual", ref="a", points=250)
    item = create_redemption_item(ctx, name="帆布袋", points=100, stock=None)
    results = race(6, lambda i: redeem(ctx, member_id=member, item_id=item["id"], quantity=1)[0])
    assert sum(1 for r in results if isinstance(r, dict)) == 2
    assert {r.code for r in results if isinstance(r, DomainError)} == {"insufficient_points"}
    points = member_points(ctx, member_id=member)
    assert points["balance"] == 50
    assert all(lot["remaining"] >= 0 for lot in points["lots"])
    assert verify_ledger_of(ctx)["ok"]
