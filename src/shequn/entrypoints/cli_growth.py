"""`shequn points`: the points lots past their date expired, oldest first, in set-based
batches (`shequn.growth.points.service.expire_points`).

The sub-app is built by `points_app`, to which `shequn.entrypoints.cli` hands its localised
command classes and its tenant runner (this module does not import `cli`, which imports it).
"""

from __future__ import annotations

import json

import typer
from typer.core import TyperCommand, TyperGroup

from shequn.entrypoints.cli_options import (
    DatabaseOption,
    JsonOption,
    OnTenant,
    TenantOption,
    console,
)
from shequn.growth.points.service import expire_points
from shequn.i18n import translate


def _t(key: str, /, **params: object) -> str:
    return translate(key, **params)


def points_app(
    *, group: type[TyperGroup], command: type[TyperCommand], on_tenant: OnTenant
) -> typer.Typer:
    """The `points` command group."""
    app = typer.Typer(cls=group, no_args_is_help=True, help=_t("growth.cli.help.points"))

    @app.command("expire", cls=command, help=_t("growth.cli.help.expire"))
    def expire(
        tenant: TenantOption, database_url: DatabaseOption = None, as_json: JsonOption = False
    ) -> None:
        """Expire every points lot past its date."""
        result = on_tenant(database_url, tenant, expire_points)
        if as_json:
            typer.echo(json.dumps(result))
            return
        console.print(
            _t("growth.cli.expired", lots=result["lots_expired"], points=result["points_expired"])
        )

    return app
