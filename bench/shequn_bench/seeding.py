"""Scratch databases and the shop seeded in them, through the services (the API's code paths)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

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
from shequn.orders.creation import create_order
from shequn.orders.payment import pay_order
from shequn.orders.rules import OrderStatus
from shequn.orders.tables import orders
from shequn.tenancy.service import create_tenant

from .options import LEVEL_RATES_BP, PRODUCTS, SKUS, Options

ANALYZE_EVERY = 250  # seeded buyers between two ANALYZE
HISTORY_ANALYZE_EVERY = 500  # history orders between two ANALYZE

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
    """A database that exists for the duration of the block (dropped on error too)."""
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
    """Fresh statistics while the data grows, so that the seeding does not run on plans made
    for empty tables (autovacuum would get there, but later)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")


def vacuum_analyze(url: str) -> None:
    """Clean tables and fresh statistics, so that the server plans against the seeded data."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def checkpoint(admin_url: str) -> None:
    """Write out what the preparations left dirty, so that no checkpoint they caused runs
    during the rounds."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def seeding_database(url: str) -> Database:
    """The services' engine without server-side prepared statements: a generic plan made while
    the tables are still empty would be kept for the whole seeding."""
    engine = create_engine(
        make_url(url).set(drivername="postgresql+psycopg"),
        pool_size=1,
        connect_args={"prepare_threshold": None},
    )
    return Database(engine)


# --- what the books hold ----------------------------------------------------------------------


@dataclass(frozen=True)
class BooksCount:
    paid_orders: int
    commission_lines: int


def books_count(tx: Connection, tenant_id: str) -> BooksCount:
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
            return books_count(tx, tenant_id)
    finally:
        db.dispose()


# --- the shop ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    tenant_id: str
    api_key: str
    buyers: list[str]
    uplines: int
    seconds: float  # all of the seeding, the history included
    history: BooksCount  # what the history left in the books
    history_seconds: float
    hot_buyers: list[str] = field(default_factory=list)  # with --hot-upline
    hot_uplines: tuple[str, ...] = ()  # the hot middle member, then the hot root


def seed(url: str, options: Options) -> Seeded:
    """Tenant, catalogue, an active two-level plan, the referral forest (and with
    `hot_upline` the hot tree) and an order history, all through the services."""
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
                    add_buyer(ctx, url, f"buyer {r}-{m}-{b}", middle, buyers)
        hot_buyers: list[str] = []
        hot_uplines: tuple[str, ...] = ()
        if options.hot_upline:
            hot_uplines = seed_hot_tree(ctx, url, len(buyers), hot_buyers, seeded=len(buyers))
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
        tenant_id=tenant_id,
        api_key=api_key,
        buyers=buyers,
        uplines=uplines,
        seconds=time.perf_counter() - started,
        history=history,
        history_seconds=history_seconds,
        hot_buyers=hot_buyers,
        hot_uplines=hot_uplines,
    )


def add_buyer(
    ctx: Ctx, url: str, name: str, referrer_id: str, buyers: list[str], seeded: int = 0
) -> None:
    """One buyer with two uplines, appended to `buyers`; an ANALYZE every ANALYZE_EVERY buyers
    (`seeded`: the buyers seeded before this list)."""
    member = create_member(ctx, name=name, referrer_id=referrer_id)
    if len(member["ancestors"]) < 2:
        raise RuntimeError(f"buyer {member['id']} has fewer than two uplines")
    buyers.append(member["id"])
    if (seeded + len(buyers)) % ANALYZE_EVERY == 0:
        analyze(url)


def seed_hot_tree(
    ctx: Ctx, url: str, count: int, buyers: list[str], seeded: int
) -> tuple[str, str]:
    """One root → one middle → `count` buyers: every payment of the hot load credits the same
    two wallets. Returns (middle, root)."""
    root = create_member(ctx, name="hot root")["id"]
    middle = create_member(ctx, name="hot middle", referrer_id=root)["id"]
    for b in range(count):
        add_buyer(ctx, url, f"hot buyer {b}", middle, buyers, seeded)
    return middle, root


def seed_history(ctx: Ctx, url: str, buyers: Sequence[str], count: int, rng_seed: int) -> None:
    """`count` paid orders of one unit of a random SKU by random buyers, so that orders,
    payments and commissions are not empty tables when the server plans its statements."""
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
