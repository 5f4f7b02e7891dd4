"""What the console and the portal read of courses and competitions, and a lesson added to a
course, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from shequn.community.programs.lessons import add_lesson
from shequn.community.programs.rules import MAX_LESSONS
from shequn.community.programs.service import create_program, create_team, score_round
from shequn.config import Settings
from shequn.context import Ctx
from shequn.errors import DomainError
from shequn.flows.community_rewards import check_in
from shequn.insights.console_programs import (
    competition_view,
    course_progress,
    member_courses_and_teams,
)
from tests import factories as f
from tests.e2e.conftest import contents

KEY = Settings().secret_key


def test_a_lesson_added_extends_the_course_and_progress_is_read_per_member(ctx: Ctx) -> None:
    today = ctx.clock.now().date()
    course = create_program(
        ctx, title="入门课", kind="course", lessons=["一", "二"], starts_on=today
    )
    member = f.member(ctx, "学员")
    check_in(ctx, server_key=KEY, program_id=course["id"], member_id=member, kind="lesson", day=2)
    added = add_lesson(ctx, program_id=course["id"], title="  三  ")
    assert (added["lessons"], added["days"]) == (["一", "二", "三"], 3)
    assert [
        (r["name"], r["done"], r["completed"])
        for r in course_progress(ctx, program_id=course["id"])
    ] == [("学员", [2], False)]
    mine = member_courses_and_teams(ctx, member_id=member)
    assert [(c["title"], c["lessons"], c["done"]) for c in mine["courses"]] == [
        ("入门课", ["一", "二", "三"], [2])
    ]
    assert mine["teams"] == []


def test_a_lesson_is_refused_on_a_challenge_and_past_the_limit(ctx: Ctx) -> None:
    today = ctx.clock.now().date()
    challenge = create_program(ctx, title="早起", starts_on=today)
    full = create_program(
        ctx,
        title="长课",
        kind="course",
        lessons=[f"课{i}" for i in range(MAX_LESSONS)],
        starts_on=today,
    )
    before = contents(ctx.db, ctx.tenant_id)
    for program_id, title, code in (
        (challenge["id"], "一", "program_not_a_course"),
        (full["id"], "多一课", "program_lessons_invalid"),
        (full["id"], " ", "field_required"),
    ):
        with pytest.raises(DomainError) as refused:
            add_lesson(ctx, program_id=program_id, title=title)
        assert refused.value.code == code
    assert contents(ctx.db, ctx.tenant_id) == before


def test_a_competition_shows_its_teams_rounds_and_the_round_open_next(ctx: Ctx) -> None:
    today = ctx.clock.now().date()
    contest = create_program(ctx, title="销售赛", kind="competition", starts_on=today)
    a, b = f.member(ctx, "甲"), f.member(ctx, "乙")
    red = create_team(ctx, program_id=contest["id"], name="红", member_ids=[a])["id"]
    blue = create_team(ctx, program_id=contest["id"], name="蓝", member_ids=[b])["id"]
    assert competition_view(ctx, program_id=contest["id"])["next_round"] == 1
    score_round(
        ctx, program_id=contest["id"], round_no=1, scores={red: 5, blue: 3}, eliminate_count=1
    )
    view = competition_view(ctx, program_id=contest["id"])
    assert [
        (t["name"], t["score"], t["eliminated_round"], t["members"]) for t in view["teams"]
    ] == [
        ("红", 5, None, [{"id": a, "name": "甲"}]),
        ("蓝", 3, 1, [{"id": b, "name": "乙"}]),
    ]
    assert (view["rounds"], view["next_round"]) == ([{"round": 1, "scores": {red: 5, blue: 3}}], 2)
    teams = member_courses_and_teams(ctx, member_id=b)["teams"]
    assert [
        (t["title"], t["name"], t["rank"], t["teams"], t["eliminated_round"]) for t in teams
    ] == [("销售赛", "蓝", 2, 2, 1)]
