"""Shared fixtures: one database per backend per session, one fresh tenant per test.

Every row is scoped by tenant, so a new tenant per test isolates tests without rolling back
(the concurrency tests need real commits). PostgreSQL tests run when the server is reachable;
with SHEQUN_REQUIRE_POSTGRES=1 (as in CI) an unreachable server is a failure, not a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from shequn.clock import ManualClock
from shequn.config import Settings
from shequn.context import Ctx
from shequn.db import Database
from shequn.entrypoints.app import create_app
from shequn.schema import upgrade_database
from shequn.tenancy.service import create_tenant

PG_ADMIN_URL = os.environ.get(
    "SHEQUN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("SHEQUN_REQUIRE_POSTGRES") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's synchronous API keeps an event loop running on the main
    thread for as long as its session lasts, where `asyncio.run` cannot start another."""
    browser = Path(__file__).parent / "browser"
    items.sort(key=lambda item: item.path.is_relative_to(browser))


def _pg_reachable() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def pg_server() -> str:
    if not _pg_reachable():
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required but not reachable at {PG_ADMIN_URL}")
        pytest.skip("PostgreSQL not reachable")
    return PG_ADMIN_URL


def _create_pg_database(admin_url: str) -> tuple[str, str]:
    name = f"shequn_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


def _drop_pg_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    path: Path = tmp_path_factory.mktemp("db") / "shequn-test.db"
    url = f"sqlite:///{path}"
    upgrade_database(url)
    db = Database.from_url(url, pool_size=8)
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def postgres_db(pg_server: str) -> Iterator[Database]:
    name, url = _create_pg_database(pg_server)
    try:
        upgrade_database(url)
        db = Database.from_url(url, pool_size=30)
        yield db
        db.dispose()
    finally:
        _drop_pg_database(pg_server, name)


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db(request: pytest.FixtureRequest) -> Database:
    """The database under test; integration tests run once per backend."""
    fixture = "sqlite_db" if request.param == "sqlite" else "postgres_db"
    database: Database = request.getfixturevalue(fixture)
    return database


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def tenant(db: Database, clock: ManualClock) -> tuple[Ctx, str]:
    """A fresh tenant: (context acting as an operator, raw owner API key)."""
    tenant_id, api_key = create_tenant(db=db, clock=clock, name="测试品牌 Test brand")
    return Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="test"), api_key


@pytest.fixture
def ctx(tenant: tuple[Ctx, str]) -> Ctx:
    return tenant[0]


@pytest.fixture
def client(db: Database, clock: ManualClock) -> Iterator[TestClient]:
    settings = Settings(environment="test", api_key_cache_seconds=0, database_url="sqlite://")
    app = create_app(settings, clock=clock, db=db)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def api(client: TestClient, tenant: tuple[Ctx, str]) -> TestClient:
    """A client that sends the tenant's owner key and asks for English messages."""
    client.headers.update({"Authorization": f"Bearer {tenant[1]}", "Accept-Language": "en"})
    return client
