"""Group health (active ratio, silent and drifting members, message concentration,
unanswered customer messages beyond the reply-time SLA) and the alerts of community
operations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import Field

from shequn.community.health import service as health
from shequn.entrypoints.api.http import API_PREFIX, Reader, blocking
from shequn.entrypoints.api.shapes import JsonData, Shape, cursor

router = APIRouter(prefix=API_PREFIX, tags=["group health"])


class UnansweredOut(Shape):
    member_id: str
    asked_at: datetime


class HealthOut(Shape):
    group_id: str
    at: datetime
    size: int
    cap: int
    active_7d: int
    active_ratio_bp: int
    silent_14d: int
    drifting: int
    top5_share_bp: int
    messages_7d: int
    unanswered: int
    drifting_members: list[str]
    unanswered_messages: list[UnansweredOut]
    alerts: list[str]


class AlertOut(Shape):
    id: str
    kind: str
    subject_type: str
    subject_id: str
    status: str
    details: dict[str, JsonData] = Field(
        description="The figures: for a crisis its triggers, complaints, the groups and the "
        "members reached."
    )
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None


class AlertPage(Shape):
    items: list[AlertOut]
    next_after: str | None


@router.get("/groups/{group_id}/health", response_model=HealthOut)
@blocking
def group_health(
    ctx: Reader,
    group_id: Annotated[str, Path(description="The group (`grp_…`); unknown: 404.")],
    sla_minutes: Annotated[
        int, Query(ge=1, le=1440, description="The reply-time SLA, in working minutes.")
    ] = 30,
) -> dict[str, Any]:
    """Show a group's health

    7-day active ratio, silent (14 d) and drifting members, the top-5 share of messages and
    customer messages unanswered beyond the SLA in working hours."""
    return health.group_health(ctx, group_id=group_id, sla_minutes=sla_minutes)


@router.get("/alerts", response_model=AlertPage)
@blocking
def list_alerts(
    ctx: Reader,
    status: Annotated[
        Literal["open", "resolved"], Query(description="Open (default) or resolved alerts.")
    ] = "open",
    kind: Annotated[
        Literal["low_activity", "oversize", "slow_replies", "crisis"] | None,
        Query(description="Only alerts of this kind."),
    ] = None,
    after: Annotated[
        str | None,
        Query(
            max_length=40,
            description="The `next_after` of the page before; absent: the first.",
            json_schema_extra=cursor("alrt"),
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="At most this many.")] = 50,
) -> dict[str, Any]:
    """List the alerts of community operations

    Newest first: crises (with the groups and members reached), low activity, oversize."""
    return health.list_alerts(ctx, status=status, kind=kind, after=after, limit=limit)
