"""The growth path's use cases: set the tenant's stages, evaluate members set-based over
their facts (as attendance, check-ins and other events arrive, or for everyone from the CLI),
and a member's stage, facts and next step. A change of stage is a `GrowthStageChanged` event
that tiers, badges and reports can follow."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, distinct, func, select

from shequn.community.activities.facts import activity_facts
from shequn.community.common import dialect_insert, ids_in
from shequn.community.gatherings.tables import calendar_events, event_attendance
from shequn.community.path.rules import (
    NextStep,
    Stage,
    changes,
    default_stages,
    next_step,
    parse_stages,
    stage_of,
    stages_json,
)
from shequn.community.path.tables import growth_stages, member_growth
from shequn.community.programs.tables import program_checkins, program_participants
from shequn.community.tables import community_members
from shequn.context import Ctx
from shequn.events.service import Event, record_events
from shequn.locks import Lock, take
from shequn.members.repo import referred_buyers, require_member
from shequn.members.tables import members

CHUNK = 1_000


def load_stages(tx: Connection, tenant_id: str) -> list[Stage]:
    """The tenant's stages, or the default path (进入 学习 实践 实战 提升 分享 自我实现)."""
    s = growth_stages.c
    rows = tx.execute(
        select(s.name, s.criteria).where(s.tenant_id == tenant_id).order_by(s.position)
    ).all()
    if not rows:
        return default_stages()
    return parse_stages([{"name": r.name, "criteria": r.criteria} for r in rows])


def set_stages(ctx: Ctx, *, stages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Replace the tenant's stages (in order), then every member is read against them at the
    next evaluation."""
    parsed = parse_stages(stages)
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        tx.execute(delete(growth_stages).where(growth_stages.c.tenant_id == ctx.tenant_id))
        tx.execute(
            growth_stages.insert(),
            [
                {
                    "tenant_id": ctx.tenant_id,
                    "position": s.position,
                    "name": s.name,
                    "criteria": item["criteria"],
                    "updated_at": now,
                }
                for s, item in zip(parsed, stages_json(parsed), strict=True)
            ],
        )
        record_events(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[Event("GrowthPathChanged", "tenant", ctx.tenant_id, {"stages": len(parsed)})],
        )
    return stages_json(parsed)


def _counts(tx: Connection, query: Any) -> dict[str, int]:
    return {r[0]: int(r[1]) for r in tx.execute(query).all()}


def member_facts(
    tx: Connection, tenant_id: str, member_ids: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Each member's facts of commerce and community, a few statements for all of them."""
    if not member_ids:
        return {}
    ids = list(member_ids)
    m = members.c
    base = {
        r.id: {
            "paid_order_count": int(r.paid_order_count),
            "paid_total_fen": int(r.paid_total_fen),
            "first_sale": 1 if r.lifetime_order_count > 0 else 0,
            "direct_count": int(r.direct_count),
        }
        for r in tx.execute(
            select(
                m.id, m.paid_order_count, m.paid_total_fen, m.lifetime_order_count, m.direct_count
            ).where(m.tenant_id == tenant_id, ids_in(tx, m.id, ids))
        ).all()
    }
    found = list(base)
    a = event_attendance.c
    attended = _counts(
        tx,
        select(a.member_id, func.count())
        .where(a.tenant_id == tenant_id, ids_in(tx, a.member_id, found))
        .group_by(a.member_id),
    )
    p = program_participants.c
    completed = _counts(
        tx,
        select(p.member_id, func.count())
        .where(
            p.tenant_id == tenant_id, ids_in(tx, p.member_id, found), p.completed_at.is_not(None)
        )
        .group_by(p.member_id),
    )
    k = program_checkins.c
    lessons = _counts(
        tx,
        select(k.member_id, func.count())
        .where(k.tenant_id == tenant_id, ids_in(tx, k.member_id, found), k.kind == "lesson")
        .group_by(k.member_id),
    )
    e = calendar_events.c
    talks = _counts(
        tx,
        select(e.lecturer_id, func.count(distinct(a.occurrence_at)))
        .join(event_attendance, and_(a.tenant_id == e.tenant_id, a.event_id == e.id))
        .where(e.tenant_id == tenant_id, ids_in(tx, e.lecturer_id, found))
        .group_by(e.lecturer_id),
    )
    c = community_members.c
    communities = _counts(
        tx,
        select(c.member_id, func.count())
        .where(c.tenant_id == tenant_id, ids_in(tx, c.member_id, found))
        .group_by(c.member_id),
    )
    referred = referred_buyers(tx, tenant_id, found)
    activity = activity_facts(tx, tenant_id=tenant_id, member_ids=found)
    for member_id, facts in base.items():
        facts["events_attended"] = attended.get(member_id, 0)
        facts["challenges_completed"] = completed.get(member_id, 0)
        facts["lessons_done"] = lessons.get(member_id, 0)
        facts["talks_given"] = talks.get(member_id, 0)
        facts["communities"] = communities.get(member_id, 0)
        facts["referred_buyers"] = referred.get(member_id, 0)
        facts["check_ins"] = activity[member_id].get("check_ins", 0)
        facts["messages"] = activity[member_id].get("messages", 0)
    return base


def evaluate_in(
    tx: Connection, *, tenant_id: str, member_ids: Sequence[str], at: datetime, actor: str
) -> dict[str, tuple[int, int]]:
    """Read the members against the path and write the stages that moved, each with a
    `GrowthStageChanged` event; returns member → (from, to)."""
    if not member_ids:
        return {}
    stages = load_stages(tx, tenant_id)
    names = {s.position: s.name for s in stages}
    facts = member_facts(tx, tenant_id, member_ids)
    g = member_growth.c
    before = {
        r.member_id: int(r.position)
        for r in tx.execute(
            select(g.member_id, g.position).where(
                g.tenant_id == tenant_id, ids_in(tx, g.member_id, list(facts))
            )
        ).all()
    }
    moved = changes(stages, before, facts)
    if not moved:
        return {}
    take(tx, Lock.GROWTH_STAGES)
    rows = [
        {
            "tenant_id": tenant_id,
            "member_id": member_id,
            "position": to,
            "stage": names.get(to, ""),
            "entered_at": at,
            "evaluated_at": at,
        }
        for member_id, (_, to) in sorted(moved.items())
    ]
    statement = dialect_insert(tx, member_growth)
    tx.execute(
        statement.on_conflict_do_update(
            index_elements=["tenant_id", "member_id"],
            set_={
                "position": statement.excluded.position,
                "stage": statement.excluded.stage,
                "entered_at": statement.excluded.entered_at,
                "evaluated_at": statement.excluded.evaluated_at,
            },
        ),
        rows,
    )
    record_events(
        tx,
        tenant_id=tenant_id,
        actor=actor,
        at=at,
        items=[
            Event(
                "GrowthStageChanged",
                "member",
                member_id,
                {
                    "from": names.get(was),
                    "to": names.get(to),
                    "from_position": was,
                    "to_position": to,
                },
            )
            for member_id, (was, to) in sorted(moved.items())
        ],
    )
    return moved


def evaluate_members(
    ctx: Ctx,
    *,
    member_ids: Sequence[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Evaluate the given members (or every member, a chunk per transaction)."""
    now = ctx.clock.now()
    if member_ids is not None:
        with ctx.db.transaction() as tx:
            moved = evaluate_in(
                tx, tenant_id=ctx.tenant_id, member_ids=member_ids, at=now, actor=ctx.actor
            )
        return {"evaluated": len(member_ids), "changed": len(moved)}
    m = members.c
    after = ""
    evaluated = changed = 0
    while True:
        with ctx.db.transaction() as tx:
            chunk = list(
                tx.execute(
                    select(m.id)
                    .where(m.tenant_id == ctx.tenant_id, m.id > after, m.anonymised_at.is_(None))
                    .order_by(m.id)
                    .limit(CHUNK)
                ).scalars()
            )
            if not chunk:
                break
            moved = evaluate_in(
                tx, tenant_id=ctx.tenant_id, member_ids=chunk, at=now, actor=ctx.actor
            )
        evaluated += len(chunk)
        changed += len(moved)
        after = chunk[-1]
        if progress is not None:
            progress(len(chunk))
    return {"evaluated": evaluated, "changed": changed}


def _next_view(step: NextStep | None) -> dict[str, Any] | None:
    if step is None:
        return None
    return {
        "position": step.position,
        "stage": step.name,
        "missing": [
            {"fact": c.fact, "op": c.op, "value": c.value, "have": have, "gap": gap}
            for c, have, gap in step.missing
        ],
    }


def member_growth_view(ctx: Ctx, *, member_id: str) -> dict[str, Any]:
    """A member's stage on the path, its facts and its next step."""
    with ctx.db.read() as tx:
        require_member(tx, ctx.tenant_id, member_id)
        stages = load_stages(tx, ctx.tenant_id)
        facts = member_facts(tx, ctx.tenant_id, [member_id])[member_id]
        g = member_growth.c
        stored = tx.execute(
            select(member_growth).where(g.tenant_id == ctx.tenant_id, g.member_id == member_id)
        ).first()
    position = stage_of(stages, facts)
    return {
        "member_id": member_id,
        "position": position,
        "stage": next((s.name for s in stages if s.position == position), None),
        "entered_at": stored.entered_at
        if stored is not None and stored.position == position
        else None,
        "stages": [s.name for s in stages],
        "facts": [{"fact": k, "value": v} for k, v in sorted(facts.items())],
        "next": _next_view(next_step(stages, facts)),
    }
