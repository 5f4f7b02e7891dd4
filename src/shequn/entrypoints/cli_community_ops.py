"""`shequn community-ops`: what an operations team scripts — run the schedules (due posts,
event reminders, no-show follow-ups, attendance from check-in activities), evaluate growth
stages, scan group health and export rankings — with a progress bar over the long work.

Built by `community_ops_app`, to which `shequn.entrypoints.cli` hands its localised command
classes and its tenant runner (this module does not import `cli`, which imports it).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from typer.core import TyperCommand, TyperGroup

from shequn.community.cadence import service as cadence
from shequn.community.gatherings import service as gatherings
from shequn.community.health import service as health
from shequn.community.leaders import service as leaders
from shequn.community.path import service as path
from shequn.community.programs import service as programs
from shequn.context import Ctx
from shequn.entrypoints.cli_options import (
    DatabaseOption,
    JsonOption,
    OnTenant,
    TenantOption,
    console,
    err_console,
)
from shequn.flows import community_rewards, growth_path_follower
from shequn.i18n import translate


def _t(key: str, /, **params: object) -> str:
    return translate(key, **params)


OutOption = Annotated[
    Path | None, typer.Option("--out", "-o", help=_t("community_ops.cli.opt.out"))
]


@contextmanager
def _bar(label: str) -> Iterator[Callable[[int], None]]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)
        yield lambda n: bar.advance(task, n)


def _print(data: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        summary = ", ".join(f"{k}={v}" for k, v in data.items())
        console.print(_t("community_ops.cli.done", summary=summary), soft_wrap=True)


def _write_csv(rows: list[dict[str, Any]], out: Path | None) -> None:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if out is None:
        typer.echo(buffer.getvalue(), nl=False)
    else:
        out.write_text(buffer.getvalue(), encoding="utf-8")


def community_ops_app(
    *, group: type[TyperGroup], command: type[TyperCommand], on_tenant: OnTenant
) -> typer.Typer:
    """The `community-ops` command group."""
    app = typer.Typer(cls=group, no_args_is_help=True, help=_t("community_ops.cli.help.app"))

    @app.command("run-schedules", cls=command, help=_t("community_ops.cli.help.run_schedules"))
    def run_schedules(
        tenant: TenantOption, database_url: DatabaseOption = None, as_json: JsonOption = False
    ) -> None:
        """Queue due posts, event reminders and no-show follow-ups; read attendance."""

        def run(ctx: Ctx) -> dict[str, Any]:
            with _bar(_t("community_ops.cli.schedules")) as advance:
                posts = cadence.run_due_posts(ctx, progress=advance)
            events = gatherings.queue_event_messages(ctx)
            attended = community_rewards.attendance_from_activities(ctx)
            return {**posts, **events, "attendance_from_activities": attended}

        _print(on_tenant(database_url, tenant, run), as_json)

    @app.command("evaluate-growth", cls=command, help=_t("community_ops.cli.help.growth"))
    def evaluate_growth(
        tenant: TenantOption, database_url: DatabaseOption = None, as_json: JsonOption = False
    ) -> None:
        """Evaluate every member's growth stage."""

        def run(ctx: Ctx) -> dict[str, Any]:
            with _bar(_t("community_ops.cli.growth")) as advance:
                return path.evaluate_members(ctx, progress=advance)

        _print(on_tenant(database_url, tenant, run), as_json)

    @app.command("follow-growth", cls=command, help=_t("community_ops.cli.help.follow_growth"))
    def follow_growth(
        tenant: TenantOption, database_url: DatabaseOption = None, as_json: JsonOption = False
    ) -> None:
        """Follow the event feed once: move the members it names along the growth path."""

        def run(ctx: Ctx) -> dict[str, Any]:
            with _bar(_t("community_ops.cli.follow_growth")) as advance:
                return growth_path_follower.follow_growth(ctx, progress=advance)

        _print(on_tenant(database_url, tenant, run), as_json)

    @app.command("health-scan", cls=command, help=_t("community_ops.cli.help.health"))
    def health_scan(
        tenant: TenantOption, database_url: DatabaseOption = None, as_json: JsonOption = False
    ) -> None:
        """Scan every group's health and raise alerts."""

        def run(ctx: Ctx) -> dict[str, Any]:
            with _bar(_t("community_ops.cli.health")) as advance:
                return health.scan_health(ctx, progress=advance)

        _print(on_tenant(database_url, tenant, run), as_json)

    @app.command("export-ranking", cls=command, help=_t("community_ops.cli.help.ranking"))
    def export_ranking(
        program: Annotated[str, typer.Argument(help=_t("community_ops.cli.arg.program"))],
        tenant: TenantOption,
        out: OutOption = None,
        database_url: DatabaseOption = None,
    ) -> None:
        """Export a program's ranking as CSV."""
        rows = on_tenant(
            database_url, tenant, lambda ctx: programs.member_ranking_rows(ctx, program_id=program)
        )
        _write_csv(rows, out)

    @app.command("export-leaderboard", cls=command, help=_t("community_ops.cli.help.leaderboard"))
    def export_leaderboard(
        kind: Annotated[str, typer.Argument(help=_t("community_ops.cli.arg.kind"))],
        tenant: TenantOption,
        period: Annotated[
            str, typer.Option("--period", help=_t("community_ops.cli.opt.period"))
        ] = "7d",
        out: OutOption = None,
        database_url: DatabaseOption = None,
    ) -> None:
        """Export a leaderboard as CSV."""
        board = on_tenant(
            database_url,
            tenant,
            lambda ctx: leaders.leaderboard(ctx, kind=kind, period=period, limit=100),
        )
        _write_csv(board["items"], out)

    return app
