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


# --- stock orders awaiting payment -----------------------------------------------------------

MAX_LINES = 50
MAX_UNITS = 1_000_000
# How long an agent has to pay a stock order it asked for (a bank transfer takes a day or two);
# after that its prices and cover are stale and it must be asked for again.
PAYMENT_WINDOW = timedelta(days=3)
# What an operator types as an offline payment's reference becomes this provider's txn id.
OFFLINE_PROVIDER = "offline"


class RequestStatus:
    """The states of a stock order awaiting payment: it is paid once (then it is a stock
    order), or cancelled by the agent, or it expires unpaid."""

    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


REQUEST_STATUSES = (
    RequestStatus.AWAITING_PAYMENT,
    RequestStatus.PAID,
    RequestStatus.CANCELLED,
    RequestStatus.EXPIRED,
)


def check_lines(lines: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """The (sku, quantity) lines of a stock order: 1 to MAX_LINES, each SKU once, each
    quantity from 1 to MAX_UNITS."""
    if not 1 <= len(lines) <= MAX_LINES:
        raise InvalidInput("order_lines_invalid", max=MAX_LINES)
    if len({sku for sku, _ in lines}) != len(lines):
        raise InvalidInput("order_sku_repeated")
    for sku, quantity in lines:
        if not 1 <= quantity <= MAX_UNITS:
            raise InvalidInput("quantity_invalid", sku=sku, max=MAX_UNITS)
    return list(lines)


def effective_status(status: str, expires_at: datetime, now: datetime) -> str:
    """A request awaiting payment past its window is expired, whether or not anything has
    written so yet."""
    if status == RequestStatus.AWAITING_PAYMENT and now >= expires_at:
        return RequestStatus.EXPIRED
    return status


def check_awaiting_payment(status: str, expires_at: datetime, now: datetime) -> None:
    """Refuse to pay or cancel a request that no longer awaits payment, saying why."""
    shown = effective_status(status, expires_at, now)
    if shown == RequestStatus.EXPIRED:
        raise Conflict("stock_request_expired")
    if shown == RequestStatus.PAID:
        raise Conflict("stock_request_already_paid")
    if shown == RequestStatus.CANCELLED:
        raise Conflict("stock_request_cancelled")


def offline_txn_id(reference: str) -> str:
    """The provider transaction id of an offline payment (a bank transfer's reference), kept
    apart from any payment provider's own ids."""
    clean = " ".join(reference.split())
    if not 1 <= len(clean) <= 100:
        raise InvalidInput("payment_reference_invalid", field="reference", max=100)
    return f"{OFFLINE_PROVIDER}:{clean}"


def payment_reference(request_id: str) -> str:
    """What an agent writes on a bank transfer so the brand can match it to the request: the
    end of the request's id, in capitals (easy to read out and type)."""
    return request_id.rsplit("_", 1)[-1][-8:].upper()
