"""The one rounding rule for money, and fair splitting of an amount across parts.

Money is integer fen; rates are integer basis points (10000 bp = 100 %).
"""

from __future__ import annotations

from collections.abc import Sequence

BP_DENOMINATOR = 10_000
MAX_AMOUNT_FEN = 10**13  # 1000 亿元: far above any single order, far below int64 overflow


def apply_rate(base_fen: int, rate_bp: int) -> int:
    """floor(base * rate / 10000); the remainder stays with the brand."""
    if base_fen < 0 or rate_bp < 0:
        raise ValueError("base and rate must be non-negative")
    return base_fen * rate_bp // BP_DENOMINATOR


def scale_down(amount_fen: int, part: int, whole: int) -> int:
    """floor(amount * part / whole) for 0 <= part <= whole: what is left of an amount once its
    base shrank from `whole` to `part`."""
    if whole <= 0 or not 0 <= part <= whole or amount_fen < 0:
        raise ValueError("scale_down takes 0 <= part <= whole and a non-negative amount")
    return amount_fen * part // whole


def split_proportionally(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` across `weights` by largest remainder; parts sum exactly to `total`.

    No part exceeds its weight when `total` does not exceed the sum of the weights.
    """
    if total < 0 or any(w < 0 for w in weights):
        raise ValueError("amounts must be non-negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        if total:
            raise ValueError("cannot split a positive amount across zero weights")
        return [0] * len(weights)
    floors = [total * w // weight_sum for w in weights]
    remainders = [(total * w % weight_sum, -i) for i, w in enumerate(weights)]
    short = total - sum(floors)
    for _, neg_index in sorted(remainders, reverse=True)[:short]:
        floors[-neg_index] += 1
    return floors


def format_fen(amount_fen: int) -> str:
    """`12345` → `123.45`; for display only."""
    sign = "-" if amount_fen < 0 else ""
    value = abs(amount_fen)
    return f"{sign}{value // 100}.{value % 100:02d}"


def format_yuan(amount_fen: int) -> str:
    """An amount as a person reads it: `123456` → `¥1,234.56`, `-300` → `-¥3.00`."""
    sign = "-" if amount_fen < 0 else ""
    value = abs(amount_fen)
    return f"{sign}¥{value // 100:,}.{value % 100:02d}"


def format_percent(rate_bp: int) -> str:
    """A rate as a person reads it, to one decimal: `1250` → `12.5%`, `3000` → `30.0%`."""
    sign = "-" if rate_bp < 0 else ""
    value = abs(rate_bp)
    return f"{sign}{value // 100}.{value % 100 // 10}%"
