"""Growth: share links with their QR codes and posters (and the public redirect of a short
link), channel codes, growth settings, sharing programs and their rewards, coupons."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from pydantic import AwareDatetime, Field
from starlette.concurrency import run_in_threadpool

from shequn.entrypoints.api.http import (
    API_PREFIX,
    Admin,
    Body,
    Reader,
    Writer,
    app_state,
    blocking,
    run_use_case,
)
from shequn.entrypoints.api.members import MemberOut
from shequn.entrypoints.api.shapes import (
    ErrorOut,
    Page,
    Shape,
    cursor,
    limits,
    page_limit,
    text_limits,
)
from shequn.flows.growth_links import register_through_code
from shequn.growth.coupons import service as coupons
from shequn.growth.links import service as links
from shequn.growth.links.rules import STATE_MAX
from shequn.growth.settings import service as growth_settings
from shequn.growth.sharing import service as sharing
from shequn.money import MAX_AMOUNT_FEN

router = APIRouter(prefix=API_PREFIX, tags=["growth"])
public = APIRouter(tags=["growth"])

# A time in a request body: ISO 8601 with its offset (request bodies are strict otherwise).
Moment = Annotated[AwareDatetime, Field(strict=False)]

MEMBER_ID = "The member's id (`mem_…`)."
CODE = "The share link's code."
VISITOR_COOKIE = "sq_visitor"
TargetType = Literal["product", "page", "event", "community"]
RewardKind = Literal["cashback", "fixed", "coupon", "points", "tier_upgrade"]
CouponStatus = Literal["available", "used", "expired", "void"]


def _bases(request: Request) -> tuple[str, str]:
    base = str(request.base_url)
    return base, base.rstrip("/") + API_PREFIX


# --- share links ---------------------------------------------------------------------------


class ShareLinkIn(Body):
    member_id: str = Field(description="The sharing member (`mem_…`); any member may share.")
    target_type: TargetType = Field(
        description="What the link leads to; the tenant's `share_url_templates` says where."
    )
    target_id: str | None = Field(
        default=None,
        description="The product's SKU, the page's, event's id; none for `community` (else "
        "422 `share_target_id_required`, `share_target_id_invalid`).",
        json_schema_extra=limits(minLength=1, maxLength=64),
    )
    state: str | None = Field(
        default=None,
        description=f"A channel code's state (staff account, poster, campaign), at most "
        f"{STATE_MAX} characters (else 422 `share_state_invalid`): every member who comes "
        "through the code records it.",
        json_schema_extra=limits(minLength=1, maxLength=STATE_MAX),
    )


class ShareLinkOut(Shape):
    code: str
    member_id: str
    target_type: TargetType
    target_id: str | None
    state: str | None = Field(description="The channel code's state, if any.")
    url: str = Field(description="The short link (`…/s/{code}`), public.")
    target_url: str | None = Field(
        description="Where the short link leads; null until the tenant sets a template."
    )
    qr_png_url: str
    qr_svg_url: str
    poster_url: str = Field(description="A PNG poster with the target's and sharer's names.")
    unique_visitors: int = Field(description="Visitors who followed the link, each once.")
    created_at: datetime


class ShareRegistrationIn(Body):
    name: str = Field(
        description="1 to 80 characters.", json_schema_extra=limits(**text_limits(80))
    )
    phone: str | None = Field(default=None, description="E.164 or a mainland mobile number.")
    external_id: str | None = Field(
        default=None,
        description="The shop's own id of the member (an OpenID).",
        json_schema_extra=limits(**text_limits(80)),
    )
    source: Literal["share_link", "qr_scene"] = Field(
        default="share_link", description="How the visitor came: the link or its QR code."
    )
    tags: list[str] | None = Field(default=None, description="Tags to start with.")


class ShareTouchIn(Body):
    member_id: str | None = Field(default=None, description="The visitor, if a member.")
    phone: str | None = Field(default=None, description="The visitor's phone, if known.")
    external_id: str | None = Field(default=None, description="The visitor's OpenID, if known.")
    source: Literal["share_link", "qr_scene"] = Field(
        default="share_link", description="How the visitor came."
    )


class ShareTouchOut(Shape):
    id: str
    sharer_id: str
    rebound_to: str | None = Field(description="The sharer, when the touch rebound the member.")
    code: str
    state: str | None


class ChannelOut(Shape):
    code: str
    sharer_id: str
    target_type: TargetType
    target_id: str | None
    state: str | None
    source: str
    touched_at: datetime


class MemberChannelOut(Shape):
    member_id: str
    channel: ChannelOut | None = Field(
        description="The first share code that touched the member; null if none did."
    )


class ChannelCountOut(Shape):
    state: str | None = Field(description="The channel state; null for plain share links.")
    members: int = Field(description="Members who came through a code with this state.")


@router.post(
    "/share-links",
    status_code=status.HTTP_201_CREATED,
    response_model=ShareLinkOut,
    responses={200: {"model": ShareLinkOut, "description": "The member's existing link."}},
)
@blocking
def create_share_link(
    ctx: Writer, body: ShareLinkIn, request: Request, response: Response
) -> dict[str, Any]:
    """Make a share link or channel code

    One code per member, target and state: asked again, it answers the same link (200). The
    answer names the short link, its QR code (PNG, SVG) and its poster."""
    base, api = _bases(request)
    link, created = links.create_share_link(
        ctx,
        member_id=body.member_id,
        target_type=body.target_type,
        target_id=body.target_id,
        state=body.state,
        base_url=base,
        api_base=api,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return link


@router.get("/share-links/{code}", response_model=ShareLinkOut)
@blocking
def get_share_link(
    ctx: Reader, request: Request, code: str = Path(description=CODE)
) -> dict[str, Any]:
    """Read a share link

    With its short link, images and the number of unique visitors."""
    base, api = _bases(request)
    return links.get_share_link(ctx, code=code, base_url=base, api_base=api)


@router.get("/members/{member_id}/share-links", response_model=list[ShareLinkOut])
@blocking
def list_share_links(
    ctx: Reader, request: Request, member_id: str = Path(description=MEMBER_ID)
) -> list[dict[str, Any]]:
    """List a member's share links

    Oldest first."""
    base, api = _bases(request)
    return links.list_share_links(ctx, member_id=member_id, base_url=base, api_base=api)


_PNG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "The image (PNG)."}
}
_SVG: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/svg+xml": {}}, "description": "The image (SVG)."}
}


@router.get("/share-links/{code}/qr.png", response_class=Response, responses=_PNG)
async def share_qr_png(
    ctx: Reader, request: Request, code: str = Path(description=CODE)
) -> Response:
    """Draw a share link's QR code as PNG

    The code encodes the short link."""
    url = await run_use_case(
        ctx.db, links.share_link_url, ctx, code=code, base_url=str(request.base_url)
    )
    data = await run_in_threadpool(links.draw_qr, url, "png")
    return Response(data, media_type="image/png")


@router.get("/share-links/{code}/qr.svg", response_class=Response, responses=_SVG)
async def share_qr_svg(
    ctx: Reader, request: Request, code: str = Path(description=CODE)
) -> Response:
    """Draw a share link's QR code as SVG

    The code encodes the short link."""
    url = await run_use_case(
        ctx.db, links.share_link_url, ctx, code=code, base_url=str(request.base_url)
    )
    data = await run_in_threadpool(links.draw_qr, url, "svg")
    return Response(data, media_type="image/svg+xml")


@router.get("/share-links/{code}/poster.png", response_class=Response, responses=_PNG)
async def share_poster(
    ctx: Reader, request: Request, code: str = Path(description=CODE)
) -> Response:
    """Draw a share link's poster

    750 × 1200 PNG: the target's name (a product's own), the sharer's name in Chinese or
    English, the QR code of the short link (409 `poster_font_missing` without a CJK font)."""
    parts = await run_use_case(
        ctx.db, links.poster_parts, ctx, code=code, base_url=str(request.base_url)
    )
    data = await run_in_threadpool(links.draw_poster, parts)  # drawing is CPU work
    return Response(data, media_type="image/png")


@router.post(
    "/share-links/{code}/members", status_code=status.HTTP_201_CREATED, response_model=MemberOut
)
@blocking
def register_through_share_link(
    ctx: Writer, body: ShareRegistrationIn, code: str = Path(description=CODE)
) -> dict[str, Any]:
    """Register a member who came through a share link

    The code's member is the referrer, the code the scene of the touch (which records the
    channel and its state); the tenant's binding policy decides the binding."""
    return register_through_code(ctx, code=code, **body.model_dump())


@router.post(
    "/share-links/{code}/touches", status_code=status.HTTP_201_CREATED, response_model=ShareTouchOut
)
@blocking
def touch_share_link(
    ctx: Writer, body: ShareTouchIn, code: str = Path(description=CODE)
) -> dict[str, Any]:
    """Record who came through a share link

    A referral touch of the code's member, counted by the binding policy within its
    attribution window (422 `touch_target_required` without a visitor)."""
    return links.record_share_touch(ctx, code=code, **body.model_dump())


@router.get("/members/{member_id}/channel", response_model=MemberChannelOut)
@blocking
def member_channel(ctx: Reader, member_id: str = Path(description=MEMBER_ID)) -> dict[str, Any]:
    """Read the channel that brought a member

    The first share link or channel code that touched it, with its state."""
    return links.member_channel(ctx, member_id=member_id)


@router.get("/channels", response_model=list[ChannelCountOut])
@blocking
def channel_counts(ctx: Reader) -> list[dict[str, Any]]:
    """Count members per channel

    Members who came through a code, by the code's state."""
    return links.channel_counts(ctx)


@public.get(
    "/s/{code}",
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    openapi_extra={"security": []},
    responses={
        302: {
            "description": "To the target's page; the visitor's first click is counted.",
            "headers": {
                "Location": {"description": "The target URL.", "schema": {"type": "string"}}
            },
        },
        404: {
            "model": ErrorOut,
            "description": "No such code (`share_link_not_found`), or the tenant has not set "
            "where its target lives (`share_target_unconfigured`).",
        },
    },
)
async def follow_share_link(request: Request, code: str = Path(description=CODE)) -> Response:
    """Follow a short link

    Public, no key. Logs the click once per visitor (a cookie) and redirects to the target
    URL the tenant configured."""
    state = app_state(request)
    found = await run_use_case(
        state.db,
        links.follow_share_link,
        db=state.db,
        clock=state.clock,
        code=code,
        visitor=request.cookies.get(VISITOR_COOKIE),
    )
    answer = RedirectResponse(found.location, status_code=status.HTTP_302_FOUND)
    answer.set_cookie(
        VISITOR_COOKIE, found.visitor, max_age=365 * 86_400, httponly=True, samesite="lax"
    )
    return answer


# --- growth settings -----------------------------------------------------------------------


class GrowthSettingsOut(Shape):
    share_url_templates: dict[str, str] = Field(
        description="Per target type, where a share link leads: an http(s) URL that may name "
        "`{target_id}`, `{code}` and `{visitor}`."
    )
    short_link_base: str = Field(description="The address serving `/s/{code}`; empty: this API.")
    points_earn_bp: int = Field(description="Points per fen paid, in bp (100: one per yuan).")
    fen_per_point: int = Field(description="What one point takes off an order, in fen.")
    points_cap_bp: int = Field(description="At most this share of an order paid by points.")
    points_expiry_days: int
    points_rules: dict[str, int] = Field(description="Named rules (rituals, events) → points.")
    stock_cover_limit_days: int = Field(description="A stock order beyond this cover is refused.")
    new_agent_monthly_sales: int = Field(
        description="Units per 30 days assumed for an agent with under 30 days of history."
    )
    buyback_window_days: int
    min_first_stock_order_fen: int = Field(
        description="A first stock order's minimum (0: none); above 0 it is a compliance "
        "finding (入门费 disguised as goods)."
    )
    buyback_price_bp: int = Field(description="Share of the unit cost a buyback pays, in bp.")
    velocity_limit_per_hour: int = Field(
        description="Registrations or orders per device or address an hour before holding."
    )


def _int_field(low: int, high: int, text: str) -> Any:
    return Field(
        default=None,
        description=f"{text} {low} to {high} (else 422 `setting_out_of_range`).",
        json_schema_extra=limits(minimum=low, maximum=high),
    )


class GrowthSettingsPatch(Body):
    share_url_templates: dict[str, str | None] | None = Field(
        default=None,
        description="Per target type (`product`, `page`, `event`, `community`) an http(s) URL "
        "naming only `{target_id}`, `{code}`, `{visitor}` (else 422 "
        "`share_url_template_invalid`); null removes one.",
    )
    short_link_base: str | None = Field(
        default=None,
        description="The address serving `/s/{code}` (http(s), no query); empty: this API.",
        json_schema_extra=limits(maxLength=200),
    )
    points_earn_bp: int | None = _int_field(0, 1_000_000, "Points per fen, in bp:")
    fen_per_point: int | None = _int_field(1, 10_000, "A point's value in fen:")
    points_cap_bp: int | None = _int_field(0, 10_000, "Points' cap of an order, in bp:")
    points_expiry_days: int | None = _int_field(1, 3_650, "Days a lot stays spendable:")
    points_rules: dict[str, int | None] | None = Field(
        default=None,
        description="Rules to set (1 to 1,000,000 points) or remove (null); at most 50.",
    )
    stock_cover_limit_days: int | None = _int_field(1, 3_650, "Days of cover allowed:")
    new_agent_monthly_sales: int | None = _int_field(1, 10_000_000, "Default units per 30 days:")
    buyback_window_days: int | None = _int_field(0, 3_650, "Days after purchase:")
    buyback_price_bp: int | None = _int_field(0, 10_000, "Buyback price, in bp of cost:")
    min_first_stock_order_fen: int | None = _int_field(0, 10**11, "Fen:")
    velocity_limit_per_hour: int | None = _int_field(1, 10_000, "Per hour:")


@router.get("/growth-settings", response_model=GrowthSettingsOut)
@blocking
def get_growth_settings(ctx: Reader) -> dict[str, Any]:
    """Read the growth settings

    Share link targets, points, cloud stock and fraud thresholds."""
    return growth_settings.get_growth_settings(ctx)


@router.patch("/growth-settings", response_model=GrowthSettingsOut)
@blocking
def update_growth_settings(ctx: Admin, body: GrowthSettingsPatch) -> dict[str, Any]:
    """Change the growth settings

    Only the fields sent change; a refused field changes nothing."""
    patch = body.model_dump(exclude_unset=True)
    return growth_settings.update_growth_settings(ctx, patch=patch)


# --- sharing programs ----------------------------------------------------------------------


class ProgramIn(Body):
    name: str = Field(
        description="1 to 60 characters.", json_schema_extra=limits(**text_limits(60))
    )
    sharer_reward: RewardKind = Field(
        description="What the sharer gets when the order it brought closes: `cashback` "
        "(`cashback_bp` of what was paid), `fixed` (`amount_fen`), `coupon` "
        "(`coupon_template_id`), `points` (`points`) or `tier_upgrade` (`tier_id`)."
    )
    cashback_bp: int | None = Field(
        default=None, description="1 to 10000.", json_schema_extra=limits(minimum=1, maximum=10_000)
    )
    amount_fen: int | None = Field(
        default=None,
        description="Fen, 1 or more.",
        json_schema_extra=limits(minimum=1, maximum=MAX_AMOUNT_FEN),
    )
    points: int | None = Field(
        default=None, description="1 to 10,000,000.", json_schema_extra=limits(minimum=1)
    )
    coupon_template_id: str | None = Field(default=None, description="`cpt_…`.")
    tier_id: str | None = Field(default=None, description="The tier a sharer is raised to.")
    new_customer_coupon_template_id: str | None = Field(
        default=None, description="A coupon for the new customer too (`cpt_…`)."
    )
    first_order_only: bool = Field(
        default=True, description="Only a customer's first order counts."
    )
    target_skus: list[str] | None = Field(
        default=None, description="Only orders with one of these SKUs (none: any order)."
    )
    cap_per_day: int | None = Field(
        default=None,
        description="At most this many rewards per sharer per day (the tenant's time zone).",
        json_schema_extra=limits(minimum=1, maximum=100_000),
    )
    cap_per_month: int | None = Field(
        default=None,
        description="At most this many rewards per sharer per month.",
        json_schema_extra=limits(minimum=1, maximum=1_000_000),
    )
    starts_at: Moment | None = Field(default=None, description="From (ISO 8601 with offset).")
    ends_at: Moment | None = Field(default=None, description="Until (after `starts_at`).")


class ProgramOut(Shape):
    id: str
    name: str
    sharer_reward: RewardKind
    cashback_bp: int | None
    amount_fen: int | None
    points: int | None
    coupon_template_id: str | None
    tier_id: str | None
    new_customer_coupon_template_id: str | None
    first_order_only: bool
    target_skus: list[str]
    cap_per_day: int | None
    cap_per_month: int | None
    starts_at: datetime | None
    ends_at: datetime | None
    active: bool
    created_at: datetime


class RewardOut(Shape):
    id: str
    program_id: str
    order_id: str
    role: Literal["sharer", "new_customer"]
    member_id: str
    buyer_id: str
    kind: RewardKind
    status: Literal["granted", "held", "capped", "cancelled", "reversed"] = Field(
        description="`held`: a fraud hold waits for an operator; `capped`: over a cap, not "
        "granted; `reversed`: taken back after a refund."
    )
    base_fen: int = Field(description="What the order had paid, net, when it closed.")
    amount_fen: int
    points: int
    coupon_id: str | None
    tier_id: str | None
    previous_tier_id: str | None
    reversed_fen: int
    reversed_points: int
    created_at: datetime
    granted_at: datetime | None


class RewardPage(Page[RewardOut]):
    pass


@router.post("/sharing-programs", status_code=status.HTTP_201_CREATED, response_model=ProgramOut)
@blocking
def create_program(ctx: Admin, body: ProgramIn) -> dict[str, Any]:
    """Create a sharing program

    Rewards for ordinary members who share (no agent tier needed), granted when the order
    they brought closes and taken back in proportion if it is refunded after."""
    fields = body.model_dump()
    fields["target_skus"] = fields["target_skus"] or []
    return sharing.create_program(ctx, **fields)


@router.get("/sharing-programs", response_model=list[ProgramOut])
@blocking
def list_programs(ctx: Reader) -> list[dict[str, Any]]:
    """List sharing programs

    Oldest first."""
    return sharing.list_programs(ctx)


@router.get("/sharing-rewards", response_model=RewardPage)
@blocking
def list_rewards(
    ctx: Reader,
    member_id: str | None = Query(default=None, description="Only this member's (`mem_…`)."),
    order_id: str | None = Query(default=None, description="Only this order's (`ord_…`)."),
    after: str | None = Query(
        default=None,
        description="The `next_after` of the page before (else 422 `cursor_invalid`).",
        json_schema_extra=cursor("shr"),
    ),
    limit: int = Query(
        default=50,
        description="Rewards per page, 1 to 500 (else 422 `limit_out_of_range`).",
        json_schema_extra=page_limit(),
    ),
) -> dict[str, Any]:
    """List sharing rewards

    Oldest first, a page at a time."""
    return sharing.list_rewards(
        ctx, member_id=member_id, order_id=order_id, after=after, limit=limit
    )


# --- coupons -------------------------------------------------------------------------------


class CouponTemplateIn(Body):
    name: str = Field(
        description="1 to 60 characters.", json_schema_extra=limits(**text_limits(60))
    )
    kind: Literal["amount", "percent"] = Field(
        description="`amount`: `amount_off_fen` off; `percent`: `percent_off_bp` off."
    )
    amount_off_fen: int | None = Field(
        default=None,
        description="With `amount` only.",
        json_schema_extra=limits(minimum=1, maximum=MAX_AMOUNT_FEN),
    )
    percent_off_bp: int | None = Field(
        default=None,
        description="With `percent` only: 1 to 10000.",
        json_schema_extra=limits(minimum=1, maximum=10_000),
    )
    max_discount_fen: int | None = Field(
        default=None,
        description="A percent coupon's ceiling.",
        json_schema_extra=limits(minimum=1, maximum=MAX_AMOUNT_FEN),
    )
    min_spend_fen: int = Field(
        default=0,
        description="On the lines the coupon covers.",
        json_schema_extra=limits(minimum=0, maximum=MAX_AMOUNT_FEN),
    )
    scope: Literal["all", "product", "category", "ladder_role"] = Field(
        default="all", description="Which lines it covers, by `scope_values`."
    )
    scope_values: list[str] | None = Field(
        default=None,
        description="SKUs, categories or ladder roles (`bait`, `core`, `partner`); none "
        "for `all` (else 422 `coupon_scope_values_mismatch`).",
    )
    valid_from: Moment | None = Field(default=None, description="From (ISO 8601 with offset).")
    valid_until: Moment | None = Field(default=None, description="Until (after `valid_from`).")
    valid_days: int | None = Field(
        default=None,
        description="Days a coupon stays valid after issue, 1 to 3650.",
        json_schema_extra=limits(minimum=1, maximum=3_650),
    )
    total_limit: int | None = Field(
        default=None,
        description="Coupons issued at most.",
        json_schema_extra=limits(minimum=1, maximum=100_000_000),
    )
    per_member_limit: int = Field(
        default=1,
        description="Coupons a member may hold, used or not, 1 to 1000.",
        json_schema_extra=limits(minimum=1, maximum=1_000),
    )
    stack_with_tier_price: bool = Field(
        default=True, description="False: the lines it covers are at the list price."
    )
    stack_with_points: bool = Field(
        default=True, description="False: refused with points (409 `coupon_not_with_points`)."
    )
    restore_on_refund: bool = Field(
        default=False, description="A full refund gives the coupon back."
    )
    claim_code: str | None = Field(
        default=None,
        description="Members claim one with this code: 4 to 32 letters or digits (else 422 "
        "`coupon_field_invalid`); another template's: 409 `coupon_claim_code_taken`.",
        json_schema_extra=limits(minLength=4, maxLength=32, pattern=r"^[A-Za-z0-9]+$"),
    )


class CouponTemplateOut(Shape):
    id: str
    name: str
    kind: Literal["amount", "percent"]
    amount_off_fen: int
    percent_off_bp: int
    max_discount_fen: int | None
    min_spend_fen: int
    scope: Literal["all", "product", "category", "ladder_role"]
    scope_values: list[str]
    valid_from: datetime | None
    valid_until: datetime | None
    valid_days: int | None
    total_limit: int | None
    per_member_limit: int
    issued_count: int
    stack_with_tier_price: bool
    stack_with_points: bool
    restore_on_refund: bool
    claim_code: str | None
    active: bool
    created_at: datetime


class CouponIssueIn(Body):
    template_id: str = Field(description="The template (`cpt_…`).")
    member_ids: list[str] | None = Field(
        default=None, description="One coupon each (1 to 10,000); or `tag`."
    )
    tag: str | None = Field(default=None, description="Every member with the tag; or a list.")


class CouponIssueOut(Shape):
    template_id: str
    issued: int
    skipped: int = Field(description="Members at their limit or beyond the total limit.")


class CouponClaimIn(Body):
    member_id: str = Field(description="The claiming member (`mem_…`).")
    code: str = Field(
        description="The template's claim code.", json_schema_extra=limits(**text_limits(32))
    )


class CouponOut(Shape):
    id: str
    template_id: str
    name: str
    kind: Literal["amount", "percent"]
    amount_off_fen: int
    percent_off_bp: int
    max_discount_fen: int | None
    min_spend_fen: int
    scope: Literal["all", "product", "category", "ladder_role"]
    scope_values: list[str]
    stack_with_tier_price: bool
    stack_with_points: bool
    status: CouponStatus
    source: str = Field(description="`program`, `operator` or `code`.")
    valid_from: datetime
    valid_until: datetime | None
    order_id: str | None = Field(description="The order that used it.")
    issued_at: datetime
    used_at: datetime | None


@router.post(
    "/coupon-templates", status_code=status.HTTP_201_CREATED, response_model=CouponTemplateOut
)
@blocking
def create_coupon_template(ctx: Admin, body: CouponTemplateIn) -> dict[str, Any]:
    """Create a coupon template

    Amount or percent off, minimum spend, validity, limits, scope and stacking rules."""
    fields = body.model_dump()
    fields["scope_values"] = fields["scope_values"] or []
    return coupons.create_template(ctx, **fields)


@router.get("/coupon-templates", response_model=list[CouponTemplateOut])
@blocking
def list_coupon_templates(ctx: Reader) -> list[dict[str, Any]]:
    """List coupon templates

    Oldest first."""
    return coupons.list_templates(ctx)


@router.post("/coupons/issue", response_model=CouponIssueOut)
@blocking
def issue_coupons(ctx: Writer, body: CouponIssueIn) -> dict[str, Any]:
    """Issue coupons

    One coupon of the template to each member of a list or a tag, within the limits."""
    return coupons.issue_coupons(
        ctx, template_id=body.template_id, member_ids=body.member_ids, tag=body.tag
    )


@router.post("/coupons/claim", status_code=status.HTTP_201_CREATED, response_model=CouponOut)
@blocking
def claim_coupon(ctx: Writer, body: CouponClaimIn) -> dict[str, Any]:
    """Claim a coupon by code

    Within the template's total and per-member limits."""
    return coupons.claim_coupon(ctx, member_id=body.member_id, code=body.code)


@router.get("/members/{member_id}/coupons", response_model=list[CouponOut])
@blocking
def member_coupons(
    ctx: Reader,
    member_id: str = Path(description=MEMBER_ID),
    status: CouponStatus | None = Query(default=None, description="Only coupons in this state."),
) -> list[dict[str, Any]]:
    """List a member's coupons

    Newest first; a coupon past its date shows `expired`."""
    return coupons.member_coupons(ctx, member_id=member_id, status=status)
