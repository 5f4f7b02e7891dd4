"""The `shequn` command line, driven through Typer's runner: exit codes, exact JSON, and keys
that work over HTTP. SQLite runs on a temporary file of its own; PostgreSQL on the session's
test database. `demo` always builds a SQLite file (that is what it is for)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, update
from typer.testing import CliRunner, Result

from shequn.clock import ManualClock
from shequn.config import Settings
from shequn.context import Ctx
from shequn.db import Database
from shequn.entrypoints.app import create_app
from shequn.entrypoints.cli import app as cli
from shequn.ledger.tables import accounts
from shequn.schema import all_metadata, upgrade_database
from shequn.settlement.service import run_settlement
from tests import factories as f
from tests.e2e.conftest import API, bearer, error_of, expect

# The CLI reads the system clock; data made at an instant long past is always "old enough".
PAST = datetime(2020, 3, 2, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Target:
    url: str
    db: Database


@pytest.fixture
def target(db: Database, tmp_path: Path) -> Iterator[Target]:
    """The database the CLI is pointed at: a fresh SQLite file, or the PostgreSQL test database."""
    if db.is_postgres:
        yield Target(db.engine.url.render_as_string(hide_password=False), db)
        return
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade_database(url)
    own = Database.from_url(url, pool_size=2)
    yield Target(url, own)
    own.dispose()


@pytest.fixture
def http(target: Target) -> Iterator[TestClient]:
    settings = Settings(environment="test", api_key_cache_seconds=0, database_url=target.url)
    with TestClient(create_app(settings, db=target.db), raise_server_exceptions=False) as client:
        yield client


def run(*args: str, locale: str = "en", env: dict[str, str] | None = None) -> Result:
    """Invoke the CLI in-process (each command disposes the engine it opened)."""
    return CliRunner().invoke(
        cli, list(args), env={"SHEQUN_LOCALE": locale, "COLUMNS": "200", **(env or {})}
    )


def run_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, (result.exit_code, result.output)
    return json.loads(result.stdout)


def new_tenant(target: Target, name: str = "命令行品牌 CLI brand") -> dict[str, str]:
    created: dict[str, str] = run_json("tenant", "create", name, "--database-url", target.url)
    return created


def test_init_creates_every_table(tmp_path: Path, target: Target) -> None:
    # on a file that does not exist yet (and, on PostgreSQL, again on an up-to-date database)
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    url = target.url if target.db.is_postgres else fresh
    result = run("init", "--database-url", url)
    assert (result.exit_code, result.stdout.strip()) == (0, f"Database ready: {url}")
    database = Database.from_url(url, pool_size=1)
    try:
        tables = set(inspect(database.engine).get_table_names())
    finally:
        database.dispose()
    assert set(all_metadata().tables) <= tables


def test_tenant_create_prints_exactly_the_id_and_a_key_that_works(
    target: Target, http: TestClient
) -> None:
    result = run("tenant", "create", "命令行品牌 CLI brand", "--database-url", target.url, "--json")
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert set(created) == {"tenant_id", "api_key"}
    assert created["tenant_id"].startswith("tn_")
    assert created["api_key"].startswith("sk_")

    settings = expect(http.get(f"{API}/settings", headers=bearer(created["api_key"])), 200)
    assert settings["tenant_id"] == created["tenant_id"]
    member = expect(
        http.post(f"{API}/members", json={"name": "甲"}, headers=bearer(created["api_key"])), 201
    )
    assert member["id"].startswith("mem_")


def test_tenant_create_without_json_shows_the_key_once(target: Target) -> None:
    result = run("tenant", "create", "Plain", "--database-url", target.url)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"Tenant: tn_\w+", lines[0])
    assert re.fullmatch(r"API key \(shown once, keep it safe\): sk_[\w-]+", lines[1])


def test_tenant_list_shows_every_tenant(target: Target) -> None:
    first = new_tenant(target, "甲品牌")
    second = new_tenant(target, "乙品牌")

    listed = run_json("tenant", "list", "--database-url", target.url)

    mine = [t for t in listed if t["tenant_id"] in (first["tenant_id"], second["tenant_id"])]
    assert [(t["tenant_id"], t["name"]) for t in mine] == [
        (first["tenant_id"], "甲品牌"),
        (second["tenant_id"], "乙品牌"),
    ]
    assert {frozenset(t) for t in listed} == {
        frozenset({"tenant_id", "name", "created_at", "time_zone"})
    }
    assert {t["time_zone"] for t in mine} == {"Asia/Shanghai"}
    # the table form, with the database named only by the environment variable, and the
    # creation time where the tenant lives
    table = run("tenant", "list", env={"SHEQUN_DATABASE_URL": target.url})
    assert table.exit_code == 0, table.output
    assert first["tenant_id"] in table.stdout
    assert "乙品牌" in table.stdout
    created = datetime.fromisoformat(mine[0]["created_at"]).astimezone(ZoneInfo("Asia/Shanghai"))
    assert f"{created:%Y-%m-%d %H:%M} (Asia/Shanghai)" in table.stdout


def test_key_create_list_and_revoke(target: Target, http: TestClient) -> None:
    tenant = new_tenant(target)
    t, url = tenant["tenant_id"], target.url

    # when a read-only key is issued
    issued = run_json(
        "key", "create", "-t", t, "--name", "看板", "--role", "readonly", "--database-url", url
    )

    # then it is shown once, reads but cannot write
    assert set(issued) == {"id", "name", "role", "api_key"}
    assert (issued["name"], issued["role"]) == ("看板", "readonly")
    assert http.get(f"{API}/members", headers=bearer(issued["api_key"])).status_code == 200
    refused = http.post(f"{API}/members", json={"name": "x"}, headers=bearer(issued["api_key"]))
    assert error_of(refused) == (403, "permission_denied")

    # and the list names both keys, never a key itself
    listed = run_json("key", "list", "-t", t, "--database-url", url)
    assert [(k["name"], k["role"], k["revoked_at"]) for k in listed] == [
        ("owner", "owner", None),
        ("看板", "readonly", None),
    ]
    assert {frozenset(k) for k in listed} == {
        frozenset({"id", "name", "role", "key_prefix", "created_at", "revoked_at"})
    }
    assert listed[1]["key_prefix"] == issued["api_key"][:10]
    assert issued["api_key"] not in json.dumps(listed)

    # when it is revoked, it stops working
    revoked = run("key", "revoke", "-t", t, issued["id"], "--database-url", url)
    assert (revoked.exit_code, revoked.stdout.strip()) == (0, f"Revoked {issued['id']}")
    answer = http.get(f"{API}/members", headers=bearer(issued["api_key"]))
    assert error_of(answer) == (401, "api_key_invalid")
    assert run_json("key", "list", "-t", t, "--database-url", url)[1]["revoked_at"] is not None
    assert http.get(f"{API}/members", headers=bearer(tenant["api_key"])).status_code == 200


def test_the_last_owner_key_is_kept(target: Target) -> None:
    tenant = new_tenant(target)
    owner = run_json("key", "list", "-t", tenant["tenant_id"], "--database-url", target.url)[0]
    result = run(
        "key", "revoke", "-t", tenant["tenant_id"], owner["id"], "--database-url", target.url
    )
    assert result.exit_code == 2
    assert result.stderr == "last_owner_key: The last owner key cannot be revoked.\n"


def test_an_unknown_role_is_refused(target: Target) -> None:
    tenant = new_tenant(target)
    result = run(
        "key",
        "create",
        "-t",
        tenant["tenant_id"],
        "--name",
        "x",
        "--role",
        "god",
        "--database-url",
        target.url,
    )
    assert result.exit_code == 2
    assert result.stderr == "role_invalid: Role must be owner, operator or readonly (got 'god').\n"


def community_with_a_completed_order(target: Target, tenant_id: str) -> Ctx:
    """grandparent ← parent ← buyer, a 10 %/5 % plan, a 0-day window and one order of 9900 fen,
    paid, shipped and completed long ago."""
    ctx = Ctx(db=target.db, clock=ManualClock(PAST), tenant_id=tenant_id, actor="test")
    from shequn.flows.settings import update_settings

    update_settings(ctx, patch={"after_sales_days": 0})
    _, _, buyer = f.chain(ctx, 3)
    f.product(ctx, price_fen=9_900)
    f.two_level_plan(ctx)
    f.completed_order(ctx, buyer)
    return ctx


def test_settle_twice_releases_once(target: Target, http: TestClient) -> None:
    tenant = new_tenant(target)
    community_with_a_completed_order(target, tenant["tenant_id"])

    first = run_json("settle", "-t", tenant["tenant_id"], "--database-url", target.url)
    second = run_json("settle", "-t", tenant["tenant_id"], "--database-url", target.url)

    expected_keys = {
        "run_id",
        "orders_cancelled",
        "orders_completed",
        "orders_closed",
        "commissions_released",
        "released_fen",
        "growth",  # what the growth sweep did around the settlement
    }
    assert set(first) == set(second) == expected_keys
    assert first["run_id"] != second["run_id"]
    assert {k: v for k, v in first.items() if k not in ("run_id", "growth")} == {
        "orders_cancelled": 0,
        "orders_completed": 0,
        "orders_closed": 1,
        "commissions_released": 2,
        "released_fen": 1_485,
    }
    assert {k: v for k, v in second.items() if k not in ("run_id", "growth")} == {
        "orders_cancelled": 0,
        "orders_completed": 0,
        "orders_closed": 0,
        "commissions_released": 0,
        "released_fen": 0,
    }
    orders = expect(http.get(f"{API}/orders", headers=bearer(tenant["api_key"])), 200)["items"]
    assert [o["status"] for o in orders] == ["closed"]


def test_settle_without_json_says_what_it_did(target: Target) -> None:
    tenant = new_tenant(target)
    community_with_a_completed_order(target, tenant["tenant_id"])
    result = run("settle", "-t", tenant["tenant_id"], "--database-url", target.url)
    assert result.exit_code == 0, result.output
    assert " ".join(result.stdout.split()) == (
        "Settlement: 0 unpaid orders cancelled, 0 auto-completed, 1 closed,"
        " 2 commission lines released (¥14.85)"
    )


def test_compliance_reports_the_plan_and_the_live_figures(target: Target) -> None:
    tenant = new_tenant(target)
    ctx = community_with_a_completed_order(target, tenant["tenant_id"])
    run_settlement(ctx)

    report = run_json("compliance", "-t", tenant["tenant_id"], "--database-url", target.url)

    assert set(report) == {"profile", "active_plan_id", "cap_bp", "findings", "live", "live_rows"}
    assert [(r["figure"], r["value"]) for r in report["live_rows"]] == [
        ("deepest_earning_chain", 2),
        ("members_in_chains_of_3_plus", 3),
        ("recruitment_income_share", 0),
        ("stock_entry_condition", 0),
    ]
    assert report["active_plan_id"].startswith("plan_")
    assert (report["profile"], report["cap_bp"], report["findings"]) == ("wechat", 3_000, [])
    assert report["live"] == {
        "deepest_earning_level": 2,
        "deepest_referral_levels": 3,
        "members_in_chains_of_3_plus": 3,
        "member_income_fen": 1_485,
        "recruitment_income_fen": 0,
        "recruitment_income_share_bp": 0,
    }
    table = run("compliance", "-t", tenant["tenant_id"], "--database-url", target.url)
    assert table.exit_code == 0, table.output
    assert "Compliance profile: wechat (cap on one sale: 30.0%)" in table.stdout
    assert "Live report" in table.stdout
    # in a narrow terminal every message wraps whole, and states are words of the language
    narrow = run(
        "compliance",
        "-t",
        tenant["tenant_id"],
        "--database-url",
        target.url,
        locale="zh_CN",
        env={"COLUMNS": "80"},
    )
    assert narrow.exit_code == 0, narrow.output
    assert "…" not in narrow.stdout
    assert "正常" in narrow.stdout
    assert "ok" not in narrow.stdout


def test_ledger_verify_passes_and_catches_a_tampered_balance(target: Target) -> None:
    tenant = new_tenant(target)
    ctx = community_with_a_completed_order(target, tenant["tenant_id"])
    from shequn.settlement.service import run_settlement

    assert run_settlement(ctx)["released_fen"] == 1_485
    args = ("ledger", "verify", "-t", tenant["tenant_id"], "--database-url", target.url)

    good = run(*args)
    assert (good.exit_code, " ".join(good.stdout.split())) == (
        0,
        "Ledger verified: every balance matches its postings and every transaction sums to zero.",
    )

    # when somebody edits a cached wallet balance behind the ledger's back
    with ctx.db.transaction() as tx:
        changed = tx.execute(
            update(accounts)
            .where(accounts.c.tenant_id == ctx.tenant_id, accounts.c.tracks_balance.is_(True))
            .where(accounts.c.balance > 0)
            .values(balance=accounts.c.balance + 1)
        ).rowcount
    assert changed == 2  # the two uplines' available wallets

    bad = run(*args)
    assert bad.exit_code == 1
    assert " ".join(bad.stderr.split()) == (
        "Ledger check failed: 2 balance mismatches, 0 unbalanced transactions,"
        " 0 frozen wallets below zero."
    )


def test_an_error_speaks_english_or_chinese(target: Target) -> None:
    tenant = new_tenant(target)
    args = ("key", "revoke", "-t", tenant["tenant_id"], "key_nope", "--database-url", target.url)

    english = run(*args, locale="en")
    chinese = run(*args, locale="zh_CN")

    assert (english.exit_code, chinese.exit_code) == (2, 2)
    assert (
        english.stderr
        == "api_key_not_found: API key key_nope does not exist or is already revoked.\n"
    )
    assert chinese.stderr == "api_key_not_found: API 密钥 key_nope 不存在或已被吊销。\n"
    assert (english.stdout, chinese.stdout) == ("", "")


def error_screen(result: Result) -> tuple[str, str, str]:
    """The usage line, the help hint and the message of a parser error screen."""
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    boxed = [line.strip("│").strip() for line in lines if line.startswith("│")]
    return lines[0], lines[1], " ".join(boxed)


@pytest.mark.parametrize(
    ("args", "english", "chinese"),
    [
        (("tenant", "create"), "Missing argument 'name'.", "缺少参数 'name'。"),
        (("settle", "--bogus"), "No such option: --bogus", "没有这个选项：--bogus"),
        (
            ("serve", "--por", "1"),
            "No such option: --por (Possible options: --port)",
            "没有这个选项：--por （可用的选项：--port）",
        ),
        (("nosuch",), "No such command 'nosuch'.", "没有这个命令：'nosuch'。"),
        (("init", "one", "two"), "Got unexpected extra arguments: one two", "多余的参数：one two"),
        (
            ("key", "create", "--name", "n"),
            "Missing option '--tenant' / '-t' (env var: 'SHEQUN_TENANT').",
            "缺少选项 '--tenant' / '-t'（环境变量 'SHEQUN_TENANT'）。",
        ),
    ],
)
def test_a_parser_error_speaks_the_chosen_language(
    args: tuple[str, ...], english: str, chinese: str
) -> None:
    en = run(*args, locale="en")
    zh = run(*args, locale="zh_CN")

    assert (en.exit_code, zh.exit_code) == (2, 2)
    en_usage, en_hint, en_message = error_screen(en)
    zh_usage, zh_hint, zh_message = error_screen(zh)
    assert (en_message, zh_message) == (english, chinese)
    assert en_usage.startswith("Usage: ")
    assert zh_usage.startswith("用法：")
    assert en_usage.removeprefix("Usage: ") == zh_usage.removeprefix("用法：")
    assert re.fullmatch(r"Try '.+ --help' for help\.", en_hint)
    assert re.fullmatch(r"运行 '.+ --help' 查看帮助。", zh_hint)
    assert (en.stdout, zh.stdout) == ("", "")


def test_a_bad_value_names_the_option_in_the_chosen_language() -> None:
    en = run("serve", "--port", "abc", locale="en")
    zh = run("serve", "--port", "abc", locale="zh_CN")

    assert (en.exit_code, zh.exit_code) == (2, 2)
    assert error_screen(en)[2] == "Invalid value for '--port': 'abc' is not a whole number."
    assert error_screen(zh)[2] == "'--port' 的值无效：'abc' 不是整数。"


def test_commands_refuse_an_unknown_tenant(target: Target) -> None:
    for command in (("settle",), ("compliance",)):
        result = run(*command, "-t", "tn_nope", "--database-url", target.url)
        assert (result.exit_code, result.stderr) == (
            2,
            "tenant_not_found: Tenant tn_nope does not exist.\n",
        )


@pytest.mark.parametrize(
    "command", [("ledger", "verify"), ("key", "list")], ids=["ledger-verify", "key-list"]
)
def test_read_commands_refuse_an_unknown_tenant(target: Target, command: tuple[str, ...]) -> None:
    result = run(*command, "-t", "tn_nope", "--database-url", target.url)
    assert (result.exit_code, result.stderr) == (
        2,
        "tenant_not_found: Tenant tn_nope does not exist.\n",
    )


def test_demo_builds_a_small_community_without_serving(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    result = run(
        "demo", "--no-serve", "--members", "20", "--days", "5", "--database", str(database)
    )

    assert result.exit_code == 0, result.output
    key = re.search(r"API key \(shown once, keep it safe\): (sk_[\w-]+)", result.stdout)
    tenant = re.search(r"Tenant: (tn_\w+)", result.stdout)
    assert key is not None
    assert tenant is not None
    assert "Demo community" in result.stdout
    assert re.search(r"│ Members\s+│\s+20 │", result.stdout) is not None

    demo = Database.from_url(f"sqlite:///{database}", pool_size=1)
    try:
        settings = Settings(environment="test", api_key_cache_seconds=0, database_url="sqlite://")
        with TestClient(create_app(settings, db=demo), raise_server_exceptions=False) as http:
            members = expect(
                http.get(f"{API}/members?limit=500", headers=bearer(key.group(1))), 200
            )
            verified = expect(http.get(f"{API}/ledger/verify", headers=bearer(key.group(1))), 200)
            mine = expect(http.get(f"{API}/settings", headers=bearer(key.group(1))), 200)
    finally:
        demo.dispose()
    assert len(members["items"]) == 20
    assert verified == {"ok": True, "mismatches": [], "unbalanced": [], "negative_pending": []}
    assert mine["tenant_id"] == tenant.group(1)


def test_settle_all_tenants_settles_each_tenant_once(tmp_path: Path) -> None:
    # given two tenants on a database of their own, each with an order past its window
    url = f"sqlite:///{tmp_path / 'all.db'}"
    upgrade_database(url)
    own = Database.from_url(url, pool_size=2)
    try:
        target = Target(url, own)
        tenants = [new_tenant(target, name)["tenant_id"] for name in ("甲品牌", "乙品牌")]
        for tenant_id in tenants:
            community_with_a_completed_order(target, tenant_id)

        # when a scheduled job settles every tenant, twice
        first = run_json("settle", "--all-tenants", "--database-url", url)
        second = run_json("settle", "--all-tenants", "--database-url", url)
        text = run("settle", "--all-tenants", "--database-url", url)
    finally:
        own.dispose()

    # then each tenant is settled once, on its own line
    def counts(rows: list[dict[str, Any]]) -> dict[str, tuple[int, int, int]]:
        return {
            r["tenant_id"]: (r["orders_closed"], r["commissions_released"], r["released_fen"])
            for r in rows
        }

    assert counts(first) == {tenants[0]: (1, 2, 1_485), tenants[1]: (1, 2, 1_485)}
    assert counts(second) == {tenants[0]: (0, 0, 0), tenants[1]: (0, 0, 0)}
    assert text.exit_code == 0
    assert sorted(line.split(":")[0] for line in text.stdout.splitlines()) == sorted(tenants)


@pytest.mark.parametrize("flags", [[], ["-t", "tn_x", "--all-tenants"]], ids=["none", "both"])
def test_settle_wants_one_tenant_or_all(tmp_path: Path, flags: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    result = run("settle", *flags, "--database-url", url)
    assert result.exit_code == 2
    assert result.stderr.strip() == "Give either --tenant or --all-tenants."
