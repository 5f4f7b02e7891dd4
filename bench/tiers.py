"""The nightly tier evaluation over a million members with order history, on PostgreSQL.

A tenant with two tiers reached by spend in the last 365 days (VIP at ¥300, kept within a 90 %
buffer after a 30-day hold; 合伙人 at ¥2,000, never demoted) and `--members` members, each with
0 to 4 paid orders spread over the last two years (some partly refunded). The evaluation runs
as `shequn tiers evaluate` runs it (`shequn.flows.tiers_evaluation.evaluate_all`: chunks of
members in id order, each one set-based read of the members whose tier may change, decided by
the rule, and one write of the changes with their recorded causes), on three nights:

- the first, when the tiers are new: every member who qualifies moves up (a backfill);
- 31 days later, past the hold: the window has slid, members whose spend fell below the buffer
  go down (the nightly run, and the headline figure);
- the night after, when the window has slid one day more (few change).

Each night is measured against one hand-written SQL statement computing the same spend
criterion at the same moment (each member's spend in the window and the tier it holds after
the night), timed in the same run, and checked to agree with the engine member by member. The
last line is `members_per_s=… ratio_to_sql=… rss_mb=…` (the 31st night: members per second,
its time over the statement's, the process's peak resident memory).

    python bench/tiers.py                       # 1,000,000 members
    python bench/tiers.py --members 200000
"""

from __future__ import annotations

import argparse
import resource
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from sqlalchemy import text

from shequn.clock import ManualClock, SystemClock
from shequn.context import Ctx
from shequn.db import Database
from shequn.flows.tiers import create_tier
from shequn.flows.tiers_evaluation import DEFAULT_CHUNK, evaluate_all
from shequn.schema import upgrade_database
from shequn.tenancy.service import create_tenant
from shequn_bench.options import DEFAULT_ADMIN_URL
from shequn_bench.seeding import scratch_database, server_version, vacuum_analyze

WINDOW_DAYS = 365
VIP_FEN = 30_000
PARTNER_FEN = 200_000
BUFFER_BP = 9_000
HOLD_DAYS = 30


def seed(url: str, tenant_id: str, members: int) -> int:
    """The members and their paid orders (a deterministic spread); returns the orders."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO members (tenant_id, id, name, phone, external_id, tier_id, referrer_id,
                ancestor_2, ancestor_3, binding_source, bound_at, direct_count, team_count,
                paid_order_count, lifetime_order_count, paid_total_fen, max_order_fen,
                first_paid_at, last_paid_at, version, anonymised_at, created_at, updated_at)
            SELECT %(t)s, 'mem_b' || lpad(n::text, 8, '0'), '会员' || n, NULL, NULL, NULL,
                NULL, NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0, NULL,
                now() - interval '800 days', now() - interval '800 days'
            FROM generate_series(0, %(members)s - 1) AS n
            """,
            {"t": tenant_id, "members": members},
        )
        # Member n has (n * 7) % 5 orders; order k of member n is paid (n * 13 + k * 97) % 730
        # days ago, for an amount between ¥9.90 and ¥1,499.90; every 17th is partly refunded.
        conn.execute(
            """
            INSERT INTO orders (tenant_id, id, buyer_id, status, subtotal_fen, discount_fen,
                total_fen, paid_fen, refunded_fen, buyer_tier_id, attributed_sharer_id,
                idempotency_key, request_hash, created_at, paid_at, shipped_at, completed_at,
                closed_at, cancelled_at, updated_at)
            SELECT %(t)s, 'ord_b' || lpad(n::text, 8, '0') || '_' || k,
                'mem_b' || lpad(n::text, 8, '0'), 'closed', a, 0, a, a,
                CASE WHEN (n + k) %% 17 = 0 THEN a / 2 ELSE 0 END, NULL, NULL, NULL, NULL,
                p, p, NULL, NULL, p, NULL, p
            FROM generate_series(0, %(members)s - 1) AS n
            CROSS JOIN LATERAL generate_series(1, (n * 7) %% 5) AS k
            CROSS JOIN LATERAL (SELECT 990 + ((n * 31 + k * 7919) %% 1500) * 100 AS a,
                now() - ((n * 13 + k * 97) %% 730) * interval '1 day'
                    - (n %% 86400) * interval '1 second' AS p) AS x
            """,
            {"t": tenant_id, "members": members},
        )
        found = conn.execute("SELECT count(*) FROM orders").fetchone()
    vacuum_analyze(url)
    return int(found[0]) if found else 0


# The spend criterion by hand: each member's paid less refunded over the window, and the tier
# it holds after the night (up to the highest reached; a VIP kept within the buffer; a
# partner never demoted).
REFERENCE = """
SELECT m.id,
       CASE WHEN coalesce(s.spend, 0) >= :partner OR m.tier_id = :partner_id THEN :partner_id
            WHEN coalesce(s.spend, 0) >= :vip THEN :vip_id
            WHEN m.tier_id = :vip_id AND coalesce(s.spend, 0) >= :vip_kept THEN :vip_id
       END AS reached
FROM members m
LEFT JOIN (
    SELECT buyer_id, sum(paid_fen - refunded_fen) AS spend
    FROM orders
    WHERE tenant_id = :t AND paid_at IS NOT NULL AND paid_at >= :since
    GROUP BY buyer_id
) s ON s.buyer_id = m.id
WHERE m.tenant_id = :t
"""


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Night:
    label: str
    seconds: float
    sql_seconds: float
    upgraded: int
    demoted: int
    candidates: int


def night(
    ctx: Ctx, url: str, label: str, members: int, chunk: int, params: dict[str, Any]
) -> Night:
    """One night: the reference statement timed (and its answer kept for the check), then the
    evaluation; both must agree."""
    since = ctx.clock.now() - timedelta(days=WINDOW_DAYS)
    bound = {**params, "since": since}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_expected")
    db = ctx.db
    started = time.perf_counter()
    with db.read() as tx:
        counts = tx.execute(
            text(f"SELECT reached, count(*) FROM ({REFERENCE}) r GROUP BY reached"), bound
        ).all()
    sql_seconds = time.perf_counter() - started
    assert sum(n for _, n in counts) == members, counts
    with db.transaction() as tx:
        tx.execute(text(f"CREATE TABLE bench_expected AS {REFERENCE}"), bound)
    done = evaluate_all(ctx, chunk=chunk)
    with db.read() as tx:
        differ = tx.execute(
            text(
                "SELECT count(*) FROM bench_expected r JOIN members m"
                " ON m.tenant_id = :t AND m.id = r.id"
                " WHERE m.tier_id IS DISTINCT FROM r.reached"
            ),
            bound,
        ).scalar_one()
    assert differ == 0, (label, differ)
    result = Night(
        label,
        float(done["seconds"]),
        sql_seconds,
        int(done["upgraded"]),
        int(done["demoted"]),
        int(done["candidates"]),
    )
    print(
        f"{label}: {members / result.seconds:,.0f} members/s ({result.seconds:.1f} s; "
        f"{result.candidates:,} candidates, {result.upgraded:,} up, {result.demoted:,} down); "
        f"hand-written SQL {members / sql_seconds:,.0f} members/s ({sql_seconds:.2f} s); "
        f"ratio {result.seconds / sql_seconds:.2f}; peak RSS {rss_mb():.0f} MB",
        flush=True,
    )
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK)
    args = parser.parse_args(argv)
    print(f"PostgreSQL {server_version(args.admin_url)}; {args.members:,} members", flush=True)

    with scratch_database(args.admin_url, f"shequn_bench_tiers_{uuid.uuid4().hex[:8]}") as url:
        upgrade_database(url)
        db = Database.from_url(url, pool_size=2)
        clock = ManualClock(SystemClock().now())
        tenant_id, _ = create_tenant(db=db, clock=clock, name="bench")
        ctx = Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="bench")
        spend = {"kind": "spend", "window_days": WINDOW_DAYS}
        vip = create_tier(
            ctx,
            name="VIP",
            rank=1,
            discount_bp=500,
            criteria={**spend, "min_fen": VIP_FEN},
            demotion={"mode": "windowed", "buffer_bp": BUFFER_BP, "hold_days": HOLD_DAYS},
        )
        partner = create_tier(
            ctx,
            name="合伙人",
            rank=2,
            discount_bp=1_000,
            may_distribute=True,
            criteria={**spend, "min_fen": PARTNER_FEN},
        )
        started = time.perf_counter()
        order_count = seed(url, tenant_id, args.members)
        print(
            f"seeded {order_count:,} paid orders in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        params = {
            "t": tenant_id,
            "vip": VIP_FEN,
            "vip_kept": -(-VIP_FEN * BUFFER_BP // 10_000),
            "partner": PARTNER_FEN,
            "vip_id": vip["id"],
            "partner_id": partner["id"],
        }
        first = night(ctx, url, "first night (backfill)", args.members, args.chunk, params)
        clock.advance(days=HOLD_DAYS + 1)
        nightly = night(ctx, url, "31 days later", args.members, args.chunk, params)
        clock.advance(days=1)
        quiet = night(ctx, url, "the night after", args.members, args.chunk, params)
        assert nightly.demoted > 0, nightly
        with db.read() as tx:
            causes = tx.execute(
                text(
                    "SELECT count(*) FROM events WHERE tenant_id = :t"
                    " AND type = 'MemberTierChanged'"
                ),
                {"t": tenant_id},
            ).scalar_one()
        moves = sum(n.upgraded + n.demoted for n in (first, nightly, quiet))
        assert causes == moves, (causes, moves)
        print("every member holds the tier the statement computes; each change has its cause")
        db.dispose()
    print(
        f"members_per_s={args.members / nightly.seconds:.0f} "
        f"ratio_to_sql={nightly.seconds / nightly.sql_seconds:.2f} rss_mb={rss_mb():.0f}"
    )


if __name__ == "__main__":
    main()
