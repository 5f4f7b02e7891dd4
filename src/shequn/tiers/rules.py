"""Tier rules (pure): member price and upgrade on purchase facts."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from shequn.money import apply_rate


@dataclass(frozen=True)
class TierSpec:
    id: str
    name: str
    rank: int
    discount_bp: int = 0
    may_distribute: bool = False
    upgrade_spend_fen: int | None = None
    upgrade_single_order_fen: int | None = None
    upgrade_product_sku: str | None = None
    upgrade_team_headcount: int | None = None

    @property
    def has_criteria(self) -> bool:
        return any(
            c is not None
            for c in (
                self.upgrade_spend_fen,
                self.upgrade_single_order_fen,
                self.upgrade_product_sku,
                self.upgrade_team_headcount,
            )
        )


@dataclass(frozen=True)
class UpgradeFacts:
    paid_total_fen: int
    max_order_fen: int
    bought_skus: Collection[str]
    team_count: int


def tier_price(price_fen: int, *, discount_bp: int, explicit_fen: int | None) -> int:
    """An explicit member price wins; otherwise the tier discount, rounded down for the buyer."""
    if explicit_fen is not None:
        return explicit_fen
    return price_fen - apply_rate(price_fen, discount_bp)


def qualifies(tier: TierSpec, facts: UpgradeFacts) -> bool:
    """Any one criterion met is enough; a tier with none is assigned by hand only."""
    return (
        (tier.upgrade_spend_fen is not None and facts.paid_total_fen >= tier.upgrade_spend_fen)
        or (
            tier.upgrade_single_order_fen is not None
            and facts.max_order_fen >= tier.upgrade_single_order_fen
        )
        or (tier.upgrade_product_sku is not None and tier.upgrade_product_sku in facts.bought_skus)
        or (
            tier.upgrade_team_headcount is not None
            and facts.team_count >= tier.upgrade_team_headcount
        )
    )


def best_tier(
    tiers: Sequence[TierSpec], facts: UpgradeFacts, current_rank: int | None
) -> TierSpec | None:
    """The highest tier above the current one whose criteria are met; upgrades only."""
    reached = [
        t
        for t in tiers
        if t.has_criteria
        and qualifies(t, facts)
        and (current_rank is None or t.rank > current_rank)
    ]
    return max(reached, key=lambda t: t.rank) if reached else None
