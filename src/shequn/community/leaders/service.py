"""Leaderboards read set-based from the facts themselves (orders, referrals, program
streaks, points earned, attendance) over a window of local days, per community or group;
featured role models with their story; the lecturer roster with the classes each gave."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, distinct, func, literal, select

from shequn.community.common import view
from shequn.community.communities.queries import require_community
from shequn.community.communities.rules import clean_text
from shequn.community.gatherings.tables import calendar_events, event_attendance
from shequn.community.groups.queries import require_group
from shequn.community.leaders.rules import (
    MAX_LIMIT,
    BoardKind,
    board_kind,
    period_of,
    ranked,
    window_start,
)
from shequn.community.leaders.tables import role_models
from shequn.community.programs.tables import program_participants
from shequn.community.tables import community_members
from shequn.context import Ctx
from shequn.errors import InvalidInput
from shequn.events.service import Event, record_events
from shequn.ids import new_id
from shequn.ledger.rules import MEMBER_SUFFIXES, Purpose
from shequn.ledger.tables import journal_transactions, postings
from shequn.members.repo import require_member
from shequn.members.tables import members
from shequn.orders.tables import orders
from shequn.tenancy.repo import load_settings

PAID_STATUSES = ("paid", "shipped", "completed", "closed")


def _scores(
    tx: Connection, tenant_id: str, kind: BoardKind, since: datetime | None, now: datetime
) -> Any:
    """A query of (member_id, score) for the board."""
    if kind is BoardKind.SALES:
        o = orders.c
        q = select(o.buyer_id.label("member_id"), func.sum(o.paid_fen - o.refunded_fen)).where(
            o.tenant_id == tenant_id, o.status.in_(PAID_STATUSES), o.paid_at <= now
        )
        if since is not None:
            q = q.where(o.paid_at >= since)
        return q.group_by(o.buyer_id)
    if kind is BoardKind.REFERRALS:
        m = members.c
        q = select(m.referrer_id.label("member_id"), func.count()).where(
            m.tenant_id == tenant_id, m.referrer_id.is_not(None), m.bound_at <= now
        )
        if since is not None:
            q = q.where(m.bound_at >= since)
        return q.group_by(m.referrer_id)
    if kind is BoardKind.STREAKS:
        p = program_participants.c
        q = select(p.member_id, func.max(p.best_streak)).where(p.tenant_id == tenant_id)
        if since is not None:
            q = q.where(p.updated_at >= since)
        return q.group_by(p.member_id)
    if kind is BoardKind.ATTENDANCE:
        a = event_attendance.c
        q = select(a.member_id, func.count()).where(a.tenant_id == tenant_id, a.attended_at <= now)
        if since is not None:
            q = q.where(a.attended_at >= since)
        return q.group_by(a.member_id)
    ps, j, m = postings.c, journal_transactions.c, members.c
    suffix = MEMBER_SUFFIXES[Purpose.POINTS]
    q = (
        select(m.id.label("member_id"), func.sum(ps.amount))
        .select_from(postings)
        .join(journal_transactions, and_(j.tenant_id == ps.tenant_id, j.id == ps.transaction_id))
        .join(members, and_(m.tenant_id == ps.tenant_id, ps.account_id == m.id + literal(suffix)))
        .where(
            ps.tenant_id == tenant_id,
            j.kind == "points_earned",
            ps.amount > 0,
            ps.occurred_at <= now,
        )
    )
    if since is not None:
        q = q.where(ps.occurred_at >= since)
    return q.group_by(m.id)


def leaderboard(
    ctx: Ctx,
    *,
    kind: str,
    period: str = "7d",
    community_id: str | None = None,
    group_id: str | None = None,
    limit: int = 20,
) -> dict[str, Any]:
    """A leaderboard over 7 d, 30 d or all time (local days of the tenant), of a community's
    or a group's members, or of every member."""
    board = board_kind(kind)
    window = period_of(period)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("leaderboard_limit_invalid", max=MAX_LIMIT)
    now = ctx.clock.now()
    with ctx.db.read() as tx:
        zone = load_settings(tx, ctx.tenant_id).time_zone
        since = window_start(window, now=now, time_zone=zone)
        scores = _scores(tx, ctx.tenant_id, board, since, now).subquery()
        c, m = community_members.c, members.c
        q = select(scores.c.member_id, list(scores.c)[1].label("score"), m.name).join(
            members, and_(m.tenant_id == ctx.tenant_id, m.id == scores.c.member_id)
        )
        if community_id is not None or group_id is not None:
            if community_id is not None:
                require_community(tx, ctx.tenant_id, community_id)
            if group_id is not None:
                require_group(tx, ctx.tenant_id, group_id)
            scope = select(c.member_id).where(c.tenant_id == ctx.tenant_id)
            if community_id is not None:
                scope = scope.where(c.community_id == community_id)
            if group_id is not None:
                scope = scope.where(c.group_id == group_id)
            q = q.where(scores.c.member_id.in_(scope.scalar_subquery()))
        rows = tx.execute(q).all()
    names = {r.member_id: r.name for r in rows}
    board_rows = ranked([(r.member_id, int(r.score or 0)) for r in rows], limit)
    return {
        "kind": board.value,
        "period": window.value,
        "since": since,
        "items": [
            {"rank": rank, "member_id": member_id, "name": names[member_id], "score": score}
            for rank, member_id, score in board_rows
        ],
    }


def feature_role_model(
    ctx: Ctx, *, member_id: str, title: str, story: str, community_id: str | None = None
) -> dict[str, Any]:
    """Feature a member as a role model (榜样) with the story others can follow."""
    clean_title = clean_text(title, field="title", max_length=80, required=True)
    clean_story = (story or "").strip()
    if not clean_story or len(clean_story) > 2_000:
        raise InvalidInput("field_too_long", field="story", max=2_000)
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        member = require_member(tx, ctx.tenant_id, member_id)
        if community_id is not None:
            require_community(tx, ctx.tenant_id, community_id)
        row = {
            "tenant_id": ctx.tenant_id,
            "id": new_id("rolem"),
            "member_id": member_id,
            "community_id": community_id,
            "title": clean_title,
            "story": clean_story,
            "active": True,
            "featured_at": now,
        }
        tx.execute(role_models.insert().values(row))
        record_events(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[Event("RoleModelFeatured", "member", member_id, {"title": clean_title})],
        )
    shown = view(row)
    shown["name"] = member.name
    return shown


def list_role_models(ctx: Ctx, *, community_id: str | None = None) -> list[dict[str, Any]]:
    r, m = role_models.c, members.c
    q = (
        select(role_models, m.name)
        .join(members, and_(m.tenant_id == r.tenant_id, m.id == r.member_id))
        .where(r.tenant_id == ctx.tenant_id, r.active)
    )
    if community_id is not None:
        q = q.where(r.community_id == community_id)
    with ctx.db.read() as tx:
        rows = tx.execute(q.order_by(r.featured_at.desc(), r.id)).all()
    return [view(row) for row in rows]


def lecturers(ctx: Ctx) -> list[dict[str, Any]]:
    """The lecturer roster: each lecturer with the classes given (occurrences someone
    attended) and their titles."""
    e, a, m = calendar_events.c, event_attendance.c, members.c
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(
                e.lecturer_id,
                m.name,
                e.id,
                e.title,
                func.count(distinct(a.occurrence_at)),
                func.count(),
            )
            .join(members, and_(m.tenant_id == e.tenant_id, m.id == e.lecturer_id))
            .outerjoin(event_attendance, and_(a.tenant_id == e.tenant_id, a.event_id == e.id))
            .where(e.tenant_id == ctx.tenant_id, e.lecturer_id.is_not(None))
            .group_by(e.lecturer_id, m.name, e.id, e.title)
            .order_by(e.lecturer_id, e.id)
        ).all()
    out: dict[str, dict[str, Any]] = {}
    for lecturer_id, name, event_id, title, given, _ in rows:
        entry = out.setdefault(
            lecturer_id, {"member_id": lecturer_id, "name": name, "classes_given": 0, "events": []}
        )
        entry["classes_given"] += int(given)
        entry["events"].append({"event_id": event_id, "title": title, "classes_given": int(given)})
    return sorted(out.values(), key=lambda x: (-x["classes_given"], x["member_id"]))
