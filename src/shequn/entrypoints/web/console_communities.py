"""Communities in the console: the list and a new one (人 命 器 仪 领), a community's groups with
their size against their cap, its venues, its chronicle and its join code; members joined and
placed one by one or by tag; a group's page; badges, titles and certificates."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shequn.community.communities.rules import MemberRole, VenueKind, VenueRole
from shequn.community.founding import (
    add_venue,
    create_community,
    get_community,
    list_communities,
    list_venues,
)
from shequn.community.groups.placement import join_community, place_members
from shequn.community.groups.rules import SIZE_CLASSES, Policy
from shequn.community.groups.service import join_code, split_group
from shequn.community.health.service import group_health
from shequn.community.rituals.badges import award_badge, create_badge, list_badges
from shequn.community.rituals.certificates import certificate_pdf, issue_certificate
from shequn.community.rituals.chronicle import add_entry, chronicle
from shequn.community.rituals.rules import BadgeKind, CertificateKind, Trigger
from shequn.community.rituals.welcome import create_template as create_welcome_template
from shequn.community.rituals.welcome import list_templates as list_welcome_templates
from shequn.console.rules import Capability
from shequn.context import Ctx
from shequn.entrypoints.rendering import error_message
from shequn.entrypoints.web.console_members import resolve_member
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
from shequn.i18n import translate
from shequn.insights.console_community import (
    community_groups,
    group_page,
    recent_certificates,
    visible_community_ids,
)
from shequn.members.service import list_members

router = APIRouter(include_in_schema=False)

COMMUNITY_FIELDS = ("name", "target_segment", "mission", "vehicle", "member_title", "symbol")
POLICIES = tuple(p.value for p in Policy)
VENUE_KINDS = tuple(k.value for k in VenueKind)
VENUE_ROLES = tuple(r.value for r in VenueRole)
MEMBER_ROLES = tuple(r.value for r in MemberRole)
BULK_LIMIT = 20_000
TRIGGERS = tuple(t.value for t in Trigger)
# What an automatic badge can count (each member's whole number).
BADGE_FACTS = (
    "check_ins",
    "messages",
    "likes",
    "visits",
    "replies",
    "feedback",
    "paid_order_count",
    "direct_count",
    "team_count",
    "communities",
)


def _viewer(who: Console) -> str | None:
    return who.session.login if who.scoped else None


async def _require_seen(who: Console, community_id: str) -> None:
    """A staff-account operator reaches only the communities with a group they see."""
    seen = await who.run(visible_community_ids, viewer=_viewer(who))
    if seen is not None and community_id not in seen:
        raise NotFound("community_not_found", id=community_id)


@router.get("/console/communities")
@page
async def communities_page(request: Request) -> Response:
    who = await console_for(request, Capability.MEMBERS)
    after = request.query_params.get("after") or None
    form = Form({"after": after or ""})
    try:
        found = await who.run(list_communities, after=after, limit=50)
    except InvalidInput as exc:
        form.refuse(exc)
        found = {"items": [], "next_after": None}
    seen = await who.run(visible_community_ids, viewer=_viewer(who))
    if seen is not None:
        found["items"] = [c for c in found["items"] if c["id"] in seen]
    return render(
        who, "console/communities.html", form=form, found=found, params={"after": after or ""}
    )


def _community_editor(who: Console, form: Form, status: int = 200) -> Response:
    return render(
        who,
        "console/community_new.html",
        form=form,
        status=status,
        size_options=[
            (str(s), translate("console.community.size_option", size=s)) for s in SIZE_CLASSES
        ],
    )


@router.get("/console/communities/new")
@page
async def new_community_page(request: Request) -> Response:
    who = await console_for(request, Capability.OPERATE)
    return _community_editor(who, Form({"size_class": str(SIZE_CLASSES[-1])}))


@router.post("/console/communities/new")
@page
async def new_community(request: Request) -> Response:
    who = await console_for(request, Capability.OPERATE)
    form = await submitted(who)
    values: dict[str, Any] = {"name": form.text("name", required=True, max_length=80)}
    for name, longest in (
        ("target_segment", 200),
        ("mission", 500),
        ("vehicle", 200),
        ("member_title", 40),
        ("symbol", 80),
    ):
        values[name] = form.text(name, max_length=longest) or ""
    size = form.choice("size_class", [str(s) for s in SIZE_CLASSES])
    if not form.ok or size is None:
        return _community_editor(who, form, 422)
    try:
        created = await who.run(create_community, size_class=int(size), **values)
    except DomainError as exc:
        form.refuse(exc)
        return _community_editor(who, form, exc.status)
    return redirect(
        who,
        f"/console/communities/{created['id']}",
        flash=translate("console.community.created", name=created["name"]),
    )


async def _community_view(
    who: Console, community_id: str, *, form: Form | None = None, status: int = 200, focus: str = ""
) -> Response:
    await _require_seen(who, community_id)
    after = who.request.query_params.get("after") or None
    community = await who.run(get_community, community_id=community_id)
    try:
        found = await who.run(
            community_groups, community_id=community_id, viewer=_viewer(who), after=after
        )
    except InvalidInput:
        found = await who.run(community_groups, community_id=community_id, viewer=_viewer(who))
    venues = await who.run(list_venues, community_id=community_id)
    entries = await who.run(chronicle, community_id=community_id)
    welcomes = [
        w
        for w in await who.run(list_welcome_templates)
        if w["community_id"] in (None, community_id)
    ]
    try:
        code = await who.run(join_code, community_id=community_id)
    except DomainError:
        code = None
    return render(
        who,
        "console/community.html",
        form=form
        or Form(
            {"policy": "fill", "role": "member", "kind": "wechat_group", "trigger": "group_joined"}
        ),
        status=status,
        focus=focus,
        community=community,
        found=found,
        params={"after": after or ""},
        venues=venues,
        entries=list(reversed(entries)),
        welcomes=list(reversed(welcomes)),
        triggers=TRIGGERS,
        code=code,
        policies=POLICIES,
        venue_kinds=VENUE_KINDS,
        venue_roles=VENUE_ROLES,
        member_roles=MEMBER_ROLES,
    )


@router.get("/console/communities/{community_id}")
@page
async def community_page(request: Request, community_id: str) -> Response:
    who = await console_for(request, Capability.MEMBERS)
    return await _community_view(who, community_id)


@router.post("/console/communities/{community_id}/join")
@page
async def community_join(request: Request, community_id: str) -> Response:
    """One member joins (by phone or id), or every member with a tag is placed in bulk."""
    who = await console_for(request, Capability.OPERATE)
    await who.run(get_community, community_id=community_id)
    form = await submitted(who)
    member = form.text("member", max_length=64)
    tag = form.text("tag", max_length=40)
    policy = form.choice("policy", POLICIES)
    role = form.choice("role", MEMBER_ROLES)
    region = form.text("region", max_length=40)
    if member is None and tag is None:
        form.fail("member", "console.community.member_or_tag")
    if not form.ok or policy is None or role is None:
        return await _community_view(who, community_id, form=form, status=422, focus="join")
    try:
        if member is not None:

            def join(ctx: Ctx) -> tuple[dict[str, Any], bool]:
                return join_community(
                    ctx,
                    community_id=community_id,
                    member_id=resolve_member(ctx, member),
                    policy=policy,
                    role=role,
                    region=region,
                )

            placed, replayed = await who.run(join)
            group = placed.get("group") or {}
            text = translate(
                "console.community.already" if replayed else "console.community.joined",
                group=group.get("name", ""),
            )
            return redirect(who, f"/console/communities/{community_id}", flash=text)

        def bulk(ctx: Ctx) -> dict[str, Any]:
            found: list[dict[str, Any]] = []
            after = None
            while len(found) < BULK_LIMIT:
                page_ = list_members(ctx, tag=tag, after=after, limit=500)
                found.extend(page_["items"])
                after = page_["next_after"]
                if after is None:
                    break
            if not found:
                raise NotFound("console_tag_has_no_members", tag=tag, field="tag")
            return place_members(
                ctx,
                community_id=community_id,
                entries=[{"member_id": m["id"]} for m in found],
                policy=policy,
            )

        result = await who.run(bulk)
    except DomainError as exc:
        form.refuse(exc, fields={"member_id": "member", "id": "member"})
        if exc.code == "member_not_found":
            form.errors.pop("_form", None)
            form.fail("member", "console.community.member_unknown")
        return await _community_view(who, community_id, form=form, status=exc.status, focus="join")
    return redirect(
        who,
        f"/console/communities/{community_id}",
        flash=translate(
            "console.community.placed",
            placed=result["placed"],
            already=result["already"],
            opened=len(result.get("opened_groups") or []),
        ),
    )


@router.post("/console/communities/{community_id}/venues")
@page
async def community_venue(request: Request, community_id: str) -> Response:
    who = await console_for(request, Capability.OPERATE)
    await who.run(get_community, community_id=community_id)
    form = await submitted(who)
    name = form.text("venue_name", required=True, max_length=80)
    kind = form.choice("kind", VENUE_KINDS)
    role = form.choice("venue_role", VENUE_ROLES)
    limit = form.integer("platform_limit", low=1, high=100_000)
    if not form.ok or name is None or kind is None or role is None:
        return await _community_view(who, community_id, form=form, status=422, focus="venue")
    try:
        await who.run(
            add_venue,
            community_id=community_id,
            name=name,
            kind=kind,
            role=role,
            platform_limit_declared=limit,
            default=form.checked("default"),
        )
    except DomainError as exc:
        form.refuse(
            exc,
            fields={"name": "venue_name", "role": "venue_role", "platform_limit": "platform_limit"},
        )
        return await _community_view(who, community_id, form=form, status=exc.status, focus="venue")
    return redirect(
        who,
        f"/console/communities/{community_id}",
        flash=translate("console.community.venue_added"),
    )


@router.post("/console/communities/{community_id}/chronicle")
@page
async def community_chronicle(request: Request, community_id: str) -> Response:
    who = await console_for(request, Capability.OPERATE)
    await who.run(get_community, community_id=community_id)
    form = await submitted(who)
    title = form.text("title", required=True, max_length=120)
    body = form.text("body", max_length=1000) or ""
    if not form.ok or title is None:
        return await _community_view(who, community_id, form=form, status=422, focus="chronicle")
    try:
        await who.run(add_entry, community_id=community_id, title=title, body=body)
    except DomainError as exc:
        form.refuse(exc)
        return await _community_view(
            who, community_id, form=form, status=exc.status, focus="chronicle"
        )
    return redirect(
        who, f"/console/communities/{community_id}", flash=translate("console.community.written")
    )


@router.post("/console/communities/{community_id}/welcome")
@page
async def community_welcome(request: Request, community_id: str) -> Response:
    """A welcome message (a ritual) sent when a member joins a group or is added by a staff
    account; the community's newest one is used."""
    who = await console_for(request, Capability.OPERATE)
    await who.run(get_community, community_id=community_id)
    form = await submitted(who)
    trigger = form.choice("trigger", TRIGGERS)
    body = form.raw("welcome_body", required=True, max_length=1000)
    if not form.ok or trigger is None or body is None:
        return await _community_view(who, community_id, form=form, status=422, focus="welcome")
    try:
        await who.run(
            create_welcome_template, trigger=trigger, body=body, community_id=community_id
        )
    except DomainError as exc:
        form.refuse(exc, fields={"body": "welcome_body"})
        if "_form" in form.errors:
            form.errors["welcome_body"] = form.errors.pop("_form")
        return await _community_view(
            who, community_id, form=form, status=exc.status, focus="welcome"
        )
    return redirect(
        who,
        f"/console/communities/{community_id}",
        flash=translate("console.community.welcome_saved"),
    )


@router.get("/console/groups/{group_id}")
@page
async def group_view_page(request: Request, group_id: str) -> Response:
    who = await console_for(request, Capability.MEMBERS)
    after = request.query_params.get("after") or None
    try:
        data = await who.run(group_page, group_id=group_id, viewer=_viewer(who), after=after)
    except InvalidInput:
        data = await who.run(group_page, group_id=group_id, viewer=_viewer(who))
    health = await who.run(group_health, group_id=group_id)
    return render(who, "console/group.html", params={"after": after or ""}, health=health, **data)


@router.post("/console/groups/{group_id}/split")
@page
async def group_split(request: Request, group_id: str) -> Response:
    who = await console_for(request, Capability.OPERATE)
    await who.run(group_page, group_id=group_id)
    await submitted(who)
    try:
        result = await who.run(split_group, group_id=group_id)
    except DomainError as exc:
        return redirect(who, f"/console/groups/{group_id}", flash=error_message(exc), kind="error")
    return redirect(
        who,
        f"/console/groups/{group_id}",
        flash=translate("console.group.split_done", count=len(result["parts"])),
    )


# --- badges, titles and certificates ---------------------------------------------------------


async def _badges_view(
    who: Console, *, form: Form | None = None, status: int = 200, focus: str = ""
) -> Response:
    badges = await who.run(list_badges)
    issued = await who.run(recent_certificates)
    return render(
        who,
        "console/badges.html",
        form=form or Form({"kind": "badge", "cert_kind": "honour"}),
        status=status,
        focus=focus,
        badges=badges,
        certificates=issued,
        badge_kinds=tuple(k.value for k in BadgeKind),
        badge_facts=BADGE_FACTS,
        cert_kinds=tuple(k.value for k in CertificateKind),
    )


@router.get("/console/badges")
@page
async def badges_page(request: Request) -> Response:
    who = await console_for(request, Capability.VIEW)
    return await _badges_view(who)


@router.post("/console/badges")
@page
async def new_badge(request: Request) -> Response:
    who = await console_for(request, Capability.OPERATE)
    form = await submitted(who)
    name = form.text("badge_name", required=True, max_length=80)
    description = form.text("description", max_length=500) or ""
    kind = form.choice("kind", [k.value for k in BadgeKind])
    fact = form.choice("fact", BADGE_FACTS, required=False)
    at_least = form.integer("at_least", low=1, high=1_000_000, required=fact is not None)
    if not form.ok or name is None or kind is None:
        return await _badges_view(who, form=form, status=422, focus="badge")
    criteria = (
        {"all": [{"fact": fact, "op": ">=", "value": at_least}]}
        if fact is not None and at_least is not None
        else None
    )
    try:
        await who.run(
            create_badge, name=name, description=description, kind=kind, criteria=criteria
        )
    except DomainError as exc:
        form.refuse(exc, fields={"name": "badge_name"})
        return await _badges_view(who, form=form, status=exc.status, focus="badge")
    return redirect(who, "/console/badges", flash=translate("console.badges.created", name=name))


@router.post("/console/badges/{badge_id}/award")
@page
async def badge_award(request: Request, badge_id: str) -> Response:
    who = await console_for(request, Capability.OPERATE)
    badges = await who.run(list_badges)
    if not any(b["id"] == badge_id for b in badges):
        raise NotFound("badge_not_found", id=badge_id)
    form = await submitted(who)
    field = f"member_{badge_id}"
    member = form.text(field, required=True, max_length=64)
    if not form.ok or member is None:
        return await _badges_view(who, form=form, status=422)

    def award(ctx: Ctx) -> tuple[dict[str, Any], bool]:
        return award_badge(ctx, badge_id=badge_id, member_id=resolve_member(ctx, member))

    try:
        _, replayed = await who.run(award)
    except DomainError as exc:
        form.refuse(exc, fields={"member_id": field, "id": field})
        if exc.code == "member_not_found":
            form.errors.pop("_form", None)
            form.fail(field, "console.community.member_unknown")
        return await _badges_view(who, form=form, status=exc.status)
    return redirect(
        who,
        "/console/badges",
        flash=translate("console.badges.already" if replayed else "console.badges.awarded"),
    )


@router.post("/console/certificates")
@page
async def new_certificate(request: Request) -> Response:
    who = await console_for(request, Capability.OPERATE)
    form = await submitted(who)
    member = form.text("holder", required=True, max_length=64)
    kind = form.choice("cert_kind", [k.value for k in CertificateKind])
    title = form.text("cert_title", max_length=80)
    territory = form.text("territory", max_length=80)
    if not form.ok or member is None or kind is None:
        return await _badges_view(who, form=form, status=422, focus="certificate")
    server_key = who.state.settings.secret_key

    def issue(ctx: Ctx) -> dict[str, Any]:
        return issue_certificate(
            ctx,
            server_key=server_key,
            member_id=resolve_member(ctx, member),
            kind=kind,
            title=title,
            territory=territory,
        )

    try:
        issued = await who.run(issue)
    except DomainError as exc:
        form.refuse(exc, fields={"member_id": "holder", "title": "cert_title", "kind": "cert_kind"})
        if exc.code == "member_not_found":
            form.errors.pop("_form", None)
            form.fail("holder", "console.community.member_unknown")
        return await _badges_view(who, form=form, status=exc.status, focus="certificate")
    return redirect(
        who,
        "/console/badges",
        flash=translate("console.certificates.issued", serial=issued["serial"]),
    )


@router.get("/console/certificates/{certificate_id}/pdf")
@page
async def certificate_download(request: Request, certificate_id: str) -> Response:
    who = await console_for(request, Capability.VIEW)
    data = await who.run(
        certificate_pdf, server_key=who.state.settings.secret_key, certificate_id=certificate_id
    )
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{certificate_id}.pdf"'},
    )


AREA = Area(
    name="communities",
    router=router,
    console_nav=(
        NavItem("console.nav.communities", "/console/communities", Capability.MEMBERS),
        NavItem("console.nav.badges", "/console/badges", Capability.VIEW),
    ),
)
