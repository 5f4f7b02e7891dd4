"""Paid orders through the HTTP API on PostgreSQL, compared with pgbench on the same machine.

The run creates a scratch database and seeds it through the services: a tenant, three
products, an active two-level plan (10 % / 5 %), a referral forest of roots → middles → buyers
(every buyer has two uplines, the buyers spread over many) and an order history (`--history`,
so that the server's statements are planned against tables with a past). It initialises
pgbench on a second database, takes a CHECKPOINT, starts `shequn serve` and drives paid orders
(`POST /api/v1/orders`, then `POST /api/v1/orders/{id}/pay`) from keep-alive clients in this
process, after an unmeasured warm-up.

It measures in `--rounds` rounds, each an order segment and then a pgbench segment (TPC-B, as
many clients), because the machine's speed drifts: interleaved, both sides see the same
conditions. The clients are parked during pgbench, and an order counts only if it began and
ended inside one order segment. CPU, WAL and checkpoints are summed over each side's
segments; commits and rows written come from the databases' own counters, which PostgreSQL
publishes late, so they are read before the warm-up and after the server has stopped.

With `--hot-upline` each round also runs a segment of a flash sale on one agent: buyers seeded
under one root → one middle member, so that every payment credits the same two wallets.

The books are checked after the run (two commission lines per paid order, balances equal to
their postings, every journal transaction balanced) and both databases are dropped. The last
line is `orders_per_s=… p99_ms=… ratio_to_pgbench=…` (with `--hot-upline`, then
`hot_orders_per_s=… hot_p99_ms=… hot_upline_ratio=…`, the hot load over the normal one).

    python bench/orders.py                      # defaults: 2 workers, 8 clients, 4 rounds
    python bench/orders.py --workers 4 --clients 16 --duration 30
    python bench/orders.py --rounds 1           # one orders phase, then one pgbench phase
    python bench/orders.py --history 0         # order tables empty when the server starts
    python bench/orders.py --hot-upline         # also every buyer under the same two uplines
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from shequn.schema import upgrade_database
from shequn_bench.accounting import CpuProbe, db_counters, db_work, wait_for_statistics
from shequn_bench.load import Load, drive
from shequn_bench.options import (
    DEFAULT_ADMIN_URL,
    DEFAULT_ROUNDS,
    HISTORY_PER_BUYER,
    Options,
    pgbench_seconds,
)
from shequn_bench.pgbench import PgbenchLoad, init_pgbench, require_pgbench, summarise_pgbench
from shequn_bench.report import check_books, report
from shequn_bench.seeding import checkpoint, scratch_database, seed, server_version
from shequn_bench.server import api_server


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="bench/orders.py",
        description="Paid orders per second through the HTTP API, against pgbench TPC-B.",
    )
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("SHEQUN_BENCH_ADMIN_URL", DEFAULT_ADMIN_URL),
        help="PostgreSQL URL of a superuser database "
        "(default: $SHEQUN_BENCH_ADMIN_URL or %(default)s)",
    )
    parser.add_argument(
        "--database",
        default=f"shequn_bench_{os.getpid()}",
        help="name of the database created for the run and dropped after it",
    )
    parser.add_argument("--workers", type=int, default=2, help="API worker processes")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument(
        "--duration",
        type=float,
        default=20.0,
        help="measured seconds of orders in all (after the warm-up), shared out over the rounds",
    )
    parser.add_argument(
        "--orders",
        type=int,
        default=0,
        help="stop after this many measured paid orders (or after --duration, if sooner)",
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    parser.add_argument(
        "--pool-size", type=int, default=10, help="SHEQUN_DB_POOL_SIZE of each worker"
    )
    parser.add_argument("--roots", type=int, default=40, help="top-level members")
    parser.add_argument("--middles", type=int, default=10, help="members under each root")
    parser.add_argument("--buyers", type=int, default=5, help="buyers under each middle member")
    parser.add_argument(
        "--history",
        type=int,
        default=None,
        help="orders created and paid through the services before the run, so that the "
        "planner statistics are those of a shop with a past (default: 2 per buyer; 0: none)",
    )
    parser.add_argument(
        "--pgbench-duration",
        type=int,
        default=20,
        help="seconds of pgbench in all, shared out over the rounds (-T of each: whole seconds)",
    )
    parser.add_argument("--pgbench-scale", type=int, default=10, help="pgbench -i -s")
    parser.add_argument("--seed", type=int, default=1, help="random seed for buyers and SKUs")
    parser.add_argument(
        "--rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        help="rounds of orders then pgbench, which share out --duration and --pgbench-duration "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--hot-upline",
        action="store_true",
        help="also measure a flash sale on one agent: as many buyers again, all under one root "
        "and one middle member, in a segment of --duration/rounds seconds of its own each round",
    )
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", args.database):
        parser.error("--database must be a plain lower-case identifier")
    for name in ("workers", "clients", "roots", "middles", "buyers", "pool_size", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.duration <= 0 or args.warmup < 0 or args.orders < 0 or args.pgbench_duration < 1:
        parser.error("durations and counts must be positive")
    if args.history is None:
        args.history = HISTORY_PER_BUYER * args.roots * args.middles * args.buyers
    elif args.history < 0:
        parser.error("--history must be 0 or more")
    return Options(**vars(args))


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds, so that the server stops and the databases go


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    signal.signal(signal.SIGTERM, _terminate)
    require_pgbench()
    pg_version = server_version(options.admin_url)
    admin_url, shop = options.admin_url, options.database
    with scratch_database(admin_url, shop) as url:
        print(f"database {shop}: creating the schema and seeding …", flush=True)
        upgrade_database(url)
        seeded = seed(url, options)
        bench_name = f"shequn_pgbench_{os.getpid()}"
        print(
            f"seeded in {seeded.seconds:.0f} s; initialising pgbench (scale "
            f"{options.pgbench_scale}) in {bench_name}",
            flush=True,
        )
        with scratch_database(admin_url, bench_name) as bench_url:
            init_pgbench(bench_url, options.pgbench_scale)
            checkpoint(admin_url)
            wait_for_statistics()
            shop_before = db_counters(admin_url, shop)
            bench_before = db_counters(admin_url, bench_name)
            bench = PgbenchLoad(bench_name, bench_url, options.clients, pgbench_seconds(options))
            print(f"starting {options.workers} worker(s)", flush=True)
            with api_server(url, options) as (port, process):
                loads = [Load(seeded.buyers, CpuProbe(process.pid))]
                if options.hot_upline:
                    loads.append(Load(seeded.hot_buyers, CpuProbe(process.pid), hot=True))
                asyncio.run(drive(port, seeded.api_key, loads, options, bench))
            print("rounds done; checking the books …", flush=True)
            # The server's backends publish their last counters as they exit.
            wait_for_statistics()
            shop_after = db_counters(admin_url, shop)
            bench_after = db_counters(admin_url, bench_name)
        # The database's counters saw every paid order of every load, warm-ups included; the
        # server-wide ones, summed over a load's segments, saw the orders begun in them.
        paid = sum(load.paid_total for load in loads)
        works = [
            db_work(shop_before, shop_after, paid, load.server, load.segment_paid) for load in loads
        ]
        pgbench = summarise_pgbench(bench, bench_before, bench_after)
        books = check_books(url, seeded)
    return report(options, seeded, loads, works, pgbench, books, pg_version)


if __name__ == "__main__":
    sys.exit(main())
