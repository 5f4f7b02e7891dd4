"""The rules of stock orders awaiting payment (pure): their lines, when one counts as expired,
what may still be paid or cancelled, and the references of offline payments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shequn.errors import Conflict, InvalidInput
from shequn.growth.stock.rules import (
    MAX_LINES,
    MAX_UNITS,
    PAYMENT_WINDOW,
    RequestStatus,
    check_awaiting_payment,
    check_lines,
    effective_status,
    offline_txn_id,
    payment_reference,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_lines_are_each_sku_once_with_a_quantity_in_range() -> None:
    assert check_lines([("A", 1), ("B", MAX_UNITS)]) == [("A", 1), ("B", MAX_UNITS)]
    for lines, code in (
        ([], "order_lines_invalid"),
        ([(f"S{i}", 1) for i in range(MAX_LINES + 1)], "order_lines_invalid"),
        ([("A", 1), ("A", 2)], "order_sku_repeated"),
        ([("A", 0)], "quantity_invalid"),
        ([("A", MAX_UNITS + 1)], "quantity_invalid"),
    ):
        with pytest.raises(InvalidInput) as refused:
            check_lines(lines)
        assert refused.value.code == code


def test_a_request_awaiting_payment_expires_at_the_end_of_its_window() -> None:
    expires = NOW + PAYMENT_WINDOW
    assert timedelta(days=3) == PAYMENT_WINDOW
    assert effective_status("awaiting_payment", expires, expires - timedelta(seconds=1)) == (
        "awaiting_payment"
    )
    assert effective_status("awaiting_payment", expires, expires) == "expired"
    # a decided request stays as it was decided, whatever the time
    assert effective_status("paid", expires, expires + timedelta(days=9)) == "paid"
    assert effective_status("cancelled", expires, expires + timedelta(days=9)) == "cancelled"


@pytest.mark.parametrize(
    ("status", "now", "code"),
    [
        (RequestStatus.PAID, NOW, "stock_request_already_paid"),
        (RequestStatus.CANCELLED, NOW, "stock_request_cancelled"),
        (RequestStatus.EXPIRED, NOW, "stock_request_expired"),
        (RequestStatus.AWAITING_PAYMENT, NOW + PAYMENT_WINDOW, "stock_request_expired"),
    ],
)
def test_only_a_request_awaiting_payment_can_be_paid_or_cancelled(
    status: str, now: datetime, code: str
) -> None:
    with pytest.raises(Conflict) as refused:
        check_awaiting_payment(status, NOW + PAYMENT_WINDOW, now)
    assert refused.value.code == code
    check_awaiting_payment(RequestStatus.AWAITING_PAYMENT, NOW + PAYMENT_WINDOW, NOW)


def test_an_offline_payment_is_kept_apart_from_providers_ids() -> None:
    assert offline_txn_id("  ICBC  2026-0301 ") == "offline:ICBC 2026-0301"
    for bad in ("", "   ", "x" * 101):
        with pytest.raises(InvalidInput) as refused:
            offline_txn_id(bad)
        assert (refused.value.code, refused.value.params["field"]) == (
            "payment_reference_invalid",
            "reference",
        )


def test_the_payment_reference_is_the_end_of_the_id_in_capitals() -> None:
    assert payment_reference("sor_01jq2w3e4r5t6y7u8i9o0pabcd") == "9O0PABCD"
