from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from fastapi import APIRouter, Path, Query, status
from pydantic import Field

from shequn.distribution.queries import member_commissions
from shequn.entrypoints.api.http import API_PREFIX, Admin, Body, Reader, Writer, blocking
from shequn.entrypoints.api.shapes import (
    CommissionLineOut,
    CommissionStatus,
    Page,
    Shape,
    cursor,
    limits,
    page_limit,
    text_limits,
)
from shequn.flows.privacy import anonymise_member
from shequn.flows.registration import create_member as register_member
from shequn.members import service
from shequn.members.rules import Stage
from shequn.referrals import binding, tree
from shequn.referrals.rules import BindingSource

router = APIRouter(prefix=API_PREFIX, tags=["members"])

Source = Literal["share_link", "qr_scene", "staff", "import"]
MEMBER_ID = "The member's id (`mem_…`)."
# Digits and separators only, as the registration reads a phone number before it parses it.
PHONE: dict[str, Any] = {"pattern": r"^\s*\+?[0-9 ()\-.]{3,32}\s*$"}
PHONE_TEXT = (
    "A mobile number: mainland numbers with or without +86 or 0086, spaces or dashes; kept "
    "in E.164 (`+8613812345678`). Not a valid number: 422 `phone_invalid`; another member's: "
    "409 `phone_taken`."
)
EXTERNAL_ID_TEXT = (
    "The member's id in the brand's other systems (a WeChat openid, a CRM key). Trimmed; "
    "1 to 80 characters (else 422 `external_id_invalid`); another member's: 409 "
    "`external_id_taken`."
)
NAME_TEXT = "1 to 80 characters once spaces are collapsed (else 422 `member_name_invalid`)."
TAGS_TEXT = (
    "Tags, each 1 to 40 characters once spaces are collapsed (else 422 `tag_invalid`); at "
    "most 50 different ones (else 422 `too_many_tags`)."
)
SCENE_TEXT = "The QR scene or campaign the touch came from, at most 64 characters."
TAGS: dict[str, Any] = {"maxItems": 50, "items": {"type": "string", **text_limits(40)}}


# --- requests ------------------------------------------------------------------------------


class MemberCreate(Body):
    name: str = Field(description=NAME_TEXT, json_schema_extra=limits(**text_limits(80)))
    phone: str | None = Field(
        default=None, description=PHONE_TEXT, json_schema_extra=limits(**PHONE)
    )
    external_id: str | None = Field(
        default=None, description=EXTERNAL_ID_TEXT, json_schema_extra=limits(**text_limits(80))
    )
    referrer_id: str | None = Field(
        default=None,
        description="The member whose link or code brought this one (`mem_…`): it counts as "
        "a touch now, and the tenant's binding policy decides whom the member is bound to.",
    )
    source: Source = Field(default="share_link", description="How the referrer's touch came.")
    scene: str | None = Field(default=None, max_length=64, description=SCENE_TEXT)
    tags: list[str] | None = Field(
        default=None, description=TAGS_TEXT, json_schema_extra=limits(**TAGS)
    )
    tier_id: str | None = Field(default=None, description="A tier to start in (`tier_…`).")
    visitor: str | None = Field(
        default=None,
        description="The visitor id the member's browser got from following share links "
        "(`GET /s/{code}` names it in the target URL as `{visitor}`): those clicks count as "
        "the member's referral touches. 16 to 64 letters, digits, `-` or `_` (else 422 "
        "`visitor_invalid`).",
        json_schema_extra=limits(minLength=16, maxLength=64, pattern="^[A-Za-z0-9_-]+$"),
    )


class MemberUpdate(Body):
    name: str | None = Field(
        default=None,
        description=NAME_TEXT + " Null: unchanged.",
        json_schema_extra=limits(**text_limits(80)),
    )
    phone: str | None = Field(
        default=None,
        description=PHONE_TEXT + " Null: unchanged.",
        json_schema_extra=limits(**PHONE),
    )
    external_id: str | None = Field(
        default=None,
        description=EXTERNAL_ID_TEXT + " Null: unchanged.",
        json_schema_extra=limits(**text_limits(80)),
    )
    tags: list[str] | None = Field(
        default=None,
        description="The member's whole tag set, replacing the one it has. " + TAGS_TEXT,
        json_schema_extra=limits(**TAGS),
    )
    tier_id: str | None = Field(
        default=None,
        description="Move the member to this tier (`tier_…`), or out of any with null; an "
        "audited manual change. Absent: unchanged.",
    )


class Rebind(Body):
    referrer_id: str | None = Field(
        description="The new referrer (`mem_…`), or null to leave the member without one."
    )
    reason: str = Field(
        description="Why, for the audit trail: trimmed, 1 to 500 characters (else 422 "
        "`rebind_reason_required`).",
        json_schema_extra=limits(**text_limits(500)),
    )


class TouchCreate(Body):
    sharer_id: str = Field(description="The member who shared (`mem_…`).")
    member_id: str | None = Field(
        default=None,
        description="The visitor, if already a member (`mem_…`). Exactly one of `member_id`, "
        "`phone` and `external_id` (else 422 `touch_visitor_required`).",
    )
    phone: str | None = Field(
        default=None,
        description="The visitor's phone, if not a member yet, in any form a registration "
        "accepts (else 422 `phone_invalid`).",
        json_schema_extra=limits(**PHONE),
    )
    external_id: str | None = Field(
        default=None,
        description="The visitor's id in another system, if not a member yet; trimmed, 1 to "
        "80 characters.",
        json_schema_extra=limits(**text_limits(80)),
    )
    source: Source = Field(default="share_link", description="How the touch came.")
    scene: str | None = Field(default=None, max_length=64, description=SCENE_TEXT)


# --- answers -------------------------------------------------------------------------------


class MemberOut(Shape):
    id: str
    name: str = Field(description="`—` once the member is anonymised.")
    phone: str | None = Field(description="E.164.")
    external_id: str | None
    tier_id: str | None
    referrer_id: str | None = Field(description="Who the member is bound to.")
    ancestors: list[str] = Field(
        description="The referrer, its referrer and the one above (up to three), nearest first."
    )
    binding_source: BindingSource | None
    bound_at: datetime | None
    direct_count: int = Field(description="Members bound directly under this one.")
    team_count: int = Field(description="Members anywhere below this one.")
    paid_order_count: int = Field(description="Paid orders, less those refunded in full.")
    paid_total_fen: int
    referred_buyer_count: int = Field(description="Direct referrals who have paid an order.")
    stage: Stage = Field(
        description="客户 customer → 用户 user → 粉丝 fan → 朋友 friend, by the tenant's "
        "`stage_criteria`."
    )
    tags: list[str]
    anonymised_at: datetime | None = Field(description="When its personal data was erased.")
    created_at: datetime


class MemberPage(Page[MemberOut]):
    pass


class DepthCount(Shape):
    depth: int = Field(description="1: direct referrals; 2: theirs; and so on.")
    count: int


class TeamOut(Shape):
    member_id: str
    direct_count: int
    team_count: int
    by_depth: list[DepthCount]


class TeamMemberOut(Shape):
    id: str
    name: str
    referrer_id: str | None
    tier_id: str | None
    depth: int = Field(description="How far below the member asked about: 1 for direct.")


class BindingOut(Shape):
    """One change of a member's referrer."""

    id: str
    member_id: str
    referrer_id: str | None
    previous_referrer_id: str | None
    kind: Literal["bind", "rebind", "auto_rebind"] = Field(
        description="`bind`: the first binding; `rebind`: an owner's audited move; "
        "`auto_rebind`: a newer touch after the protection period (`last_touch`)."
    )
    source: BindingSource
    reason: str | None
    actor: str = Field(description="Who made it: `key:<id>` for an API key, `cli`, …")
    occurred_at: datetime


class TouchOut(Shape):
    id: str
    sharer_id: str
    rebound_to: str | None = Field(
        description="The sharer, when the touch moved the visitor to it (`last_touch` after "
        "the protection period); else null."
    )


class CommissionPage(Page[CommissionLineOut]):
    pass


# --- routes --------------------------------------------------------------------------------


@router.post("/members", status_code=status.HTTP_201_CREATED, response_model=MemberOut)
@blocking
def create_member(ctx: Writer, body: MemberCreate) -> dict[str, Any]:
    """Register a member

    A `referrer_id` counts as a touch of that referrer now; the tenant's binding policy
    (first or last touch, window, trigger) then decides whom the member is bound to."""
    return register_member(ctx, **body.model_dump())


@router.get("/members", response_model=MemberPage)
@blocking
def list_members(
    ctx: Reader,
    tag: str | None = Query(default=None, description="Only members with this tag."),
    tier_id: str | None = Query(default=None, description="Only members of this tier."),
    referrer_id: str | None = Query(
        default=None, description="Only members bound directly under this one (`mem_…`)."
    ),
    phone: str | None = Query(
        default=None,
        description="The member with this phone, in any form a registration accepts (else "
        "422 `phone_invalid`).",
        json_schema_extra=PHONE,
    ),
    external_id: str | None = Query(
        default=None,
        description="The member with this external id (trimmed; else 422 `external_id_invalid`).",
        json_schema_extra=text_limits(80),
    ),
    after: str | None = Query(
        default=None,
        description="The `next_after` of the page before (else 422 `cursor_invalid`).",
        json_schema_extra=cursor("mem"),
    ),
    limit: int = Query(
        default=50,
        description="Members per page, 1 to 500 (else 422 `limit_out_of_range`).",
        json_schema_extra=page_limit(),
    ),
) -> dict[str, Any]:
    """List members

    Oldest first, a page at a time; `phone` and `external_id` find a member known in another
    system."""
    return service.list_members(
        ctx,
        tag=tag,
        tier_id=tier_id,
        referrer_id=referrer_id,
        phone=phone,
        external_id=external_id,
        after=after,
        limit=limit,
    )


@router.get("/members/{member_id}", response_model=MemberOut)
@blocking
def get_member(ctx: Reader, member_id: str = Path(description=MEMBER_ID)) -> dict[str, Any]:
    """Read a member

    With its referral ties, its team's size, what it has bought and its stage."""
    return service.get_member(ctx, member_id=member_id)


@router.patch("/members/{member_id}", response_model=MemberOut)
@blocking
def update_member(
    ctx: Writer, body: MemberUpdate, member_id: str = Path(description=MEMBER_ID)
) -> dict[str, Any]:
    """Change a member's profile

    Only the fields sent change; `tags` replaces the whole set; a tier change is recorded as
    a manual one."""
    fields = body.model_dump(exclude_unset=True)
    set_tier = "tier_id" in fields
    return service.update_member(
        ctx,
        member_id=member_id,
        name=fields.get("name"),
        phone=fields.get("phone"),
        external_id=fields.get("external_id"),
        tags=fields.get("tags"),
        tier_id=fields.get("tier_id"),
        set_tier=set_tier,
    )


@router.get("/members/{member_id}/team", response_model=TeamOut)
@blocking
def team(ctx: Reader, member_id: str = Path(description=MEMBER_ID)) -> dict[str, Any]:
    """Count a member's team

    How many members are bound below it, in all and at each depth."""
    return tree.team_summary(ctx, member_id=member_id)


@router.get("/members/{member_id}/team/members", response_model=list[TeamMemberOut])
@blocking
def team_members(
    ctx: Reader,
    member_id: str = Path(description=MEMBER_ID),
    max_depth: int | None = Query(
        default=None, ge=1, le=1000, description="Only members at most this far below."
    ),
    after: str | None = Query(
        default=None,
        description="The id of the last member of the page before (else 422 `cursor_invalid`).",
        json_schema_extra=cursor("mem"),
    ),
    limit: int = Query(default=100, ge=1, le=500, description="Members per page."),
) -> list[dict[str, Any]]:
    """List a member's team

    The members bound below it, in id order, a page at a time: pass the last one's id as
    `after` to read on."""
    return tree.team_members(
        ctx, member_id=member_id, max_depth=max_depth, after=after, limit=limit
    )


@router.post("/members/{member_id}/rebind", response_model=MemberOut)
@blocking
def rebind(
    ctx: Admin, body: Rebind, member_id: str = Path(description=MEMBER_ID)
) -> dict[str, Any]:
    """Move a member under another referrer

    With its whole team: an owner's audited decision, as it changes who earns on the
    member's future orders. A move under the member itself or its own team is refused (422
    `self_referral`, `referral_cycle`)."""
    binding.rebind_member(
        ctx, member_id=member_id, referrer_id=body.referrer_id, reason=body.reason
    )
    return service.get_member(ctx, member_id=member_id)


@router.post("/members/{member_id}/anonymise", response_model=MemberOut)
@blocking
def anonymise(ctx: Admin, member_id: str = Path(description=MEMBER_ID)) -> dict[str, Any]:
    """Erase a member's personal data

    On the member's request (PIPL): its name, phone, external id, tags and the touches
    recorded under its phone or external id. Its id, referral ties, orders and ledger stay;
    doing it again changes nothing."""
    return anonymise_member(ctx, member_id=member_id)


@router.get("/members/{member_id}/bindings", response_model=list[BindingOut])
@blocking
def bindings(ctx: Reader, member_id: str = Path(description=MEMBER_ID)) -> list[dict[str, Any]]:
    """List a member's binding history

    Every change of its referrer, oldest first, with who made it and why."""
    return binding.binding_history(ctx, member_id=member_id)


@router.get("/members/{member_id}/commissions", response_model=CommissionPage)
@blocking
def commissions(
    ctx: Reader,
    member_id: str = Path(description=MEMBER_ID),
    status: str | None = Query(
        default=None,
        description="Only lines in this state (else 422 `commission_status_invalid`).",
        json_schema_extra={"enum": list(get_args(CommissionStatus))},
    ),
    after: str | None = Query(
        default=None,
        description="The `next_after` of the page before (else 422 `cursor_invalid`).",
        json_schema_extra=cursor("com"),
    ),
    limit: int = Query(
        default=100,
        description="Lines per page, 1 to 500 (else 422 `limit_out_of_range`).",
        json_schema_extra=page_limit(),
    ),
) -> dict[str, Any]:
    """List the commission lines a member earns

    Oldest first, a page at a time."""
    return member_commissions(ctx, member_id=member_id, status=status, after=after, limit=limit)


@router.post("/referral-touches", status_code=status.HTTP_201_CREATED, response_model=TouchOut)
@blocking
def touch(ctx: Writer, body: TouchCreate) -> dict[str, Any]:
    """Record a share click or QR scan

    A visitor bound to someone else under `last_touch`, once its protection period is over,
    moves to the sharer; a visitor not yet a member is bound on registration as the policy
    says."""
    return binding.record_touch(ctx, **body.model_dump())
