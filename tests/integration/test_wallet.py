"""Withdrawals: minimum, fee, approval, rejection, payout results and their ledger."""

from __future__ import annotations

import pytest

from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.errors import Conflict, DomainError, InvalidInput
from shequn.flows.settings import update_settings
from shequn.ledger.rules import Purpose, brand_account, system_account
from shequn.ledger.service import account_balance_from_postings, find_balance_mismatches
from shequn.settlement.service import run_settlement
from shequn.wallet.service import (
    approve_withdrawal,
    list_withdrawals,
    record_payout_result,
    reject_withdrawal,
    request_withdrawal,
    wallet,
)
from tests import factories as f


def earner_with(ctx: Ctx, clock: ManualClock, available_fen: int) -> str:
    """A member whose available wallet holds exactly `available_fen` (10 % of a sale)."""
    parent, buyer = f.chain(ctx, 2)
    f.product(ctx, sku="GOLD", price_fen=available_fen * 10)
    f.two_level_plan(ctx)
    f.completed_order(ctx, buyer, sku="GOLD")
    clock.advance(days=7)
    run_settlement(ctx)
    assert wallet(ctx, member_id=parent)["available_fen"] == available_fen
    return parent


def balance(ctx: Ctx, account: str) -> int:
    with ctx.db.read() as tx:
        return account_balance_from_postings(tx, tenant_id=ctx.tenant_id, account_id=account)


def test_fee_minimum_and_automatic_approval(ctx: Ctx, clock: ManualClock) -> None:
    member = earner_with(ctx, clock, 100_000)
    update_settings(
        ctx,
        patch={
            "withdrawal_min_fen": 1_000,
            "withdrawal_fee_bp": 100,
            "withdrawal_auto_approve_max_fen": 20_000,
        },
    )
    with pytest.raises(InvalidInput) as caught:
        request_withdrawal(ctx, member_id=member, amount_fen=999)
    assert (caught.value.code, wallet(ctx, member_id=member)["available_fen"]) == (
        "withdrawal_below_minimum",
        100_000,
    )

    small, _ = request_withdrawal(ctx, member_id=member, amount_fen=20_000)
    large, _ = request_withdrawal(ctx, member_id=member, amount_fen=30_000)
    assert (small["status"], small["fee_fen"], small["net_fen"], small["decided_by"]) == (
        "approved",
        200,
        19_800,
        "auto",
    )
    assert (large["status"], large["fee_fen"], large["net_fen"]) == ("requested", 300, 29_700)
    assert small["payout_id"].startswith("po_")
    assert small["payout_id"] != large["payout_id"]
    view = wallet(ctx, member_id=member)
    assert (view["available_fen"], view["withdrawing_fen"]) == (50_000, 50_000)
    assert balance(ctx, brand_account(Purpose.FEE_INCOME)) == 500
    assert balance(ctx, system_account(Purpose.PAYOUT_CLEARING)) == 49_500


def test_insufficient_funds_changes_nothing(ctx: Ctx, clock: ManualClock) -> None:
    member = earner_with(ctx, clock, 5_000)
    with pytest.raises(Conflict) as caught:
        request_withdrawal(ctx, member_id=member, amount_fen=5_001)
    assert caught.value.code == "insufficient_funds"
    assert wallet(ctx, member_id=member)["available_fen"] == 5_000
    assert list_withdrawals(ctx, member_id=member)["items"] == []


def test_manual_approval_then_paid_is_idempotent(ctx: Ctx, clock: ManualClock) -> None:
    member = earner_with(ctx, clock, 80_000)
    withdrawal, _ = request_withdrawal(ctx, member_id=member, amount_fen=60_000)
    assert withdrawal["status"] == "requested"
    with pytest.raises(Conflict):
        record_payout_result(
            ctx, withdrawal_id=withdrawal["id"], payout_id=withdrawal["payout_id"], status="paid"
        )
    approved = approve_withdrawal(ctx, withdrawal_id=withdrawal["id"])
    assert (approved["status"], approved["decided_by"]) == ("approved", "test")
    with pytest.raises(Conflict) as caught:
        record_payout_result(
            ctx, withdrawal_id=withdrawal["id"], payout_id="po_other", status="paid"
        )
    assert caught.value.code == "payout_id_mismatch"
    paid, replayed = record_payout_result(
        ctx,
        withdrawal_id=withdrawal["id"],
        payout_id=withdrawal["payout_id"],
        status="paid",
        provider_ref="bank-1",
    )
    again, replayed_again = record_payout_result(
        ctx,
        withdrawal_id=withdrawal["id"],
        payout_id=withdrawal["payout_id"],
        status="paid",
        provider_ref="bank-1",
    )
    assert (paid["status"], paid["provider_ref"], replayed, replayed_again) == (
        "paid",
        "bank-1",
        False,
        True,
    )
    assert again["finished_at"] == paid["finished_at"]
    with pytest.raises(Conflict):
        record_payout_result(
            ctx, withdrawal_id=withdrawal["id"], payout_id=withdrawal["payout_id"], status="failed"
        )
    assert balance(ctx, system_account(Purpose.PAYOUT_CLEARING)) == 0
    assert wallet(ctx, member_id=member)["available_fen"] == 20_000


@pytest.mark.parametrize("outcome", ["reject", "failed"])
def test_rejected_or_failed_payout_returns_the_funds(
    ctx: Ctx, clock: ManualClock, outcome: str
) -> None:
    member = earner_with(ctx, clock, 10_000)
    update_settings(ctx, patch={"withdrawal_fee_bp": 100})
    withdrawal, _ = request_withdrawal(ctx, member_id=member, amount_fen=10_000)
    assert wallet(ctx, member_id=member)["available_fen"] == 0
    if outcome == "reject":
        done = reject_withdrawal(ctx, withdrawal_id=withdrawal["id"], reason="信息不符")
        assert (done["status"], done["reason"]) == ("rejected", "信息不符")
    else:
        done, _ = record_payout_result(
            ctx,
            withdrawal_id=withdrawal["id"],
            payout_id=withdrawal["payout_id"],
            status="failed",
            reason="卡号错误",
        )
        assert done["status"] == "failed"
    assert wallet(ctx, member_id=member)["available_fen"] == 10_000
    assert balance(ctx, brand_account(Purpose.FEE_INCOME)) == 0
    assert balance(ctx, system_account(Purpose.PAYOUT_CLEARING)) == 0
    from shequn.distribution.queries import member_commissions

    assert [c["status"] for c in member_commissions(ctx, member_id=member)["items"]] == [
        "available"
    ]
    with ctx.db.read() as tx:
        assert find_balance_mismatches(tx, tenant_id=ctx.tenant_id) == []


def test_withdrawal_idempotency_key(ctx: Ctx, clock: ManualClock) -> None:
    member = earner_with(ctx, clock, 10_000)
    first, _ = request_withdrawal(ctx, member_id=member, amount_fen=3_000, idempotency_key="w1")
    again, replayed = request_withdrawal(
        ctx, member_id=member, amount_fen=3_000, idempotency_key="w1"
    )
    assert (again["id"], replayed) == (first["id"], True)
    assert wallet(ctx, member_id=member)["available_fen"] == 7_000
    with pytest.raises(DomainError) as caught:
        request_withdrawal(ctx, member_id=member, amount_fen=4_000, idempotency_key="w1")
    assert caught.value.code == "idempotency_key_reused"
