"""The staff-account matrix: accounts, assignment by policy, adds, handover and KPIs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import Field

from shequn.community import kpis
from shequn.community.staff import handover, transfers
from shequn.community.staff import service as staff
from shequn.entrypoints.api.community_models import (
    AssignmentOut,
    AssignmentPage,
    HandoverItemOut,
    HandoverOut,
    HandoverOutcomesOut,
    HandoverRunOut,
    StaffAccountOut,
    StaffAccountPage,
    StaffKpiOut,
)
from shequn.entrypoints.api.http import API_PREFIX, Admin, Body, Reader, Writer, blocking

router = APIRouter(prefix=API_PREFIX, tags=["staff accounts"])

Channel = Literal["personal_wechat", "wecom"]
AssignPolicy = Literal["round_robin", "least_loaded", "region", "referrer"]

AccountId = Annotated[str, Path(description="The staff account's id (`stf_…`).")]
HandoverId = Annotated[str, Path(description="The handover's id (`hov_…`).")]
After = Annotated[
    str | None,
    Query(max_length=40, description="The `next_after` of the page before; absent: the first."),
]
HOURS_TEXT = (
    "When the account takes new members, in the tenant's time zone: `HH:MM-HH:MM` "
    "(`00:00-24:00` all day; a range past midnight such as `20:00-02:00` is allowed); else "
    "422 `working_hours_invalid`."
)
FRIEND_CAP_TEXT = (
    "Members the account holds at most (a personal WeChat and a new WeChat Work account "
    "start at 5,000); at 90 % it is `near_full`; 1 to 20,000."
)
ADD_LIMIT_TEXT = "New members the account may take a day, 1 to 5,000."
BACKUP_TEXT = (
    "Another account (`stf_…`) that takes over when this one is full or leaves; unknown: 404."
)
CHANNEL_ID_TEXT = (
    "The outbox channel (`chn_…`) the account's messages go through; absent: the operator's "
    "task list."
)


class AccountCreate(Body):
    name: str = Field(max_length=80, description="The account's name, 1 to 80 characters.")
    persona: str = Field(
        default="", max_length=80, description="The person it speaks as (`宝妈 IP`)."
    )
    operator: str = Field(
        default="", max_length=80, description="Who runs the account on the brand's side."
    )
    channel: Channel = Field(
        default="personal_wechat",
        description="`personal_wechat` (never automated: what it should send becomes an "
        "operator task) or `wecom` (WeChat Work).",
    )
    external_id: str | None = Field(
        default=None, max_length=80, description="The account's id on its platform."
    )
    region: str | None = Field(
        default=None, max_length=40, description="The region it serves, for the `region` policy."
    )
    friend_cap: int = Field(default=5_000, ge=1, le=20_000, description=FRIEND_CAP_TEXT)
    daily_add_limit: int = Field(default=300, ge=1, le=5_000, description=ADD_LIMIT_TEXT)
    working_hours: str = Field(default="09:00-22:00", max_length=11, description=HOURS_TEXT)
    backup_account_id: str | None = Field(default=None, max_length=40, description=BACKUP_TEXT)
    outbox_channel_id: str | None = Field(default=None, max_length=40, description=CHANNEL_ID_TEXT)


UNCHANGED = " Absent or null: unchanged."


class AccountPatch(Body):
    persona: str | None = Field(
        default=None, max_length=80, description="The person it speaks as." + UNCHANGED
    )
    operator: str | None = Field(
        default=None, max_length=80, description="Who runs the account." + UNCHANGED
    )
    region: str | None = Field(
        default=None, max_length=40, description="The region it serves." + UNCHANGED
    )
    friend_cap: int | None = Field(
        default=None, ge=1, le=20_000, description=FRIEND_CAP_TEXT + UNCHANGED
    )
    daily_add_limit: int | None = Field(
        default=None, ge=1, le=5_000, description=ADD_LIMIT_TEXT + UNCHANGED
    )
    working_hours: str | None = Field(
        default=None, max_length=11, description=HOURS_TEXT + UNCHANGED
    )
    backup_account_id: str | None = Field(
        default=None, max_length=40, description=BACKUP_TEXT + UNCHANGED
    )
    outbox_channel_id: str | None = Field(
        default=None, max_length=40, description=CHANNEL_ID_TEXT + UNCHANGED
    )
    status: Literal["active", "paused"] | None = Field(
        default=None,
        description="`paused`: no new members are given to it; `active` again." + UNCHANGED,
    )


class AssignIn(Body):
    member_id: str = Field(
        max_length=40, description="The member (`mem_…`); unknown: 404 `member_not_found`."
    )
    policy: AssignPolicy | None = Field(
        default=None,
        description="`round_robin` (the account given a member longest ago), "
        "`least_loaded`, `region` (an account of the member's region) or `referrer` (the "
        "referrer's account, then its backup). Absent: `least_loaded`. Every policy skips "
        "accounts that are full, off duty, paused or at their daily add limit; none left: 409 "
        "`no_staff_account_available`.",
    )
    region: str | None = Field(
        default=None, max_length=40, description="The member's region, for the `region` policy."
    )


class AddIn(Body):
    member_id: str = Field(
        max_length=40, description="The member the account added (`mem_…`); unknown: 404."
    )
    state: str | None = Field(
        default=None,
        min_length=1,
        max_length=30,
        description="The `state` of the contact-me code the member scanned (at most 30 "
        "characters, as WeChat Work carries it back with the add event).",
    )


class HandoverIn(Body):
    fallback_account_id: str | None = Field(
        default=None,
        max_length=40,
        description="The receiver of last resort (`stf_…`): it takes the account's groups "
        "and the members a full receiver refused. Absent: the account's backup.",
    )
    receivers: list[str] | None = Field(
        default=None,
        max_length=200,
        description="The accounts that take the members (`stf_…`, at most 200); absent: "
        "every other active account. An unknown one: 404; the leaving account itself: 422.",
    )


class OutcomeIn(Body):
    member_id: str = Field(
        max_length=40, description="A member whose transfer is pending in the handover."
    )
    outcome: Literal["accepted", "refused", "receiver_full"] = Field(
        description="What the platform said: `accepted`; `refused` by the customer (the "
        "member stays with no account and is listed); `receiver_full` (asked again of the "
        "fallback receiver)."
    )


class OutcomesIn(Body):
    items: list[OutcomeIn] = Field(
        min_length=1, max_length=1_000, description="The outcomes, 1 to 1,000."
    )


def _replayed(response: Response, replayed: bool) -> None:
    if replayed:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"


@router.post("/staff-accounts", status_code=status.HTTP_201_CREATED, response_model=StaffAccountOut)
@blocking
def create_account(ctx: Admin, body: AccountCreate) -> dict[str, Any]:
    """Create a staff account

    A staff account of the matrix (个人号矩阵): its persona, operator, channel, friend cap
    (5,000 unless said), daily add limit, working hours in the tenant's time zone and backup
    account. Admin key."""
    return staff.create_account(ctx, **body.model_dump())


@router.get("/staff-accounts", response_model=StaffAccountPage)
@blocking
def list_accounts(
    ctx: Reader,
    after: After = None,
    limit: int = Query(default=100, ge=1, le=500, description="At most this many, 1 to 500."),
) -> dict[str, Any]:
    """List the staff accounts

    The staff accounts, oldest first, each with its load in basis points of its cap; an account at
    90 % of its cap is `near_full`."""
    return staff.list_accounts(ctx, after=after, limit=limit)


@router.get("/staff-accounts/{account_id}", response_model=StaffAccountOut)
@blocking
def get_account(ctx: Reader, account_id: AccountId) -> dict[str, Any]:
    """Read a staff account

    One staff account with its load and today's adds. Unknown: 404 `staff_account_not_found`."""
    return staff.get_account(ctx, account_id=account_id)


@router.patch("/staff-accounts/{account_id}", response_model=StaffAccountOut)
@blocking
def update_account(ctx: Admin, account_id: AccountId, body: AccountPatch) -> dict[str, Any]:
    """Change a staff account

    Change an account's persona, operator, region, limits, working hours, backup or channel, or
    pause it; fields left out stay. Admin key."""
    return staff.update_account(
        ctx, account_id=account_id, **body.model_dump(exclude_unset=True, exclude_none=True)
    )


@router.post(
    "/staff-assignments", status_code=status.HTTP_201_CREATED, response_model=AssignmentOut
)
@blocking
def assign(ctx: Writer, body: AssignIn, response: Response) -> dict[str, Any]:
    """Assign a member to a staff account

    Give a member to a staff account by policy (round robin, least loaded, region, the referrer's
    account), skipping accounts that are full, off duty, paused or at their daily add limit; the
    account's welcome goes to the outbox. A member already assigned: 200, where it is."""
    assigned, replayed = staff.assign_member(
        ctx, member_id=body.member_id, policy=body.policy, region=body.region
    )
    _replayed(response, replayed)
    return assigned


@router.post(
    "/staff-accounts/{account_id}/members",
    status_code=status.HTTP_201_CREATED,
    response_model=AssignmentOut,
)
@blocking
def add_member(
    ctx: Writer, account_id: AccountId, body: AddIn, response: Response
) -> dict[str, Any]:
    """Record an add by a staff account

    The account added this member on its platform (with the contact-me code's `state`): the
    member is the account's from now on and the `staff_added` welcome goes to the outbox, due
    within 20 seconds. Again: 200, unchanged. A member of another account: 409
    `member_has_staff_account`."""
    added, replayed = staff.add_member(
        ctx, account_id=account_id, member_id=body.member_id, state=body.state
    )
    _replayed(response, replayed)
    return added


@router.get("/staff-accounts/{account_id}/members", response_model=AssignmentPage)
@blocking
def account_members(
    ctx: Reader,
    account_id: AccountId,
    after: After = None,
    limit: int = Query(default=200, ge=1, le=1_000, description="At most this many, 1 to 1,000."),
) -> dict[str, Any]:
    """List an account's members

    The members an account looks after, a page at a time, with how each came to it."""
    return staff.members_of(ctx, account_id=account_id, after=after, limit=limit)


@router.post("/staff-accounts/{account_id}/handover", response_model=HandoverRunOut)
@blocking
def hand_over(ctx: Admin, account_id: AccountId, body: HandoverIn | None = None) -> dict[str, Any]:
    """Hand over a leaving account

    Start or carry on the handover of an account that leaves. Transfers whose 24 hours passed
    without a refusal are accepted; the account's other members are spread over the receivers,
    never past a receiver's room nor a member's two transfers in 90 days, in calls of at most 100
    members; its groups go to the fallback receiver, at most 300 a day. What cannot move yet is
    listed in `waiting` with why and from when, never dropped. Run it again to carry on. Admin
    key."""
    return handover.hand_over(
        ctx,
        account_id=account_id,
        fallback_account_id=None if body is None else body.fallback_account_id,
        receivers=None if body is None else body.receivers,
    )


@router.get("/handovers/{handover_id}", response_model=HandoverOut)
@blocking
def get_handover(ctx: Reader, handover_id: HandoverId) -> dict[str, Any]:
    """Read a handover

    A handover as it stands: its transfers counted by state and what still waits."""
    return transfers.get_handover(ctx, handover_id=handover_id)


@router.get("/handovers/{handover_id}/items", response_model=list[HandoverItemOut])
@blocking
def handover_items(ctx: Reader, handover_id: HandoverId) -> list[dict[str, Any]]:
    """List a handover's transfers

    Every transfer of a handover, asked for or held back, with its receiver, state and times: the
    history of who looked after whom."""
    return transfers.handover_items_of(ctx, handover_id=handover_id)


@router.post("/handovers/{handover_id}/outcomes", response_model=HandoverOutcomesOut)
@blocking
def record_outcomes(ctx: Writer, handover_id: HandoverId, body: OutcomesIn) -> dict[str, Any]:
    """Record transfer outcomes

    What the platform said of pending transfers: accepted, refused by the customer (listed), or
    failed because the receiver is full (asked again of the fallback receiver at once). A member
    with no pending transfer in the handover: 409."""
    return transfers.record_outcomes(
        ctx, handover_id=handover_id, outcomes=[i.model_dump() for i in body.items]
    )


@router.get("/staff-kpis", response_model=list[StaffKpiOut])
@blocking
def staff_kpis(
    ctx: Reader,
    account_id: str | None = Query(
        default=None, max_length=40, description="Only this account (`stf_…`); absent: all."
    ),
    days: int = Query(
        default=30, ge=1, le=366, description="Over the last this many days, 1 to 366."
    ),
) -> list[dict[str, Any]]:
    """Staff account KPIs

    Per account: members, members active over the days, GMV of their paid orders (attributed
    to the account) in fen, replies and reply times in seconds."""
    return kpis.staff_kpis(ctx, account_id=account_id, days=days)
