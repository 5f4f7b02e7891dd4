"""Withdrawal rules (pure): amounts and the state machine."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shequn.errors import Conflict, InvalidInput
from shequn.ledger.rules import withdrawal_fee


class WithdrawalStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    PAID = "paid"
    REJECTED = "rejected"
    FAILED = "failed"  # the payout bounced; funds went back to the wallet


_ALLOWED = {
    ("approve", WithdrawalStatus.REQUESTED): WithdrawalStatus.APPROVED,
    ("reject", WithdrawalStatus.REQUESTED): WithdrawalStatus.REJECTED,
    ("reject", WithdrawalStatus.APPROVED): WithdrawalStatus.REJECTED,
    ("paid", WithdrawalStatus.APPROVED): WithdrawalStatus.PAID,
    ("failed", WithdrawalStatus.APPROVED): WithdrawalStatus.FAILED,
}


def next_withdrawal_status(current: WithdrawalStatus, action: str) -> WithdrawalStatus:
    target = _ALLOWED.get((action, current))
    if target is None:
        raise Conflict("withdrawal_transition_invalid", status=current.value, action=action)
    return target


@dataclass(frozen=True)
class WithdrawalQuote:
    amount_fen: int
    fee_fen: int
    net_fen: int
    auto_approve: bool


def quote_withdrawal(
    amount_fen: int, *, minimum_fen: int, fee_bp: int, auto_approve_max_fen: int
) -> WithdrawalQuote:
    if amount_fen <= 0:
        raise InvalidInput("amount_invalid", field="amount_fen")
    if amount_fen < minimum_fen:
        raise InvalidInput("withdrawal_below_minimum", minimum_fen=minimum_fen)
    fee = withdrawal_fee(amount_fen, fee_bp)
    net = amount_fen - fee
    if net <= 0:
        raise InvalidInput("withdrawal_fee_exceeds_amount", fee_fen=fee)
    return WithdrawalQuote(amount_fen, fee, net, amount_fen <= auto_approve_max_fen)


def within_daily_limits(
    amount_fen: int,
    *,
    earlier_today: int,
    earlier_today_fen: int,
    count_max: int,
    amount_max_fen: int,
) -> bool:
    """Whether one more withdrawal of `amount_fen` stays within the member's daily limits,
    given its withdrawals earlier the same (local) day; beyond them an operator approves."""
    return earlier_today + 1 <= count_max and earlier_today_fen + amount_fen <= amount_max_fen
