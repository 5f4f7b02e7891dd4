"""Commission plans through the services, and settlement."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from shequn.clock import ManualClock
from shequn.compliance.service import compliance_report
from shequn.context import Ctx
from shequn.distribution.plans import build_plan_spec
from shequn.distribution.queries import member_commissions
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import list_events
from shequn.flows.plans import activate_plan, create_plan, get_plan, list_plans
from shequn.flows.settings import update_settings
from shequn.flows.tiers import create_tier
from shequn.ledger.tables import postings
from shequn.orders.views import get_order
from shequn.settlement.service import run_settlement
from shequn.tenancy.service import get_settings
from shequn.wallet.service import wallet
from tests import factories as f


def test_plans_are_versioned_and_one_is_active(ctx: Ctx) -> None:
    first = create_plan(
        ctx, spec=build_plan_spec(mode="levels", levels=[{"level": 1, "rate_bp": 800}])
    )
    second = create_plan(
        ctx, spec=build_plan_spec(mode="levels", levels=[{"level": 1, "rate_bp": 900}])
    )
    assert (first["version"], second["version"], first["status"]) == (1, 2, "draft")
    activate_plan(ctx, plan_id=first["id"])
    activate_plan(ctx, plan_id=second["id"])
    assert [(p["version"], p["status"]) for p in list_plans(ctx)] == [(1, "retired"), (2, "active")]
    assert get_settings(ctx)["active_plan_id"] == second["id"]


def test_blocked_plan_cannot_be_activated_and_changes_nothing(ctx: Ctx) -> None:
    good = create_plan(
        ctx, spec=build_plan_spec(mode="levels", levels=[{"level": 1, "rate_bp": 1_000}])
    )
    activate_plan(ctx, plan_id=good["id"])
    bad = create_plan(
        ctx,
        spec=build_plan_spec(
            mode="levels",
            levels=[
                {"level": 1, "rate_bp": 1_000},
                {"level": 2, "rate_bp": 500},
                {"level": 3, "rate_bp": 200},
            ],
        ),
    )
    assert [(x.rule, x.severity.value) for x in bad["findings"]] == [("commission_depth", "block")]
    with pytest.raises(Conflict) as caught:
        activate_plan(ctx, plan_id=bad["id"])
    assert caught.value.code == "plan_blocked"
    assert caught.value.params["findings"][0].rule == "commission_depth"
    assert get_settings(ctx)["active_plan_id"] == good["id"]
    assert get_plan(ctx, plan_id=bad["id"])["status"] == "draft"


def test_custom_profile_allows_three_levels_but_never_four(ctx: Ctx) -> None:
    update_settings(ctx, patch={"compliance_profile": "custom"})
    three = create_plan(
        ctx,
        spec=build_plan_spec(
            mode="levels",
            levels=[
                {"level": 1, "rate_bp": 1_000},
                {"level": 2, "rate_bp": 500},
                {"level": 3, "rate_bp": 200},
            ],
        ),
    )
    assert activate_plan(ctx, plan_id=three["id"])["status"] == "active"
    with pytest.raises(InvalidInput) as caught:
        build_plan_spec(
            mode="levels", levels=[{"level": level, "rate_bp": 100} for level in range(1, 5)]
        )
    assert caught.value.code == "plan_depth_exceeded"
    # going back to the stricter profile is refused while the 3-level plan is active
    with pytest.raises(Conflict) as refused:
        update_settings(ctx, patch={"compliance_profile": "wechat"})
    assert refused.value.code == "settings_break_active_plan"
    assert get_settings(ctx)["compliance_profile"] == "custom"


def test_plan_references_must_exist(ctx: Ctx) -> None:
    with pytest.raises(NotFound) as caught:
        create_plan(
            ctx,
            spec=build_plan_spec(
                mode="differential", tier_rates=[{"tier_id": "tier_x", "rate_bp": 100}]
            ),
        )
    assert caught.value.code == "tier_not_found"
    with pytest.raises(NotFound) as caught:
        create_plan(
            ctx,
            spec=build_plan_spec(
                mode="levels",
                levels=[
                    {"level": 1, "rate_bp": 100, "scope": {"kind": "product", "value": "NOPE"}}
                ],
            ),
        )
    assert caught.value.code == "product_not_found"
    assert list_plans(ctx) == []


def test_differential_plan_with_peer_bonus_end_to_end(ctx: Ctx, clock: ManualClock) -> None:
    vip = create_tier(ctx, name="VIP", rank=1)
    partner = create_tier(ctx, name="合伙人", rank=2)
    top = f.member(ctx, tier_id=partner["id"])
    mid = f.member(ctx, referrer=top, tier_id=partner["id"])
    low = f.member(ctx, referrer=mid, tier_id=vip["id"])
    buyer = f.member(ctx, referrer=low)
    f.product(ctx, price_fen=10_000)
    update_settings(ctx, patch={"compliance_profile": "custom"})
    plan = create_plan(
        ctx,
        spec=build_plan_spec(
            mode="differential",
            depth=3,
            tier_rates=[
                {"tier_id": vip["id"], "rate_bp": 1_000},
                {"tier_id": partner["id"], "rate_bp": 2_000},
            ],
            peer_bonus_bp=200,
        ),
    )
    # three levels are allowed by the custom profile, with the criminal law's warning
    assert [(x.rule, x.severity.value) for x in plan["findings"]] == [("three_levels", "warn")]
    activate_plan(ctx, plan_id=plan["id"])
    order = f.paid_order(ctx, buyer)
    assert [(c["beneficiary_id"], c["kind"], c["amount_fen"]) for c in order["commissions"]] == [
        (low, "differential", 1_000),
        (mid, "differential", 1_000),
        (top, "peer_bonus", 200),
    ]


def test_settlement_waits_for_the_window_and_respects_zero_days(
    ctx: Ctx, clock: ManualClock
) -> None:
    parent, buyer = f.chain(ctx, 2)
    f.product(ctx, price_fen=10_000)
    f.two_level_plan(ctx)
    update_settings(ctx, patch={"after_sales_days": 3})
    order = f.completed_order(ctx, buyer)
    clock.advance(days=3, seconds=-1)
    assert run_settlement(ctx)["orders_closed"] == 0
    clock.advance(seconds=1)
    assert run_settlement(ctx)["orders_closed"] == 1
    assert get_order(ctx, order_id=order["id"])["status"] == "closed"

    update_settings(ctx, patch={"after_sales_days": 0})
    second = f.completed_order(ctx, buyer)
    result = run_settlement(ctx)
    assert (result["orders_closed"], result["released_fen"]) == (1, 1_000)
    assert get_order(ctx, order_id=second["id"])["status"] == "closed"
    assert wallet(ctx, member_id=parent)["available_fen"] == 2_000


def test_settlement_auto_completes_long_shipped_orders(ctx: Ctx, clock: ManualClock) -> None:
    parent, buyer = f.chain(ctx, 2)
    f.product(ctx, price_fen=10_000)
    f.two_level_plan(ctx)
    from shequn.orders.transitions import ship_order

    order = f.paid_order(ctx, buyer)
    ship_order(ctx, order_id=order["id"])
    clock.advance(days=10)
    first = run_settlement(ctx)
    assert (first["orders_completed"], first["orders_closed"]) == (1, 0)
    clock.advance(days=7)
    second = run_settlement(ctx)
    assert (second["orders_completed"], second["orders_closed"], second["released_fen"]) == (
        0,
        1,
        1_000,
    )
    assert wallet(ctx, member_id=parent)["available_fen"] == 1_000


def test_compliance_report_reads_live_data(ctx: Ctx) -> None:
    f.product(ctx)
    f.two_level_plan(ctx)
    members = f.chain(ctx, 4)
    f.paid_order(ctx, members[-1])
    report = compliance_report(ctx)
    assert report["findings"] == []
    assert report["live"] == {
        "deepest_earning_level": 2,
        "deepest_referral_levels": 4,
        "members_in_chains_of_3_plus": 4,
        "member_income_fen": 1_500,
        "recruitment_income_fen": 0,
        "recruitment_income_share_bp": 0,
    }


def test_member_commissions_filter_by_status(ctx: Ctx) -> None:
    parent, buyer = f.chain(ctx, 2)
    f.product(ctx, price_fen=10_000)
    f.two_level_plan(ctx)
    order = f.paid_order(ctx, buyer)
    update_settings(ctx, patch={"after_sales_days": 0})
    f.completed_order(ctx, buyer)
    run_settlement(ctx)

    pending = member_commissions(ctx, member_id=parent, status="pending")["items"]
    available = member_commissions(ctx, member_id=parent, status="available")["items"]
    assert [(c["order_id"], c["amount_fen"]) for c in pending] == [(order["id"], 1_000)]
    assert [c["amount_fen"] for c in available] == [1_000]
    with pytest.raises(InvalidInput) as refused:
        member_commissions(ctx, member_id=parent, status="paid-ish")
    assert refused.value.code == "commission_status_invalid"


def test_settlement_rows_sort_after_everything_recorded_before(ctx: Ctx) -> None:
    # given a completed order, and the event feed read up to now
    buyer = f.chain(ctx, 2)[1]
    f.product(ctx, price_fen=10_000)
    f.two_level_plan(ctx)
    update_settings(ctx, patch={"after_sales_days": 0})
    f.completed_order(ctx, buyer)
    with ctx.db.read() as tx:
        seen = list_events(tx, tenant_id=ctx.tenant_id, limit=1000)

    # when settlement writes its rows set-based
    run_settlement(ctx)

    # then a reader that carries on from its last event finds them, in the id alphabet
    with ctx.db.read() as tx:
        new = list_events(tx, tenant_id=ctx.tenant_id, after=seen[-1]["id"], limit=1000)
        posting_ids = tx.execute(
            select(postings.c.id).where(postings.c.tenant_id == ctx.tenant_id)
        ).scalars()
        ids = [e["id"] for e in new] + list(posting_ids)
    assert "OrderClosed" in [e["type"] for e in new]
    assert all(re.fullmatch(r"(evt|pst)_[0-9a-hjkmnp-tv-z]{26}", i) for i in ids), ids
