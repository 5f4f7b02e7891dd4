"""Double-entry rules: accounts, postings and the zero-sum check (pure).

Sign convention: credit is positive. A member's wallet balance is what the brand owes the member
(positive); the debt account runs negative when the member owes the brand; the provider's
clearing account (an asset) and the commission expense account run negative; sales and fee
income run positive. Every journal transaction sums to zero per currency.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from shequn.money import apply_rate


class Purpose(StrEnum):
    WALLET_AVAILABLE = "wallet_available"
    WALLET_PENDING = "wallet_pending"
    DEBT = "debt"  # balance <= 0: what the member owes after reversals
    POINTS = "points"
    BRAND_CLEARING = "brand_clearing"  # the brand's side of every commission
    SALES = "sales"
    FEE_INCOME = "fee_income"
    PAYMENT_CLEARING = "payment_clearing"  # money held by the payment provider
    PAYOUT_CLEARING = "payout_clearing"  # approved withdrawals not yet paid out
    STOCK = "stock"  # an agent's units of one product (its currency is the product's id)


MEMBER_PURPOSES = (
    Purpose.WALLET_AVAILABLE,
    Purpose.WALLET_PENDING,
    Purpose.DEBT,
    Purpose.POINTS,
)
# Member balances kept as a cached figure beside the postings: the ones a guarded debit reads
# (a withdrawal, a reversal) or that are shown often. The frozen wallet is not among them: it
# only grows when an order is paid and shrinks at settlement or refund, nothing is ever drawn
# from it, so nothing needs its figure in a guard; it is the sum of its postings. Caching it
# would make every payment update a row of each upline, the rows a popular agent's downline
# would all queue on.
CACHED_MEMBER_PURPOSES = (Purpose.WALLET_AVAILABLE, Purpose.DEBT, Purpose.POINTS)
BRAND_PURPOSES = (Purpose.BRAND_CLEARING, Purpose.SALES, Purpose.FEE_INCOME)
SYSTEM_PURPOSES = (Purpose.PAYMENT_CLEARING, Purpose.PAYOUT_CLEARING)

_SHORT = {
    Purpose.WALLET_AVAILABLE: "av",
    Purpose.WALLET_PENDING: "pd",
    Purpose.DEBT: "db",
    Purpose.POINTS: "pt",
}

POINTS_CURRENCY = "PTS"


def stock_account(member_id: str, product_id: str) -> str:
    """An agent's stock of one product, counted in units (the product's id is the currency).
    The product is named by the random part of its id, so the account id stays within 48
    characters; the account row's unique (owner, purpose, currency) refuses a clash."""
    return f"{member_id}.s{product_id[-16:]}"


def stock_currency(product_id: str) -> str:
    return product_id


# What a member's id is followed by in the id of each of its accounts.
MEMBER_SUFFIXES = {purpose: f".{short}" for purpose, short in _SHORT.items()}


def member_account(member_id: str, purpose: Purpose) -> str:
    """Member account ids are derived, so postings never need a lookup."""
    return member_id + MEMBER_SUFFIXES[purpose]


def is_member_account(account_id: str) -> bool:
    return account_id.startswith("mem_")


_UNCACHED_SUFFIX = MEMBER_SUFFIXES[Purpose.WALLET_PENDING]


def has_cached_balance(account_id: str) -> bool:
    """Whether a posting to the account also moves its cached balance."""
    return is_member_account(account_id) and not account_id.endswith(_UNCACHED_SUFFIX)


def brand_account(purpose: Purpose) -> str:
    return f"brand.{purpose.value}"


def system_account(purpose: Purpose) -> str:
    return f"system.{purpose.value}"


@dataclass(frozen=True)
class Posting:
    account_id: str
    amount: int
    currency: str


class UnbalancedTransaction(ValueError):
    pass


def check_balanced(items: Iterable[Posting]) -> list[Posting]:
    """Drop zero lines; refuse an empty transaction or one that does not sum to zero per
    currency."""
    kept = [p for p in items if p.amount != 0]
    if not kept:
        raise UnbalancedTransaction("a journal transaction needs at least one non-zero posting")
    totals: dict[str, int] = defaultdict(int)
    for posting in kept:
        if not isinstance(posting.amount, int) or isinstance(posting.amount, bool):
            raise UnbalancedTransaction("posting amounts are integers")
        totals[posting.currency] += posting.amount
    unbalanced = {c: t for c, t in totals.items() if t != 0}
    if unbalanced:
        raise UnbalancedTransaction(f"postings do not sum to zero: {unbalanced}")
    return kept


def debt_repayment(release_fen: int, debt_balance: int) -> int:
    """How much of a release repays debt first (debt balance is <= 0)."""
    return min(release_fen, max(0, -debt_balance))


def split_reversal(reverse_fen: int, available_balance: int) -> tuple[int, int]:
    """A reversal takes what is available; the rest becomes debt. Returns (from_available,
    to_debt)."""
    from_available = min(reverse_fen, max(0, available_balance))
    return from_available, reverse_fen - from_available


def withdrawal_fee(amount_fen: int, fee_bp: int) -> int:
    """Fees round down, in the member's favour."""
    return apply_rate(amount_fen, fee_bp)
