"""`shequn community`: what an operator scripts — import groups from CSV, place members, hand
over a leaving staff account, run the badge granter, notice milestones, send the outbox —
with a progress bar over the long work.

The sub-app is built by `community_app`, to which `shequn.entrypoints.cli` hands its localised
command classes and its tenant runner (this module does not import `cli`, which imports it).
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
from rich.table import Table
from typer.core import TyperCommand, TyperGroup

from shequn.community import kpis
from shequn.community.groups import imports, placement
from shequn.community.outbox import dispatcher
from shequn.community.rituals import badges, chronicle
from shequn.community.staff import handover
from shequn.config import load_settings
from shequn.context import Ctx
from shequn.entrypoints.cli_options import (
    DatabaseOption,
    JsonOption,
    OnTenant,
    TenantOption,
    console,
    err_console,
)
from shequn.i18n import translate
from shequn.money import format_percent, format_yuan

HANDOVER_RUN = 500


def _t(key: str, /, **params: object) -> str:
    return translate(key, **params)


CommunityOption = Annotated[
    str, typer.Option("--community", "-c", help=_t("community.cli.opt.community"))
]


def _rows(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    """The rows of a UTF-8 CSV file with a header naming at least `required`."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        err_console.print(_t("community.cli.unreadable", path=str(path), reason=exc.strerror))
        raise typer.Exit(code=2) from None
    except UnicodeDecodeError:
        err_console.print(_t("community.cli.not_utf8", path=str(path)))
        raise typer.Exit(code=2) from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        err_console.print(_t("community.cli.columns_missing", columns=", ".join(missing)))
        raise typer.Exit(code=2)
    return [{k: (v or "").strip() for k, v in row.items() if k} for row in reader]


@contextmanager
def _bar(label: str, total: int) -> Iterator[Callable[[int], None]]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _print(data: Any, as_json: bool, text: str) -> None:
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        console.print(text, soft_wrap=True)


def community_app(
    *, group: type[TyperGroup], command: type[TyperCommand], on_tenant: OnTenant
) -> typer.Typer:
    """The `community` command group."""
    app = typer.Typer(cls=group, no_args_is_help=True, help=_t("community.cli.help.app"))

    @app.command("import-groups", cls=command, help=_t("community.cli.help.import_groups"))
    def import_groups(
        file: Annotated[Path, typer.Argument(help=_t("community.cli.arg.groups_file"))],
        tenant: TenantOption,
        community: CommunityOption,
        venue: Annotated[
            str | None, typer.Option("--venue", help=_t("community.cli.opt.venue"))
        ] = None,
        size_class: Annotated[
            int | None, typer.Option("--size-class", help=_t("community.cli.opt.size_class"))
        ] = None,
        database_url: DatabaseOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Import groups from a CSV file with the columns group, name, member."""
        rows = _rows(file, ("group", "member"))
        groups_total = len({r["group"] for r in rows})

        def run(ctx: Ctx) -> dict[str, Any]:
            with _bar(_t("community.cli.importing"), groups_total) as advance:
                return imports.import_groups(
                    ctx,
                    community_id=community,
                    rows=rows,
                    venue_id=venue,
                    size_class=size_class,
                    progress=advance,
                )

        result = on_tenant(database_url, tenant, run)
        _print(
            result,
            as_json,
            _t(
                "community.cli.imported",
                groups=result["groups"],
                members=result["members"],
                oversize=len(result["oversize"]),
                unknown=len(result["unknown"]),
                duplicates=result["duplicates"],
                already=result["already_placed"],
            ),
        )

    @app.command("place", cls=command, help=_t("community.cli.help.place"))
    def place(
        file: Annotated[Path, typer.Argument(help=_t("community.cli.arg.members_file"))],
        tenant: TenantOption,
        community: CommunityOption,
        policy: Annotated[
            str | None, typer.Option("--policy", help=_t("community.cli.opt.policy"))
        ] = None,
        database_url: DatabaseOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Place the members of a CSV file (member_id, and region or interest) in groups."""
        rows = _rows(file, ("member_id",))
        entries = [
            {
                "member_id": r["member_id"],
                "region": r.get("region") or None,
                "interest": r.get("interest") or None,
            }
            for r in rows
        ]

        def run(ctx: Ctx) -> dict[str, Any]:
            with _bar(_t("community.cli.placing"), len(entries)) as advance:
                return placement.place_members(
                    ctx, community_id=community, entries=entries, policy=policy, progress=advance
                )

        result = on_tenant(database_url, tenant, run)
        _print(
            result,
            as_json,
            _t(
                "community.cli.placed",
                placed=result["placed"],
                already=result["already"],
                unknown=len(result["unknown"]),
                opened=result["opened_groups"],
            ),
        )

    @app.command("handover", cls=command, help=_t("community.cli.help.handover"))
    def hand_over(
        account: Annotated[str, typer.Argument(help=_t("community.cli.arg.account"))],
        tenant: TenantOption,
        fallback: Annotated[
            str | None, typer.Option("--fallback", help=_t("community.cli.opt.fallback"))
        ] = None,
        receiver: Annotated[
            list[str] | None, typer.Option("--receiver", help=_t("community.cli.opt.receiver"))
        ] = None,
        database_url: DatabaseOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Hand over a leaving staff account's members and groups (run it again to go on)."""

        def run(ctx: Ctx) -> dict[str, Any]:
            from shequn.community.staff.service import get_account

            total = int(get_account(ctx, account_id=account)["member_count"])
            after: str | None = None
            summary: dict[str, Any] = {}
            with _bar(_t("community.cli.handing_over"), total) as advance:
                while True:
                    summary = handover.hand_over(
                        ctx,
                        account_id=account,
                        fallback_account_id=fallback,
                        receivers=receiver or None,
                        after=after,
                        limit=HANDOVER_RUN,
                    )
                    advance(HANDOVER_RUN if summary["next_after"] else total)
                    after = summary["next_after"]
                    if after is None:
                        return summary

        result = on_tenant(database_url, tenant, run)
        members = result["members"]
        _print(
            result,
            as_json,
            _t(
                "community.cli.handed_over",
                id=result["id"],
                status=result["status"],
                pending=members["pending"],
                accepted=members["accepted"],
                waiting=members["waiting"],
                groups=result["groups"]["accepted"],
                groups_waiting=result["groups"]["waiting"],
            ),
        )
        if not as_json and result["waiting"]:
            table = Table(title=_t("community.cli.waiting"))
            for column in ("kind", "subject", "reason", "not_before"):
                table.add_column(_t(f"community.cli.col.{column}"))
            for w in result["waiting"]:
                table.add_row(
                    w["kind"],
                    w["subject_id"],
                    _t(f"community.wait.{w['reason']}"),
                    str(w["not_before"] or "-"),
                )
            console.print(table)

    @app.command("grant-badges", cls=command, help=_t("community.cli.help.grant_badges"))
    def grant(
        tenant: TenantOption, database_url: DatabaseOption = None, as_json: JsonOption = False
    ) -> None:
        """Run every automatic badge now."""
        result = on_tenant(database_url, tenant, badges.grant_badges)
        _print(result, as_json, _t("community.cli.granted", total=result["total"]))

    @app.command("milestones", cls=command, help=_t("community.cli.help.milestones"))
    def milestones(
        tenant: TenantOption,
        community: CommunityOption,
        database_url: DatabaseOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Notice the milestones a community reached, into its chronicle."""
        result = on_tenant(
            database_url,
            tenant,
            lambda ctx: chronicle.refresh_milestones(ctx, community_id=community),
        )
        _print(result, as_json, _t("community.cli.milestones", written=result["written"]))

    @app.command("kpis", cls=command, help=_t("community.cli.help.kpis"))
    def staff_kpis(
        tenant: TenantOption,
        days: Annotated[int, typer.Option("--days", min=1, max=366)] = 30,
        database_url: DatabaseOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """KPIs per staff account."""
        rows = on_tenant(database_url, tenant, lambda ctx: kpis.staff_kpis(ctx, days=days))
        if as_json:
            _print(rows, True, "")
            return
        table = Table(title=_t("community.cli.kpis", days=days))
        for column in ("account", "members", "load", "active", "gmv", "replies", "reply_time"):
            table.add_column(_t(f"community.cli.col.{column}"))
        for r in rows:
            table.add_row(
                r["name"],
                str(r["members"]),
                format_percent(r["load_bp"]) + (" ⚠" if r["near_full"] else ""),
                str(r["active_members"]),
                format_yuan(r["attributed_gmv_fen"]),
                str(r["replies"]),
                "-" if r["avg_reply_seconds"] is None else f"{r['avg_reply_seconds']} s",
            )
        console.print(table)

    @app.command("outbox-deliver", cls=command, help=_t("community.cli.help.outbox_deliver"))
    def outbox_deliver(
        tenant: TenantOption, database_url: DatabaseOption = None, as_json: JsonOption = False
    ) -> None:
        """Send the due messages of signed-webhook channels until none is due."""
        settings = load_settings()
        result = on_tenant(
            database_url,
            tenant,
            lambda ctx: dispatcher.dispatch_all(
                ctx.db,
                server_key=settings.secret_key,
                clock=ctx.clock,
                tenant_id=ctx.tenant_id,
                allow_private=settings.webhook_allow_private_hosts,
            ).as_dict(),
        )
        _print(result, as_json, _t("community.cli.delivered", **result))

    return app
