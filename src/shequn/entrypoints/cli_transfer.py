"""`shequn import` and `shequn export`: files in and out of a tenant (`shequn.transfer`).

`declare_transfer_commands` declares both commands on the `shequn` application, with the
command class and the tenant runner `shequn.entrypoints.cli` hands it (this module does not
import `cli`, which imports it). `import` exits with 0 when the file was imported (or, with
`--dry-run`, is clean), 1 when a row is bad (every bad row is listed and nothing is imported),
2 when the command itself is refused (an unknown tenant, an unreadable file).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperCommand

from shequn.context import Ctx
from shequn.i18n import translate
from shequn.transfer.exports import prepare_export
from shequn.transfer.imports import import_file
from shequn.transfer.report import report_shown

# Runs one use case for one tenant, as `shequn.entrypoints.cli._on_tenant` does: (database
# url, tenant, use case, writable=…) → its result; a domain error ends the command with exit
# code 2.
OnTenant = Callable[..., Any]


def _t(key: str, /, **params: Any) -> str:
    return translate(key, **params)


console = Console()
err_console = Console(stderr=True)


def declare_transfer_commands(
    app: typer.Typer, *, command: type[TyperCommand], on_tenant: OnTenant
) -> None:
    """Declare `import` and `export` on `app`."""

    @app.command("import", cls=command, help=_t("transfer.cli.help.import"))
    def import_command(
        kind: Annotated[
            str, typer.Argument(help=_t("transfer.cli.arg.import_kind"), show_default=False)
        ],
        file: Annotated[Path, typer.Argument(help=_t("transfer.cli.arg.file"), show_default=False)],
        tenant: Annotated[
            str, typer.Option("--tenant", "-t", envvar="SHEQUN_TENANT", help=_t("cli.opt.tenant"))
        ],
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help=_t("transfer.cli.opt.dry_run"))
        ] = False,
        database_url: Annotated[
            str | None,
            typer.Option(
                "--database-url", envvar="SHEQUN_DATABASE_URL", help=_t("cli.opt.database_url")
            ),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help=_t("cli.opt.json"))] = False,
    ) -> None:
        """Import a CSV file of members, orders or referral ties."""
        try:
            data = file.read_bytes()
        except OSError as exc:
            err_console.print(_t("transfer.cli.unreadable", path=str(file), reason=exc.strerror))
            raise typer.Exit(code=2) from None
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=not err_console.is_terminal,  # no bar drawn into a pipe or a log
        ) as bar:
            tasks: dict[str, Any] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(_t(f"transfer.cli.stage.{stage}"), total=total)
                bar.update(tasks[stage], completed=done, total=total)

            report = report_shown(
                on_tenant(
                    database_url,
                    tenant,
                    lambda ctx: import_file(
                        ctx, kind=kind, data=data, dry_run=dry_run, progress=progress
                    ),
                )
            )
        if as_json:
            typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
        else:
            _print_report(report)
        if report["errors"]:
            raise typer.Exit(code=1)

    @app.command("export", cls=command, help=_t("transfer.cli.help.export"))
    def export_command(
        kind: Annotated[
            str, typer.Argument(help=_t("transfer.cli.arg.export_kind"), show_default=False)
        ],
        tenant: Annotated[
            str, typer.Option("--tenant", "-t", envvar="SHEQUN_TENANT", help=_t("cli.opt.tenant"))
        ],
        file_format: Annotated[
            str, typer.Option("--format", "-f", help=_t("transfer.cli.opt.format"))
        ] = "csv",
        start: Annotated[
            str | None, typer.Option("--from", help=_t("transfer.cli.opt.from"))
        ] = None,
        end: Annotated[str | None, typer.Option("--to", help=_t("transfer.cli.opt.to"))] = None,
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help=_t("transfer.cli.opt.output"))
        ] = None,
        excel: Annotated[bool, typer.Option("--excel", help=_t("transfer.cli.opt.excel"))] = False,
        database_url: Annotated[
            str | None,
            typer.Option(
                "--database-url", envvar="SHEQUN_DATABASE_URL", help=_t("cli.opt.database_url")
            ),
        ] = None,
    ) -> None:
        """Export members, orders, commissions or the ledger, to a file or standard output."""

        def write(ctx: Ctx) -> None:
            export = prepare_export(
                ctx, kind=kind, format=file_format, start=start, end=end, excel=excel
            )
            if output is None:
                stream = sys.stdout.buffer
                for chunk in export.chunks():
                    stream.write(chunk)
                stream.flush()
                return
            with output.open("wb") as handle:
                for chunk in export.chunks():
                    handle.write(chunk)

        try:
            on_tenant(database_url, tenant, write, writable=False)
        except OSError as exc:
            err_console.print(_t("transfer.cli.unwritable", path=str(output), reason=exc.strerror))
            raise typer.Exit(code=2) from None
        if output is not None:
            err_console.print(_t("transfer.cli.written", path=str(output)))


def _print_report(report: dict[str, Any]) -> None:
    errors = report["errors"]
    if errors:
        table = Table(title=_t("transfer.cli.errors"))
        for column in ("line", "field", "code", "message"):
            # a reason is never cut: in a narrow terminal or a pipe it wraps
            table.add_column(_t(f"transfer.cli.col.{column}"), overflow="fold")
        for error in errors:
            table.add_row(
                str(error["line"]), error.get("field", ""), error["code"], error["message"]
            )
        console.print(table)
        bad = report["rows"] - report["valid"]
        key = "transfer.cli.dry_run_bad" if report["dry_run"] else "transfer.cli.refused"
        err_console.print(f"[red]{_t(key, bad=bad, rows=report['rows'])}[/red]")
        return
    done = "dry_run_ok" if report["dry_run"] else "done"
    console.print(
        _t(f"transfer.cli.{done}.{report['kind']}", rows=report["rows"], **report["planned"])
    )
