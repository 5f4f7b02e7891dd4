"""Pruning finished webhook deliveries: how long `prune_deliveries` takes on a table of
`--rows` deliveries (each with one attempt), a share of them old enough to go.

The run creates a scratch database (SQLite in a temporary directory, or, with `--postgres`, a
database on that server, dropped afterwards), a tenant and an endpoint, writes the deliveries
and attempts in bulk (a fifth recent, the rest past the 30-day retention; one in ten of the old
ones dead, which stays), takes the statistics, and times one pruning. The last line is
`rows=… deleted=… seconds=… deleted_per_s=…`.

    python bench/webhook_prune.py                       # SQLite, 100,000 deliveries
    python bench/webhook_prune.py --rows 200000
    python bench/webhook_prune.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg
from sqlalchemy import insert

from shequn.clock import SystemClock
from shequn.context import Ctx
from shequn.db import Database
from shequn.ids import new_id
from shequn.schema import upgrade_database
from shequn.tenancy.service import create_tenant
from shequn.webhooks import service
from shequn.webhooks.tables import webhook_attempts, webhook_deliveries

CHUNK = 5_000


def fill(db: Database, tenant_id: str, endpoint_id: str, rows: int) -> None:
    now = SystemClock().now()
    for start in range(0, rows, CHUNK):
        deliveries, attempts = [], []
        for n in range(start, min(start + CHUNK, rows)):
            old = n % 5 != 0
            status = "dead" if old and n % 10 == 1 else "delivered"
            at = now - timedelta(days=40 if old else 1)
            delivery_id = new_id("whd")
            deliveries.append(
                {
                    "tenant_id": tenant_id,
                    "id": delivery_id,
                    "endpoint_id": endpoint_id,
                    "event_id": new_id("evt"),
                    "event_type": "MemberRegistered",
                    "subject_type": "member",
                    "subject_id": new_id("mem"),
                    "status": status,
                    "attempts": 1,
                    "failures": 0,
                    "next_attempt_at": at,
                    "created_at": at,
                    "delivered_at": at if status == "delivered" else None,
                    "last_status_code": 200,
                }
            )
            attempts.append(
                {
                    "tenant_id": tenant_id,
                    "delivery_id": delivery_id,
                    "attempt": 1,
                    "attempted_at": at,
                    "duration_ms": 12,
                    "status_code": 200,
                    "succeeded": True,
                }
            )
        with db.transaction() as tx:
            tx.execute(insert(webhook_deliveries), deliveries)
            tx.execute(insert(webhook_attempts), attempts)


def measure(url: str, rows: int) -> None:
    upgrade_database(url)
    db = Database.from_url(url, pool_size=2)
    try:
        clock = SystemClock()
        tenant_id, _ = create_tenant(db=db, clock=clock, name="bench prune")
        ctx = Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="bench")
        hook = service.create_endpoint(
            ctx, server_key="bench", url="https://hooks.example.com/in", event_types=["*"]
        )
        fill(db, tenant_id, hook["id"], rows)
        with db.autocommit() as conn:
            conn.exec_driver_sql("ANALYZE")
        started = time.perf_counter()
        deleted = service.prune_deliveries(db, now=clock.now())
        seconds = time.perf_counter() - started
    finally:
        db.dispose()
    print(
        f"rows={rows} deleted={deleted} seconds={seconds:.2f} deleted_per_s={deleted / seconds:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgres", help="an admin URL of a PostgreSQL server to use")
    args = parser.parse_args()
    if args.postgres is None:
        with tempfile.TemporaryDirectory() as scratch:
            measure(f"sqlite:///{Path(scratch) / 'prune.db'}", args.rows)
        return
    name = f"shequn_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(args.postgres, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        measure(f"{args.postgres.rsplit('/', 1)[0]}/{name}", args.rows)
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
