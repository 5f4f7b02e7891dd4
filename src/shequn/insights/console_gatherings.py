"""The console's and the portal's reads of community activities: events and who answered an
occurrence, programs and a member's streaks, complaints; one member's events and programs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, desc, select

from shequn.community.cadence.tables import scheduled_posts, sops
from shequn.community.complaints.tables import complaints
from shequn.community.gatherings.tables import calendar_events, event_attendance, event_rsvps
from shequn.community.path.rules import default_stages, stages_json
from shequn.community.path.tables import growth_stages
from shequn.community.programs.tables import program_participants, programs
from shequn.context import Ctx
from shequn.errors import InvalidInput, NotFound
from shequn.ids import checked_cursor
from shequn.insights.console_scope import member_visible
from shequn.members.tables import members

PAGE = 50
COMPLAINT_STATUSES = ("open", "in_progress", "resolved")


def list_events(ctx: Ctx, *, after: str | None = None) -> dict[str, Any]:
    """The tenant's events by id (oldest first)."""
    after = checked_cursor(after, "cal")
    e = calendar_events.c
    query = select(calendar_events).where(e.tenant_id == ctx.tenant_id)
    if after is not None:
        query = query.where(e.id > after)
    with ctx.db.read() as tx:
        rows = tx.execute(query.order_by(e.id).limit(PAGE + 1)).all()
    page = rows[:PAGE]
    return {
        "items": [{k: v for k, v in r._mapping.items() if k != "tenant_id"} for r in page],
        "next_after": page[-1].id if len(rows) > PAGE else None,
    }


def get_event(ctx: Ctx, *, event_id: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        row = tx.execute(
            select(calendar_events).where(
                calendar_events.c.tenant_id == ctx.tenant_id, calendar_events.c.id == event_id
            )
        ).first()
    if row is None:
        raise NotFound("calendar_event_not_found", id=event_id)
    return {k: v for k, v in row._mapping.items() if k != "tenant_id"}


def occurrence_people(
    ctx: Ctx, *, event_id: str, occurrence_at: datetime, viewer: str | None = None
) -> dict[str, Any]:
    """Who answered one occurrence (confirmed first, then the waitlist in order) and who came
    (of a staff-account operator's own members only, when `viewer` names one)."""
    r, a, m = event_rsvps.c, event_attendance.c, members.c
    t = ctx.tenant_id
    seen = member_visible(t, viewer)
    with ctx.db.read() as tx:
        answered = tx.execute(
            select(r.member_id, r.status, r.seq, m.name, m.phone)
            .select_from(
                event_rsvps.join(members, and_(m.tenant_id == r.tenant_id, m.id == r.member_id))
            )
            .where(r.tenant_id == t, r.event_id == event_id, r.occurrence_at == occurrence_at)
            .where(seen)
            .order_by(r.seq)
        ).all()
        came = tx.execute(
            select(a.member_id, a.via, a.attended_at, m.name)
            .select_from(
                event_attendance.join(
                    members, and_(m.tenant_id == a.tenant_id, m.id == a.member_id)
                )
            )
            .where(a.tenant_id == t, a.event_id == event_id, a.occurrence_at == occurrence_at)
            .where(seen)
            .order_by(a.attended_at, a.member_id)
        ).all()
    rank = {"confirmed": 0, "waitlisted": 1, "cancelled": 2}
    return {
        "rsvps": sorted(
            (dict(x._mapping) for x in answered), key=lambda x: (rank.get(x["status"], 3), x["seq"])
        ),
        "attended": [dict(x._mapping) for x in came],
    }


def member_rsvps(ctx: Ctx, *, member_id: str, since: datetime) -> dict[tuple[str, datetime], str]:
    """The member's answers to occurrences from `since` on: {(event id, occurrence): status}."""
    r = event_rsvps.c
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(r.event_id, r.occurrence_at, r.status).where(
                r.tenant_id == ctx.tenant_id, r.member_id == member_id, r.occurrence_at >= since
            )
        ).all()
    return {(x.event_id, x.occurrence_at): x.status for x in rows}


def member_attended(ctx: Ctx, *, member_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """The occurrences the member attended, newest first, with the event's title."""
    a, e = event_attendance.c, calendar_events.c
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(a.event_id, a.occurrence_at, a.via, e.title)
            .select_from(
                event_attendance.join(
                    calendar_events, and_(e.tenant_id == a.tenant_id, e.id == a.event_id)
                )
            )
            .where(a.tenant_id == ctx.tenant_id, a.member_id == member_id)
            .order_by(desc(a.occurrence_at))
            .limit(limit)
        ).all()
    return [dict(r._mapping) for r in rows]


def list_programs(ctx: Ctx) -> list[dict[str, Any]]:
    """The tenant's programs, newest first."""
    p = programs.c
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(programs).where(p.tenant_id == ctx.tenant_id).order_by(desc(p.id)).limit(200)
        ).all()
    return [{k: v for k, v in r._mapping.items() if k != "tenant_id"} for r in rows]


def member_programs(ctx: Ctx, *, member_id: str) -> dict[str, dict[str, Any]]:
    """The member's standing in each program it joined: {program id: participation}."""
    pp = program_participants.c
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(program_participants).where(
                pp.tenant_id == ctx.tenant_id, pp.member_id == member_id
            )
        ).all()
    return {r.program_id: {k: v for k, v in r._mapping.items() if k != "tenant_id"} for r in rows}


def list_complaints(
    ctx: Ctx, *, status: str | None = None, after: str | None = None, viewer: str | None = None
) -> dict[str, Any]:
    """Complaints newest first, with the member's name (of a staff-account operator's own
    members only, when `viewer` names one)."""
    if status is not None and status not in COMPLAINT_STATUSES:
        raise InvalidInput("complaint_status_invalid", status=status[:20], field="status")
    after = checked_cursor(after, "cmp")
    c, m = complaints.c, members.c
    query = (
        select(complaints, m.name.label("member_name"))
        .select_from(
            complaints.join(members, and_(m.tenant_id == c.tenant_id, m.id == c.member_id))
        )
        .where(c.tenant_id == ctx.tenant_id, member_visible(ctx.tenant_id, viewer))
    )
    if status is not None:
        query = query.where(c.status == status)
    if after is not None:
        query = query.where(c.id < after)
    with ctx.db.read() as tx:
        rows = tx.execute(query.order_by(desc(c.id)).limit(PAGE + 1)).all()
    page = rows[:PAGE]
    return {
        "items": [{k: v for k, v in r._mapping.items() if k != "tenant_id"} for r in page],
        "next_after": page[-1].id if len(rows) > PAGE else None,
    }


def member_complaints(ctx: Ctx, *, member_id: str) -> list[dict[str, Any]]:
    c = complaints.c
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(c.id, c.body, c.status, c.created_at, c.resolved_at)
            .where(c.tenant_id == ctx.tenant_id, c.member_id == member_id)
            .order_by(desc(c.id))
            .limit(20)
        ).all()
    return [dict(r._mapping) for r in rows]


def content_calendar(ctx: Ctx, *, since: datetime, days: int = 30) -> list[dict[str, Any]]:
    """The posts and tasks scheduled from `since` for `days` days, soonest first."""
    p = scheduled_posts.c
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(p.id, p.sop_id, p.target_kind, p.target_id, p.kind, p.body, p.send_at, p.status)
            .where(
                p.tenant_id == ctx.tenant_id,
                p.send_at >= since,
                p.send_at < since + timedelta(days=days),
            )
            .order_by(p.send_at, p.id)
            .limit(200)
        ).all()
    return [dict(r._mapping) for r in rows]


def list_sops(ctx: Ctx) -> list[dict[str, Any]]:
    s = sops.c
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(sops).where(s.tenant_id == ctx.tenant_id).order_by(desc(s.id)).limit(100)
        ).all()
    return [{k: v for k, v in r._mapping.items() if k != "tenant_id"} for r in rows]


def growth_path(ctx: Ctx) -> list[dict[str, Any]]:
    """The tenant's growth path, in order (the default path until one is set)."""
    s = growth_stages.c
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(s.name, s.criteria).where(s.tenant_id == ctx.tenant_id).order_by(s.position)
        ).all()
    if not rows:
        return stages_json(default_stages())
    return [{"name": r.name, "criteria": list(r.criteria or [])} for r in rows]


def visible_ids(ctx: Ctx, *, member_ids: list[str], viewer: str | None) -> set[str]:
    """Those of `member_ids` the user sees."""
    if viewer is None or not member_ids:
        return set(member_ids)
    with ctx.db.read() as tx:
        return set(
            tx.execute(
                select(members.c.id).where(
                    member_visible(ctx.tenant_id, viewer), members.c.id.in_(member_ids)
                )
            ).scalars()
        )
