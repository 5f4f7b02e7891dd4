"""Programs: N-day check-in challenges (make-up days 补卡 and streak freezes within limits,
milestone rewards, a ranking, a completion certificate), courses with lessons, and
competitions with teams, rounds and elimination."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import Field

from shequn.community.programs import service as programs
from shequn.entrypoints.api.http import API_PREFIX, Body, Reader, Writer, app_state, blocking
from shequn.entrypoints.api.shapes import Shape
from shequn.flows import community_rewards

# A local date in a request body, as ISO 8601 text (request bodies are strict otherwise).
LocalDate = Annotated[date, Field(strict=False)]

router = APIRouter(prefix=API_PREFIX, tags=["programs"])

ProgramId = Annotated[str, Path(description="The program (`prog_…`); unknown: 404.")]


class MilestoneIn(Body):
    day: int = Field(ge=1, le=366, description="Covered days that reach it (at most `days`).")
    badge_id: str | None = Field(
        default=None, max_length=40, description="A badge given at the milestone."
    )
    tag: str | None = Field(default=None, max_length=40, description="A tag given the member.")
    points: int = Field(default=0, ge=0, le=1_000_000, description="Points earned, once.")


class ProgramCreate(Body):
    title: str = Field(max_length=120, description="The program's name (1 to 120).")
    kind: Literal["challenge", "course", "competition"] = Field(
        default="challenge", description="A check-in challenge, a course or a competition."
    )
    days: int = Field(
        default=21, ge=1, le=366, description="Days to complete (a course: its lessons)."
    )
    window_days: int | None = Field(
        default=None, ge=1, le=366, description="Days it runs (at least `days`); absent: `days`."
    )
    mode: Literal["consecutive", "cumulative"] = Field(
        default="consecutive",
        description="`consecutive`: a run of `days` covered days (freezes bridge a gap); "
        "`cumulative`: `days` covered days in any order while it runs.",
    )
    makeup_limit: int = Field(default=0, ge=0, le=366, description="Make-up days (补卡) allowed.")
    freeze_limit: int = Field(default=0, ge=0, le=366, description="Streak freezes allowed.")
    starts_on: LocalDate = Field(description="Day 1, a local date of the tenant.")
    milestones: list[MilestoneIn] = Field(
        default_factory=list, max_length=10, description="Rewards at covered-day counts."
    )
    lessons: list[Annotated[str, Field(max_length=120)]] = Field(
        default_factory=list, max_length=100, description="A course's lessons, in order."
    )
    certificate_title: str | None = Field(
        default=None, max_length=80, description="The completion certificate's title."
    )
    community_id: str | None = Field(
        default=None, max_length=40, description="The community it is for (`cmty_…`)."
    )


class MilestoneOut(Shape):
    day: int
    badge_id: str | None
    tag: str | None
    points: int


class ProgramOut(Shape):
    id: str
    community_id: str | None
    kind: str
    title: str
    mode: str
    days: int
    window_days: int
    makeup_limit: int
    freeze_limit: int
    starts_on: str
    time_zone: str
    milestones: list[MilestoneOut]
    lessons: list[str]
    certificate_title: str | None
    created_at: datetime


class CheckinIn(Body):
    member_id: str = Field(max_length=40, description="The member (`mem_…`); unknown: 404.")
    kind: Literal["checkin", "makeup", "freeze", "lesson"] = Field(
        default="checkin",
        description="`checkin` (today), `makeup` (a past day, within the limit), `freeze` "
        "(a day that does not break the streak) or `lesson` (a course's lesson done).",
    )
    day: int | None = Field(
        default=None, ge=1, le=366, description="The day made up or frozen, or the lesson."
    )
    submission: str | None = Field(
        default=None, max_length=2000, description="What the member hands in (a copy…)."
    )


class CheckinOut(Shape):
    program_id: str
    member_id: str
    day: int
    kind: str
    covered_days: int
    streak: int
    best_streak: int
    completed: bool
    missed_days: list[int]
    makeups_left: int
    freezes_left: int
    milestones_reached: list[int]
    points_earned: int
    certificate_id: str | None
    replayed: bool


class RankingItem(Shape):
    rank: int
    member_id: str | None
    name: str
    team_id: str | None
    score: int
    covered_days: int
    best_streak: int
    completed: bool
    eliminated_round: int | None


class RankingOut(Shape):
    program_id: str
    kind: str
    items: list[RankingItem]


class TeamCreate(Body):
    name: str = Field(max_length=80, description="The team's name (1 to 80).")
    member_ids: list[Annotated[str, Field(max_length=40)]] = Field(
        default_factory=list, max_length=200, description="Its members (`mem_…`)."
    )


class TeamOut(Shape):
    id: str
    program_id: str
    name: str
    score: int
    eliminated_round: int | None
    created_at: datetime
    member_ids: list[str]


class RoundIn(Body):
    round: int = Field(ge=1, le=100, description="The round's number (each scored once).")
    scores: dict[str, Annotated[int, Field(ge=0, le=1_000_000_000)]] = Field(
        description="Each team's score in the round, by team id (`team_…`)."
    )
    eliminate: int = Field(
        default=0, ge=0, le=100, description="How many of the lowest teams leave after it."
    )


class RoundOut(Shape):
    program_id: str
    round: int
    eliminated: list[str]
    totals: dict[str, int]


@router.post("/programs", status_code=status.HTTP_201_CREATED, response_model=ProgramOut)
@blocking
def create_program(ctx: Writer, body: ProgramCreate) -> dict[str, Any]:
    """Create a challenge, course or competition

    E.g. a 21-day copywriting camp with two make-up days."""
    fields = body.model_dump()
    fields["milestones"] = [m.model_dump() for m in body.milestones]
    return programs.create_program(ctx, **fields)


@router.post(
    "/programs/{program_id}/checkins",
    status_code=status.HTTP_201_CREATED,
    response_model=CheckinOut,
)
@blocking
def check_in(
    ctx: Writer, request: Request, program_id: ProgramId, body: CheckinIn, response: Response
) -> dict[str, Any]:
    """Check in, make a day up, freeze a day or finish a lesson

    A member who completes gets the completion certificate (`certificate_id`); today's
    check-in again answers 200 unchanged."""
    answer = community_rewards.check_in(
        ctx,
        server_key=app_state(request).settings.secret_key,
        program_id=program_id,
        member_id=body.member_id,
        kind=body.kind,
        day=body.day,
        submission=body.submission,
    )
    if answer["replayed"]:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return answer


@router.get("/programs/{program_id}/ranking", response_model=RankingOut)
@blocking
def program_ranking(
    ctx: Reader,
    program_id: ProgramId,
    limit: Annotated[int, Query(ge=1, le=200, description="At most this many, 1 to 200.")] = 50,
) -> dict[str, Any]:
    """Rank a program's members or teams

    Members: completed first, then covered days and the longer streak; teams by score."""
    return programs.ranking(ctx, program_id=program_id, limit=limit)


@router.post(
    "/programs/{program_id}/teams", status_code=status.HTTP_201_CREATED, response_model=TeamOut
)
@blocking
def create_team(ctx: Writer, program_id: ProgramId, body: TeamCreate) -> dict[str, Any]:
    """Create a competition team

    A team of a competition (seed 000's labs), with its members."""
    return programs.create_team(
        ctx, program_id=program_id, name=body.name, member_ids=body.member_ids
    )


@router.post("/programs/{program_id}/rounds", response_model=RoundOut)
@blocking
def score_round(ctx: Writer, program_id: ProgramId, body: RoundIn) -> dict[str, Any]:
    """Score a competition round

    The lowest `eliminate` teams by total leave the competition."""
    return programs.score_round(
        ctx,
        program_id=program_id,
        round_no=body.round,
        scores=body.scores,
        eliminate_count=body.eliminate,
    )
