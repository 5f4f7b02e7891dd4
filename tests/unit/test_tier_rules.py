"""Tier rules: member price in integer fen and upgrades on purchase facts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shequn.tiers.rules import TierSpec, UpgradeFacts, best_tier, qualifies, tier_price

# --- member price ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "discount_bp", "expected"),
    [
        (10_000, 0, 10_000),
        (10_000, 1_000, 9_000),
        (999, 1_000, 900),  # discount 99.9 fen is floored to 99: the brand keeps the fraction
        (1, 5_000, 1),  # half a fen of discount is no discount
        (3, 3_333, 3),  # 0.9999 fen of discount → 0
        (19_990, 1_500, 16_992),  # 2 998.5 → 2 998
        (12_345, 9_000, 1_235),  # 11 110.5 → 11 110
        (0, 9_000, 0),
        (10_000, 10_000, 0),
    ],
)
def test_discount_is_floored_in_integer_fen(price: int, discount_bp: int, expected: int) -> None:
    assert tier_price(price, discount_bp=discount_bp, explicit_fen=None) == expected


def test_an_explicit_member_price_wins_over_the_discount() -> None:
    assert tier_price(10_000, discount_bp=1_000, explicit_fen=7_500) == 7_500
    assert tier_price(10_000, discount_bp=0, explicit_fen=0) == 0


@given(
    price=st.integers(0, 10**11),
    discount_bp=st.integers(0, 10_000),
)
def test_discounted_price_stays_between_zero_and_list_price(price: int, discount_bp: int) -> None:
    unit = tier_price(price, discount_bp=discount_bp, explicit_fen=None)
    assert isinstance(unit, int)
    assert 0 <= unit <= price
    # the buyer never gets more than the exact discount: unit ≥ price·(1 − bp/10 000)
    assert unit * 10_000 >= price * (10_000 - discount_bp)
    assert (unit - 1) * 10_000 < price * (10_000 - discount_bp)


@given(price=st.integers(0, 10**9), low=st.integers(0, 10_000), more=st.integers(0, 10_000))
def test_a_bigger_discount_never_costs_more(price: int, low: int, more: int) -> None:
    high = min(10_000, low + more)
    assert tier_price(price, discount_bp=high, explicit_fen=None) <= tier_price(
        price, discount_bp=low, explicit_fen=None
    )


# --- upgrades --------------------------------------------------------------------------------

MEMBER = TierSpec(id="t-member", name="会员", rank=0)  # assigned by hand only
VIP = TierSpec(id="t-vip", name="VIP", rank=1, discount_bp=500, upgrade_spend_fen=50_000)
BIG = TierSpec(id="t-big", name="大单", rank=2, upgrade_single_order_fen=100_000)
PARTNER = TierSpec(
    id="t-partner",
    name="合伙人",
    rank=3,
    discount_bp=2_000,
    may_distribute=True,
    upgrade_product_sku="PARTNER-PKG",
)
LADDER = [MEMBER, VIP, BIG, PARTNER]


def facts(
    spend: int = 0, biggest: int = 0, skus: tuple[str, ...] = (), team: int = 0
) -> UpgradeFacts:
    return UpgradeFacts(
        paid_total_fen=spend, max_order_fen=biggest, bought_skus=set(skus), team_count=team
    )


def test_has_criteria() -> None:
    assert [t.has_criteria for t in LADDER] == [False, True, True, True]
    assert TierSpec(id="x", name="x", rank=9, upgrade_team_headcount=5).has_criteria is True


@pytest.mark.parametrize(
    ("tier", "given_facts", "expected"),
    [
        (VIP, facts(spend=49_999), False),
        (VIP, facts(spend=50_000), True),
        (BIG, facts(spend=10**9, biggest=99_999), False),
        (BIG, facts(biggest=100_000), True),
        (PARTNER, facts(skus=("CORE-1",)), False),
        (PARTNER, facts(skus=("CORE-1", "PARTNER-PKG")), True),
        (MEMBER, facts(spend=10**9, biggest=10**9), False),
    ],
)
def test_each_criterion_on_its_threshold(
    tier: TierSpec, given_facts: UpgradeFacts, expected: bool
) -> None:
    assert qualifies(tier, given_facts) is expected


def test_any_one_criterion_suffices() -> None:
    combo = TierSpec(id="c", name="c", rank=5, upgrade_spend_fen=10_000, upgrade_product_sku="P")
    assert qualifies(combo, facts(spend=10_000)) is True
    assert qualifies(combo, facts(skus=("P",))) is True
    assert qualifies(combo, facts(spend=9_999, skus=("Q",))) is False


def test_team_headcount_criterion() -> None:
    tier = TierSpec(id="h", name="h", rank=4, upgrade_team_headcount=10)
    assert (qualifies(tier, facts(team=9)), qualifies(tier, facts(team=10))) == (False, True)


@pytest.mark.parametrize(
    ("given_facts", "current_rank", "expected"),
    [
        (facts(), None, None),
        (facts(spend=49_999), None, None),
        (facts(spend=50_000), None, VIP),
        (facts(spend=50_000), 0, VIP),
        (facts(spend=50_000), 1, None),  # already there
        (facts(spend=60_000, biggest=100_000), None, BIG),  # the highest reached wins
        (facts(skus=("PARTNER-PKG",)), None, PARTNER),  # skipping tiers is fine
        (facts(skus=("PARTNER-PKG",)), 1, PARTNER),
        (facts(spend=50_000), 3, None),  # never down
        (facts(spend=10**9, biggest=10**9), 2, None),
    ],
)
def test_best_tier_is_the_highest_reached_above_the_current(
    given_facts: UpgradeFacts, current_rank: int | None, expected: TierSpec | None
) -> None:
    assert best_tier(LADDER, given_facts, current_rank) == expected


def test_tier_order_in_the_list_does_not_matter() -> None:
    shuffled = [PARTNER, MEMBER, BIG, VIP]
    assert best_tier(shuffled, facts(spend=50_000, biggest=100_000), None) == BIG


def test_a_tier_without_criteria_is_never_reached_automatically() -> None:
    assert best_tier([MEMBER], facts(spend=10**12, biggest=10**12), None) is None


spend_tiers = st.lists(st.integers(1, 10**6), min_size=1, max_size=6, unique=True).map(
    lambda thresholds: [
        TierSpec(id=f"t{rank}", name=f"t{rank}", rank=rank, upgrade_spend_fen=threshold)
        for rank, threshold in enumerate(sorted(thresholds))
    ]
)


@given(tiers=spend_tiers, spend=st.integers(0, 2 * 10**6), more=st.integers(0, 10**6))
def test_upgrades_are_monotone_in_spend(tiers: list[TierSpec], spend: int, more: int) -> None:
    def rank_for(amount: int) -> int:
        found = best_tier(tiers, facts(spend=amount), None)
        return -1 if found is None else found.rank

    before, after = rank_for(spend), rank_for(spend + more)
    assert after >= before
    # the tier reached is exactly the last threshold not above the spend
    assert (
        before
        == sum(1 for t in tiers if t.upgrade_spend_fen is not None and t.upgrade_spend_fen <= spend)
        - 1
    )


@given(tiers=spend_tiers, spend=st.integers(0, 2 * 10**6), current=st.integers(-1, 6))
def test_best_tier_is_always_above_the_current_rank(
    tiers: list[TierSpec], spend: int, current: int
) -> None:
    found = best_tier(tiers, facts(spend=spend), None if current < 0 else current)
    if found is not None:
        assert current < 0 or found.rank > current
        assert qualifies(found, facts(spend=spend))
