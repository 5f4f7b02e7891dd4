"""The growth path: the tenant's ordered stages (default 进入 学习 实践 实战 提升 分享
自我实现) and a member's stage, facts and next step."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import Field

from shequn.community.path import service as path
from shequn.entrypoints.api.http import API_PREFIX, Admin, Body, Reader, blocking
from shequn.entrypoints.api.shapes import Shape

router = APIRouter(prefix=API_PREFIX, tags=["growth path"])

FACT_TEXT = (
    "A fact of commerce or community: `paid_order_count`, `paid_total_fen`, `first_sale`, "
    "`referred_buyers`, `direct_count`, `events_attended`, `challenges_completed`, "
    "`lessons_done`, `check_ins`, `messages`, `talks_given`, `communities`."
)


class CriterionIn(Body):
    fact: str = Field(max_length=40, description=FACT_TEXT)
    op: Literal[">=", ">", "="] = Field(description="How the fact compares with `value`.")
    value: int = Field(ge=0, le=10**13, description="The figure the fact is compared with.")


class StageIn(Body):
    name: str = Field(max_length=40, description="The stage's name, unique on the path.")
    criteria: list[CriterionIn] = Field(
        default_factory=list, max_length=6, description="Every one must hold to reach it."
    )


class PathIn(Body):
    stages: list[StageIn] = Field(
        min_length=1, max_length=12, description="The stages in order, first to last."
    )


class CriterionOut(Shape):
    fact: str
    op: str
    value: int


class StageOut(Shape):
    name: str
    criteria: list[CriterionOut]


class FactOut(Shape):
    fact: str
    value: int


class MissingOut(Shape):
    fact: str
    op: str
    value: int
    have: int
    gap: int


class NextOut(Shape):
    position: int
    stage: str
    missing: list[MissingOut]


class GrowthOut(Shape):
    member_id: str
    position: int
    stage: str | None
    entered_at: datetime | None
    stages: list[str]
    facts: list[FactOut]
    next: NextOut | None


@router.get("/members/{member_id}/growth", response_model=GrowthOut)
@blocking
def member_growth(
    ctx: Reader,
    member_id: Annotated[str, Path(description="The member (`mem_…`); unknown: 404.")],
) -> dict[str, Any]:
    """Show a member's growth stage and next step

    Its stage on the path, its facts, and what the next stage still wants."""
    return path.member_growth_view(ctx, member_id=member_id)


@router.put("/growth-path", response_model=list[StageOut])
@blocking
def set_growth_path(ctx: Admin, body: PathIn) -> list[dict[str, Any]]:
    """Replace the growth path's stages

    Members are read against them at their next evaluation."""
    return path.set_stages(ctx, stages=[s.model_dump() for s in body.stages])
