"""The tenant's console users: who may log in, with which role; unlocking, disabling and
resetting a password."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shequn.console.rules import ROLES, Capability
from shequn.console.service import (
    create_console_user,
    get_console_user,
    list_console_users,
    update_console_user,
)
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
from shequn.i18n import translate

router = APIRouter(include_in_schema=False)


async def _users_page(who: Console, *, form: Form | None = None, status: int = 200) -> Response:
    users = await who.run(list_console_users)
    return render(
        who,
        "console/users.html",
        users=users,
        roles=ROLES,
        form=form or Form({"role": "operator"}),
        status=status,
    )


@router.get("/console/users")
@page
async def users_page(request: Request) -> Response:
    who = await console_for(request, Capability.ADMINISTER)
    return await _users_page(who)


@router.post("/console/users")
@page
async def user_create(request: Request) -> Response:
    who = await console_for(request, Capability.ADMINISTER)
    form = await submitted(who)
    login = form.text("login", required=True, max_length=80)
    password = form.raw("password", required=True, max_length=200)
    role = form.choice("role", ROLES)
    name = form.text("display_name", max_length=80)
    if not form.ok or login is None or password is None or role is None:
        return await _users_page(who, form=form, status=422)
    try:
        created = await who.run(
            create_console_user, login=login, password=password, role=role, display_name=name
        )
    except DomainError as exc:
        form.refuse(exc)
        return await _users_page(who, form=form, status=exc.status)
    return redirect(
        who, "/console/users", flash=translate("console.users.created", login=created["login"])
    )


@router.post("/console/users/{user_id}/{action}")
@page
async def user_action(request: Request, user_id: str, action: str) -> Response:
    who = await console_for(request, Capability.ADMINISTER)
    await who.run(get_console_user, user_id=user_id)
    form = await submitted(who)
    changes: dict[str, object] = {}
    if action == "role":
        changes["role"] = form.get("role")
    elif action == "disable":
        changes["disabled"] = True
    elif action == "enable":
        changes["disabled"] = False
    elif action == "unlock":
        changes["unlock"] = True
    elif action == "password":
        changes["password"] = form.get(f"password_{user_id}")
    else:
        raise InvalidInput("console_user_action_unknown", action=action)
    try:
        await who.run(update_console_user, user_id=user_id, **changes)
    except DomainError as exc:
        if exc.code == "console_user_not_found":
            raise
        form.refuse(exc, fields={"password": f"password_{user_id}", "role": f"role_{user_id}"})
        return await _users_page(who, form=form, status=exc.status)
    return redirect(who, "/console/users", flash=translate(f"console.users.done.{action}"))


AREA = Area(
    name="users",
    router=router,
    console_nav=(NavItem("console.nav.users", "/console/users", Capability.ADMINISTER),),
)
