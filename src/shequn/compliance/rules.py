"""The compliance check (pure): a plan, the tiers and the catalog against a legal profile.

Profiles: `direct` (直销: pay on own sales only), `wechat` (default: WeChat's rules, two
levels), `custom` (up to the hard limit of three levels, with a configurable total cap).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
from shequn.tiers.rules import HEADCOUNT, Atom, Kind, TierSpec, atoms, needs


class Severity(StrEnum):
    BLOCK = "block"
    WARN = "warn"


class Profile(StrEnum):
    DIRECT = "direct"
    WECHAT = "wechat"
    CUSTOM = "custom"


MAX_LEVEL = {Profile.DIRECT: 1, Profile.WECHAT: 2, Profile.CUSTOM: HARD_MAX_DEPTH}
# 刑法第二百二十四条之一 as the prosecution standard reads it (组织、领导传销活动罪): three levels
# or more, thirty participants or more.
PROSECUTION_LEVELS = 3
PROSECUTION_PARTICIPANTS = 30

CITATIONS = {
    "anti_pyramid_7": "citation.anti_pyramid_7",
    "direct_selling": "citation.direct_selling",
    "criminal_224_1": "citation.criminal_224_1",
    "wechat_2015": "citation.wechat_2015",
    "ladder_principle": "citation.ladder_principle",
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
                {"total_bp": total, "cap_bp": cap},
            )
        )
    if prof is Profile.CUSTOM and deepest >= PROSECUTION_LEVELS:
        # Allowed by the profile, and yet the very shape the criminal law measures: it is the
        # live data (how many take part) that decide, so the report watches them.
        findings.append(
            Finding(
                "three_levels",
                Severity.WARN,
                "compliance.three_levels",
                CITATIONS["criminal_224_1"],
                {"levels": deepest, "participants": PROSECUTION_PARTICIPANTS},
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
    headcount_tiers = [t.name for t in tiers if raised_by_headcount(t) and _tier_earns(plan, t)]
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


def raised_by_headcount(tier: TierSpec) -> bool:
    """A tier whose criteria count people (direct customers, team size) anywhere in its tree."""
    return tier.criteria is not None and any(a.kind in HEADCOUNT for a in atoms(tier.criteria))


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
            named = {sku for t in earning_tiers for sku in _packages_in(t, packages)}
            return ", ".join(sorted(named))
    return None


def _is_package(packages: set[str]) -> Callable[[Atom], bool]:
    return lambda atom: atom.kind is Kind.BOUGHT and atom.arg in packages


def _only_by_purchase(tier: TierSpec, packages: set[str]) -> bool:
    """Reached automatically, and never without buying a package."""
    return tier.criteria is not None and needs(tier.criteria, _is_package(packages))


def _packages_in(tier: TierSpec, packages: set[str]) -> list[str]:
    assert tier.criteria is not None
    return sorted({a.arg for a in atoms(tier.criteria) if _is_package(packages)(a) and a.arg})


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


def stock_entry_findings(*, min_first_stock_order_fen: int, profile: str) -> list[Finding]:
    """A minimum first stock purchase as the condition of agency: an entry fee paid in goods
    (入门费), refused as any purchase made the condition of earning."""
    if min_first_stock_order_fen <= 0:
        return []
    return [
        Finding(
            "entry_fee",
            Severity.WARN if Profile(profile) is Profile.CUSTOM else Severity.BLOCK,
            "compliance.stock_entry",
            CITATIONS["anti_pyramid_7"],
            {"amount_fen": min_first_stock_order_fen},
        )
    ]


def _level_one_rate(plan: PlanSpec, tier: TierSpec) -> int | None:
    """What the plan pays a member of `tier` on a sale it made itself, as a rate (rules for
    all products only; None if it earns nothing there)."""
    if plan.mode is PlanMode.DIFFERENTIAL:
        return plan.tier_rates.get(tier.id)
    rates = [
        r.rate_bp
        for r in plan.rules
        if r.level == 1
        and r.scope_kind is ScopeKind.ALL
        and (r.tier_ids is None or tier.id in r.tier_ids)
    ]
    return max(rates) if rates else None


def upgrade_findings(plan: PlanSpec, tiers: Sequence[TierSpec]) -> list[Finding]:
    """Where a downline reaching its upline's tier would earn the upline less on the
    downline's next order (下级客户升级不影响上级客户利益): the tier's member price takes more
    off the base than the peer bonus gives back. Shares are of the list price, in bp."""
    out: list[Finding] = []
    for upper in sorted(tiers, key=lambda t: t.rank):
        rate = _level_one_rate(plan, upper)
        if not rate or not _tier_earns(plan, upper):
            continue
        after = (rate + plan.peer_bonus_bp) * (10_000 - upper.discount_bp) // 10_000
        lower_discounts = [("-", 0)] + [
            (t.name, t.discount_bp) for t in tiers if t.rank < upper.rank
        ]
        for name, discount in lower_discounts:
            before = rate * (10_000 - discount) // 10_000
            if after < before:
                out.append(
                    Finding(
                        "upgrade_lowers_upline",
                        Severity.WARN,
                        "compliance.upgrade_lowers_upline",
                        CITATIONS["ladder_principle"],
                        {
                            "lower": name,
                            "upper": upper.name,
                            "before_bp": before,
                            "after_bp": after,
                        },
                    )
                )
    return out


def blocking(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.BLOCK]


@dataclass(frozen=True)
class LiveFigures:
    """What the tenant's data shows (see `shequn.compliance.service.live_figures`)."""

    deepest_earning_level: int
    deepest_referral_levels: int  # members in the longest chain, as levels are counted
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
    if (
        live.members_in_chains_of_3_plus >= PROSECUTION_PARTICIPANTS
        and live.deepest_earning_level >= PROSECUTION_LEVELS
    ):
        out.append(
            Finding(
                "prosecution_threshold",
                Severity.BLOCK,
                "compliance.prosecution_threshold",
                CITATIONS["criminal_224_1"],
                {"count": live.members_in_chains_of_3_plus},
            )
        )
    return out


class RowState(StrEnum):
    OK = "ok"
    WARN = "warn"
    BLOCK = "block"


@dataclass(frozen=True)
class ReportRow:
    """One line of the live report: a figure of the tenant's data, how it stands under the
    profile, and the law it is measured against (rendered where it is shown, as a finding)."""

    figure: str
    value: int
    state: RowState
    message_key: str
    citation_key: str
    params: dict[str, Any] = field(default_factory=dict)


def report_rows(live: LiveFigures, profile: str, *, stock_entry_fen: int) -> list[ReportRow]:
    """The live report, one row per figure the law measures: the deepest earning chain, the
    people in chains of three levels or more, the share of income tied to recruitment-linked
    rewards, and a stock purchase made the condition of agency."""
    prof = Profile(profile)
    limit = MAX_LEVEL[prof]
    depth = live.deepest_earning_level
    rows = [
        ReportRow(
            "deepest_earning_chain",
            depth,
            RowState.WARN if depth > limit else RowState.OK,
            "compliance.row.deepest_chain",
            CITATIONS["direct_selling"] if prof is Profile.DIRECT else CITATIONS["criminal_224_1"],
            {"depth": depth, "max": limit},
        )
    ]
    count = live.members_in_chains_of_3_plus
    if count >= PROSECUTION_PARTICIPANTS and depth >= PROSECUTION_LEVELS:
        state = RowState.BLOCK
    elif count >= PROSECUTION_PARTICIPANTS:
        state = RowState.WARN  # the shape is there; no commission is paid that deep
    else:
        state = RowState.OK
    rows.append(
        ReportRow(
            "members_in_chains_of_3_plus",
            count,
            state,
            "compliance.row.long_chains",
            CITATIONS["criminal_224_1"],
            {
                "count": count,
                "levels": PROSECUTION_LEVELS,
                "participants": PROSECUTION_PARTICIPANTS,
            },
        )
    )
    share = live.recruitment_income_share_bp
    rows.append(
        ReportRow(
            "recruitment_income_share",
            share,
            RowState.BLOCK if live.recruitment_income_fen > 0 else RowState.OK,
            "compliance.row.recruitment_share",
            CITATIONS["anti_pyramid_7"],
            {
                "share_bp": share,
                "recruitment_fen": live.recruitment_income_fen,
                "income_fen": live.member_income_fen,
            },
        )
    )
    if stock_entry_fen > 0:
        stock_state = RowState.WARN if prof is Profile.CUSTOM else RowState.BLOCK
        stock_key = "compliance.row.stock_entry"
    else:
        stock_state, stock_key = RowState.OK, "compliance.row.no_stock_entry"
    rows.append(
        ReportRow(
            "stock_entry_condition",
            stock_entry_fen,
            stock_state,
            stock_key,
            CITATIONS["anti_pyramid_7"],
            {"amount_fen": stock_entry_fen},
        )
    )
    return rows
