"""Badges and titles: awarded by criteria over facts, set-based (one INSERT … SELECT per
badge over every member that meets it and has not got it, as Discourse's BadgeGranter does),
or by hand. An award is kept once per member and recorded as a `BadgeAwarded` event.

The facts are whole numbers per member: its purchase facts and team counts (members), the
communities it belongs to, and its activity counts by kind (`shequn.community.activities`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, func, literal, null, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ColumnElement

from shequn.community.common import ids_in, insert_ignoring, view
from shequn.community.communities.rules import clean_text
from shequn.community.rituals.rules import (
    ACTIVITY_FACTS,
    MEMBER_FACTS,
    BadgeKind,
    Condition,
    criteria_json,
    parse_criteria,
)
from shequn.community.tables import badge_awards, badges, community_members, member_activity_facts
from shequn.context import Ctx
from shequn.db import violated_constraint
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import Event, record_events
from shequn.ids import new_id
from shequn.members.repo import require_member
from shequn.members.tables import members


def _fact_column(fact: str) -> ColumnElement[Any]:
    """The SQL of one fact of the member row `members` being read."""
    m = members.c
    if fact in MEMBER_FACTS:
        return m[fact]
    if fact == "communities":
        c = community_members.c
        return (
            select(func.count())
            .where(c.tenant_id == m.tenant_id, c.member_id == m.id)
            .scalar_subquery()
        )
    f = member_activity_facts.c
    return func.coalesce(
        select(f.count)
        .where(f.tenant_id == m.tenant_id, f.member_id == m.id, f.kind == ACTIVITY_FACTS[fact])
        .scalar_subquery(),
        0,
    )


def _condition_sql(condition: Condition) -> ColumnElement[bool]:
    column = _fact_column(condition.fact)
    value = literal(condition.value)
    op = condition.op
    if op == ">=":
        return column >= value
    if op == ">":
        return column > value
    if op == "=":
        return column == value
    if op == "<=":
        return column <= value
    return column < value


def create_badge(
    ctx: Ctx,
    *,
    name: str,
    description: str = "",
    kind: str = BadgeKind.BADGE.value,
    criteria: Any = None,
) -> dict[str, Any]:
    """A badge or title; with `criteria` it is awarded automatically to every member that
    meets them, without by hand only."""
    clean = clean_text(name, field="name", max_length=80, required=True)
    text = clean_text(description, field="description", max_length=500)
    try:
        chosen = BadgeKind(kind)
    except ValueError:
        raise InvalidInput("badge_kind_invalid", kind=str(kind)[:20]) from None
    parsed = parse_criteria(criteria) if criteria is not None else None
    now = ctx.clock.now()
    row: dict[str, Any] = {
        "tenant_id": ctx.tenant_id,
        "id": new_id("bdg"),
        "name": clean,
        "description": text,
        "kind": chosen.value,
        "criteria": criteria_json(parsed) if parsed is not None else None,
        "active": True,
        "created_at": now,
    }
    try:
        with ctx.db.transaction() as tx:
            # A badge awarded by hand has no criteria: SQL NULL, not a JSON null.
            criteria = row["criteria"] if row["criteria"] is not None else null()
            tx.execute(badges.insert().values({**row, "criteria": criteria}))
            record_events(
                tx,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                at=now,
                items=[
                    Event("BadgeCreated", "badge", row["id"], {"name": clean, "kind": chosen.value})
                ],
            )
    except IntegrityError as exc:
        if violated_constraint(exc) == "uq_badges_tenant_id_name":
            raise Conflict("badge_name_taken", name=clean) from None
        raise
    return view(row)


def list_badges(ctx: Ctx) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(badges).where(badges.c.tenant_id == ctx.tenant_id).order_by(badges.c.id)
        ).all()
    return [view(r) for r in rows]


def grant_in(
    tx: Connection,
    *,
    tenant_id: str,
    at: datetime,
    badge_ids: Sequence[str] | None = None,
    member_ids: Sequence[str] | None = None,
) -> dict[str, list[str]]:
    """Award every automatic badge (or those of `badge_ids`) to the members (or those of
    `member_ids`) that meet its criteria and lack it: one statement per badge. Returns the
    members newly awarded, per badge."""
    query = select(badges).where(
        badges.c.tenant_id == tenant_id, badges.c.active, badges.c.criteria.is_not(None)
    )
    if badge_ids is not None:
        query = query.where(badges.c.id.in_(list(badge_ids)))
    awarded: dict[str, list[str]] = {}
    m = members.c
    w = badge_awards.c
    for badge in tx.execute(query.order_by(badges.c.id)).all():
        if badge.criteria is None:  # awarded by hand (a JSON null of an older row)
            continue
        conditions = parse_criteria(badge.criteria)
        chosen = select(
            m.tenant_id,
            literal(badge.id),
            m.id,
            literal("criteria"),
            literal(None),
            literal(at, type_=badge_awards.c.awarded_at.type),
        ).where(
            m.tenant_id == tenant_id,
            m.anonymised_at.is_(None),
            *[_condition_sql(c) for c in conditions],
            ~exists().where(
                w.tenant_id == m.tenant_id, w.badge_id == badge.id, w.member_id == m.id
            ),
        )
        if member_ids is not None:
            if not member_ids:
                continue
            chosen = chosen.where(ids_in(tx, m.id, list(member_ids)))
        statement = (
            insert_ignoring(tx, badge_awards, ("tenant_id", "badge_id", "member_id"))
            .from_select(
                ["tenant_id", "badge_id", "member_id", "awarded_by", "reason", "awarded_at"], chosen
            )
            .returning(badge_awards.c.member_id)
        )
        new = sorted(tx.execute(statement).scalars())
        if new:
            awarded[badge.id] = new
            record_events(
                tx,
                tenant_id=tenant_id,
                actor="system",
                at=at,
                items=[
                    Event(
                        "BadgeAwarded",
                        "member",
                        member_id,
                        {"badge_id": badge.id, "by": "criteria"},
                    )
                    for member_id in new
                ],
            )
    return awarded


def grant_badges(ctx: Ctx, *, badge_id: str | None = None) -> dict[str, Any]:
    """Run the granter now (for one badge, or every automatic badge)."""
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        if badge_id is not None:
            row = tx.execute(
                select(badges).where(badges.c.tenant_id == ctx.tenant_id, badges.c.id == badge_id)
            ).first()
            if row is None:
                raise NotFound("badge_not_found", id=badge_id)
            if row.criteria is None:
                raise Conflict("badge_is_manual", id=badge_id)
        awarded = grant_in(
            tx, tenant_id=ctx.tenant_id, at=now, badge_ids=[badge_id] if badge_id else None
        )
    return {
        "awarded": [{"badge_id": b, "members": len(ids)} for b, ids in sorted(awarded.items())],
        "total": sum(len(ids) for ids in awarded.values()),
    }


def award_in(
    tx: Connection,
    *,
    tenant_id: str,
    badge_id: str,
    member_id: str,
    awarded_by: str,
    reason: str | None,
    at: datetime,
    actor: str,
    by: str,
) -> bool:
    """Award a badge in the caller's transaction, kept once per member: the award row and its
    `BadgeAwarded` event (`by`: hand, program…); False when the member already had it."""
    written = tx.execute(
        insert_ignoring(tx, badge_awards, ("tenant_id", "badge_id", "member_id"))
        .values(
            tenant_id=tenant_id,
            badge_id=badge_id,
            member_id=member_id,
            awarded_by=awarded_by,
            reason=reason,
            awarded_at=at,
        )
        .returning(badge_awards.c.member_id)
    ).first()
    if written is None:
        return False
    record_events(
        tx,
        tenant_id=tenant_id,
        actor=actor,
        at=at,
        items=[Event("BadgeAwarded", "member", member_id, {"badge_id": badge_id, "by": by})],
    )
    return True


def award_badge(
    ctx: Ctx, *, badge_id: str, member_id: str, reason: str | None = None
) -> tuple[dict[str, Any], bool]:
    """Award a badge by hand; awarding it again changes nothing (replayed)."""
    note = clean_text(reason, field="reason", max_length=200) or None
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        badge = tx.execute(
            select(badges).where(badges.c.tenant_id == ctx.tenant_id, badges.c.id == badge_id)
        ).first()
        if badge is None:
            raise NotFound("badge_not_found", id=badge_id)
        require_member(tx, ctx.tenant_id, member_id)
        written = award_in(
            tx,
            tenant_id=ctx.tenant_id,
            badge_id=badge_id,
            member_id=member_id,
            awarded_by=ctx.actor,
            reason=note,
            at=now,
            actor=ctx.actor,
            by="hand",
        )
        award = tx.execute(
            select(badge_awards).where(
                badge_awards.c.tenant_id == ctx.tenant_id,
                badge_awards.c.badge_id == badge_id,
                badge_awards.c.member_id == member_id,
            )
        ).one()
    return _award_view(award, badge), not written


def _award_view(award: Any, badge: Any) -> dict[str, Any]:
    return {
        "badge_id": badge.id,
        "name": badge.name,
        "kind": badge.kind,
        "description": badge.description,
        "awarded_by": award.awarded_by,
        "reason": award.reason,
        "awarded_at": award.awarded_at,
    }


def member_badges(ctx: Ctx, *, member_id: str) -> dict[str, Any]:
    """The member's badges and titles, oldest first, and the title it carries (the newest)."""
    w, b = badge_awards.c, badges.c
    with ctx.db.read() as tx:
        require_member(tx, ctx.tenant_id, member_id)
        rows = tx.execute(
            select(badge_awards, b.name, b.kind, b.description, b.id.label("bid"))
            .join(badges, and_(b.tenant_id == w.tenant_id, b.id == w.badge_id))
            .where(w.tenant_id == ctx.tenant_id, w.member_id == member_id)
            .order_by(w.awarded_at, w.badge_id)
        ).all()
    items = [
        {
            "badge_id": r.badge_id,
            "name": r.name,
            "kind": r.kind,
            "description": r.description,
            "awarded_by": r.awarded_by,
            "reason": r.reason,
            "awarded_at": r.awarded_at,
        }
        for r in rows
    ]
    titles = [i["name"] for i in items if i["kind"] == BadgeKind.TITLE.value]
    return {"member_id": member_id, "title": titles[-1] if titles else None, "items": items}
