"""Communities, their venues and Dunbar-capped groups: placement, join codes, split, import,
the chronicle and welcome templates."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import Field

from shequn.community import founding
from shequn.community.communities import report
from shequn.community.groups import imports, placement
from shequn.community.groups import service as groups
from shequn.community.rituals import chronicle, welcome
from shequn.entrypoints.api.community_models import (
    BulkPlacementOut,
    ChronicleEntryOut,
    CommunityOut,
    CommunityPage,
    GroupMemberOut,
    GroupOut,
    GroupPage,
    ImportOut,
    JoinCodeOut,
    MembershipOut,
    MilestonesOut,
    PlacementOut,
    SplitOut,
    TemplateOut,
    Timestamp,
    VenueOut,
    VenueReportOut,
)
from shequn.entrypoints.api.http import API_PREFIX, Admin, Body, Reader, Writer, blocking

router = APIRouter(prefix=API_PREFIX, tags=["community"])

Id = str
Policy = Literal["fill", "region", "interest", "referrer", "staff_account", "lifecycle"]
Role = Literal["member", "leader", "lecturer", "ambassador"]
SizeClass = Literal[5, 15, 35, 150]

CommunityId = Annotated[str, Path(description="The community's id (`cmty_…`).")]
GroupId = Annotated[str, Path(description="The group's id (`grp_…`).")]
JoinCode = Annotated[
    str, Path(description="A community's join code, as `GET /communities/{id}/join-code` shows.")
]
After = Annotated[
    str | None,
    Query(max_length=40, description="The `next_after` of the page before; absent: the first."),
]

POLICY_TEXT = (
    "How the group is chosen: `fill` (the oldest group with room), `region`, `interest`, "
    "`referrer` (the referrer's group while it has room), `staff_account` (a group of the "
    "member's staff account) or `lifecycle` (of the member's stage). Absent: `fill`. Groups "
    "are kept apart by the policy's key; when every group of the key is full a new one opens, "
    "named by the community's pattern."
)
ROLE_TEXT = (
    "The member's role in the community: `member`, `leader` (领, an opinion leader), "
    "`lecturer` or `ambassador`."
)
SIZE_CLASS_TEXT = (
    "Dunbar's circles: 5, 15, 35 or 150 members; a group's hard cap is this or the venue's "
    "platform limit, whichever is lower."
)
MEMBER_ID_TEXT = "The member (`mem_…`); unknown: 404 `member_not_found`."


class CommunityCreate(Body):
    name: str = Field(
        max_length=80,
        description="The community's name, unique in the tenant (else 409 "
        "`community_name_taken`); spaces collapsed, 1 to 80 characters (else 422 "
        "`field_required`).",
    )
    target_segment: str = Field(
        default="", max_length=200, description="人: whom it is for (at most 200 characters)."
    )
    mission: str = Field(
        default="", max_length=500, description="命: the mission it shares (at most 500)."
    )
    vehicle: str = Field(
        default="",
        max_length=200,
        description="器: the product or idea it gathers around (at most 200 characters).",
    )
    member_title: str = Field(
        default="",
        max_length=40,
        description="仪: what its members are called (`米粉`); at most 40 characters.",
    )
    symbol: str = Field(
        default="", max_length=80, description="仪: its symbol or emblem (at most 80)."
    )
    group_name_pattern: str | None = Field(
        default=None,
        max_length=60,
        description="How new groups are named: text with `{community}`, `{title}`, "
        "`{number}` (required: else 422 `group_pattern_needs_number`), `{region}`, "
        "`{interest}`. Absent: `{community}{number}群`.",
    )
    size_class: int = Field(
        default=150,
        description=SIZE_CLASS_TEXT + " Another number: 422 `size_class_invalid`.",
    )
    leaders: list[Id] = Field(
        default_factory=list,
        max_length=20,
        description="领: members who lead it from the start (`mem_…`, at most 20); an "
        "unknown one: 404 `member_not_found`.",
    )


class VenueCreate(Body):
    name: str = Field(
        max_length=80,
        description="The venue's name, unique in the community (else 409 `venue_name_taken`).",
    )
    kind: str = Field(
        max_length=20,
        description="场: `wechat_group`, `wecom_group`, `qq_group`, `forum`, `weibo`, "
        "`live_room`, `offline_club`, `store` or `other` (else 422 `venue_kind_invalid`).",
    )
    role: str = Field(
        max_length=24,
        description="What the venue is for, which decides where its activity is reported: "
        "`rnd_feedback` (feeds product reviews), `marketing`, `customer_service`, `sales`, "
        "`emotional` (complaints escalated in half the time) or `experience` (after-sales); "
        "else 422 `venue_role_invalid`.",
    )
    external_id: str | None = Field(
        default=None, max_length=80, description="The venue's id on its platform."
    )
    platform_limit: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="Members one group of the venue holds, if lower than the platform's own "
        "(WeChat and WeCom groups 500, QQ groups 2,000); higher: 422 `venue_limit_invalid`.",
    )
    default: bool = Field(
        default=False, description="New groups of the community open in this venue."
    )


class JoinIn(Body):
    member_id: Id = Field(max_length=40, description=MEMBER_ID_TEXT)
    policy: Policy | None = Field(default=None, description=POLICY_TEXT)
    role: Role = Field(default="member", description=ROLE_TEXT)
    region: str | None = Field(
        default=None, max_length=40, description="The member's region, for the `region` policy."
    )
    interest: str | None = Field(
        default=None,
        max_length=40,
        description="The member's interest tag, for the `interest` policy.",
    )


class CodeJoinIn(Body):
    member_id: Id = Field(max_length=40, description=MEMBER_ID_TEXT)


class BulkEntry(Body):
    member_id: Id = Field(max_length=40, description="The member (`mem_…`).")
    region: str | None = Field(
        default=None, max_length=40, description="The member's region, for the `region` policy."
    )
    interest: str | None = Field(
        default=None,
        max_length=40,
        description="The member's interest tag, for the `interest` policy.",
    )


class BulkJoinIn(Body):
    members: list[BulkEntry] = Field(
        min_length=1,
        max_length=10_000,
        description="The members to place, 1 to 10,000; unknown ones are listed in the "
        "answer, members already placed stay where they are.",
    )
    policy: Policy | None = Field(default=None, description=POLICY_TEXT)


class RoleIn(Body):
    member_id: Id = Field(
        max_length=40, description="A member of the community (`mem_…`); else 404."
    )
    role: Role = Field(description=ROLE_TEXT)


class SplitIn(Body):
    size_class: SizeClass | None = Field(
        default=None,
        description="The size class of the parts; absent: the group's own. " + SIZE_CLASS_TEXT,
    )


class ImportRow(Body):
    group: str = Field(
        max_length=80,
        description="The group's id on its platform; rows of one group make the group.",
    )
    name: str | None = Field(
        default=None, max_length=80, description="The group's name; absent: the pattern's."
    )
    member: str = Field(
        max_length=80,
        description="A member of the group: its id (`mem_…`) or its external id; unknown "
        "ones are listed in the answer.",
    )


class ImportIn(Body):
    rows: list[ImportRow] = Field(
        min_length=1, max_length=10_000, description="One row per member of a group."
    )
    venue_id: Id | None = Field(
        default=None,
        max_length=40,
        description="The venue the groups live in (`ven_…`); unknown: 404 `venue_not_found`.",
    )
    size_class: SizeClass | None = Field(
        default=None,
        description="The size class of the imported groups; absent: the community's. Groups "
        "over the cap are flagged oversize.",
    )


class ChronicleIn(Body):
    title: str = Field(
        max_length=120, description="The entry's title, 1 to 120 characters (else 422)."
    )
    body: str = Field(default="", max_length=1000, description="What happened.")
    occurred_at: Timestamp | None = Field(
        default=None, description="When it happened, with its offset; absent: now."
    )


class TemplateIn(Body):
    trigger: Literal["group_joined", "staff_added"] = Field(
        description="When it is sent: a member joins a group, or a staff account adds one."
    )
    body: str = Field(
        max_length=1000,
        description="The text, with `{name}`, `{title}`, `{referrer}`, `{group}`, "
        "`{community}`, `{staff}`; another variable: 422 `template_variable_unknown`.",
    )
    community_id: Id | None = Field(
        default=None,
        max_length=40,
        description="Only for this community (`cmty_…`); absent: every community's.",
    )


@router.post("/communities", status_code=status.HTTP_201_CREATED, response_model=CommunityOut)
@blocking
def create_community(ctx: Admin, body: CommunityCreate) -> dict[str, Any]:
    """Found a community

    A community with its six elements (人 target segment, 命 mission, 器 vehicle, 仪 member
    title and symbol, 领 leaders), its join code and its first, empty group. Admin key."""
    return founding.create_community(ctx, **body.model_dump())


@router.get("/communities", response_model=CommunityPage)
@blocking
def list_communities(
    ctx: Reader,
    after: After = None,
    limit: int = Query(default=50, ge=1, le=200, description="At most this many, 1 to 200."),
) -> dict[str, Any]:
    """List the communities

    The tenant's communities, oldest first, a page at a time; pass `next_after` back as `after`."""
    return founding.list_communities(ctx, after=after, limit=limit)


@router.get("/communities/{community_id}", response_model=CommunityOut)
@blocking
def get_community(ctx: Reader, community_id: CommunityId) -> dict[str, Any]:
    """Read a community

    A community with its leaders, member count, group count and the number of its groups over
    their cap. Unknown: 404 `community_not_found`."""
    return founding.get_community(ctx, community_id=community_id)


@router.post(
    "/communities/{community_id}/venues",
    status_code=status.HTTP_201_CREATED,
    response_model=VenueOut,
)
@blocking
def add_venue(ctx: Admin, community_id: CommunityId, body: VenueCreate) -> dict[str, Any]:
    """Add a venue

    A venue (场) of the community with its kind, role and external id. Its role routes what
    happens there (feedback from an R&D venue feeds product reviews; a complaint in an emotional
    venue is escalated sooner); with `default`, new groups open there, capped by its platform
    limit. Admin key."""
    return founding.add_venue(
        ctx,
        community_id=community_id,
        name=body.name,
        kind=body.kind,
        role=body.role,
        external_id=body.external_id,
        platform_limit_declared=body.platform_limit,
        default=body.default,
    )


@router.get("/communities/{community_id}/venues", response_model=list[VenueOut])
@blocking
def list_venues(ctx: Reader, community_id: CommunityId) -> list[dict[str, Any]]:
    """List the venues

    The community's venues, oldest first, each with what its role feeds."""
    return founding.list_venues(ctx, community_id=community_id)


@router.get("/communities/{community_id}/venue-report", response_model=VenueReportOut)
@blocking
def venue_activity(
    ctx: Reader,
    community_id: CommunityId,
    days: int = Query(default=30, ge=1, le=366, description="The last this many days, 1 to 366."),
) -> dict[str, Any]:
    """Report activity by venue

    Each venue's activities over the last `days`, counted by kind, and the totals under the report
    each venue's role feeds (`product_reviews`, `service_queue`, …)."""
    return report.venue_report(ctx, community_id=community_id, days=days)


@router.post(
    "/communities/{community_id}/members",
    status_code=status.HTTP_201_CREATED,
    response_model=PlacementOut,
)
@blocking
def join(
    ctx: Writer, community_id: CommunityId, body: JoinIn, response: Response
) -> dict[str, Any]:
    """Place a member in a group

    The member joins the community and lands in a group with room, chosen by the policy; when
    every group of the policy's key is full a new group opens (named by the community's pattern),
    and no group ever passes its cap, under any number of parallel joins. The group's welcome
    template, if any, goes to the outbox. A member already placed is answered where it is, with
    200 and `Idempotent-Replayed: true`."""
    placed, replayed = placement.join_community(
        ctx,
        community_id=community_id,
        member_id=body.member_id,
        policy=body.policy,
        role=body.role,
        region=body.region,
        interest=body.interest,
    )
    if replayed:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return placed


@router.post("/communities/{community_id}/placements", response_model=BulkPlacementOut)
@blocking
def place_many(ctx: Writer, community_id: CommunityId, body: BulkJoinIn) -> dict[str, Any]:
    """Place many members at once

    The bulk path: up to 10,000 members placed by one policy with set-based writes. Members
    already placed stay where they are (`already`); unknown ones are listed (`unknown`) and the
    rest are placed."""
    return placement.place_members(
        ctx,
        community_id=community_id,
        entries=[e.model_dump() for e in body.members],
        policy=body.policy,
    )


@router.post("/communities/{community_id}/roles", response_model=MembershipOut)
@blocking
def set_role(ctx: Admin, community_id: CommunityId, body: RoleIn) -> dict[str, Any]:
    """Set a member's role

    Give a member of the community a role: `leader` (领), `lecturer`, `ambassador` or `member`.
    Not a member of the community: 404. Admin key."""
    return placement.set_role(
        ctx, community_id=community_id, member_id=body.member_id, role=body.role
    )


@router.get("/communities/{community_id}/join-code", response_model=JoinCodeOut)
@blocking
def join_code(ctx: Reader, community_id: CommunityId) -> dict[str, Any]:
    """Read the join code

    The community's join code and the group with room it points at now: as groups fill, the code
    points at the next one (a new group opens when the last seat is taken), like WeChat Work's
    `auto_create_room`."""
    return groups.join_code(ctx, community_id=community_id)


@router.post(
    "/join-codes/{code}/members", status_code=status.HTTP_201_CREATED, response_model=PlacementOut
)
@blocking
def join_by_code(
    ctx: Writer, code: JoinCode, body: CodeJoinIn, response: Response
) -> dict[str, Any]:
    """Join by join code

    The member joins the community of the code and lands in the group with room the code points
    at. Unknown code: 404 `join_code_not_found`. A member already placed: 200, where it is."""
    placed, replayed = groups.join_by_code(ctx, code=code, member_id=body.member_id)
    if replayed:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return placed


@router.get("/communities/{community_id}/groups", response_model=GroupPage)
@blocking
def list_groups(
    ctx: Reader,
    community_id: CommunityId,
    oversize: bool | None = Query(
        default=None,
        description="`true`: only the groups over their cap; `false`: only those within it.",
    ),
    after: After = None,
    limit: int = Query(default=100, ge=1, le=500, description="At most this many, 1 to 500."),
) -> dict[str, Any]:
    """List a community's groups

    The community's groups in the order they were opened, each with its size, cap and room;
    `oversize=true` lists those over their cap (imported that way), to split."""
    return groups.list_groups(
        ctx, community_id=community_id, oversize=oversize, after=after, limit=limit
    )


@router.post("/communities/{community_id}/groups/import", response_model=ImportOut)
@blocking
def import_groups(ctx: Admin, community_id: CommunityId, body: ImportIn) -> dict[str, Any]:
    """Import existing groups

    Existing groups, one row per member: the groups are created (or found again by their external
    id) with their members; a group over the cap is kept and flagged `oversize`, and listed.
    Unknown members are listed and left out. Admin key."""
    return imports.import_groups(
        ctx,
        community_id=community_id,
        rows=[r.model_dump() for r in body.rows],
        venue_id=body.venue_id,
        size_class=body.size_class,
    )


@router.get("/groups/{group_id}", response_model=GroupOut)
@blocking
def get_group(ctx: Reader, group_id: GroupId) -> dict[str, Any]:
    """Read a group

    A group: its size, its hard cap (the size class or the venue's platform limit, whichever is
    lower), its size class, the room left and whether it is over its cap. Unknown: 404
    `group_not_found`."""
    return groups.get_group(ctx, group_id=group_id)


@router.get("/groups/{group_id}/members", response_model=list[GroupMemberOut])
@blocking
def group_members(ctx: Reader, group_id: GroupId) -> list[dict[str, Any]]:
    """List a group's members

    The group's members in the order they joined, with their role."""
    return groups.group_members(ctx, group_id=group_id)


@router.post("/groups/{group_id}/split", response_model=SplitOut)
@blocking
def split_group(ctx: Writer, group_id: GroupId, body: SplitIn | None = None) -> dict[str, Any]:
    """Split an oversize group

    Split a group over its cap into groups under it, keeping members who interact (by the
    activities recorded between them) together; the new groups are named by the pattern and
    each one's operator gets the invitations to send. A group within its cap: 409
    `group_not_oversize`."""
    return groups.split_group(
        ctx, group_id=group_id, size_class=None if body is None else body.size_class
    )


@router.get("/communities/{community_id}/chronicle", response_model=list[ChronicleEntryOut])
@blocking
def get_chronicle(ctx: Reader, community_id: CommunityId) -> list[dict[str, Any]]:
    """Read the chronicle

    The community's chronicle (大事记), oldest first: the milestones noticed automatically and
    the entries written by hand."""
    return chronicle.chronicle(ctx, community_id=community_id)


@router.post(
    "/communities/{community_id}/chronicle",
    status_code=status.HTTP_201_CREATED,
    response_model=ChronicleEntryOut,
)
@blocking
def add_chronicle_entry(
    ctx: Writer, community_id: CommunityId, body: ChronicleIn
) -> dict[str, Any]:
    """Write a chronicle entry

    An entry in the chronicle written by hand, at the time it happened."""
    return chronicle.add_entry(
        ctx,
        community_id=community_id,
        title=body.title,
        body=body.body,
        occurred_at=body.occurred_at,
    )


@router.post("/communities/{community_id}/chronicle/refresh", response_model=MilestonesOut)
@blocking
def refresh_chronicle(ctx: Writer, community_id: CommunityId) -> dict[str, Any]:
    """Notice milestones

    Notice the milestones the community has reached since the last time (member counts, its first
    activity, its first ¥1,000,000 month, anniversaries) and write each one into the chronicle
    once."""
    return chronicle.refresh_milestones(ctx, community_id=community_id)


@router.post("/welcome-templates", status_code=status.HTTP_201_CREATED, response_model=TemplateOut)
@blocking
def create_template(ctx: Admin, body: TemplateIn) -> dict[str, Any]:
    """Create a welcome template

    A welcome template, sent through the outbox when a member joins a group (`group_joined`) or is
    added by a staff account (`staff_added`); its variables are `{name}`, `{title}`,
    `{referrer}`, `{group}`, `{community}` and `{staff}`. A community's own template comes before
    the tenant's. Admin key."""
    return welcome.create_template(
        ctx, trigger=body.trigger, body=body.body, community_id=body.community_id
    )


@router.get("/welcome-templates", response_model=list[TemplateOut])
@blocking
def list_templates(ctx: Reader) -> list[dict[str, Any]]:
    """List the welcome templates

    The tenant's welcome templates, oldest first."""
    return welcome.list_templates(ctx)
