from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shequn.money import apply_rate, format_fen, format_percent, format_yuan, split_proportionally


def test_apply_rate_floors_and_keeps_remainder_with_brand() -> None:
    assert apply_rate(999, 1_000) == 99
    assert apply_rate(10_000, 1_000) == 1_000
    assert apply_rate(1, 9_999) == 0


def test_apply_rate_refuses_negative() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        apply_rate(-1, 100)


@given(st.integers(0, 10**12), st.lists(st.integers(0, 10**9), min_size=1, max_size=20))
def test_split_proportionally_sums_exactly_and_respects_weights(
    total: int, weights: list[int]
) -> None:
    if sum(weights) == 0:
        total = 0
    total = min(total, sum(weights))
    parts = split_proportionally(total, weights)
    assert sum(parts) == total
    assert all(0 <= p <= w for p, w in zip(parts, weights, strict=True))


def test_split_gives_remainder_to_largest_fraction() -> None:
    assert split_proportionally(10, [1, 1, 1]) == [4, 3, 3]
    assert split_proportionally(5, [3, 7]) == [2, 3]  # a tie goes to the earlier part
    assert split_proportionally(100, [30, 70]) == [30, 70]


def test_format_fen() -> None:
    assert (format_fen(0), format_fen(5), format_fen(12_345), format_fen(-250)) == (
        "0.00",
        "0.05",
        "123.45",
        "-2.50",
    )


@pytest.mark.parametrize(
    ("fen", "shown"),
    [
        (0, "¥0.00"),
        (5, "¥0.05"),
        (1_000, "¥10.00"),
        (123_456_789, "¥1,234,567.89"),
        (-300, "-¥3.00"),
    ],
)
def test_amounts_read_as_yuan_with_two_decimals(fen: int, shown: str) -> None:
    assert format_yuan(fen) == shown


@pytest.mark.parametrize(
    ("bp", "shown"),
    [(0, "0.0%"), (1_250, "12.5%"), (3_000, "30.0%"), (9_999, "99.9%"), (5, "0.0%")],
)
def test_rates_read_as_percent_with_one_decimal(bp: int, shown: str) -> None:
    assert format_percent(bp) == shown
