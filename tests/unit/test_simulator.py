"""The plan simulator's own rules: the tier a member held when an order was paid, the replay
through the live engine's rule, each line's explanation, the totals, the period as written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
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
)
from shequn.distribution.simulator import (
    ReplayLine,
    ReplayOrder,
    TierTimeline,
    deepest_level,
    parse_period,
    replay,
    totals,
)
from shequn.errors import InvalidInput

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_the_tier_a_payment_saw_is_the_one_before_any_change_at_or_after_it() -> None:
    timeline = TierTimeline(
        current={"m": "gold", "n": None},
        changes={"m": [(T0, None, "silver"), (T0 + timedelta(days=10), "silver", "gold")]},
    )
    assert timeline.at("m", T0 - timedelta(seconds=1)) is None
    # a change at the payment's very time is the payment's own upgrade: it came after
    assert timeline.at("m", T0) is None
    assert timeline.at("m", T0 + timedelta(days=1)) == "silver"
    assert timeline.at("m", T0 + timedelta(days=10)) == "silver"
    assert timeline.at("m", T0 + timedelta(days=11)) == "gold"
    assert timeline.at("n", T0) is None
    assert timeline.at("unknown", T0) is None


def line(line_id: str, base: int, sku: str = "CORE-1", quantity: int = 1) -> SaleLine:
    return SaleLine(line_id, sku, "skincare", "core", quantity, base)


def order(index: int, *lines: SaleLine, uplines: tuple[str, ...] = ("a", "b", "c")) -> ReplayOrder:
    return ReplayOrder(
        index=index,
        order_id=f"o{index}",
        buyer_id="buyer",
        uplines=uplines,
        paid_at=T0 + timedelta(hours=index),
        paid_fen=sum(x.base_fen for x in lines),
        lines=tuple(ReplayLine(x) for x in lines),
    )


SCOPED = PlanSpec(
    mode=PlanMode.LEVELS,
    depth=2,
    rules=(
        LevelRule(1, 1_000),
        LevelRule(1, 2_000, scope_kind=ScopeKind.PRODUCT, scope_value="KIT"),
        LevelRule(1, 500, fixed_fen=30, scope_kind=ScopeKind.CATEGORY, scope_value="skincare"),
        LevelRule(2, 500),
    ),
    peer_bonus_bp=100,
)


def test_each_line_names_the_rule_that_paid_it() -> None:
    timeline = TierTimeline(current={"buyer": "p", "a": "p", "b": None})
    lines = replay(
        SCOPED,
        [order(0, line("l1", 10_000), line("l2", 20_000, sku="KIT"))],
        tiers=timeline,
        ranks={"p": 2},
        cap_bp=3_000,
    )
    assert [(s.award.line_id, s.award.level, s.award.kind, s.award.amount_fen) for s in lines] == [
        ("l1", 1, AwardKind.LEVEL, 530),
        ("l1", 1, AwardKind.PEER_BONUS, 100),
        ("l1", 2, AwardKind.LEVEL, 500),
        ("l2", 1, AwardKind.LEVEL, 4_000),
        ("l2", 1, AwardKind.PEER_BONUS, 200),
        ("l2", 2, AwardKind.LEVEL, 1_000),
    ]
    assert [s.rule for s in lines[:3]] == [
        {
            "kind": "level",
            "scope_kind": "category",
            "scope_value": "skincare",
            "fixed_fen": 30,
            "tier_id": "p",
        },
        {"kind": "peer_bonus", "tier_id": "p"},
        {
            "kind": "level",
            "scope_kind": "all",
            "scope_value": None,
            "fixed_fen": 0,
            "tier_id": None,
        },
    ]
    assert lines[3].rule["scope_kind"] == "product"
    assert not any(s.capped for s in lines)
    assert deepest_level(lines) == 2


def test_a_line_cut_by_the_cap_says_so() -> None:
    greedy = PlanSpec(
        mode=PlanMode.LEVELS, depth=2, rules=(LevelRule(1, 2_500), LevelRule(2, 1_000))
    )
    lines = replay(
        greedy, [order(0, line("l1", 10_000))], tiers=TierTimeline({}), ranks={}, cap_bp=3_000
    )
    assert [(s.award.amount_fen, s.capped) for s in lines] == [(2_500, False), (500, True)]


def test_differential_lines_name_the_tier_rate_and_what_was_paid_below() -> None:
    spec = PlanSpec(mode=PlanMode.DIFFERENTIAL, depth=2, tier_rates={"vip": 800, "p": 1_500})
    timeline = TierTimeline(current={"buyer": None, "a": "vip", "b": "p"})
    lines = replay(
        spec, [order(0, line("l1", 10_000))], tiers=timeline, ranks={"vip": 1, "p": 2}, cap_bp=3_000
    )
    assert [s.rule for s in lines] == [
        {"kind": "differential", "tier_id": "vip", "tier_rate_bp": 800, "below_rate_bp": 0},
        {"kind": "differential", "tier_id": "p", "tier_rate_bp": 1_500, "below_rate_bp": 800},
    ]


specs = st.builds(
    lambda l1, l2, peer: PlanSpec(
        mode=PlanMode.LEVELS,
        depth=2,
        rules=(LevelRule(1, l1), LevelRule(2, l2, tier_ids=frozenset({"p"}))),
        peer_bonus_bp=peer,
    ),
    st.integers(0, 3_000),
    st.integers(0, 3_000),
    st.integers(0, 500),
)


@given(
    spec=specs,
    bases=st.lists(st.integers(0, 10**7), min_size=1, max_size=4),
    tiers=st.lists(st.sampled_from([None, "vip", "p"]), min_size=3, max_size=3),
    cap=st.integers(0, 10_000),
)
def test_the_replay_pays_exactly_what_the_live_rule_pays(
    spec: PlanSpec, bases: list[int], tiers: list[str | None], cap: int
) -> None:
    ranks = {"vip": 1, "p": 2}
    buyer_tier, a_tier, b_tier = tiers
    timeline = TierTimeline(current={"buyer": buyer_tier, "a": a_tier, "b": b_tier})
    sale = [line(f"l{i}", b) for i, b in enumerate(bases)]
    replayed = replay(
        spec, [order(0, *sale, uplines=("a", "b"))], tiers=timeline, ranks=ranks, cap_bp=cap
    )

    def member(m: str, t: str | None) -> ChainMember:
        return ChainMember(m, t, ranks.get(t) if t else None)

    live = compute_awards(
        spec,
        buyer=member("buyer", buyer_tier),
        uplines=[member("a", a_tier), member("b", b_tier)],
        lines=sale,
        cap_bp=cap,
    )
    assert [s.award for s in replayed] == live
    result = totals([order(0, *sale)], replayed)
    assert result.total_fen == sum(a.amount_fen for a in live)
    assert result.cost_bp_of_gmv == (result.total_fen * 10_000 // sum(bases) if sum(bases) else 0)
    for s in replayed:
        if s.award.kind is AwardKind.LEVEL:
            rule = next(r for r in spec.rules if r.level == s.award.level)
            assert rule.rate_bp == s.award.rate_bp


def test_refunds_shrink_what_a_line_is_worth_now() -> None:
    spec = PlanSpec(mode=PlanMode.LEVELS, depth=1, rules=(LevelRule(1, 1_000),))
    refunded = ReplayOrder(
        0, "o0", "buyer", ("a",), T0, 10_000, (ReplayLine(line("l1", 10_000), 2_500),)
    )
    (simulated,) = replay(spec, [refunded], tiers=TierTimeline({}), ranks={}, cap_bp=3_000)
    assert (simulated.award.amount_fen, simulated.net_fen) == (1_000, 750)


def test_a_period_is_read_in_the_tenants_time_zone() -> None:
    start, end = parse_period("2026-01-01", "2026-01-31", "Asia/Shanghai")
    assert (start, end) == (
        datetime(2025, 12, 31, 16, tzinfo=UTC),
        datetime(2026, 1, 31, 16, tzinfo=UTC),  # the end date is included
    )
    start, end = parse_period("2026-01-01T08:00:00+00:00", "2026-01-02T00:00:00", "Asia/Shanghai")
    assert (start, end) == (
        datetime(2026, 1, 1, 8, tzinfo=UTC),
        datetime(2026, 1, 1, 16, tzinfo=UTC),
    )
    with pytest.raises(InvalidInput) as refused:
        parse_period("yesterday", "2026-01-01", "Asia/Shanghai")
    assert (refused.value.code, refused.value.params) == (
        "period_unreadable",
        {"value": "yesterday"},
    )
