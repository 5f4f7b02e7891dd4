"""`shequn user`: console users made, listed and unlocked on the command line; the login works
in the console."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from shequn.clock import SystemClock
from shequn.config import Settings
from shequn.console.service import console_login
from shequn.db import Database
from shequn.entrypoints.app import create_app
from shequn.entrypoints.cli import app as cli
from shequn.schema import upgrade_database
from shequn.tenancy.service import create_tenant


def test_a_user_made_on_the_command_line_logs_in_to_the_console(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade_database(url)
    db = Database.from_url(url, pool_size=2)
    try:
        tenant_id, _ = create_tenant(db=db, clock=SystemClock(), name="命令行品牌")
        runner = CliRunner()
        env = {"SHEQUN_DATABASE_URL": url, "SHEQUN_LOCALE": "en"}
        made = runner.invoke(
            cli,
            [
                "user",
                "create",
                "-t",
                tenant_id,
                "--login",
                "Boss@Brand.test",
                "--role",
                "owner",
                "--json",
            ],
            env=env,
        )
        assert made.exit_code == 0, made.output
        shown = json.loads(made.output)
        assert (shown["login"], shown["role"]) == ("boss@brand.test", "owner")
        assert len(shown["password"]) == 16
        refused = runner.invoke(
            cli,
            [
                "user",
                "create",
                "-t",
                tenant_id,
                "--login",
                "boss@brand.test",
                "--password",
                "long-enough-pass",
            ],
            env=env,
        )
        assert refused.exit_code == 2
        assert "console_login_taken" in refused.output
        listed = runner.invoke(cli, ["user", "list", "-t", tenant_id, "--json"], env=env)
        assert [u["login"] for u in json.loads(listed.output)] == ["boss@brand.test"]
        missing = runner.invoke(
            cli, ["user", "unlock", "-t", tenant_id, "--login", "nobody@x.test"], env=env
        )
        assert missing.exit_code == 2
        assert console_login(
            db=db, clock=SystemClock(), login="boss@brand.test", password=shown["password"]
        ).token
        app = create_app(Settings(environment="test", database_url=url), db=db)
        with TestClient(app, base_url="https://testserver") as client:
            page = client.get("/console/login").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert token is not None
            response = client.post(
                "/console/login",
                data={
                    "csrf_token": token.group(1),
                    "login": "boss@brand.test",
                    "password": shown["password"],
                },
                follow_redirects=False,
            )
            assert (response.status_code, response.headers["location"]) == (303, "/console/")
            assert "命令行品牌" in client.get("/console/").text
    finally:
        db.dispose()


def test_the_demo_prints_a_console_login_that_opens_on_its_data(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    shown = CliRunner().invoke(
        cli,
        ["demo", "--no-serve", "--members", "20", "--days", "5", "--database", str(database)],
        env={"SHEQUN_LOCALE": "en"},
    )
    assert shown.exit_code == 0, shown.output
    found = re.search(r"/console/ login (\S+) password (\S+)", shown.stdout)
    assert found is not None, shown.stdout
    db = Database.from_url(f"sqlite:///{database}", pool_size=2)
    try:
        app = create_app(Settings(environment="test", database_url="sqlite://"), db=db)
        with TestClient(app, base_url="https://testserver") as client:
            page = client.get("/console/login").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert token is not None
            client.post(
                "/console/login",
                data={
                    "csrf_token": token.group(1),
                    "login": found.group(1),
                    "password": found.group(2),
                },
            )
            members = client.get("/console/members")
            assert members.status_code == 200
            assert members.text.count('href="/console/members/mem_') >= 20
    finally:
        db.dispose()
