"""Rewards of community operations that span domains: attending a calendar event and
checking in to a program earn points (growth), and both move members along the growth path
and up the tiers whose criteria count such facts, in the same transaction as what earned
them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from shequn.community.gatherings import service as gatherings
from shequn.community.path.service import evaluate_in
from shequn.community.programs import service as programs
from shequn.context import Ctx
from shequn.events.service import record_event
from shequn.growth.points.service import EarnedLot, earn_lots
from shequn.growth.settings.service import load_growth_settings
from shequn.tiers.evaluation import upgrade_after_facts

ATTENDANCE_RULE = "attendance"
MILESTONE_RULE = "program_milestone"


def _earn(
    tx: Connection, tenant_id: str, lots: Sequence[EarnedLot], at: datetime
) -> dict[str, int]:
    if not any(lot.points > 0 for lot in lots):
        return {}
    settings = load_growth_settings(tx, tenant_id)
    earned = earn_lots(
        tx, tenant_id=tenant_id, lots=lots, at=at, expiry_days=settings.points_expiry_days
    )
    by_ref = {lot.ref: lot for lot in lots}
    for ref, points in sorted(earned.items()):
        record_event(
            tx,
            tenant_id=tenant_id,
            actor="system",
            at=at,
            type="PointsAwarded",
            subject_type="member",
            subject_id=by_ref[ref].member_id,
            payload={"rule": ref.split(":", 1)[0], "ref": ref, "points": points},
        )
    return earned


def _facts_recorded(
    tx: Connection, tenant_id: str, member_ids: Sequence[str], at: datetime, actor: str
) -> None:
    """The growth stage and then the tier of members who have just earned facts (attended,
    checked in, completed): a stage reached is itself a fact a tier may count."""
    if not member_ids:
        return
    evaluate_in(tx, tenant_id=tenant_id, member_ids=list(member_ids), at=at, actor=actor)
    upgrade_after_facts(tx, tenant_id=tenant_id, actor=actor, at=at, member_ids=member_ids)


def _attendance_lots(items: Sequence[gatherings.Attended]) -> list[EarnedLot]:
    return [
        EarnedLot(
            i.member_id,
            "rule",
            f"{ATTENDANCE_RULE}:{i.event_id}:{i.occurrence_at.strftime('%Y%m%dT%H%M')}",
            i.points,
        )
        for i in items
        if i.new and i.points > 0
    ]


def record_attendance(
    ctx: Ctx,
    *,
    event_id: str,
    member_id: str,
    code: str | None = None,
    occurrence_at: datetime | None = None,
) -> dict[str, Any]:
    """A member attends the occurrence open now (by its code) or a named one (recorded by
    staff): the event's points are earned once, and the member's growth stage is read."""
    now = ctx.clock.now()
    via = "code" if occurrence_at is None else "staff"
    with ctx.db.transaction() as tx:
        item = gatherings.attend_in(
            tx,
            tenant_id=ctx.tenant_id,
            event_id=event_id,
            member_id=member_id,
            code=code,
            via=via,
            now=now,
            occurrence_at=occurrence_at,
        )
        attended = [member_id] + ([item.lecturer_id] if item.lecturer_id else [])
        _facts_recorded(tx, ctx.tenant_id, sorted(set(attended)), now, ctx.actor)
        earned = _earn(tx, ctx.tenant_id, _attendance_lots([item]), now)
    return gatherings.attended_view(item, sum(earned.values()))


def attendance_from_activities(ctx: Ctx, *, lookback: timedelta = timedelta(days=2)) -> int:
    """Attendance from ingested check-in activities carrying an event's code, with points."""
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        items = gatherings.attendance_from_activities(
            tx, tenant_id=ctx.tenant_id, since=now - lookback, now=now
        )
        new = [i for i in items if i.new]
        _facts_recorded(tx, ctx.tenant_id, sorted({i.member_id for i in new}), now, ctx.actor)
        _earn(tx, ctx.tenant_id, _attendance_lots(new), now)
    return len(new)


def check_in(
    ctx: Ctx,
    *,
    server_key: str,
    program_id: str,
    member_id: str,
    kind: str = "checkin",
    day: int | None = None,
    submission: str | None = None,
) -> dict[str, Any]:
    """A program check-in with its milestone rewards (points earned once per milestone) and
    the growth stage read; a member who just completed gets the completion certificate."""
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        item = programs.checkin_in(
            tx,
            tenant_id=ctx.tenant_id,
            program_id=program_id,
            member_id=member_id,
            kind=kind,
            day=day,
            submission=submission,
            now=now,
            actor=ctx.actor,
        )
        if not item.replayed:
            _facts_recorded(tx, ctx.tenant_id, [member_id], now, ctx.actor)
        lots = [
            EarnedLot(member_id, "rule", f"{MILESTONE_RULE}:{program_id}:{m.day}", m.points)
            for m in item.milestones
            if m.points > 0
        ]
        earned = _earn(tx, ctx.tenant_id, lots, now)
    if item.completed and item.certificate_id is None:
        item.certificate_id = programs.issue_completion_certificate(
            ctx, server_key=server_key, program_id=program_id, member_id=member_id
        )
    return programs.checked_in_view(item, sum(earned.values()))
