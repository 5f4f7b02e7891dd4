from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shequn.errors import Conflict, InvalidInput
from shequn.ledger.rules import (
    MEMBER_PURPOSES,
    Posting,
    Purpose,
    UnbalancedTransaction,
    brand_account,
    check_balanced,
    debt_repayment,
    has_cached_balance,
    member_account,
    split_reversal,
    withdrawal_fee,
)
from shequn.orders.rules import (
    LineAmounts,
    OrderAction,
    OrderStatus,
    allocate_refund,
    next_status,
    status_after_refund,
)
from shequn.wallet.rules import WithdrawalStatus, next_withdrawal_status, quote_withdrawal

S, A = OrderStatus, OrderAction


@pytest.mark.parametrize(
    ("status", "action", "target"),
    [
        (S.CREATED, A.PAY, S.PAID),
        (S.CREATED, A.CANCEL, S.CANCELLED),
        (S.PAID, A.SHIP, S.SHIPPED),
        (S.SHIPPED, A.COMPLETE, S.COMPLETED),
        (S.COMPLETED, A.CLOSE, S.CLOSED),
    ],
)
def test_known_transitions(status: OrderStatus, action: OrderAction, target: OrderStatus) -> None:
    assert next_status(status, action) is target


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (S.CREATED, A.SHIP),
        (S.PAID, A.PAY),
        (S.PAID, A.COMPLETE),
        (S.PAID, A.CANCEL),
        (S.CLOSED, A.SHIP),
        (S.CANCELLED, A.PAY),
        (S.REFUNDED, A.SHIP),
    ],
)
def test_unknown_transitions_are_refused(status: OrderStatus, action: OrderAction) -> None:
    with pytest.raises(Conflict) as caught:
        next_status(status, action)
    assert (caught.value.code, caught.value.params) == (
        "order_transition_invalid",
        {"status": status.value, "action": action.value},
    )


def test_full_refund_before_close_ends_the_order_but_not_after() -> None:
    assert status_after_refund(S.SHIPPED, paid_fen=100, refunded_fen=100) is S.REFUNDED
    assert status_after_refund(S.SHIPPED, paid_fen=100, refunded_fen=40) is S.SHIPPED
    assert status_after_refund(S.CLOSED, paid_fen=100, refunded_fen=100) is S.REFUNDED
    assert status_after_refund(S.CLOSED, paid_fen=100, refunded_fen=99) is S.CLOSED
    with pytest.raises(Conflict):
        status_after_refund(S.CREATED, paid_fen=0, refunded_fen=1)


def test_refund_allocation_is_proportional_to_what_remains() -> None:
    lines = [LineAmounts("a", 6_000, 0), LineAmounts("b", 4_000, 2_000)]
    assert allocate_refund(4_000, lines) == {"a": 3_000, "b": 1_000}
    with pytest.raises(Conflict) as caught:
        allocate_refund(8_001, lines)
    assert caught.value.params == {"amount_fen": 8_001, "refundable_fen": 8_000}


def test_journal_must_balance_per_currency() -> None:
    ok = check_balanced([Posting("a", 5, "CNY"), Posting("b", -5, "CNY"), Posting("c", 0, "CNY")])
    assert [p.account_id for p in ok] == ["a", "b"]
    with pytest.raises(UnbalancedTransaction):
        check_balanced([Posting("a", 5, "CNY"), Posting("b", -4, "CNY")])
    with pytest.raises(UnbalancedTransaction):
        check_balanced([Posting("a", 5, "CNY"), Posting("b", -5, "PTS")])
    with pytest.raises(UnbalancedTransaction):
        check_balanced([])


@given(st.integers(0, 10**9), st.integers(-(10**9), 0))
def test_release_repays_debt_first(release: int, debt_balance: int) -> None:
    repaid = debt_repayment(release, debt_balance)
    assert 0 <= repaid <= release
    assert repaid == min(release, -debt_balance)


@given(st.integers(0, 10**9), st.integers(-(10**6), 10**9))
def test_reversal_takes_available_then_debt(reverse: int, available: int) -> None:
    from_available, to_debt = split_reversal(reverse, available)
    assert from_available + to_debt == reverse
    assert 0 <= from_available <= max(available, 0)
    assert to_debt == 0 or from_available == max(available, 0)


def test_withdrawal_quote() -> None:
    quote = quote_withdrawal(10_000, minimum_fen=1_000, fee_bp=60, auto_approve_max_fen=50_000)
    assert (quote.fee_fen, quote.net_fen, quote.auto_approve) == (60, 9_940, True)
    assert (
        quote_withdrawal(60_000, minimum_fen=0, fee_bp=0, auto_approve_max_fen=50_000).auto_approve
        is False
    )
    assert withdrawal_fee(99, 100) == 0
    with pytest.raises(InvalidInput) as caught:
        quote_withdrawal(999, minimum_fen=1_000, fee_bp=0, auto_approve_max_fen=0)
    assert caught.value.code == "withdrawal_below_minimum"
    with pytest.raises(InvalidInput) as caught:
        quote_withdrawal(1, minimum_fen=0, fee_bp=10_000, auto_approve_max_fen=0)
    assert caught.value.code == "withdrawal_fee_exceeds_amount"


def test_withdrawal_state_machine() -> None:
    W = WithdrawalStatus
    assert next_withdrawal_status(W.REQUESTED, "approve") is W.APPROVED
    assert next_withdrawal_status(W.APPROVED, "paid") is W.PAID
    assert next_withdrawal_status(W.APPROVED, "failed") is W.FAILED
    assert next_withdrawal_status(W.APPROVED, "reject") is W.REJECTED
    for status, action in [
        (W.REQUESTED, "paid"),
        (W.PAID, "reject"),
        (W.REJECTED, "approve"),
        (W.FAILED, "paid"),
    ]:
        with pytest.raises(Conflict):
            next_withdrawal_status(status, action)


def test_only_the_frozen_wallet_of_a_member_has_no_cached_balance() -> None:
    cached = {p for p in MEMBER_PURPOSES if has_cached_balance(member_account("mem_x", p))}
    assert cached == {Purpose.WALLET_AVAILABLE, Purpose.DEBT, Purpose.POINTS}
    assert not has_cached_balance(brand_account(Purpose.BRAND_CLEARING))
