"""`shequn points`: the points lots past their date expired, oldest first, in set-based
batches (`shequn.growth.points.service.expire_points`).

The sub-app is built by `points_app`, to which `shequn.entrypoints.cli` hands its localised
command classes and its tenant runner (this module does not import `cli`, which imports it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from shequn.context import Ctx
from shequn.entrypoints.cli_options import (
    DatabaseOption,
    JsonOption,
    OnTenant,
    console,
    err_console,
)
from shequn.growth.points.service import expire_points
from shequn.i18n import translate


def _t(key: str, /, **params: object) -> str:
    return translate(key, **params)


# Runs one use case for every tenant, each in its own transaction: a result per tenant,
# `{tenant_id, error, message}` for one whose use case was refused.
OnEveryTenant = Callable[[str | None, Callable[[Ctx], dict[str, Any]]], list[dict[str, Any]]]


def _expired_line(result: dict[str, Any]) -> str:
    return _t("growth.cli.expired", lots=result["lots_expired"], points=result["points_expired"])


def points_app(
    *,
    group: type[TyperGroup],
    command: type[TyperCommand],
    on_tenant: OnTenant,
    on_every_tenant: OnEveryTenant,
) -> typer.Typer:
    """The `points` command group."""
    app = typer.Typer(cls=group, no_args_is_help=True, help=_t("growth.cli.help.points"))

    @app.command("expire", cls=command, help=_t("growth.cli.help.expire"))
    def expire(
        tenant: Annotated[
            str | None,
            typer.Option("--tenant", "-t", envvar="SHEQUN_TENANT", help=_t("cli.opt.tenant")),
        ] = None,
        all_tenants: Annotated[
            bool, typer.Option("--all-tenants", help=_t("cli.opt.all_tenants"))
        ] = False,
        database_url: DatabaseOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Expire every points lot past its date (for one tenant, or for all: from cron)."""
        if (tenant is None) == (not all_tenants):
            err_console.print(f"[red]{_t('cli.settle_target')}[/red]")
            raise typer.Exit(code=2)
        if tenant is not None:
            result = on_tenant(database_url, tenant, expire_points)
            if as_json:
                typer.echo(json.dumps(result))
            else:
                console.print(_expired_line(result))
            return
        results = on_every_tenant(database_url, expire_points)
        if as_json:
            typer.echo(json.dumps(results, ensure_ascii=False))
        else:
            for item in results:
                if "error" in item:
                    err_console.print(f"{item['tenant_id']}: [red]{item['message']}[/red]")
                else:
                    console.print(f"{item['tenant_id']}: {_expired_line(item)}")
        if any("error" in item for item in results):
            raise typer.Exit(code=1)

    return app
