"""What a community does in the console: events (a class, a meetup) with their occurrences,
RSVPs and attendance; programs (a 21-day challenge) with their streaks and ranking;
leaderboards; complaints and the crisis board of open alerts."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shequn.community.complaints.service import (
    create_complaint,
    get_complaint,
    resolve_complaint,
)
from shequn.community.founding import list_communities
from shequn.community.gatherings.rules import EventKind
from shequn.community.gatherings.service import create_event, event_occurrences, rsvp
from shequn.community.health.service import list_alerts
from shequn.community.leaders.rules import BoardKind, Period
from shequn.community.leaders.service import (
    feature_role_model,
    leaderboard,
    list_role_models,
)
from shequn.community.path.service import set_stages
from shequn.community.programs.rules import ProgramKind, StreakMode
from shequn.community.programs.service import create_program
from shequn.console.rules import Capability
from shequn.context import Ctx
from shequn.entrypoints.web.console_members import resolve_member
from shequn.entrypoints.web.console_programs import lesson_lines
from shequn.entrypoints.web.forms import Form
from shequn.entrypoints.web.kit import (
    Area,
    Console,
    NavItem,
    console_for,
    page,
    redirect,
    render,
    submitted,
)
from shequn.errors import DomainError, InvalidInput
from shequn.flows.community_rewards import record_attendance
from shequn.i18n import translate
from shequn.insights.console_gatherings import (
    COMPLAINT_STATUSES,
    get_event,
    growth_path,
    list_complaints,
    list_events,
    list_programs,
    occurrence_people,
)

router = APIRouter(include_in_schema=False)

EVENT_KINDS = tuple(k.value for k in EventKind)
REPEATS = {"once": "FREQ=DAILY;COUNT=1", "daily": "FREQ=DAILY", "weekly": "FREQ=WEEKLY"}
PROGRAM_KINDS = tuple(k.value for k in ProgramKind)
STREAK_MODES = tuple(m.value for m in StreakMode)
BOARDS = tuple(b.value for b in BoardKind)
PERIODS = tuple(p.value for p in Period)
SHOWN_DAYS = 30


def _viewer(who: Console) -> str | None:
    """The login whose staff accounts' members a staff-account operator sees (None: all)."""
    return who.session.login if who.scoped else None


async def _communities(who: Console) -> list[dict[str, Any]]:
    return list((await who.run(list_communities, limit=200))["items"])


def _local(zone: str, day: str, at: str) -> datetime | None:
    """A local date and time of day as a moment (None: not a date and a time)."""
    try:
        moment = datetime.combine(date.fromisoformat(day), time.fromisoformat(at))
    except ValueError:
        return None
    return moment.replace(tzinfo=ZoneInfo(zone))


def _moment(text: str) -> datetime:
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput("occurrence_unknown", at=text[:40]) from None
    if found.tzinfo is None:
        raise InvalidInput("occurrence_unknown", at=text[:40])
    return found


# --- events ----------------------------------------------------------------------------------


async def _events_view(who: Console, *, form: Form | None = None, status: int = 200) -> Response:
    after = who.request.query_params.get("after") or None
    try:
        found = await who.run(list_events, after=after)
    except InvalidInput:
        found = await who.run(list_events)
    return render(
        who,
        "console/events.html",
        form=form or Form({"kind": "class", "repeat": "weekly", "time": "20:00", "duration": "60"}),
        status=status,
        found=found,
        communities=await _communities(who),
        event_kinds=EVENT_KINDS,
        repeats=tuple(REPEATS),
        params={"after": after or ""},
    )


@router.get("/console/events")
@page
async def events_page(request: Request) -> Response:
    who = await console_for(request, Capability.MEMBERS)
    return await _events_view(who)


@router.post("/console/events")
@page
async def new_event(request: Request) -> Response:
    who = await console_for(request, Capability.OPERATE)
    form = await submitted(who)
    title = form.text("title", required=True, max_length=120)
    kind = form.choice("kind", EVENT_KINDS)
    repeat = form.choice("repeat", tuple(REPEATS))
    day = form.text("day", required=True, max_length=10)
    at = form.text("time", required=True, max_length=5)
    duration = form.integer("duration", low=1, high=24 * 60, required=True)
    capacity = form.integer("capacity", low=1, high=100_000)
    points = form.integer("points", low=0, high=100_000) or 0
    community = form.text("community", max_length=40)
    starts = _local(who.session.time_zone, day, at) if day and at else None
    if day and at and starts is None:
        form.fail("day", "console.events.when_invalid")
    if not form.ok or title is None or kind is None or repeat is None or starts is None:
        return await _events_view(who, form=form, status=422)
    try:
        created = await who.run(
            create_event,
            title=title,
            kind=kind,
            rrule=REPEATS[repeat],
            starts_at=starts,
            duration_minutes=duration or 60,
            capacity=capacity,
            points=points,
            community_id=community,
        )
    except DomainError as exc:
        form.refuse(
            exc,
            fields={
                "starts_at": "day",
                "community_id": "community",
                "duration_minutes": "duration",
            },
        )
        return await _events_view(who, form=form, status=exc.status)
    return redirect(
        who,
        f"/console/events/{created['id']}",
        flash=translate("console.events.created", title=title),
    )


async def _event_view(
    who: Console, event_id: str, *, form: Form | None = None, status: int = 200
) -> Response:
    event = await who.run(get_event, event_id=event_id)
    now = who.state.clock.now()
    shown = await who.run(
        event_occurrences,
        event_id=event_id,
        start=now - timedelta(days=7),
        end=now + timedelta(days=SHOWN_DAYS),
    )
    chosen_text = who.request.query_params.get("at") or (form.get("at") if form else "")
    occurrences = shown["items"]
    chosen = None
    if chosen_text:
        try:
            wanted = _moment(chosen_text)
        except InvalidInput:
            wanted = None
        chosen = next((o for o in occurrences if o["starts_at"] == wanted), None)
    if chosen is None:
        chosen = next((o for o in occurrences if o["ends_at"] >= now), None) or (
            occurrences[-1] if occurrences else None
        )
    people = (
        await who.run(
            occurrence_people,
            event_id=event_id,
            occurrence_at=chosen["starts_at"],
            viewer=_viewer(who),
        )
        if chosen
        else {"rsvps": [], "attended": []}
    )
    return render(
        who,
        "console/event.html",
        form=form or Form(),
        status=status,
        event=event,
        occurrences=occurrences,
        chosen=chosen,
        people=people,
    )


@router.get("/console/events/{event_id}")
@page
async def event_page(request: Request, event_id: str) -> Response:
    who = await console_for(request, Capability.MEMBERS)
    return await _event_view(who, event_id)


@router.post("/console/events/{event_id}/{action}")
@page
async def event_action(request: Request, event_id: str, action: str) -> Response:
    """A member's seat at an occurrence (`rsvp`), given back (`cancel`), or their attendance
    recorded by staff (`attend`)."""
    who = await console_for(request, Capability.OPERATE)
    if action not in ("rsvp", "cancel", "attend"):
        raise InvalidInput("task_action_unknown", action=action)
    await who.run(get_event, event_id=event_id)
    form = await submitted(who)
    member = form.text("member", required=True, max_length=64)
    at_text = form.text("at", required=True, max_length=40)
    if not form.ok or member is None or at_text is None:
        return await _event_view(who, event_id, form=form, status=422)

    def act(ctx: Ctx) -> dict[str, Any]:
        member_id = resolve_member(ctx, member)
        at = _moment(at_text)
        if action == "attend":
            return record_attendance(ctx, event_id=event_id, member_id=member_id, occurrence_at=at)
        answered, _ = rsvp(
            ctx, event_id=event_id, member_id=member_id, occurrence_at=at, cancel=action == "cancel"
        )
        return answered

    try:
        done = await who.run(act)
    except DomainError as exc:
        form.refuse(exc, fields={"member_id": "member", "id": "member", "occurrence_at": "member"})
        if exc.code == "member_not_found":
            form.errors.pop("_form", None)
            form.fail("member", "console.community.member_unknown")
        if "_form" in form.errors:
            form.errors["member"] = form.errors.pop("_form")
        return await _event_view(who, event_id, form=form, status=exc.status)
    key = f"console.events.done.{action}"
    if action != "attend" and done.get("status") == "waitlisted":
        key = "console.events.done.waitlisted"
    return redirect(
        who,
        f"/console/events/{event_id}?at={at_text.replace('+', '%2B')}",
        flash=translate(key, position=done.get("waitlist_position") or ""),
    )


# --- programs --------------------------------------------------------------------------------


async def _programs_view(who: Console, *, form: Form | None = None, status: int = 200) -> Response:
    today = who.state.clock.now().astimezone(ZoneInfo(who.session.time_zone)).date()
    return render(
        who,
        "console/programs.html",
        form=form
        or Form(
            {
                "kind": "challenge",
                "days": "21",
                "mode": "consecutive",
                "starts_on": today.isoformat(),
            }
        ),
        status=status,
        programs=await who.run(list_programs),
        communities=await _communities(who),
        modes=STREAK_MODES,
        kinds=PROGRAM_KINDS,
    )


@router.get("/console/programs")
@page
async def programs_page(request: Request) -> Response:
    who = await console_for(request, Capability.MEMBERS)
    return await _programs_view(who)


@router.post("/console/programs")
@page
async def new_program(request: Request) -> Response:
    who = await console_for(request, Capability.OPERATE)
    form = await submitted(who)
    title = form.text("title", required=True, max_length=120)
    kind = form.choice("kind", PROGRAM_KINDS, required=False) or ProgramKind.CHALLENGE.value
    lessons: list[str] = []
    try:
        lessons = lesson_lines(form.get("lessons"))
    except DomainError as exc:
        form.refuse(exc)
    if kind == ProgramKind.COURSE.value and not lessons and "lessons" not in form.errors:
        form.fail("lessons", "console.course.lessons_required")
    if kind == ProgramKind.COURSE.value and not form.get("days").strip():
        form.values["days"] = str(max(1, len(lessons)))
    days = form.integer("days", low=1, high=366, required=True)
    window = form.integer("window_days", low=1, high=366)
    mode = form.choice("mode", STREAK_MODES)
    makeups = form.integer("makeup_limit", low=0, high=30) or 0
    starts = form.text("starts_on", required=True, max_length=10)
    certificate = form.text("certificate_title", max_length=80)
    community = form.text("community", max_length=40)
    starts_on = None
    if starts:
        try:
            starts_on = date.fromisoformat(starts)
        except ValueError:
            form.fail("starts_on", "console.events.when_invalid")
    if not form.ok or title is None or days is None or mode is None or starts_on is None:
        return await _programs_view(who, form=form, status=422)
    try:
        await who.run(
            create_program,
            title=title,
            kind=kind,
            lessons=lessons,
            days=days,
            window_days=window,
            mode=mode,
            makeup_limit=makeups,
            starts_on=starts_on,
            certificate_title=certificate,
            community_id=community,
        )
    except DomainError as exc:
        form.refuse(exc, fields={"community_id": "community"})
        return await _programs_view(who, form=form, status=exc.status)
    return redirect(
        who, "/console/programs", flash=translate("console.programs.created", title=title)
    )


# --- leaderboards ----------------------------------------------------------------------------


async def _role_models(who: Console) -> list[dict[str, Any]]:
    return list(await who.run(list_role_models))


@router.post("/console/role-models")
@page
async def new_role_model(request: Request) -> Response:
    """Feature a member as a role model (榜样) with the story others can follow."""
    who = await console_for(request, Capability.OPERATE)
    form = await submitted(who)
    member = form.text("member", required=True, max_length=64)
    title = form.text("model_title", required=True, max_length=80)
    story = form.raw("story", max_length=2000) or ""
    if not form.ok or member is None or title is None:
        return await _boards_view(who, form=form, status=422)

    def feature(ctx: Ctx) -> dict[str, Any]:
        return feature_role_model(
            ctx, member_id=resolve_member(ctx, member), title=title, story=story
        )

    try:
        await who.run(feature)
    except DomainError as exc:
        form.refuse(exc, fields={"member_id": "member", "title": "model_title"})
        if exc.code == "member_not_found":
            form.errors.pop("_form", None)
            form.fail("member", "console.community.member_unknown")
        return await _boards_view(who, form=form, status=exc.status)
    return redirect(who, "/console/leaderboards", flash=translate("console.boards.featured"))


@router.get("/console/leaderboards")
@page
async def leaderboards_page(request: Request) -> Response:
    who = await console_for(request, Capability.VIEW)
    return await _boards_view(who)


async def _boards_view(who: Console, *, form: Form | None = None, status: int = 200) -> Response:
    query = who.request.query_params
    kind = query.get("kind") if query.get("kind") in BOARDS else "sales"
    period = query.get("period") if query.get("period") in PERIODS else "30d"
    community = query.get("community") or None
    chosen = Form({"kind": kind, "period": period, "community": community or ""})
    try:
        board = await who.run(leaderboard, kind=kind, period=period, community_id=community)
    except DomainError as exc:
        chosen.refuse(exc, fields={"community_id": "community"})
        board = await who.run(leaderboard, kind=kind, period=period)
    return render(
        who,
        "console/leaderboards.html",
        chosen=chosen,
        form=form or Form(),
        status=status,
        role_models=await _role_models(who),
        board=board,
        boards=BOARDS,
        periods=PERIODS,
        communities=await _communities(who),
    )


# --- the growth path ------------------------------------------------------------------------

# One stage per line: "name: fact>=value, fact>=value" (a stage without conditions: "name").
_CONDITION = re.compile(r"^\s*([a-z_]+)\s*(>=|>|=)\s*(\d{1,13})\s*$")


def _path_text(stages: list[dict[str, Any]]) -> str:
    lines = []
    for stage in stages:
        conditions = ", ".join(f"{c['fact']}{c['op']}{c['value']}" for c in stage["criteria"])
        lines.append(f"{stage['name']}: {conditions}" if conditions else stage["name"])
    return "\n".join(lines)


def _path_stages(form: Form) -> list[dict[str, Any]] | None:
    stages = []
    for line in (raw for raw in form.get("stages").splitlines() if raw.strip()):
        name, _, rest = line.partition(":")
        criteria = []
        for part in (p for p in rest.split(",") if p.strip()):
            found = _CONDITION.match(part)
            if found is None:
                form.fail("stages", "console.path.line_invalid", line=line.strip()[:40])
                return None
            fact, op, value = found.groups()
            criteria.append({"fact": fact, "op": op, "value": int(value)})
        stages.append({"name": name.strip(), "criteria": criteria})
    if not stages:
        form.fail("stages", "console.form.required")
        return None
    return stages


async def _path_view(who: Console, *, form: Form | None = None, status: int = 200) -> Response:
    stages = await who.run(growth_path)
    return render(
        who,
        "console/path.html",
        form=form or Form({"stages": _path_text(stages)}),
        status=status,
        stages=stages,
    )


@router.get("/console/path")
@page
async def path_page(request: Request) -> Response:
    who = await console_for(request, Capability.VIEW)
    return await _path_view(who)


@router.post("/console/path")
@page
async def path_save(request: Request) -> Response:
    who = await console_for(request, Capability.ADMINISTER)
    form = await submitted(who)
    stages = _path_stages(form)
    if not form.ok or stages is None:
        return await _path_view(who, form=form, status=422)
    try:
        await who.run(set_stages, stages=stages)
    except DomainError as exc:
        form.refuse(exc)
        if "_form" in form.errors:
            form.errors["stages"] = form.errors.pop("_form")
        return await _path_view(who, form=form, status=exc.status)
    return redirect(who, "/console/path", flash=translate("console.path.saved"))


# --- complaints and the crisis board ---------------------------------------------------------


async def _complaints_view(
    who: Console, *, form: Form | None = None, status: int = 200
) -> Response:
    wanted = who.request.query_params.get("status") or "open"
    shown = wanted if wanted in COMPLAINT_STATUSES else "open"
    after = who.request.query_params.get("after") or None
    try:
        found = await who.run(list_complaints, status=shown, after=after, viewer=_viewer(who))
    except InvalidInput:
        found = await who.run(list_complaints, status=shown, viewer=_viewer(who))
    alerts = await who.run(list_alerts, status="open", limit=50)
    return render(
        who,
        "console/complaints.html",
        form=form or Form(),
        status=status,
        found=found,
        shown=shown,
        statuses=COMPLAINT_STATUSES,
        alerts=alerts["items"],
        params={"status": shown, "after": after or ""},
    )


@router.get("/console/complaints")
@page
async def complaints_page(request: Request) -> Response:
    who = await console_for(request, Capability.MEMBERS)
    return await _complaints_view(who)


@router.post("/console/complaints")
@page
async def new_complaint(request: Request) -> Response:
    who = await console_for(request, Capability.TAG)
    form = await submitted(who)
    member = form.text("member", required=True, max_length=64)
    body = form.text("body", required=True, max_length=2000)
    sku = form.text("sku", max_length=64)
    if not form.ok or member is None or body is None:
        return await _complaints_view(who, form=form, status=422)

    def file(ctx: Ctx) -> dict[str, Any]:
        return create_complaint(
            ctx,
            member_id=resolve_member(ctx, member),
            body=body,
            sku=sku,
            owner=who.session.login,
        )

    try:
        await who.run(file)
    except DomainError as exc:
        form.refuse(exc, fields={"member_id": "member"})
        if exc.code == "member_not_found":
            form.errors.pop("_form", None)
            form.fail("member", "console.community.member_unknown")
        return await _complaints_view(who, form=form, status=exc.status)
    return redirect(who, "/console/complaints", flash=translate("console.complaints.created"))


@router.post("/console/complaints/{complaint_id}/resolve")
@page
async def complaint_resolve(request: Request, complaint_id: str) -> Response:
    who = await console_for(request, Capability.TAG)
    await who.run(get_complaint, complaint_id=complaint_id)
    form = await submitted(who)
    field = f"resolution_{complaint_id}"
    resolution = form.text(field, required=True, max_length=1000)
    if not form.ok or resolution is None:
        return await _complaints_view(who, form=form, status=422)
    try:
        await who.run(resolve_complaint, complaint_id=complaint_id, resolution=resolution)
    except DomainError as exc:
        form.refuse(exc, fields={"resolution": field})
        if "_form" in form.errors:
            form.errors[field] = form.errors.pop("_form")
        return await _complaints_view(who, form=form, status=exc.status)
    return redirect(who, "/console/complaints", flash=translate("console.complaints.resolved"))


AREA = Area(
    name="activities",
    router=router,
    console_nav=(
        NavItem("console.nav.events", "/console/events", Capability.MEMBERS),
        NavItem("console.nav.programs", "/console/programs", Capability.MEMBERS),
        NavItem("console.nav.path", "/console/path", Capability.VIEW),
        NavItem("console.nav.leaderboards", "/console/leaderboards", Capability.VIEW),
        NavItem("console.nav.complaints", "/console/complaints", Capability.MEMBERS),
    ),
)
