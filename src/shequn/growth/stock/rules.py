"""Days of cover and buyback (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from shequn.errors import Conflict, InvalidInput
from shequn.money import apply_rate

HISTORY_DAYS = 30


@dataclass(frozen=True)
class StockLot:
    """One purchase of units (oldest are sold first, so what is unsold sits in the newest)."""

    purchased_at: datetime
    quantity: int
    unit_cost_fen: int


def monthly_sales(
    sold_last_30_days: int, *, first_purchase_at: datetime | None, now: datetime, default: int
) -> int:
    """The units per 30 days days of cover are counted against: an agent that has held the
    product for 30 days or more is measured by its own sales; a newer one by the tenant's
    default for new agents."""
    if first_purchase_at is None or now - first_purchase_at < timedelta(days=HISTORY_DAYS):
        return default
    return sold_last_30_days


def cover_tenths(units: int, monthly: int) -> int | None:
    """Days of cover in tenths of a day (stock / average daily sales), None when nothing sells
    (no amount of stock is covered then)."""
    if units <= 0:
        return 0
    if monthly <= 0:
        return None
    return units * HISTORY_DAYS * 10 // monthly


def shown_days(tenths: int | None) -> str:
    return "∞" if tenths is None else f"{tenths // 10}.{tenths % 10}"


def check_cover(*, sku: str, units_after: int, monthly: int, limit_days: int) -> int | None:
    """Refuse a stock order that would leave more days of cover than the limit, with the
    figure; returns the cover after the order (tenths of a day)."""
    after = cover_tenths(units_after, monthly)
    if after is None or after > limit_days * 10:
        raise Conflict(
            "stock_cover_exceeded",
            sku=sku,
            cover_days=shown_days(after),
            limit_days=limit_days,
            units=units_after,
            monthly_sales=monthly,
        )
    return after


def unsold_lots(lots: Sequence[StockLot], balance: int) -> list[tuple[StockLot, int]]:
    """The units still held, by lot, newest first (units leave oldest first)."""
    left = balance
    held = []
    for lot in sorted(lots, key=lambda lot: lot.purchased_at, reverse=True):
        if left <= 0:
            break
        part = min(lot.quantity, left)
        held.append((lot, part))
        left -= part
    return held


@dataclass(frozen=True)
class BuybackQuote:
    eligible_units: int
    amount_fen: int


def quote_buyback(
    lots: Sequence[StockLot],
    *,
    balance: int,
    quantity: int,
    now: datetime,
    window_days: int,
    price_bp: int,
) -> BuybackQuote:
    """What buying back `quantity` unsold units pays: only units bought within the window are
    taken back (newest first), each at the tenant's share of what the agent paid for it."""
    if quantity <= 0:
        raise InvalidInput("quantity_invalid", sku="", max=0)
    since = now - timedelta(days=window_days)
    eligible = [
        (lot, part) for lot, part in unsold_lots(lots, balance) if lot.purchased_at >= since
    ]
    units = sum(part for _, part in eligible)
    if quantity > units:
        raise Conflict(
            "stock_buyback_exceeds", quantity=quantity, eligible=units, window_days=window_days
        )
    left = quantity
    amount = 0
    for lot, part in eligible:
        take = min(part, left)
        amount += apply_rate(lot.unit_cost_fen * take, price_bp)
        left -= take
        if left == 0:
            break
    return BuybackQuote(units, amount)
