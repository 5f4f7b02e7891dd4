"""Community operations in the console: the staff-account matrix with each account's load, and
the outbox's task list, where an operator sends by hand what a personal WeChat account cannot
send by itself (a staff-account operator sees the tasks of their own accounts)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shequn.community.outbox.service import mark_done, mark_skipped, outbox_page
from shequn.community.staff.handover import hand_over
from shequn.community.staff.service import create_account, list_accounts
from shequn.console.rules import Capability
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
from shequn.i18n import translate

router = APIRouter(include_in_schema=False)


def _own_accounts(ctx: Ctx, login: str | None) -> list[dict[str, Any]]:
    """The tenant's staff accounts (of one operator, when `login` names one)."""
    accounts: list[dict[str, Any]] = []
    after = None
    while True:
        found = list_accounts(ctx, after=after, limit=200)
        accounts.extend(
            a for a in found["items"] if login is None or a["operator"].lower() == login.lower()
        )
        after = found["next_after"]
        if after is None:
            return accounts


def _login(who: Console) -> str | None:
    return who.session.login if who.scoped else None


async def _staff_view(who: Console, *, form: Form | None = None, status: int = 200) -> Response:
    accounts = await who.run(_own_accounts, _login(who))
    return render(
        who,
        "console/staff.html",
        accounts=accounts,
        form=form or Form({"working_hours": "09:00-21:00"}),
        status=status,
    )


@router.get("/console/staff")
@page
async def staff_page(request: Request) -> Response:
    who = await console_for(request, Capability.MEMBERS)
    return await _staff_view(who)


@router.post("/console/staff")
@page
async def new_staff_account(request: Request) -> Response:
    """A staff account (个人号 or 企业微信) and the console login of the person who runs it."""
    who = await console_for(request, Capability.OPERATE)
    form = await submitted(who)
    values: dict[str, Any] = {
        "name": form.text("account_name", required=True, max_length=80),
        "persona": form.text("persona", max_length=80) or "",
        "operator": form.text("operator", max_length=80) or "",
        "working_hours": form.text("working_hours", max_length=20) or "09:00-21:00",
    }
    cap = form.integer("friend_cap", low=1, high=100_000)
    daily = form.integer("daily_add_limit", low=1, high=10_000)
    if cap is not None:
        values["friend_cap"] = cap
    if daily is not None:
        values["daily_add_limit"] = daily
    if not form.ok:
        return await _staff_view(who, form=form, status=422)
    try:
        await who.run(create_account, **values)
    except DomainError as exc:
        form.refuse(exc, fields={"name": "account_name"})
        return await _staff_view(who, form=form, status=exc.status)
    return redirect(
        who, "/console/staff", flash=translate("console.staff.created", name=values["name"])
    )


@router.post("/console/staff/{account_id}/handover")
@page
async def staff_handover(request: Request, account_id: str) -> Response:
    """Start (or carry on) the handover of a leaving account's members and groups."""
    who = await console_for(request, Capability.OPERATE)
    accounts = {a["id"]: a for a in await who.run(_own_accounts, None)}
    if account_id not in accounts:
        raise NotFound("staff_account_not_found", id=account_id)
    form = await submitted(who)
    field = f"to_{account_id}"
    target = form.choice(field, [a for a in accounts if a != account_id], required=False)
    if not form.ok:
        return await _staff_view(who, form=form, status=422)
    try:
        done = await who.run(hand_over, account_id=account_id, fallback_account_id=target)
    except DomainError as exc:
        form.refuse(exc, fields={"fallback_account_id": field})
        if "_form" in form.errors:
            form.errors[field] = form.errors.pop("_form")
        return await _staff_view(who, form=form, status=exc.status)
    members = done.get("members") or {}
    return redirect(
        who,
        "/console/staff",
        flash=translate(
            "console.staff.handover_started",
            name=accounts[account_id]["name"],
            pending=members.get("pending", 0),
            waiting=len(done.get("waiting") or []),
        ),
    )


@router.get("/console/tasks")
@page
async def tasks_page(request: Request) -> Response:
    who = await console_for(request, Capability.MEMBERS)
    accounts = await who.run(_own_accounts, _login(who))
    names = {a["id"]: a["name"] for a in accounts}
    wanted = request.query_params.get("account") or None
    if wanted is not None and wanted not in names:
        raise NotFound("staff_account_not_found", id=wanted)
    after = request.query_params.get("after") or None
    if who.scoped and not names:
        found: dict[str, Any] = {"items": [], "next_after": None}
    else:
        found = await who.run(
            outbox_page,
            status="pending",
            adapter="operator_task",
            staff_account_id=wanted,
            after=after,
            limit=50,
        )
        if who.scoped:
            found["items"] = [m for m in found["items"] if m["staff_account_id"] in names]
    return render(
        who,
        "console/tasks.html",
        found=found,
        names=names,
        params={"account": wanted or "", "after": after or ""},
    )


@router.post("/console/tasks/{message_id}/{action}")
@page
async def task_action(request: Request, message_id: str, action: str) -> Response:
    who = await console_for(request, Capability.TAG)
    await submitted(who)
    if action not in ("done", "skip"):
        raise InvalidInput("task_action_unknown", action=action)
    if who.scoped:
        names = {a["id"] for a in await who.run(_own_accounts, _login(who))}
        mine = await who.run(outbox_page, adapter="operator_task", limit=200)
        if not any(m["id"] == message_id and m["staff_account_id"] in names for m in mine["items"]):
            raise NotFound("outbox_message_not_found", id=message_id)
    await who.run(mark_done if action == "done" else mark_skipped, message_id=message_id)
    return redirect(who, "/console/tasks", flash=translate(f"console.tasks.done.{action}"))


AREA = Area(
    name="community",
    router=router,
    console_nav=(
        NavItem("console.nav.staff", "/console/staff", Capability.MEMBERS),
        NavItem("console.nav.tasks", "/console/tasks", Capability.MEMBERS),
    ),
)
