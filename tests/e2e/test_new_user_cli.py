"""The command line as a new user meets it: a demo that says where its data is and refuses a
busy port in the user's language, commands that only read never create a database, a bad
database URL in one line, ids never cut, a version, one unit for people, and demo data that
looks like a real community."""

from __future__ import annotations

import itertools
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from shequn.clock import ManualClock
from shequn.db import Database
from shequn.entrypoints.cli import app as cli
from shequn.members.tables import member_tags, members
from shequn.schema import upgrade_database
from shequn.simulate import simulate


def run(*args: str, locale: str = "en", columns: int = 200) -> Result:
    return CliRunner().invoke(
        cli, list(args), env={"SHEQUN_LOCALE": locale, "COLUMNS": str(columns)}
    )


def test_the_demo_refuses_a_busy_port_before_anything_else(tmp_path: Path) -> None:
    database = tmp_path / "busy.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        english = run("demo", "--port", str(port), "--database", str(database))
        chinese = run("demo", "--port", str(port), "--database", str(database), locale="zh_CN")
    assert english.exit_code == chinese.exit_code == 2
    assert english.stdout == chinese.stdout == ""
    assert english.stderr == (
        f"Port {port} on 127.0.0.1 is already in use (another demo or server?). "
        f"Start the demo on a free port: shequn demo --port {port + 1}\n"
    )
    assert f"shequn demo --port {port + 1}" in chinese.stderr
    assert "已被占用" in chinese.stderr
    assert not database.exists()


def test_the_demo_says_which_database_and_how_to_use_it(tmp_path: Path) -> None:
    database = tmp_path / "told.db"
    result = run(
        "demo", "--no-serve", "--members", "15", "--days", "3", "--database", str(database)
    )
    assert result.exit_code == 0, result.output
    url = f"sqlite:///{database.resolve()}"
    assert f"Database: {url}\n" in result.stdout
    assert f"export SHEQUN_DATABASE_URL={url}" in result.stdout
    tenant = re.search(r"Tenant: (tn_\w+)", result.stdout)
    assert tenant is not None
    # and the command it suggests works on it
    told = CliRunner().invoke(
        cli,
        ["compliance", "-t", tenant.group(1), "--json"],
        env={"SHEQUN_LOCALE": "en", "SHEQUN_DATABASE_URL": url},
    )
    assert told.exit_code == 0, told.output
    assert json.loads(told.stdout)["profile"] == "wechat"


@pytest.mark.parametrize(
    "command",
    [
        ("tenant", "list"),
        ("compliance", "-t", "tn_x"),
        ("ledger", "verify", "-t", "tn_x"),
        ("key", "list", "-t", "tn_x"),
    ],
    ids=["tenant-list", "compliance", "ledger-verify", "key-list"],
)
def test_commands_that_read_never_create_a_database(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    missing = tmp_path / "none.db"
    result = run(*command, "--database-url", f"sqlite:///{missing}")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"database_missing: The database file {missing} does not")
    assert "shequn init" in result.stderr
    assert not missing.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_read_command_refuses_a_database_without_the_schema(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    result = run("tenant", "list", "--database-url", f"sqlite:///{empty}")
    assert result.exit_code == 2
    assert result.stderr.startswith("database_not_initialised:")
    assert empty.stat().st_size == 0


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("sqlite:///no/such/dir/x.db", "database_folder_missing"),
        ("garbage", "database_url_invalid"),
        ("mysql://user@host/db", "database_backend_unsupported"),
        ("postgresql://postgres@127.0.0.1:1/nowhere", "database_unreachable"),
    ],
)
@pytest.mark.parametrize("locale", ["en", "zh_CN"])
def test_a_bad_database_url_is_one_line_and_exit_code_2(url: str, code: str, locale: str) -> None:
    for command in (("init",), ("tenant", "create", "x"), ("settle", "--all-tenants")):
        result = run(*command, "--database-url", url, locale=locale)
        assert result.exit_code == 2, (command, result.output)
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"{code}: ")
        assert "Traceback" not in result.output


def test_tenant_ids_are_never_cut_and_there_is_a_version(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ids.db'}"
    upgrade_database(url)
    made = run(
        "tenant",
        "create",
        "一个名字很长很长很长很长很长很长的品牌" * 3,
        "--json",
        "--database-url",
        url,
    )
    tenant_id = json.loads(made.stdout)["tenant_id"]
    for columns in (80, 60):
        listed = run("tenant", "list", "--database-url", url, columns=columns)
        assert listed.exit_code == 0, listed.output
        assert tenant_id in listed.stdout
    version = run("--version")
    assert (version.exit_code, version.stdout) == (0, "shequn 0.1.0\n")


def test_the_compliance_table_shows_people_units(tmp_path: Path) -> None:
    result = run(
        "demo",
        "--no-serve",
        "--members",
        "40",
        "--days",
        "10",
        "--database",
        str(tmp_path / "units.db"),
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "cap on one sale: 30.0%" in out
    assert re.search(r"Member income\s+│\s+¥[\d,]+\.\d\d", out)
    assert re.search(r"Recruitment-linked share\s+│\s+\d+\.\d%", out)
    assert "(yuan)" not in out
    assert " fen" not in out
    assert " bp" not in out
    chains = re.search(r"Deepest referral chain \(levels\)\s+│\s+(\d+)", out)
    assert chains is not None


def test_demo_data_looks_like_a_real_community(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'real.db'}"
    upgrade_database(url)
    db = Database.from_url(url, pool_size=2)
    try:
        done = simulate(db=db, clock=ManualClock(), locale="en")  # the demo's own size
        with db.read() as tx:
            rows = tx.execute(
                select(
                    members.c.phone,
                    members.c.external_id,
                    members.c.team_count,
                    members.c.referrer_id,
                    members.c.created_at,
                ).where(members.c.tenant_id == done.tenant_id)
            ).all()
            tagged = tx.execute(
                select(func.count(func.distinct(member_tags.c.member_id))).where(
                    member_tags.c.tenant_id == done.tenant_id
                )
            ).scalar_one()
            names = tx.execute(
                select(func.count())
                .select_from(members)
                .where(members.c.tenant_id == done.tenant_id)
            ).scalar_one()
    finally:
        db.dispose()
    assert names == len(rows) == 300
    phones = sorted(int(r.phone[3:]) for r in rows)
    # drawn, not counted up one by one
    assert sum(1 for a, b in itertools.pairwise(phones) if b - a == 1) < 5
    # nobody holds most of the community, nor even a quarter of it
    assert max(r.team_count for r in rows) < len(rows) / 4
    # some come on their own, most through someone
    roots = sum(1 for r in rows if r.referrer_id is None)
    assert 15 <= roots <= 120
    assert sum(1 for r in rows if r.external_id) > 100
    assert tagged > 60
    # registrations spread over the days, with an evening peak
    days = {r.created_at.date() for r in rows}
    assert len(days) >= 20
    # ... in the tenant's own time zone (Asia/Shanghai, eight hours ahead of UTC)
    local = [r.created_at.astimezone(ZoneInfo("Asia/Shanghai")) for r in rows]
    evening = sum(1 for at in local if 18 <= at.hour <= 23)
    night = sum(1 for at in local if 2 <= at.hour <= 5)
    assert evening > 3 * max(night, 1)
    assert sum(1 for at in local if 8 <= at.hour <= 13) > 3 * max(night, 1)
    assert done.orders > 0


@pytest.mark.parametrize(
    "command", [("points", "expire"), ("community", "place"), ("tiers", "evaluate")]
)
def test_help_of_every_command_group_is_in_the_chosen_language(command: tuple[str, ...]) -> None:
    # a fresh process: help texts are written when the commands are declared
    english = subprocess.run(
        [sys.executable, "-m", "shequn", *command, "--help"],
        env={**os.environ, "SHEQUN_LOCALE": "en", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Tenant id." in english
    assert not re.search(r"[\u4e00-\u9fff]", english), english
