from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shequn.money import apply_rate, format_fen, split_proportionally


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
