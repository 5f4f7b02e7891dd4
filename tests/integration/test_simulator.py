"""The plan simulator on both databases: what a plan would pay is, line by line, what the live
engine pays once the plan is active; a period's paid orders replay with the tiers their
payments saw; totals, members, findings and the difference against the active plan."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.distribution.plans import build_plan_spec
from shequn.distribution.queries import order_commissions
from shequn.errors import InvalidInput, NotFound
from shequn.flows.plans import activate_plan, create_plan
from shequn.flows.plans_simulation import simulate_plan, simulate_plan_lines
from shequn.flows.tiers import create_tier
from shequn.orders.creation import create_order
from shequn.orders.payment import pay_order
from shequn.orders.refunds import refund_order
from tests import factories as f

Key = tuple[Any, ...]


def _key(item: dict[str, Any], sku: str) -> Key:
    return (
        sku,
        item["beneficiary_id"],
        item["level"],
        item["kind"],
        item["rate_bp"],
        item["base_fen"],
        item["amount_fen"],
    )


def paid_lines(ctx: Ctx, order: dict[str, Any]) -> list[Key]:
    """What the live engine paid on an order, one key per commission line."""
    skus = {line["id"]: line["sku"] for line in order["lines"]}
    with ctx.db.read() as tx:
        found = order_commissions(tx, tenant_id=ctx.tenant_id, order_id=order["id"])
    return sorted(_key(c, skus[c["order_line_id"]]) for c in found)


def simulated_lines(result: dict[str, Any], index: int) -> list[Key]:
    return sorted(_key(s, s["sku"]) for s in result["lines"] if s["order_index"] == index)


def pay(ctx: Ctx, buyer: str, *lines: tuple[str, int], txn: str) -> dict[str, Any]:
    order, _ = create_order(
        ctx, buyer_id=buyer, lines=[{"sku": sku, "quantity": q} for sku, q in lines]
    )
    paid, _ = pay_order(
        ctx, order_id=order["id"], provider_txn_id=txn, amount_fen=order["total_fen"]
    )
    return paid


@pytest.fixture
def shop(ctx: Ctx) -> dict[str, Any]:
    """root (partner) ← mid (VIP) ← two buyers, and a third below a plain member; products
    in two categories and a package; a differential plan active."""
    f.product(ctx, sku="CORE-1", price_fen=19_900, category="skincare")
    f.product(ctx, sku="TEA-1", price_fen=8_800, category="food")
    f.product(ctx, sku="KIT", price_fen=199_900, ladder_role="partner", category="package")
    vip = create_tier(
        ctx,
        name="VIP",
        rank=1,
        discount_bp=500,
        may_distribute=True,
        criteria={"kind": "spend", "min_fen": 40_000, "window_days": 365},
    )
    partner = create_tier(
        ctx,
        name="合伙人",
        rank=2,
        discount_bp=1_000,
        may_distribute=True,
        criteria={"kind": "bought", "sku": "KIT"},
    )
    root = f.member(ctx, "根", tier_id=partner["id"])
    mid = f.member(ctx, "中", root, tier_id=vip["id"])
    plain = f.member(ctx, "普通", root)
    buyers = [f.member(ctx, "甲", mid), f.member(ctx, "乙", mid), f.member(ctx, "丙", plain)]
    active = create_plan(
        ctx,
        spec=build_plan_spec(
            mode="differential",
            tier_rates=[
                {"tier_id": vip["id"], "rate_bp": 800},
                {"tier_id": partner["id"], "rate_bp": 1_500},
            ],
            depth=2,
            peer_bonus_bp=200,
        ),
    )
    activate_plan(ctx, plan_id=active["id"])
    draft = create_plan(
        ctx,
        spec=build_plan_spec(
            mode="levels",
            levels=[
                {"level": 1, "rate_bp": 1_000},
                {
                    "level": 1,
                    "rate_bp": 600,
                    "fixed_fen": 100,
                    "scope": {"kind": "category", "value": "food"},
                },
                {"level": 1, "rate_bp": 1_800, "scope": {"kind": "product", "value": "KIT"}},
                {"level": 2, "rate_bp": 500, "tiers": [partner["id"]]},
            ],
            peer_bonus_bp=100,
        ),
    )
    return {
        "vip": vip["id"],
        "partner": partner["id"],
        "root": root,
        "mid": mid,
        "plain": plain,
        "buyers": buyers,
        "active": active["id"],
        "draft": draft["id"],
    }


DESCRIBED = [
    (0, (("CORE-1", 2),)),
    (1, (("TEA-1", 1), ("CORE-1", 1))),
    (2, (("CORE-1", 1),)),
    ("mid", (("TEA-1", 1),)),
    (1, (("KIT", 1),)),  # last: the package lifts its buyer, which no later order then sees
]
# Described orders are priced and paid at the tiers as they are now: none of these but the
# last lifts its buyer (spend stays under VIP's 40 000).


def _buyer(shop: dict[str, Any], who: int | str) -> str:
    return str(shop["mid"]) if who == "mid" else str(shop["buyers"][int(who)])


def test_what_the_draft_would_pay_is_what_it_pays_once_active(
    ctx: Ctx, shop: dict[str, Any]
) -> None:
    described = [
        {"buyer_id": _buyer(shop, who), "lines": [{"sku": s, "quantity": q} for s, q in lines]}
        for who, lines in DESCRIBED
    ]
    result = simulate_plan(ctx, plan_id=shop["draft"], orders_described=described)
    assert result["source"] == "described"
    activate_plan(ctx, plan_id=shop["draft"])
    paid = [
        pay(ctx, _buyer(shop, who), *lines, txn=f"sim-{i}")
        for i, (who, lines) in enumerate(DESCRIBED)
    ]
    for index, order in enumerate(paid):
        assert simulated_lines(result, index) == paid_lines(ctx, order), index
    assert result["total_fen"] == sum(c["amount_fen"] for o in paid for c in o["commissions"])
    assert result["gmv_fen"] == sum(o["total_fen"] for o in paid)
    assert result["lines_total"] == sum(len(o["commissions"]) for o in paid)
    # the same orders, paid now, replayed under the (now active) plan: the same again
    period = simulate_plan(
        ctx,
        plan_id=shop["draft"],
        start=ctx.clock.now() - timedelta(hours=1),
        end=ctx.clock.now() + timedelta(hours=1),
    )
    assert [simulated_lines(period, i) for i in range(len(paid))] == [
        paid_lines(ctx, o) for o in paid
    ]
    assert [line["order_id"] for line in period["lines"]][:1] == [paid[0]["id"]]
    assert period["against_active"]["difference_fen"] == 0


def test_a_periods_orders_replay_with_the_tiers_their_payments_saw(
    ctx: Ctx, clock: ManualClock, shop: dict[str, Any]
) -> None:
    start = clock.now()
    buyer = shop["buyers"][0]
    orders = [pay(ctx, buyer, ("CORE-1", 1), txn="p-0")]
    clock.advance(days=1)
    orders.append(pay(ctx, buyer, ("CORE-1", 2), txn="p-1"))  # 59 700 in a year: VIP now
    clock.advance(days=1)
    orders.append(pay(ctx, buyer, ("KIT", 1), txn="p-2"))  # and a partner
    clock.advance(days=1)
    orders.append(pay(ctx, buyer, ("CORE-1", 1), txn="p-3"))  # a partner's order: peer bonuses
    clock.advance(days=1)
    result = simulate_plan(ctx, plan_id=shop["active"], start=start, end=clock.now())
    assert result["orders"] == 4
    assert [simulated_lines(result, i) for i in range(4)] == [paid_lines(ctx, o) for o in orders]
    # the buyer became a VIP on its second order: from its third, its referrer (VIP too) earns
    # the peer bonus, with the rule behind every line named
    bonus = [x for x in result["lines"] if x["kind"] == "peer_bonus"]
    assert [(x["order_index"], x["beneficiary_id"], x["rule"]["tier_id"]) for x in bonus] == [
        (2, shop["mid"], shop["vip"]),
        (3, shop["mid"], shop["vip"]),
    ]
    assert result["against_active"] == {
        "plan_id": shop["active"],
        "total_fen": result["total_fen"],
        "cost_bp_of_gmv": result["cost_bp_of_gmv"],
        "difference_fen": 0,
        "difference_bp": 0,
    }


def test_totals_members_findings_and_the_difference_against_the_active_plan(
    ctx: Ctx, clock: ManualClock, shop: dict[str, Any]
) -> None:
    start = clock.now()
    first = pay(ctx, shop["buyers"][0], ("CORE-1", 1), txn="t-0")  # 19 900 at no tier
    pay(ctx, shop["buyers"][2], ("TEA-1", 1), txn="t-1")
    refund_order(ctx, order_id=first["id"], amount_fen=9_950, reason="半退")
    recruiting = create_plan(
        ctx,
        spec=build_plan_spec(
            mode="levels", levels=[{"level": 1, "rate_bp": 1_000}], signup_reward_fen=500
        ),
    )
    clock.advance(minutes=1)
    result, lines = simulate_plan_lines(ctx, plan_id=recruiting["id"], start=start, end=clock.now())
    assert (result["orders"], result["gmv_fen"]) == (2, 19_900 + 8_800)
    assert (result["total_fen"], result["net_fen"]) == (1_990 + 880, 995 + 880)
    assert result["cost_bp_of_gmv"] == (1_990 + 880) * 10_000 // (19_900 + 8_800)
    assert [x.rule for x in result["findings"]] == ["recruitment_reward"]
    assert lines == result["lines"]
    # the active plan: mid (VIP 8 %) and root (partner, 15 − 8 %) on the first; root 15 % on tea
    active_total = 1_592 + 1_393 + 1_320
    assert result["against_active"] == {
        "plan_id": shop["active"],
        "total_fen": active_total,
        "cost_bp_of_gmv": active_total * 10_000 // (19_900 + 8_800),
        "difference_fen": 1_990 + 880 - active_total,
        "difference_bp": result["cost_bp_of_gmv"] - active_total * 10_000 // (19_900 + 8_800),
    }
    by_member = {m["member_id"]: m for m in result["members"]}
    assert {k: (v["total_fen"], v["active_fen"], v["lines"]) for k, v in by_member.items()} == {
        shop["mid"]: (1_990, 1_592, 1),
        shop["root"]: (0, 1_393 + 1_320, 0),
        shop["plain"]: (880, 0, 1),
    }
    assert by_member[shop["mid"]]["name"] == "中"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"start": "2026-02-01", "end": "2026-01-01"}, "period_invalid"),
        ({"start": "2025-01-01", "end": "2026-06-01"}, "period_invalid"),
        ({"start": "soon", "end": "2026-06-01"}, "period_unreadable"),
        ({}, "period_invalid"),
        ({"start": "2026-01-01", "end": "2026-01-02", "limit": 0}, "limit_out_of_range"),
        ({"orders_described": []}, "simulation_orders_invalid"),
        (
            {
                "orders_described": [
                    {"buyer_id": "mem_nope", "lines": [{"sku": "CORE-1", "quantity": 1}]}
                ]
            },
            "member_not_found",
        ),
    ],
)
def test_bad_simulations_are_refused(
    ctx: Ctx, shop: dict[str, Any], kwargs: dict[str, Any], code: str
) -> None:
    with pytest.raises((InvalidInput, NotFound)) as refused:
        simulate_plan(ctx, plan_id=shop["draft"], **kwargs)
    assert refused.value.code == code


def test_an_unknown_plan_or_product_is_not_found(ctx: Ctx, shop: dict[str, Any]) -> None:
    with pytest.raises(NotFound) as plan:
        simulate_plan(ctx, plan_id="plan_nope", start="2026-01-01", end="2026-01-02")
    assert plan.value.code == "plan_not_found"
    with pytest.raises(NotFound) as product:
        simulate_plan(
            ctx,
            plan_id=shop["draft"],
            orders_described=[{"buyer_id": shop["mid"], "lines": [{"sku": "NOPE", "quantity": 1}]}],
        )
    assert (product.value.code, product.value.params) == ("product_not_found", {"sku": "NOPE"})
