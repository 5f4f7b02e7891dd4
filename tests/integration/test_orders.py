"""Orders: idempotent creation and payment, the state machine, refunds and their commission."""

from __future__ import annotations

from typing import Any

import pytest

from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.errors import Conflict, DomainError, InvalidInput, NotFound
from shequn.ledger.service import find_balance_mismatches, unbalanced_transactions
from shequn.orders.creation import create_order
from shequn.orders.payment import pay_order
from shequn.orders.refunds import refund_order
from shequn.orders.transitions import cancel_order, complete_order, ship_order
from shequn.orders.views import get_order
from shequn.settlement.service import run_settlement
from shequn.wallet.service import request_withdrawal, wallet
from tests import factories as f


def state(ctx: Ctx, order_id: str, *members: str) -> dict[str, Any]:
    return {
        "order": get_order(ctx, order_id=order_id),
        "wallets": [wallet(ctx, member_id=m) for m in members],
    }


def ledger_is_sound(ctx: Ctx) -> None:
    with ctx.db.read() as tx:
        assert find_balance_mismatches(tx, tenant_id=ctx.tenant_id) == []
        assert unbalanced_transactions(tx, tenant_id=ctx.tenant_id) == []


def test_create_is_idempotent_on_the_client_key(ctx: Ctx) -> None:
    buyer = f.member(ctx)
    f.product(ctx, price_fen=1_990)
    first, replayed_first = create_order(
        ctx, buyer_id=buyer, lines=[{"sku": "CORE-1", "quantity": 2}], idempotency_key="k1"
    )
    again, replayed_again = create_order(
        ctx, buyer_id=buyer, lines=[{"sku": "CORE-1", "quantity": 2}], idempotency_key="k1"
    )
    assert (replayed_first, replayed_again) == (False, True)
    assert again["id"] == first["id"]
    assert (first["total_fen"], first["status"]) == (3_980, "created")
    with pytest.raises(Conflict) as caught:
        create_order(
            ctx, buyer_id=buyer, lines=[{"sku": "CORE-1", "quantity": 3}], idempotency_key="k1"
        )
    assert caught.value.code == "idempotency_key_reused"


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        ([], "order_lines_invalid"),
        ([{"sku": "CORE-1", "quantity": 0}], "quantity_invalid"),
        ([{"sku": "CORE-1", "quantity": 10_001}], "quantity_invalid"),
        (
            [{"sku": "CORE-1", "quantity": 1}, {"sku": "CORE-1", "quantity": 1}],
            "order_sku_repeated",
        ),
        ([{"sku": "NOPE", "quantity": 1}], "product_not_found"),
    ],
)
def test_bad_orders_are_refused(ctx: Ctx, lines: list[dict[str, Any]], code: str) -> None:
    buyer = f.member(ctx)
    f.product(ctx)
    with pytest.raises(DomainError) as caught:
        create_order(ctx, buyer_id=buyer, lines=lines)
    assert caught.value.code == code
    from shequn.orders.views import list_orders

    assert list_orders(ctx)["items"] == []


def test_payment_must_match_and_is_idempotent_on_provider_txn(ctx: Ctx) -> None:
    parent = f.member(ctx)
    buyer = f.member(ctx, referrer=parent)
    f.product(ctx, price_fen=10_000)
    f.two_level_plan(ctx)
    order, _ = create_order(ctx, buyer_id=buyer, lines=[{"sku": "CORE-1", "quantity": 1}])
    before = state(ctx, order["id"], parent)

    with pytest.raises(InvalidInput) as caught:
        pay_order(ctx, order_id=order["id"], provider_txn_id="wx-1", amount_fen=9_999)
    assert (caught.value.code, caught.value.params) == (
        "payment_amount_mismatch",
        {"expected_fen": 10_000, "got_fen": 9_999},
    )
    assert state(ctx, order["id"], parent) == before

    paid, replayed = pay_order(ctx, order_id=order["id"], provider_txn_id="wx-1", amount_fen=10_000)
    again, replayed_again = pay_order(
        ctx, order_id=order["id"], provider_txn_id="wx-1", amount_fen=10_000
    )
    assert (paid["status"], replayed, replayed_again) == ("paid", False, True)
    assert [c["amount_fen"] for c in again["commissions"]] == [1_000]
    assert wallet(ctx, member_id=parent)["pending_fen"] == 1_000

    with pytest.raises(Conflict) as conflict:
        pay_order(ctx, order_id=order["id"], provider_txn_id="wx-2", amount_fen=10_000)
    assert conflict.value.code == "order_already_paid"
    other, _ = create_order(ctx, buyer_id=buyer, lines=[{"sku": "CORE-1", "quantity": 1}])
    with pytest.raises(Conflict) as conflict:
        pay_order(ctx, order_id=other["id"], provider_txn_id="wx-1", amount_fen=10_000)
    assert conflict.value.code == "payment_txn_reused"
    assert get_order(ctx, order_id=other["id"])["status"] == "created"
    with pytest.raises(NotFound):
        pay_order(ctx, order_id="ord_missing", provider_txn_id="wx-3", amount_fen=1)
    ledger_is_sound(ctx)


def test_state_machine_refuses_illegal_steps(ctx: Ctx) -> None:
    buyer = f.member(ctx)
    f.product(ctx)
    order, _ = create_order(ctx, buyer_id=buyer, lines=[{"sku": "CORE-1", "quantity": 1}])
    for step in (ship_order, complete_order):
        with pytest.raises(Conflict) as caught:
            step(ctx, order_id=order["id"])
        assert caught.value.params == {"status": "created", "action": step.__name__.split("_")[0]}
    with pytest.raises(Conflict):
        refund_order(ctx, order_id=order["id"], amount_fen=1, reason="x")
    assert cancel_order(ctx, order_id=order["id"])["status"] == "cancelled"
    # a payment that arrives after the cancellation is recorded and refunded, never lost
    late, replayed = pay_order(
        ctx, order_id=order["id"], provider_txn_id="t", amount_fen=order["total_fen"]
    )
    assert replayed is False
    assert (late["status"], late["paid_fen"], late["refunded_fen"]) == (
        "cancelled",
        order["total_fen"],
        order["total_fen"],
    )
    refunded = get_order(ctx, order_id=order["id"])["refunds"]
    assert [(r["amount_fen"], r["phase"]) for r in refunded] == [
        (order["total_fen"], "before_close")
    ]
    assert late["commissions"] == []
    again, replayed = pay_order(
        ctx, order_id=order["id"], provider_txn_id="t", amount_fen=order["total_fen"]
    )
    assert (replayed, again) == (True, late)
    assert get_order(ctx, order_id=order["id"])["refunds"] == refunded
    assert get_order(ctx, order_id=order["id"])["status"] == "cancelled"


def test_partial_refund_before_close_cancels_part_of_the_commission(
    ctx: Ctx, clock: ManualClock
) -> None:
    grandparent, parent, buyer = f.chain(ctx, 3)
    f.product(ctx, price_fen=10_000)
    f.two_level_plan(ctx)
    order = f.completed_order(ctx, buyer)

    refund, _ = refund_order(ctx, order_id=order["id"], amount_fen=4_000, reason="少发一件")
    assert (
        refund["phase"],
        refund["commission_cancelled_fen"],
        refund["commission_reversed_fen"],
    ) == (
        "before_close",
        600,
        0,
    )
    assert wallet(ctx, member_id=parent)["pending_fen"] == 600
    assert wallet(ctx, member_id=grandparent)["pending_fen"] == 300
    assert get_order(ctx, order_id=order["id"])["status"] == "completed"

    clock.advance(days=7)
    assert run_settlement(ctx)["released_fen"] == 900
    assert wallet(ctx, member_id=parent)["available_fen"] == 600
    ledger_is_sound(ctx)


def test_full_refund_before_close_cancels_everything(ctx: Ctx) -> None:
    _, parent, buyer = f.chain(ctx, 3)
    f.product(ctx, price_fen=10_000)
    f.two_level_plan(ctx)
    order = f.paid_order(ctx, buyer)
    refund_order(ctx, order_id=order["id"], amount_fen=10_000, reason="不想要了")
    view = get_order(ctx, order_id=order["id"])
    assert view["status"] == "refunded"
    assert [(c["status"], c["net_fen"]) for c in view["commissions"]] == [
        ("cancelled", 0),
        ("cancelled", 0),
    ]
    assert wallet(ctx, member_id=parent)["pending_fen"] == 0
    with pytest.raises(Conflict):
        refund_order(ctx, order_id=order["id"], amount_fen=1, reason="again")
    ledger_is_sound(ctx)


def test_refund_after_close_reverses_and_turns_the_shortfall_into_debt(
    ctx: Ctx, clock: ManualClock
) -> None:
    parent, buyer = f.chain(ctx, 2)
    f.product(ctx, price_fen=10_000)
    f.two_level_plan(ctx)
    order = f.completed_order(ctx, buyer)
    clock.advance(days=7)
    run_settlement(ctx)
    assert wallet(ctx, member_id=parent)["available_fen"] == 1_000
    request_withdrawal(ctx, member_id=parent, amount_fen=700)

    refund, _ = refund_order(ctx, order_id=order["id"], amount_fen=10_000, reason="售后退货")

    assert (refund["phase"], refund["commission_reversed_fen"]) == ("after_close", 1_000)
    assert wallet(ctx, member_id=parent) | {"withdrawing_fen": 0} == {
        "member_id": parent,
        "currency": "CNY",
        "available_fen": 0,
        "pending_fen": 0,
        "debt_fen": 700,
        "withdrawing_fen": 0,
        "points": 0,
    }
    view = get_order(ctx, order_id=order["id"])
    assert view["status"] == "refunded"  # refunded in full, after close as before it
    assert [(c["status"], c["net_fen"]) for c in view["commissions"]] == [("reversed", 0)]

    # later earnings repay the debt first
    f.completed_order(ctx, buyer)
    clock.advance(days=7)
    run_settlement(ctx)
    assert (
        wallet(ctx, member_id=parent)["debt_fen"],
        wallet(ctx, member_id=parent)["available_fen"],
    ) == (0, 300)
    ledger_is_sound(ctx)


def test_refund_is_idempotent_on_its_key(ctx: Ctx) -> None:
    buyer = f.member(ctx)
    f.product(ctx, price_fen=5_000)
    order = f.paid_order(ctx, buyer)
    first, replayed = refund_order(
        ctx, order_id=order["id"], amount_fen=1_000, reason="r", idempotency_key="rf1"
    )
    again, replayed_again = refund_order(
        ctx, order_id=order["id"], amount_fen=1_000, reason="r", idempotency_key="rf1"
    )
    assert (first["id"], replayed, replayed_again) == (again["id"], False, True)
    assert get_order(ctx, order_id=order["id"])["refunded_fen"] == 1_000
    with pytest.raises(Conflict) as caught:
        refund_order(ctx, order_id=order["id"], amount_fen=4_001, reason="too much")
    assert caught.value.code == "refund_exceeds_paid"


def test_tier_price_and_commission_base_is_what_was_paid(ctx: Ctx) -> None:
    from shequn.flows.tiers import create_tier

    vip = create_tier(ctx, name="VIP", rank=1, discount_bp=1_000)
    parent = f.member(ctx)
    buyer = f.member(ctx, referrer=parent, tier_id=vip["id"])
    f.product(ctx, price_fen=10_000)
    f.two_level_plan(ctx)
    order = f.paid_order(ctx, buyer)
    assert (order["subtotal_fen"], order["discount_fen"], order["total_fen"]) == (
        10_000,
        1_000,
        9_000,
    )
    assert [c["amount_fen"] for c in order["commissions"]] == [900]
