"""What one paid order costs, use case by use case, without HTTP and without concurrency.

`bench/orders.py` measures throughput through the API; this script takes it apart. On one
database connection it runs N orders through `create_order` and then N payments through
`pay_order`, and measures for each use case

- the SQL statements it sends (an `executemany` counts once per row, as the server sees it)
  and its commits,
- the CPU of the PostgreSQL backend serving the connection (from /proc),
- the CPU of this process (the services, SQLAlchemy and psycopg).

The reference, in the same run and on the same database: N TPC-B transactions (pgbench's
default script, written out by hand, on tables made by `pgbench -i`) sent the same way
through psycopg with prepared statements. The last line is
`create_pg_ms=… pay_pg_ms=… tpcb_pg_ms=… pg_cpu_ratio=…`, where the ratio is PostgreSQL CPU
per paid order over PostgreSQL CPU per TPC-B transaction. The shop is seeded as
`bench/orders.py` seeds it, an order history included.

    python bench/order_cost.py                 # 2000 orders
    python bench/order_cost.py --orders 5000
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import psycopg
from sqlalchemy import text

from shequn.clock import SystemClock
from shequn.context import Ctx
from shequn.db import Database
from shequn.orders.creation import create_order
from shequn.orders.payment import pay_order
from shequn.schema import upgrade_database
from shequn_bench.accounting import process_cpu_seconds
from shequn_bench.options import DEFAULT_ADMIN_URL, HISTORY_PER_BUYER, PRODUCTS, Options
from shequn_bench.seeding import scratch_database, seed, server_version

T = TypeVar("T")
TPCB_SCALE = 1
ROOTS, MIDDLES, BUYERS = 20, 10, 5  # the referral forest: 1,000 buyers
TPCB_ACCOUNTS = 100_000 * TPCB_SCALE
TPCB_STATEMENTS = (
    "UPDATE pgbench_accounts SET abalance = abalance + %(delta)s WHERE aid = %(aid)s",
    "SELECT abalance FROM pgbench_accounts WHERE aid = %(aid)s",
    "UPDATE pgbench_tellers SET tbalance = tbalance + %(delta)s WHERE tid = %(tid)s",
    "UPDATE pgbench_branches SET bbalance = bbalance + %(delta)s WHERE bid = %(bid)s",
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime)"
    " VALUES (%(tid)s, %(bid)s, %(aid)s, %(delta)s, CURRENT_TIMESTAMP)",
)


@dataclass
class Cost:
    """Totals over a batch of one use case."""

    units: int = 0
    statements: int = 0
    commits: int = 0
    pg_cpu: float = 0.0
    app_cpu: float = 0.0

    def per_unit(self, value: float) -> float:
        return value / max(1, self.units)


class Meter:
    """Counts the statements and commits sent through psycopg (the services send some on
    SQLAlchemy's connection, the hot ones on the driver's cursor, in autocommit) and reads the
    CPU of the backend of the one connection the services use."""

    def __init__(self, db: Database) -> None:
        self.statements = 0
        self.commits = 0
        with db.autocommit() as tx:  # the connection the autocommit use cases keep
            self.backend_pid = int(tx.execute(text("SELECT pg_backend_pid()")).scalar_one())
        meter = self
        execute, executemany = psycopg.Cursor.execute, psycopg.Cursor.executemany
        commit = psycopg.Connection.commit

        def counted_execute(cursor: Any, *args: Any, **kwargs: Any) -> Any:
            meter.statements += 1
            meter.commits += int(cursor.connection.autocommit)
            return execute(cursor, *args, **kwargs)

        def counted_executemany(cursor: Any, query: Any, params_seq: Any, **kwargs: Any) -> Any:
            rows = list(params_seq)
            meter.statements += len(rows)
            meter.commits += len(rows) * int(cursor.connection.autocommit)
            return executemany(cursor, query, rows, **kwargs)

        def counted_commit(connection: Any) -> None:
            meter.commits += 1
            commit(connection)

        self._originals = (execute, executemany, commit)
        psycopg.Cursor.execute = counted_execute  # type: ignore[method-assign]
        psycopg.Cursor.executemany = counted_executemany  # type: ignore[method-assign]
        psycopg.Connection.commit = counted_commit  # type: ignore[method-assign]

    def close(self) -> None:
        """Stop counting."""
        execute, executemany, commit = self._originals
        psycopg.Cursor.execute = execute  # type: ignore[method-assign]
        psycopg.Cursor.executemany = executemany  # type: ignore[method-assign]
        psycopg.Connection.commit = commit  # type: ignore[method-assign]

    def measure(self, work: Callable[[], T], cost: Cost) -> T:
        statements, commits = self.statements, self.commits
        pg = process_cpu_seconds(self.backend_pid)
        app = time.process_time()
        result = work()
        cost.app_cpu += time.process_time() - app
        cost.pg_cpu += process_cpu_seconds(self.backend_pid) - pg
        cost.statements += self.statements - statements
        cost.commits += self.commits - commits
        cost.units += 1
        return result


def run_orders(url: str, options: Options, count: int, warmup: int) -> tuple[Cost, Cost]:
    seeded = seed(url, options)
    db = Database.from_url(url, pool_size=1)
    meter = Meter(db)
    try:
        ctx = Ctx(db=db, clock=SystemClock(), tenant_id=seeded.tenant_id, actor="bench")
        rng = random.Random(options.seed)
        skus = [p[0] for p in PRODUCTS]
        created, paid = Cost(), Cost()
        for n in range(warmup + count):
            buyer = seeded.buyers[rng.randrange(len(seeded.buyers))]
            sku = skus[rng.randrange(len(skus))]
            create = partial(
                create_order,
                ctx,
                buyer_id=buyer,
                lines=[{"sku": sku, "quantity": 1}],
                idempotency_key=f"cost-{n}",
            )
            order, _ = create() if n < warmup else meter.measure(create, created)
            pay = partial(
                pay_order,
                ctx,
                order_id=order["id"],
                provider_txn_id=f"wx-cost-{n}",
                amount_fen=order["total_fen"],
            )
            if n < warmup:
                pay()
            else:
                meter.measure(pay, paid)
    finally:
        meter.close()
        db.dispose()
    return created, paid


def run_tpcb(url: str, count: int, warmup: int, seed_value: int) -> Cost:
    subprocess.run(
        ["pgbench", "-i", "-q", "-s", str(TPCB_SCALE), url],
        check=True,
        capture_output=True,
        text=True,
    )
    cost = Cost()
    rng = random.Random(seed_value)
    with psycopg.connect(url, prepare_threshold=0) as conn:
        pid = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
        conn.commit()
        for n in range(warmup + count):
            params = {
                "aid": rng.randint(1, TPCB_ACCOUNTS),
                "bid": rng.randint(1, TPCB_SCALE),
                "tid": rng.randint(1, 10 * TPCB_SCALE),
                "delta": rng.randint(-5000, 5000),
            }
            pg = process_cpu_seconds(pid)
            app = time.process_time()
            for statement in TPCB_STATEMENTS:
                conn.execute(statement, params)  # type: ignore[arg-type]
            conn.commit()
            if n >= warmup:
                cost.app_cpu += time.process_time() - app
                cost.pg_cpu += process_cpu_seconds(pid) - pg
                cost.statements += len(TPCB_STATEMENTS)
                cost.commits += 1
                cost.units += 1
    return cost


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/order_cost.py",
        description="CPU and statements per create / pay, against a TPC-B transaction.",
    )
    parser.add_argument(
        "--admin-url", default=os.environ.get("SHEQUN_BENCH_ADMIN_URL", DEFAULT_ADMIN_URL)
    )
    parser.add_argument("--orders", type=int, default=2000, help="measured paid orders")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured paid orders first")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.orders < 1 or args.warmup < 0:
        parser.error("--orders must be at least 1 and --warmup not negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    options = Options(
        admin_url=args.admin_url,
        database=f"shequn_cost_{os.getpid()}",
        workers=1,
        clients=1,
        duration=1.0,
        orders=args.orders,
        warmup=0.0,
        pool_size=1,
        roots=ROOTS,
        middles=MIDDLES,
        buyers=BUYERS,
        pgbench_duration=1,
        pgbench_scale=TPCB_SCALE,
        seed=args.seed,
        history=HISTORY_PER_BUYER * ROOTS * MIDDLES * BUYERS,
    )
    print(f"PostgreSQL {server_version(args.admin_url)}, Python {sys.version.split()[0]}")
    with scratch_database(args.admin_url, options.database) as url:
        upgrade_database(url)
        created, paid = run_orders(url, options, args.orders, args.warmup)
    with scratch_database(args.admin_url, f"shequn_cost_tpcb_{os.getpid()}") as url:
        tpcb = run_tpcb(url, args.orders, args.warmup, args.seed)

    rows = [("create order", created), ("pay order", paid), ("TPC-B transaction", tpcb)]
    print(f"{'per unit':<20}{'statements':>11}{'commits':>9}{'PG CPU ms':>11}{'app CPU ms':>12}")
    for label, cost in rows:
        print(
            f"{label:<20}{cost.per_unit(cost.statements):>11.1f}{cost.per_unit(cost.commits):>9.2f}"
            f"{cost.per_unit(cost.pg_cpu) * 1000:>11.3f}{cost.per_unit(cost.app_cpu) * 1000:>12.3f}"
        )
    order_pg = (created.per_unit(created.pg_cpu) + paid.per_unit(paid.pg_cpu)) * 1000
    tpcb_pg = tpcb.per_unit(tpcb.pg_cpu) * 1000
    cores = os.cpu_count() or 1
    print(
        f"a paid order costs PostgreSQL {order_pg / tpcb_pg:.1f}× a TPC-B transaction; with the "
        f"{cores} cores given to PostgreSQL alone that is at most {cores * 1000 / order_pg:.0f} "
        f"paid orders/s against {cores * 1000 / tpcb_pg:.0f} TPC-B transactions/s"
    )
    print(
        f"create_pg_ms={created.per_unit(created.pg_cpu) * 1000:.3f} "
        f"pay_pg_ms={paid.per_unit(paid.pg_cpu) * 1000:.3f} tpcb_pg_ms={tpcb_pg:.3f} "
        f"pg_cpu_ratio={order_pg / tpcb_pg:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
