"""`shequn tiers`, `shequn simulate-plan` and `shequn repurchase`: the nightly tier evaluation,
what a commission plan would pay, and the members due to buy again.

The commands are built by `tier_commands`, to which `shequn.entrypoints.cli` hands its localised
command classes and its database opener (this module does not import `cli`, which imports it);
the app it returns has no name of its own, so its commands join the main app's.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperCommand, TyperGroup

from shequn.clock import SystemClock
from shequn.context import Ctx
from shequn.db import Database, retrying
from shequn.entrypoints.cli_options import DatabaseOption, JsonOption, TenantOption
from shequn.entrypoints.rendering import error_message, findings_shown
from shequn.errors import DomainError
from shequn.flows import plans_simulation, tiers_evaluation
from shequn.i18n import translate
from shequn.insights import repurchase
from shequn.money import format_percent, format_yuan
from shequn.tenancy.service import list_tenants, require_tenant

OpenDatabase = Callable[..., AbstractContextManager[Database]]
T = TypeVar("T")

CSV_COLUMNS = (
    "order_index",
    "order_id",
    "order_line_id",
    "sku",
    "buyer_id",
    "beneficiary_id",
    "level",
    "kind",
    "rule",
    "rate_bp",
    "base_fen",
    "amount_fen",
    "net_fen",
    "capped",
)


def _t(key: str, /, **params: object) -> str:
    return translate(key, **params)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, default=str, indent=2))


def tier_commands(
    *, group: type[TyperGroup], command: type[TyperCommand], database: OpenDatabase
) -> typer.Typer:
    """The `tiers` and `repurchase` groups and the `simulate-plan` command."""
    root = typer.Typer(cls=group)
    tiers_app = typer.Typer(cls=group, no_args_is_help=True, help=_t("cli.help.tiers"))
    repurchase_app = typer.Typer(cls=group, no_args_is_help=True, help=_t("cli.help.repurchase"))
    root.add_typer(tiers_app, name="tiers")
    root.add_typer(repurchase_app, name="repurchase")
    console = Console()
    err_console = Console(stderr=True)

    def fail(exc: DomainError) -> NoReturn:
        err_console.print(f"[red]{exc.code}[/red]: {error_message(exc)}", soft_wrap=True)
        raise typer.Exit(code=2)

    @contextmanager
    def tenant_ctx(url: str | None, tenant: str, *, writable: bool) -> Iterator[Ctx]:
        with database(url, writable=writable) as db:
            require_tenant(db=db, tenant_id=tenant)
            yield Ctx(db=db, clock=SystemClock(), tenant_id=tenant, actor="cli")

    def on_tenant(
        url: str | None, tenant: str, use_case: Callable[[Ctx], T], *, writable: bool
    ) -> T:
        try:
            with tenant_ctx(url, tenant, writable=writable) as ctx:
                return retrying(use_case, ctx)
        except DomainError as exc:
            fail(exc)

    # --- tiers ---------------------------------------------------------------------------------

    @tiers_app.command("evaluate", cls=command, help=_t("cli.help.tiers_evaluate"))
    def evaluate(
        tenant: Annotated[
            str | None,
            typer.Option("--tenant", "-t", envvar="SHEQUN_TENANT", help=_t("cli.opt.tenant")),
        ] = None,
        all_tenants: Annotated[
            bool, typer.Option("--all-tenants", help=_t("cli.opt.all_tenants"))
        ] = False,
        chunk: Annotated[
            int,
            typer.Option("--chunk", min=100, max=200_000, help=_t("cli.opt.tiers_chunk")),
        ] = tiers_evaluation.DEFAULT_CHUNK,
        database_url: DatabaseOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Evaluate every member's tier (upgrades and demotions), chunk by chunk."""
        if (tenant is None) == (not all_tenants):
            err_console.print(f"[red]{_t('cli.tiers.target')}[/red]")
            raise typer.Exit(code=2)
        results: list[dict[str, Any]] = []
        try:
            with database(database_url, writable=True) as db:
                targets = [tenant] if tenant else [r["tenant_id"] for r in list_tenants(db=db)]
                if tenant:
                    require_tenant(db=db, tenant_id=tenant)
                with Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(),
                    console=err_console,
                    transient=True,
                ) as bar:
                    for tenant_id in targets:
                        task = bar.add_task(
                            _t("cli.tiers.evaluating", tenant=tenant_id), total=None
                        )

                        def advanced(done: int, total: int, task: Any = task) -> None:
                            bar.update(task, completed=done, total=total)

                        ctx = Ctx(db=db, clock=SystemClock(), tenant_id=tenant_id, actor="cli")
                        totals = tiers_evaluation.evaluate_all(ctx, chunk=chunk, progress=advanced)
                        results.append({"tenant_id": tenant_id, **totals})
        except DomainError as exc:
            fail(exc)
        if as_json:
            _print_json(results if all_tenants else results[0])
            return
        for item in results:
            console.print(_t("cli.tiers.evaluated", **item))

    # --- what a plan would pay -----------------------------------------------------------------

    @root.command("simulate-plan", cls=command, help=_t("cli.help.simulate_plan"))
    def simulate_plan(
        plan: Annotated[str, typer.Argument(help=_t("cli.arg.plan"))],
        tenant: TenantOption,
        start: Annotated[str, typer.Option("--from", help=_t("cli.opt.simulate_from"))],
        end: Annotated[str, typer.Option("--to", help=_t("cli.opt.simulate_to"))],
        csv_path: Annotated[
            Path | None, typer.Option("--csv", help=_t("cli.opt.simulate_csv"), dir_okay=False)
        ] = None,
        shown: Annotated[
            int, typer.Option("--lines", min=0, max=5_000, help=_t("cli.opt.simulate_lines"))
        ] = 20,
        database_url: DatabaseOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Replay a period's paid orders under a plan and show what it would pay."""

        def run(ctx: Ctx) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            return plans_simulation.simulate_plan_lines(ctx, plan_id=plan, start=start, end=end)

        result, lines = on_tenant(database_url, tenant, run, writable=False)
        result = findings_shown(result)
        if csv_path is not None:
            _write_csv(csv_path, lines)
        if as_json:
            _print_json({**result, "lines": lines[:shown]})
            return
        _print_simulation(console, result, lines[:shown])
        if csv_path is not None:
            console.print(_t("cli.simulate.csv_written", count=len(lines), path=str(csv_path)))

    # --- repurchase ----------------------------------------------------------------------------

    @repurchase_app.command("due", cls=command, help=_t("cli.help.repurchase_due"))
    def due(
        tenant: TenantOption,
        sku: Annotated[str | None, typer.Option("--sku", help=_t("cli.opt.sku"))] = None,
        limit: Annotated[
            int, typer.Option("--limit", min=1, max=repurchase.MAX_PAGE, help=_t("cli.opt.limit"))
        ] = 50,
        database_url: DatabaseOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """List the members past a product's repurchase interval."""
        page = on_tenant(
            database_url,
            tenant,
            lambda ctx: repurchase.due_page(ctx, sku=sku, limit=limit),
            writable=False,
        )
        if as_json:
            _print_json(page)
            return
        table = Table(title=_t("cli.repurchase.due_title"))
        for column in ("member", "product", "last_paid_at", "interval", "overdue", "reminded_at"):
            table.add_column(_t(f"cli.repurchase.col.{column}"))
        for item in page["items"]:
            table.add_row(
                f"{item['name']} ({item['member_id']})",
                f"{item['product_name']} ({item['sku']})",
                f"{item['last_paid_at']:%Y-%m-%d}",
                str(item["interval_days"]),
                str(item["days_overdue"]),
                f"{item['reminded_at']:%Y-%m-%d}" if item["reminded_at"] else "-",
            )
        console.print(table)

    @repurchase_app.command("remind", cls=command, help=_t("cli.help.repurchase_remind"))
    def remind(
        tenant: TenantOption,
        sku: Annotated[str | None, typer.Option("--sku", help=_t("cli.opt.sku"))] = None,
        limit: Annotated[
            int,
            typer.Option("--limit", min=1, max=repurchase.MAX_REMINDERS, help=_t("cli.opt.limit")),
        ] = 1_000,
        database_url: DatabaseOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Send a reminder to the staff account of every due member not yet reminded."""
        result = on_tenant(
            database_url,
            tenant,
            lambda ctx: repurchase.send_reminders(ctx, sku=sku, limit=limit),
            writable=True,
        )
        if as_json:
            _print_json(result)
            return
        console.print(_t("cli.repurchase.reminded", **result))

    return root


def _write_csv(path: Path, lines: list[dict[str, Any]]) -> None:
    """Every line, one row each (amounts in fen, rates in bp, the rule as JSON)."""
    handle = sys.stdout if str(path) == "-" else path.open("w", newline="", encoding="utf-8")
    try:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for line in lines:
            writer.writerow(
                {**line, "rule": json.dumps(line["rule"], ensure_ascii=False, sort_keys=True)}
            )
    finally:
        if handle is not sys.stdout:
            handle.close()


def _print_simulation(
    console: Console, result: dict[str, Any], lines: list[dict[str, Any]]
) -> None:
    against = result["against_active"]
    console.print(
        _t(
            "cli.simulate.summary",
            orders=result["orders"],
            gmv=format_yuan(result["gmv_fen"]),
            total=format_yuan(result["total_fen"]),
            cost=format_percent(result["cost_bp_of_gmv"]),
        )
    )
    console.print(
        _t(
            "cli.simulate.against_active",
            plan=against["plan_id"] or "-",
            total=format_yuan(against["total_fen"]),
            cost=format_percent(against["cost_bp_of_gmv"]),
            difference=format_yuan(against["difference_fen"]),
        )
    )
    members = Table(title=_t("cli.simulate.members_title"))
    for column in ("member", "total", "active", "difference", "lines"):
        members.add_column(
            _t(f"cli.simulate.col.{column}"), justify="left" if column == "member" else "right"
        )
    for row in result["members"][:20]:
        members.add_row(
            f"{row['name']} ({row['member_id']})",
            format_yuan(row["total_fen"]),
            format_yuan(row["active_fen"]),
            format_yuan(row["difference_fen"]),
            str(row["lines"]),
        )
    console.print(members)
    if lines:
        table = Table(
            title=_t("cli.simulate.lines_title", shown=len(lines), total=result["lines_total"])
        )
        for column in ("order", "sku", "beneficiary", "level", "rule", "rate", "base", "amount"):
            table.add_column(_t(f"cli.simulate.col.{column}"))
        for line in lines:
            table.add_row(
                line["order_id"] or str(line["order_index"]),
                line["sku"],
                line["beneficiary_id"],
                str(line["level"]),
                _rule_text(line),
                format_percent(line["rate_bp"]),
                format_yuan(line["base_fen"]),
                format_yuan(line["amount_fen"]) + (" *" if line["capped"] else ""),
            )
        console.print(table)
    if result["findings"]:
        findings = Table(title=_t("cli.findings"))
        for column in ("severity", "rule", "message", "citation"):
            findings.add_column(_t(f"cli.col.{column}"))
        for finding in result["findings"]:
            colour = "red" if finding["severity"] == "block" else "yellow"
            findings.add_row(
                f"[{colour}]{finding['severity']}[/{colour}]",
                finding["rule"],
                finding["message"],
                finding["citation"],
            )
        console.print(findings)
    else:
        console.print(f"[green]{_t('cli.no_findings')}[/green]")


def _rule_text(line: dict[str, Any]) -> str:
    rule = line["rule"]
    if rule["kind"] == "level":
        scope = (
            rule["scope_kind"]
            if rule["scope_value"] is None
            else (f"{rule['scope_kind']}={rule['scope_value']}")
        )
        return _t("cli.simulate.rule_level", level=line["level"], scope=scope)
    if rule["kind"] == "differential":
        return _t(
            "cli.simulate.rule_differential",
            tier=rule["tier_id"] or "-",
            rate=format_percent(rule["tier_rate_bp"]),
            below=format_percent(rule["below_rate_bp"]),
        )
    return _t("cli.simulate.rule_peer_bonus", tier=rule["tier_id"] or "-")
