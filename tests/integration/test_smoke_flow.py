"""The whole commerce loop on each backend: bind, buy, accrue, close, release, withdraw."""

from __future__ import annotations

from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.distribution.queries import member_commissions
from shequn.ledger.service import find_balance_mismatches, unbalanced_transactions
from shequn.settlement.service import run_settlement
from shequn.wallet.service import request_withdrawal, wallet
from tests import factories as f


def test_paid_order_pays_two_levels_and_settles(ctx: Ctx, clock: ManualClock) -> None:
    # given a chain grandparent ← parent ← buyer, a 10 %/5 % plan and a 100-yuan product
    grandparent, parent, buyer = f.chain(ctx, 3)
    f.product(ctx, price_fen=10_000)
    f.two_level_plan(ctx)

    # when the buyer pays and the order completes
    order = f.completed_order(ctx, buyer)

    # then the uplines hold pending commission of exactly 10 % and 5 %
    assert [(c["level"], c["amount_fen"]) for c in order["commissions"]] == [(1, 1_000), (2, 500)]
    assert wallet(ctx, member_id=parent)["pending_fen"] == 1_000
    assert wallet(ctx, member_id=grandparent)["pending_fen"] == 500

    # when settlement runs before the window has passed, nothing is released
    assert run_settlement(ctx)["orders_closed"] == 0

    # when the after-sales window (7 days) passes
    clock.advance(days=7)
    first = run_settlement(ctx)
    second = run_settlement(ctx)

    # then the order closes once and the commission becomes available
    assert (first["orders_closed"], first["commissions_released"], first["released_fen"]) == (
        1,
        2,
        1_500,
    )
    assert (second["orders_closed"], second["commissions_released"]) == (0, 0)
    assert wallet(ctx, member_id=parent) | {"withdrawing_fen": 0} == {
        "member_id": parent,
        "currency": "CNY",
        "available_fen": 1_000,
        "pending_fen": 0,
        "debt_fen": 0,
        "withdrawing_fen": 0,
        "points": 0,
    }
    lines = member_commissions(ctx, member_id=parent)["items"]
    assert [(line["status"], line["amount_fen"]) for line in lines] == [("available", 1_000)]

    # when the parent withdraws everything
    withdrawal, replayed = request_withdrawal(ctx, member_id=parent, amount_fen=1_000)
    assert not replayed
    assert (withdrawal["status"], withdrawal["fee_fen"], withdrawal["net_fen"]) == (
        "approved",
        0,
        1_000,
    )
    assert wallet(ctx, member_id=parent)["available_fen"] == 0
    assert member_commissions(ctx, member_id=parent)["items"][0]["status"] == "withdrawn"

    with ctx.db.read() as tx:
        assert find_balance_mismatches(tx, tenant_id=ctx.tenant_id) == []
        assert unbalanced_transactions(tx, tenant_id=ctx.tenant_id) == []
