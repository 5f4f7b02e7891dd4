"""The console's heaviest pages with 100,000 members and 1,000,000 orders, on SQLite and on
PostgreSQL: the member list, a member 360 and the dashboard, each requested `--requests` times
through a real server (uvicorn on 127.0.0.1, one logged-in console user, keep-alive), against
the page's main query alone (the read the page is built on, called directly) in the same run.

The data is written in bulk (not through the use cases, which would take hours): members in a
referral forest at most four levels deep with its closure rows and accounts, orders spread over
the last year with every buyer's purchase facts summed from them, and a commission line for
every order of a bound buyer. Each page and its query are timed alternately, after a warm-up.

    python bench/console.py                       # both databases, 100k members, 1M orders
    python bench/console.py --backend sqlite --members 20000 --orders 200000
    python bench/console.py --requests 100

The dashboard's page serves figures computed at most 30 seconds ago (recomputed in the
background while older ones are shown), so its page is faster than its query; the member
pages query on every request. Prints p50 and p95 per page and per query; the last line is
`p95_ms=… ratio_to_query=…`, the slowest page's p95 and the largest ratio of a page's p95 to
its query's p95.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psycopg
import uvicorn
from sqlalchemy import insert

from shequn.catalog.service import create_product
from shequn.clock import SystemClock
from shequn.config import Settings
from shequn.console.service import create_console_user
from shequn.context import Ctx
from shequn.db import Database
from shequn.distribution.tables import commission_lines
from shequn.entrypoints.app import create_app
from shequn.ids import encode_body
from shequn.insights.console_dashboard import dashboard
from shequn.insights.console_members import member_360, search_members
from shequn.ledger.rules import (
    CACHED_MEMBER_PURPOSES,
    MEMBER_PURPOSES,
    MEMBER_SUFFIXES,
    POINTS_CURRENCY,
    Purpose,
)
from shequn.ledger.tables import accounts
from shequn.members.tables import members
from shequn.orders.tables import orders
from shequn.referrals.tables import referral_paths
from shequn.schema import upgrade_database
from shequn.tenancy.service import create_tenant

ADMIN_URL = os.environ.get(
    "SHEQUN_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PASSWORD = "bench-password-2026"
CHUNK = 10_000


def ids(prefix: str, n: int, start_ms: int) -> list[str]:
    """`n` time-ordered ids of one kind (as `new_id` makes them, without its lock)."""
    rand = random.getrandbits(60)
    return [f"{prefix}_{encode_body(start_ms + i // 1000, rand + i)}" for i in range(n)]


def bulk(db: Database, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    with db.transaction() as tx:
        for start in range(0, len(rows), CHUNK):
            tx.execute(insert(table), list(rows[start : start + CHUNK]))


def seed(db: Database, n_members: int, n_orders: int) -> tuple[str, list[str]]:
    """Write the tenant's data; returns its id and the members who bought most."""
    rng = random.Random(7)
    clock = SystemClock()
    now = clock.now().replace(microsecond=0)
    tenant_id, _ = create_tenant(db=db, clock=clock, name="压测品牌")
    ctx = Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="bench")
    create_console_user(ctx, login="bench@console.test", password=PASSWORD, role="owner")
    create_product(ctx, sku="CORE-1", name="修护面霜", price_fen=9_900, ladder_role="core")
    start = now - timedelta(days=365)
    base_ms = int(start.timestamp() * 1000)
    member_ids = ids("mem", n_members, base_ms)
    joined = sorted(start + timedelta(seconds=rng.uniform(0, 365 * 86400)) for _ in member_ids)
    referrer: list[int | None] = []
    depth: list[int] = []
    for i in range(n_members):
        if i < 200 or rng.random() < 0.3:
            referrer.append(None)
            depth.append(0)
            continue
        parent = int(i * rng.random() ** 2)  # early members refer most (a heavy tail)
        while depth[parent] >= 3:
            parent = referrer[parent]  # type: ignore[assignment]
        referrer.append(parent)
        depth.append(depth[parent] + 1)
    chains: list[list[int]] = []
    for i in range(n_members):
        chain, at = [], referrer[i]
        while at is not None:
            chain.append(at)
            at = referrer[at]
        chains.append(chain)
    # Orders: buyers drawn with a heavy tail, times uniform over the year after joining.
    weights = [1.0 / (1 + (i % 997)) ** 0.8 for i in range(n_members)]
    buyers = rng.choices(range(n_members), weights=weights, k=n_orders)
    order_rows, line_rows = [], []
    facts: dict[int, list[Any]] = {}
    order_ids = ids("ord", n_orders, base_ms)
    line_ids = ids("com", n_orders, base_ms)
    for k, b in enumerate(buyers):
        paid_at = joined[b] + timedelta(
            seconds=rng.uniform(0, max(1.0, (now - joined[b]).total_seconds()))
        )
        total = rng.choice((1_990, 9_900, 9_900, 19_800, 39_800))
        refunded = total if rng.random() < 0.03 else 0
        order_rows.append(
            {
                "tenant_id": tenant_id,
                "id": order_ids[k],
                "buyer_id": member_ids[b],
                "status": "refunded" if refunded else "closed",
                "subtotal_fen": total,
                "discount_fen": 0,
                "total_fen": total,
                "paid_fen": total,
                "refunded_fen": refunded,
                "created_at": paid_at,
                "paid_at": paid_at,
                "updated_at": paid_at,
            }
        )
        f = facts.setdefault(b, [0, 0, None, None])
        f[0] += 1
        f[1] += total - refunded
        f[2] = paid_at if f[2] is None or paid_at < f[2] else f[2]
        f[3] = paid_at if f[3] is None or paid_at > f[3] else f[3]
        if chains[b]:
            line_rows.append(
                {
                    "tenant_id": tenant_id,
                    "id": line_ids[k],
                    "order_id": order_ids[k],
                    "order_line_id": "ol_" + order_ids[k][4:],
                    "plan_id": "plan_bench",
                    "beneficiary_id": member_ids[chains[b][0]],
                    "level": 1,
                    "kind": "level",
                    "rate_bp": 1_000,
                    "base_fen": total,
                    "amount_fen": total // 10,
                    "cancelled_fen": total // 10 if refunded else 0,
                    "reversed_fen": 0,
                    "withdrawn_fen": 0,
                    "status": "cancelled" if refunded else "available",
                    "created_at": paid_at,
                    "released_at": paid_at,
                }
            )
    direct = [0] * n_members
    team = [0] * n_members
    for i in range(n_members):
        if referrer[i] is not None:
            direct[referrer[i]] += 1  # type: ignore[index]
        for a in chains[i]:
            team[a] += 1
    member_rows, path_rows, account_rows = [], [], []
    for i, mid in enumerate(member_ids):
        f = facts.get(i, [0, 0, None, None])
        chain = chains[i]
        member_rows.append(
            {
                "tenant_id": tenant_id,
                "id": mid,
                "name": f"会员{i:06d}",
                "phone": f"+86139{i:08d}",
                "external_id": None,
                "tier_id": None,
                "referrer_id": member_ids[chain[0]] if chain else None,
                "ancestor_2": member_ids[chain[1]] if len(chain) > 1 else None,
                "ancestor_3": member_ids[chain[2]] if len(chain) > 2 else None,
                "binding_source": "share_link" if chain else None,
                "bound_at": joined[i] if chain else None,
                "direct_count": direct[i],
                "team_count": team[i],
                "paid_order_count": f[0],
                "lifetime_order_count": f[0],
                "paid_total_fen": f[1],
                "max_order_fen": 39_800 if f[0] else 0,
                "first_paid_at": f[2],
                "last_paid_at": f[3],
                "version": 0,
                "created_at": joined[i],
                "updated_at": joined[i],
            }
        )
        path_rows.append(
            {"tenant_id": tenant_id, "ancestor_id": mid, "descendant_id": mid, "depth": 0}
        )
        for d, a in enumerate(chain, start=1):
            path_rows.append(
                {
                    "tenant_id": tenant_id,
                    "ancestor_id": member_ids[a],
                    "descendant_id": mid,
                    "depth": d,
                }
            )
        for purpose in MEMBER_PURPOSES:
            account_rows.append(
                {
                    "tenant_id": tenant_id,
                    "id": mid + MEMBER_SUFFIXES[purpose],
                    "owner_type": "member",
                    "owner_id": mid,
                    "purpose": purpose.value,
                    "currency": POINTS_CURRENCY if purpose is Purpose.POINTS else "CNY",
                    "tracks_balance": purpose in CACHED_MEMBER_PURPOSES,
                    "balance": 0,
                }
            )
    for table, rows in (
        (members, member_rows),
        (referral_paths, path_rows),
        (accounts, account_rows),
        (orders, order_rows),
        (commission_lines, line_rows),
    ):
        t0 = time.perf_counter()
        bulk(db, table, rows)
        print(f"  {table.name}: {len(rows):,} rows in {time.perf_counter() - t0:.1f} s", flush=True)
    if db.is_postgres:
        with psycopg.connect(
            db.engine.url.render_as_string(hide_password=False).replace(
                "postgresql+psycopg", "postgresql"
            ),
            autocommit=True,
        ) as conn:
            conn.execute("VACUUM ANALYZE")
    else:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    top = sorted(facts, key=lambda b: -facts[b][0])[:20]
    return tenant_id, [member_ids[b] for b in top]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(db: Database, url: str) -> Iterator[str]:
    app = create_app(Settings(environment="development", database_url=url), db=db)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def logged_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60, follow_redirects=True)
    page = client.get("/console/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    answer = client.post(
        "/console/login",
        data={"csrf_token": token.group(1), "login": "bench@console.test", "password": PASSWORD},
    )
    assert answer.status_code == 200, answer.status_code
    assert str(answer.url).endswith("/console/"), answer.url
    return client


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def measure(
    client: httpx.Client, ctx: Ctx, requests: int, top: list[str], query_runs: int
) -> list[tuple[str, list[float], list[float]]]:
    pages: list[tuple[str, Callable[[int], str], Callable[[int], object]]] = [
        ("member list", lambda i: "/console/members", lambda i: search_members(ctx, limit=50)),
        (
            "member 360",
            lambda i: f"/console/members/{top[i % len(top)]}",
            lambda i: member_360(ctx, member_id=top[i % len(top)]),
        ),
        ("dashboard", lambda i: "/console/?days=30", lambda i: dashboard(ctx, days=30)),
    ]
    out = []
    for name, path, query in pages:
        for i in range(5):  # warm-up
            assert client.get(path(i)).status_code == 200
            query(i)
        page_ms, query_ms = [], []
        every = max(1, requests // query_runs)
        for i in range(requests):
            t0 = time.perf_counter()
            answer = client.get(path(i))
            page_ms.append((time.perf_counter() - t0) * 1000)
            assert answer.status_code == 200, (name, answer.status_code)
            if i % every == 0:
                t0 = time.perf_counter()
                query(i)
                query_ms.append((time.perf_counter() - t0) * 1000)
        out.append((name, page_ms, query_ms))
        print(
            f"  {name:12} page p50 {percentile(page_ms, 0.5):7.1f} ms  p95 "
            f"{percentile(page_ms, 0.95):7.1f} ms   query p50 {percentile(query_ms, 0.5):7.1f} ms"
            f"  p95 {percentile(query_ms, 0.95):7.1f} ms",
            flush=True,
        )
    return out


@contextmanager
def database(backend: str) -> Iterator[tuple[Database, str]]:
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="shequn-bench-")
        url = f"sqlite:///{Path(folder) / 'console.db'}"
        upgrade_database(url)
        db = Database.from_url(url, pool_size=8)
        try:
            yield db, url
        finally:
            db.dispose()
        return
    name = f"shequn_bench_console_{os.getpid()}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade_database(url)
        db = Database.from_url(url, pool_size=8)
        try:
            yield db, url
        finally:
            db.dispose()
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/console.py", description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--query-runs",
        type=int,
        default=40,
        help="how many of the requests are each followed by a run of the main query alone",
    )
    options = parser.parse_args(argv)
    backends = ("sqlite", "postgresql") if options.backend == "both" else (options.backend,)
    worst_p95, worst_ratio = 0.0, 0.0
    for backend in backends:
        print(
            f"{backend}: seeding {options.members:,} members, {options.orders:,} orders", flush=True
        )
        with database(backend) as (db, url):
            tenant_id, top = seed(db, options.members, options.orders)
            ctx = Ctx(db=db, clock=SystemClock(), tenant_id=tenant_id, actor="bench")
            with serving(db, url) as base:
                client = logged_in(base)
                for _name, page_ms, query_ms in measure(
                    client, ctx, options.requests, top, options.query_runs
                ):
                    p95 = percentile(page_ms, 0.95)
                    worst_p95 = max(worst_p95, p95)
                    worst_ratio = max(worst_ratio, p95 / max(percentile(query_ms, 0.95), 0.001))
                client.close()
    print(f"p95_ms={worst_p95:.1f} ratio_to_query={worst_ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
