"""Points arithmetic (pure): earning, spending oldest first, restoring and taking back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shequn.errors import Conflict, InvalidInput
from shequn.money import BP_DENOMINATOR

ONE_TIMES_BP = 10_000  # a points multiplier of 1×


@dataclass(frozen=True)
class Lot:
    id: str
    remaining: int
    earned_at: datetime
    expires_at: datetime


def earned_points(paid_fen: int, *, earn_bp: int, multiplier_bp: int) -> int:
    """Points for `paid_fen` spent: `earn_bp` points per fen (in bp) times the tier's
    multiplier (in bp), rounded down."""
    if paid_fen < 0 or earn_bp < 0 or multiplier_bp < 0:
        raise ValueError("points are earned on non-negative amounts and rates")
    return paid_fen * earn_bp * multiplier_bp // (BP_DENOMINATOR * BP_DENOMINATOR)


def points_for_fen(points_fen: int, fen_per_point: int) -> int:
    """How many points pay a discount of `points_fen` (which must be whole points)."""
    if points_fen < 0 or points_fen % fen_per_point:
        raise InvalidInput("points_fen_invalid", fen_per_point=fen_per_point)
    return points_fen // fen_per_point


def spendable(lots: Sequence[Lot], now: datetime) -> list[Lot]:
    """The lots that may be spent now, oldest first."""
    return sorted(
        (lot for lot in lots if lot.remaining > 0 and lot.expires_at > now),
        key=lambda lot: (lot.earned_at, lot.id),
    )


def allocate_spend(lots: Sequence[Lot], points: int, now: datetime) -> list[tuple[str, int]]:
    """Take `points` from the lots, oldest first: [(lot id, points taken)]. Refuses more than
    the spendable balance."""
    if points <= 0:
        raise InvalidInput("points_invalid")
    usable = spendable(lots, now)
    balance = sum(lot.remaining for lot in usable)
    if points > balance:
        raise Conflict("insufficient_points", points=points, balance=balance)
    taken: list[tuple[str, int]] = []
    left = points
    for lot in usable:
        if left == 0:
            break
        part = min(lot.remaining, left)
        taken.append((lot.id, part))
        left -= part
    return taken


def take_back(
    lots: Sequence[Lot], points: int, *, first: str | None = None
) -> list[tuple[str, int]]:
    """Take back up to `points` (a reward or a purchase's points reversed): from the lot
    `first` first, then from the others oldest first, never below zero. Expired lots hold
    nothing any more."""
    ordered = sorted(lots, key=lambda lot: (lot.id != first, lot.earned_at, lot.id))
    taken: list[tuple[str, int]] = []
    left = points
    for lot in ordered:
        if left <= 0:
            break
        part = min(lot.remaining, left)
        if part > 0:
            taken.append((lot.id, part))
            left -= part
    return taken


def restore_target(spent: int, *, refunded_fen: int, paid_fen: int, cancelled: bool) -> int:
    """How many of the points an order spent are given back once `refunded_fen` of its
    `paid_fen` was refunded (all of them if it was cancelled unpaid or refunded in full)."""
    if cancelled or paid_fen <= 0 or refunded_fen >= paid_fen:
        return spent
    return spent * refunded_fen // paid_fen
