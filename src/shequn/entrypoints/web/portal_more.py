"""The portal's "me" pages: the daily check-in and its streak, points and what they redeem,
coupons (and claiming one by its code), badges and certificates, communities and groups
(an agent's stock is in `portal_stock`)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shequn.community.gatherings.service import event_occurrences, rsvp
from shequn.community.path.service import member_growth_view
from shequn.community.rituals.badges import member_badges
from shequn.entrypoints.web.forms import Form
from shequn.entrypoints.web.kit import (
    Area,
    NavItem,
    Portal,
    page,
    portal_for,
    redirect,
    render,
    submitted,
)
from shequn.errors import DomainError, NotFound
from shequn.flows.community_rewards import check_in, record_attendance
from shequn.growth.coupons.service import claim_coupon, member_coupons
from shequn.growth.points.service import list_redemption_items, member_points, redeem
from shequn.i18n import translate
from shequn.insights.console_community import member_certificates, member_groups
from shequn.insights.console_gatherings import (
    get_event,
    list_events,
    list_programs,
    member_attended,
    member_programs,
    member_rsvps,
)
from shequn.insights.console_programs import member_courses_and_teams

router = APIRouter(include_in_schema=False)

UPCOMING_DAYS = 14


async def _me_page(who: Portal, *, form: Form | None = None, status: int = 200) -> Response:
    me = who.session.member_id
    points = await who.run(member_points, member_id=me)
    groups = await who.run(member_groups, member_id=me)
    mine = await who.run(member_programs, member_id=me)
    today = who.state.clock.now().astimezone(ZoneInfo(who.session.time_zone)).date()
    every = await who.run(list_programs)
    running = [p for p in every if _running(p, today)]
    started = {p["id"] for p in every if date.fromisoformat(p["starts_on"]) <= today}
    growth = await who.run(member_growth_view, member_id=me)
    taking = await who.run(member_courses_and_teams, member_id=me)
    return render(
        who,
        "portal/me.html",
        form=form or Form(),
        status=status,
        points=points,
        groups=groups,
        programs=[{**p, "mine": mine.get(p["id"])} for p in running],
        growth=growth,
        courses=[c for c in taking["courses"] if c["id"] in started],
        teams=taking["teams"],
    )


def _running(program: dict[str, Any], today: date) -> bool:
    """Whether a challenge takes check-ins today (a course's lessons are marked done one by
    one, and a competition is scored by rounds)."""
    first = date.fromisoformat(program["starts_on"])
    if program["kind"] != "challenge" or today < first:
        return False
    return today < first + timedelta(days=program["window_days"])


@router.get("/portal/me")
@page
async def portal_me(request: Request) -> Response:
    who = await portal_for(request)
    return await _me_page(who)


@router.post("/portal/programs/{program_id}/checkin")
@page
async def portal_check_in(request: Request, program_id: str) -> Response:
    """Today's check-in of a program (a second one the same day changes nothing)."""
    who = await portal_for(request)
    form = await submitted(who)
    try:
        done = await who.run(
            check_in,
            server_key=who.state.settings.secret_key,
            program_id=program_id,
            member_id=who.session.member_id,
        )
    except DomainError as exc:
        if exc.status == 404:
            raise
        form.refuse(exc)
        return await _me_page(who, form=form, status=exc.status)
    key = "portal.checkin.completed" if done["completed"] else "portal.checkin.done"
    return redirect(who, "/portal/me", flash=translate(key, days=done["streak"]))


@router.post("/portal/programs/{program_id}/lessons/{lesson}")
@page
async def portal_lesson_done(request: Request, program_id: str, lesson: str) -> Response:
    """A lesson of a course the member has done (done again: nothing changes)."""
    who = await portal_for(request)
    form = await submitted(who)
    if not lesson.isdigit() or len(lesson) > 3:
        raise NotFound("lesson_not_found", lesson=lesson[:8])
    try:
        done = await who.run(
            check_in,
            server_key=who.state.settings.secret_key,
            program_id=program_id,
            member_id=who.session.member_id,
            kind="lesson",
            day=int(lesson),
        )
    except DomainError as exc:
        if exc.status == 404:
            raise
        form.refuse(exc)
        return await _me_page(who, form=form, status=exc.status)
    key = "portal.course.completed" if done["completed"] else "portal.course.done"
    return redirect(who, "/portal/me", flash=translate(key, done=done["covered_days"]))


# --- events ----------------------------------------------------------------------------------


async def _events_page(who: Portal, *, form: Form | None = None, status: int = 200) -> Response:
    me = who.session.member_id
    now = who.state.clock.now()
    events = (await who.run(list_events))["items"]
    answers = await who.run(member_rsvps, member_id=me, since=now - timedelta(hours=2))
    upcoming = []
    for event in events:
        shown = await who.run(
            event_occurrences,
            event_id=event["id"],
            start=now - timedelta(hours=2),
            end=now + timedelta(days=UPCOMING_DAYS),
        )
        for o in shown["items"][:3]:
            upcoming.append(
                {**o, "event": event, "mine": answers.get((event["id"], o["starts_at"]))}
            )
    upcoming.sort(key=lambda o: o["starts_at"])
    attended = await who.run(member_attended, member_id=me)
    return render(
        who,
        "portal/events.html",
        form=form or Form(),
        status=status,
        upcoming=upcoming,
        attended=attended,
    )


@router.get("/portal/events")
@page
async def portal_events(request: Request) -> Response:
    who = await portal_for(request)
    return await _events_page(who)


@router.post("/portal/events/{event_id}/{action}")
@page
async def portal_event_action(request: Request, event_id: str, action: str) -> Response:
    """Take a seat at an occurrence (`rsvp`), give it back (`cancel`), or say one is attended
    with the code shown there (`attend`)."""
    who = await portal_for(request)
    if action not in ("rsvp", "cancel", "attend"):
        raise NotFound("calendar_event_not_found", id=event_id)
    await who.run(get_event, event_id=event_id)
    form = await submitted(who)
    me = who.session.member_id
    try:
        if action == "attend":
            code = form.text("code", required=True, max_length=12)
            if not form.ok or code is None:
                return await _events_page(who, form=form, status=422)
            await who.run(record_attendance, event_id=event_id, member_id=me, code=code)
            return redirect(who, "/portal/events", flash=translate("portal.events.attended"))
        at = datetime.fromisoformat(form.get("at"))
        answered, _ = await who.run(
            rsvp, event_id=event_id, member_id=me, occurrence_at=at, cancel=action == "cancel"
        )
    except ValueError:
        form.fail("_form", "console.events.when_invalid")
        return await _events_page(who, form=form, status=422)
    except DomainError as exc:
        if exc.status == 404:
            raise
        form.refuse(exc, fields={"code": "code"})
        if action == "attend" and "_form" in form.errors:
            form.errors["code"] = form.errors.pop("_form")
        return await _events_page(who, form=form, status=exc.status)
    key = {"confirmed": "portal.events.seated", "waitlisted": "portal.events.waitlisted"}.get(
        answered["status"], "portal.events.cancelled"
    )
    return redirect(
        who,
        "/portal/events",
        flash=translate(key, position=answered.get("waitlist_position") or ""),
    )


async def _points_page(who: Portal, *, form: Form | None = None, status: int = 200) -> Response:
    me = who.session.member_id
    points = await who.run(member_points, member_id=me)
    items = [i for i in await who.run(list_redemption_items) if i["active"]]
    return render(
        who,
        "portal/points.html",
        form=form or Form(),
        status=status,
        points=points,
        items=items,
    )


@router.get("/portal/points")
@page
async def portal_points(request: Request) -> Response:
    who = await portal_for(request)
    return await _points_page(who)


@router.post("/portal/points/redeem")
@page
async def portal_redeem(request: Request) -> Response:
    who = await portal_for(request)
    form = await submitted(who)
    items = {i["id"]: i for i in await who.run(list_redemption_items) if i["active"]}
    item_id = form.choice("item", list(items))
    if "item" in form.errors:
        # The item is chosen by its button: a refusal belongs to the whole form.
        form.errors["_form"] = form.errors.pop("item")
    if not form.ok or item_id is None:
        return await _points_page(who, form=form, status=422)
    try:
        await who.run(
            redeem,
            member_id=who.session.member_id,
            item_id=item_id,
            quantity=1,
            idempotency_key=form.get("key")[:64] or None,
        )
    except DomainError as exc:
        form.refuse(exc)
        return await _points_page(who, form=form, status=exc.status)
    return redirect(
        who,
        "/portal/points",
        flash=translate("portal.points.redeemed", name=items[item_id]["name"]),
    )


async def _coupons_page(who: Portal, *, form: Form | None = None, status: int = 200) -> Response:
    coupons = await who.run(member_coupons, member_id=who.session.member_id)
    return render(who, "portal/coupons.html", form=form or Form(), status=status, coupons=coupons)


@router.get("/portal/coupons")
@page
async def portal_coupons(request: Request) -> Response:
    who = await portal_for(request)
    return await _coupons_page(who)


@router.post("/portal/coupons/claim")
@page
async def portal_claim(request: Request) -> Response:
    who = await portal_for(request)
    form = await submitted(who)
    code = form.text("code", required=True, max_length=32)
    if not form.ok or code is None:
        return await _coupons_page(who, form=form, status=422)
    try:
        claimed: dict[str, Any] = await who.run(
            claim_coupon, member_id=who.session.member_id, code=code
        )
    except DomainError as exc:
        form.refuse(exc, fields={"claim_code": "code"})
        if "_form" in form.errors:
            form.errors["code"] = form.errors.pop("_form")
        return await _coupons_page(who, form=form, status=exc.status)
    return redirect(
        who, "/portal/coupons", flash=translate("portal.coupons.claimed", name=claimed["name"])
    )


@router.get("/portal/badges")
@page
async def portal_badges(request: Request) -> Response:
    who = await portal_for(request)
    me = who.session.member_id
    badges = await who.run(member_badges, member_id=me)
    certificates = await who.run(member_certificates, member_id=me)
    return render(who, "portal/badges.html", badges=badges, certificates=certificates)


AREA = Area(
    name="portal-more",
    router=router,
    portal_nav=(
        NavItem("portal.nav.events", "/portal/events"),
        NavItem("portal.nav.me", "/portal/me"),
    ),
)
