"""The answers of the community routes, one model per shape; each forbids fields it does not
declare, so a model and the dict its use case returns cannot drift apart unnoticed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shequn.entrypoints.api.shapes import JsonData

# A time in a request body: ISO 8601 with its offset (request bodies are strict otherwise).
Timestamp = Annotated[AwareDatetime, Field(strict=False)]


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- communities, venues, groups ------------------------------------------------------------


class CommunityOut(Out):
    id: str
    name: str
    target_segment: str
    mission: str
    vehicle: str
    member_title: str
    symbol: str
    group_name_pattern: str
    size_class: int
    venue_id: str | None
    join_code: str
    member_count: int
    created_at: datetime
    updated_at: datetime
    leaders: list[str]
    group_count: int
    oversize_groups: int


class CommunityPage(Out):
    items: list[CommunityOut]
    next_after: str | None


class RoutingOut(Out):
    feeds: str
    complaint_escalation_pct: int


class VenueOut(Out):
    id: str
    community_id: str
    name: str
    kind: str
    role: str
    external_id: str | None
    platform_limit: int | None
    created_at: datetime
    routing: RoutingOut


class VenueActivityOut(Out):
    venue_id: str
    name: str
    kind: str
    role: str
    feeds: str
    complaint_escalation_pct: int
    activities: dict[str, int]
    total: int


class VenueReportOut(Out):
    community_id: str
    days: int
    venues: list[VenueActivityOut]
    by_feed: dict[str, int]


class GroupOut(Out):
    id: str
    community_id: str
    venue_id: str | None
    number: int = Field(description="The group's number in its community, from 1.")
    name: str = Field(description="Named by the community's pattern when it opened.")
    size_class: int = Field(description="Dunbar's circle it is meant for: 5, 15, 35 or 150.")
    cap: int = Field(
        description="The hard cap: the size class or the venue's platform limit, if lower."
    )
    size: int = Field(description="Members in it now.")
    region: str | None
    interest: str | None
    staff_account_id: str | None
    lifecycle_stage: str | None
    imported: bool
    external_id: str | None
    split_from: str | None = Field(description="The oversize group it was split from.")
    created_at: datetime
    updated_at: datetime
    room: int = Field(description="Seats left: `cap - size`, never below 0.")
    oversize: bool = Field(description="Over its cap (imported so): to split.")


class GroupPage(Out):
    items: list[GroupOut]
    next_after: str | None


class GroupMemberOut(Out):
    member_id: str
    role: str
    joined_at: datetime


class PlacementOut(Out):
    community_id: str
    member_id: str
    role: str
    region: str | None
    placed_by: str | None
    joined_at: datetime
    group_id: str | None = Field(description="The group the member landed in.")
    group: GroupOut | None = Field(description="That group as it is now.")
    opened_group: bool = Field(description="The group was opened for this member.")


class BulkPlacementOut(Out):
    community_id: str
    policy: str
    run_id: str
    received: int
    placed: int
    already: int
    unknown: list[str]
    opened_groups: int


class MembershipOut(Out):
    community_id: str
    member_id: str
    role: str
    group_id: str | None
    region: str | None
    placed_by: str | None
    joined_at: datetime


class JoinCodeOut(Out):
    community_id: str
    code: str = Field(description="The community's join code (`POST /join-codes/{code}/members`).")
    group: GroupOut = Field(description="The group with room the code points at now.")


class SplitPartOut(Out):
    group_id: str
    name: str
    size: int


class SplitOut(Out):
    group: GroupOut = Field(description="The split group, under its cap now.")
    parts: list[SplitPartOut] = Field(description="The groups opened for the members moved.")
    moved: int = Field(description="Members moved out of the split group.")


class ImportOut(Out):
    community_id: str
    cap: int
    groups: int
    members: int
    oversize: list[str] = Field(description="The imported groups over the cap (`grp_…`).")
    unknown: list[str] = Field(description="Members of the rows the tenant does not have.")
    duplicates: int = Field(description="Rows repeating a member of the same group.")
    already_placed: int = Field(description="Members already in another group, left there.")


class ChronicleEntryOut(Out):
    id: str
    community_id: str
    kind: str
    milestone_key: str | None
    title: str
    body: str
    occurred_at: datetime
    created_by: str
    created_at: datetime


class MilestonesOut(Out):
    community_id: str
    noticed: int
    written: int


class TemplateOut(Out):
    id: str
    community_id: str | None
    trigger: str
    body: str
    active: bool
    created_at: datetime


# --- staff accounts -------------------------------------------------------------------------


class StaffAccountOut(Out):
    id: str
    name: str
    persona: str
    operator: str
    channel: str
    external_id: str | None
    region: str | None
    friend_cap: int
    daily_add_limit: int
    backup_account_id: str | None
    outbox_channel_id: str | None
    status: str
    member_count: int
    adds_today: int
    last_assigned_at: datetime | None
    created_at: datetime
    updated_at: datetime
    working_hours: str
    load_bp: int = Field(description="Members held, in basis points of the friend cap.")
    near_full: bool = Field(description="At 90 % of its friend cap or more.")


class StaffAccountPage(Out):
    items: list[StaffAccountOut]
    next_after: str | None


class AssignmentOut(Out):
    member_id: str
    staff_account_id: str
    via: str
    state: str | None
    assigned_at: datetime


class AssignmentPage(Out):
    items: list[AssignmentOut]
    next_after: str | None


class WaitingOut(Out):
    """A member or group the handover could not move yet: listed, never dropped."""

    kind: str = Field(description="`member` or `group`.")
    subject_id: str
    reason: str | None = Field(
        description="Why: `no_receiver_room`, `transfer_limit` (twice in 90 days), "
        "`group_daily_limit` (300 a day), `refused`, …"
    )
    not_before: datetime | None = Field(description="The earliest it can move, if known.")


class HandoverOut(Out):
    id: str
    from_account_id: str
    fallback_account_id: str | None
    status: str
    started_at: datetime
    updated_at: datetime
    members: dict[str, int] = Field(
        description="The members' transfers by state (`pending`, `accepted`, `refused`, "
        "`receiver_full`, `waiting`)."
    )
    groups: dict[str, int] = Field(description="The groups' transfers by state.")
    waiting: list[WaitingOut]
    remaining_members: int = Field(description="Members the leaving account still holds.")


class HandoverRunOut(HandoverOut):
    accepted_now: int
    requested_now: int
    calls_now: int
    next_after: str | None


class HandoverOutcomesOut(HandoverOut):
    accepted_now: int
    retried_now: int


class HandoverItemOut(Out):
    id: str
    kind: str
    subject_id: str
    from_account_id: str
    to_account_id: str | None
    status: str
    reason: str | None
    call_no: int | None
    requested_at: datetime | None
    due_at: datetime | None
    decided_at: datetime | None
    not_before: datetime | None
    created_at: datetime


class StaffKpiOut(Out):
    staff_account_id: str
    name: str
    status: str
    members: int
    friend_cap: int
    load_bp: int
    near_full: bool
    active_members: int
    attributed_gmv_fen: int = Field(description="Paid orders of its members, in fen.")
    replies: int
    avg_reply_seconds: int | None = Field(description="Mean time to a reply, in seconds.")
    max_reply_seconds: int | None
    days: int


# --- rituals --------------------------------------------------------------------------------


class ConditionOut(Out):
    fact: str = Field(description="The fact tested (`paid_order_count`, `check_ins`, …).")
    op: Literal[">=", ">", "=", "<=", "<"]
    value: int


class CriteriaOut(Out):
    all: list[ConditionOut] = Field(description="The conditions a member meets all of.")


class BadgeOut(Out):
    id: str
    name: str
    description: str
    kind: Literal["badge", "title"]
    criteria: CriteriaOut | None = Field(
        description="What awards it automatically; null: awarded by hand only."
    )
    active: bool
    created_at: datetime


class BadgeGrantedOut(Out):
    badge_id: str
    members: int


class GrantOut(Out):
    awarded: list[BadgeGrantedOut]
    total: int


class AwardOut(Out):
    badge_id: str
    name: str
    kind: str
    description: str
    awarded_by: str
    reason: str | None
    awarded_at: datetime


class MemberBadgesOut(Out):
    member_id: str
    title: str | None
    items: list[AwardOut]


class CertificateOut(Out):
    id: str
    serial: str
    member_id: str
    kind: str
    holder_name: str
    title: str
    tier: str | None
    territory: str | None
    citation: str | None
    valid_from: datetime
    valid_until: datetime | None
    issued_at: datetime
    revoked_at: datetime | None
    revoke_reason: str | None
    code: str = Field(description="The verification code printed on the certificate.")
    pdf_url: str = Field(description="Where its PDF is read (with a key).")
    verify_url: str = Field(description="Its public verification page (no key).")


class VerificationOut(Out):
    valid: bool = Field(description="Valid today.")
    status: Literal["valid", "expired", "not_yet_valid"]
    brand: str
    holder_name: str
    kind: str
    title: str
    tier: str | None
    territory: str | None
    citation: str | None
    valid_from: datetime
    valid_until: datetime | None
    issued_at: datetime


# --- activities and the outbox --------------------------------------------------------------


class ActivitiesOut(Out):
    received: int = Field(description="Activities in the batch.")
    recorded: int = Field(description="Activities new to the system, recorded now.")
    duplicates: int = Field(
        description="Activities already recorded (the same external id), counted once."
    )
    members_added: int = Field(description="Members put on a staff account by an `add`.")
    badges_awarded: int = Field(description="Automatic badges the new facts earned.")


class ActivitySourceOut(Out):
    id: str
    name: str
    active: bool
    created_at: datetime
    secret: str
    webhook_path: str


class ActivityOut(Out):
    id: str
    source_id: str
    external_id: str
    kind: str
    member_id: str | None
    target_member_id: str | None
    community_id: str | None
    group_id: str | None
    venue_id: str | None
    staff_account_id: str | None
    state: str | None
    value: int | None
    occurred_at: datetime
    received_at: datetime


class ActivityFactOut(Out):
    kind: str
    count: int
    first_at: datetime
    last_at: datetime


class MemberActivityOut(Out):
    member_id: str
    facts: list[ActivityFactOut]
    items: list[ActivityOut]


class OutboxMessageOut(Out):
    id: str
    dedupe_key: str
    adapter: str
    channel_id: str | None
    kind: str
    staff_account_id: str | None
    member_id: str | None
    group_id: str | None
    body: str
    payload: dict[str, JsonData] = Field(
        description="What the adapter needs beside the text, by kind (a transfer call's "
        "members, a split's invitations, …)."
    )
    status: str
    attempts: int
    due_at: datetime | None
    next_attempt_at: datetime
    last_error: str | None
    finished_by: str | None
    finished_at: datetime | None
    created_at: datetime


class OutboxPage(Out):
    items: list[OutboxMessageOut]
    next_after: str | None


class ChannelOut(Out):
    id: str
    adapter: str
    name: str
    url: str
    active: bool
    created_at: datetime


class ChannelCreatedOut(ChannelOut):
    secret: str


class DispatchOut(Out):
    sent: int
    failed: int
    gave_up: int
