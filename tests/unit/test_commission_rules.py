"""Commission computation: levels, differential (级差), peer bonus (平级奖), scopes, the cap."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shequn.distribution.rules import (
    AwardKind,
    ChainMember,
    LevelRule,
    PlanMode,
    PlanSpec,
    SaleLine,
    ScopeKind,
    compute_awards,
    max_earning_level,
    nominal_total_bp,
    scaled_amount,
    validate_plan,
)
from shequn.errors import InvalidInput
from shequn.money import apply_rate

RANKS = {"member": 0, "vip": 1, "partner": 2}


def who(member_id: str, tier: str | None = None) -> ChainMember:
    return ChainMember(member_id, tier, RANKS[tier] if tier else None)


def line(
    base: int = 10_000,
    sku: str = "CORE",
    category: str | None = "skin",
    role: str = "core",
    qty: int = 1,
) -> SaleLine:
    return SaleLine("l1", sku, category, role, qty, base)


def levels(*rates: int, peer: int = 0, **extra: object) -> PlanSpec:
    rules = tuple(LevelRule(level=i + 1, rate_bp=r) for i, r in enumerate(rates))
    return PlanSpec(mode=PlanMode.LEVELS, depth=len(rates), rules=rules, peer_bonus_bp=peer)


def amounts(awards: list) -> list[tuple[str, int, str, int]]:  # type: ignore[type-arg]
    return [(a.beneficiary_id, a.level, a.kind.value, a.amount_fen) for a in awards]


def test_levels_pays_each_level_its_rate_floored() -> None:
    awards = compute_awards(
        levels(1_000, 500),
        buyer=who("b"),
        uplines=[who("p"), who("g")],
        lines=[line(9_999)],
        cap_bp=3_000,
    )
    assert amounts(awards) == [("p", 1, "level", 999), ("g", 2, "level", 499)]


def test_chain_shorter_than_depth_pays_who_is_there() -> None:
    awards = compute_awards(
        levels(1_000, 500), buyer=who("b"), uplines=[who("p")], lines=[line()], cap_bp=3_000
    )
    assert amounts(awards) == [("p", 1, "level", 1_000)]


def test_uplines_beyond_depth_earn_nothing() -> None:
    awards = compute_awards(
        levels(1_000, 500),
        buyer=who("b"),
        uplines=[who("p"), who("g"), who("x")],
        lines=[line()],
        cap_bp=3_000,
    )
    assert [a.beneficiary_id for a in awards] == ["p", "g"]


def test_tier_restriction_per_level() -> None:
    spec = PlanSpec(
        mode=PlanMode.LEVELS,
        depth=2,
        rules=(LevelRule(1, 1_000), LevelRule(2, 500, tier_ids=frozenset({"partner"}))),
    )
    awards = compute_awards(
        spec, buyer=who("b"), uplines=[who("p"), who("g", "vip")], lines=[line()], cap_bp=3_000
    )
    assert amounts(awards) == [("p", 1, "level", 1_000)]


def test_most_specific_scope_wins() -> None:
    spec = PlanSpec(
        mode=PlanMode.LEVELS,
        depth=1,
        rules=(
            LevelRule(1, 1_000),
            LevelRule(1, 800, scope_kind=ScopeKind.LADDER_ROLE, scope_value="bait"),
            LevelRule(1, 600, scope_kind=ScopeKind.CATEGORY, scope_value="tea"),
            LevelRule(1, 300, scope_kind=ScopeKind.PRODUCT, scope_value="TEA-1"),
        ),
    )

    def rate_for(sale: SaleLine) -> int:
        (award,) = compute_awards(
            spec, buyer=who("b"), uplines=[who("p")], lines=[sale], cap_bp=3_000
        )
        return award.rate_bp

    assert rate_for(line(sku="TEA-1", category="tea", role="bait")) == 300
    assert rate_for(line(sku="TEA-2", category="tea", role="bait")) == 600
    assert rate_for(line(sku="TRIAL", category=None, role="bait")) == 800
    assert rate_for(line(sku="CREAM", category="skin", role="core")) == 1_000


def test_fixed_amount_is_per_unit() -> None:
    spec = PlanSpec(mode=PlanMode.LEVELS, depth=1, rules=(LevelRule(1, 0, fixed_fen=150),))
    awards = compute_awards(
        spec, buyer=who("b"), uplines=[who("p")], lines=[line(10_000, qty=3)], cap_bp=3_000
    )
    assert amounts(awards) == [("p", 1, "level", 450)]


def test_cap_clamps_deeper_levels_first() -> None:
    spec = PlanSpec(
        mode=PlanMode.LEVELS, depth=2, rules=(LevelRule(1, 0, fixed_fen=2_500), LevelRule(2, 1_000))
    )
    awards = compute_awards(
        spec, buyer=who("b"), uplines=[who("p"), who("g")], lines=[line(10_000)], cap_bp=3_000
    )
    assert amounts(awards) == [("p", 1, "level", 2_500), ("g", 2, "level", 500)]


def test_differential_pays_rate_minus_highest_below() -> None:
    spec = PlanSpec(
        mode=PlanMode.DIFFERENTIAL, depth=3, tier_rates={"vip": 1_000, "partner": 2_000}
    )
    awards = compute_awards(
        spec,
        buyer=who("b"),
        uplines=[who("v", "vip"), who("m"), who("p", "partner")],
        lines=[line()],
        cap_bp=3_000,
    )
    assert amounts(awards) == [("v", 1, "differential", 1_000), ("p", 3, "differential", 1_000)]


def test_differential_same_tier_upline_gets_peer_bonus_not_nothing() -> None:
    # A downline who reached its upline's tier: the upline's differential is zero, and the
    # peer bonus keeps it from losing out (upgrading a downline never hurts the upline).
    spec = PlanSpec(
        mode=PlanMode.DIFFERENTIAL,
        depth=2,
        tier_rates={"vip": 1_000, "partner": 2_000},
        peer_bonus_bp=200,
    )
    awards = compute_awards(
        spec,
        buyer=who("b"),
        uplines=[who("d", "partner"), who("u", "partner")],
        lines=[line()],
        cap_bp=3_000,
    )
    assert amounts(awards) == [("d", 1, "differential", 2_000), ("u", 2, "peer_bonus", 200)]


def test_levels_peer_bonus_when_downline_passes_upline() -> None:
    spec = levels(1_000, 500, peer=100)
    awards = compute_awards(
        spec,
        buyer=who("b"),
        uplines=[who("d", "partner"), who("u", "vip")],
        lines=[line()],
        cap_bp=3_000,
    )
    assert amounts(awards) == [
        ("d", 1, "level", 1_000),
        ("u", 2, "level", 500),
        ("u", 2, "peer_bonus", 100),
    ]


def test_no_awards_on_zero_base() -> None:
    assert (
        compute_awards(
            levels(1_000), buyer=who("b"), uplines=[who("p")], lines=[line(0)], cap_bp=3_000
        )
        == []
    )


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        (
            PlanSpec(mode=PlanMode.LEVELS, depth=4, rules=(LevelRule(4, 100),)),
            "plan_depth_exceeded",
        ),
        (
            PlanSpec(mode=PlanMode.LEVELS, depth=3, rules=(LevelRule(4, 100),)),
            "plan_depth_exceeded",
        ),
        (
            PlanSpec(mode=PlanMode.LEVELS, depth=1, rules=(LevelRule(2, 100),)),
            "rule_level_beyond_depth",
        ),
        (PlanSpec(mode=PlanMode.LEVELS, depth=1, rules=(LevelRule(1, 10_001),)), "rate_invalid"),
        (PlanSpec(mode=PlanMode.LEVELS, depth=1, rules=(LevelRule(1, -1),)), "rate_invalid"),
        (PlanSpec(mode=PlanMode.LEVELS, depth=1, rules=()), "plan_levels_required"),
        (
            PlanSpec(mode=PlanMode.LEVELS, depth=1, rules=(LevelRule(1, 1), LevelRule(1, 2))),
            "rule_duplicate",
        ),
        (
            PlanSpec(
                mode=PlanMode.LEVELS,
                depth=1,
                rules=(LevelRule(1, 1, scope_kind=ScopeKind.PRODUCT),),
            ),
            "rule_scope_invalid",
        ),
        (PlanSpec(mode=PlanMode.DIFFERENTIAL, depth=2), "plan_tier_rates_required"),
        (
            PlanSpec(
                mode=PlanMode.DIFFERENTIAL, depth=2, tier_rates={"a": 1}, rules=(LevelRule(1, 1),)
            ),
            "levels_only_levels_mode",
        ),
    ],
)
def test_invalid_plans_are_refused_with_a_code(spec: PlanSpec, code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_plan(spec)
    assert caught.value.code == code


def test_nominal_total_and_deepest_level() -> None:
    assert nominal_total_bp(levels(1_000, 500, peer=100)) == 1_700
    spec = PlanSpec(
        mode=PlanMode.DIFFERENTIAL, depth=3, tier_rates={"a": 800, "b": 1_800}, peer_bonus_bp=50
    )
    assert (nominal_total_bp(spec), max_earning_level(spec)) == (1_950, 3)
    assert max_earning_level(levels(1_000, 0)) == 1


def test_scaled_amount_after_refund() -> None:
    assert scaled_amount(1_000, base_fen=10_000, remaining_base_fen=10_000) == 1_000
    assert scaled_amount(1_000, base_fen=10_000, remaining_base_fen=3_333) == 333
    assert scaled_amount(1_000, base_fen=10_000, remaining_base_fen=0) == 0


tiers = st.sampled_from([None, "member", "vip", "partner"])
members = st.builds(lambda i, t: who(f"m{i}", t), st.integers(0, 5), tiers)
rule_rates = st.integers(0, 5_000)


@st.composite
def plans(draw: st.DrawFn) -> PlanSpec:
    depth = draw(st.integers(1, 3))
    peer = draw(st.integers(0, 1_000))
    if draw(st.booleans()):
        rules = tuple(
            LevelRule(level, draw(rule_rates), fixed_fen=draw(st.sampled_from([0, 0, 50, 5_000])))
            for level in range(1, depth + 1)
        )
        return PlanSpec(mode=PlanMode.LEVELS, depth=depth, rules=rules, peer_bonus_bp=peer)
    rates = {t: draw(rule_rates) for t in ("member", "vip", "partner") if draw(st.booleans())} or {
        "vip": 100
    }
    return PlanSpec(mode=PlanMode.DIFFERENTIAL, depth=depth, tier_rates=rates, peer_bonus_bp=peer)


@settings(max_examples=300)
@given(
    plans(),
    members,
    st.lists(members, max_size=3),
    st.lists(st.tuples(st.integers(0, 10**9), st.integers(1, 50)), min_size=1, max_size=4),
    st.integers(0, 10_000),
)
def test_total_commission_never_exceeds_the_cap(
    spec: PlanSpec,
    buyer: ChainMember,
    uplines: list[ChainMember],
    raw_lines: list[tuple[int, int]],
    cap_bp: int,
) -> None:
    sale_lines = [
        SaleLine(f"l{i}", "S", None, "core", qty, base) for i, (base, qty) in enumerate(raw_lines)
    ]
    awards = compute_awards(spec, buyer=buyer, uplines=uplines, lines=sale_lines, cap_bp=cap_bp)
    for sale in sale_lines:
        paid = sum(a.amount_fen for a in awards if a.line_id == sale.line_id)
        assert paid <= apply_rate(sale.base_fen, cap_bp)
    assert all(a.amount_fen > 0 for a in awards)
    assert all(1 <= a.level <= spec.depth for a in awards)
    assert {a.beneficiary_id for a in awards} <= {u.member_id for u in uplines[: spec.depth]}
    assert all(
        a.kind in (AwardKind.LEVEL, AwardKind.DIFFERENTIAL, AwardKind.PEER_BONUS) for a in awards
    )
