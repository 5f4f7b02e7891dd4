from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Path, status
from pydantic import Field

from shequn.compliance.rules import Profile
from shequn.compliance.service import compliance_report
from shequn.distribution.plans import build_plan_spec
from shequn.distribution.rules import (
    HARD_MAX_DEPTH,
    MAX_SCOPE_VALUE,
    PlanMode,
    Release,
    ScopeKind,
)
from shequn.entrypoints.api.http import API_PREFIX, Admin, Body, Reader, blocking
from shequn.entrypoints.api.shapes import FindingOut, Shape, limits
from shequn.entrypoints.rendering import findings_shown
from shequn.flows import plans
from shequn.money import MAX_AMOUNT_FEN

router = APIRouter(prefix=API_PREFIX, tags=["distribution"])

PLAN_ID = "The plan version's id (`plan_…`)."
RATE: dict[str, Any] = {"minimum": 0, "maximum": 10_000}
RATE_TEXT = "In basis points, 0 to 10000 (100 %; else 422 `rate_invalid`)."
AMOUNT: dict[str, Any] = {"minimum": 0, "maximum": MAX_AMOUNT_FEN}


# --- requests ------------------------------------------------------------------------------


class Scope(Body):
    kind: Literal["all", "ladder_role", "category", "product"] = Field(
        default="all", description="Which sale lines the level's rule applies to."
    )
    value: str | None = Field(
        default=None,
        description="The ladder role, category or SKU the rule is for; null exactly when "
        f"`kind` is `all`; 1 to {MAX_SCOPE_VALUE} characters (else 422 `rule_scope_invalid`). "
        "A more specific rule of a level beats a broader one.",
        json_schema_extra=limits(minLength=1, maxLength=MAX_SCOPE_VALUE),
    )


class LevelIn(Body):
    level: int = Field(
        description=f"1: the member who made the sale; up to {HARD_MAX_DEPTH}, and at most the "
        "plan's `depth` (else 422 `rule_level_invalid`, `plan_depth_exceeded`, "
        "`rule_level_beyond_depth`).",
        json_schema_extra=limits(minimum=1, maximum=HARD_MAX_DEPTH),
    )
    rate_bp: int = Field(
        default=0,
        description="Of what the buyer paid. " + RATE_TEXT,
        json_schema_extra=limits(**RATE),
    )
    fixed_fen: int = Field(
        default=0,
        description="A fixed amount per unit sold, in fen (else 422 `amount_invalid`).",
        json_schema_extra=limits(**AMOUNT),
    )
    scope: Scope | None = Field(default=None, description="All sale lines when absent.")
    tiers: list[str] | None = Field(
        default=None,
        description="Only members of these tiers earn at this level (`tier_…`); anyone when null.",
    )


class TierRateIn(Body):
    tier_id: str = Field(description="The tier (`tier_…`), once (else 422 `tier_rate_duplicate`).")
    rate_bp: int = Field(
        description="What a member of the tier earns on a sale below it, less what members "
        "further down already earn (级差). " + RATE_TEXT,
        json_schema_extra=limits(**RATE),
    )


class PlanCreate(Body):
    mode: Literal["levels", "differential"] = Field(
        description="`levels`: a rate per level (`levels`); `differential` (级差): a rate per "
        "tier (`tier_rates`)."
    )
    name: str | None = Field(
        default=None, description="A name for people; its first 80 characters are kept."
    )
    depth: int | None = Field(
        default=None,
        description=f"How many referrers up a sale pays, 1 to {HARD_MAX_DEPTH} (else 422 "
        "`plan_depth_invalid`, `plan_depth_exceeded`); by default the deepest level given "
        "(2 for `differential`).",
        json_schema_extra=limits(minimum=1, maximum=HARD_MAX_DEPTH),
    )
    levels: list[LevelIn] = Field(
        default_factory=list,
        description="With `levels` (at least one; else 422 `plan_levels_required`): each "
        "level, scope at most once (else 422 `rule_duplicate`).",
    )
    tier_rates: list[TierRateIn] = Field(
        default_factory=list,
        description="With `differential` only (at least one; else 422 `plan_tier_rates_required`).",
    )
    peer_bonus_bp: int = Field(
        default=0,
        description="平级奖: paid to an upline whose tier a downline reached. " + RATE_TEXT,
        json_schema_extra=limits(**RATE),
    )
    signup_reward_fen: int = Field(
        default=0,
        description="A reward for recruiting, in fen: a blocking compliance finding when not 0 "
        "(else 422 `amount_invalid`).",
        json_schema_extra=limits(**AMOUNT),
    )
    qualification_sku: str | None = Field(
        default=None,
        description="A product one must buy to earn: an entry fee, a compliance finding.",
    )
    team_volume_bonus_bp: int = Field(
        default=0,
        description="A bonus on the whole team's sales: a blocking compliance finding when "
        "not 0. " + RATE_TEXT,
        json_schema_extra=limits(**RATE),
    )
    release: Literal["on_close", "on_payment"] = Field(
        default="on_close",
        description="When commissions become available: `on_close` (after the after-sales "
        "window); `on_payment` is a blocking compliance finding.",
    )


# --- answers -------------------------------------------------------------------------------


class ScopeOut(Shape):
    kind: ScopeKind
    value: str | None


class LevelOut(Shape):
    level: int
    rate_bp: int
    fixed_fen: int
    scope: ScopeOut
    tiers: list[str] | None


class TierRateOut(Shape):
    tier_id: str
    rate_bp: int


class PlanOut(Shape):
    """A commission plan version (never changed once written) with its compliance findings
    under the tenant's current profile."""

    id: str
    version: int = Field(description="1 for the tenant's first plan, then counting up.")
    name: str
    mode: PlanMode
    depth: int
    status: Literal["draft", "active", "retired"] = Field(
        description="One plan at most is `active`; activating another retires it."
    )
    levels: list[LevelOut]
    tier_rates: list[TierRateOut]
    peer_bonus_bp: int
    signup_reward_fen: int
    qualification_sku: str | None
    team_volume_bonus_bp: int
    release: Release
    nominal_total_bp: int = Field(
        description="The most the plan pays on one sale in rate terms (fixed amounts aside)."
    )
    created_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None
    findings: list[FindingOut] = Field(description="Blocking ones first.")


class LiveFiguresOut(Shape):
    """What the tenant's data shows."""

    deepest_earning_level: int = Field(description="The deepest level any commission pays.")
    deepest_referral_levels: int = Field(description="Members in the longest referral chain.")
    members_in_chains_of_3_plus: int = Field(
        description="Members in referral chains of three levels or more."
    )
    member_income_fen: int = Field(description="Everything members earned, in fen.")
    recruitment_income_fen: int = Field(description="Of it, for recruiting, in fen.")
    recruitment_income_share_bp: int = Field(description="That share, in basis points.")


class ReportRowOut(Shape):
    """One figure of the live data, measured against the law."""

    figure: Literal[
        "deepest_earning_chain",
        "members_in_chains_of_3_plus",
        "recruitment_income_share",
        "stock_entry_condition",
    ]
    value: int = Field(
        description="Levels, members, basis points of income, or fen of the first stock order."
    )
    state: Literal["ok", "warn", "block"] = Field(
        description="`ok`: within the law; `warn`: close to it; `block`: beyond it."
    )
    message: str = Field(description="What the row says, in the request's language.")
    citation: str = Field(description="The law it is measured against, in that language.")
    params: dict[str, int] = Field(description="The figures the message names (fen, bp, counts).")


class ComplianceReportOut(Shape):
    profile: Profile = Field(description="The tenant's compliance profile.")
    active_plan_id: str | None
    cap_bp: int = Field(description="The most any sale may pay in total, in basis points.")
    findings: list[FindingOut] = Field(
        description="The active plan's findings, then those the live data raise."
    )
    live: LiveFiguresOut
    live_rows: list[ReportRowOut] = Field(
        description="The live report: the deepest earning chain, the people in chains of "
        "three levels or more, the share of income tied to recruitment-linked rewards and a "
        "stock purchase made the condition of agency, each with its state and citation."
    )


# --- routes --------------------------------------------------------------------------------


@router.post("/commission-plans", status_code=status.HTTP_201_CREATED, response_model=PlanOut)
@blocking
def create_plan(ctx: Admin, body: PlanCreate) -> dict[str, Any]:
    """Write a new commission plan version

    As a draft, with the compliance findings the tenant's profile raises against it; a draft
    with a blocking finding can never be activated."""
    data = body.model_dump()
    name = data.pop("name")
    spec = build_plan_spec(**data)
    return findings_shown(plans.create_plan(ctx, spec=spec, name=name))


@router.get("/commission-plans", response_model=list[PlanOut])
@blocking
def list_plans(ctx: Reader) -> list[dict[str, Any]]:
    """List every commission plan version

    Oldest first, each with its findings under the current profile."""
    return [findings_shown(plan) for plan in plans.list_plans(ctx)]


@router.get("/commission-plans/{plan_id}", response_model=PlanOut)
@blocking
def get_plan(ctx: Reader, plan_id: str = Path(description=PLAN_ID)) -> dict[str, Any]:
    """Read a commission plan version

    With its compliance findings under the tenant's current profile."""
    return findings_shown(plans.get_plan(ctx, plan_id=plan_id))


@router.post("/commission-plans/{plan_id}/activate", response_model=PlanOut)
@blocking
def activate_plan(ctx: Admin, plan_id: str = Path(description=PLAN_ID)) -> dict[str, Any]:
    """Make a plan version the active one

    Sales paid from now on earn under it; the plan active before is retired. A plan with a
    blocking finding is refused (409 `plan_blocked`, with the findings)."""
    return findings_shown(plans.activate_plan(ctx, plan_id=plan_id))


@router.get("/compliance/report", response_model=ComplianceReportOut)
@blocking
def report(ctx: Reader) -> dict[str, Any]:
    """Report on compliance

    The active plan's findings under the tenant's profile, and what the live data show
    (how deep commissions are paid, how many members are in long chains, how much is earned
    by recruiting)."""
    return findings_shown(compliance_report(ctx))
