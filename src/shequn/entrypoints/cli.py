"""The `shequn` command line."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer import rich_utils
from typer.core import TyperCommand, TyperGroup, TyperOption

from shequn import __version__
from shequn.clock import ManualClock, SystemClock
from shequn.config import load_settings
from shequn.context import Ctx
from shequn.db import Database, retrying
from shequn.entrypoints import parser_messages
from shequn.entrypoints.cli_community import community_app
from shequn.entrypoints.cli_community_ops import community_ops_app
from shequn.entrypoints.cli_console import demo_logins, users_app
from shequn.entrypoints.cli_growth import points_app
from shequn.entrypoints.cli_options import (
    DatabaseOption,
    JsonOption,
    TenantOption,
    console,
    err_console,
    setup_locale,
)
from shequn.entrypoints.cli_tiers import tier_commands
from shequn.entrypoints.cli_transfer import declare_transfer_commands
from shequn.entrypoints.cli_webhooks import webhooks_app
from shequn.entrypoints.rendering import error_message, findings_shown
from shequn.errors import DomainError
from shequn.i18n import get_locale, translate
from shequn.money import format_percent, format_yuan
from shequn.schema import DatabaseProblem, prepare_database, require_current_database

T = TypeVar("T")


def _t(key: str, /, **params: Any) -> str:
    return translate(key, **params)


def _localise_help_screens() -> None:
    """Typer draws its help panels from module constants; give them the chosen language."""
    rich_utils.ARGUMENTS_PANEL_TITLE = _t("cli.panel.arguments")
    rich_utils.COMMANDS_PANEL_TITLE = _t("cli.panel.commands")
    rich_utils.OPTIONS_PANEL_TITLE = _t("cli.panel.options")
    rich_utils.ERRORS_PANEL_TITLE = _t("cli.panel.error")
    rich_utils.ABORTED_TEXT = _t("cli.aborted")
    rich_utils.DEFAULT_STRING = _t("cli.default", value="{}")
    rich_utils.ENVVAR_STRING = _t("cli.envvar", name="{}")
    rich_utils.REQUIRED_LONG_STRING = _t("cli.required")
    rich_utils.DEPRECATED_STRING = _t("cli.deprecated")
    rich_utils.RICH_HELP = _t("cli.parser.rich_try_help")


def _choose_language() -> None:
    setup_locale()
    _localise_help_screens()


def _help_in_locale(option: TyperOption | None) -> TyperOption | None:
    if option is not None:
        option.help = _t("cli.opt.help")
    return option


def _write_usage(command: Any, ctx: Any, formatter: Any) -> None:
    pieces = command.collect_usage_pieces(ctx)
    formatter.write_usage(ctx.command_path, " ".join(pieces), prefix=_t("cli.parser.usage"))


class _Group(TyperGroup):
    """A command group whose usage line and `--help` option are in the chosen language."""

    def get_help_option(self, ctx: Any) -> TyperOption | None:
        return _help_in_locale(super().get_help_option(ctx))

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        _write_usage(self, ctx, formatter)


class _Command(TyperCommand):
    """A command whose usage line and `--help` option are in the chosen language."""

    def get_help_option(self, ctx: Any) -> TyperOption | None:
        return _help_in_locale(super().get_help_option(ctx))

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        _write_usage(self, ctx, formatter)


# Help texts are rendered when the commands are declared, so the language is chosen first.
_choose_language()
parser_messages.install(before=_choose_language)

app = typer.Typer(cls=_Group, no_args_is_help=True, add_completion=False, help=_t("cli.help.app"))
tenant_app = typer.Typer(cls=_Group, no_args_is_help=True, help=_t("cli.help.tenant"))
key_app = typer.Typer(cls=_Group, no_args_is_help=True, help=_t("cli.help.key"))
ledger_app = typer.Typer(cls=_Group, no_args_is_help=True, help=_t("cli.help.ledger"))
app.add_typer(tenant_app, name="tenant")
app.add_typer(key_app, name="key")
app.add_typer(ledger_app, name="ledger")


def _database_problem(problem: DatabaseProblem) -> NoReturn:
    err_console.print(
        f"[red]{problem.code}[/red]: {_t(f'error.{problem.code}', **problem.params)}",
        soft_wrap=True,
    )
    raise typer.Exit(code=2)


def _usable(url: str | None, *, writable: bool) -> str:
    """The database URL to use: a command that writes creates the database or brings it to
    the current schema; one that only reads refuses a database that does not exist or is not
    current, and creates nothing. An unusable one ends the command with one line."""
    resolved = url or load_settings().database_url
    try:
        if writable:
            prepare_database(resolved)
        else:
            require_current_database(resolved)
    except DatabaseProblem as problem:
        _database_problem(problem)
    return resolved


@contextmanager
def _database(url: str | None, *, writable: bool = True) -> Iterator[Database]:
    """The database, closed when the command is done."""
    db = Database.from_url(_usable(url, writable=writable), pool_size=2)
    try:
        yield db
    finally:
        db.dispose()


@contextmanager
def _ctx(url: str | None, tenant: str, *, writable: bool = True) -> Iterator[Ctx]:
    """Act on one tenant, which must exist (a mistyped id is an error, not an empty answer)."""
    from shequn.tenancy.service import require_tenant

    with _database(url, writable=writable) as db:
        require_tenant(db=db, tenant_id=tenant)
        yield Ctx(db=db, clock=SystemClock(), tenant_id=tenant, actor="cli")


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, default=str, indent=2))


def _error_text(exc: DomainError) -> str:
    return error_message(exc)


def _fail(exc: DomainError) -> NoReturn:
    err_console.print(f"[red]{exc.code}[/red]: {_error_text(exc)}", soft_wrap=True)
    raise typer.Exit(code=2)


def _on_tenant(
    url: str | None, tenant: str, use_case: Callable[[Ctx], T], *, writable: bool = True
) -> T:
    """Run one use case for one tenant; a domain error ends the command with exit code 2."""
    try:
        with _ctx(url, tenant, writable=writable) as ctx:
            return retrying(use_case, ctx)
    except DomainError as exc:
        _fail(exc)


def _on_every_tenant(
    url: str | None, use_case: Callable[[Ctx], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Run one use case for every tenant, each in its own transaction so that one tenant's
    trouble does not hold up the others: `{tenant_id, **result}`, or `{tenant_id, error,
    message}` for a tenant whose use case was refused."""
    from shequn.tenancy.service import list_tenants

    results: list[dict[str, Any]] = []
    with _database(url) as db:
        for row in list_tenants(db=db):
            ctx = Ctx(db=db, clock=SystemClock(), tenant_id=row["tenant_id"], actor="cli")
            try:
                results.append({"tenant_id": ctx.tenant_id, **retrying(use_case, ctx)})
            except DomainError as exc:
                results.append(
                    {"tenant_id": ctx.tenant_id, "error": exc.code, "message": _error_text(exc)}
                )
    return results


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"shequn {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_show_version, help=_t("cli.opt.version")
        ),
    ] = False,
) -> None:
    setup_locale()


@app.command(cls=_Command, help=_t("cli.help.init"))
def init(database_url: DatabaseOption = None) -> None:
    """Create or upgrade the database schema."""
    url = _usable(database_url, writable=True)
    console.print(_t("cli.init_done", url=url))


@app.command(cls=_Command, help=_t("cli.help.serve"))
def serve(
    host: Annotated[str, typer.Option(help=_t("cli.opt.host"))] = "127.0.0.1",
    port: Annotated[int, typer.Option(help=_t("cli.opt.port"))] = 8000,
    workers: Annotated[int | None, typer.Option(help=_t("cli.opt.workers"))] = None,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help=_t("cli.opt.access_log"))
    ] = True,
    deliver_webhooks: Annotated[
        bool,
        typer.Option("--deliver-webhooks/--no-deliver-webhooks", help=_t("cli.opt.deliver")),
    ] = True,
    database_url: DatabaseOption = None,
) -> None:
    """Serve the REST API."""
    from shequn.entrypoints.server import ServerOptions, WorkersKeepDying, default_workers
    from shequn.entrypoints.server import serve as run_server

    url = _usable(database_url, writable=True)
    os.environ["SHEQUN_DATABASE_URL"] = url
    console.print(_t("cli.serving", host=host, port=port))
    try:
        with _webhook_delivery(url, enabled=deliver_webhooks), _growth_following(url):
            run_server(
                ServerOptions(
                    host=host,
                    port=port,
                    workers=workers if workers is not None else default_workers(),
                    access_log=access_log,
                )
            )
    except OSError as exc:
        console.print(_t("cli.serve_failed", host=host, port=port, reason=exc.strerror or exc))
        raise typer.Exit(1) from None
    except WorkersKeepDying:
        console.print(_t("cli.workers_keep_dying"))
        raise typer.Exit(1) from None


@tenant_app.command("create", cls=_Command, help=_t("cli.help.tenant_create"))
def tenant_create(
    name: str, database_url: DatabaseOption = None, as_json: JsonOption = False
) -> None:
    """Create a tenant and print its owner API key (shown once)."""
    from shequn.tenancy.service import create_tenant

    try:
        with _database(database_url) as db:
            tenant_id, api_key = create_tenant(db=db, clock=SystemClock(), name=name)
    except DomainError as exc:
        _fail(exc)
    if as_json:
        _print_json({"tenant_id": tenant_id, "api_key": api_key})
    else:
        console.print(_t("cli.tenant_created", tenant_id=tenant_id))
        console.print(_t("cli.api_key_once", api_key=api_key), soft_wrap=True)


@tenant_app.command("list", cls=_Command, help=_t("cli.help.tenant_list"))
def tenant_list(database_url: DatabaseOption = None, as_json: JsonOption = False) -> None:
    """List tenants."""
    from shequn.tenancy.service import list_tenants

    with _database(database_url, writable=False) as db:
        rows = list_tenants(db=db)
    if as_json:
        _print_json(rows)
        return
    table = Table(title=_t("cli.tenants"))
    # Ids are copied into the next command: never shortened, whatever the width.
    table.add_column(_t("cli.col.tenant_id"), no_wrap=True, min_width=29, overflow="ignore")
    table.add_column(_t("cli.col.name"))
    table.add_column(_t("cli.col.created_at"))
    for row in rows:
        zone = ZoneInfo(row["time_zone"])
        created = row["created_at"].astimezone(zone)
        table.add_row(row["tenant_id"], row["name"], f"{created:%Y-%m-%d %H:%M} ({zone.key})")
    console.print(table)


@key_app.command("create", cls=_Command, help=_t("cli.help.key_create"))
def key_create(
    tenant: TenantOption,
    name: Annotated[str, typer.Option(help=_t("cli.opt.key_name"))],
    role: Annotated[str, typer.Option(help=_t("cli.opt.role"))] = "operator",
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue an API key for a tenant."""
    from shequn.tenancy.service import create_api_key

    key = _on_tenant(database_url, tenant, lambda ctx: create_api_key(ctx, name=name, role=role))
    if as_json:
        _print_json(key)
    else:
        console.print(_t("cli.api_key_once", api_key=key["api_key"]), soft_wrap=True)


@key_app.command("list", cls=_Command, help=_t("cli.help.key_list"))
def key_list(
    tenant: TenantOption, database_url: DatabaseOption = None, as_json: JsonOption = False
) -> None:
    """List a tenant's API keys (never the keys themselves)."""
    from shequn.tenancy.service import list_api_keys

    rows = _on_tenant(database_url, tenant, list_api_keys, writable=False)
    if as_json:
        _print_json(rows)
        return
    table = Table(title=_t("cli.api_keys"))
    for column in ("id", "name", "role", "key_prefix", "revoked_at"):
        if column == "id":
            table.add_column(_t("cli.col.id"), no_wrap=True, min_width=30, overflow="ignore")
        else:
            table.add_column(_t(f"cli.col.{column}"))
    for row in rows:
        table.add_row(
            row["id"],
            row["name"],
            row["role"],
            row["key_prefix"] + "…",
            str(row["revoked_at"] or ""),
        )
    console.print(table)


@key_app.command("revoke", cls=_Command, help=_t("cli.help.key_revoke"))
def key_revoke(tenant: TenantOption, key_id: str, database_url: DatabaseOption = None) -> None:
    """Revoke an API key."""
    from shequn.tenancy.service import revoke_api_key

    _on_tenant(database_url, tenant, lambda ctx: revoke_api_key(ctx, key_id=key_id))
    console.print(_t("cli.key_revoked", key_id=key_id))


@app.command(cls=_Command, help=_t("cli.help.settle"))
def settle(
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
    """Close orders past the after-sales window and release their commissions."""
    from shequn.flows.growth_settlement import settle_with_growth as run_settlement

    if (tenant is None) == (not all_tenants):
        err_console.print(f"[red]{_t('cli.settle_target')}[/red]")
        raise typer.Exit(code=2)
    if tenant is not None:
        result = _on_tenant(database_url, tenant, run_settlement)
        if as_json:
            _print_json(result)
        else:
            console.print(_settled_line(result))
        return
    results = _on_every_tenant(database_url, run_settlement)
    failed = sum(1 for item in results if "error" in item)
    if as_json:
        _print_json(results)
    else:
        for item in results:
            if "error" in item:
                err_console.print(
                    f"{item['tenant_id']}: [red]{item['error']}[/red] {item['message']}"
                )
            else:
                console.print(f"{item['tenant_id']}: {_settled_line(item)}")
    if failed:
        raise typer.Exit(code=1)


def _settled_line(result: dict[str, Any]) -> str:
    return _t(
        "cli.settled",
        cancelled=result["orders_cancelled"],
        closed=result["orders_closed"],
        completed=result["orders_completed"],
        lines=result["commissions_released"],
        amount=format_yuan(result["released_fen"]),
    )


@app.command(cls=_Command, help=_t("cli.help.compliance"))
def compliance(
    tenant: TenantOption, database_url: DatabaseOption = None, as_json: JsonOption = False
) -> None:
    """Report compliance findings for the active plan and the live data."""
    from shequn.compliance.service import compliance_report

    report = findings_shown(_on_tenant(database_url, tenant, compliance_report, writable=False))
    if as_json:
        _print_json(report)
        return
    _print_compliance(report)


def _figure(key: str, value: Any) -> str:
    """A figure as a person reads it: amounts in ¥, rates in %."""
    if isinstance(value, int) and key.endswith("_fen"):
        return format_yuan(value)
    if isinstance(value, int) and key.endswith("_bp"):
        return format_percent(value)
    return str(value)


def _print_compliance(report: dict[str, Any]) -> None:
    console.print(
        _t(
            "cli.compliance_profile",
            profile=report["profile"],
            cap=format_percent(report["cap_bp"]),
        )
    )
    if not report["findings"]:
        console.print(f"[green]{_t('cli.no_findings')}[/green]")
    else:
        table = Table(title=_t("cli.findings"))
        for column in ("severity", "rule", "message", "citation"):
            # Messages and citations wrap: a reader needs all of them, whatever the width.
            table.add_column(_t(f"cli.col.{column}"), overflow="fold")
        for finding in report["findings"]:
            colour = "red" if finding["severity"] == "block" else "yellow"
            severity = _t(f"cli.severity.{finding['severity']}")
            table.add_row(
                f"[{colour}]{severity}[/{colour}]",
                finding["rule"],
                finding["message"],
                finding["citation"],
            )
        console.print(table)
    live = Table(title=_t("cli.live_figures"))
    live.add_column(_t("cli.col.figure"))
    live.add_column(_t("cli.col.value"), justify="right")
    for key, value in report["live"].items():
        live.add_row(_t(f"cli.live.{key}"), _figure(key, value))
    console.print(live)
    rows = Table(title=_t("cli.live_report"))
    for column in ("severity", "message", "citation"):
        rows.add_column(_t(f"cli.col.{column}"), overflow="fold")
    colours = {"ok": "green", "warn": "yellow", "block": "red"}
    for row in report.get("live_rows", []):
        colour = colours[row["state"]]
        state = _t(f"cli.severity.{row['state']}")
        rows.add_row(f"[{colour}]{state}[/{colour}]", row["message"], row["citation"])
    console.print(rows)


@ledger_app.command("verify", cls=_Command, help=_t("cli.help.ledger_verify"))
def ledger_verify(tenant: TenantOption, database_url: DatabaseOption = None) -> None:
    """Check every cached balance against its postings and every transaction's zero sum."""
    from shequn.ledger.service import verify_ledger_of

    result = _on_tenant(database_url, tenant, verify_ledger_of, writable=False)
    if not result["ok"]:
        err_console.print(
            _t(
                "cli.ledger_bad",
                mismatches=len(result["mismatches"]),
                unbalanced=len(result["unbalanced"]),
                negative=len(result["negative_pending"]),
            )
        )
        raise typer.Exit(code=1)
    console.print(f"[green]{_t('cli.ledger_ok')}[/green]")


@app.command(cls=_Command, help=_t("cli.help.demo"))
def demo(
    port: Annotated[int, typer.Option(help=_t("cli.opt.port"))] = 8000,
    members: Annotated[int, typer.Option(help=_t("cli.opt.members"))] = 300,
    days: Annotated[int, typer.Option(help=_t("cli.opt.days"))] = 60,
    database: Annotated[Path, typer.Option(help=_t("cli.opt.database"))] = Path("shequn-demo.db"),
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve", help=_t("cli.opt.serve"))] = True,
) -> None:
    """Create a fresh demo database, print a summary and serve the API on 127.0.0.1."""
    from shequn.simulate import simulate

    if serve_api and not _port_free("127.0.0.1", port):
        err_console.print(
            _t("cli.port_taken", host="127.0.0.1", port=port, other=port + 1), soft_wrap=True
        )
        raise typer.Exit(code=2)
    database = database.resolve()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    url = _usable(f"sqlite:///{database}", writable=True)
    db = Database.from_url(url, pool_size=2)
    now = datetime.now(UTC).replace(microsecond=0)
    clock = ManualClock(now - timedelta(days=days))
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(_t(f"cli.demo_stage.{stage}"), total=total)
            bar.update(tasks[stage], completed=done)

        try:
            result = simulate(
                db=db,
                clock=clock,
                members=members,
                days=days,
                locale=get_locale(),
                progress=progress,
            )
            clock.set(now)
            _print_summary(Ctx(db=db, clock=clock, tenant_id=result.tenant_id, actor="demo"))
            logins = demo_logins(Ctx(db=db, clock=clock, tenant_id=result.tenant_id, actor="demo"))
        finally:
            db.dispose()
    console.print(_t("cli.tenant_created", tenant_id=result.tenant_id))
    console.print(_t("cli.api_key_once", api_key=result.api_key), soft_wrap=True)
    console.print(_t("cli.demo_database", url=url), soft_wrap=True)
    console.print(_t("cli.demo_use_database", url=url, tenant_id=result.tenant_id), soft_wrap=True)
    console.print(
        _t("cli.demo_console", port=port, login=logins["login"], password=logins["password"]),
        soft_wrap=True,
    )
    if "phone" in logins:
        console.print(
            _t(
                "cli.demo_portal",
                port=port,
                tenant_id=result.tenant_id,
                phone=logins["phone"],
                password=logins["portal_password"],
            ),
            soft_wrap=True,
        )
    if not serve_api:
        return
    import uvicorn

    os.environ["SHEQUN_DATABASE_URL"] = url
    console.print(_t("cli.serving", host="127.0.0.1", port=port))
    console.print(_t("cli.demo_try", port=port, api_key=result.api_key), soft_wrap=True)
    console.print(_t("cli.demo_docs", port=port), soft_wrap=True)
    with _webhook_delivery(url, enabled=True), _growth_following(url):
        uvicorn.run(
            "shequn.entrypoints.app:app_from_environment",
            factory=True,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
        )


@contextmanager
def _webhook_delivery(url: str, *, enabled: bool) -> Iterator[None]:
    """Webhook deliveries sent by one worker thread of this process while the server runs
    (whatever the number of server workers, so that each delivery has one sender)."""
    if not enabled:
        yield
        return
    from shequn.webhooks.worker import start_delivery_worker

    settings = load_settings()
    db = Database.from_url(url, pool_size=2)
    running = start_delivery_worker(db, server_key=settings.secret_key)
    try:
        yield
    finally:
        running.stop(timeout=30)
        db.dispose()


@contextmanager
def _growth_following(url: str) -> Iterator[None]:
    """Growth stages moved by one follower thread of this process while the server runs,
    a pass every SHEQUN_GROWTH_FOLLOW_SECONDS (`shequn.flows.growth_path_follower`)."""
    from shequn.flows.growth_path_follower import follow_interval, start_growth_follower

    db = Database.from_url(url, pool_size=2)
    running = start_growth_follower(db, interval=follow_interval(os.environ))
    try:
        yield
    finally:
        running.stop(timeout=30)
        db.dispose()


def _port_free(host: str, port: int) -> bool:
    """Whether a server could listen on (host, port) now."""
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _print_summary(ctx: Ctx) -> None:
    from shequn.compliance.service import compliance_report
    from shequn.insights.summary import tenant_summary

    summary = tenant_summary(ctx)
    table = Table(title=_t("cli.demo_summary"))
    table.add_column(_t("cli.col.figure"))
    table.add_column(_t("cli.col.value"), justify="right")
    for key, value in summary["figures"]:
        shown = _figure(key, value)
        table.add_row(_t(f"cli.summary.{key}"), shown)
    console.print(table)
    earners = Table(title=_t("cli.top_earners"))
    for column in ("name", "tier", "team_count", "earned", "available"):
        earners.add_column(_t(f"cli.col.{column}"))
    for row in summary["top_earners"]:
        earners.add_row(
            row["name"],
            row["tier"] or "-",
            str(row["team_count"]),
            format_yuan(row["earned_fen"]),
            format_yuan(row["available_fen"]),
        )
    console.print(earners)
    _print_compliance(findings_shown(compliance_report(ctx)))


app.add_typer(webhooks_app(group=_Group, command=_Command, database=_database), name="webhooks")
app.add_typer(tier_commands(group=_Group, command=_Command, database=_database))
app.add_typer(users_app(group=_Group, command=_Command, on_tenant=_on_tenant), name="user")
declare_transfer_commands(app, command=_Command, on_tenant=_on_tenant)
app.add_typer(community_app(group=_Group, command=_Command, on_tenant=_on_tenant), name="community")
app.add_typer(
    community_ops_app(group=_Group, command=_Command, on_tenant=_on_tenant), name="community-ops"
)
app.add_typer(
    points_app(
        group=_Group, command=_Command, on_tenant=_on_tenant, on_every_tenant=_on_every_tenant
    ),
    name="points",
)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
