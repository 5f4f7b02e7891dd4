"""What the console and the portal show of courses and competitions: each member's lessons
done, a competition's teams with their members and its rounds' scores, and a member's own
courses and team standing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from shequn.community.programs.rules import CheckinKind, ProgramKind
from shequn.community.programs.service import ranking
from shequn.community.programs.tables import (
    program_checkins,
    program_participants,
    program_scores,
    program_teams,
    programs,
)
from shequn.context import Ctx
from shequn.members.tables import members


def course_progress(ctx: Ctx, *, program_id: str) -> list[dict[str, Any]]:
    """Every member of a course with the lessons it has done (most done first)."""
    p, k, m = program_participants.c, program_checkins.c, members.c
    with ctx.db.read() as tx:
        people = tx.execute(
            select(p.member_id, p.covered_days, p.completed_at, m.name, m.phone)
            .join(members, (m.tenant_id == p.tenant_id) & (m.id == p.member_id))
            .where(p.tenant_id == ctx.tenant_id, p.program_id == program_id)
        ).all()
        done = tx.execute(
            select(k.member_id, k.day).where(
                k.tenant_id == ctx.tenant_id,
                k.program_id == program_id,
                k.kind == CheckinKind.LESSON.value,
            )
        ).all()
    lessons: dict[str, set[int]] = {}
    for member_id, day in done:
        lessons.setdefault(member_id, set()).add(int(day))
    rows = [
        {
            "member_id": r.member_id,
            "name": r.name,
            "phone": r.phone,
            "done": sorted(lessons.get(r.member_id, set())),
            "completed": r.completed_at is not None,
        }
        for r in people
    ]
    return sorted(rows, key=lambda r: (-len(r["done"]), r["name"], r["member_id"]))


def competition_view(ctx: Ctx, *, program_id: str) -> dict[str, Any]:
    """A competition's teams (standing order) with their members, the rounds scored with each
    team's score in them, and the round open for scores next."""
    standing = ranking(ctx, program_id=program_id, limit=200)["items"]
    t, p, m, s = program_teams.c, program_participants.c, members.c, program_scores.c
    with ctx.db.read() as tx:
        people = tx.execute(
            select(p.team_id, p.member_id, m.name)
            .join(members, (m.tenant_id == p.tenant_id) & (m.id == p.member_id))
            .where(
                p.tenant_id == ctx.tenant_id,
                p.program_id == program_id,
                p.team_id.is_not(None),
            )
            .order_by(m.name, p.member_id)
        ).all()
        scored = tx.execute(
            select(s.round, s.team_id, s.score)
            .where(s.tenant_id == ctx.tenant_id, s.program_id == program_id)
            .order_by(s.round)
        ).all()
        eliminated = tx.execute(
            select(t.eliminated_round).where(
                t.tenant_id == ctx.tenant_id,
                t.program_id == program_id,
                t.eliminated_round.is_not(None),
            )
        ).scalars()
        last_elimination = max((int(r) for r in eliminated), default=0)
    by_team: dict[str, list[dict[str, str]]] = {}
    for r in people:
        by_team.setdefault(r.team_id, []).append({"id": r.member_id, "name": r.name})
    rounds: dict[int, dict[str, int]] = {}
    for r in scored:
        rounds.setdefault(int(r.round), {})[r.team_id] = int(r.score)
    last = max([*rounds, last_elimination], default=0)
    return {
        "teams": [{**team, "members": by_team.get(team["team_id"] or "", [])} for team in standing],
        "rounds": [{"round": n, "scores": rounds[n]} for n in sorted(rounds)],
        "next_round": last + 1,
    }


def member_courses_and_teams(ctx: Ctx, *, member_id: str) -> dict[str, list[dict[str, Any]]]:
    """The courses the member can follow (with the lessons it has done) and the competitions
    it is in (with its team's standing)."""
    g, p, k = programs.c, program_participants.c, program_checkins.c
    with ctx.db.read() as tx:
        courses = tx.execute(
            select(g.id, g.title, g.lessons)
            .where(g.tenant_id == ctx.tenant_id, g.kind == ProgramKind.COURSE.value)
            .order_by(g.id.desc())
            .limit(20)
        ).all()
        done = tx.execute(
            select(k.program_id, k.day).where(
                k.tenant_id == ctx.tenant_id,
                k.member_id == member_id,
                k.kind == CheckinKind.LESSON.value,
            )
        ).all()
        mine = tx.execute(
            select(p.program_id, p.team_id, p.completed_at, g.title)
            .join(programs, (g.tenant_id == p.tenant_id) & (g.id == p.program_id))
            .where(p.tenant_id == ctx.tenant_id, p.member_id == member_id)
        ).all()
    lessons: dict[str, set[int]] = {}
    for program_id, day in done:
        lessons.setdefault(program_id, set()).add(int(day))
    completed = {r.program_id for r in mine if r.completed_at is not None}
    teams = []
    for r in mine:
        if r.team_id is None:
            continue
        standing = ranking(ctx, program_id=r.program_id, limit=200)["items"]
        team = next((t for t in standing if t["team_id"] == r.team_id), None)
        if team is not None:
            teams.append(
                {"program_id": r.program_id, "title": r.title, "teams": len(standing), **team}
            )
    return {
        "courses": [
            {
                "id": c.id,
                "title": c.title,
                "lessons": list(c.lessons),
                "done": sorted(lessons.get(c.id, set())),
                "completed": c.id in completed,
            }
            for c in courses
        ],
        "teams": teams,
    }
