"""Database work never runs on the event loop: with one worker on PostgreSQL, while a payment
waits for a row lock another transaction holds, the same worker still answers its health
checks and reads; once the lock is released the payment goes through."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import psycopg
import pytest
import uvicorn

from shequn.clock import SystemClock
from shequn.config import Settings
from shequn.context import Ctx
from shequn.db import Database
from shequn.entrypoints.app import create_app
from shequn.entrypoints.server import ServerOptions, uvicorn_config
from shequn.tenancy.service import create_tenant
from tests import factories as f
from tests.e2e.conftest import API, bearer

pytestmark = pytest.mark.postgres

# Only a guard against a test that would otherwise hang: no assertion depends on time.
GIVE_UP_S = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(postgres_db: Database) -> Iterator[tuple[str, Database]]:
    """One worker, as `shequn serve --workers 1` runs it, on the test database."""
    settings = Settings(environment="test", api_key_cache_seconds=30, database_url="sqlite://")
    app = create_app(settings, clock=SystemClock(), db=postgres_db)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn_config(ServerOptions("127.0.0.1", port, 1, access_log=False), app=app)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + GIVE_UP_S
    while not server.started:
        assert thread.is_alive()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", postgres_db
    finally:
        server.should_exit = True
        thread.join(timeout=GIVE_UP_S)


def _waiting_on_a_lock(conn: psycopg.Connection[Any], database: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = %s AND wait_event_type = 'Lock' AND query LIKE %s",
        (database, "%orders%"),
    ).fetchone()
    return int(row[0]) if row else 0


def test_a_payment_waiting_on_a_lock_leaves_the_worker_free(
    served: tuple[str, Database],
) -> None:
    base, db = served
    clock = SystemClock()
    tenant_id, key = create_tenant(db=db, clock=clock, name="free loop")
    ctx = Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="test")
    buyer = f.chain(ctx, 2)[1]
    f.product(ctx, price_fen=5_000)
    f.two_level_plan(ctx)
    url = db.engine.url
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with httpx2.Client(base_url=base, headers=bearer(key), timeout=GIVE_UP_S) as http:
        created = http.post(
            f"{API}/orders", json={"buyer_id": buyer, "lines": [{"sku": "CORE-1", "quantity": 1}]}
        )
        assert created.status_code == 201, created.text
        order = created.json()

        # given another transaction holding the order's row
        with psycopg.connect(dsn) as holder, psycopg.connect(dsn, autocommit=True) as watch:
            holder.execute(
                "SELECT 1 FROM orders WHERE tenant_id = %s AND id = %s FOR UPDATE",
                (tenant_id, order["id"]),
            )
            # when the payment comes, it waits for that lock
            paid: dict[str, Any] = {}

            def pay() -> None:
                with httpx2.Client(base_url=base, headers=bearer(key), timeout=GIVE_UP_S) as c:
                    answer = c.post(
                        f"{API}/orders/{order['id']}/pay",
                        json={"provider_txn_id": "wx-locked", "amount_fen": order["total_fen"]},
                    )
                    paid["status"], paid["body"] = answer.status_code, answer.json()

            payer = threading.Thread(target=pay, daemon=True)
            payer.start()
            deadline = time.monotonic() + GIVE_UP_S
            while _waiting_on_a_lock(watch, url.database or "") == 0:
                assert payer.is_alive(), paid
                assert time.monotonic() < deadline
                time.sleep(0.02)

            # then the same worker answers meanwhile
            assert http.get("/healthz").status_code == 200
            assert http.get("/readyz").status_code == 200
            read = http.get(f"{API}/orders/{order['id']}")
            assert (read.status_code, read.json()["status"]) == (200, "created")
            # (and the payment is still waiting: it was answered first)
            assert payer.is_alive()
            assert _waiting_on_a_lock(watch, url.database or "") == 1
            holder.rollback()

        # and once the lock is released the payment goes through
        payer.join(timeout=GIVE_UP_S)
        assert not payer.is_alive()
        assert paid["status"] == 200, paid
        assert paid["body"]["status"] == "paid"
        assert http.get(f"{API}/orders/{order['id']}").json()["status"] == "paid"
