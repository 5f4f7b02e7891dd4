"""The compliance check (pure): a plan, the tiers and the catalog against a legal profile.

Profiles: `direct` (直销: pay on own sales only), `wechat` (default: WeChat's rules, two
levels), `custom` (up to the hard limit of three levels, with a configurable total cap).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shequn.catalog.rules import LadderRole
from shequn.distribution.rules import (
    HARD_MAX_DEPTH,
    LEGAL_TOTAL_CAP_BP,
    PlanMode,
    PlanSpec,
    Release,
    ScopeKind,
    max_earning_level,
    nominal_total_bp,
)
from shequn.tiers.rules import TierSpec


class Severity(StrEnum):
    BLOCK = "block"
    WARN = "warn"


class Profile(StrEnum):
    DIRECT = "direct"
    WECHAT = "wechat"
    CUSTOM = "custom"


MAX_LEVEL = {Profile.DIRECT: 1, Profile.WECHAT: 2, Profile.CUSTOM: HARD_MAX_DEPTH}

CITATIONS = {
    "anti_pyramid_7": "citation.anti_pyramid_7",
    "direct_selling": "citation.direct_selling",
    "criminal_224_1": "citation.criminal_224_1",
    "wechat_2015": "citation.wechat_2015",
}


@dataclass(frozen=True)
class Finding:
    """A rule the checked plan breaks or comes close to; its message and citation are
    rendered in the reader's language where it is shown (`message_key`, `citation_key`)."""

    rule: str
    severity: Severity
    message_key: str
    citation_key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProductFacts:
    sku: str
    ladder_role: str
    price_fen: int
    category: str | None = None


def _cap_for(profile: Profile, custom_cap_bp: int) -> int:
    return custom_cap_bp if profile is Profile.CUSTOM else LEGAL_TOTAL_CAP_BP


def runtime_cap_bp(profile: str, custom_cap_bp: int) -> int:
    """The most any single sale may pay in total under the profile."""
    return _cap_for(Profile(profile), custom_cap_bp)


def check_plan(
    plan: PlanSpec,
    *,
    profile: str,
    custom_cap_bp: int,
    tiers: Sequence[TierSpec] = (),
    products: Sequence[ProductFacts] = (),
) -> list[Finding]:
    """Every finding for the plan under the profile, blocking ones first."""
    prof = Profile(profile)
    findings: list[Finding] = []
    deepest = max_earning_level(plan)
    if deepest > MAX_LEVEL[prof]:
        findings.append(
            Finding(
                "commission_depth",
                Severity.BLOCK,
                "compliance.depth",
                CITATIONS["criminal_224_1"]
                if prof is not Profile.DIRECT
                else CITATIONS["direct_selling"],
                {"depth": deepest, "max": MAX_LEVEL[prof]},
            )
        )
    total = nominal_total_bp(plan)
    cap = _cap_for(prof, custom_cap_bp)
    if total > cap:
        findings.append(
            Finding(
                "total_commission",
                Severity.BLOCK,
                "compliance.total_cap",
                CITATIONS["direct_selling"],
                {"total_bp": total, "cap_bp": cap},
            )
        )
    elif total > LEGAL_TOTAL_CAP_BP:
        findings.append(
            Finding(
                "total_commission",
                Severity.WARN,
                "compliance.total_over_30",
                CITATIONS["direct_selling"],
                {"total_bp": total},
            )
        )
    findings.extend(_fixed_amount_findings(plan, products, cap))
    if plan.signup_reward_fen > 0:
        findings.append(
            Finding(
                "recruitment_reward",
                Severity.BLOCK,
                "compliance.recruitment",
                CITATIONS["anti_pyramid_7"],
                {"amount_fen": plan.signup_reward_fen},
            )
        )
    entry_fee = _entry_fee_condition(plan, tiers, products)
    if entry_fee is not None:
        findings.append(
            Finding(
                "entry_fee",
                Severity.WARN if prof is Profile.CUSTOM else Severity.BLOCK,
                "compliance.entry_fee",
                CITATIONS["anti_pyramid_7"],
                {"condition": entry_fee},
            )
        )
    headcount_tiers = [
        t.name for t in tiers if t.upgrade_team_headcount is not None and _tier_earns(plan, t)
    ]
    if headcount_tiers:
        findings.append(
            Finding(
                "headcount_upgrade",
                Severity.WARN if prof is Profile.CUSTOM else Severity.BLOCK,
                "compliance.headcount",
                CITATIONS["anti_pyramid_7"],
                {"tiers": ", ".join(headcount_tiers)},
            )
        )
    if plan.team_volume_bonus_bp > 0:
        findings.append(
            Finding(
                "team_volume",
                Severity.BLOCK,
                "compliance.team_volume",
                CITATIONS["anti_pyramid_7"],
                {"rate_bp": plan.team_volume_bonus_bp},
            )
        )
    if plan.release is Release.ON_PAYMENT:
        findings.append(
            Finding(
                "unsettled_commission",
                Severity.BLOCK,
                "compliance.unsettled",
                CITATIONS["wechat_2015"],
            )
        )
    order = {Severity.BLOCK: 0, Severity.WARN: 1}
    return sorted(findings, key=lambda f: (order[f.severity], f.rule))


def _tier_earns(plan: PlanSpec, tier: TierSpec) -> bool:
    """Whether holding the tier changes what one can earn under the plan."""
    if plan.mode is PlanMode.DIFFERENTIAL:
        return tier.id in plan.tier_rates
    return tier.may_distribute or any(
        r.tier_ids is not None and tier.id in r.tier_ids for r in plan.rules
    )


def _entry_fee_condition(
    plan: PlanSpec, tiers: Sequence[TierSpec], products: Sequence[ProductFacts]
) -> str | None:
    """A purchase made the condition of earning: an explicit qualification product, or earning
    restricted to tiers reachable only by buying a package."""
    if plan.qualification_sku:
        return plan.qualification_sku
    packages = {p.sku for p in products if p.ladder_role == LadderRole.PARTNER.value}
    by_id = {t.id: t for t in tiers}
    if plan.mode is PlanMode.DIFFERENTIAL:
        gating: list[set[str]] = [set(plan.tier_rates)]
    else:
        gating = [set(r.tier_ids) for r in plan.rules if r.tier_ids is not None]
        if len(gating) < len(plan.rules):
            return None  # some level lets anyone earn
    for allowed in gating:
        earning_tiers = [by_id[t] for t in allowed if t in by_id]
        if earning_tiers and all(_only_by_purchase(t, packages) for t in earning_tiers):
            return ", ".join(sorted(t.upgrade_product_sku or "" for t in earning_tiers))
    return None


def _only_by_purchase(tier: TierSpec, packages: set[str]) -> bool:
    return (
        tier.upgrade_product_sku is not None
        and tier.upgrade_product_sku in packages
        and tier.upgrade_spend_fen is None
        and tier.upgrade_single_order_fen is None
        and tier.upgrade_team_headcount is None
    )


def _fixed_amount_findings(
    plan: PlanSpec, products: Sequence[ProductFacts], cap_bp: int
) -> list[Finding]:
    """A fixed amount per unit that is a large share of a cheap product's price."""
    out: list[Finding] = []
    for rule in plan.rules:
        if rule.fixed_fen <= 0:
            continue
        if rule.scope_kind is ScopeKind.ALL:
            scoped = list(products)
        elif rule.scope_kind is ScopeKind.PRODUCT:
            scoped = [p for p in products if p.sku == rule.scope_value]
        elif rule.scope_kind is ScopeKind.CATEGORY:
            scoped = [p for p in products if p.category == rule.scope_value]
        else:
            scoped = [p for p in products if p.ladder_role == rule.scope_value]
        for product in scoped:
            share = rule.fixed_fen * 10_000 // max(product.price_fen, 1)
            if share + rule.rate_bp > cap_bp:
                out.append(
                    Finding(
                        "total_commission",
                        Severity.WARN,
                        "compliance.fixed_over_cap",
                        CITATIONS["direct_selling"],
                        {"sku": product.sku, "level": rule.level, "share_bp": share},
                    )
                )
    return out


def blocking(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.BLOCK]


@dataclass(frozen=True)
class LiveFigures:
    """What the tenant's data shows (see `shequn.compliance.service.live_figures`)."""

    deepest_earning_level: int
    deepest_referral_depth: int
    members_in_chains_of_3_plus: int
    member_income_fen: int
    recruitment_income_fen: int
    recruitment_income_share_bp: int


def live_findings(live: LiveFigures, profile: str) -> list[Finding]:
    """Findings the live data raises under the profile."""
    out: list[Finding] = []
    limit = MAX_LEVEL[Profile(profile)]
    if live.deepest_earning_level > limit:
        out.append(
            Finding(
                "live_depth",
                Severity.WARN,
                "compliance.live_depth",
                CITATIONS["criminal_224_1"],
                {"depth": live.deepest_earning_level, "max": limit},
            )
        )
    if live.members_in_chains_of_3_plus >= 30 and live.deepest_earning_level >= 3:
        out.append(
            Finding(
                "prosecution_threshold",
                Severity.WARN,
                "compliance.prosecution_threshold",
                CITATIONS["criminal_224_1"],
                {"count": live.members_in_chains_of_3_plus},
            )
        )
    return out
