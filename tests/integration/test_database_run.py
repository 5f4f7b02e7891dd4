"""How use cases meet the database: autocommit and transactions on one pooled connection, and
`Database.run`, which the API calls, on PostgreSQL through the driver's asynchronous interface
(other requests go on meanwhile) and on SQLite on a worker thread, with the caller's context
and again after a transient failure."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from shequn.db import Database, is_transient
from shequn.i18n import get_locale, set_locale


@pytest.fixture
def own(db: Database) -> Iterator[Database]:
    """A database of the test's own (a small pool), on the backend under test."""
    mine = Database.from_url(db.engine.url.render_as_string(hide_password=False), pool_size=2)
    yield mine
    mine.dispose()


@pytest.mark.postgres
def test_autocommit_commits_each_statement_and_a_transaction_after_it_is_one(
    postgres_db: Database,
) -> None:
    with postgres_db.autocommit() as tx:
        assert tx.execute(text("SELECT now() = statement_timestamp()")).scalar_one() is True
    with postgres_db.transaction() as tx:
        first = tx.execute(text("SELECT now()")).scalar_one()
        tx.execute(text("SELECT pg_sleep(0.01)"))
        assert tx.execute(text("SELECT now()")).scalar_one() == first  # one transaction
        raw = tx.connection.dbapi_connection
        assert raw is not None
        assert raw.autocommit is False


def test_run_gives_the_use_case_the_callers_context(own: Database) -> None:
    def use_case(tag: str) -> tuple[str, str, int]:
        with own.read() as tx:
            return tag, get_locale(), int(tx.execute(text("SELECT 41 + 1")).scalar_one())

    async def main() -> tuple[str, str, int]:
        set_locale("en")
        try:
            return await own.run(use_case, "tagged")
        finally:
            await own.close_loop_connections()

    assert asyncio.run(main()) == ("tagged", "en", 42)


def test_run_tries_again_after_a_transient_failure_only(own: Database) -> None:
    calls: list[int] = []

    class Deadlock(Exception):
        sqlstate = "40P01"

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("SELECT 1", {}, Deadlock())
        return "done"

    def broken() -> str:
        raise OperationalError("SELECT 1", {}, Exception("no such table"))

    async def main() -> Any:
        try:
            done = await own.run(flaky)
            with pytest.raises(DBAPIError) as caught:
                await own.run(broken)
            return done, caught.value
        finally:
            await own.close_loop_connections()

    done, error = asyncio.run(main())
    assert (done, len(calls)) == ("done", 3)
    assert is_transient(error) is False


@pytest.mark.postgres
def test_on_postgres_runs_wait_for_the_database_side_by_side(postgres_db: Database) -> None:
    # given a use case that waits on a lock until another one releases it
    url = postgres_db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    order: list[str] = []

    def hold_then(release: str) -> None:
        with postgres_db.read() as tx:
            tx.execute(text("SELECT pg_advisory_lock(4242)"))
            order.append("held")
            tx.execute(text("SELECT pg_advisory_unlock(4242)"))

    def quick() -> None:
        with postgres_db.read() as tx:
            tx.execute(text("SELECT 1"))
        order.append("quick")

    async def main() -> None:
        with psycopg.connect(url, autocommit=True) as blocker:
            blocker.execute("SELECT pg_advisory_lock(4242)")
            waiting = asyncio.ensure_future(postgres_db.run(hold_then, "x"))
            await asyncio.sleep(0)
            # when another use case comes meanwhile, on the same event loop
            await postgres_db.run(quick)
            order.append("blocker releases")
            blocker.execute("SELECT pg_advisory_unlock(4242)")
            await waiting
        await postgres_db.close_loop_connections()

    asyncio.run(main())
    # then it was answered while the first still waited
    assert order == ["quick", "blocker releases", "held"]


@pytest.mark.postgres
def test_a_broken_connection_fails_one_run_and_the_next_is_fresh(
    postgres_db: Database,
) -> None:
    mine = Database.from_url(
        postgres_db.engine.url.render_as_string(hide_password=False), pool_size=1
    )

    def backend() -> int:
        with mine.read() as tx:
            return int(tx.execute(text("SELECT pg_backend_pid()")).scalar_one())

    async def main() -> tuple[int, int]:
        try:
            before = await mine.run(backend)
            with postgres_db.autocommit() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": before})
            with pytest.raises(DBAPIError):
                await mine.run(backend)
            return before, await mine.run(backend)
        finally:
            await mine.close_loop_connections()

    try:
        before, after = asyncio.run(main())
    finally:
        mine.dispose()
    assert after != before
