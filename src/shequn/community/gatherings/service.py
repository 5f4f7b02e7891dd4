"""Calendar events: create one on a recurrence rule, list its occurrences with their seats,
take RSVPs (a seat, else the waitlist; a seat freed goes to the first waiting), record
attendance by code or from ingested check-in activities, and queue reminders and no-show
follow-ups through the outbox.

Attendance that earns points goes through `shequn.flows.community_rewards`, which adds the
points in the same transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, func, select, update

from shequn.community.common import insert_ignoring, random_code, view
from shequn.community.communities.queries import require_community
from shequn.community.communities.rules import clean_text
from shequn.community.gatherings.rules import (
    RsvpStatus,
    check_in_window,
    check_moment,
    event_kind,
    is_occurrence,
    no_show,
    occurrence_open_at,
    occurrences,
    parse_rule,
    seat_for,
    to_promote,
)
from shequn.community.gatherings.tables import calendar_events, event_attendance, event_rsvps
from shequn.community.groups.queries import require_group
from shequn.community.outbox import Message, enqueue_messages
from shequn.community.tables import activities, staff_accounts
from shequn.context import Ctx
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import Event, record_events
from shequn.i18n import Locale, translate_in
from shequn.ids import new_id
from shequn.locks import Lock, lock_rows
from shequn.members.repo import require_member
from shequn.tenancy.repo import load_settings

CODE_LENGTH = 6
MAX_DURATION = 24 * 60
MAX_CAPACITY = 100_000
MAX_POINTS = 100_000


def _require_event(tx: Connection, tenant_id: str, event_id: str, *, lock: bool = False) -> Any:
    if lock:
        rows = lock_rows(
            tx,
            Lock.CALENDAR_EVENTS,
            calendar_events,
            tenant_id,
            [event_id],
            columns=[c.name for c in calendar_events.c],
        )
        row = rows[0] if rows else None
    else:
        row = tx.execute(
            select(calendar_events).where(
                calendar_events.c.tenant_id == tenant_id, calendar_events.c.id == event_id
            )
        ).first()
    if row is None:
        raise NotFound("calendar_event_not_found", id=event_id)
    return row


def create_event(
    ctx: Ctx,
    *,
    title: str,
    kind: str,
    rrule: str,
    starts_at: datetime,
    duration_minutes: int = 60,
    capacity: int | None = None,
    points: int = 0,
    remind_minutes: int = 60,
    community_id: str | None = None,
    group_id: str | None = None,
    lecturer_id: str | None = None,
    staff_account_id: str | None = None,
) -> dict[str, Any]:
    """A calendar event whose occurrences the RRULE gives in the tenant's time zone, from
    `starts_at` (its first occurrence's local wall time)."""
    clean = clean_text(title, field="title", max_length=120, required=True)
    chosen = event_kind(kind)
    check_moment(starts_at, "starts_at")
    if not 1 <= duration_minutes <= MAX_DURATION:
        raise InvalidInput("calendar_event_duration_invalid", max=MAX_DURATION)
    if capacity is not None and not 1 <= capacity <= MAX_CAPACITY:
        raise InvalidInput("calendar_event_capacity_invalid", max=MAX_CAPACITY)
    if not 0 <= points <= MAX_POINTS or not 0 <= remind_minutes <= 7 * 24 * 60:
        raise InvalidInput("calendar_event_points_invalid", max=MAX_POINTS)
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        zone = load_settings(tx, ctx.tenant_id).time_zone
        parse_rule(rrule, starts_at=starts_at, time_zone=zone)
        if community_id is not None:
            require_community(tx, ctx.tenant_id, community_id)
        if group_id is not None:
            require_group(tx, ctx.tenant_id, group_id)
        if lecturer_id is not None:
            require_member(tx, ctx.tenant_id, lecturer_id)
        if staff_account_id is not None:
            found = tx.execute(
                select(staff_accounts.c.id).where(
                    staff_accounts.c.tenant_id == ctx.tenant_id,
                    staff_accounts.c.id == staff_account_id,
                )
            ).first()
            if found is None:
                raise NotFound("staff_account_not_found", id=staff_account_id)
        row: dict[str, Any] = {
            "tenant_id": ctx.tenant_id,
            "id": new_id("cal"),
            "community_id": community_id,
            "group_id": group_id,
            "kind": chosen.value,
            "title": clean,
            "rrule": rrule.strip(),
            "starts_at": starts_at.replace(microsecond=0),
            "time_zone": zone,
            "duration_minutes": duration_minutes,
            "capacity": capacity,
            "points": points,
            "remind_minutes": remind_minutes,
            "attendance_code": random_code(CODE_LENGTH),
            "lecturer_id": lecturer_id,
            "staff_account_id": staff_account_id,
            "created_at": now,
        }
        tx.execute(calendar_events.insert().values(row))
        record_events(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[
                Event(
                    "CalendarEventCreated",
                    "calendar_event",
                    row["id"],
                    {"kind": chosen.value, "rrule": row["rrule"], "title": clean},
                )
            ],
        )
    return view(row)


def _occurrences_of(row: Any, start: datetime, end: datetime) -> list[datetime]:
    return occurrences(
        row.rrule, starts_at=row.starts_at, time_zone=row.time_zone, start=start, end=end
    )


def event_occurrences(ctx: Ctx, *, event_id: str, start: datetime, end: datetime) -> dict[str, Any]:
    """The occurrences in [start, end) with their seats taken, waitlist and attendance."""
    with ctx.db.read() as tx:
        row = _require_event(tx, ctx.tenant_id, event_id)
        found = _occurrences_of(row, start, end)
        r = event_rsvps.c
        counts: dict[tuple[datetime, str], int] = {}
        attended: dict[datetime, int] = {}
        if found:
            for at, status, n in tx.execute(
                select(r.occurrence_at, r.status, func.count())
                .where(
                    r.tenant_id == ctx.tenant_id,
                    r.event_id == event_id,
                    r.occurrence_at >= found[0],
                    r.occurrence_at <= found[-1],
                )
                .group_by(r.occurrence_at, r.status)
            ).all():
                counts[(at, status)] = int(n)
            a = event_attendance.c
            for at, n in tx.execute(
                select(a.occurrence_at, func.count())
                .where(
                    a.tenant_id == ctx.tenant_id,
                    a.event_id == event_id,
                    a.occurrence_at >= found[0],
                    a.occurrence_at <= found[-1],
                )
                .group_by(a.occurrence_at)
            ).all():
                attended[at] = int(n)
    items = []
    for at in found:
        confirmed = counts.get((at, RsvpStatus.CONFIRMED.value), 0)
        items.append(
            {
                "starts_at": at,
                "ends_at": at + timedelta(minutes=row.duration_minutes),
                "confirmed": confirmed,
                "waitlisted": counts.get((at, RsvpStatus.WAITLISTED.value), 0),
                "seats_left": None if row.capacity is None else max(0, row.capacity - confirmed),
                "attended": attended.get(at, 0),
            }
        )
    return {"event_id": event_id, "time_zone": row.time_zone, "items": items}


def _rsvp_view(row: Any, position: int | None, promoted: Sequence[str]) -> dict[str, Any]:
    return {
        "event_id": row.event_id,
        "occurrence_at": row.occurrence_at,
        "member_id": row.member_id,
        "status": row.status,
        "waitlist_position": position,
        "promoted": list(promoted),
    }


def _rsvp_rows(tx: Connection, tenant_id: str, event_id: str, at: datetime) -> list[Any]:
    r = event_rsvps.c
    return list(
        tx.execute(
            select(event_rsvps)
            .where(r.tenant_id == tenant_id, r.event_id == event_id, r.occurrence_at == at)
            .order_by(r.seq)
        ).all()
    )


def rsvp(
    ctx: Ctx, *, event_id: str, member_id: str, occurrence_at: datetime, cancel: bool = False
) -> tuple[dict[str, Any], bool]:
    """Ask for a seat at an occurrence (a seat while one is free, else the waitlist), or give
    one back (`cancel`): the first waiting member takes it and is told through the outbox.
    Asking again changes nothing (replayed)."""
    check_moment(occurrence_at, "occurrence_at")
    now = ctx.clock.now()
    at = occurrence_at.replace(microsecond=0)
    with ctx.db.transaction() as tx:
        event = _require_event(tx, ctx.tenant_id, event_id, lock=True)
        if not is_occurrence(
            event.rrule, starts_at=event.starts_at, time_zone=event.time_zone, at=at
        ):
            raise InvalidInput("occurrence_unknown", at=at.isoformat())
        if at + timedelta(minutes=event.duration_minutes) <= now:
            raise Conflict("occurrence_past", at=at.isoformat())
        member = require_member(tx, ctx.tenant_id, member_id)
        rows = _rsvp_rows(tx, ctx.tenant_id, event_id, at)
        mine = next((r for r in rows if r.member_id == member_id), None)
        confirmed = sum(1 for r in rows if r.status == RsvpStatus.CONFIRMED.value)
        r = event_rsvps.c
        key = (r.tenant_id == ctx.tenant_id, r.event_id == event_id, r.occurrence_at == at)
        promoted: list[str] = []
        events: list[Event] = []
        if cancel:
            if mine is None or mine.status == RsvpStatus.CANCELLED.value:
                if mine is None:
                    raise NotFound("rsvp_not_found", member_id=member_id)
                return _rsvp_view(mine, None, []), True
            tx.execute(
                update(event_rsvps)
                .where(*key, r.member_id == member_id)
                .values(status=RsvpStatus.CANCELLED.value, updated_at=now)
            )
            if mine.status == RsvpStatus.CONFIRMED.value:
                confirmed -= 1
            waiting = [
                w.member_id
                for w in rows
                if w.status == RsvpStatus.WAITLISTED.value and w.member_id != member_id
            ]
            promoted = to_promote(event.capacity, confirmed, waiting)
            if promoted:
                tx.execute(
                    update(event_rsvps)
                    .where(*key, r.member_id.in_(promoted))
                    .values(status=RsvpStatus.CONFIRMED.value, updated_at=now)
                )
                _tell_promoted(tx, ctx.tenant_id, event, at, promoted, now)
            events.append(
                Event("RsvpCancelled", "calendar_event", event_id, {"member_id": member_id})
            )
            events += [
                Event("RsvpPromoted", "calendar_event", event_id, {"member_id": m})
                for m in promoted
            ]
        else:
            if mine is not None and mine.status != RsvpStatus.CANCELLED.value:
                return _rsvp_view(mine, _position(rows, mine), []), True
            status = seat_for(event.capacity, confirmed)
            seq = max((x.seq for x in rows), default=0) + 1
            if mine is None:
                tx.execute(
                    event_rsvps.insert().values(
                        tenant_id=ctx.tenant_id,
                        event_id=event_id,
                        occurrence_at=at,
                        member_id=member.id,
                        status=status.value,
                        seq=seq,
                        created_at=now,
                        updated_at=now,
                    )
                )
            else:
                tx.execute(
                    update(event_rsvps)
                    .where(*key, r.member_id == member_id)
                    .values(status=status.value, seq=seq, updated_at=now)
                )
            events.append(
                Event(
                    "RsvpTaken",
                    "calendar_event",
                    event_id,
                    {"member_id": member_id, "status": status.value, "at": at},
                )
            )
        record_events(tx, tenant_id=ctx.tenant_id, actor=ctx.actor, at=now, items=events)
        fresh = _rsvp_rows(tx, ctx.tenant_id, event_id, at)
    mine = next(x for x in fresh if x.member_id == member_id)
    return _rsvp_view(mine, _position(fresh, mine), promoted), False


def _position(rows: Sequence[Any], mine: Any) -> int | None:
    if mine.status != RsvpStatus.WAITLISTED.value:
        return None
    waiting = [r.member_id for r in rows if r.status == RsvpStatus.WAITLISTED.value]
    return waiting.index(mine.member_id) + 1


def _texts(tx: Connection, tenant_id: str, key: str) -> Callable[[str, datetime], str]:
    """Messages of one kind in the tenant's language, their times in the tenant's zone (the
    settings read once for all of them)."""
    settings = load_settings(tx, tenant_id)
    zone, locale = ZoneInfo(settings.time_zone), cast(Locale, settings.locale)

    def text(title: str, at: datetime) -> str:
        local = at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        return translate_in(locale, f"community_ops.message.{key}", title=title, at=local)

    return text


def _stamp(at: datetime) -> str:
    return at.strftime("%Y%m%dT%H%MZ")


def _tell_promoted(
    tx: Connection,
    tenant_id: str,
    event: Any,
    at: datetime,
    member_ids: Sequence[str],
    now: datetime,
) -> None:
    text = _texts(tx, tenant_id, "promoted")
    enqueue_messages(
        tx,
        tenant_id=tenant_id,
        at=now,
        messages=[
            Message(
                dedupe_key=f"rsvp-promoted:{event.id}:{_stamp(at)}:{m}",
                kind="rsvp_promoted",
                body=text(event.title, at),
                staff_account_id=event.staff_account_id,
                member_id=m,
                group_id=event.group_id,
                payload={"event_id": event.id, "occurrence_at": at.isoformat()},
            )
            for m in member_ids
        ],
    )


@dataclass(frozen=True)
class Attended:
    event_id: str
    occurrence_at: datetime
    member_id: str
    via: str
    attended_at: datetime
    new: bool
    points: int  # the event's points for attending (earned once, by the caller)
    lecturer_id: str | None


def attend_in(
    tx: Connection,
    *,
    tenant_id: str,
    event_id: str,
    member_id: str,
    code: str | None,
    via: str,
    now: datetime,
    occurrence_at: datetime | None = None,
) -> Attended:
    """Record a member's attendance at the occurrence open now (by its code), or at a named
    occurrence (by staff), in the caller's transaction; a second record is the same."""
    event = _require_event(tx, tenant_id, event_id, lock=True)
    require_member(tx, tenant_id, member_id)
    if via == "code" and (code or "").strip().upper() != event.attendance_code:
        raise InvalidInput("attendance_code_wrong")
    if occurrence_at is None:
        candidates = _occurrences_of(event, now - timedelta(days=2), now + timedelta(days=1))
        at = occurrence_open_at(candidates, now=now, duration_minutes=event.duration_minutes)
    else:
        at = check_moment(occurrence_at, "occurrence_at").replace(microsecond=0)
        if not is_occurrence(
            event.rrule, starts_at=event.starts_at, time_zone=event.time_zone, at=at
        ):
            raise InvalidInput("occurrence_unknown", at=at.isoformat())
        if check_in_window(at, event.duration_minutes).opens > now:
            raise Conflict("attendance_not_open")
    written = tx.execute(
        insert_ignoring(
            tx, event_attendance, ("tenant_id", "event_id", "occurrence_at", "member_id")
        )
        .values(
            tenant_id=tenant_id,
            event_id=event_id,
            occurrence_at=at,
            member_id=member_id,
            via=via,
            attended_at=now,
        )
        .returning(event_attendance.c.member_id)
    ).first()
    if written is not None:
        record_events(
            tx,
            tenant_id=tenant_id,
            actor="system",
            at=now,
            items=[
                Event(
                    "EventAttended",
                    "member",
                    member_id,
                    {"event_id": event_id, "occurrence_at": at, "via": via},
                )
            ],
        )
    a = event_attendance.c
    row = tx.execute(
        select(event_attendance).where(
            a.tenant_id == tenant_id,
            a.event_id == event_id,
            a.occurrence_at == at,
            a.member_id == member_id,
        )
    ).one()
    return Attended(
        event_id,
        at,
        member_id,
        row.via,
        row.attended_at,
        written is not None,
        int(event.points),
        event.lecturer_id,
    )


def attendance_from_activities(
    tx: Connection, *, tenant_id: str, since: datetime, now: datetime
) -> list[Attended]:
    """Attendance for every check-in activity since `since` whose `state` is an event's
    attendance code and whose event time falls in an occurrence's check-in window."""
    a = activities.c
    rows = tx.execute(
        select(a.member_id, a.state, a.occurred_at)
        .where(
            a.tenant_id == tenant_id,
            a.kind == "check_in",
            a.member_id.is_not(None),
            a.state.is_not(None),
            a.occurred_at >= since,
        )
        .order_by(a.occurred_at)
    ).all()
    codes = sorted({r.state.strip().upper() for r in rows})
    if not codes:
        return []
    e = calendar_events.c
    events = {
        row.attendance_code: row
        for row in tx.execute(
            select(calendar_events)
            .where(e.tenant_id == tenant_id, e.attendance_code.in_(codes))
            .order_by(e.id)
        ).all()
    }
    out: list[Attended] = []
    for r in rows:
        event = events.get(r.state.strip().upper())
        if event is None:
            continue
        candidates = _occurrences_of(
            event, r.occurred_at - timedelta(days=2), r.occurred_at + timedelta(days=1)
        )
        try:
            at = occurrence_open_at(
                candidates, now=r.occurred_at, duration_minutes=event.duration_minutes
            )
        except Conflict:
            continue
        out.append(
            attend_in(
                tx,
                tenant_id=tenant_id,
                event_id=event.id,
                member_id=r.member_id,
                code=None,
                via="activity",
                now=now,
                occurrence_at=at,
            )
        )
    return out


def queue_reminders_in(
    tx: Connection, *, tenant_id: str, now: datetime, horizon: timedelta = timedelta(days=1)
) -> int:
    """Reminders through the outbox for confirmed seats of occurrences whose reminder time
    has come (each once, by its dedupe key)."""
    r, e = event_rsvps.c, calendar_events.c
    rows = tx.execute(
        select(
            r.event_id,
            r.occurrence_at,
            r.member_id,
            e.title,
            e.remind_minutes,
            e.staff_account_id,
            e.group_id,
        )
        .join(calendar_events, and_(e.tenant_id == r.tenant_id, e.id == r.event_id))
        .where(
            r.tenant_id == tenant_id,
            r.status == RsvpStatus.CONFIRMED.value,
            r.occurrence_at > now,
            r.occurrence_at <= now + horizon,
        )
        .order_by(r.event_id, r.occurrence_at, r.member_id)
    ).all()
    due = [x for x in rows if x.occurrence_at - timedelta(minutes=x.remind_minutes) <= now]
    text = _texts(tx, tenant_id, "reminder")
    queued = enqueue_messages(
        tx,
        tenant_id=tenant_id,
        at=now,
        messages=[
            Message(
                dedupe_key=f"reminder:{x.event_id}:{_stamp(x.occurrence_at)}:{x.member_id}",
                kind="event_reminder",
                body=text(x.title, x.occurrence_at),
                staff_account_id=x.staff_account_id,
                member_id=x.member_id,
                group_id=x.group_id,
                due_at=x.occurrence_at,
                payload={"event_id": x.event_id, "occurrence_at": x.occurrence_at.isoformat()},
            )
            for x in due
        ],
    )
    return len(queued)


def queue_no_show_follow_ups_in(
    tx: Connection, *, tenant_id: str, now: datetime, lookback: timedelta = timedelta(days=3)
) -> int:
    """A follow-up task for each member who held a seat at an occurrence that ended in the
    lookback and did not attend."""
    r, e, a = event_rsvps.c, calendar_events.c, event_attendance.c
    rows = tx.execute(
        select(
            r.event_id,
            r.occurrence_at,
            r.member_id,
            e.title,
            e.duration_minutes,
            e.staff_account_id,
            e.group_id,
            a.member_id.label("came"),
        )
        .join(calendar_events, and_(e.tenant_id == r.tenant_id, e.id == r.event_id))
        .outerjoin(
            event_attendance,
            and_(
                a.tenant_id == r.tenant_id,
                a.event_id == r.event_id,
                a.occurrence_at == r.occurrence_at,
                a.member_id == r.member_id,
            ),
        )
        .where(
            r.tenant_id == tenant_id,
            r.status == RsvpStatus.CONFIRMED.value,
            r.occurrence_at >= now - lookback,
            r.occurrence_at <= now,
        )
        .order_by(r.event_id, r.occurrence_at, r.member_id)
    ).all()
    missed = [
        x
        for x in rows
        if no_show(
            True,
            x.came is not None,
            x.occurrence_at + timedelta(minutes=x.duration_minutes) <= now,
        )
    ]
    text = _texts(tx, tenant_id, "no_show")
    queued = enqueue_messages(
        tx,
        tenant_id=tenant_id,
        at=now,
        messages=[
            Message(
                dedupe_key=f"no-show:{x.event_id}:{_stamp(x.occurrence_at)}:{x.member_id}",
                kind="no_show_follow_up",
                body=text(x.title, x.occurrence_at),
                staff_account_id=x.staff_account_id,
                member_id=x.member_id,
                group_id=x.group_id,
                payload={"event_id": x.event_id, "occurrence_at": x.occurrence_at.isoformat()},
            )
            for x in missed
        ],
    )
    return len(queued)


def attended_view(item: Attended, points_earned: int) -> dict[str, Any]:
    return {
        "event_id": item.event_id,
        "occurrence_at": item.occurrence_at,
        "member_id": item.member_id,
        "via": item.via,
        "attended_at": item.attended_at,
        "replayed": not item.new,
        "points_earned": points_earned,
    }


def queue_event_messages(ctx: Ctx) -> dict[str, int]:
    """Reminders whose time has come and no-show follow-ups of ended occurrences, queued in
    one transaction (each message once)."""
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        reminders = queue_reminders_in(tx, tenant_id=ctx.tenant_id, now=now)
        follow_ups = queue_no_show_follow_ups_in(tx, tenant_id=ctx.tenant_id, now=now)
    return {"reminders": reminders, "no_show_follow_ups": follow_ups}
