"""Tiers: how each is reached (a criteria tree) and kept (demotion), what it gives (its
privileges); a member's evaluation on request and its tier history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, status
from pydantic import Field

from shequn.entrypoints.api.http import API_PREFIX, Admin, Body, Reader, Writer, blocking
from shequn.entrypoints.api.shapes import FindingOut, Shape, cursor, limits, page_limit, text_limits
from shequn.entrypoints.rendering import findings_shown
from shequn.flows import plans_simulation as simulation
from shequn.flows import tiers as service
from shequn.flows import tiers_evaluation as evaluation
from shequn.insights import repurchase
from shequn.money import MAX_AMOUNT_FEN
from shequn.tiers.rules import (
    MAX_CHILDREN,
    MAX_COUNT,
    MAX_DISCOUNT_BP,
    MAX_HOLD_DAYS,
    MAX_POINTS_MULTIPLIER_BP,
    MAX_SERVICE_TAG,
    MAX_SERVICE_TAGS,
    MAX_SKU,
    MAX_WINDOW_DAYS,
    MIN_BUFFER_BP,
)

router = APIRouter(prefix=API_PREFIX, tags=["tiers"])

MEMBER_ID = "The member's id (`mem_…`)."
WINDOW = Field(
    default=None,
    description="Only what happened in the last so many days counts (1 to 3650); null: all time.",
    json_schema_extra=limits(minimum=1, maximum=MAX_WINDOW_DAYS),
)
MIN_FEN = limits(minimum=1, maximum=MAX_AMOUNT_FEN)
MIN_COUNT = limits(minimum=1, maximum=MAX_COUNT)
KIND = "What the criterion tests (the discriminator of the criteria shapes)."
OF = Field(
    description="The criteria of the group (1 to 16).",
    json_schema_extra=limits(minItems=1, maxItems=MAX_CHILDREN),
)
FEN_AT_LEAST = Field(description="The threshold, in fen (1 to 10^13).", json_schema_extra=MIN_FEN)
COUNT_AT_LEAST = Field(
    description="The threshold, a count (1 to 10 000 000).", json_schema_extra=MIN_COUNT
)


# --- criteria (the same shape in and out) -----------------------------------------------------


class AllOf(Body):
    """Met when every criterion in `of` is."""

    kind: Literal["all_of"] = Field(description=KIND)
    of: list[Criterion] = OF


class AnyOf(Body):
    """Met when one criterion in `of` is."""

    kind: Literal["any_of"] = Field(description=KIND)
    of: list[Criterion] = OF


class Spend(Body):
    """Paid, less refunds, over the window: at least `min_fen`."""

    kind: Literal["spend"] = Field(description=KIND)
    min_fen: int = FEN_AT_LEAST
    window_days: int | None = WINDOW


class SingleOrder(Body):
    """One order of at least `min_fen` (paid, less its refunds) within the window."""

    kind: Literal["single_order"] = Field(description=KIND)
    min_fen: int = FEN_AT_LEAST
    window_days: int | None = WINDOW


class Bought(Body):
    """The product `sku` bought (a line not fully refunded) within the window."""

    kind: Literal["bought"] = Field(description=KIND)
    sku: str = Field(
        description="A product of the catalog (else 404 `product_not_found`).",
        json_schema_extra=limits(minLength=1, maxLength=MAX_SKU),
    )
    window_days: int | None = WINDOW


class DirectCustomers(Body):
    """At least `min_count` members it referred itself with a paid order kept. A headcount:
    under the `wechat` and `direct` profiles a tier that earns commission may not be raised by
    it (compliance finding `headcount_upgrade`)."""

    kind: Literal["direct_customers"] = Field(description=KIND)
    min_count: int = COUNT_AT_LEAST


class TeamSize(Body):
    """At least `min_count` members below it in the referral tree, at any depth (a headcount,
    as `direct_customers`)."""

    kind: Literal["team_size"] = Field(description=KIND)
    min_count: int = COUNT_AT_LEAST


class Fact(Body):
    """At least `min_count` events of `event_type` about the member (its subject) within the
    window: a participation fact such as `ChallengeCompleted` or `EventAttended`."""

    kind: Literal["fact"] = Field(description=KIND)
    event_type: str = Field(
        description="The type of the events counted (`ChallengeCompleted`, `EventAttended`, "
        "`StageReached`…: any name the event log holds, 1 to 64 letters and digits from a "
        "capital).",
        json_schema_extra=limits(pattern=r"^[A-Z][A-Za-z0-9]{0,63}$"),
    )
    min_count: int = Field(
        default=1,
        description="The threshold, a count of events (1 unless given).",
        json_schema_extra=MIN_COUNT,
    )
    window_days: int | None = WINDOW


Criterion = Annotated[
    AllOf | AnyOf | Spend | SingleOrder | Bought | DirectCustomers | TeamSize | Fact,
    Field(discriminator="kind"),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()

CRITERIA_TEXT = (
    "How the tier is reached: a tree of `all_of` / `any_of` groups (at most 4 deep, 16 items "
    "each, 32 criteria in all) over criteria. A member is moved up to the highest tier whose "
    "tree its facts meet, when a payment could meet it and in the nightly evaluation. Null: "
    "assigned by hand only. An invalid tree: 422 `tier_criterion_invalid` naming the field; a "
    "product that does not exist: 404 `product_not_found`."
)


class Privileges(Body):
    discount_bp: int = Field(
        default=0,
        description="Member-price discount on products without an explicit member price, in "
        "bp (0 to 9000, else 422 `tier_discount_invalid`).",
        json_schema_extra=limits(minimum=0, maximum=MAX_DISCOUNT_BP),
    )
    points_multiplier_bp: int = Field(
        default=10_000,
        description="Points earned per point a purchase earns, in bp (10000 = 1×; 0 to "
        "100000, else 422 `tier_points_multiplier_invalid`).",
        json_schema_extra=limits(minimum=0, maximum=MAX_POINTS_MULTIPLIER_BP),
    )
    may_distribute: bool = Field(default=False, description="May earn commission as an upline.")
    service_tags: list[str] = Field(
        default_factory=list,
        description="Service the tier is entitled to (专属客服, 优先发货…): at most 10, each 1 "
        "to 20 characters (else 422 `tier_service_tags_invalid`).",
        json_schema_extra=limits(
            maxItems=MAX_SERVICE_TAGS, items={"type": "string", **text_limits(MAX_SERVICE_TAG)}
        ),
    )


class PrivilegesPatch(Body):
    discount_bp: int | None = Field(
        default=None,
        description="As in `POST /tiers`; left out: unchanged (null: 422 `field_required`).",
        json_schema_extra=limits(minimum=0, maximum=MAX_DISCOUNT_BP),
    )
    points_multiplier_bp: int | None = Field(
        default=None,
        description="As in `POST /tiers`; left out: unchanged.",
        json_schema_extra=limits(minimum=0, maximum=MAX_POINTS_MULTIPLIER_BP),
    )
    may_distribute: bool | None = Field(
        default=None, description="As in `POST /tiers`; left out: unchanged."
    )
    service_tags: list[str] | None = Field(
        default=None,
        description="As in `POST /tiers` (the whole list); left out: unchanged.",
        json_schema_extra=limits(maxItems=MAX_SERVICE_TAGS),
    )


class Demotion(Body):
    mode: Literal["never", "windowed"] = Field(
        description="`never`: a tier once reached is kept. `windowed`: the nightly evaluation "
        "re-checks the tree with every threshold lowered to `buffer_bp` of itself, once the "
        "member has held the tier `hold_days`; a member no longer meeting it goes down to the "
        "highest tier below it still met (or none). The tree needs a criterion that can lapse "
        "(a window, spend, a headcount), else 422 `tier_demotion_needs_window`."
    )
    buffer_bp: int | None = Field(
        default=None,
        description="5000 to 10000; 9000 (90 %) unless given.",
        json_schema_extra=limits(minimum=MIN_BUFFER_BP, maximum=10_000),
    )
    hold_days: int | None = Field(
        default=None,
        description="0 to 3650; 0 unless given.",
        json_schema_extra=limits(minimum=0, maximum=MAX_HOLD_DAYS),
    )


class TierCreate(Body):
    name: str = Field(
        description="1 to 40 characters once spaces are collapsed (else 422 "
        "`tier_name_invalid`); unique in the tenant (else 409 `tier_exists`).",
        json_schema_extra=limits(**text_limits(40)),
    )
    rank: int = Field(
        description="0 to 1000, higher is more senior; unique in the tenant.",
        json_schema_extra=limits(minimum=0, maximum=1000),
    )
    criteria: Criterion | None = Field(default=None, description=CRITERIA_TEXT)
    privileges: Privileges | None = Field(
        default=None, description="What holding the tier gives; left out: none."
    )
    demotion: Demotion | None = Field(
        default=None, description="How the tier is kept; left out: never demoted."
    )


class TierUpdate(Body):
    name: str | None = Field(
        default=None,
        description="As in `POST /tiers`; left out: unchanged.",
        json_schema_extra=limits(**text_limits(40)),
    )
    rank: int | None = Field(
        default=None,
        description="As in `POST /tiers`; left out: unchanged.",
        json_schema_extra=limits(minimum=0, maximum=1000),
    )
    criteria: Criterion | None = Field(
        default=None, description=CRITERIA_TEXT + " Sent as null, it clears the tree."
    )
    privileges: PrivilegesPatch | None = Field(
        default=None, description="The privileges to change; those left out stay."
    )
    demotion: Demotion | None = Field(
        default=None,
        description="How the tier is kept from now on (checked against the tree it will have).",
    )


# --- answers ---------------------------------------------------------------------------------


class PrivilegesOut(Shape):
    discount_bp: int
    points_multiplier_bp: int
    may_distribute: bool
    service_tags: list[str]


class DemotionOut(Shape):
    mode: Literal["never", "windowed"]
    buffer_bp: int | None = Field(description="Null when the tier is never demoted.")
    hold_days: int | None = Field(description="Null when the tier is never demoted.")


class TierOut(Shape):
    id: str
    name: str
    rank: int
    criteria: Criterion | None = Field(description="Null: assigned by hand only.")
    privileges: PrivilegesOut
    demotion: DemotionOut
    created_at: datetime
    member_count: int = Field(description="Members holding the tier now.")


class ExplainedCriterion(Shape):
    """A criterion of a tree as the member's facts met it: its fields as written, and for a
    single criterion the member's `value` and the `threshold` it was held to."""

    kind: Literal[
        "all_of",
        "any_of",
        "spend",
        "single_order",
        "bought",
        "direct_customers",
        "team_size",
        "fact",
    ]
    met: bool
    of: list[ExplainedCriterion] | None = Field(default=None, description="A group's criteria.")
    min_fen: int | None = None
    min_count: int | None = None
    sku: str | None = None
    event_type: str | None = None
    window_days: int | None = None
    value: int | None = Field(default=None, description="The member's fact (fen, or a count).")
    threshold: int | None = Field(
        default=None, description="What it had to reach (lowered by the buffer on a demotion)."
    )


class TierCauseOut(Shape):
    tier_id: str = Field(description="The tier reached (an upgrade) or lost (a demotion).")
    criteria: ExplainedCriterion
    buffer_bp: int | None = Field(default=None, description="A demotion's buffer.")
    held_since: datetime | None = Field(
        default=None, description="A demotion: since when the member held the tier lost."
    )


class TierChangeOut(Shape):
    from_tier_id: str | None
    to_tier_id: str | None = Field(description="Null: no tier (a demotion from the lowest).")
    reason: Literal["upgrade", "demotion", "manual"]
    source: Literal["payment", "evaluation", "batch", "fact", "manual"]
    cause: TierCauseOut | None = Field(
        description="The tree of the tier reached (an upgrade) or lost (a demotion, re-checked "
        "within its buffer), each criterion with the member's `value`, its `threshold` and "
        "whether it was `met`; null for a change by hand."
    )


class TierStandingOut(Shape):
    tier_id: str
    name: str
    rank: int
    met: bool = Field(description="Whether the member's facts meet the tier's tree now.")
    criteria: ExplainedCriterion = Field(
        description="The tree with the member's `value`, the `threshold` and `met` on each "
        "criterion."
    )


class EvaluationOut(Shape):
    member_id: str
    previous_tier_id: str | None
    tier_id: str | None
    changed: bool
    change: TierChangeOut | None
    tiers: list[TierStandingOut] = Field(description="Every tier with criteria, lowest first.")
    evaluated_at: datetime


class TierHistoryItem(TierChangeOut):
    id: str = Field(description="The `MemberTierChanged` event (`evt_…`).")
    at: datetime
    from_tier: str | None = Field(description="The tier's name now (null: none, or deleted).")
    to_tier: str | None
    actor: str


class TierHistoryOut(Shape):
    member_id: str
    items: list[TierHistoryItem]
    next_after: str | None


# --- routes ----------------------------------------------------------------------------------


def _fields(body: TierCreate | TierUpdate) -> dict[str, Any]:
    """The body as the use case's keyword arguments: privileges flattened, the tree and the
    demotion as JSON."""
    data = body.model_dump(exclude_unset=True)
    privileges = data.pop("privileges", None) or {}
    return {**data, **privileges}


@router.post("/tiers", status_code=status.HTTP_201_CREATED, response_model=TierOut)
@blocking
def create_tier(ctx: Admin, body: TierCreate) -> dict[str, Any]:
    """Add a tier: its rank, criteria tree, privileges and demotion."""
    return service.create_tier(ctx, **_fields(body))


@router.get("/tiers", response_model=list[TierOut])
@blocking
def list_tiers(ctx: Reader) -> list[dict[str, Any]]:
    """The tenant's tiers, lowest rank first, with how many members hold each."""
    return service.list_tiers(ctx)


@router.patch("/tiers/{tier_id}", response_model=TierOut)
@blocking
def update_tier(
    ctx: Admin,
    tier_id: Annotated[str, Path(description="The tier's id (`tier_…`).")],
    body: TierUpdate,
) -> dict[str, Any]:
    """Change a tier; fields not sent stay as they are (the tree is cleared with null)."""
    return service.update_tier(ctx, tier_id=tier_id, **_fields(body))


@router.post("/members/{member_id}/tier-evaluation", response_model=EvaluationOut)
@blocking
def evaluate_member(
    ctx: Writer, member_id: Annotated[str, Path(description=MEMBER_ID)]
) -> dict[str, Any]:
    """Evaluate a member's tier now, as the nightly evaluation does, and record any change."""
    return evaluation.evaluate_member(ctx, member_id=member_id)


@router.get("/members/{member_id}/tier-history", response_model=TierHistoryOut)
@blocking
def tier_history(
    ctx: Reader,
    member_id: Annotated[str, Path(description=MEMBER_ID)],
    after: str | None = Query(
        default=None,
        description="The `next_after` of the page before (an `evt_…` id).",
        json_schema_extra=cursor("evt"),
    ),
    limit: int = Query(
        default=50,
        description="At most this many changes (1 to 200).",
        json_schema_extra=page_limit(evaluation.MAX_PAGE),
    ),
) -> dict[str, Any]:
    """Every change of the member's tier, oldest first, with the facts that caused it."""
    return evaluation.tier_history(ctx, member_id=member_id, after=after, limit=limit)


class FactIn(Body):
    event_type: str = Field(
        description="The fact's name, as a tier's `fact` criterion names it "
        "(`ChallengeCompleted`, `EventAttended`, `StageReached`…): 1 to 64 letters and digits "
        "from a capital (else 422 `fact_type_invalid`), not one of the system's own event "
        "types (else 422 `fact_type_reserved`).",
        json_schema_extra=limits(pattern=r"^[A-Z][A-Za-z0-9]{0,63}$"),
    )
    note: str | None = Field(
        default=None,
        description="What it was (`21 天打卡`), 1 to 200 characters once spaces are collapsed "
        "(else 422 `fact_note_invalid`).",
        json_schema_extra=limits(**text_limits(evaluation.MAX_FACT_NOTE)),
    )


class FactOut(Shape):
    member_id: str
    event_type: str
    recorded_at: datetime
    previous_tier_id: str | None
    tier_id: str | None = Field(description="The member's tier after the fact.")
    changed: bool
    change: TierChangeOut | None = Field(description="The upgrade the fact caused, if any.")


@router.post(
    "/members/{member_id}/facts", status_code=status.HTTP_201_CREATED, response_model=FactOut
)
@blocking
def record_fact(
    ctx: Writer, member_id: Annotated[str, Path(description=MEMBER_ID)], body: FactIn
) -> dict[str, Any]:
    """Record a participation fact about a member

    A challenge completed, an event attended, a growth stage reached: the fact goes to the
    event log about the member, and the member moves up at once to the tiers whose `fact`
    criteria it now meets, the change recorded with its cause (its tier history)."""
    return evaluation.record_fact(
        ctx, member_id=member_id, event_type=body.event_type, note=body.note
    )


# --- what a plan would pay -------------------------------------------------------------------

plans_router = APIRouter(prefix=API_PREFIX, tags=["distribution"])


class DescribedLine(Body):
    sku: str = Field(
        description="A product of the catalog (else 404 `product_not_found`).",
        json_schema_extra=limits(minLength=1, maxLength=MAX_SKU),
    )
    quantity: int = Field(
        description="1 to 10 000.", json_schema_extra=limits(minimum=1, maximum=10_000)
    )
    paid_fen: int | None = Field(
        default=None,
        description="What the buyer would pay for the line, in fen; null: the buyer's tier "
        "price now, times the quantity.",
        json_schema_extra=limits(minimum=0, maximum=MAX_AMOUNT_FEN),
    )


class DescribedOrder(Body):
    buyer_id: str = Field(description="A member (`mem_…`); its chain and tier as they are now.")
    lines: list[DescribedLine] = Field(
        description="1 to 50 lines.", json_schema_extra=limits(minItems=1, maxItems=50)
    )


class SimulationIn(Body):
    from_: str | None = Field(
        default=None,
        alias="from",
        description="Start of the period: a date (`2026-01-01`) or an ISO time; local to the "
        "tenant's time zone without an offset.",
        max_length=40,
    )
    to: str | None = Field(
        default=None,
        description="End of the period: a date (included) or an ISO time (excluded). At most "
        "366 days after `from` (else 422 `period_invalid`; a text neither a date nor a "
        "time: 422 `period_unreadable`).",
        max_length=40,
    )
    orders: list[DescribedOrder] | None = Field(
        default=None,
        description="Instead of a period, orders to imagine (1 to 1000), paid now: replayed "
        "in the order given.",
        json_schema_extra=limits(minItems=1, maxItems=1_000),
    )
    limit: int = Field(
        default=500,
        description="How many lines to show (1 to 5000); the totals count them all.",
        json_schema_extra=page_limit(5_000),
    )


class SimulatedRuleOut(Shape):
    kind: Literal["level", "differential", "peer_bonus"]
    tier_id: str | None = Field(description="The beneficiary's tier when the order was paid.")
    scope_kind: str | None = Field(default=None, description="A level: the rule's scope.")
    scope_value: str | None = Field(default=None, description="A level: what it scopes.")
    fixed_fen: int | None = Field(default=None, description="A level: the fixed fen per unit.")
    tier_rate_bp: int | None = Field(default=None, description="A differential: the tier's rate.")
    below_rate_bp: int | None = Field(
        default=None, description="A differential: the rate already paid below."
    )


class SimulatedLineOut(Shape):
    order_index: int = Field(description="The order's place in the replay, from 0.")
    order_id: str | None = Field(description="Null for an order described in the request.")
    order_line_id: str | None
    sku: str
    buyer_id: str
    beneficiary_id: str
    level: int = Field(description="1: the member who made the sale; 2 and 3: its referrers.")
    kind: Literal["level", "differential", "peer_bonus"]
    rule: SimulatedRuleOut = Field(
        description="Why: the plan rule's scope (`scope_kind`, `scope_value`, `fixed_fen`) for "
        "a level; the tier's rate and the rate already paid below for a differential; the "
        "beneficiary's tier then (`tier_id`)."
    )
    rate_bp: int
    base_fen: int = Field(description="What the buyer paid for the line, in fen.")
    amount_fen: int = Field(description="What the line would pay at payment, in fen.")
    net_fen: int = Field(description="What it would be worth after the line's refunds.")
    capped: bool = Field(description="Cut by the profile's cap on one sale's commission.")


class SimulatedMemberOut(Shape):
    member_id: str
    name: str
    total_fen: int = Field(description="What the plan would pay the member, in fen.")
    active_fen: int = Field(description="What the active plan pays on the same orders.")
    difference_fen: int
    lines: int


class AgainstActiveOut(Shape):
    plan_id: str | None = Field(description="The active plan (null: none, which pays nothing).")
    total_fen: int
    cost_bp_of_gmv: int
    difference_fen: int = Field(description="This plan's total less the active plan's.")
    difference_bp: int


class SimulationOut(Shape):
    plan_id: str
    source: Literal["paid_orders", "described"]
    from_: datetime | None = Field(alias="from", serialization_alias="from")
    to: datetime | None
    orders: int
    gmv_fen: int = Field(description="What the orders were paid, in fen.")
    total_fen: int = Field(description="What the plan would pay on them, in fen.")
    net_fen: int = Field(description="The same after the refunds the orders had since.")
    cost_bp_of_gmv: int = Field(description="`total_fen` as basis points of `gmv_fen`.")
    deepest_level: int
    lines: list[SimulatedLineOut]
    lines_total: int
    members: list[SimulatedMemberOut] = Field(description="Most paid first (at most 500).")
    findings: list[FindingOut] = Field(description="The plan's compliance findings.")
    against_active: AgainstActiveOut


@plans_router.post("/commission-plans/{plan_id}/simulate", response_model=SimulationOut)
@blocking
def simulate_plan(
    ctx: Reader,
    plan_id: Annotated[str, Path(description="The plan version (`plan_…`), a draft or any.")],
    body: SimulationIn,
) -> dict[str, Any]:
    """What the plan (a draft or any version) would pay on a period's orders, line by line."""
    described = None if body.orders is None else [o.model_dump() for o in body.orders]
    return findings_shown(
        simulation.simulate_plan(
            ctx,
            plan_id=plan_id,
            start=body.from_,
            end=body.to,
            orders_described=described,
            limit=body.limit,
        )
    )


# --- repurchase (追销) ----------------------------------------------------------------------

repurchase_router = APIRouter(prefix=API_PREFIX, tags=["repurchase"])


class IntervalIn(Body):
    interval_days: int | None = Field(
        description="Days after a purchase when its buyer should buy again (1 to 3650); "
        "null: learned from the tenant's orders (the median gap between a member's orders of "
        "the product, once there are 3 gaps).",
        json_schema_extra=limits(minimum=1, maximum=repurchase.MAX_INTERVAL_DAYS),
    )
    window_days: int | None = Field(
        default=None,
        description="Days after a reminder within which the member's next order of the "
        "product counts as a reminded repurchase (1 to 365; 14 unless given).",
        json_schema_extra=limits(minimum=1, maximum=repurchase.MAX_WINDOW_DAYS),
    )


class IntervalOut(Shape):
    sku: str
    interval_days: int | None = Field(description="The interval used (null: none yet).")
    source: Literal["set", "learned"] | None
    set_days: int | None
    learned_days: int | None
    gaps: int = Field(description="Gaps between successive orders the median was taken of.")
    window_days: int


class DueOut(Shape):
    member_id: str
    name: str
    sku: str
    product_name: str
    last_paid_at: datetime
    interval_days: int
    due_at: datetime
    days_overdue: int
    reminded_at: datetime | None = Field(description="When this purchase's reminder was sent.")


class DuePageOut(Shape):
    items: list[DueOut] = Field(description="In member order, each member's products together.")
    next_after: str | None = Field(description="Pass it as `after` for the next members.")


class RemindersIn(Body):
    sku: str | None = Field(
        default=None,
        description="Only the members due to buy this product again; left out: every product.",
        json_schema_extra=limits(minLength=1, maxLength=MAX_SKU),
    )
    limit: int = Field(
        default=1_000,
        description="At most this many reminders (1 to 5000).",
        json_schema_extra=limits(minimum=1, maximum=repurchase.MAX_REMINDERS),
    )


class RemindersOut(Shape):
    reminded: int = Field(description="Reminders recorded now (none twice for one purchase).")
    queued: int = Field(description="Tasks queued in the outbox for the members' staff accounts.")


class ChannelOut(Shape):
    channel: Literal["reminded_repurchase", "repurchase", "referral", "other"]
    orders: int
    revenue_fen: int
    share_bp: int


class RevenueMixOut(Shape):
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    orders: int
    revenue_fen: int = Field(description="Paid less refunded, in fen.")
    channels: list[ChannelOut] = Field(
        description="A member's first order by referral (bound to a referrer, or a sharer "
        "attributed) or `other` (ads, walk-ins); a later one a `repurchase`, "
        "`reminded_repurchase` when it is the next order of a reminded product within the "
        "reminder's window."
    )


@repurchase_router.get("/repurchase-intervals", response_model=list[IntervalOut])
@blocking
def list_intervals(ctx: Reader) -> list[dict[str, Any]]:
    """Each active product's repurchase interval (set or learned) and reminder window."""
    return repurchase.list_intervals(ctx)


@repurchase_router.put("/repurchase-intervals/{sku}", response_model=IntervalOut)
@blocking
def set_interval(
    ctx: Admin,
    sku: Annotated[str, Path(description="The product (else 404 `product_not_found`).")],
    body: IntervalIn,
) -> dict[str, Any]:
    """Set a product's repurchase interval (null: learn it) and its reminder window."""
    return repurchase.set_interval(
        ctx, sku=sku, interval_days=body.interval_days, window_days=body.window_days
    )


@repurchase_router.get("/repurchase-due", response_model=DuePageOut)
@blocking
def repurchase_due(
    ctx: Reader,
    sku: str | None = Query(
        default=None, description="Only this product; left out: every one.", max_length=MAX_SKU
    ),
    after: str | None = Query(
        default=None,
        description="The `next_after` of the page before (a `mem_…` id).",
        json_schema_extra=cursor("mem"),
    ),
    limit: int = Query(
        default=100,
        description="At most this many members (1 to 500).",
        json_schema_extra=page_limit(repurchase.MAX_PAGE),
    ),
) -> dict[str, Any]:
    """Members past a product's repurchase interval, with the product and days overdue."""
    return repurchase.due_page(ctx, sku=sku, after=after, limit=limit)


@repurchase_router.post("/repurchase-reminders", response_model=RemindersOut)
@blocking
def send_reminders(ctx: Writer, body: RemindersIn) -> dict[str, Any]:
    """Remind the due members not yet reminded, through their staff account's outbox."""
    return repurchase.send_reminders(ctx, sku=body.sku, limit=body.limit)


@repurchase_router.get("/insights/revenue-mix", response_model=RevenueMixOut)
@blocking
def revenue_mix(
    ctx: Reader,
    start: str = Query(
        alias="from",
        description="Start: a date (`2026-01-01`) or an ISO time, local to the tenant's time "
        "zone without an offset.",
        max_length=40,
    ),
    end: str = Query(
        alias="to",
        description="End: a date (included) or an ISO time (excluded); at most 3660 days "
        "after `from` (else 422 `period_invalid`).",
        max_length=40,
    ),
) -> dict[str, Any]:
    """Revenue by where it came from: referral, repurchase (reminded or not), other."""
    return repurchase.revenue_mix(ctx, start=start, end=end)
