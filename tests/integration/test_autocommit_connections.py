"""On PostgreSQL an autocommit use case keeps its thread's connection for the next one; a
connection that broke is given up after the one use case it failed, half of the pool is
always left for transactions, and disposing of the database closes the kept ones too."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shequn.db import Database


@pytest.fixture
def pg(postgres_db: Database) -> Iterator[Database]:
    url = postgres_db.engine.url.render_as_string(hide_password=False)
    own = Database.from_url(url, pool_size=4)
    yield own
    own.dispose()


def _backend(db: Database) -> int:
    with db.autocommit() as tx:
        return int(tx.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_thread_keeps_its_connection_and_commits_every_statement(pg: Database) -> None:
    first = _backend(pg)
    assert _backend(pg) == first
    with pg.autocommit() as tx:
        # nothing is left open between use cases: every statement committed on its own
        assert tx.execute(text("SELECT now() = statement_timestamp()")).scalar_one() is True
    with pg.autocommit() as tx:
        assert (
            tx.connection.dbapi_connection.info.transaction_status
            == psycopg.pq.TransactionStatus.IDLE
        )  # type: ignore[union-attr]
    assert _backend(pg) == first


def test_a_broken_connection_fails_one_use_case_and_is_replaced(
    pg: Database, postgres_db: Database
) -> None:
    before = _backend(pg)
    with postgres_db.autocommit() as admin:
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": before})
    with pytest.raises(DBAPIError), pg.autocommit() as tx:
        tx.execute(text("SELECT 1"))
    after = _backend(pg)
    assert after != before
    assert _backend(pg) == after


def test_an_error_in_the_use_case_keeps_a_sound_connection(pg: Database) -> None:
    before = _backend(pg)
    with pytest.raises(DBAPIError), pg.autocommit() as tx:
        tx.execute(text("SELECT 1 / 0"))

    def refused() -> None:
        with pg.autocommit() as tx:
            tx.execute(text("SELECT 1"))
            raise LookupError("a domain error, say")

    with pytest.raises(LookupError):
        refused()
    assert _backend(pg) == before


def test_half_of_the_pool_is_held_at_most_and_dispose_closes_them(
    pg: Database, postgres_db: Database
) -> None:
    seen: list[int] = []
    gate = threading.Barrier(4)
    lock = threading.Lock()

    def use() -> None:
        gate.wait()
        with pg.autocommit() as tx:
            pid = int(tx.execute(text("SELECT pg_backend_pid()")).scalar_one())
        with lock:
            seen.append(pid)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 4
    assert len(pg._held_all) == 2  # a pool of 4 lends at most 2 to threads for good
    held = [int(conn.connection.dbapi_connection.info.backend_pid) for conn in pg._held_all]  # type: ignore[union-attr]
    # a transaction still gets a connection while they are held
    with pg.transaction() as tx:
        assert int(tx.execute(text("SELECT pg_backend_pid()")).scalar_one()) not in held
    pg.dispose()
    assert pg._held_all == []
    with postgres_db.read() as tx:
        alive = tx.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"),
            {"pids": held},
        ).scalar_one()
    assert alive == 0
