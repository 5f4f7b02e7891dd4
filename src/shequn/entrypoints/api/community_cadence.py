"""SOPs and content cadence: scheduled posts and SOP steps for a staff account, a group or a
segment within the cadence limits and one monthly message budget per member, and the copy
library (文案库) with Chinese full-text search."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from pydantic import Field

from shequn.community.cadence import service as cadence
from shequn.entrypoints.api.community_models import Timestamp
from shequn.entrypoints.api.http import API_PREFIX, Admin, Body, Reader, Writer, blocking
from shequn.entrypoints.api.shapes import Shape

# A local date in a request body, as ISO 8601 text (request bodies are strict otherwise).
LocalDate = Annotated[date, Field(strict=False)]

router = APIRouter(prefix=API_PREFIX, tags=["cadence"])

TARGET_TEXT = (
    "`staff_account` (its members), `group` (the group's members) or `segment` (members "
    "with the tag `target_id`)."
)


class CadenceIn(Body):
    posts_per_day: int | None = Field(default=None, ge=1, le=50, description="Per target.")
    min_gap_minutes: int | None = Field(
        default=None, ge=0, le=1440, description="Between two posts to one target."
    )
    quiet_start: int | None = Field(
        default=None, ge=0, le=1439, description="Quiet hours start, local minute of the day."
    )
    quiet_end: int | None = Field(
        default=None, ge=0, le=1439, description="Quiet hours end, local minute of the day."
    )
    monthly_budget: int | None = Field(
        default=None, ge=1, le=1000, description="Messages per member per local month."
    )


class CadenceOut(Shape):
    posts_per_day: int
    min_gap_minutes: int
    quiet_start: int
    quiet_end: int
    monthly_budget: int


class StepIn(Body):
    day: int = Field(ge=0, le=366, description="Days after the SOP's start (0: that day).")
    minute: int = Field(ge=0, le=1439, description="The local minute of that day.")
    body: str = Field(max_length=4000, description="What is posted or done.")
    kind: Literal["post", "task"] = Field(
        default="post", description="A post (counts against the cadence) or a task."
    )


class SopIn(Body):
    name: str = Field(max_length=80, description="The SOP's name (1 to 80).")
    target_kind: Literal["staff_account", "group", "segment"] = Field(description=TARGET_TEXT)
    target_id: str = Field(max_length=80, description="The account, group or tag.")
    starts_on: LocalDate = Field(description="Day 0, a local date of the tenant.")
    steps: list[StepIn] = Field(min_length=1, max_length=60, description="Its steps.")


class PostOut(Shape):
    id: str
    sop_id: str | None
    target_kind: str
    target_id: str
    kind: str
    body: str
    send_at: datetime
    recipients: int
    status: str
    queued_at: datetime | None
    created_at: datetime


class StepOut(Shape):
    day: int
    minute: int
    body: str
    kind: str


class SopOut(Shape):
    id: str
    name: str
    target_kind: str
    target_id: str
    steps: list[StepOut]
    starts_on: str
    created_at: datetime
    posts: list[PostOut]


class PostIn(Body):
    target_kind: Literal["staff_account", "group", "segment"] = Field(description=TARGET_TEXT)
    target_id: str = Field(max_length=80, description="The account, group or tag.")
    body: str = Field(max_length=4000, description="What is posted.")
    send_at: Timestamp = Field(description="When, in the future.")
    kind: Literal["post", "task"] = Field(default="post", description="A post or a task.")


class CopyIn(Body):
    title: str = Field(max_length=120, description="The copy's title (1 to 120).")
    body: str = Field(max_length=4000, description="The copy (文案).")
    tags: list[Annotated[str, Field(max_length=40)]] = Field(
        default_factory=list, max_length=20, description="Its tags."
    )


class CopyOut(Shape):
    id: str
    title: str
    body: str
    tags: list[str]
    created_at: datetime


class CopySearchOut(Shape):
    q: str
    terms: list[str]
    items: list[CopyOut]


@router.get("/cadence", response_model=CadenceOut)
@blocking
def get_cadence(ctx: Reader) -> dict[str, Any]:
    """Show the cadence limits

    Posts per day, the minimum gap, quiet hours and the monthly budget."""
    return cadence.get_cadence(ctx)


@router.patch("/cadence", response_model=CadenceOut)
@blocking
def set_cadence(ctx: Admin, body: CadenceIn) -> dict[str, Any]:
    """Change the cadence limits

    Fields left out keep their value."""
    return cadence.set_cadence(ctx, fields=body.model_dump(exclude_none=True))


@router.post("/sops", status_code=status.HTTP_201_CREATED, response_model=SopOut)
@blocking
def create_sop(ctx: Writer, body: SopIn) -> dict[str, Any]:
    """Schedule an SOP's steps

    E.g. a new group: day 0 welcome, day 1 rules, day 3 first class; each step at its local
    day and minute. Refused whole with 409 and the figure when a step falls in quiet hours,
    crowds a day, comes too close to another or passes a member's monthly budget; nothing
    is queued."""
    return cadence.create_sop(
        ctx,
        name=body.name,
        target_kind=body.target_kind,
        target_id=body.target_id,
        steps=[s.model_dump() for s in body.steps],
        starts_on=body.starts_on,
    )


@router.post("/posts", status_code=status.HTTP_201_CREATED, response_model=PostOut)
@blocking
def create_post(ctx: Writer, body: PostIn) -> dict[str, Any]:
    """Schedule a post or mass send

    To a staff account's members, a group or a segment, within the cadence and every
    member's monthly budget; refused whole with 409 and the figure, nothing queued."""
    return cadence.create_post(ctx, **body.model_dump())


@router.post("/copy-library", status_code=status.HTTP_201_CREATED, response_model=CopyOut)
@blocking
def add_copy(ctx: Writer, body: CopyIn) -> dict[str, Any]:
    """Add a copy to the library

    Segmented with jieba for Chinese full-text search."""
    return cadence.add_copy(ctx, title=body.title, body=body.body, tags=body.tags)


@router.get("/copy-library", response_model=CopySearchOut)
@blocking
def search_copy_library(
    ctx: Reader,
    q: Annotated[str, Query(max_length=200, description="Words to find (Chinese or not).")] = "",
    limit: Annotated[int, Query(ge=1, le=50, description="At most this many.")] = 20,
) -> dict[str, Any]:
    """Search the copy library

    Copies holding every word of the query as jieba cuts it; empty: the newest."""
    return cadence.search_copy(ctx, q=q, limit=limit)
