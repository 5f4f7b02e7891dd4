"""The compliance check against the three profiles."""

from __future__ import annotations

import pytest

from shequn.compliance.rules import ProductFacts, Severity, blocking, check_plan, runtime_cap_bp
from shequn.distribution.rules import LevelRule, PlanMode, PlanSpec, Release
from shequn.entrypoints.rendering import finding_shown
from shequn.i18n import set_locale
from shequn.tiers.rules import TierSpec


def plan(*rates: int, **extra: object) -> PlanSpec:
    rules = tuple(LevelRule(level=i + 1, rate_bp=r) for i, r in enumerate(rates))
    return PlanSpec(mode=PlanMode.LEVELS, depth=max(len(rates), 1), rules=rules, **extra)  # type: ignore[arg-type]


def rules_of(findings: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(f.rule, f.severity.value) for f in findings]


@pytest.fixture(autouse=True)
def _english() -> None:
    set_locale("en")


def test_a_two_level_plan_under_30_percent_is_clean_on_wechat() -> None:
    assert check_plan(plan(1_000, 500), profile="wechat", custom_cap_bp=3_000) == []


@pytest.mark.parametrize(
    ("profile", "rates", "expected"),
    [
        ("direct", (1_000,), []),
        ("direct", (1_000, 500), [("commission_depth", "block")]),
        ("wechat", (1_000, 500, 200), [("commission_depth", "block")]),
        ("custom", (1_000, 500, 200), []),
    ],
)
def test_depth_per_profile(
    profile: str, rates: tuple[int, ...], expected: list[tuple[str, str]]
) -> None:
    assert rules_of(check_plan(plan(*rates), profile=profile, custom_cap_bp=3_000)) == expected


def test_total_cap_blocks_on_wechat_and_warns_on_custom_within_its_cap() -> None:
    over = plan(2_500, 1_000)
    assert rules_of(check_plan(over, profile="wechat", custom_cap_bp=3_000)) == [
        ("total_commission", "block")
    ]
    assert rules_of(check_plan(over, profile="custom", custom_cap_bp=4_000)) == [
        ("total_commission", "warn")
    ]
    assert rules_of(check_plan(over, profile="custom", custom_cap_bp=3_400)) == [
        ("total_commission", "block")
    ]


def test_recruitment_reward_blocks_everywhere() -> None:
    for profile in ("direct", "wechat", "custom"):
        found = check_plan(plan(1_000, signup_reward_fen=500), profile=profile, custom_cap_bp=3_000)
        assert rules_of(found) == [("recruitment_reward", "block")]


def test_team_volume_and_unsettled_commission_block_everywhere() -> None:
    found = check_plan(
        plan(1_000, team_volume_bonus_bp=100, release=Release.ON_PAYMENT),
        profile="custom",
        custom_cap_bp=3_000,
    )
    assert rules_of(found) == [("team_volume", "block"), ("unsettled_commission", "block")]


PACKAGE = ProductFacts("KIT", "partner", 199_900)
PARTNER = TierSpec("t-partner", "合伙人", 2, may_distribute=True, upgrade_product_sku="KIT")


def test_entry_fee_when_only_package_buyers_may_earn() -> None:
    gated = PlanSpec(
        mode=PlanMode.LEVELS,
        depth=1,
        rules=(LevelRule(1, 1_000, tier_ids=frozenset({"t-partner"})),),
    )
    assert rules_of(
        check_plan(
            gated, profile="wechat", custom_cap_bp=3_000, tiers=[PARTNER], products=[PACKAGE]
        )
    ) == [("entry_fee", "block")]
    assert rules_of(
        check_plan(
            gated, profile="custom", custom_cap_bp=3_000, tiers=[PARTNER], products=[PACKAGE]
        )
    ) == [("entry_fee", "warn")]


def test_no_entry_fee_when_anyone_may_earn_or_spend_also_qualifies() -> None:
    open_plan = plan(1_000)
    assert (
        check_plan(
            open_plan, profile="wechat", custom_cap_bp=3_000, tiers=[PARTNER], products=[PACKAGE]
        )
        == []
    )
    by_spend = TierSpec(
        "t-partner",
        "合伙人",
        2,
        may_distribute=True,
        upgrade_product_sku="KIT",
        upgrade_spend_fen=1,
    )
    gated = PlanSpec(
        mode=PlanMode.LEVELS,
        depth=1,
        rules=(LevelRule(1, 1_000, tier_ids=frozenset({"t-partner"})),),
    )
    assert (
        check_plan(
            gated, profile="wechat", custom_cap_bp=3_000, tiers=[by_spend], products=[PACKAGE]
        )
        == []
    )


def test_explicit_qualification_product_is_an_entry_fee() -> None:
    assert rules_of(
        check_plan(plan(1_000, qualification_sku="KIT"), profile="direct", custom_cap_bp=3_000)
    ) == [("entry_fee", "block")]


def test_headcount_upgrade_of_an_earning_tier() -> None:
    recruiter = TierSpec("t-lead", "团长", 1, may_distribute=True, upgrade_team_headcount=30)
    found = check_plan(plan(1_000), profile="wechat", custom_cap_bp=3_000, tiers=[recruiter])
    assert rules_of(found) == [("headcount_upgrade", "block")]
    assert "团长" in finding_shown(found[0])["message"]


def test_fixed_amount_over_cap_warns_with_the_product() -> None:
    spec = PlanSpec(mode=PlanMode.LEVELS, depth=1, rules=(LevelRule(1, 0, fixed_fen=500),))
    found = check_plan(
        spec, profile="wechat", custom_cap_bp=3_000, products=[ProductFacts("TRIAL", "bait", 990)]
    )
    assert rules_of(found) == [("total_commission", "warn")]
    assert found[0].params == {"sku": "TRIAL", "level": 1, "share_bp": 5050}


def test_findings_carry_message_and_citation_in_both_languages() -> None:
    (finding,) = check_plan(plan(1_000, 500, 200), profile="wechat", custom_cap_bp=3_000)
    english = finding_shown(finding)
    set_locale("zh_CN")
    chinese = finding_shown(finding)
    assert english["message"] == "Commission reaches level 3; this profile allows 2."
    assert chinese["message"] == "分佣达到第 3 级，当前合规配置最多允许 2 级。"
    assert chinese["citation"].startswith("《刑法》第二百二十四条之一")
    assert blocking([finding]) == [finding]
    assert finding.severity is Severity.BLOCK


def test_runtime_cap() -> None:
    assert (
        runtime_cap_bp("wechat", 9_000),
        runtime_cap_bp("direct", 9_000),
        runtime_cap_bp("custom", 4_500),
    ) == (
        3_000,
        3_000,
        4_500,
    )
