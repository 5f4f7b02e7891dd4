"""Activities from outside channels (batch API and signed webhook) and the outbox of
messages to send (operator tasks, signed-webhook channels)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import Field

from shequn.community.activities import facts
from shequn.community.activities import service as activities
from shequn.community.activities.rules import MAX_TEXT, ActivityIn, ActivityKind
from shequn.community.outbox import dispatcher
from shequn.community.outbox import service as outbox
from shequn.context import Ctx
from shequn.entrypoints.api.community_health import AlertOut
from shequn.entrypoints.api.community_models import (
    ActivitiesOut,
    ActivitySourceOut,
    ChannelCreatedOut,
    ChannelOut,
    DispatchOut,
    MemberActivityOut,
    OutboxMessageOut,
    OutboxPage,
    Timestamp,
)
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
from shequn.flows import activity_ingestion
from shequn.webhooks.rules import SIGNATURE_HEADER

router = APIRouter(prefix=API_PREFIX, tags=["activities and outbox"])

Kind = Literal["message", "like", "visit", "check_in", "add", "reply", "feedback"]
NO_KEY: dict[str, Any] = {"security": []}


MemberId = Annotated[str, Path(description="The member's id (`mem_…`).")]
MessageId = Annotated[str, Path(description="The outbox message's id (`msg_…`).")]
TenantId = Annotated[str, Path(description="The tenant's id (`tn_…`) the source belongs to.")]
SourceId = Annotated[str, Path(description="The activity source's id (`asrc_…`).")]
NOT_FOUND_TEXT = "; unknown in the tenant: 422 `activity_{what}_unknown`, and nothing is written."


class ActivityItem(Body):
    external_id: str = Field(
        min_length=1,
        max_length=80,
        description="The event's id on the outside platform: the same id sent again (from "
        "the same source) is the same activity, counted once.",
    )
    kind: Kind = Field(
        description="`message`, `like`, `visit`, `check_in`, `add` (a staff account added "
        "the member, with the contact-me `state`), `reply` (a staff account answered, "
        "`value` the seconds it took) or `feedback`."
    )
    occurred_at: Timestamp = Field(
        description="When it happened on the platform, with its offset: counts, firsts and "
        "lasts go by this time, not by arrival; more than 10 minutes ahead of the server: 422."
    )
    member_id: str | None = Field(
        default=None,
        max_length=40,
        description="The member who acted (`mem_…`)" + NOT_FOUND_TEXT.format(what="member"),
    )
    target_member_id: str | None = Field(
        default=None,
        max_length=40,
        description="The member acted upon, for messages, likes and replies between members "
        "(they keep members together when a group is split).",
    )
    group_id: str | None = Field(
        default=None,
        max_length=40,
        description="The group it happened in (`grp_…`)" + NOT_FOUND_TEXT.format(what="group"),
    )
    venue_id: str | None = Field(
        default=None,
        max_length=40,
        description="The venue it happened in (`ven_…`); its role routes it in reports.",
    )
    staff_account_id: str | None = Field(
        default=None,
        max_length=40,
        description="The staff account involved (`stf_…`), for adds and replies.",
    )
    state: str | None = Field(
        default=None,
        min_length=1,
        max_length=30,
        description="With `add`: the contact-me code's `state` (at most 30 characters).",
    )
    value: int | None = Field(
        default=None,
        ge=0,
        le=10**9,
        description="A figure the kind carries (with `reply`: the seconds to the answer).",
    )
    text: str | None = Field(
        default=None,
        max_length=MAX_TEXT,
        description="With `message`, `reply` or `feedback`: the words written, at most "
        f"{MAX_TEXT:,} characters, read for sensitive words and not kept (a crisis alert "
        "keeps the words matched and a short excerpt). With another kind: 422 "
        "`activity_text_not_allowed`.",
    )


class ActivityBatch(Body):
    items: list[ActivityItem] = Field(
        min_length=1,
        max_length=1_000,
        description="1 to 1,000 activities in any order; one bad activity refuses the whole batch.",
    )


class IngestedOut(ActivitiesOut):
    scanned: int = Field(description="New messages whose text was read for sensitive words.")
    crisis_alerts: list[AlertOut] = Field(
        description="Crisis alerts the texts raised or brought up to date: one per group "
        "(or writer outside a group), with the words, the writers, the groups and the "
        "members reached."
    )


class SourceIn(Body):
    name: str = Field(max_length=80, description="The source's name (`企微回调`).")


class ChannelIn(Body):
    name: str = Field(max_length=80, description="The channel's name.")
    url: str = Field(
        max_length=2048,
        description="Where each message is POSTed, signed (`https://…`; else 422).",
    )


@router.post("/activities", response_model=IngestedOut)
@blocking
def record_activities(ctx: Writer, body: ActivityBatch) -> dict[str, Any]:
    """Record activities

    A batch of activities from outside channels (messages, likes, visits, check-ins, adds,
    replies, feedback), idempotent on each activity's external id: an activity delivered again is
    counted once (`duplicates`), and activities arriving out of order are counted in event-time
    order. Members' facts move, automatic badges are awarded at once, and a staff account's add
    puts the member on the account. The `text` of a new message is read for sensitive words: a
    match raises a crisis alert (once per group, not again for a delivery sent twice). One
    activity naming something the tenant does not have refuses the whole batch and writes
    nothing."""
    return activity_ingestion.record_and_scan(
        ctx,
        items=[
            ActivityIn(
                external_id=item.external_id,
                kind=ActivityKind(item.kind),
                occurred_at=item.occurred_at,
                member_id=item.member_id,
                target_member_id=item.target_member_id,
                group_id=item.group_id,
                venue_id=item.venue_id,
                staff_account_id=item.staff_account_id,
                state=item.state,
                value=item.value,
                text=item.text,
            )
            for item in body.items
        ],
    )


@router.post(
    "/activity-sources", status_code=status.HTTP_201_CREATED, response_model=ActivitySourceOut
)
@blocking
def create_source(ctx: Admin, request: Request, body: SourceIn) -> dict[str, Any]:
    """Create an activity source

    An outside channel with a signed webhook of its own (`webhook_path`); its signing secret is in
    this answer only. Admin key."""
    return activities.create_source(
        ctx, server_key=app_state(request).settings.secret_key, name=body.name
    )


@router.post(
    "/hooks/activities/{tenant_id}/{source_id}",
    response_model=IngestedOut,
    openapi_extra={
        **NO_KEY,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ActivityBatch"}}
            },
        },
    },
)
async def signed_webhook(
    request: Request, tenant_id: TenantId, source_id: SourceId
) -> dict[str, Any]:
    """Receive signed activities

    An activity source's webhook, without a key: the body is `{"items": [...]}` as for `POST
    /activities`, signed in `Shequn-Signature: t=<unix seconds>,v1=<hex>`: an HMAC-SHA256 of
    `f"{t}.{body}"` with the source's secret. A signature that does not match, or a `t` more than
    five minutes away from the server's time (a replay): 403 `activity_signature_invalid`.
    Idempotent and order-free as `POST /activities`."""
    state = app_state(request)
    body = await request.body()
    ctx = Ctx(
        db=state.db,
        clock=state.clock,
        tenant_id=tenant_id,
        actor=f"source:{source_id}"[:80],
        snapshot=state.snapshot,
    )
    return await run_use_case(
        state.db,
        activity_ingestion.receive_signed,
        ctx,
        server_key=state.settings.secret_key,
        source_id=source_id,
        body=body,
        signature_header=request.headers.get(SIGNATURE_HEADER),
    )


@router.get("/members/{member_id}/activities", response_model=MemberActivityOut)
@blocking
def member_activity(
    ctx: Reader,
    member_id: MemberId,
    kind: Kind | None = Query(default=None, description="Only activities of this kind."),
    limit: int = Query(
        default=200, ge=1, le=1_000, description="At most this many activities, 1 to 1,000."
    ),
) -> dict[str, Any]:
    """Read a member's activity

    A member's activity facts (count, first and last time by kind) and its activities in event-time
    order."""
    return facts.member_activity(ctx, member_id=member_id, kind=kind, limit=limit)


@router.get("/outbox", response_model=OutboxPage)
@blocking
def list_outbox(
    ctx: Reader,
    message_status: Literal["pending", "sent", "done", "skipped", "failed"] | None = Query(
        default=None,
        alias="status",
        description="Only messages in this state: `pending` (to send), `sent` (by an "
        "automated adapter), `done` or `skipped` (by the operator), `failed` (given up).",
    ),
    adapter: Literal["operator_task", "signed_webhook", "wecom"] | None = Query(
        default=None,
        description="Only messages of this adapter: `operator_task` (the operators' task "
        "list), `signed_webhook` or `wecom`.",
    ),
    staff_account_id: str | None = Query(
        default=None, max_length=40, description="Only the tasks of this staff account."
    ),
    after: str | None = Query(
        default=None,
        max_length=40,
        description="The `next_after` of the page before; absent: the first.",
    ),
    limit: int = Query(
        default=50,
        ge=1,
        le=outbox.MAX_PAGE,
        description=f"At most this many, 1 to {outbox.MAX_PAGE}.",
    ),
) -> dict[str, Any]:
    """List the outbox

    Every message the system wants sent, oldest first, with its adapter and delivery state. An
    operator's task list is `?adapter=operator_task&status=pending&staff_account_id=…`."""
    return outbox.outbox_page(
        ctx,
        status=message_status,
        adapter=adapter,
        staff_account_id=staff_account_id,
        after=after,
        limit=limit,
    )


@router.post("/outbox/{message_id}/done", response_model=OutboxMessageOut)
@blocking
def task_done(ctx: Writer, message_id: MessageId) -> dict[str, Any]:
    """Mark a task done

    The operator sent the task's message by hand. A message that is not pending (or an automated
    one): 409 `outbox_transition_invalid`."""
    return outbox.mark_done(ctx, message_id=message_id)


@router.post("/outbox/{message_id}/skip", response_model=OutboxMessageOut)
@blocking
def task_skipped(ctx: Writer, message_id: MessageId) -> dict[str, Any]:
    """Skip a task

    The operator will not send it (or gives up on a failed message). Not pending or failed: 409
    `outbox_transition_invalid`."""
    return outbox.mark_skipped(ctx, message_id=message_id)


@router.post("/outbox/dispatch", response_model=DispatchOut)
@blocking
def dispatch(ctx: Admin, request: Request) -> dict[str, Any]:
    """Dispatch due messages

    Send the tenant's due messages of automated adapters (signed webhooks) now; failures are tried
    again later with back-off, and given up after the last attempt. Admin key."""
    settings = app_state(request).settings
    return dispatcher.dispatch_all(
        ctx.db,
        server_key=settings.secret_key,
        clock=ctx.clock,
        tenant_id=ctx.tenant_id,
        allow_private=settings.webhook_allow_private_hosts,
    ).as_dict()


@router.post(
    "/outbox-channels", status_code=status.HTTP_201_CREATED, response_model=ChannelCreatedOut
)
@blocking
def create_channel(ctx: Admin, request: Request, body: ChannelIn) -> dict[str, Any]:
    """Create an outbox channel

    A signed-webhook channel: messages routed to it are POSTed to its URL, signed as the event
    webhooks are (`Shequn-Signature`), with the secret in this answer only. Admin key."""
    settings = app_state(request).settings
    return outbox.create_channel(
        ctx,
        server_key=settings.secret_key,
        name=body.name,
        url=body.url,
        allow_private=settings.webhook_allow_private_hosts,
    )


@router.get("/outbox-channels", response_model=list[ChannelOut])
@blocking
def list_channels(ctx: Admin) -> list[dict[str, Any]]:
    """List the outbox channels

    The tenant's signed-webhook channels, never with their secrets. Admin key."""
    return outbox.list_channels(ctx)
