"""`shequn webhooks`: the delivery worker and the pruning of old deliveries on the command line.

The sub-app is built by `webhooks_app`, to which `shequn.entrypoints.cli` hands its localised
command classes and its database opener (this module does not import `cli`, which imports it).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from typer.core import TyperCommand, TyperGroup

from shequn.clock import SystemClock
from shequn.config import DEFAULT_SECRET, load_settings
from shequn.db import Database
from shequn.i18n import translate
from shequn.webhooks.service import DEFAULT_RETENTION, prune_deliveries
from shequn.webhooks.worker import (
    DeliveryWorker,
    Totals,
    WorkerOptions,
    count_due,
    start_delivery_worker,
)

OpenDatabase = Callable[[str | None], AbstractContextManager[Database]]


def _t(key: str, /, **params: object) -> str:
    return translate(key, **params)


def _summary(totals: Totals) -> str:
    return _t("cli.webhooks.summary", **totals.as_dict())


def webhooks_app(
    *, group: type[TyperGroup], command: type[TyperCommand], database: OpenDatabase
) -> typer.Typer:
    """The `webhooks` command group, with the CLI's own classes and database opener."""
    app = typer.Typer(cls=group, no_args_is_help=True, help=_t("cli.help.webhooks"))
    console = Console()
    err_console = Console(stderr=True)

    @app.command("deliver", cls=command, help=_t("cli.help.webhooks_deliver"))
    def deliver(
        once: Annotated[bool, typer.Option("--once", help=_t("cli.opt.webhooks_once"))] = False,
        batch_size: Annotated[
            int,
            typer.Option("--batch-size", min=1, max=500, help=_t("cli.opt.webhooks_batch_size")),
        ] = 20,
        concurrency: Annotated[
            int,
            typer.Option("--concurrency", min=1, max=64, help=_t("cli.opt.webhooks_concurrency")),
        ] = 4,
        timeout: Annotated[
            float,
            typer.Option("--timeout", min=0.5, max=120.0, help=_t("cli.opt.webhooks_timeout")),
        ] = 10.0,
        idle: Annotated[
            float, typer.Option("--idle", min=0.05, max=60.0, help=_t("cli.opt.webhooks_idle"))
        ] = 1.0,
        database_url: Annotated[
            str | None,
            typer.Option(
                "--database-url", envvar="SHEQUN_DATABASE_URL", help=_t("cli.opt.database_url")
            ),
        ] = None,
        tenant: Annotated[
            str | None,
            typer.Option("--tenant", "-t", help=_t("cli.opt.webhooks_tenant")),
        ] = None,
        keep_days: Annotated[
            int,
            typer.Option("--keep-days", min=1, max=3650, help=_t("cli.opt.webhooks_keep_days")),
        ] = DEFAULT_RETENTION.days,
        as_json: Annotated[bool, typer.Option("--json", help=_t("cli.opt.json"))] = False,
    ) -> None:
        """Send the due webhook deliveries, signed; with --once until none is due."""
        settings = load_settings()
        if settings.environment == "production" and settings.secret_key == DEFAULT_SECRET:
            err_console.print(f"[red]{_t('cli.webhooks.default_secret')}[/red]", soft_wrap=True)
            raise typer.Exit(code=2)
        options = WorkerOptions(
            batch_size=batch_size,
            concurrency=concurrency,
            timeout=timeout,
            idle_seconds=idle,
            tenant_id=tenant,
            allow_private_hosts=settings.webhook_allow_private_hosts,
            retention=timedelta(days=keep_days),
        )
        with database(database_url) as db:
            if once:
                totals = _drain(db, settings.secret_key, options, err_console)
            else:
                totals = _watch(db, settings.secret_key, options, err_console)
        if as_json:
            typer.echo(json.dumps(totals.as_dict(), indent=2))
        else:
            console.print(_summary(totals))

    @app.command("prune", cls=command, help=_t("cli.help.webhooks_prune"))
    def prune(
        keep_days: Annotated[
            int,
            typer.Option("--keep-days", min=1, max=3650, help=_t("cli.opt.webhooks_keep_days")),
        ] = DEFAULT_RETENTION.days,
        database_url: Annotated[
            str | None,
            typer.Option(
                "--database-url", envvar="SHEQUN_DATABASE_URL", help=_t("cli.opt.database_url")
            ),
        ] = None,
        tenant: Annotated[
            str | None,
            typer.Option("--tenant", "-t", help=_t("cli.opt.webhooks_tenant")),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help=_t("cli.opt.json"))] = False,
    ) -> None:
        """Delete delivered and skipped deliveries older than --keep-days."""
        with database(database_url) as db:
            deleted = prune_deliveries(
                db, now=SystemClock().now(), keep=timedelta(days=keep_days), tenant_id=tenant
            )
        if as_json:
            typer.echo(json.dumps({"deleted": deleted}))
        else:
            console.print(_t("cli.webhooks.pruned", deleted=deleted, days=keep_days))

    return app


def _drain(db: Database, server_key: str, options: WorkerOptions, out: Console) -> Totals:
    """Deliver until nothing is due, with a bar over what is due (which grows when a delivered
    one lets a younger delivery of its subject go)."""
    clock = SystemClock()
    with (
        DeliveryWorker(db, server_key=server_key, clock=clock, options=options) as worker,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=out,
            transient=True,
        ) as bar,
    ):

        def due() -> int:
            return count_due(db, now=clock.now(), tenant_id=options.tenant_id)

        task = bar.add_task(_t("cli.webhooks.delivering"), total=due())
        done = Totals()

        def advanced(round_totals: Totals) -> None:
            done.add(round_totals)
            bar.update(
                task,
                completed=done.attempted,
                total=done.attempted + due(),
            )

        return worker.drain(advanced)


def _watch(db: Database, server_key: str, options: WorkerOptions, out: Console) -> Totals:
    """Deliver until interrupted (Ctrl-C), showing the running totals."""
    totals = Totals()
    lock = threading.Lock()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=out,
        transient=True,
    ) as bar:
        task = bar.add_task(_t("cli.webhooks.watching", summary=_summary(totals)), total=None)

        def advanced(round_totals: Totals) -> None:
            with lock:
                totals.add(round_totals)
                shown = _summary(totals)
            bar.update(task, description=_t("cli.webhooks.watching", summary=shown))

        running = start_delivery_worker(
            db, server_key=server_key, options=options, on_round=advanced
        )
        try:
            while running.thread.is_alive():
                running.thread.join(0.5)
        except KeyboardInterrupt:
            out.print(_t("cli.webhooks.stopping"))
        finally:
            running.stop()
    with lock:
        return totals
