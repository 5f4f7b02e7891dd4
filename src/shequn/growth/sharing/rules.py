"""Sharing programs and their rewards (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from shequn.errors import InvalidInput
from shequn.money import MAX_AMOUNT_FEN, apply_rate, scale_down

MAX_TARGET_SKUS = 100


class RewardKind(StrEnum):
    CASHBACK = "cashback"  # bp of what the referred order paid
    FIXED = "fixed"  # fen
    COUPON = "coupon"
    POINTS = "points"
    TIER_UPGRADE = "tier_upgrade"


class RewardStatus(StrEnum):
    GRANTED = "granted"
    HELD = "held"  # waits for an operator (a fraud hold)
    CAPPED = "capped"  # over the program's cap: not granted
    CANCELLED = "cancelled"  # a hold an operator cancelled
    REVERSED = "reversed"  # taken back in full after a refund


MONEY_KINDS = frozenset({RewardKind.CASHBACK, RewardKind.FIXED})


def _int(fields: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput("program_field_invalid", field=name)
    return value


def validate_program(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A program's columns from a request's fields."""
    name = " ".join(str(fields.get("name") or "").split())
    if not 1 <= len(name) <= 60:
        raise InvalidInput("program_field_invalid", field="name")
    try:
        kind = RewardKind(str(fields.get("sharer_reward")))
    except ValueError:
        raise InvalidInput("program_field_invalid", field="sharer_reward") from None
    values: dict[str, Any] = {"name": name, "sharer_reward": kind.value}
    needs = {
        RewardKind.CASHBACK: "cashback_bp",
        RewardKind.FIXED: "amount_fen",
        RewardKind.COUPON: "coupon_template_id",
        RewardKind.POINTS: "points",
        RewardKind.TIER_UPGRADE: "tier_id",
    }
    for other in needs.values():
        if other != needs[kind] and fields.get(other) is not None:
            raise InvalidInput("program_field_unexpected", field=other, reward=kind.value)
    values["cashback_bp"] = _int(fields, "cashback_bp", 1, 10_000)
    values["amount_fen"] = _int(fields, "amount_fen", 1, MAX_AMOUNT_FEN)
    values["points"] = _int(fields, "points", 1, 10_000_000)
    for key in ("coupon_template_id", "tier_id", "new_customer_coupon_template_id"):
        value = fields.get(key)
        if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= 40):
            raise InvalidInput("program_field_invalid", field=key)
        values[key] = value
    if fields.get(needs[kind]) is None:
        raise InvalidInput("program_field_required", field=needs[kind], reward=kind.value)
    values["cap_per_day"] = _int(fields, "cap_per_day", 1, 100_000)
    values["cap_per_month"] = _int(fields, "cap_per_month", 1, 1_000_000)
    first = fields.get("first_order_only", True)
    if not isinstance(first, bool):
        raise InvalidInput("program_field_invalid", field="first_order_only")
    values["first_order_only"] = first
    skus = fields.get("target_skus") or []
    if not isinstance(skus, list) or len(skus) > MAX_TARGET_SKUS:
        raise InvalidInput("program_field_invalid", field="target_skus")
    values["target_skus"] = sorted({str(s) for s in skus})
    starts, ends = fields.get("starts_at"), fields.get("ends_at")
    for key, moment in (("starts_at", starts), ("ends_at", ends)):
        if moment is not None and (not isinstance(moment, datetime) or moment.tzinfo is None):
            raise InvalidInput("program_field_invalid", field=key)
    if starts is not None and ends is not None and ends <= starts:
        raise InvalidInput("program_window_invalid")
    values["starts_at"], values["ends_at"] = starts, ends
    return values


def runs_at(starts_at: datetime | None, ends_at: datetime | None, at: datetime) -> bool:
    return (starts_at is None or starts_at <= at) and (ends_at is None or at < ends_at)


def money_reward(
    kind: RewardKind, *, paid_fen: int, cashback_bp: int | None, amount_fen: int | None
) -> int:
    """What a money reward pays for an order that paid `paid_fen` (net of refunds)."""
    if kind is RewardKind.CASHBACK:
        return apply_rate(paid_fen, cashback_bp or 0)
    if kind is RewardKind.FIXED:
        return amount_fen or 0
    return 0


def within_caps(
    *, today: int, this_month: int, cap_per_day: int | None, cap_per_month: int | None
) -> bool:
    """Whether one more reward stays within the program's caps, given the sharer's rewards of
    the program earlier the same (local) day and month."""
    return (cap_per_day is None or today < cap_per_day) and (
        cap_per_month is None or this_month < cap_per_month
    )


def local_month_start(at: datetime, time_zone: str) -> datetime:
    """The start (in UTC) of the month `at` falls in, in the tenant's time zone."""
    local = at.astimezone(ZoneInfo(time_zone))
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start.astimezone(UTC)


def still_due(amount: int, *, base_fen: int, remaining_fen: int) -> int:
    """What a reward granted on `base_fen` is worth once only `remaining_fen` of its order is
    left unrefunded (in proportion, rounded down)."""
    if base_fen <= 0:
        return 0
    return scale_down(amount, max(0, min(remaining_fen, base_fen)), base_fen)
