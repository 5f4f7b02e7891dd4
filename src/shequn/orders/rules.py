"""The order state machine and the arithmetic of prices and refunds (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from shequn.errors import Conflict
from shequn.money import split_proportionally


class OrderStatus(StrEnum):
    CREATED = "created"
    PAID = "paid"
    SHIPPED = "shipped"
    COMPLETED = "completed"
    CLOSED = "closed"  # after-sales window over, commissions released
    CANCELLED = "cancelled"  # never paid (a payment that came after is refunded)
    REFUNDED = "refunded"  # refunded in full, before or after close


class OrderAction(StrEnum):
    PAY = "pay"
    SHIP = "ship"
    COMPLETE = "complete"
    CLOSE = "close"
    CANCEL = "cancel"
    REFUND = "refund"


_TRANSITIONS: dict[tuple[OrderStatus, OrderAction], OrderStatus] = {
    (OrderStatus.CREATED, OrderAction.PAY): OrderStatus.PAID,
    (OrderStatus.CREATED, OrderAction.CANCEL): OrderStatus.CANCELLED,
    (OrderStatus.PAID, OrderAction.SHIP): OrderStatus.SHIPPED,
    (OrderStatus.SHIPPED, OrderAction.COMPLETE): OrderStatus.COMPLETED,
    (OrderStatus.COMPLETED, OrderAction.CLOSE): OrderStatus.CLOSED,
}

REFUNDABLE = frozenset(
    {OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.COMPLETED, OrderStatus.CLOSED}
)


def next_status(current: OrderStatus, action: OrderAction) -> OrderStatus:
    """Refuse any transition the machine does not know."""
    target = _TRANSITIONS.get((current, action))
    if target is None:
        raise Conflict("order_transition_invalid", status=current.value, action=action.value)
    return target


def status_after_refund(current: OrderStatus, *, paid_fen: int, refunded_fen: int) -> OrderStatus:
    if current not in REFUNDABLE:
        raise Conflict("order_transition_invalid", status=current.value, action="refund")
    if refunded_fen >= paid_fen:
        return OrderStatus.REFUNDED
    return current


@dataclass(frozen=True)
class LineAmounts:
    line_id: str
    line_total_fen: int
    refunded_fen: int

    @property
    def remaining_fen(self) -> int:
        return self.line_total_fen - self.refunded_fen


def allocate_refund(amount_fen: int, lines: Sequence[LineAmounts]) -> dict[str, int]:
    """Spread a refund over the lines in proportion to what is still paid on each."""
    remaining = [line.remaining_fen for line in lines]
    if amount_fen > sum(remaining):
        raise Conflict("refund_exceeds_paid", amount_fen=amount_fen, refundable_fen=sum(remaining))
    parts = split_proportionally(amount_fen, remaining)
    return {line.line_id: part for line, part in zip(lines, parts, strict=True) if part}
