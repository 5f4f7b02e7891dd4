"""A program's page in the console: a challenge's ranking; a course's lessons (one added at
the end) and each member's progress, with a lesson recorded as done for a member; a
competition's teams (created with their members), the open round's score entry with the
elimination that closes it, the rounds scored and the standings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shequn.community.programs.lessons import add_lesson
from shequn.community.programs.rules import ProgramKind
from shequn.community.programs.service import create_team, ranking, score_round
from shequn.console.rules import Capability
from shequn.context import Ctx
from shequn.entrypoints.rendering import error_message
from shequn.entrypoints.web.console_members import resolve_member
from shequn.entrypoints.web.forms import FORM_ERROR, Form
from shequn.entrypoints.web.kit import Area, Console, console_for, page, redirect, render, submitted
from shequn.errors import DomainError, InvalidInput, NotFound
from shequn.flows.community_rewards import check_in
from shequn.i18n import translate
from shequn.insights.console_gatherings import list_programs, visible_ids
from shequn.insights.console_programs import competition_view, course_progress

router = APIRouter(include_in_schema=False)

MAX_TEAM_MEMBERS = 200
MAX_SCORE = 1_000_000_000


async def _program(who: Console, program_id: str) -> dict[str, Any]:
    found = {p["id"]: p for p in await who.run(list_programs)}
    if program_id not in found:
        raise NotFound("program_not_found", id=program_id)
    return found[program_id]


async def _seen(who: Console, member_ids: list[str]) -> set[str] | None:
    """The members a staff-account operator sees (None: every member)."""
    if not who.scoped:
        return None
    return set(await who.run(visible_ids, member_ids=member_ids, viewer=who.session.login))


async def _program_view(
    who: Console, program: dict[str, Any], *, form: Form | None = None, status: int = 200
) -> Response:
    program_id = program["id"]
    context: dict[str, Any] = {"ranked": {"items": []}, "progress": [], "contest": None}
    if program["kind"] == ProgramKind.COURSE.value:
        progress = await who.run(course_progress, program_id=program_id)
        seen = await _seen(who, [r["member_id"] for r in progress])
        context["progress"] = [r for r in progress if seen is None or r["member_id"] in seen]
    elif program["kind"] == ProgramKind.COMPETITION.value:
        contest = await who.run(competition_view, program_id=program_id)
        seen = await _seen(who, [m["id"] for t in contest["teams"] for m in t["members"]])
        if seen is not None:
            for team in contest["teams"]:
                team["members"] = [m for m in team["members"] if m["id"] in seen]
        context["contest"] = contest
    else:
        ranked = await who.run(ranking, program_id=program_id, limit=100)
        seen = await _seen(who, [r["member_id"] for r in ranked["items"] if r["member_id"]])
        if seen is not None:
            ranked["items"] = [r for r in ranked["items"] if r["member_id"] in seen]
        context["ranked"] = ranked
    return render(
        who, "console/program.html", form=form or Form(), status=status, program=program, **context
    )


@router.get("/console/programs/{program_id}")
@page
async def program_page(request: Request, program_id: str) -> Response:
    who = await console_for(request, Capability.MEMBERS)
    return await _program_view(who, await _program(who, program_id))


async def _posted(request: Request, program_id: str) -> tuple[Console, dict[str, Any], Form]:
    who = await console_for(request, Capability.OPERATE)
    program = await _program(who, program_id)
    return who, program, await submitted(who)


def _refuse(form: Form, exc: DomainError, field: str) -> None:
    """A refusal beside `field` (the form's one input that can be wrong)."""
    form.errors.setdefault(field, error_message(exc))


@router.post("/console/programs/{program_id}/lessons")
@page
async def program_add_lesson(request: Request, program_id: str) -> Response:
    who, program, form = await _posted(request, program_id)
    title = form.text("lesson_title", required=True, max_length=120)
    if not form.ok or title is None:
        return await _program_view(who, program, form=form, status=422)
    try:
        await who.run(add_lesson, program_id=program_id, title=title)
    except DomainError as exc:
        _refuse(form, exc, FORM_ERROR if exc.code == "program_not_a_course" else "lesson_title")
        return await _program_view(who, program, form=form, status=exc.status)
    return redirect(
        who,
        f"/console/programs/{program_id}",
        flash=translate("console.course.lesson_added", title=title),
    )


@router.post("/console/programs/{program_id}/progress")
@page
async def program_record_lesson(request: Request, program_id: str) -> Response:
    """A lesson a member has done, recorded by an operator (as the member would in the
    portal)."""
    who, program, form = await _posted(request, program_id)
    member = form.text("member", required=True, max_length=64)
    lesson = form.integer("lesson", low=1, high=max(1, len(program["lessons"])), required=True)
    if not form.ok or member is None or lesson is None:
        return await _program_view(who, program, form=form, status=422)
    secret = who.state.settings.secret_key

    def record(ctx: Ctx) -> dict[str, Any]:
        return check_in(
            ctx,
            server_key=secret,
            program_id=program_id,
            member_id=resolve_member(ctx, member),
            kind="lesson",
            day=lesson,
        )

    try:
        done = await who.run(record)
    except DomainError as exc:
        _refuse(form, exc, "lesson" if exc.code == "lesson_invalid" else "member")
        return await _program_view(who, program, form=form, status=exc.status)
    return redirect(
        who,
        f"/console/programs/{program_id}",
        flash=translate("console.course.recorded", lesson=lesson, done=done["covered_days"]),
    )


@router.post("/console/programs/{program_id}/teams")
@page
async def program_new_team(request: Request, program_id: str) -> Response:
    who, program, form = await _posted(request, program_id)
    name = form.text("team_name", required=True, max_length=80)
    named = [line.strip() for line in form.get("team_members").splitlines() if line.strip()]
    if len(named) > MAX_TEAM_MEMBERS:
        form.fail("team_members", "console.contest.too_many", max=MAX_TEAM_MEMBERS)
    if not form.ok or name is None:
        return await _program_view(who, program, form=form, status=422)

    def create(ctx: Ctx) -> dict[str, Any]:
        ids = []
        for text in named:
            try:
                ids.append(resolve_member(ctx, text[:64]))
            except NotFound:
                raise NotFound("member_not_found", id=text[:64], field="team_members") from None
        return create_team(ctx, program_id=program_id, name=name, member_ids=ids)

    try:
        await who.run(create)
    except DomainError as exc:
        _refuse(form, exc, "team_members" if exc.params.get("field") else "team_name")
        return await _program_view(who, program, form=form, status=exc.status)
    return redirect(
        who, f"/console/programs/{program_id}", flash=translate("console.contest.team_added")
    )


@router.post("/console/programs/{program_id}/rounds")
@page
async def program_score_round(request: Request, program_id: str) -> Response:
    """The open round's scores, one per team still in, and how many of the lowest leave:
    scoring closes the round."""
    who, program, form = await _posted(request, program_id)
    contest = await who.run(competition_view, program_id=program_id)
    alive = [t for t in contest["teams"] if t["eliminated_round"] is None]
    round_no = form.integer("round", low=1, high=100, required=True)
    if round_no is not None and round_no != contest["next_round"]:
        form.fail(FORM_ERROR, "console.contest.round_moved", round=contest["next_round"])
    scores = {}
    for team in alive:
        score = form.integer(f"score_{team['team_id']}", low=0, high=MAX_SCORE, required=True)
        if score is not None:
            scores[team["team_id"]] = score
    count = form.integer("eliminate", low=0, high=100) or 0
    if not form.ok or round_no is None:
        return await _program_view(who, program, form=form, status=422)
    try:
        done = await who.run(
            score_round,
            program_id=program_id,
            round_no=round_no,
            scores=scores,
            eliminate_count=count,
        )
    except DomainError as exc:
        field = "eliminate" if exc.code.startswith("elimination") else FORM_ERROR
        form.errors.setdefault(field, error_message(exc))
        return await _program_view(who, program, form=form, status=exc.status)
    names = {t["team_id"]: t["name"] for t in alive}
    out = ", ".join(names[t] for t in done["eliminated"]) or "—"
    return redirect(
        who,
        f"/console/programs/{program_id}",
        flash=translate("console.contest.scored", round=round_no, out=out),
    )


def lesson_lines(text: str) -> list[str]:
    """A course's lessons as typed, one a line."""
    lessons = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    if any(len(lesson) > 120 for lesson in lessons):
        raise InvalidInput("field_too_long", field="lessons", max=120)
    return lessons


AREA = Area(name="programs", router=router)
