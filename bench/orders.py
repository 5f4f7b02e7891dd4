"""Paid orders through the HTTP API on PostgreSQL, compared with pgbench on the same machine.

The benchmark

1. creates a fresh database and brings it to the current schema;
2. seeds it through the services: a tenant, three products, a two-level commission plan in
   `levels` mode (10 % / 5 %), activated, and a referral forest of roots → middles → buyers, so
   that every buyer has two uplines and the buyers are spread over many of them;
3. seeds an order history through the services too (`create_order` then `pay_order`):
   `--history` orders, two per buyer by default, of one unit of a random SKU by a random buyer,
   with an ANALYZE every few hundred orders, then VACUUM ANALYZE; so the orders, payments and
   commission tables are not empty when the server's prepared statements get their plans,
   as in any real deployment (`--history 0` leaves them empty);
4. creates pgbench's database and initialises it (`pgbench -i -q -s`), takes one `CHECKPOINT`,
   so that neither side inherits the seeding's or the initialisation's dirty pages, then starts
   the API server (`shequn serve`, which gives each worker process a socket of its own) as a
   separate process and waits for `/healthz`;
5. drives paid orders from concurrent keep-alive clients: `POST /api/v1/orders` with an
   idempotency key, then `POST /api/v1/orders/{id}/pay` with the amount due. The clients run
   in this process and share the cores with the server and PostgreSQL, so they are kept cheap:
   an `asyncio.Protocol` per connection, requests formatted from a prebuilt template, responses
   parsed from the bytes (status, Content-Length, and of a created order only its id and
   total); only error bodies are decoded as JSON. A warm-up of `--warmup` seconds comes first,
   unmeasured;
6. measures in `--rounds` rounds, each `--duration`/rounds seconds of orders then
   `--pgbench-duration`/rounds seconds (whole seconds, at least one) of pgbench (TPC-B, the
   default script, with as many clients) on its own database. The speed of this machine's CPU
   drifts by tens of per cent within seconds: two phases run one after the other would mostly
   compare how fast the machine happened to be in each, while interleaved both sides see the
   same conditions (the report also gives each round's ratio and their median);
7. stops the server and checks the books: two commission lines per paid order, as many paid
   orders added during the load as the clients counted (the history, counted after seeding,
   is left out), cached balances equal to their postings, every journal transaction balanced;
8. drops both databases (also on error or interruption).

During a pgbench segment the HTTP clients are parked: a client starts a new paid order only
while an order segment is open, and pgbench starts once every client has finished the order it
had in flight. A parked client closes its connection, so each segment opens fresh ones: how the
kernel spreads them over the workers is drawn again each round (instead of once for the run),
and no idle connection runs into the server's keep-alive timeout just as it is used again. An
order is measured (latency and throughput) only if it began and ended inside one order
segment. With `--orders N` the run stops at the N-th measured order: that order segment ends
early, its round's pgbench segment still runs so that there is a reference, and the remaining
rounds are skipped (the orders still run no longer than `--duration` in all).

What is counted where: the CPU of the server, of PostgreSQL and of this client, the WAL written
and the checkpoints begun are summed over the order segments for the orders and over the
pgbench segments for pgbench, each segment read with the clients parked, outside its timed
part; the closing reading of an order segment waits for the orders in flight at its close, so
per paid order these sums are divided by the orders begun in the segments, measured or not.
pgbench's own CPU is summed over its runs. The databases' own counters (commits, rows written)
only ever see one side, but PostgreSQL publishes those of a connected backend up to ten seconds
late: they are read once before the warm-up and once after the server has stopped, and divided
by every paid order, the warm-up's included (by every transaction, for pgbench).

The last line printed is `orders_per_s=… p99_ms=… ratio_to_pgbench=…`, over all the rounds:
measured paid orders over the seconds of the order segments, against pgbench's transactions
over its seconds.

    python bench/orders.py                      # defaults: 2 workers, 8 clients, 4 rounds
    python bench/orders.py --workers 4 --clients 16 --duration 30
    python bench/orders.py --rounds 1           # one orders phase, then one pgbench phase
    python bench/orders.py --history 0         # order tables empty when the server starts
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, cast
from urllib.parse import quote

import psycopg
from psycopg import sql
from sqlalchemy import Connection, create_engine, func, select
from sqlalchemy.engine import make_url

from shequn.catalog.service import create_product
from shequn.clock import SystemClock
from shequn.context import Ctx
from shequn.db import Database
from shequn.distribution.plans import build_plan_spec
from shequn.distribution.tables import commission_lines
from shequn.flows.plans import activate_plan, create_plan
from shequn.flows.registration import create_member
from shequn.ledger.service import find_balance_mismatches, unbalanced_transactions
from shequn.orders.creation import create_order
from shequn.orders.payment import pay_order
from shequn.orders.rules import OrderStatus
from shequn.orders.tables import orders
from shequn.schema import upgrade_database
from shequn.tenancy.service import create_tenant

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
HOST = "127.0.0.1"
PRODUCTS = (
    ("TRIAL", "试用装", 990, "bait"),
    ("CREAM", "面霜", 19_900, "core"),
    ("KIT", "合伙人礼包", 99_900, "partner"),
)
SKUS = tuple(p[0] for p in PRODUCTS)
LEVEL_RATES_BP = (1_000, 500)
ANALYZE_EVERY = 250  # seeded buyers between two ANALYZE
HISTORY_PER_BUYER = 2  # default paid orders of history per buyer
HISTORY_ANALYZE_EVERY = 500  # history orders between two ANALYZE
TPS_PATTERN = re.compile(r"tps = ([0-9.]+) \(without initial connection time\)")
PROCESSED_PATTERN = re.compile(r"number of transactions actually processed: (\d+)")
DEFAULT_ROUNDS = 4  # order segments, each followed by a pgbench segment


# --- options ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    admin_url: str
    database: str
    workers: int
    clients: int
    duration: float
    orders: int
    warmup: float
    pool_size: int
    roots: int
    middles: int
    buyers: int
    history: int
    pgbench_duration: int
    pgbench_scale: int
    seed: int
    rounds: int = DEFAULT_ROUNDS  # a default, so that bench/order_cost.py need not name it


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


def order_seconds(options: Options) -> float:
    """Length of one order segment."""
    return options.duration / options.rounds


def pgbench_seconds(options: Options) -> int:
    """Length of one pgbench segment: `pgbench -T` takes whole seconds."""
    return max(1, round(options.pgbench_duration / options.rounds))


# --- databases --------------------------------------------------------------------------------


def url_for(admin_url: str, database: str) -> str:
    return make_url(admin_url).set(database=database).render_as_string(hide_password=False)


def create_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextmanager
def scratch_database(admin_url: str, name: str) -> Iterator[str]:
    """A database that exists for the duration of the block."""
    create_database(admin_url, name)
    try:
        yield url_for(admin_url, name)
    finally:
        drop_database(admin_url, name)


def server_version(admin_url: str) -> str:
    with psycopg.connect(admin_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"


def analyze(url: str) -> None:
    """Fresh planner statistics while the forest grows, so that the seeding does not run on
    plans made for empty tables (autovacuum would get there, but later)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")


def vacuum_analyze(url: str) -> None:
    """Clean tables and fresh statistics, so that the server plans against the seeded data."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def seeding_database(url: str) -> Database:
    """The services' own engine, without server-side prepared statements: a generic plan made
    while the tables are still empty would be kept for the whole seeding."""
    engine = create_engine(
        make_url(url).set(drivername="postgresql+psycopg"),
        pool_size=1,
        connect_args={"prepare_threshold": None},
    )
    return Database(engine)


@dataclass(frozen=True)
class DbCounters:
    """What PostgreSQL did for one database (cumulative statistics) and for the whole server
    (WAL position, CPU of its processes)."""

    commits: int
    inserted: int
    updated: int
    wal_bytes: int
    postgres_cpu: float
    checkpoints: int  # begun by the server, on time or on request


def db_counters(admin_url: str, database: str) -> DbCounters:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT d.xact_commit, d.tup_inserted, d.tup_updated,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,"
            " (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter)"
            " FROM pg_stat_database d WHERE d.datname = %s",
            (database,),
        ).fetchone()
    if row is None:
        raise RuntimeError(f"no statistics for database {database}")
    cpu = postgres_cpu_seconds()
    return DbCounters(int(row[0]), int(row[1]), int(row[2]), int(row[3]), cpu, int(row[4]))


def checkpoint(admin_url: str) -> None:
    """Write out what the seeding and pgbench's initialisation left dirty, so that the rounds
    start from a clean state and no checkpoint started by the preparations runs during them."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


@dataclass
class ServerTally:
    """The server-wide counters (WAL position, CPU of PostgreSQL, checkpoints) summed over the
    segments of one side: they also move with the other side's work, so each segment is read
    on its own, at its start and at its end."""

    wal_bytes: int = 0
    postgres_cpu: float = 0.0
    checkpoints: int = 0

    def add(self, before: DbCounters, after: DbCounters) -> None:
        self.wal_bytes += after.wal_bytes - before.wal_bytes
        self.postgres_cpu += after.postgres_cpu - before.postgres_cpu
        self.checkpoints += after.checkpoints - before.checkpoints


@dataclass(frozen=True)
class DbWork:
    """PostgreSQL work per unit (a paid order, a TPC-B transaction)."""

    commits: float
    rows_written: float
    wal_bytes: float
    postgres_cpu_ms: float
    checkpoints: int  # during the side's segments (not per unit)


def db_work(
    before: DbCounters, after: DbCounters, units: int, server: ServerTally, server_units: int
) -> DbWork:
    """Commits and rows written from the database's own counters between `before` and `after`,
    per `units`; WAL and PostgreSQL CPU from the server-wide counters summed over the side's
    segments, per `server_units` (the units of work done between those readings)."""
    n, m = max(1, units), max(1, server_units)
    written = (after.inserted - before.inserted) + (after.updated - before.updated)
    return DbWork(
        commits=(after.commits - before.commits) / n,
        rows_written=written / n,
        wal_bytes=server.wal_bytes / m,
        postgres_cpu_ms=server.postgres_cpu / m * 1000,
        checkpoints=server.checkpoints,
    )


def wait_for_statistics() -> None:
    """Backends publish their counters at most once a second (and when they exit). A backend
    that goes idle less than a second after it last published keeps the rest for ten seconds
    (PostgreSQL 15's idle interval), so the databases' counters are read only when nothing
    that worked on them is still connected: before the server starts, after it has stopped."""
    time.sleep(1.5)


# --- seeding ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    tenant_id: str
    api_key: str
    buyers: list[str]
    uplines: int
    seconds: float  # all of the seeding, the history included
    history: BooksCount  # what the history left in the books
    history_seconds: float


def seed(url: str, options: Options) -> Seeded:
    """Tenant, catalogue, an active two-level plan, the referral forest and an order history,
    all through the services (the same code paths as the API)."""
    started = time.perf_counter()
    db = seeding_database(url)
    clock = SystemClock()
    try:
        tenant_id, api_key = create_tenant(db=db, clock=clock, name="bench")
        ctx = Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="bench")
        for sku, name, price_fen, role in PRODUCTS:
            create_product(ctx, sku=sku, name=name, price_fen=price_fen, ladder_role=role)
        plan = create_plan(
            ctx,
            name="bench 10/5",
            spec=build_plan_spec(
                mode="levels",
                levels=[
                    {"level": level, "rate_bp": rate}
                    for level, rate in enumerate(LEVEL_RATES_BP, start=1)
                ],
            ),
        )
        activate_plan(ctx, plan_id=plan["id"])
        buyers: list[str] = []
        uplines = 0
        for r in range(options.roots):
            root = create_member(ctx, name=f"root {r}")["id"]
            uplines += 1
            for m in range(options.middles):
                middle = create_member(ctx, name=f"middle {r}-{m}", referrer_id=root)["id"]
                uplines += 1
                for b in range(options.buyers):
                    member = create_member(ctx, name=f"buyer {r}-{m}-{b}", referrer_id=middle)
                    if len(member["ancestors"]) < 2:
                        raise RuntimeError(f"buyer {member['id']} has fewer than two uplines")
                    buyers.append(member["id"])
                    if len(buyers) % ANALYZE_EVERY == 0:
                        analyze(url)
        analyze(url)
        history_started = time.perf_counter()
        seed_history(ctx, url, buyers, options.history, options.seed)
        history_seconds = time.perf_counter() - history_started
    finally:
        db.dispose()
    vacuum_analyze(url)
    history = count_books(url, tenant_id)
    if history.paid_orders != options.history:
        raise RuntimeError(
            f"{history.paid_orders} paid orders after seeding a history of {options.history}"
        )
    return Seeded(
        tenant_id,
        api_key,
        buyers,
        uplines,
        time.perf_counter() - started,
        history,
        history_seconds,
    )


def seed_history(ctx: Ctx, url: str, buyers: Sequence[str], count: int, rng_seed: int) -> None:
    """`count` orders of one unit of a random SKU by random buyers, each created and paid
    through the services, so that orders, payments and commissions are not empty tables when
    the statistics are taken and the server plans its statements."""
    rng = random.Random(rng_seed)
    for n in range(count):
        buyer = buyers[rng.randrange(len(buyers))]
        sku = SKUS[rng.randrange(len(SKUS))]
        order, _ = create_order(
            ctx,
            buyer_id=buyer,
            lines=[{"sku": sku, "quantity": 1}],
            idempotency_key=f"hist-{n}",
        )
        paid, _ = pay_order(
            ctx,
            order_id=order["id"],
            provider_txn_id=f"wx-hist-{n}",
            amount_fen=order["total_fen"],
        )
        if paid["status"] != OrderStatus.PAID.value:
            raise RuntimeError(f"history order {order['id']} is {paid['status']} after paying")
        if (n + 1) % HISTORY_ANALYZE_EVERY == 0:
            analyze(url)


# --- the API server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_healthy(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API server exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError("the API server did not answer /healthz in time")


@contextmanager
def api_server(url: str, options: Options) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """uvicorn in its own process group, stopped (and killed if need be) when the block ends."""
    port = free_port()
    env = {
        **os.environ,
        "SHEQUN_DATABASE_URL": url,
        "SHEQUN_API_KEY_CACHE_SECONDS": "30",
        "SHEQUN_DB_POOL_SIZE": str(options.pool_size),
    }
    command = [
        sys.executable,
        "-m",
        "shequn",
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(options.workers),
        "--no-access-log",
    ]
    process = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
    try:
        wait_healthy(port, process)
        yield port, process
    finally:
        stop_process_group(process)


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


# --- CPU accounting ---------------------------------------------------------------------------


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int, *, reaped: bool = False) -> float:
    """User + system CPU of one process (with `reaped`, also that of its exited children),
    or 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def postgres_cpu_seconds() -> float:
    """CPU of the PostgreSQL server, monotonic: live processes plus the backends that have
    exited (the postmaster reaps them, so their time lands in its children's time)."""
    return sum(process_cpu_seconds(pid, reaped=True) for pid in postgres_pids())


def process_group(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
            pids.append(int(entry.name))
    return pids


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if name in ("postgres", "postmaster") or name.startswith("postgres"):
            pids.append(int(entry.name))
    return pids


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


@dataclass(frozen=True)
class CpuSnapshot:
    server: dict[int, float]
    postgres: float
    client: float
    busy: float
    total: float


def cpu_snapshot(server_pgid: int) -> CpuSnapshot:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    busy, total = machine_busy_seconds()
    return CpuSnapshot(
        server={pid: process_cpu_seconds(pid) for pid in process_group(server_pgid)},
        postgres=postgres_cpu_seconds(),
        client=usage.ru_utime + usage.ru_stime,
        busy=busy,
        total=total,
    )


def _grown(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


@dataclass(frozen=True)
class CpuUse:
    server: float
    postgres: float
    client: float
    machine_busy: float
    machine_total: float

    def __add__(self, other: CpuUse) -> CpuUse:
        return CpuUse(
            server=self.server + other.server,
            postgres=self.postgres + other.postgres,
            client=self.client + other.client,
            machine_busy=self.machine_busy + other.machine_busy,
            machine_total=self.machine_total + other.machine_total,
        )


def cpu_between(before: CpuSnapshot, after: CpuSnapshot) -> CpuUse:
    return CpuUse(
        server=_grown(before.server, after.server),
        postgres=after.postgres - before.postgres,
        client=after.client - before.client,
        machine_busy=after.busy - before.busy,
        machine_total=after.total - before.total,
    )


# --- the load ---------------------------------------------------------------------------------


class HttpError(Exception):
    pass


STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})")
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
TRANSFER_ENCODING = re.compile(rb"\r\ntransfer-encoding:", re.IGNORECASE)
# What the driver needs of a created order, read from the bytes: the id as the first key of
# the object and the total as a key of the top-level object (`,"` or `{"` cannot occur inside
# a JSON string; no `{` or `[` before it means no nesting). Anything else goes to json.loads.
ORDER_ID = re.compile(rb'\{"id":"([A-Za-z0-9_-]+)"')
TOTAL_FEN = re.compile(rb'[{,]"total_fen":(\d+)[,}]')
CREATE_PATH = b"/api/v1/orders"
CREATE_BODY = b'{"buyer_id":%s,"lines":[{"sku":%s,"quantity":1}],"idempotency_key":"%s"}'
PAY_PATH = b"/api/v1/orders/%s/pay"
PAY_BODY = b'{"provider_txn_id":"wx-%s","amount_fen":%d}'


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with one request in flight at a time: `send` writes
    the request and returns a future that `data_received` resolves with (status, body) once
    the whole body, by Content-Length, is in. A lost connection fails the future with the
    error (or `IncompleteReadError` on a clean close), like the streams would."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.pending = b""
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, request: bytes) -> asyncio.Future[tuple[int, bytes]]:
        if self.waiter is not None or self.transport is None:
            raise HttpError("a request is already in flight on this connection")
        waiter = self.waiter = self.loop.create_future()
        self.transport.write(request)
        return waiter

    def data_received(self, data: bytes) -> None:
        if self.pending:
            data = self.pending + data
        end = data.find(b"\r\n\r\n")
        if end < 0:
            self.pending = data
            return
        status = STATUS_LINE.match(data)
        length = CONTENT_LENGTH.search(data, 0, end)
        if self.waiter is None:
            self.fail(HttpError("a response without a request"))
        elif status is None:
            self.fail(HttpError("malformed status line"))
        elif TRANSFER_ENCODING.search(data, 0, end):
            self.fail(HttpError("chunked responses are not supported"))
        elif length is None:
            self.fail(HttpError("response without Content-Length"))
        else:
            start = end + 4
            stop = start + int(length.group(1))
            if len(data) < stop:
                self.pending = data
            elif len(data) > stop:
                self.fail(HttpError("more bytes than the response"))
            else:
                waiter, self.waiter, self.pending = self.waiter, None, b""
                if not waiter.done():
                    waiter.set_result((int(status.group(1)), data[start:stop]))

    def fail(self, exc: BaseException) -> None:
        """Fail the request in flight; the connection is not used again."""
        self.lost = True
        waiter, self.waiter, self.pending = self.waiter, None, b""
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(exc if exc is not None else asyncio.IncompleteReadError(self.pending, None))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Client:
    """A minimal HTTP/1.1 keep-alive client; the load generator must stay cheap so that the CPU
    goes to the server. A request is one %-format of a prebuilt template (only the path, the
    Content-Length and the body vary); a response is its status and its raw body."""

    def __init__(self, port: int, api_key: str) -> None:
        self.port = port
        headers = (
            f"Host: {HOST}:{port}\r\nAuthorization: Bearer {api_key}\r\n"
            "Content-Type: application/json\r\nAccept: application/json\r\n"
        ).encode()
        self.template = (
            b"POST %s HTTP/1.1\r\n" + headers.replace(b"%", b"%%") + b"Content-Length: %d\r\n\r\n%s"
        )
        self.connection: HttpConnection | None = None

    async def post(self, path: bytes, body: bytes) -> tuple[int, bytes]:
        connection = self.connection
        if connection is None or connection.lost:
            _, connection = await asyncio.get_running_loop().create_connection(
                HttpConnection, HOST, self.port
            )
            self.connection = connection
        return await connection.send(self.template % (path, len(body), body))

    async def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def created_order(body: bytes) -> tuple[bytes, int]:
    """The id (ready for the pay path) and the total of a created order."""
    found = ORDER_ID.match(body)
    total = TOTAL_FEN.search(body)
    if found is not None and total is not None:
        at = total.start()
        if body.find(b"{", 1, at) < 0 and body.find(b"[", 1, at) < 0:
            return found.group(1), int(total.group(1))
    order = json.loads(body)
    if isinstance(order, dict):
        order_id, total_fen = order.get("id"), order.get("total_fen")
        if isinstance(order_id, str) and isinstance(total_fen, int):
            return quote(order_id, safe="").encode(), total_fen
    raise HttpError("a created order without id or total_fen")


def error_code(body: bytes) -> Any:
    """The `code` of an error body (rare, so it is decoded)."""
    parsed = json.loads(body) if body else {}
    return parsed.get("code") if isinstance(parsed, dict) else None


@dataclass
class Segment:
    """One order segment: new paid orders may start from `opened_at` to `closed_at` (event-loop
    time)."""

    index: int  # its round, from 1
    offset: float  # measured seconds of the segments before it
    opened_at: float = 0.0
    closed_at: float = 0.0
    measured: int = 0  # paid orders that began and ended inside it
    paid: int = 0  # paid orders that began inside it, measured or not

    @property
    def seconds(self) -> float:
        return self.closed_at - self.opened_at

    @property
    def orders_per_s(self) -> float:
        return self.measured / self.seconds if self.seconds > 0 else 0.0


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    # measured seconds from the opening of the first segment, the pauses between them left out
    finished_at: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    paid_total: int = 0  # every successful paid order, warm-up included
    segments: list[Segment] = field(default_factory=list)
    server: ServerTally = field(default_factory=ServerTally)  # over the order segments

    @property
    def window(self) -> float:
        """Measured seconds: those of the order segments."""
        return sum(segment.seconds for segment in self.segments)

    @property
    def segment_paid(self) -> int:
        """Paid orders begun in an order segment, measured or not: those whose work lies between
        the segments' readings of the CPU and of the server-wide counters."""
        return sum(segment.paid for segment in self.segments)


class Gate:
    """Lets the clients start paid orders while a segment (the warm-up or an order segment) is
    open and parks them otherwise. `shut` stops new orders at once; `wait_parked` returns once
    every client has finished the order it had in flight and parked, so that no order runs
    beside pgbench or beside a reading of the counters."""

    def __init__(self, clients: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.clients = clients
        self.parked = 0
        self.is_open = False
        self.over = False
        self.segment: Segment | None = None  # the one open or last opened; None: the warm-up
        self._opened = asyncio.Event()
        self._closed = asyncio.Event()
        self._all_parked = asyncio.Event()

    def open(self, segment: Segment | None) -> None:
        self.segment = segment
        if segment is not None:
            segment.opened_at = self.loop.time()
        self.is_open = True
        self._closed.clear()
        self._opened.set()

    def shut(self) -> None:
        if not self.is_open:
            return
        if self.segment is not None:
            self.segment.closed_at = self.loop.time()
        self.is_open = False
        self._opened.clear()
        self._closed.set()

    async def shut_after(self, seconds: float) -> None:
        """Shut the segment after `seconds`, or return as soon as a client has shut it (the
        measured order `--orders` asked for is in)."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), seconds)
        self.shut()

    async def wait_parked(self) -> None:
        while self.parked < self.clients:
            self._all_parked.clear()
            await self._all_parked.wait()

    async def park(self) -> bool:
        """Wait until a segment opens: True then, False once the run is over."""
        self.parked += 1
        if self.parked == self.clients:
            self._all_parked.set()
        try:
            # A segment may open and shut again before this client runs: it stays parked.
            while not (self.is_open or self.over):
                await self._opened.wait()
        finally:
            self.parked -= 1
        return not self.over

    def finish(self) -> None:
        """No more segments: the parked clients go home."""
        self.over = True
        self._opened.set()


async def drive(
    port: int,
    api_key: str,
    buyers: Sequence[str],
    options: Options,
    cpu: CpuProbe,
    bench: PgbenchLoad,
) -> LoadResult:
    """The clients and the schedule of the run: the warm-up, then the rounds."""
    result = LoadResult()
    gate = Gate(options.clients)
    rng = random.Random(options.seed)
    run_id = uuid.uuid4().hex[:8]
    buyer_json = [json.dumps(b).encode() for b in buyers]
    sku_json = [json.dumps(s).encode() for s in SKUS]
    loop = asyncio.get_running_loop()

    async def client_loop(index: int) -> None:
        client = Client(port, api_key)
        key_prefix = f"{run_id}-{index}-".encode()
        n = 0
        try:
            while True:
                if not gate.is_open:
                    # A fresh connection in each segment (see the module docstring).
                    await client.close()
                    if not await gate.park():
                        return
                segment = gate.segment
                key = b"%s%d" % (key_prefix, n)
                n += 1
                buyer = buyer_json[rng.randrange(len(buyer_json))]
                sku = sku_json[rng.randrange(len(sku_json))]
                began = loop.time()
                try:
                    status, body = await client.post(CREATE_PATH, CREATE_BODY % (buyer, sku, key))
                    if not 200 <= status < 300:
                        result.errors[f"create {status} {error_code(body)}"] += 1
                        continue
                    order_id, total_fen = created_order(body)
                    status, body = await client.post(
                        PAY_PATH % order_id, PAY_BODY % (key, total_fen)
                    )
                    if not 200 <= status < 300:
                        result.errors[f"pay {status} {error_code(body)}"] += 1
                        continue
                except (OSError, asyncio.IncompleteReadError, HttpError, ValueError) as exc:
                    result.errors[f"transport {type(exc).__name__}"] += 1
                    await client.close()
                    continue
                ended = loop.time()
                result.paid_total += 1
                if segment is None:  # the warm-up
                    continue
                segment.paid += 1
                if gate.is_open and gate.segment is segment:  # began and ended inside it
                    segment.measured += 1
                    result.latencies_ms.append((ended - began) * 1000.0)
                    result.finished_at.append(segment.offset + ended - segment.opened_at)
                    if options.orders and len(result.latencies_ms) >= options.orders:
                        gate.shut()
        finally:
            await client.close()

    tasks = [asyncio.create_task(run_rounds(gate, result, cpu, options, bench))]
    tasks += [asyncio.create_task(client_loop(i)) for i in range(options.clients)]
    try:
        await asyncio.gather(*tasks)
    finally:
        # One failed, or the run is interrupted: the others stop too, and are waited for (a
        # pgbench segment stops pgbench). Cancelled once only: a second cancellation would
        # cut the cleanup short.
        for task in tasks:
            if not task.done() and not task.cancelling():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return result


async def run_rounds(
    gate: Gate, result: LoadResult, cpu: CpuProbe, options: Options, bench: PgbenchLoad
) -> None:
    """The warm-up, unmeasured, then each round: an order segment, then a pgbench segment with
    the clients parked."""
    if options.warmup > 0:
        gate.open(None)
        await asyncio.sleep(options.warmup)
        gate.shut()
        await gate.wait_parked()
    print(
        f"warm-up done; {options.rounds} round(s) of {order_seconds(options):.1f} s of orders "
        f"then {bench.seconds} s of pgbench …",
        flush=True,
    )
    for index in range(1, options.rounds + 1):
        segment = await order_segment(gate, result, cpu, options, index)
        done = await pgbench_segment(options.admin_url, bench)
        print(
            f"round {index}/{options.rounds}: {segment.orders_per_s:.0f} paid orders/s, "
            f"{done.tps:.0f} tps",
            flush=True,
        )
        if options.orders and len(result.latencies_ms) >= options.orders:
            break  # the remaining rounds are skipped, pgbench's segment of this one is run
    gate.finish()


async def order_segment(
    gate: Gate, result: LoadResult, cpu: CpuProbe, options: Options, index: int
) -> Segment:
    """One order segment. The readings are taken with the clients parked, outside the timed
    segment; the closing ones once the orders in flight at the close have finished, so that
    all the work of the orders begun in the segment lies between them."""
    before = db_counters(options.admin_url, options.database)
    cpu.start()
    segment = Segment(index, offset=result.window)
    gate.open(segment)
    await gate.shut_after(order_seconds(options))
    await gate.wait_parked()
    cpu.stop()
    result.server.add(before, db_counters(options.admin_url, options.database))
    result.segments.append(segment)
    return segment


class CpuProbe:
    """CPU used by the server, PostgreSQL, this client and the whole machine, summed over the
    windows from each `start` to the next `stop` (the order segments)."""

    def __init__(self, server_pgid: int) -> None:
        self.server_pgid = server_pgid
        self.before: CpuSnapshot | None = None
        self.use: CpuUse | None = None

    def start(self) -> None:
        self.before = cpu_snapshot(self.server_pgid)

    def stop(self) -> None:
        if self.before is not None:
            used = cpu_between(self.before, cpu_snapshot(self.server_pgid))
            self.use = used if self.use is None else self.use + used
            self.before = None


# --- pgbench ----------------------------------------------------------------------------------


def require_pgbench() -> None:
    if shutil.which("pgbench") is None:
        raise RuntimeError("pgbench is not installed")


def init_pgbench(url: str, scale: int) -> None:
    """pgbench's tables for TPC-B (its default script) on a database of its own."""
    subprocess.run(
        ["pgbench", "-i", "-q", "-s", str(scale), url],
        check=True,
        capture_output=True,
        text=True,
    )


@dataclass(frozen=True)
class PgbenchSegment:
    tps: float  # pgbench's own figure, without the time to connect
    transactions: int
    client_cpu: float  # seconds of pgbench's own CPU

    @property
    def seconds(self) -> float:
        """The seconds pgbench measured its transactions over."""
        return self.transactions / self.tps if self.tps > 0 else 0.0


@dataclass
class PgbenchLoad:
    """The pgbench side of the rounds."""

    database: str
    url: str
    clients: int
    seconds: int  # -T of each segment
    segments: list[PgbenchSegment] = field(default_factory=list)
    server: ServerTally = field(default_factory=ServerTally)  # over the pgbench segments


async def run_pgbench(url: str, clients: int, seconds: int) -> PgbenchSegment:
    """One run of TPC-B, as a subprocess of the event loop: the loop keeps running beside it
    (and an interruption cancels the run, which stops pgbench)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = await asyncio.create_subprocess_exec(
        *("pgbench", "-c", str(clients), "-j", str(min(2, clients)), "-T", str(seconds), url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await process.communicate()
    finally:
        if process.returncode is None:  # interrupted: pgbench stops too, before the loop does
            with suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    # pgbench has been reaped, so its CPU is in this process's children's time.
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"pgbench exited with status {process.returncode}:\n{stderr}")
    match = TPS_PATTERN.search(stdout)
    processed = PROCESSED_PATTERN.search(stdout)
    if match is None or processed is None:
        raise RuntimeError(f"no TPS in the pgbench output:\n{stdout}\n{stderr}")
    return PgbenchSegment(
        tps=float(match.group(1)),
        transactions=int(processed.group(1)),
        client_cpu=(used.ru_utime + used.ru_stime) - (children.ru_utime + children.ru_stime),
    )


async def pgbench_segment(admin_url: str, bench: PgbenchLoad) -> PgbenchSegment:
    """One pgbench segment (the clients are parked), between two readings of the server-wide
    counters."""
    before = db_counters(admin_url, bench.database)
    done = await run_pgbench(bench.url, bench.clients, bench.seconds)
    bench.server.add(before, db_counters(admin_url, bench.database))
    bench.segments.append(done)
    return done


@dataclass(frozen=True)
class Pgbench:
    tps: float
    transactions: int
    work: DbWork
    client_cpu_ms: float
    seconds: int  # -T in all
    seconds_each: int  # -T of each segment
    rounds: list[float]  # tps of each segment


def summarise_pgbench(bench: PgbenchLoad, before: DbCounters, after: DbCounters) -> Pgbench:
    """All the pgbench segments: the transactions over the seconds pgbench measured them in
    (with one round, pgbench's own tps), the database's counters between `before` and
    `after`, the server-wide ones over the segments, every unit a transaction."""
    transactions = sum(segment.transactions for segment in bench.segments)
    seconds = sum(segment.seconds for segment in bench.segments)
    client_cpu = sum(segment.client_cpu for segment in bench.segments)
    return Pgbench(
        tps=transactions / seconds if seconds > 0 else 0.0,
        transactions=transactions,
        work=db_work(before, after, transactions, bench.server, transactions),
        client_cpu_ms=client_cpu / max(1, transactions) * 1000,
        seconds=bench.seconds * len(bench.segments),
        seconds_each=bench.seconds,
        rounds=[segment.tps for segment in bench.segments],
    )


# --- checks -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BooksCount:
    paid_orders: int
    commission_lines: int


@dataclass(frozen=True)
class Books:
    paid_orders: int  # added during the load: the history is not counted
    commission_lines: int
    balance_mismatches: int
    unbalanced_transactions: int
    history: BooksCount  # there before the load

    @property
    def ok(self) -> bool:
        levels = len(LEVEL_RATES_BP)
        return (
            self.commission_lines == levels * self.paid_orders
            and self.history.commission_lines == levels * self.history.paid_orders
            and self.balance_mismatches == 0
            and self.unbalanced_transactions == 0
        )


def _count_books(tx: Connection, tenant_id: str) -> BooksCount:
    paid = tx.execute(
        select(func.count()).where(
            orders.c.tenant_id == tenant_id,
            orders.c.status == OrderStatus.PAID.value,
        )
    ).scalar_one()
    lines = tx.execute(
        select(func.count()).where(commission_lines.c.tenant_id == tenant_id)
    ).scalar_one()
    return BooksCount(int(paid), int(lines))


def count_books(url: str, tenant_id: str) -> BooksCount:
    """Paid orders and commission lines of the tenant."""
    db = seeding_database(url)
    try:
        with db.read() as tx:
            return _count_books(tx, tenant_id)
    finally:
        db.dispose()


def check_books(url: str, tenant_id: str, history: BooksCount) -> Books:
    """The books after the load, with the paid orders and commission lines the load added
    (those of the history, counted after seeding, taken off)."""
    db = seeding_database(url)
    try:
        with db.read() as tx:
            total = _count_books(tx, tenant_id)
            mismatches = find_balance_mismatches(tx, tenant_id=tenant_id)
            unbalanced = unbalanced_transactions(tx, tenant_id=tenant_id)
    finally:
        db.dispose()
    return Books(
        total.paid_orders - history.paid_orders,
        total.commission_lines - history.commission_lines,
        len(mismatches),
        len(unbalanced),
        history,
    )


# --- report -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(len(ordered) * q / 100))
    return ordered[min(len(ordered), rank) - 1]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def per_second_profile(finished_at: Sequence[float], window: float) -> str:
    """Paid orders per second in (up to) five equal slices of the window: a falling profile
    means the cost per order grows with the data."""
    slices = max(1, min(5, int(window // 2)))
    width = window / slices
    counts = [0] * slices
    for t in finished_at:
        counts[min(slices - 1, int(t // width))] += 1
    return " ".join(f"{c / width:.0f}" for c in counts)


def print_work_table(order: DbWork, server_cpu_s: float | None, pgbench: Pgbench) -> None:
    """Side by side: what one paid order and one TPC-B transaction cost the database."""
    tpcb = pgbench.work
    app_cpu = f"{server_cpu_s * 1000:.2f}" if server_cpu_s is not None else "?"
    rows = [
        ("database commits", f"{order.commits:.2f}", f"{tpcb.commits:.2f}"),
        ("rows inserted + updated", f"{order.rows_written:.1f}", f"{tpcb.rows_written:.1f}"),
        ("WAL bytes", f"{order.wal_bytes:.0f}", f"{tpcb.wal_bytes:.0f}"),
        ("PostgreSQL CPU ms", f"{order.postgres_cpu_ms:.2f}", f"{tpcb.postgres_cpu_ms:.2f}"),
        ("client / app server CPU ms", app_cpu, f"{pgbench.client_cpu_ms:.2f}"),
    ]
    print(f"  {'per unit of work':<28}{'paid order':>12}{'TPC-B txn':>12}")
    for label, mine, theirs in rows:
        print(f"  {label:<28}{mine:>12}{theirs:>12}")
    print(
        f"  checkpoints begun during the segments: {order.checkpoints} (orders), "
        f"{tpcb.checkpoints} (pgbench); one CHECKPOINT before the warm-up and the rounds"
    )


def print_budget(
    order: DbWork, client_ms: float, server_ms: float, tps: float, target: float = 0.20
) -> None:
    """What the application server may spend per paid order for the ratio to reach `target`
    on this machine, where it shares the cores with PostgreSQL and the load generator."""
    cores = os.cpu_count() or 1
    allowed_total = cores * 1000 / (target * tps)  # CPU ms per paid order at the target
    fixed = order.postgres_cpu_ms + client_ms
    print(
        f"CPU budget per paid order at ratio {target:.2f}: {allowed_total:.2f} ms in all; "
        f"PostgreSQL and the load generator take {fixed:.2f} ms, which leaves the "
        f"application server {allowed_total - fixed:.2f} ms (it spends {server_ms:.2f} ms)"
    )


def ratio(orders_per_s: float, tps: float) -> float:
    return orders_per_s / tps if tps > 0 else 0.0


def rounds_line(load: LoadResult, pgbench: Pgbench) -> str:
    """Each round's paid orders per second, pgbench's tps and their ratio, and the median of
    those ratios: how much of the overall ratio is still the machine's drift."""
    rounds = [
        (segment.index, segment.orders_per_s, tps)
        for segment, tps in zip(load.segments, pgbench.rounds, strict=True)
    ]
    each = "; ".join(
        f"{index}: {orders:.0f}/s vs {tps:.0f} tps = {ratio(orders, tps):.3f}"
        for index, orders, tps in rounds
    )
    middle = statistics.median(ratio(orders, tps) for _, orders, tps in rounds)
    return f"rounds: {each}; median ratio {middle:.3f}"


def report(
    options: Options,
    seeded: Seeded,
    load: LoadResult,
    cpu: CpuUse | None,
    order_work: DbWork,
    pgbench: Pgbench,
    books: Books,
    pg_version: str,
) -> int:
    print(
        f"machine: {os.cpu_count()} cores, {cpu_model()}, {memory_gib():.0f} GiB, "
        f"PostgreSQL {pg_version}, Python {platform.python_version()}"
    )
    print(
        f"seeded in {seeded.seconds:.0f} s: {len(seeded.buyers)} buyers under {seeded.uplines} "
        f"uplines ({options.roots} roots × {options.middles} middles × {options.buyers} buyers)"
    )
    if seeded.history.paid_orders:
        print(
            f"history: {seeded.history.paid_orders} orders created and paid through the "
            f"services in {seeded.history_seconds:.0f} s "
            f"({seeded.history.paid_orders / len(seeded.buyers):.1f} per buyer), "
            f"{seeded.history.commission_lines} commission lines, before VACUUM ANALYZE"
        )
    else:
        print("history: none (--history 0), the server plans against empty order tables")
    print(
        f"server: {options.workers} uvicorn worker(s), pool {options.pool_size}; "
        f"{options.clients} clients, {load.window:.1f} s measured after {options.warmup:.0f} s"
    )
    errors = ", ".join(f"{k}: {v}" for k, v in sorted(load.errors.items())) or "none"
    print(
        f"paid orders: {len(load.latencies_ms)} measured, {load.segment_paid} begun in the "
        f"order segments, {load.paid_total} in all; errors: {errors}"
    )
    if not load.latencies_ms:
        print("no paid order completed in the window")
        print("orders_per_s=0.0 p99_ms=0.0 ratio_to_pgbench=0.000")
        return 1
    orders_per_s = len(load.latencies_ms) / load.window
    p50 = percentile(load.latencies_ms, 50)
    p99 = percentile(load.latencies_ms, 99)
    print(
        f"throughput: {orders_per_s:.1f} paid orders/s "
        f"({2 * orders_per_s:.0f} requests/s); by slice: "
        f"{per_second_profile(load.finished_at, load.window)}"
    )
    print(
        f"latency of a paid order (create + pay): p50 {p50:.1f} ms, "
        f"p90 {percentile(load.latencies_ms, 90):.1f} ms, p99 {p99:.1f} ms, "
        f"max {max(load.latencies_ms):.1f} ms"
    )
    # Per paid order, the CPU summed over the order segments is divided by the orders begun in
    # them, measured or not: the probe stops once the orders in flight at a close are done.
    n = max(1, load.segment_paid)
    if cpu is not None:
        cores = os.cpu_count() or 1
        busy = cpu.machine_busy / cpu.machine_total * cores if cpu.machine_total else 0.0
        print(
            f"CPU per paid order: server {cpu.server / n * 1000:.2f} ms, "
            f"PostgreSQL {cpu.postgres / n * 1000:.2f} ms, client {cpu.client / n * 1000:.2f} ms; "
            f"machine busy {busy:.2f} of {os.cpu_count()} cores"
        )
    tps = pgbench.tps
    print(
        f"pgbench TPC-B: scale {options.pgbench_scale}, {options.clients} clients, "
        f"{pgbench.seconds} s in {len(pgbench.rounds)} round(s) of {pgbench.seconds_each} s: "
        f"{tps:.0f} tps"
    )
    print(rounds_line(load, pgbench))
    print_work_table(order_work, cpu.server / n if cpu else None, pgbench)
    if cpu is not None:
        print_budget(order_work, cpu.client / n * 1000, cpu.server / n * 1000, tps)
    verdict = "ok" if books.ok else "FAILED"
    history = books.history
    before = (
        f" (besides the history's {history.paid_orders} paid orders and "
        f"{history.commission_lines} commission lines)"
        if history.paid_orders or history.commission_lines
        else ""
    )
    print(
        f"books: {books.paid_orders} paid orders (client counted {load.paid_total}), "
        f"{books.commission_lines} commission lines{before}, {books.balance_mismatches} balance "
        f"mismatches, {books.unbalanced_transactions} unbalanced transactions: {verdict}"
    )
    consistent = books.ok and books.paid_orders == load.paid_total
    if not consistent:
        print("CHECK FAILED: the books do not match the paid orders")
    overall = ratio(orders_per_s, tps)
    print(f"orders_per_s={orders_per_s:.1f} p99_ms={p99:.1f} ratio_to_pgbench={overall:.3f}")
    return 0 if consistent and not load.errors else 1


# --- main -------------------------------------------------------------------------------------


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


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
                probe = CpuProbe(process.pid)
                load = asyncio.run(
                    drive(port, seeded.api_key, seeded.buyers, options, probe, bench)
                )
            print("rounds done; checking the books …", flush=True)
            # Read once the server has stopped: its backends publish their last counters as
            # they exit (see wait_for_statistics).
            wait_for_statistics()
            shop_after = db_counters(admin_url, shop)
            bench_after = db_counters(admin_url, bench_name)
        # The database's own counters saw every paid order, the warm-up's included; the
        # server-wide ones, summed over the order segments, saw those begun in the segments.
        order_work = db_work(
            shop_before, shop_after, load.paid_total, load.server, load.segment_paid
        )
        pgbench = summarise_pgbench(bench, bench_before, bench_after)
        books = check_books(url, seeded.tenant_id, seeded.history)
    return report(options, seeded, load, probe.use, order_work, pgbench, books, pg_version)


if __name__ == "__main__":
    sys.exit(main())
