"""Tier rules: member price in integer fen, criteria trees, privileges, the decision to move a
member up or down, and what a payment can change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shequn.errors import InvalidInput
from shequn.tiers.rules import (
    NEVER,
    Atom,
    Demotion,
    DemotionMode,
    FactKey,
    Group,
    Kind,
    PaymentFacts,
    Reason,
    Standing,
    TierSpec,
    atoms,
    best_reached,
    buffered,
    clean_service_tags,
    counts_direct_customers,
    criteria_json,
    decide,
    explain,
    fact_keys,
    is_met,
    needs,
    parse_criteria,
    parse_demotion,
    payment_may_upgrade,
    payment_may_upgrade_referrer,
    tier_price,
    with_one_more_direct_customer,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

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


@given(price=st.integers(0, 10**11), discount_bp=st.integers(0, 10_000))
def test_discounted_price_stays_between_zero_and_list_price(price: int, discount_bp: int) -> None:
    unit = tier_price(price, discount_bp=discount_bp, explicit_fen=None)
    assert 0 <= unit <= price
    # the buyer never gets more than the exact discount: unit ≥ price·(1 − bp/10 000)
    assert unit * 10_000 >= price * (10_000 - discount_bp)
    assert (unit - 1) * 10_000 < price * (10_000 - discount_bp)


# --- criteria trees: reading and writing ------------------------------------------------------

SPEND_365 = {"kind": "spend", "min_fen": 50_000, "window_days": 365}
PACKAGE = {"kind": "bought", "sku": "PKG-1", "window_days": None}
CHALLENGE = {"kind": "fact", "event_type": "ChallengeCompleted", "min_count": 1, "window_days": 90}


def test_a_tree_reads_back_as_written() -> None:
    tree = {
        "kind": "any_of",
        "of": [
            {"kind": "all_of", "of": [SPEND_365, CHALLENGE]},
            PACKAGE,
            {"kind": "single_order", "min_fen": 30_000, "window_days": None},
            {"kind": "direct_customers", "min_count": 5},
            {"kind": "team_size", "min_count": 30},
        ],
    }
    parsed = parse_criteria(tree)
    assert criteria_json(parsed) == tree
    assert [a.kind for a in atoms(parsed)] == [
        Kind.SPEND,
        Kind.FACT,
        Kind.BOUGHT,
        Kind.SINGLE_ORDER,
        Kind.DIRECT_CUSTOMERS,
        Kind.TEAM_SIZE,
    ]


def test_omitted_optional_fields_take_their_defaults() -> None:
    assert parse_criteria({"kind": "spend", "min_fen": 1}) == Atom(Kind.SPEND, 1, None)
    assert parse_criteria({"kind": "fact", "event_type": "EventAttended"}) == Atom(
        Kind.FACT, 1, None, "EventAttended"
    )


def _nested(depth: int) -> dict[str, Any]:
    tree: dict[str, Any] = {"kind": "spend", "min_fen": 1}
    for _ in range(depth):
        tree = {"kind": "all_of", "of": [tree]}
    return tree


@pytest.mark.parametrize(
    ("tree", "code", "field"),
    [
        ("spend", "tier_criterion_invalid", "criteria"),
        ({"kind": "bribe"}, "tier_criterion_invalid", "criteria.kind"),
        ({"min_fen": 1}, "tier_criterion_invalid", "criteria.kind"),
        ({"kind": "spend"}, "tier_criterion_invalid", "criteria.min_fen"),
        ({"kind": "spend", "min_fen": 0}, "tier_criterion_invalid", "criteria.min_fen"),
        ({"kind": "spend", "min_fen": True}, "tier_criterion_invalid", "criteria.min_fen"),
        ({"kind": "spend", "min_fen": 1.5}, "tier_criterion_invalid", "criteria.min_fen"),
        (
            {"kind": "spend", "min_fen": 1, "window_days": 0},
            "tier_criterion_invalid",
            "criteria.window_days",
        ),
        (
            {"kind": "spend", "min_fen": 1, "window_days": 3_651},
            "tier_criterion_invalid",
            "criteria.window_days",
        ),
        ({"kind": "spend", "min_fen": 1, "colour": 1}, "field_unknown", "criteria.colour"),
        (
            {"kind": "direct_customers", "min_count": 1, "window_days": 30},
            "field_unknown",
            "criteria.window_days",
        ),
        ({"kind": "bought", "sku": ""}, "tier_criterion_invalid", "criteria.sku"),
        ({"kind": "bought", "sku": " PKG"}, "tier_criterion_invalid", "criteria.sku"),
        ({"kind": "bought", "sku": "P" * 65}, "tier_criterion_invalid", "criteria.sku"),
        ({"kind": "fact", "event_type": "done"}, "tier_criterion_invalid", "criteria.event_type"),
        (
            {"kind": "fact", "event_type": "X", "min_count": 0},
            "tier_criterion_invalid",
            "criteria.min_count",
        ),
        ({"kind": "all_of", "of": []}, "tier_criterion_invalid", "criteria.of"),
        ({"kind": "any_of", "of": {"kind": "spend"}}, "tier_criterion_invalid", "criteria.of"),
        (
            {"kind": "any_of", "of": [SPEND_365, {"kind": "spend", "min_fen": -1}]},
            "tier_criterion_invalid",
            "criteria.of[1].min_fen",
        ),
        ({"kind": "any_of", "of": [SPEND_365] * 17}, "tier_criterion_invalid", "criteria.of"),
    ],
)
def test_bad_trees_are_refused_naming_the_field(tree: Any, code: str, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_criteria(tree)
    assert (refused.value.code, refused.value.params) == (code, {"field": field})


def test_a_tree_too_deep_or_too_large_is_refused() -> None:
    parse_criteria(_nested(4))
    with pytest.raises(InvalidInput) as deep:
        parse_criteria(_nested(5))
    assert deep.value.code == "tier_criteria_too_large"
    wide = {"kind": "any_of", "of": [{"kind": "any_of", "of": [SPEND_365] * 11}] * 3}
    with pytest.raises(InvalidInput) as large:
        parse_criteria(wide)  # 33 criteria
    assert (large.value.code, large.value.params) == (
        "tier_criteria_too_large",
        {"atoms": 32, "depth": 4},
    )


atom_trees = st.one_of(
    st.builds(
        lambda k, m, w: {"kind": k, "min_fen": m, "window_days": w},
        st.sampled_from(["spend", "single_order"]),
        st.integers(1, 10**9),
        st.none() | st.integers(1, 3_650),
    ),
    st.builds(
        lambda s, w: {"kind": "bought", "sku": s, "window_days": w},
        st.sampled_from(["A", "B", "PKG-1"]),
        st.none() | st.integers(1, 3_650),
    ),
    st.builds(
        lambda k, m: {"kind": k, "min_count": m},
        st.sampled_from(["direct_customers", "team_size"]),
        st.integers(1, 1_000),
    ),
    st.builds(
        lambda t, m, w: {"kind": "fact", "event_type": t, "min_count": m, "window_days": w},
        st.sampled_from(["ChallengeCompleted", "EventAttended"]),
        st.integers(1, 50),
        st.none() | st.integers(1, 3_650),
    ),
)
trees = st.recursive(
    atom_trees,
    lambda inner: st.builds(
        lambda k, items: {"kind": k, "of": items},
        st.sampled_from(["all_of", "any_of"]),
        st.lists(inner, min_size=1, max_size=3),
    ),
    max_leaves=8,
)


@given(tree=trees)
def test_every_valid_tree_reads_back_as_written(tree: dict[str, Any]) -> None:
    assert criteria_json(parse_criteria(tree)) == tree


# --- criteria trees: meeting them ------------------------------------------------------------

SPEND = FactKey(Kind.SPEND, 365)
BIGGEST = FactKey(Kind.SINGLE_ORDER)
PKG = FactKey(Kind.BOUGHT, None, "PKG-1")
DONE = FactKey(Kind.FACT, 90, "ChallengeCompleted")


def test_all_of_needs_every_criterion_and_any_of_one() -> None:
    both = parse_criteria({"kind": "all_of", "of": [SPEND_365, PACKAGE]})
    either = parse_criteria({"kind": "any_of", "of": [SPEND_365, PACKAGE]})
    assert [is_met(both, f) for f in ({SPEND: 50_000}, {PKG: 1}, {SPEND: 50_000, PKG: 1})] == [
        False,
        False,
        True,
    ]
    assert [is_met(either, f) for f in ({}, {SPEND: 49_999}, {PKG: 1}, {SPEND: 50_000})] == [
        False,
        False,
        True,
        True,
    ]


def test_each_threshold_is_met_at_its_value_and_a_missing_fact_is_zero() -> None:
    spend = parse_criteria(SPEND_365)
    assert (is_met(spend, {SPEND: 49_999}), is_met(spend, {SPEND: 50_000})) == (False, True)
    assert is_met(spend, {}) is False
    # another window is another fact
    assert is_met(spend, {FactKey(Kind.SPEND, 30): 10**9}) is False


@pytest.mark.parametrize(
    ("minimum", "buffer_bp", "expected"),
    [(50_000, 9_000, 45_000), (1, 9_000, 1), (5, 9_000, 5), (10, 9_000, 9), (7, 10_000, 7)],
)
def test_a_buffer_lowers_a_threshold_rounding_up(
    minimum: int, buffer_bp: int, expected: int
) -> None:
    assert buffered(minimum, buffer_bp) == expected


facts_maps = st.dictionaries(
    st.sampled_from(
        [
            FactKey(Kind.SPEND, None),
            FactKey(Kind.SPEND, 365),
            FactKey(Kind.SINGLE_ORDER, None),
            FactKey(Kind.BOUGHT, None, "A"),
            FactKey(Kind.BOUGHT, 30, "PKG-1"),
            FactKey(Kind.DIRECT_CUSTOMERS),
            FactKey(Kind.TEAM_SIZE),
            FactKey(Kind.FACT, None, "ChallengeCompleted"),
        ]
    ),
    st.integers(0, 2 * 10**9),
)


@given(tree=trees, facts=facts_maps, more=facts_maps, buffer_bp=st.integers(5_000, 10_000))
def test_more_facts_never_unmeet_a_tree_and_a_buffer_only_makes_it_easier(
    tree: dict[str, Any], facts: dict[FactKey, int], more: dict[FactKey, int], buffer_bp: int
) -> None:
    parsed = parse_criteria(tree)
    grown = {k: facts.get(k, 0) + more.get(k, 0) for k in set(facts) | set(more)}
    if is_met(parsed, facts):
        assert is_met(parsed, grown)
        assert is_met(parsed, facts, buffer_bp)
    explained = explain(parsed, facts, buffer_bp)
    assert explained["met"] is is_met(parsed, facts, buffer_bp)


def test_the_explanation_names_each_value_and_threshold() -> None:
    tree = parse_criteria({"kind": "all_of", "of": [SPEND_365, CHALLENGE]})
    assert explain(tree, {SPEND: 46_000, DONE: 2}, 9_000) == {
        "kind": "all_of",
        "met": True,
        "of": [
            {**SPEND_365, "value": 46_000, "threshold": 45_000, "met": True},
            {**CHALLENGE, "value": 2, "threshold": 1, "met": True},
        ],
    }


def test_fact_keys_of_the_tiers() -> None:
    tree = parse_criteria({"kind": "any_of", "of": [SPEND_365, PACKAGE, SPEND_365]})
    assert fact_keys([tree, None]) == {SPEND, PKG}


def test_needs_tells_a_tree_that_cannot_be_met_without_an_atom() -> None:
    package = parse_criteria(PACKAGE)
    either = parse_criteria({"kind": "any_of", "of": [SPEND_365, PACKAGE]})
    both = parse_criteria({"kind": "all_of", "of": [SPEND_365, PACKAGE]})

    def is_package(atom: Atom) -> bool:
        return atom.kind is Kind.BOUGHT

    assert [needs(t, is_package) for t in (package, either, both)] == [True, False, True]


# --- tiers and their privileges --------------------------------------------------------------


def test_demotion_settings() -> None:
    windowed = parse_criteria(SPEND_365)
    assert parse_demotion(None, windowed) is NEVER
    assert parse_demotion({"mode": "never"}, None) == NEVER
    assert parse_demotion({"mode": "windowed", "hold_days": 90}, windowed) == Demotion(
        DemotionMode.WINDOWED, 9_000, 90
    )
    for bad, field in (
        ({"mode": "sometimes"}, "demotion.mode"),
        ({"mode": "windowed", "buffer_bp": 4_999}, "demotion.buffer_bp"),
        ({"mode": "windowed", "buffer_bp": 10_001}, "demotion.buffer_bp"),
        ({"mode": "windowed", "hold_days": -1}, "demotion.hold_days"),
    ):
        with pytest.raises(InvalidInput) as refused:
            parse_demotion(bad, windowed)
        assert (refused.value.code, refused.value.params) == (
            "tier_demotion_invalid",
            {"field": field},
        )
    for lasting in (
        None,
        parse_criteria(PACKAGE),
        parse_criteria({"kind": "single_order", "min_fen": 1}),
    ):
        with pytest.raises(InvalidInput) as refused:
            parse_demotion({"mode": "windowed"}, lasting)
        assert refused.value.code == "tier_demotion_needs_window"


def test_service_tags_are_trimmed_and_kept_once() -> None:
    assert clean_service_tags([" 专属  客服 ", "优先发货", "专属 客服"]) == (
        "专属 客服",
        "优先发货",
    )
    for bad in (["x" * 21], [""], [1], ["t"] * 11, "tags"):
        with pytest.raises(InvalidInput) as refused:
            clean_service_tags(bad)
        assert refused.value.code == "tier_service_tags_invalid"


# --- deciding a member's tier ----------------------------------------------------------------

MEMBER = TierSpec(id="t-member", name="会员", rank=0)  # assigned by hand only
VIP = TierSpec(
    "t-vip",
    "VIP",
    1,
    discount_bp=500,
    criteria=parse_criteria(SPEND_365),
    demotion=Demotion(DemotionMode.WINDOWED, 9_000, 30),
)
BIG = TierSpec(
    "t-big", "大单", 2, criteria=parse_criteria({"kind": "single_order", "min_fen": 100_000})
)
PARTNER = TierSpec(
    "t-partner",
    "合伙人",
    3,
    discount_bp=2_000,
    may_distribute=True,
    criteria=parse_criteria({"kind": "all_of", "of": [PACKAGE, CHALLENGE]}),
)
LADDER = [MEMBER, VIP, BIG, PARTNER]


def standing(tier: str | None = None, held_days: int | None = None, **facts: int) -> Standing:
    keys = {"spend": SPEND, "biggest": BIGGEST, "pkg": PKG, "done": DONE}
    held = None if held_days is None else NOW - timedelta(days=held_days)
    return Standing("m1", tier, {keys[k]: v for k, v in facts.items()}, held)


@pytest.mark.parametrize(
    ("given_standing", "expected"),
    [
        (standing(), None),
        (standing(spend=49_999), None),
        (standing(spend=50_000), ("t-vip", Reason.UPGRADE)),
        (standing("t-member", spend=50_000), ("t-vip", Reason.UPGRADE)),
        (standing("t-vip", held_days=1, spend=50_000), None),  # already there
        (standing(spend=60_000, biggest=100_000), ("t-big", Reason.UPGRADE)),  # the highest
        (standing(pkg=1), None),  # the partner tree wants the challenge too
        (standing(pkg=1, done=1), ("t-partner", Reason.UPGRADE)),  # skipping tiers is fine
        (standing("t-big", pkg=1, done=1), ("t-partner", Reason.UPGRADE)),
        (standing("t-partner", spend=10**9, biggest=10**9), None),  # never down by upgrades
    ],
)
def test_a_member_moves_up_to_the_highest_tier_reached(
    given_standing: Standing, expected: tuple[str, Reason] | None
) -> None:
    change = decide(LADDER, given_standing, now=NOW)
    assert (None if change is None else (change.to_tier, change.reason)) == expected


def test_tier_order_in_the_list_does_not_matter() -> None:
    shuffled = [PARTNER, MEMBER, BIG, VIP]
    found = best_reached(shuffled, {SPEND: 50_000, BIGGEST: 100_000}, None)
    assert found == BIG


def test_an_upgrade_records_the_tree_of_the_tier_reached() -> None:
    change = decide(LADDER, standing(spend=50_001), now=NOW)
    assert change is not None
    assert change.cause == {
        "tier_id": "t-vip",
        "criteria": {**SPEND_365, "value": 50_001, "threshold": 50_000, "met": True},
    }


def test_a_windowed_tier_is_kept_within_its_buffer_and_lost_below_it() -> None:
    # held 31 days, the hold is 30: re-checked with 90 % of 50 000
    assert decide(LADDER, standing("t-vip", held_days=31, spend=45_000), now=NOW) is None
    change = decide(LADDER, standing("t-vip", held_days=31, spend=44_999), now=NOW)
    assert change is not None
    assert (change.from_tier, change.to_tier, change.reason) == ("t-vip", None, Reason.DEMOTION)
    assert change.cause["criteria"]["threshold"] == 45_000
    assert change.cause["buffer_bp"] == 9_000


def test_a_tier_is_kept_through_its_hold_period_whatever_the_facts() -> None:
    assert decide(LADDER, standing("t-vip", held_days=29), now=NOW) is None
    assert decide(LADDER, standing("t-vip", held_days=30), now=NOW) is not None


def test_a_demotion_lands_on_the_highest_tier_below_still_held() -> None:
    top = TierSpec(
        "t-top",
        "总代",
        5,
        criteria=parse_criteria({"kind": "spend", "min_fen": 200_000, "window_days": 365}),
        demotion=Demotion(DemotionMode.WINDOWED, 9_000, 0),
    )
    ladder = [*LADDER, top]
    # 46 000 in the window: VIP is kept within its buffer, BIG by the big order, PARTNER not
    change = decide(ladder, standing("t-top", spend=46_000, biggest=100_000), now=NOW)
    assert change is not None
    assert (change.to_tier, change.reason) == ("t-big", Reason.DEMOTION)
    # a member never demoted by a payment
    assert decide(ladder, standing("t-top", spend=1), now=NOW, allow_demotion=False) is None


def test_tiers_that_never_demote_and_tiers_by_hand_are_never_lost() -> None:
    assert decide(LADDER, standing("t-big", held_days=400), now=NOW) is None
    assert decide(LADDER, standing("t-member", held_days=400), now=NOW) is None


spend_ladders = st.lists(st.integers(1, 10**6), min_size=1, max_size=5, unique=True).map(
    lambda thresholds: [
        TierSpec(
            f"t{rank}",
            f"t{rank}",
            rank,
            criteria=Atom(Kind.SPEND, threshold, 365),
            demotion=Demotion(DemotionMode.WINDOWED, 9_000, 0),
        )
        for rank, threshold in enumerate(sorted(thresholds))
    ]
)


@given(tiers=spend_ladders, spend=st.integers(0, 2 * 10**6), current=st.integers(-1, 5))
def test_a_decision_once_made_is_stable(tiers: list[TierSpec], spend: int, current: int) -> None:
    tier_id = None if current < 0 or current >= len(tiers) else tiers[current].id
    now_facts = {SPEND: spend}
    change = decide(tiers, Standing("m", tier_id, now_facts, NOW - timedelta(days=1)), now=NOW)
    if change is None:
        return
    if change.reason is Reason.UPGRADE:
        ranks = {t.id: t.rank for t in tiers}
        assert ranks[change.to_tier or ""] > (ranks[tier_id] if tier_id else -1)
    after = Standing("m", change.to_tier, now_facts, NOW)
    assert decide(tiers, after, now=NOW) is None


# --- what a payment can change ----------------------------------------------------------------


def payment(
    total: int = 0, biggest: int = 0, order: int = 0, skus: tuple[str, ...] = (), **extra: Any
) -> PaymentFacts:
    return PaymentFacts(
        paid_total_fen=total,
        max_order_fen=biggest,
        order_fen=order,
        skus=frozenset(skus),
        first_paying=extra.get("first", False),
        team_size=extra.get("team", 0),
    )


def test_a_payment_below_every_threshold_needs_no_read() -> None:
    assert (
        payment_may_upgrade(LADDER, None, payment(total=49_999, biggest=99_999, order=9_999))
        is False
    )
    assert payment_may_upgrade(LADDER, None, payment(total=50_000, order=100)) is True
    assert payment_may_upgrade(LADDER, None, payment(total=1, biggest=10**6, order=100_000)) is True
    # the package moves the partner tree; the challenge is not the payment's to know
    assert payment_may_upgrade(LADDER, None, payment(total=1, skus=("PKG-1",))) is True
    # nothing above the buyer's tier can be moved
    assert payment_may_upgrade(LADDER, "t-partner", payment(total=10**9, skus=("PKG-1",))) is False


def test_a_team_large_enough_has_its_buyer_evaluated_when_it_pays() -> None:
    team = [TierSpec("t-lead", "团长", 1, criteria=Atom(Kind.TEAM_SIZE, 30))]
    assert payment_may_upgrade(team, None, payment(team=29)) is False
    assert payment_may_upgrade(team, None, payment(team=30)) is True


def test_a_first_paying_customer_may_lift_its_referrer() -> None:
    direct = [TierSpec("t-lead", "团长", 1, criteria=Atom(Kind.DIRECT_CUSTOMERS, 3))]
    assert counts_direct_customers(direct)
    assert not counts_direct_customers(LADDER)
    assert payment_may_upgrade_referrer(direct, payment(first=True)) is True
    assert payment_may_upgrade_referrer(direct, payment(first=False)) is False
    assert payment_may_upgrade_referrer(LADDER, payment(first=True)) is False
    counted = with_one_more_direct_customer({FactKey(Kind.DIRECT_CUSTOMERS): 2})
    assert counted == {FactKey(Kind.DIRECT_CUSTOMERS): 3}


payment_trees = st.recursive(
    st.one_of(
        st.builds(lambda m: Atom(Kind.SPEND, m, 365), st.integers(1, 3_000)),
        st.builds(lambda m: Atom(Kind.SPEND, m, None), st.integers(1, 3_000)),
        st.builds(lambda m: Atom(Kind.SINGLE_ORDER, m, None), st.integers(1, 3_000)),
        st.builds(lambda s: Atom(Kind.BOUGHT, 1, None, s), st.sampled_from(["A", "B"])),
        st.just(Atom(Kind.FACT, 1, None, "ChallengeCompleted")),
    ),
    lambda inner: st.builds(
        Group,
        st.sampled_from([Kind.ALL_OF, Kind.ANY_OF]),
        st.lists(inner, min_size=1, max_size=3).map(tuple),
    ),
    max_leaves=6,
)


@settings(max_examples=300)
@given(
    tree_list=st.lists(payment_trees, min_size=1, max_size=3),
    windowed=st.integers(0, 2_000),
    older=st.integers(0, 2_000),
    biggest=st.integers(0, 2_000),
    bought=st.sets(st.sampled_from(["A", "B"])),
    done=st.booleans(),
    amount=st.integers(0, 2_000),
    skus=st.sets(st.sampled_from(["A", "B", "C"]), min_size=1),
)
def test_no_payment_the_cheap_test_lets_pass_could_have_moved_its_buyer(
    tree_list: list[Any],
    windowed: int,
    older: int,
    biggest: int,
    bought: set[str],
    done: bool,
    amount: int,
    skus: set[str],
) -> None:
    tiers = [TierSpec(f"t{i}", f"t{i}", i + 1, criteria=t) for i, t in enumerate(tree_list)]
    before = {
        FactKey(Kind.SPEND, 365): windowed,
        FactKey(Kind.SPEND, None): windowed + older,
        FactKey(Kind.SINGLE_ORDER, None): biggest,
        FactKey(Kind.FACT, None, "ChallengeCompleted"): int(done),
        **{FactKey(Kind.BOUGHT, None, s): 1 for s in bought},
    }
    after = {
        **before,
        FactKey(Kind.SPEND, 365): windowed + amount,
        FactKey(Kind.SPEND, None): windowed + older + amount,
        FactKey(Kind.SINGLE_ORDER, None): max(biggest, amount),
        **{FactKey(Kind.BOUGHT, None, s): 1 for s in skus},
    }
    was = best_reached(tiers, before, None)
    now = best_reached(tiers, after, None)
    moved = now is not None and (was is None or now.rank > was.rank)
    facts = payment(
        total=windowed + older + amount,
        biggest=max(biggest, amount),
        order=amount,
        skus=tuple(skus),
    )
    current = None if was is None else was.id
    if moved:
        assert payment_may_upgrade(tiers, current, facts)
