"""Coupon terms and the pricing of an order with coupons and points (pure).

An order's lines are priced at the buyer's tier; a coupon that does not stack with the tier
price takes the list price for the lines it covers instead. Each coupon then takes its discount
from the lines in its scope (in proportion to what is left on each, so that the per-line
amounts add up exactly), and points pay a share of what is left, at most the tenant's cap.
What a line's buyer pays is what its commission is computed on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shequn.errors import Conflict, InvalidInput
from shequn.money import MAX_AMOUNT_FEN, apply_rate, split_proportionally

MAX_COUPONS_PER_ORDER = 5
MAX_SCOPE_VALUES = 100


class CouponKind(StrEnum):
    AMOUNT = "amount"  # a fixed amount off
    PERCENT = "percent"  # a rate off, in bp


class CouponScope(StrEnum):
    ALL = "all"
    PRODUCT = "product"  # by sku
    CATEGORY = "category"
    LADDER_ROLE = "ladder_role"


class CouponStatus(StrEnum):
    AVAILABLE = "available"
    USED = "used"
    VOID = "void"


@dataclass(frozen=True)
class CouponTerms:
    """What a coupon takes off and where: its template's terms."""

    kind: CouponKind
    amount_off_fen: int = 0
    percent_off_bp: int = 0
    max_discount_fen: int | None = None  # a percent coupon's ceiling
    min_spend_fen: int = 0  # on the lines it covers
    scope: CouponScope = CouponScope.ALL
    scope_values: frozenset[str] = frozenset()
    stack_with_tier_price: bool = True
    stack_with_points: bool = True

    def covers(self, line: OrderLine) -> bool:
        if self.scope is CouponScope.ALL:
            return True
        if self.scope is CouponScope.PRODUCT:
            return line.sku in self.scope_values
        if self.scope is CouponScope.CATEGORY:
            return line.category in self.scope_values
        return line.ladder_role in self.scope_values


@dataclass(frozen=True)
class UsableCoupon:
    coupon_id: str
    terms: CouponTerms


@dataclass(frozen=True)
class OrderLine:
    """A line as the catalog prices it for the buyer."""

    sku: str
    category: str | None
    ladder_role: str
    quantity: int
    list_price_fen: int
    tier_price_fen: int


@dataclass(frozen=True)
class PricedLine:
    line: OrderLine
    unit_price_fen: int  # the tier price, or the list price where a coupon asked for it
    coupon_fen: Mapping[str, int]  # coupon id → what it took off this line
    points_fen: int

    @property
    def gross_fen(self) -> int:
        return self.unit_price_fen * self.line.quantity

    @property
    def total_fen(self) -> int:
        return self.gross_fen - sum(self.coupon_fen.values()) - self.points_fen


def coupon_discount(terms: CouponTerms, eligible_fen: int) -> int:
    """What a coupon takes off `eligible_fen` (the amount left on the lines it covers)."""
    if eligible_fen < terms.min_spend_fen:
        raise Conflict(
            "coupon_min_spend", min_spend_fen=terms.min_spend_fen, eligible_fen=eligible_fen
        )
    if terms.kind is CouponKind.AMOUNT:
        return min(terms.amount_off_fen, eligible_fen)
    off = apply_rate(eligible_fen, terms.percent_off_bp)
    if terms.max_discount_fen is not None:
        off = min(off, terms.max_discount_fen)
    return off


def price_order(
    lines: Sequence[OrderLine],
    coupons: Sequence[UsableCoupon],
    *,
    points_fen: int = 0,
    points_cap_bp: int = 10_000,
) -> list[PricedLine]:
    """The lines with every coupon's and the points' part of the discount. Refuses a coupon
    that covers no line or whose minimum is not met, points beside a coupon that does not
    stack with them, and points beyond the cap."""
    if len(coupons) > MAX_COUPONS_PER_ORDER:
        raise InvalidInput("coupons_too_many", max=MAX_COUPONS_PER_ORDER)
    if points_fen < 0:
        raise InvalidInput("amount_invalid", field="points_fen")
    if points_fen > 0 and any(not c.terms.stack_with_points for c in coupons):
        raise Conflict("coupon_not_with_points")
    at_list = {
        index
        for c in coupons
        if not c.terms.stack_with_tier_price
        for index, line in enumerate(lines)
        if c.terms.covers(line)
    }
    priced = [
        PricedLine(
            line,
            line.list_price_fen if index in at_list else line.tier_price_fen,
            {},
            0,
        )
        for index, line in enumerate(lines)
    ]
    for coupon in coupons:
        covered = [i for i, p in enumerate(priced) if coupon.terms.covers(p.line)]
        if not covered:
            raise Conflict("coupon_not_applicable", coupon_id=coupon.coupon_id)
        left = [priced[i].total_fen for i in covered]
        off = coupon_discount(coupon.terms, sum(left))
        for i, part in zip(covered, split_proportionally(off, left), strict=True):
            priced[i] = replace(
                priced[i], coupon_fen={**priced[i].coupon_fen, coupon.coupon_id: part}
            )
    if points_fen:
        left = [p.total_fen for p in priced]
        cap = apply_rate(sum(left), points_cap_bp)
        if points_fen > cap:
            raise Conflict("points_over_cap", points_fen=points_fen, cap_fen=cap)
        for i, part in enumerate(split_proportionally(points_fen, left)):
            priced[i] = replace(priced[i], points_fen=part)
    return priced


def _int(
    fields: Mapping[str, Any], name: str, low: int, high: int, default: int | None
) -> int | None:
    value = fields.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput("coupon_field_invalid", field=name)
    return value


def validate_template(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A template's columns from a request's fields."""
    name = " ".join(str(fields.get("name") or "").split())
    if not 1 <= len(name) <= 60:
        raise InvalidInput("coupon_field_invalid", field="name")
    try:
        kind = CouponKind(str(fields.get("kind")))
        scope = CouponScope(str(fields.get("scope", "all")))
    except ValueError:
        raise InvalidInput("coupon_field_invalid", field="kind/scope") from None
    values: dict[str, Any] = {"name": name, "kind": kind.value, "scope": scope.value}
    if kind is CouponKind.AMOUNT:
        values["amount_off_fen"] = _int(fields, "amount_off_fen", 1, MAX_AMOUNT_FEN, None)
        if values["amount_off_fen"] is None or fields.get("percent_off_bp") is not None:
            raise InvalidInput("coupon_field_invalid", field="amount_off_fen")
        values["percent_off_bp"] = 0
        values["max_discount_fen"] = None
    else:
        values["percent_off_bp"] = _int(fields, "percent_off_bp", 1, 10_000, None)
        if values["percent_off_bp"] is None or fields.get("amount_off_fen") is not None:
            raise InvalidInput("coupon_field_invalid", field="percent_off_bp")
        values["amount_off_fen"] = 0
        values["max_discount_fen"] = _int(fields, "max_discount_fen", 1, MAX_AMOUNT_FEN, None)
    values["min_spend_fen"] = _int(fields, "min_spend_fen", 0, MAX_AMOUNT_FEN, 0)
    scope_values = fields.get("scope_values") or []
    if not isinstance(scope_values, list) or len(scope_values) > MAX_SCOPE_VALUES:
        raise InvalidInput("coupon_field_invalid", field="scope_values")
    clean = sorted({str(v).strip() for v in scope_values})
    if any(not 1 <= len(v) <= 64 for v in clean):
        raise InvalidInput("coupon_field_invalid", field="scope_values")
    if (scope is CouponScope.ALL) != (not clean):
        raise InvalidInput("coupon_scope_values_mismatch", scope=scope.value)
    if scope is CouponScope.LADDER_ROLE and not set(clean) <= {"bait", "core", "partner"}:
        raise InvalidInput("coupon_field_invalid", field="scope_values")
    values["scope_values"] = clean
    valid_from, valid_until = fields.get("valid_from"), fields.get("valid_until")
    for key, moment in (("valid_from", valid_from), ("valid_until", valid_until)):
        if moment is not None and (not isinstance(moment, datetime) or moment.tzinfo is None):
            raise InvalidInput("coupon_field_invalid", field=key)
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        raise InvalidInput("coupon_validity_invalid")
    values["valid_from"], values["valid_until"] = valid_from, valid_until
    values["valid_days"] = _int(fields, "valid_days", 1, 3_650, None)
    values["total_limit"] = _int(fields, "total_limit", 1, 100_000_000, None)
    values["per_member_limit"] = _int(fields, "per_member_limit", 1, 1_000, 1)
    for key, default in (
        ("stack_with_tier_price", True),
        ("stack_with_points", True),
        ("restore_on_refund", False),
    ):
        flag = fields.get(key, default)
        if not isinstance(flag, bool):
            raise InvalidInput("coupon_field_invalid", field=key)
        values[key] = flag
    code = fields.get("claim_code")
    if code is not None:
        code = str(code).strip()
        if not 4 <= len(code) <= 32 or not code.isalnum():
            raise InvalidInput("coupon_field_invalid", field="claim_code")
    values["claim_code"] = code
    return values


def validity(
    *,
    issued_at: datetime,
    valid_from: datetime | None,
    valid_until: datetime | None,
    valid_days: int | None,
) -> tuple[datetime, datetime | None]:
    """When a coupon issued at `issued_at` may be used: from the template's start (or issue),
    until the earlier of the template's end and `valid_days` after issue."""
    start = max(issued_at, valid_from) if valid_from is not None else issued_at
    ends = [valid_until] if valid_until is not None else []
    if valid_days is not None:
        ends.append(issued_at + timedelta(days=valid_days))
    return start, min(ends) if ends else None


def check_usable(
    *,
    coupon_id: str,
    owner_id: str,
    buyer_id: str,
    status: str,
    valid_from: datetime,
    valid_until: datetime | None,
    now: datetime,
) -> None:
    """Refuse a coupon that is not the buyer's, not available, or outside its validity."""
    if owner_id != buyer_id:
        raise Conflict("coupon_not_owned", coupon_id=coupon_id)
    if status != CouponStatus.AVAILABLE.value:
        raise Conflict("coupon_not_available", coupon_id=coupon_id, status=status)
    if now < valid_from or (valid_until is not None and now >= valid_until):
        raise Conflict("coupon_not_valid_now", coupon_id=coupon_id)
