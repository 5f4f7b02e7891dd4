"""`shequn user`: console users on the command line (create, list, unlock).

The sub-app is built by `users_app`, to which `shequn.entrypoints.cli` hands its localised
command classes and its way of running a use case for a tenant (this module does not import
`cli`, which imports it)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperCommand, TyperGroup

from shequn.console.service import create_console_user, list_console_users, update_console_user
from shequn.context import Ctx
from shequn.entrypoints.cli_options import DatabaseOption, JsonOption, TenantOption
from shequn.i18n import translate

T = TypeVar("T")
OnTenant = Callable[..., Any]


def _t(key: str, /, **params: object) -> str:
    return translate(key, **params)


def generated_password() -> str:
    """A password to hand over once: 16 URL-safe characters."""
    return secrets.token_urlsafe(12)


def users_app(
    *, group: type[TyperGroup], command: type[TyperCommand], on_tenant: OnTenant
) -> typer.Typer:
    """The `user` command group; `on_tenant(url, tenant, use_case, writable=…)` runs a use case
    for one tenant and ends the command on a domain error."""
    app = typer.Typer(cls=group, no_args_is_help=True, help=_t("cli.help.user"))
    console = Console()
    err_console = Console(stderr=True)

    @app.command("create", cls=command, help=_t("cli.help.user_create"))
    def create(
        tenant: TenantOption,
        login: Annotated[str, typer.Option("--login", help=_t("cli.opt.login"))],
        role: Annotated[str, typer.Option("--role", help=_t("cli.opt.console_role"))] = "operator",
        password: Annotated[
            str | None, typer.Option("--password", help=_t("cli.opt.password"))
        ] = None,
        display_name: Annotated[
            str | None, typer.Option("--name", help=_t("cli.opt.display_name"))
        ] = None,
        database_url: DatabaseOption = None,
        as_json: JsonOption = False,
    ) -> None:
        secret = password or generated_password()

        def use_case(ctx: Ctx) -> dict[str, Any]:
            return create_console_user(
                ctx, login=login, password=secret, role=role, display_name=display_name
            )

        user = on_tenant(database_url, tenant, use_case)
        if as_json:
            shown = {k: v for k, v in user.items() if k in ("id", "login", "role", "display_name")}
            if password is None:
                shown["password"] = secret
            typer.echo(json.dumps(shown, ensure_ascii=False))
            return
        console.print(_t("cli.user_created", login=user["login"], role=user["role"]))
        if password is None:
            console.print(_t("cli.user_password_once", password=secret), soft_wrap=True)

    @app.command("list", cls=command, help=_t("cli.help.user_list"))
    def list_users(
        tenant: TenantOption,
        database_url: DatabaseOption = None,
        as_json: JsonOption = False,
    ) -> None:
        users = on_tenant(database_url, tenant, list_console_users, writable=False)
        if as_json:
            typer.echo(json.dumps(users, ensure_ascii=False, default=str))
            return
        table = Table(title=_t("cli.console_users"))
        for key in ("login", "name", "role", "last_login"):
            table.add_column(_t(f"cli.col.{key}"))
        for u in users:
            table.add_row(u["login"], u["display_name"], u["role"], str(u["last_login_at"] or ""))
        console.print(table)

    @app.command("unlock", cls=command, help=_t("cli.help.user_unlock"))
    def unlock(
        tenant: TenantOption,
        login: Annotated[str, typer.Option("--login", help=_t("cli.opt.login"))],
        database_url: DatabaseOption = None,
    ) -> None:
        def use_case(ctx: Ctx) -> bool:
            found = [u for u in list_console_users(ctx) if u["login"] == login.strip().lower()]
            if not found:
                return False
            update_console_user(ctx, user_id=found[0]["id"], unlock=True)
            return True

        if not on_tenant(database_url, tenant, use_case):
            err_console.print(_t("cli.user_not_found", login=login))
            raise typer.Exit(code=2)
        console.print(_t("cli.user_unlocked", login=login))

    return app


DEMO_LOGIN = "owner@demo"


def demo_logins(ctx: Ctx) -> dict[str, str]:
    """A console owner for the demo's tenant, and a portal password for one of its agents (one
    who has earned commissions): what `shequn demo` prints so that both open with data."""
    from shequn.console.service import set_portal_password
    from shequn.insights.console_money import commission_page
    from shequn.members.service import get_member

    password = generated_password()
    create_console_user(ctx, login=DEMO_LOGIN, password=password, role="owner", display_name="Demo")
    logins = {"login": DEMO_LOGIN, "password": password}
    for line in commission_page(ctx, limit=50)["items"]:
        agent = get_member(ctx, member_id=line["beneficiary_id"])
        if agent["phone"]:
            portal_password = generated_password()
            set_portal_password(ctx, member_id=agent["id"], password=portal_password)
            logins.update(phone=agent["phone"], portal_password=portal_password)
            break
    return logins
