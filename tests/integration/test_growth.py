"""Growth on SQLite and PostgreSQL: cloud stock never negative with every move balanced (a
property over random sequences of stock orders, retail draws and buybacks), sharing rewards
within their caps, points earned on close and expired oldest first, coupons given back on a
refund as their template says, and the fraud holds (velocity, re-registration) with an
operator's decision paying once."""

from __future__ import annotations

from datetime import timedelta
from itertools import count
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from shequn.catalog.service import update_product
from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.db import Database
from shequn.distribution.tables import commission_lines
from shequn.errors import Conflict, DomainError
from shequn.flows.growth_orders import create_order_with_offers
from shequn.flows.growth_settlement import settle_with_growth
from shequn.flows.privacy import anonymise_member
from shequn.flows.settings import update_settings
from shequn.flows.tiers import create_tier
from shequn.growth.coupons.service import create_template, issue_coupons, member_coupons
from shequn.growth.decisions import cancel_hold, release_hold
from shequn.growth.holds.service import list_holds, record_signal
from shequn.growth.points.service import (
    award_points,
    create_redemption_item,
    expire_points,
    member_points,
    redeem,
)
from shequn.growth.settings.service import update_growth_settings
from shequn.growth.sharing.service import create_program, list_rewards
from shequn.growth.stock.service import agent_stock, buy_back, overstocked_in, place_stock_order
from shequn.insights.console_community import open_alerts
from shequn.ledger.rules import stock_account
from shequn.ledger.service import verify_ledger_of
from shequn.ledger.tables import accounts, postings
from shequn.orders.creation import create_order
from shequn.orders.payment import pay_order
from shequn.orders.refunds import refund_order
from shequn.orders.transitions import complete_order, ship_order
from shequn.tenancy.service import create_tenant
from shequn.wallet.service import wallet
from tests import factories as f

BACKENDS = ["sqlite_db", pytest.param("postgres_db", marks=pytest.mark.postgres)]
_txns = count(1)


def _close(ctx: Ctx, order: dict[str, Any]) -> None:
    pay_order(
        ctx,
        order_id=order["id"],
        provider_txn_id=f"g-{next(_txns)}",
        amount_fen=order["total_fen"],
    )
    ship_order(ctx, order_id=order["id"])
    complete_order(ctx, order_id=order["id"])


def _agent_shop(ctx: Ctx) -> tuple[str, str]:
    """CORE-1 at 100 yuan, an agent tier buying it at 50; returns (agent, product id)."""
    tier = create_tier(ctx, name="代理", rank=1)["id"]
    product = f.product(ctx, price_fen=10_000)
    update_product(ctx, sku="CORE-1", tier_prices=[{"tier_id": tier, "wholesale_price_fen": 5_000}])
    update_growth_settings(
        ctx, patch={"new_agent_monthly_sales": 3_000, "stock_cover_limit_days": 3_650}
    )
    agent = f.member(ctx, "代理", tier_id=tier)
    return agent, str(product["id"])


def _stock_units(ctx: Ctx, agent: str, product_id: str) -> int:
    with ctx.db.read() as tx:
        found = tx.execute(
            select(accounts.c.balance).where(
                accounts.c.tenant_id == ctx.tenant_id,
                accounts.c.id == stock_account(agent, product_id),
            )
        ).scalar_one_or_none()
    return int(found or 0)


STOCK_STEP = st.tuples(st.sampled_from(["order", "retail", "buyback"]), st.integers(1, 6))


@pytest.mark.parametrize("backend", BACKENDS)
def test_stock_is_never_negative_and_every_move_balances(
    request: pytest.FixtureRequest, backend: str
) -> None:
    db: Database = request.getfixturevalue(backend)

    @settings(
        max_examples=6 if backend == "sqlite_db" else 3,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(steps=st.lists(STOCK_STEP, min_size=1, max_size=7))
    def run(steps: list[tuple[str, int]]) -> None:
        clock = ManualClock()
        tenant_id, _ = create_tenant(db=db, clock=clock, name="云仓")
        ctx = Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="test")
        agent, product_id = _agent_shop(ctx)
        buyer = f.member(ctx, "顾客")
        units = 0
        for kind, quantity in steps:
            try:
                if kind == "order":
                    place_stock_order(
                        ctx,
                        member_id=agent,
                        lines=[{"sku": "CORE-1", "quantity": quantity}],
                        provider_txn_id=f"s-{next(_txns)}",
                        amount_fen=quantity * 5_000,
                    )
                    units += quantity
                elif kind == "retail":
                    order, _ = create_order(
                        ctx,
                        buyer_id=buyer,
                        lines=[{"sku": "CORE-1", "quantity": quantity}],
                        attributed_sharer_id=agent,
                    )
                    pay_order(
                        ctx,
                        order_id=order["id"],
                        provider_txn_id=f"r-{next(_txns)}",
                        amount_fen=order["total_fen"],
                    )
                    if units >= quantity:  # a line is drawn whole or not at all
                        units -= quantity
                else:
                    buy_back(ctx, member_id=agent, sku="CORE-1", quantity=quantity)
                    units -= quantity
            except Conflict as refused:
                refusal = (kind, refused.code, quantity > units)
                assert refusal == ("buyback", "stock_buyback_exceeds", True)
            assert _stock_units(ctx, agent, product_id) == units >= 0
            shown = agent_stock(ctx, member_id=agent)["products"]
            assert [p["units"] for p in shown] == ([units] if shown else [])
            books = verify_ledger_of(ctx)
            assert books["ok"], books
        # every stock move balances: the product's units sum to zero over the agent's
        # account and the brand's, and the agent's postings add up to what it holds
        with ctx.db.read() as tx:
            moved = tx.execute(
                select(func.coalesce(func.sum(postings.c.amount), 0)).where(
                    postings.c.tenant_id == tenant_id, postings.c.currency == product_id
                )
            ).scalar_one()
            held = tx.execute(
                select(func.coalesce(func.sum(postings.c.amount), 0)).where(
                    postings.c.tenant_id == tenant_id,
                    postings.c.account_id == stock_account(agent, product_id),
                )
            ).scalar_one()
        assert (moved, held) == (0, units)

    run()


def test_a_stock_order_above_the_cover_limit_changes_nothing(ctx: Ctx) -> None:
    agent, product_id = _agent_shop(ctx)
    update_growth_settings(ctx, patch={"new_agent_monthly_sales": 30, "stock_cover_limit_days": 60})
    with pytest.raises(Conflict) as refused:
        place_stock_order(
            ctx,
            member_id=agent,
            lines=[{"sku": "CORE-1", "quantity": 90}],
            provider_txn_id="too-much",
            amount_fen=450_000,
        )
    assert refused.value.code == "stock_cover_exceeded"
    assert refused.value.params["cover_days"] == "90.0"
    assert _stock_units(ctx, agent, product_id) == 0
    assert agent_stock(ctx, member_id=agent)["products"] == []


def test_stock_that_outlasts_its_sales_is_listed_as_hoarding(ctx: Ctx) -> None:
    agent, product_id = _agent_shop(ctx)
    update_growth_settings(ctx, patch={"new_agent_monthly_sales": 30, "stock_cover_limit_days": 60})
    place_stock_order(
        ctx,
        member_id=agent,
        lines=[{"sku": "CORE-1", "quantity": 60}],
        provider_txn_id="within",
        amount_fen=300_000,
    )

    def listed() -> list[dict[str, Any]]:
        with ctx.db.read() as tx:
            return overstocked_in(tx, ctx.tenant_id, ctx.clock.now())

    assert listed() == []  # 60 days of cover at the new-agent default: within the limit
    assert open_alerts(ctx)["overstocked"] == 0
    # a month later nothing has sold: its own sales (none) measure it now
    assert isinstance(ctx.clock, ManualClock)
    ctx.clock.advance(days=31)
    assert listed() == [
        {
            "member_id": agent,
            "product_id": product_id,
            "units": 60,
            "cover_days": "∞",
            "cover_tenths": None,
        }
    ]
    assert open_alerts(ctx)["overstocked"] == 1


def test_a_first_stock_order_minimum_is_enforced_when_the_tenant_sets_one(ctx: Ctx) -> None:
    agent, _ = _agent_shop(ctx)
    update_growth_settings(ctx, patch={"min_first_stock_order_fen": 100_000})
    with pytest.raises(Conflict) as refused:
        place_stock_order(
            ctx,
            member_id=agent,
            lines=[{"sku": "CORE-1", "quantity": 1}],
            provider_txn_id="small",
            amount_fen=5_000,
        )
    assert refused.value.code == "stock_first_order_minimum"


# --- sharing rewards -----------------------------------------------------------------------


def test_sharing_rewards_respect_the_daily_cap_and_go_through_the_ledger(
    ctx: Ctx, clock: ManualClock
) -> None:
    update_settings(ctx, patch={"after_sales_days": 0})
    f.product(ctx, price_fen=10_000)
    create_program(ctx, name="分享返现", sharer_reward="fixed", amount_fen=500, cap_per_day=1)
    sharer = f.member(ctx, "分享者")
    friends = [f.member(ctx, f"朋友{i}") for i in range(2)]
    for friend in friends:
        order, _ = create_order_with_offers(
            ctx,
            buyer_id=friend,
            lines=[{"sku": "CORE-1", "quantity": 1}],
            attributed_sharer_id=sharer,
        )
        _close(ctx, order)
    settle_with_growth(ctx)
    rewards = list_rewards(ctx, member_id=sharer)["items"]
    assert sorted(r["status"] for r in rewards) == ["capped", "granted"]
    assert wallet(ctx, member_id=sharer)["available_fen"] == 500
    assert verify_ledger_of(ctx)["ok"]
    # a settlement again pays nothing twice
    settle_with_growth(ctx)
    assert wallet(ctx, member_id=sharer)["available_fen"] == 500


def test_a_points_reward_and_purchase_points_are_taken_back_after_a_refund(
    ctx: Ctx,
) -> None:
    update_settings(ctx, patch={"after_sales_days": 0})
    f.product(ctx, price_fen=10_000)
    create_program(ctx, name="分享积分", sharer_reward="points", points=300)
    sharer = f.member(ctx, "分享者")
    friend = f.member(ctx, "朋友")
    order, _ = create_order(
        ctx, buyer_id=friend, lines=[{"sku": "CORE-1", "quantity": 1}], attributed_sharer_id=sharer
    )
    _close(ctx, order)
    settle_with_growth(ctx)
    assert member_points(ctx, member_id=sharer)["balance"] == 300
    assert member_points(ctx, member_id=friend)["balance"] == 100  # 1 point per yuan
    refund_order(ctx, order_id=order["id"], amount_fen=5_000, reason="半数退款")
    settle_with_growth(ctx)
    assert member_points(ctx, member_id=sharer)["balance"] == 150
    assert member_points(ctx, member_id=friend)["balance"] == 50
    assert verify_ledger_of(ctx)["ok"]


# --- points --------------------------------------------------------------------------------


def test_points_expire_oldest_first_and_never_below_zero(ctx: Ctx, clock: ManualClock) -> None:
    update_growth_settings(ctx, patch={"points_expiry_days": 30})
    member = f.member(ctx)
    award_points(ctx, member_id=member, rule="manual", ref="old", points=100)
    clock.advance(days=20)
    award_points(ctx, member_id=member, rule="manual", ref="new", points=50)
    # spending takes the oldest lot first
    f.product(ctx, price_fen=10_000)
    order, _ = create_order_with_offers(
        ctx, buyer_id=member, lines=[{"sku": "CORE-1", "quantity": 1}], points_fen=60
    )
    assert order["total_fen"] == 9_940
    lots = {lot["ref"]: lot for lot in member_points(ctx, member_id=member)["lots"]}
    assert (lots["manual:old"]["remaining"], lots["manual:new"]["remaining"]) == (40, 50)
    clock.advance(days=15)  # the old lot is past its date, the new one is not
    assert expire_points(ctx) == {"lots_expired": 1, "points_expired": 40}
    assert expire_points(ctx) == {"lots_expired": 0, "points_expired": 0}
    shown = member_points(ctx, member_id=member)
    assert shown["balance"] == 50
    assert all(lot["remaining"] >= 0 for lot in shown["lots"])
    assert verify_ledger_of(ctx)["ok"]
    with pytest.raises(Conflict) as short:
        create_order_with_offers(
            ctx, buyer_id=member, lines=[{"sku": "CORE-1", "quantity": 1}], points_fen=51
        )
    assert short.value.code == "insufficient_points"
    assert member_points(ctx, member_id=member)["balance"] == 50


def test_an_award_by_rule_is_granted_once_per_ref(ctx: Ctx) -> None:
    update_growth_settings(ctx, patch={"points_rules": {"checkin": 5}})
    member = f.member(ctx)
    assert award_points(ctx, member_id=member, rule="checkin", ref="2026-06-01")["points"] == 5
    again = award_points(ctx, member_id=member, rule="checkin", ref="2026-06-01")
    assert again["replayed"] is True
    assert member_points(ctx, member_id=member)["balance"] == 5


# --- coupons -------------------------------------------------------------------------------


@pytest.mark.parametrize("restore", [True, False])
def test_a_coupon_comes_back_on_a_full_refund_only_if_its_template_says_so(
    ctx: Ctx, restore: bool
) -> None:
    f.product(ctx, price_fen=10_000)
    template = create_template(
        ctx, name="立减", kind="amount", amount_off_fen=2_000, restore_on_refund=restore
    )
    buyer = f.member(ctx)
    issue_coupons(ctx, template_id=template["id"], member_ids=[buyer])
    (coupon,) = member_coupons(ctx, member_id=buyer)
    order, _ = create_order_with_offers(
        ctx, buyer_id=buyer, lines=[{"sku": "CORE-1", "quantity": 1}], coupon_ids=[coupon["id"]]
    )
    assert order["total_fen"] == 8_000
    pay_order(ctx, order_id=order["id"], provider_txn_id=f"c-{restore}", amount_fen=8_000)
    refund_order(ctx, order_id=order["id"], amount_fen=8_000, reason="全额退款")
    settle_with_growth(ctx)
    (after,) = member_coupons(ctx, member_id=buyer)
    assert after["status"] == ("available" if restore else "used")


def test_a_percent_coupon_on_one_category_discounts_only_its_lines(ctx: Ctx) -> None:
    f.product(ctx, sku="CARE-1", price_fen=10_000, category="care")
    f.product(ctx, sku="FOOD-1", price_fen=5_000, category="food")
    template = create_template(
        ctx,
        name="护理八折",
        kind="percent",
        percent_off_bp=2_000,
        scope="category",
        scope_values=["care"],
    )
    buyer = f.member(ctx)
    issue_coupons(ctx, template_id=template["id"], member_ids=[buyer])
    (coupon,) = member_coupons(ctx, member_id=buyer)
    order, _ = create_order_with_offers(
        ctx,
        buyer_id=buyer,
        lines=[{"sku": "CARE-1", "quantity": 1}, {"sku": "FOOD-1", "quantity": 1}],
        coupon_ids=[coupon["id"]],
    )
    totals = {line["sku"]: line["line_total_fen"] for line in order["lines"]}
    assert totals == {"CARE-1": 8_000, "FOOD-1": 5_000}


# --- fraud holds ---------------------------------------------------------------------------


def test_velocity_holds_a_commission_and_a_cancelled_hold_is_never_paid(
    ctx: Ctx,
) -> None:
    update_settings(ctx, patch={"after_sales_days": 0})
    update_growth_settings(ctx, patch={"velocity_limit_per_hour": 3})
    f.product(ctx, price_fen=10_000)
    f.two_level_plan(ctx)
    parent = f.member(ctx, "上级")
    buyers = [f.member(ctx, f"批量{i}", referrer=parent) for i in range(3)]
    for buyer in buyers:
        record_signal(ctx, member_id=buyer, kind="registration", device_id="farm-1")
    order = f.completed_order(ctx, buyers[0])
    settled = settle_with_growth(ctx)
    assert settled["growth"]["commissions_held"] == 1
    (hold,) = list_holds(ctx, status="held")["items"]
    assert hold["reasons"] == ["velocity"]
    assert hold["order_id"] == order["id"]
    cancelled = cancel_hold(ctx, hold_id=hold["id"], reason="刷单")
    assert cancelled["status"] == "cancelled"
    with pytest.raises(Conflict):
        release_hold(ctx, hold_id=hold["id"], reason="改主意")
    settle_with_growth(ctx)
    assert wallet(ctx, member_id=parent)["available_fen"] == 0
    assert verify_ledger_of(ctx)["ok"]


def test_a_member_who_comes_back_after_deletion_gets_no_new_customer_reward_unheld(
    ctx: Ctx,
) -> None:
    update_settings(ctx, patch={"after_sales_days": 0})
    f.product(ctx, price_fen=10_000)
    welcome = create_template(ctx, name="新人券", kind="amount", amount_off_fen=500)
    create_program(
        ctx,
        name="邀新",
        sharer_reward="fixed",
        amount_fen=300,
        new_customer_coupon_template_id=welcome["id"],
    )
    sharer = f.member(ctx, "分享者")
    gone = f.member(ctx, "旧号", phone="+8613911112222")
    record_signal(ctx, member_id=gone, kind="registration", device_id="phone-7")
    anonymise_member(ctx, member_id=gone)
    back = f.member(ctx, "新号", phone="+8613911113333")
    record_signal(ctx, member_id=back, kind="registration", device_id="phone-7")
    order, _ = create_order(
        ctx, buyer_id=back, lines=[{"sku": "CORE-1", "quantity": 1}], attributed_sharer_id=sharer
    )
    _close(ctx, order)
    settle_with_growth(ctx)
    statuses = {r["role"]: r["status"] for r in list_rewards(ctx, order_id=order["id"])["items"]}
    assert statuses["new_customer"] == "held"
    held = list_holds(ctx, status="held")["items"]
    assert all("re_registration" in h["reasons"] for h in held)
    (hold,) = [h for h in held if h["member_id"] == back]
    assert member_coupons(ctx, member_id=back) == []
    release_hold(ctx, hold_id=hold["id"], reason="核实为换号")
    assert len(member_coupons(ctx, member_id=back)) == 1
    with pytest.raises(DomainError):
        release_hold(ctx, hold_id=hold["id"], reason="再次")
    assert len(member_coupons(ctx, member_id=back)) == 1


def test_points_earned_follow_the_tier_multiplier(ctx: Ctx, clock: ManualClock) -> None:
    update_settings(ctx, patch={"after_sales_days": 0})
    tier = create_tier(ctx, name="金卡", rank=1, points_multiplier_bp=20_000)
    f.product(ctx, price_fen=10_000)
    member = f.member(ctx, tier_id=tier["id"])
    f.completed_order(ctx, member)
    clock.advance(minutes=1)
    settle_with_growth(ctx)
    assert member_points(ctx, member_id=member)["balance"] == 200
    assert member_points(ctx, member_id=member)["lots"][0]["expires_at"] > clock.now() + timedelta(
        days=300
    )


def test_a_coupon_reward_and_a_tier_upgrade_reward_are_granted_on_close(ctx: Ctx) -> None:
    update_settings(ctx, patch={"after_sales_days": 0})
    f.product(ctx, price_fen=10_000)
    thanks = create_template(ctx, name="感谢券", kind="amount", amount_off_fen=800)
    ambassador = create_tier(ctx, name="推广大使", rank=1)["id"]
    create_program(ctx, name="送券", sharer_reward="coupon", coupon_template_id=thanks["id"])
    create_program(ctx, name="升级", sharer_reward="tier_upgrade", tier_id=ambassador)
    sharer = f.member(ctx, "分享者")
    friend = f.member(ctx, "朋友")
    order, _ = create_order(
        ctx, buyer_id=friend, lines=[{"sku": "CORE-1", "quantity": 1}], attributed_sharer_id=sharer
    )
    _close(ctx, order)
    settle_with_growth(ctx)
    kinds = {r["kind"]: r for r in list_rewards(ctx, member_id=sharer)["items"]}
    assert {k: r["status"] for k, r in kinds.items()} == {
        "coupon": "granted",
        "tier_upgrade": "granted",
    }
    (coupon,) = member_coupons(ctx, member_id=sharer)
    assert coupon["template_id"] == thanks["id"]
    assert kinds["tier_upgrade"]["tier_id"] == ambassador
    assert member_points(ctx, member_id=sharer)["tier_id"] == ambassador


def test_operators_issue_coupons_to_a_tag_within_the_total_limit(ctx: Ctx) -> None:
    template = create_template(
        ctx, name="会员日", kind="percent", percent_off_bp=1_000, total_limit=2
    )
    vips = [f.member(ctx, f"VIP{i}", tags=["vip"]) for i in range(3)]
    f.member(ctx, "普通")
    issued = issue_coupons(ctx, template_id=template["id"], tag="vip")
    assert (issued["issued"], issued["skipped"]) == (2, 1)
    assert sum(len(member_coupons(ctx, member_id=m)) for m in vips) == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_commissions_are_computed_on_what_each_line_paid_after_coupons_and_points(
    request: pytest.FixtureRequest, backend: str
) -> None:
    db: Database = request.getfixturevalue(backend)

    @settings(
        max_examples=8 if backend == "sqlite_db" else 3,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        quantities=st.tuples(st.integers(1, 4), st.integers(1, 4)),
        off_fen=st.integers(1, 30_000),
        points=st.integers(0, 10_000),
        stacks=st.booleans(),
    )
    def run(quantities: tuple[int, int], off_fen: int, points: int, stacks: bool) -> None:
        clock = ManualClock()
        tenant_id, _ = create_tenant(db=db, clock=clock, name="折扣佣金")
        ctx = Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="test")
        f.product(ctx, sku="A-1", price_fen=9_900)
        f.product(ctx, sku="B-1", price_fen=3_300)
        f.two_level_plan(ctx, l1=1_000, l2=500)
        parent = f.member(ctx, "上级")
        buyer = f.member(ctx, "买家", referrer=parent)
        template = create_template(
            ctx, name="券", kind="amount", amount_off_fen=off_fen, stack_with_points=stacks
        )
        issue_coupons(ctx, template_id=template["id"], member_ids=[buyer])
        (coupon,) = member_coupons(ctx, member_id=buyer)
        award_points(ctx, member_id=buyer, rule="manual", ref="p", points=10_000)
        lines = [
            {"sku": "A-1", "quantity": quantities[0]},
            {"sku": "B-1", "quantity": quantities[1]},
        ]
        subtotal = 9_900 * quantities[0] + 3_300 * quantities[1]
        spend = min(points, (subtotal - min(off_fen, subtotal)) // 2) if stacks else 0
        order, _ = create_order_with_offers(
            ctx, buyer_id=buyer, lines=lines, coupon_ids=[coupon["id"]], points_fen=spend
        )
        assert order["subtotal_fen"] == subtotal
        assert order["total_fen"] == subtotal - min(off_fen, subtotal) - spend >= 0
        pay_order(
            ctx,
            order_id=order["id"],
            provider_txn_id=f"p-{next(_txns)}",
            amount_fen=order["total_fen"],
        )
        with ctx.db.read() as tx:
            rows = tx.execute(
                select(
                    commission_lines.c.order_line_id,
                    commission_lines.c.rate_bp,
                    commission_lines.c.base_fen,
                    commission_lines.c.amount_fen,
                ).where(
                    commission_lines.c.tenant_id == tenant_id,
                    commission_lines.c.order_id == order["id"],
                )
            ).all()
        paid_by_line = {line["id"]: line["line_total_fen"] for line in order["lines"]}
        assert sum(paid_by_line.values()) == order["total_fen"]
        for row in rows:
            assert row.base_fen == paid_by_line[row.order_line_id]
            assert row.amount_fen == row.base_fen * row.rate_bp // 10_000
        assert sum(r.amount_fen for r in rows) <= order["total_fen"] * 1_500 // 10_000 + len(rows)

    run()


POINT_STEP = st.tuples(st.sampled_from(["earn", "spend", "wait", "expire"]), st.integers(1, 400))


@pytest.mark.parametrize("backend", BACKENDS)
def test_points_never_go_negative_and_expire_oldest_first(
    request: pytest.FixtureRequest, backend: str
) -> None:
    db: Database = request.getfixturevalue(backend)

    @settings(
        max_examples=8 if backend == "sqlite_db" else 3,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(steps=st.lists(POINT_STEP, min_size=1, max_size=10))
    def run(steps: list[tuple[str, int]]) -> None:
        clock = ManualClock()
        tenant_id, _ = create_tenant(db=db, clock=clock, name="积分")
        ctx = Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="test")
        update_growth_settings(ctx, patch={"points_expiry_days": 30})
        item = create_redemption_item(ctx, name="一分", points=1, stock=None)
        member = f.member(ctx)
        for index, (kind, amount) in enumerate(steps):
            before = member_points(ctx, member_id=member)
            if kind == "earn":
                award_points(ctx, member_id=member, rule="manual", ref=f"e{index}", points=amount)
            elif kind == "spend":
                try:
                    redeem(ctx, member_id=member, item_id=item["id"], quantity=min(amount, 1_000))
                except Conflict as refused:
                    refusal = (refused.code, min(amount, 1_000) > before["balance"])
                    assert refusal == ("insufficient_points", True)
            elif kind == "wait":
                clock.advance(days=amount % 40)
            else:
                expire_points(ctx)
            shown = member_points(ctx, member_id=member)
            assert shown["balance"] >= 0
            assert all(lot["remaining"] >= 0 for lot in shown["lots"])
            # the lots still spendable are the newest: none older than one that expired
            lots = sorted(shown["lots"], key=lambda lot: (lot["earned_at"], lot["id"]))
            spendable_at = [lot["spendable"] for lot in lots]
            assert spendable_at == sorted(spendable_at)
            assert verify_ledger_of(ctx)["ok"]
        clock.advance(days=31)
        expire_points(ctx)
        assert member_points(ctx, member_id=member)["balance"] == 0

    run()
