"""Members: search and filters, the member 360, a new member, tags, rebinding with a reason,
and the member's portal password."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shequn.community.path.service import member_growth_view
from shequn.community.rituals.badges import member_badges
from shequn.console.rules import Capability
from shequn.console.service import set_portal_password
from shequn.context import Ctx
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
from shequn.errors import DomainError, InvalidInput, NotFound
from shequn.flows.registration import create_member
from shequn.flows.tiers_evaluation import evaluate_member, tier_history
from shequn.growth.points.service import member_points
from shequn.i18n import translate
from shequn.insights.console_community import member_certificates, member_groups
from shequn.insights.console_gatherings import member_attended, member_complaints
from shequn.insights.console_members import (
    FILTERS,
    member_360,
    member_filters,
    require_visible,
    search_members,
)
from shequn.members.service import list_members, update_member
from shequn.referrals.binding import rebind_member

router = APIRouter(include_in_schema=False)


def _viewer(who: Console) -> str | None:
    """The login a staff-account operator's staff accounts name (None: sees every member)."""
    return who.session.login if who.scoped else None


@router.get("/console/members")
@page
async def members_page(request: Request) -> Response:
    who = await console_for(request, Capability.MEMBERS)
    params = {k: request.query_params.get(k, "") for k in ("q", "tag", "tier", "show", "after")}
    form = Form(params)
    try:
        found = await who.run(
            search_members,
            q=params["q"] or None,
            tag=params["tag"] or None,
            tier_id=params["tier"] or None,
            show=params["show"] or None,
            after=params["after"] or None,
            viewer=_viewer(who),
        )
    except InvalidInput as exc:
        form.refuse(exc, fields={"after": "q"})
        found = {"items": [], "next_after": None, **(await who.run(member_filters))}
    return render(
        who,
        "console/members.html",
        form=form,
        found=found,
        params=params,
        filters=FILTERS,
        filtered=any(params[k] for k in ("q", "tag", "tier", "show")),
    )


def resolve_member(ctx: Ctx, text: str) -> str:
    """A member named by id or phone."""
    if text.startswith("mem_"):
        return text
    found = list_members(ctx, phone=text, limit=1)["items"]
    if not found:
        raise NotFound("member_not_found", id=text)
    return str(found[0]["id"])


async def _member_page(
    who: Console, member_id: str, *, form: Form | None = None, status: int = 200, focus: str = ""
) -> Response:
    data = await who.run(member_360, member_id=member_id, viewer=_viewer(who))
    data["groups"] = await who.run(member_groups, member_id=member_id)
    data["badges"] = (await who.run(member_badges, member_id=member_id))["items"]
    data["certificates"] = await who.run(member_certificates, member_id=member_id)
    data["tier_changes"] = (await who.run(tier_history, member_id=member_id, limit=20))["items"]
    data["points"] = await who.run(member_points, member_id=member_id)
    data["growth"] = await who.run(member_growth_view, member_id=member_id)
    data["attended"] = await who.run(member_attended, member_id=member_id, limit=10)
    data["complaints"] = await who.run(member_complaints, member_id=member_id)
    member = data["member"]
    if form is None:
        form = Form({"tags": ", ".join(member["tags"])})
    return render(who, "console/member.html", form=form, status=status, focus=focus, **data)


@router.get("/console/members/new")
@page
async def new_member_page(request: Request) -> Response:
    who = await console_for(request, Capability.OPERATE)
    return render(who, "console/member_new.html", form=Form())


@router.post("/console/members/new")
@page
async def new_member(request: Request) -> Response:
    who = await console_for(request, Capability.OPERATE)
    form = await submitted(who)
    name = form.text("name", required=True, max_length=80)
    phone = form.text("phone", max_length=32)
    referrer = form.text("referrer", max_length=64)
    tags = [t.strip() for t in form.get("tags").replace("，", ",").split(",") if t.strip()]
    if not form.ok or name is None:
        return render(who, "console/member_new.html", form=form, status=422)

    def register(ctx: Ctx) -> dict[str, Any]:
        referrer_id = resolve_member(ctx, referrer) if referrer else None
        return create_member(
            ctx, name=name, phone=phone, referrer_id=referrer_id, source="staff", tags=tags
        )

    try:
        created = await who.run(register)
    except DomainError as exc:
        form.refuse(exc, fields={"id": "referrer", "referrer_id": "referrer"})
        if exc.code == "member_not_found":
            form.errors.pop("_form", None)
            form.fail("referrer", "console.members.referrer_unknown")
        return render(who, "console/member_new.html", form=form, status=exc.status)
    return redirect(
        who,
        f"/console/members/{created['id']}",
        flash=translate("console.members.created", name=created["name"]),
    )


@router.get("/console/members/{member_id}")
@page
async def member_page(request: Request, member_id: str) -> Response:
    who = await console_for(request, Capability.MEMBERS)
    return await _member_page(who, member_id)


@router.post("/console/members/{member_id}/tags")
@page
async def member_tags(request: Request, member_id: str) -> Response:
    who = await console_for(request, Capability.TAG)
    await who.run(require_visible, member_id=member_id, viewer=_viewer(who))
    form = await submitted(who)
    raw = form.get("tags").replace("，", ",")
    tags = [t.strip() for t in raw.split(",") if t.strip()]
    try:
        await who.run(update_member, member_id=member_id, tags=tags)
    except DomainError as exc:
        form.refuse(exc, fields={"tag": "tags"})
        if "_form" in form.errors:
            form.errors["tags"] = form.errors.pop("_form")
        return await _member_page(who, member_id, form=form, status=exc.status, focus="tags")
    return redirect(
        who, f"/console/members/{member_id}", flash=translate("console.members.tags_saved")
    )


@router.post("/console/members/{member_id}/rebind")
@page
async def member_rebind(request: Request, member_id: str) -> Response:
    who = await console_for(request, Capability.ADMINISTER)
    form = await submitted(who)
    referrer = form.text("referrer", max_length=64)
    reason = form.text("reason", required=True, max_length=500)
    if not form.ok or reason is None:
        return await _member_page(who, member_id, form=form, status=422, focus="rebind")

    def rebind(ctx: Ctx) -> None:
        target = resolve_member(ctx, referrer) if referrer else None
        rebind_member(ctx, member_id=member_id, referrer_id=target, reason=reason)

    try:
        await who.run(rebind)
    except DomainError as exc:
        form.refuse(exc, fields={"referrer_id": "referrer", "id": "referrer"})
        if "_form" in form.errors:
            form.errors["referrer"] = form.errors.pop("_form")
        return await _member_page(who, member_id, form=form, status=exc.status, focus="rebind")
    return redirect(
        who, f"/console/members/{member_id}", flash=translate("console.members.rebound")
    )


@router.post("/console/members/{member_id}/evaluate")
@page
async def member_evaluate(request: Request, member_id: str) -> Response:
    """Evaluate the member against the tiers' criteria now."""
    who = await console_for(request, Capability.OPERATE)
    await who.run(require_visible, member_id=member_id, viewer=_viewer(who))
    await submitted(who)
    done = await who.run(evaluate_member, member_id=member_id)
    changed = bool(done.get("changed"))
    return redirect(
        who,
        f"/console/members/{member_id}",
        flash=translate(
            "console.members.evaluated_changed" if changed else "console.members.evaluated"
        ),
    )


@router.post("/console/members/{member_id}/portal-password")
@page
async def member_portal_password(request: Request, member_id: str) -> Response:
    who = await console_for(request, Capability.OPERATE)
    form = await submitted(who)
    password = form.raw("portal_password", required=True, max_length=200)
    if not form.ok or password is None:
        return await _member_page(who, member_id, form=form, status=422, focus="portal")
    try:
        await who.run(set_portal_password, member_id=member_id, password=password)
    except DomainError as exc:
        form.refuse(exc, fields={"password": "portal_password"})
        return await _member_page(who, member_id, form=form, status=exc.status, focus="portal")
    return redirect(
        who, f"/console/members/{member_id}", flash=translate("console.members.portal_password_set")
    )


AREA = Area(
    name="members",
    router=router,
    console_nav=(NavItem("console.nav.members", "/console/members", Capability.MEMBERS),),
)
