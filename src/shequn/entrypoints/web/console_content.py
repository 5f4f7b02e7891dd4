"""What a community is told, in the console: the content calendar of scheduled posts and tasks,
SOPs (a sequence of posts from a day on), and the copy library with its search."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shequn.community.cadence.rules import PostKind, TargetKind
from shequn.community.cadence.service import add_copy, create_post, create_sop, search_copy
from shequn.console.rules import Capability
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
from shequn.errors import DomainError
from shequn.i18n import translate
from shequn.insights.console_gatherings import content_calendar, list_sops

router = APIRouter(include_in_schema=False)

TARGETS = tuple(k.value for k in TargetKind)
POST_KINDS = tuple(k.value for k in PostKind)
# One step of an SOP per line: "day HH:MM text", e.g. "0 09:00 欢迎加入".
_STEP = re.compile(r"^\s*(\d{1,3})\s+(\d{1,2}):(\d{2})\s+(.+?)\s*$")


def _steps(form: Form, name: str) -> list[dict[str, Any]] | None:
    lines = [line for line in form.get(name).splitlines() if line.strip()]
    if not lines:
        form.fail(name, "console.form.required")
        return None
    steps = []
    for line in lines:
        found = _STEP.match(line)
        if found is None or int(found.group(2)) > 23 or int(found.group(3)) > 59:
            form.fail(name, "console.content.step_invalid", line=line.strip()[:40])
            return None
        day, hour, minute, body = found.groups()
        steps.append({"day": int(day), "minute": int(hour) * 60 + int(minute), "body": body})
    return steps


async def _content_view(
    who: Console, *, form: Form | None = None, status: int = 200, focus: str = ""
) -> Response:
    query = who.request.query_params
    q = (query.get("q") or "").strip()[:200]
    found = await who.run(search_copy, q=q) if q else None
    now = who.state.clock.now()
    return render(
        who,
        "console/content.html",
        form=form or Form({"target_kind": "group", "kind": "post", "sop_target_kind": "group"}),
        status=status,
        focus=focus,
        q=q,
        found=found,
        calendar=await who.run(content_calendar, since=now),
        sops=await who.run(list_sops),
        targets=TARGETS,
        post_kinds=POST_KINDS,
    )


@router.get("/console/content")
@page
async def content_page(request: Request) -> Response:
    who = await console_for(request, Capability.MEMBERS)
    return await _content_view(who)


@router.post("/console/content/posts")
@page
async def new_post(request: Request) -> Response:
    who = await console_for(request, Capability.OPERATE)
    form = await submitted(who)
    target_kind = form.choice("target_kind", TARGETS)
    target = form.text("target", required=True, max_length=80)
    kind = form.choice("kind", POST_KINDS)
    body = form.raw("post_body", required=True, max_length=4000)
    day = form.text("post_day", required=True, max_length=10)
    at = form.text("post_time", required=True, max_length=5)
    send_at = None
    if day and at:
        try:
            send_at = datetime.combine(date.fromisoformat(day), time.fromisoformat(at)).replace(
                tzinfo=ZoneInfo(who.session.time_zone)
            )
        except ValueError:
            form.fail("post_day", "console.events.when_invalid")
    if (
        not form.ok
        or target_kind is None
        or target is None
        or kind is None
        or body is None
        or send_at is None
    ):
        return await _content_view(who, form=form, status=422, focus="post")
    try:
        await who.run(
            create_post,
            target_kind=target_kind,
            target_id=target,
            body=body,
            send_at=send_at,
            kind=kind,
        )
    except DomainError as exc:
        form.refuse(exc, fields={"target_id": "target", "body": "post_body", "send_at": "post_day"})
        return await _content_view(who, form=form, status=exc.status, focus="post")
    return redirect(who, "/console/content", flash=translate("console.content.scheduled"))


@router.post("/console/content/sops")
@page
async def new_sop(request: Request) -> Response:
    who = await console_for(request, Capability.OPERATE)
    form = await submitted(who)
    name = form.text("sop_name", required=True, max_length=80)
    target_kind = form.choice("sop_target_kind", TARGETS)
    target = form.text("sop_target", required=True, max_length=80)
    starts = form.text("starts_on", required=True, max_length=10)
    steps = _steps(form, "steps")
    starts_on = None
    if starts:
        try:
            starts_on = date.fromisoformat(starts)
        except ValueError:
            form.fail("starts_on", "console.events.when_invalid")
    if (
        not form.ok
        or name is None
        or target_kind is None
        or target is None
        or steps is None
        or starts_on is None
    ):
        return await _content_view(who, form=form, status=422, focus="sop")
    try:
        await who.run(
            create_sop,
            name=name,
            target_kind=target_kind,
            target_id=target,
            steps=steps,
            starts_on=starts_on,
        )
    except DomainError as exc:
        form.refuse(exc, fields={"name": "sop_name", "target_id": "sop_target"})
        return await _content_view(who, form=form, status=exc.status, focus="sop")
    return redirect(who, "/console/content", flash=translate("console.content.sop_created"))


@router.post("/console/content/copies")
@page
async def new_copy(request: Request) -> Response:
    who = await console_for(request, Capability.TAG)
    form = await submitted(who)
    title = form.text("copy_title", required=True, max_length=120)
    body = form.raw("copy_body", required=True, max_length=4000)
    tags = [t.strip() for t in form.get("copy_tags").replace("，", ",").split(",") if t.strip()]
    if not form.ok or title is None or body is None:
        return await _content_view(who, form=form, status=422, focus="copy")
    try:
        await who.run(add_copy, title=title, body=body, tags=tags)
    except DomainError as exc:
        form.refuse(exc, fields={"title": "copy_title", "body": "copy_body", "tags": "copy_tags"})
        return await _content_view(who, form=form, status=exc.status, focus="copy")
    return redirect(who, "/console/content", flash=translate("console.content.copy_added"))


AREA = Area(
    name="content",
    router=router,
    console_nav=(NavItem("console.nav.content", "/console/content", Capability.MEMBERS),),
)
