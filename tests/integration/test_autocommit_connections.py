"""On PostgreSQL an autocommit use case keeps its thread's connection for the next one; a
connection that broke is given up after the one use case it failed, half of the pool is
always left for transactions, and disposing of the database closes the kept ones too."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

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
    assert _backends_gone(postgres_db, held)


def test_what_ended_threads_held_goes_back_to_the_pool_out_of_autocommit(pg: Database) -> None:
    # given two threads that held connections and have ended (a pool of 4 lends at most 2)
    for _ in range(2):
        ended = threading.Thread(target=lambda: _backend(pg))
        ended.start()
        ended.join()
    assert len(pg._held_all) == 2
    lent = {id(conn.connection.dbapi_connection) for conn in pg._held_all}

    # when a live thread wants one
    _backend(pg)

    # then it holds one, and what the ended threads held is back in the pool, where every
    # transaction gets a connection out of autocommit (its statements commit together)
    assert [conn.info["held_by"] for conn in pg._held_all] == [threading.current_thread()]
    with pg.transaction() as a, pg.transaction() as b, pg.transaction() as c:
        raws = [tx.connection.dbapi_connection for tx in (a, b, c)]
        assert lent <= {id(raw) for raw in raws}
        assert [raw.autocommit for raw in raws] == [False, False, False]  # type: ignore[union-attr]


def _backends_gone(db: Database, pids: list[int]) -> bool:
    """Whether the server processes have ended (they exit just after their client closes)."""
    for _ in range(100):
        with db.read() as tx:
            alive = tx.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"),
                {"pids": pids},
            ).scalar_one()
        if alive == 0:
            return True
        time.sleep(0.05)
    return False


class _Thread:
    """A thread of its own that runs what it is given, one call at a time."""

    def __init__(self) -> None:
        self.calls: queue.Queue[Callable[[], Any] | None] = queue.Queue()
        self.results: queue.Queue[tuple[bool, Any]] = queue.Queue()
        self.thread = threading.Thread(target=self._loop)
        self.thread.start()

    def _loop(self) -> None:
        while (call := self.calls.get()) is not None:
            try:
                self.results.put((True, call()))
            except Exception as exc:  # noqa: BLE001 - handed back to the caller, who raises it
                self.results.put((False, exc))

    def run(self, call: Callable[[], Any]) -> Any:
        self.calls.put(call)
        ok, value = self.results.get(timeout=30)
        if not ok:
            raise value
        return value

    def stop(self) -> None:
        self.calls.put(None)
        self.thread.join()


def test_after_a_restart_one_use_case_fails_and_the_other_threads_start_afresh(
    pg: Database, postgres_db: Database
) -> None:
    first, second = _Thread(), _Thread()
    try:
        pids = [first.run(lambda: _backend(pg)), second.run(lambda: _backend(pg))]
        assert pids[0] != pids[1]
        # as a server restart would: every held connection is cut
        with postgres_db.autocommit() as admin:
            for pid in pids:
                admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError):
            first.run(lambda: _backend(pg))
        # the other thread does not fail: its connection is renewed before it is used
        renewed = second.run(lambda: _backend(pg))
        again = first.run(lambda: _backend(pg))
        assert renewed not in pids
        assert again not in pids
        assert second.run(lambda: _backend(pg)) == renewed
    finally:
        first.stop()
        second.stop()
