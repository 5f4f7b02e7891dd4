"""A course's lessons after it was created: one more lesson at the end. A member's lessons
done stay done; one who had completed every lesson keeps its completion (and certificate)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from shequn.community.common import view
from shequn.community.communities.rules import clean_text
from shequn.community.programs.rules import MAX_LESSONS, ProgramKind
from shequn.community.programs.tables import programs
from shequn.context import Ctx
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import Event, record_events
from shequn.locks import Lock, lock_rows

_COLUMNS = ("id", "kind", "lessons", "window_days")


def add_lesson(ctx: Ctx, *, program_id: str, title: str) -> dict[str, Any]:
    """Add a lesson at the end of a course (at most MAX_LESSONS); the course runs at least as
    many days as it has lessons."""
    clean = clean_text(title, field="lesson_title", max_length=120, required=True)
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        found = lock_rows(
            tx, Lock.PROGRAMS, programs, ctx.tenant_id, [program_id], columns=_COLUMNS
        )
        if not found:
            raise NotFound("program_not_found", id=program_id)
        program = found[0]
        if program.kind != ProgramKind.COURSE.value:
            raise Conflict("program_not_a_course")
        lessons = [*program.lessons, clean]
        if len(lessons) > MAX_LESSONS:
            raise InvalidInput("program_lessons_invalid", max=MAX_LESSONS, field="lesson_title")
        p = programs.c
        tx.execute(
            update(programs)
            .where(p.tenant_id == ctx.tenant_id, p.id == program_id)
            .values(
                lessons=lessons,
                days=len(lessons),
                window_days=max(int(program.window_days), len(lessons)),
            )
        )
        record_events(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[Event("ProgramLessonAdded", "program", program_id, {"lesson": len(lessons)})],
        )
        row = tx.execute(
            programs.select().where(p.tenant_id == ctx.tenant_id, p.id == program_id)
        ).one()
    return view(row)
