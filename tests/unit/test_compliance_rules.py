"""The compliance check against the three profiles."""

from __future__ import annotations

from typing import Literal

import pytest

from shequn.compliance.rules import (
    LiveFigures,
    ProductFacts,
    Severity,
    blocking,
    check_plan,
    live_findings,
    report_rows,
    runtime_cap_bp,
    stock_entry_findings,
    upgrade_findings,
)
from shequn.distribution.rules import LevelRule, PlanMode, PlanSpec, Release
from shequn.entrypoints.rendering import finding_shown, report_row_shown
from shequn.i18n import set_locale
from shequn.tiers.rules import Atom, Group, Kind, TierSpec


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
        ("custom", (1_000, 500, 200), [("three_levels", "warn")]),
        ("custom", (1_000, 500), []),
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
KIT = Atom(Kind.BOUGHT, 1, None, "KIT")
PARTNER = TierSpec("t-partner", "合伙人", 2, may_distribute=True, criteria=KIT)


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
        criteria=Group(Kind.ANY_OF, (KIT, Atom(Kind.SPEND, 1))),
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


@pytest.mark.parametrize("kind", [Kind.TEAM_SIZE, Kind.DIRECT_CUSTOMERS])
def test_headcount_upgrade_of_an_earning_tier(kind: Kind) -> None:
    # a headcount anywhere in the tree, even beside a sales threshold
    tree = Group(Kind.ALL_OF, (Atom(Kind.SPEND, 100_000, 365), Atom(kind, 30)))
    recruiter = TierSpec("t-lead", "团长", 1, may_distribute=True, criteria=tree)
    for profile, severity in (("direct", "block"), ("wechat", "block"), ("custom", "warn")):
        found = check_plan(plan(1_000), profile=profile, custom_cap_bp=3_000, tiers=[recruiter])
        assert rules_of(found) == [("headcount_upgrade", severity)]
    assert "团长" in finding_shown(found[0])["message"]


def test_a_headcount_tier_that_earns_nothing_is_no_finding() -> None:
    service_only = TierSpec("t-star", "明星", 1, criteria=Atom(Kind.DIRECT_CUSTOMERS, 5))
    gated = PlanSpec(
        mode=PlanMode.LEVELS,
        depth=1,
        rules=(LevelRule(1, 1_000, tier_ids=frozenset({"t-partner"})),),
    )
    tiers = [service_only, PARTNER]
    found = check_plan(gated, profile="wechat", custom_cap_bp=3_000, tiers=tiers)
    assert "headcount_upgrade" not in [f.rule for f in found]


def test_a_package_needed_on_every_path_of_the_tree_is_an_entry_fee() -> None:
    gated = PlanSpec(
        mode=PlanMode.LEVELS,
        depth=1,
        rules=(LevelRule(1, 1_000, tier_ids=frozenset({"t-partner"})),),
    )
    with_challenge = TierSpec(
        "t-partner",
        "合伙人",
        2,
        criteria=Group(Kind.ALL_OF, (KIT, Atom(Kind.FACT, 1, None, "ChallengeCompleted"))),
    )
    found = check_plan(
        gated, profile="wechat", custom_cap_bp=3_000, tiers=[with_challenge], products=[PACKAGE]
    )
    assert rules_of(found) == [("entry_fee", "block")]
    assert found[0].params == {"condition": "KIT"}
    by_hand = TierSpec("t-partner", "合伙人", 2)
    assert (
        check_plan(
            gated, profile="wechat", custom_cap_bp=3_000, tiers=[by_hand], products=[PACKAGE]
        )
        == []
    )


@pytest.mark.parametrize(
    ("profile", "severity"), [("direct", "block"), ("wechat", "block"), ("custom", "warn")]
)
def test_a_minimum_first_stock_order_is_an_entry_fee_in_goods(profile: str, severity: str) -> None:
    assert stock_entry_findings(min_first_stock_order_fen=0, profile=profile) == []
    (found,) = stock_entry_findings(min_first_stock_order_fen=500_000, profile=profile)
    assert (found.rule, found.severity.value) == ("entry_fee", severity)
    set_locale("en")
    shown = finding_shown(found)
    assert shown["message"] == (
        "Becoming an agent requires a first stock order of at least ¥5,000.00 (入门费 in goods)."
    )
    assert shown["citation"].startswith("Regulations on Prohibition of Pyramid Selling")
    set_locale("zh_CN")
    assert finding_shown(found)["citation"].startswith("《禁止传销条例》第七条")


def test_an_upgrade_that_would_earn_the_upline_less_is_flagged() -> None:
    vip = TierSpec("t-vip", "VIP", 1, discount_bp=500, may_distribute=True)
    partner = TierSpec("t-partner", "合伙人", 2, discount_bp=2_000, may_distribute=True)
    # 10 % on a sale: a plain buyer pays 100 %, a VIP 95 %, a partner 80 % of the list price
    # a warning of the simulator's, not a finding that keeps a plan from being activated
    assert (
        check_plan(plan(1_000), profile="wechat", custom_cap_bp=3_000, tiers=[vip, partner]) == []
    )
    found = upgrade_findings(plan(1_000), [vip, partner])
    assert [(f.params["lower"], f.params["upper"]) for f in found] == [
        ("-", "VIP"),
        ("-", "合伙人"),
        ("VIP", "合伙人"),
    ]
    assert found[-1].params == {
        "lower": "VIP",
        "upper": "合伙人",
        "before_bp": 950,
        "after_bp": 800,
    }
    # a peer bonus of 3 % more than makes up the partner's 20 % off
    assert upgrade_findings(plan(1_000, peer_bonus_bp=300), [vip, partner]) == []
    set_locale("en")
    assert finding_shown(found[-1])["message"] == (
        "A member of VIP reaching its upline's tier 合伙人 would earn the upline 8.0% of the "
        "list price on its orders instead of 9.5%: raise the peer bonus or lower the tier's "
        "discount."
    )


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


def test_three_levels_under_custom_cite_the_criminal_law_and_its_standard() -> None:
    set_locale("en")
    found = check_plan(plan(4_000, 2_000, 1_000), profile="custom", custom_cap_bp=9_000)
    assert rules_of(found) == [("three_levels", "warn"), ("total_commission", "warn")]
    depth, total = (finding_shown(f) for f in found)
    assert depth["params"] == {"levels": 3, "participants": 30}
    assert "3 or more levels" in depth["message"]
    assert "30 or more participants" in depth["message"]
    assert depth["citation"].startswith("Criminal Law Art. 224-1")
    set_locale("zh_CN")
    assert finding_shown(found[0])["citation"].startswith("《刑法》第二百二十四条之一")
    set_locale("en")
    # the message of the total names the cap configured, not the legal one
    assert total["params"] == {"total_bp": 7_000, "cap_bp": 9_000}
    assert total["message"] == (
        "Commission on one sale can reach 70.0%, above 30.0% of the sale"
        " (the cap configured is 90.0%)."
    )


def test_the_live_prosecution_standard_is_a_blocking_alert() -> None:
    live = LiveFigures(
        deepest_earning_level=3,
        deepest_referral_levels=4,
        members_in_chains_of_3_plus=30,
        member_income_fen=1,
        recruitment_income_fen=0,
        recruitment_income_share_bp=0,
    )
    assert [(f.rule, f.severity.value) for f in live_findings(live, "custom")] == [
        ("prosecution_threshold", "block")
    ]
    below = LiveFigures(3, 4, 29, 1, 0, 0)
    assert live_findings(below, "custom") == []


def test_the_live_report_has_a_row_per_figure_the_law_measures() -> None:
    clean = LiveFigures(2, 3, 12, 100_000, 0, 0)
    rows = report_rows(clean, "wechat", stock_entry_fen=0)
    assert [(r.figure, r.value, r.state.value) for r in rows] == [
        ("deepest_earning_chain", 2, "ok"),
        ("members_in_chains_of_3_plus", 12, "ok"),
        ("recruitment_income_share", 0, "ok"),
        ("stock_entry_condition", 0, "ok"),
    ]
    bad = LiveFigures(3, 5, 40, 100_000, 25_000, 2_500)
    states = {r.figure: r.state.value for r in report_rows(bad, "wechat", stock_entry_fen=50_000)}
    assert states == {
        "deepest_earning_chain": "warn",
        "members_in_chains_of_3_plus": "block",
        "recruitment_income_share": "block",
        "stock_entry_condition": "block",
    }
    custom = {r.figure: r.state.value for r in report_rows(bad, "custom", stock_entry_fen=1)}
    assert (custom["deepest_earning_chain"], custom["stock_entry_condition"]) == ("ok", "warn")
    # a long chain that earns only two levels deep is watched, not yet the standard
    shallow = report_rows(LiveFigures(2, 5, 40, 1, 0, 0), "wechat", stock_entry_fen=0)
    assert shallow[1].state.value == "warn"


@pytest.mark.parametrize(
    ("locale", "citations"),
    [
        ("en", ("Criminal Law Art. 224-1", "Criminal Law Art. 224-1", "", "")),
        ("zh_CN", ("《刑法》", "《刑法》", "《禁止传销条例》", "《禁止传销条例》")),
    ],
)
def test_each_row_of_the_live_report_has_its_message_and_citation_in_both_languages(
    locale: Literal["zh_CN", "en"], citations: tuple[str, ...]
) -> None:
    set_locale(locale)
    live = LiveFigures(3, 5, 40, 100_000, 25_000, 2_500)
    shown = [report_row_shown(r) for r in report_rows(live, "wechat", stock_entry_fen=50_000)]
    for row, citation in zip(shown, citations, strict=True):
        assert row["message"]
        assert row["citation"].startswith(citation)
        assert not row["message"].startswith("compliance.")
        assert not row["citation"].startswith("citation.")
    if locale == "en":
        assert shown[2]["message"] == (
            "Share of members' income tied to recruitment-linked rewards: 25.0% "
            "(¥250.00 of ¥1,000.00)."
        )
        assert shown[3]["message"].endswith("at least ¥500.00.")
    else:
        assert (
            shown[2]["message"]
            == "会员收入中与拉人头挂钩的奖励占比：25.0%（¥1,000.00 中的 ¥250.00）。"
        )
        assert "第 3 级" in shown[0]["message"]
