"""The books check after the run and the printed report, whose last line is the result."""

from __future__ import annotations

import math
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select

from shequn.distribution.tables import commission_lines
from shequn.ledger.rules import Purpose, member_account
from shequn.ledger.service import find_balance_mismatches, unbalanced_transactions
from shequn.ledger.tables import postings
from shequn.orders.rules import OrderStatus
from shequn.orders.tables import orders

from .accounting import DbWork
from .load import Load
from .options import LEVEL_RATES_BP, Options
from .pgbench import Pgbench
from .seeding import BooksCount, Seeded, books_count, seeding_database

# --- the books --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HotBooks:
    """What the hot load added, and the hot uplines' share of it."""

    paid_orders: int
    commission_lines: int
    upline_lines: tuple[int, ...]  # credited to each hot upline: every hot order credits both
    # Hot uplines' accounts whose postings disagree: a pending wallet with the commissions it
    # was credited (nothing is released or withdrawn during a run), a cached balance with
    # its postings.
    wallet_mismatches: int

    @property
    def ok(self) -> bool:
        return (
            self.commission_lines == len(LEVEL_RATES_BP) * self.paid_orders
            and all(lines == self.paid_orders for lines in self.upline_lines)
            and self.wallet_mismatches == 0
        )


@dataclass(frozen=True)
class Books:
    paid_orders: int  # added during the (normal) load: the history is not counted
    commission_lines: int
    balance_mismatches: int  # over the tenant, both loads
    unbalanced_transactions: int
    history: BooksCount  # there before the load
    hot: HotBooks | None = None  # with --hot-upline

    @property
    def ok(self) -> bool:
        levels = len(LEVEL_RATES_BP)
        return (
            self.commission_lines == levels * self.paid_orders
            and self.history.commission_lines == levels * self.history.paid_orders
            and self.balance_mismatches == 0
            and self.unbalanced_transactions == 0
        )


def count(tx: Connection, *conditions: ColumnElement[bool]) -> int:
    return int(tx.execute(select(func.count()).where(*conditions)).scalar_one())


def pending_wallet(tx: Connection, tenant_id: str, member_id: str) -> int:
    """What the member's pending wallet holds, from its postings."""
    account = member_account(member_id, Purpose.WALLET_PENDING)
    total = tx.execute(
        select(func.coalesce(func.sum(postings.c.amount), 0)).where(
            postings.c.tenant_id == tenant_id, postings.c.account_id == account
        )
    ).scalar_one()
    return int(total)


def commissions(tx: Connection, tenant_id: str, member_id: str) -> int:
    """What the member's commission lines awarded."""
    total = tx.execute(
        select(func.coalesce(func.sum(commission_lines.c.amount_fen), 0)).where(
            commission_lines.c.tenant_id == tenant_id,
            commission_lines.c.beneficiary_id == member_id,
        )
    ).scalar_one()
    return int(total)


def hot_books(tx: Connection, seeded: Seeded, mismatches: Sequence[dict[str, Any]]) -> HotBooks:
    """What the hot load added: its buyers are its own, and so are its two uplines."""
    tenant_id = seeded.tenant_id
    hot_orders = select(orders.c.id).where(
        orders.c.tenant_id == tenant_id, orders.c.buyer_id.in_(seeded.hot_buyers)
    )
    paid = count(
        tx,
        orders.c.tenant_id == tenant_id,
        orders.c.buyer_id.in_(seeded.hot_buyers),
        orders.c.status == OrderStatus.PAID.value,
    )
    lines = count(
        tx, commission_lines.c.tenant_id == tenant_id, commission_lines.c.order_id.in_(hot_orders)
    )
    upline_lines = tuple(
        count(
            tx,
            commission_lines.c.tenant_id == tenant_id,
            commission_lines.c.beneficiary_id == upline,
        )
        for upline in seeded.hot_uplines
    )
    prefixes = tuple(f"{upline}." for upline in seeded.hot_uplines)
    cached = sum(1 for m in mismatches if str(m["account_id"]).startswith(prefixes))
    pending = sum(
        1
        for upline in seeded.hot_uplines
        if pending_wallet(tx, tenant_id, upline) != commissions(tx, tenant_id, upline)
    )
    return HotBooks(paid, lines, upline_lines, cached + pending)


def check_books(url: str, seeded: Seeded) -> Books:
    """The books after the run, with what each load added (the history taken off)."""
    tenant_id = seeded.tenant_id
    db = seeding_database(url)
    try:
        with db.read() as tx:
            total = books_count(tx, tenant_id)
            mismatches = find_balance_mismatches(tx, tenant_id=tenant_id)
            unbalanced = unbalanced_transactions(tx, tenant_id=tenant_id)
            hot = hot_books(tx, seeded, mismatches) if seeded.hot_buyers else None
    finally:
        db.dispose()
    history = seeded.history
    hot_paid, hot_lines = (hot.paid_orders, hot.commission_lines) if hot else (0, 0)
    return Books(
        total.paid_orders - history.paid_orders - hot_paid,
        total.commission_lines - history.commission_lines - hot_lines,
        len(mismatches),
        len(unbalanced),
        history,
        hot,
    )


# --- the report -------------------------------------------------------------------------------


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


def server_cpu_ms(load: Load) -> str:
    """The API server's CPU per paid order begun in the load's segments."""
    cpu = load.probe.use
    return f"{cpu.server / max(1, load.segment_paid) * 1000:.2f}" if cpu is not None else "?"


def print_work_table(sides: Sequence[tuple[Load, DbWork]], pgbench: Pgbench) -> None:
    """Side by side: what one paid order (of each load) and one TPC-B transaction cost."""
    tpcb = pgbench.work
    rows = [
        ("database commits", [f"{w.commits:.2f}" for _, w in sides], f"{tpcb.commits:.2f}"),
        (
            "rows inserted + updated",
            [f"{w.rows_written:.1f}" for _, w in sides],
            f"{tpcb.rows_written:.1f}",
        ),
        ("WAL bytes", [f"{w.wal_bytes:.0f}" for _, w in sides], f"{tpcb.wal_bytes:.0f}"),
        (
            "PostgreSQL CPU ms",
            [f"{w.postgres_cpu_ms:.2f}" for _, w in sides],
            f"{tpcb.postgres_cpu_ms:.2f}",
        ),
        (
            "client / app server CPU ms",
            [server_cpu_ms(load) for load, _ in sides],
            f"{pgbench.client_cpu_ms:.2f}",
        ),
    ]
    names = "".join(f"{'hot order' if load.hot else 'paid order':>12}" for load, _ in sides)
    print(f"  {'per unit of work':<28}{names}{'TPC-B txn':>12}")
    for label, mine, theirs in rows:
        print(f"  {label:<28}{''.join(f'{value:>12}' for value in mine)}{theirs:>12}")
    if len(sides) > 1:
        print(
            "  commits and rows: per paid order of both loads, the database's counters do not "
            "tell them apart"
        )
    orders_checkpoints = ", ".join(f"{w.checkpoints} ({load.orders})" for load, w in sides)
    print(
        f"  checkpoints begun during the segments: {orders_checkpoints}, "
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


def orders_per_s(load: Load) -> float:
    """Measured paid orders over the seconds of the load's order segments."""
    return len(load.latencies_ms) / load.window if load.window > 0 else 0.0


def p99_ms(load: Load) -> float:
    return percentile(load.latencies_ms, 99) if load.latencies_ms else 0.0


def rounds_line(load: Load, pgbench: Pgbench) -> str:
    """Each round's ratio and their median: how much of the overall ratio is the machine's
    drift."""
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


def hot_rounds_line(normal: Load, hot: Load, pgbench: Pgbench) -> str:
    """Each round's hot ratio, to pgbench and to the normal load of the same round."""
    rounds = [
        (segment.index, segment.orders_per_s, other.orders_per_s, tps)
        for segment, other, tps in zip(hot.segments, normal.segments, pgbench.rounds, strict=True)
    ]
    each = "; ".join(
        f"{index}: {hot_s:.0f}/s vs {tps:.0f} tps = {ratio(hot_s, tps):.3f}, "
        f"{ratio(hot_s, normal_s):.3f} of normal"
        for index, hot_s, normal_s, tps in rounds
    )
    to_pgbench = statistics.median(ratio(hot_s, tps) for _, hot_s, _, tps in rounds)
    to_normal = statistics.median(ratio(hot_s, normal_s) for _, hot_s, normal_s, _ in rounds)
    return f"hot rounds: {each}; median ratio {to_pgbench:.3f}, median of normal {to_normal:.3f}"


def errors_text(load: Load) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(load.errors.items())) or "none"


def print_load(load: Load) -> None:
    """Throughput, latency and CPU of one load's measured paid orders."""
    hot = "hot " if load.hot else ""
    if not load.latencies_ms:
        print(f"no {hot}paid order completed in the window")
        return
    speed = orders_per_s(load)
    print(
        f"{hot}throughput: {speed:.1f} paid orders/s "
        f"({2 * speed:.0f} requests/s); by slice: "
        f"{per_second_profile(load.finished_at, load.window)}"
    )
    print(
        f"latency of a {hot}paid order (create + pay): "
        f"p50 {percentile(load.latencies_ms, 50):.1f} ms, "
        f"p90 {percentile(load.latencies_ms, 90):.1f} ms, p99 {p99_ms(load):.1f} ms, "
        f"max {max(load.latencies_ms):.1f} ms"
    )
    # Divided by the orders begun in the segments, measured or not: the probe stops once the
    # orders in flight at a close are done.
    n = max(1, load.segment_paid)
    cpu = load.probe.use
    if cpu is not None:
        cores = os.cpu_count() or 1
        busy = cpu.machine_busy / cpu.machine_total * cores if cpu.machine_total else 0.0
        print(
            f"CPU per {hot}paid order: server {cpu.server / n * 1000:.2f} ms, "
            f"PostgreSQL {cpu.postgres / n * 1000:.2f} ms, client {cpu.client / n * 1000:.2f} ms; "
            f"machine busy {busy:.2f} of {os.cpu_count()} cores"
        )


def result_line(loads: Sequence[Load], tps: float) -> str:
    """The key=value line: the normal load against pgbench, then the hot load against it."""
    normal = loads[0]
    line = (
        f"orders_per_s={orders_per_s(normal):.1f} p99_ms={p99_ms(normal):.1f} "
        f"ratio_to_pgbench={ratio(orders_per_s(normal), tps):.3f}"
    )
    for hot in loads[1:]:
        line += (
            f" hot_orders_per_s={orders_per_s(hot):.1f} hot_p99_ms={p99_ms(hot):.1f} "
            f"hot_upline_ratio={ratio(orders_per_s(hot), orders_per_s(normal)):.3f}"
        )
    return line


def report(
    options: Options,
    seeded: Seeded,
    loads: Sequence[Load],
    works: Sequence[DbWork],
    pgbench: Pgbench,
    books: Books,
    pg_version: str,
) -> int:
    """Print the report; the exit status: 0 if the books match and no load had errors."""
    normal, hot_loads = loads[0], loads[1:]
    print(
        f"machine: {os.cpu_count()} cores, {cpu_model()}, {memory_gib():.0f} GiB, "
        f"PostgreSQL {pg_version}, Python {platform.python_version()}"
    )
    print(
        f"seeded in {seeded.seconds:.0f} s: {len(seeded.buyers)} buyers under {seeded.uplines} "
        f"uplines ({options.roots} roots × {options.middles} middles × {options.buyers} buyers)"
    )
    if seeded.hot_buyers:
        print(
            f"hot upline: {len(seeded.hot_buyers)} more buyers, all under one middle member "
            "under one root, whose wallets every hot payment credits"
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
    measured = " and ".join(
        [f"{normal.window:.1f} s" + (" of orders" if hot_loads else "")]
        + [f"{load.window:.1f} s of {load.orders}" for load in hot_loads]
    )
    print(
        f"server: {options.workers} uvicorn worker(s), pool {options.pool_size}; "
        f"{options.clients} clients, {measured} measured after {options.warmup:.0f} s"
    )
    for load in loads:
        hot = "hot " if load.hot else ""
        print(
            f"{hot}paid orders: {len(load.latencies_ms)} measured, {load.segment_paid} begun in "
            f"the {hot}order segments, {load.paid_total} in all; errors: {errors_text(load)}"
        )
    tps = pgbench.tps
    if not normal.latencies_ms:
        print("no paid order completed in the window")
        print(result_line(loads, tps))
        return 1
    for load in loads:
        print_load(load)
    print(
        f"pgbench TPC-B: scale {options.pgbench_scale}, {options.clients} clients, "
        f"{pgbench.seconds} s in {len(pgbench.rounds)} round(s) of {pgbench.seconds_each} s: "
        f"{tps:.0f} tps"
    )
    print(rounds_line(normal, pgbench))
    for load in hot_loads:
        print(hot_rounds_line(normal, load, pgbench))
    print_work_table(list(zip(loads, works, strict=True)), pgbench)
    cpu = normal.probe.use
    if cpu is not None:
        n = max(1, normal.segment_paid)
        print_budget(works[0], cpu.client / n * 1000, cpu.server / n * 1000, tps)
    history = books.history
    before = (
        f" (besides the history's {history.paid_orders} paid orders and "
        f"{history.commission_lines} commission lines)"
        if history.paid_orders or history.commission_lines
        else ""
    )
    print(
        f"books: {books.paid_orders} paid orders (client counted {normal.paid_total}), "
        f"{books.commission_lines} commission lines{before}, {books.balance_mismatches} balance "
        f"mismatches, {books.unbalanced_transactions} unbalanced transactions: "
        f"{'ok' if books.ok else 'FAILED'}"
    )
    consistent = books.ok and books.paid_orders == normal.paid_total
    for load in hot_loads:
        hot_books = books.hot
        if hot_books is None:
            consistent = False
            continue
        credited = " and ".join(str(n) for n in hot_books.upline_lines)
        print(
            f"hot books: {hot_books.paid_orders} paid orders (client counted "
            f"{load.paid_total}), {hot_books.commission_lines} commission lines "
            f"({credited} to the hot middle member and root), {hot_books.wallet_mismatches} "
            f"of their accounts off their postings or commissions: "
            f"{'ok' if hot_books.ok else 'FAILED'}"
        )
        consistent = consistent and hot_books.ok and hot_books.paid_orders == load.paid_total
    if not consistent:
        print("CHECK FAILED: the books do not match the paid orders")
    print(result_line(loads, tps))
    return 0 if consistent and not any(load.errors for load in loads) else 1
