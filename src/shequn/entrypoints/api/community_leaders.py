"""Leaders and role models (领): leaderboards over 7 d, 30 d or all time per community or
group, featured role models with their story, and the lecturer roster."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, status
from pydantic import Field

from shequn.community.leaders import service as leaders
from shequn.entrypoints.api.http import API_PREFIX, Body, Reader, Writer, blocking
from shequn.entrypoints.api.shapes import Shape

router = APIRouter(prefix=API_PREFIX, tags=["leaders"])


class BoardItem(Shape):
    rank: int
    member_id: str
    name: str
    score: int


class BoardOut(Shape):
    kind: str
    period: str
    since: datetime | None
    items: list[BoardItem]


class RoleModelIn(Body):
    member_id: str = Field(max_length=40, description="The member (`mem_…`); unknown: 404.")
    title: str = Field(max_length=80, description="What it is a model of (1 to 80).")
    story: str = Field(max_length=2000, description="Its story, for others to follow.")
    community_id: str | None = Field(
        default=None, max_length=40, description="The community it is featured in."
    )


class RoleModelOut(Shape):
    id: str
    member_id: str
    community_id: str | None
    title: str
    story: str
    active: bool
    featured_at: datetime
    name: str


class LecturerEvent(Shape):
    event_id: str
    title: str
    classes_given: int


class LecturerOut(Shape):
    member_id: str
    name: str
    classes_given: int
    events: list[LecturerEvent]


@router.get("/leaderboards/{kind}", response_model=BoardOut)
@blocking
def leaderboard(
    ctx: Reader,
    kind: Annotated[
        Literal["sales", "referrals", "streaks", "points", "attendance"],
        Path(description="What is ranked."),
    ],
    period: Annotated[
        Literal["7d", "30d", "all"],
        Query(description="Today and the 6 (29) local days before it, or all time."),
    ] = "7d",
    community_id: Annotated[
        str | None, Query(max_length=40, description="Only this community's members.")
    ] = None,
    group_id: Annotated[
        str | None, Query(max_length=40, description="Only this group's members.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="At most this many.")] = 20,
) -> dict[str, Any]:
    """Rank members on a leaderboard

    Sales (fen paid), referrals, streaks, points earned or attendance; equal scores share a
    rank."""
    return leaders.leaderboard(
        ctx, kind=kind, period=period, community_id=community_id, group_id=group_id, limit=limit
    )


@router.post("/role-models", status_code=status.HTTP_201_CREATED, response_model=RoleModelOut)
@blocking
def feature_role_model(ctx: Writer, body: RoleModelIn) -> dict[str, Any]:
    """Feature a role model with its story

    A member others can follow (榜样)."""
    return leaders.feature_role_model(ctx, **body.model_dump())


@router.get("/role-models", response_model=list[RoleModelOut])
@blocking
def list_role_models(
    ctx: Reader,
    community_id: Annotated[
        str | None, Query(max_length=40, description="Only this community's.")
    ] = None,
) -> list[dict[str, Any]]:
    """List the featured role models

    Newest first."""
    return leaders.list_role_models(ctx, community_id=community_id)


@router.get("/lecturers", response_model=list[LecturerOut])
@blocking
def lecturer_roster(ctx: Reader) -> list[dict[str, Any]]:
    """List the lecturer roster

    Each lecturer with the classes given (occurrences someone attended)."""
    return leaders.lecturers(ctx)
