"""What the commands of the CLI share: the language their help is written in, the options
that name the database, the tenant and JSON output, and the consoles they print to.

Help texts are rendered when a command's options are declared, that is when its module is
imported: every CLI module takes its options from here, and this module chooses the language
(`SHEQUN_LOCALE`, else `LANG`) before it declares them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console

from shequn.context import Ctx
from shequn.i18n import negotiate, set_locale, translate


def setup_locale() -> None:
    """The CLI's language: `SHEQUN_LOCALE`, else `LANG`, else Simplified Chinese."""
    set_locale(negotiate(os.environ.get("SHEQUN_LOCALE") or os.environ.get("LANG"), "zh_CN"))


setup_locale()

# Runs one use case for one tenant, as `shequn.entrypoints.cli._on_tenant` does: (database
# url, tenant, use case) → its result; a domain error ends the command with exit code 2.
OnTenant = Callable[[str | None, str, Callable[[Ctx], Any]], Any]

console = Console()
err_console = Console(stderr=True)

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url", envvar="SHEQUN_DATABASE_URL", help=translate("cli.opt.database_url")
    ),
]
TenantOption = Annotated[
    str, typer.Option("--tenant", "-t", envvar="SHEQUN_TENANT", help=translate("cli.opt.tenant"))
]
JsonOption = Annotated[bool, typer.Option("--json", help=translate("cli.opt.json"))]
