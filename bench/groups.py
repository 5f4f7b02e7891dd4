"""Placing a million members in Dunbar-capped groups.

A community of 10,000 groups (cap 150, 50 members each, in 200 regions of 50 groups) takes
1,000,000 joining members, 5,000 per region, by the region policy. Three figures, in one run:

- the placement rule alone (`shequn.community.groups.rules.plan_placements`, pure Python),
  joins per second;
- the bulk path end to end on PostgreSQL (`shequn.community.groups.placement.place_members`:
  validation, keys, the rule, the memberships appended with COPY, and the set-based writes of
  group sizes, events and the operators' welcome tasks, a chunk per transaction), joins per
  second;
- the reference: one hand-written SQL statement that assigns the same members to the same
  groups (each region's joiners in order against its groups' cumulative room) and one that
  moves the group sizes, on a twin community, joins per second.

The two paths are checked to place every member in the group of the same number. The last
line is `rule_joins_per_s=… pg_joins_per_s=… ratio_to_sql=…` (the bulk path over the
reference).

    python bench/groups.py                       # 1,000,000 joins, 10,000 groups
    python bench/groups.py --joins 200000 --regions 40
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Sequence
from itertools import count

import psycopg
from sqlalchemy import text

from shequn.clock import SystemClock
from shequn.community.founding import create_community
from shequn.community.groups.placement import place_members
from shequn.community.groups.rules import GroupRoom, Joiner, Policy, plan_placements
from shequn.context import Ctx
from shequn.db import Database
from shequn.schema import upgrade_database
from shequn.tenancy.service import create_tenant
from shequn_bench.options import DEFAULT_ADMIN_URL
from shequn_bench.seeding import scratch_database, server_version

CAP = 150
PREFILLED = 50


def seed_groups(url: str, tenant_id: str, community_id: str, regions: int, per_region: int) -> None:
    """`regions × per_region` groups of 50 members (their sizes; the members are elsewhere)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO groups (tenant_id, id, community_id, venue_id, number, name, size_class,
                cap, size, region, interest, staff_account_id, lifecycle_stage, imported,
                external_id, split_from, created_at, updated_at)
            SELECT %(t)s, %(c)s || '-g' || n, %(c)s, NULL, n + 1, '群' || (n + 1), 150, %(cap)s,
                %(size)s, 'r' || (n %% %(regions)s), NULL, NULL, NULL, false, NULL, NULL,
                now(), now()
            FROM generate_series(1, %(groups)s) AS n
            """,
            {
                "t": tenant_id,
                "c": community_id,
                "cap": CAP,
                "size": PREFILLED,
                "regions": regions,
                "groups": regions * per_region,
            },
        )
        conn.execute(
            "UPDATE communities SET next_group_number = %(n)s"
            " WHERE tenant_id = %(t)s AND id = %(c)s",
            {"n": regions * per_region + 2, "t": tenant_id, "c": community_id},
        )
        # the first, empty group every community opens with stays out of the regions' way
        conn.execute(
            "UPDATE groups SET region = 'none', size = cap WHERE tenant_id = %(t)s"
            " AND community_id = %(c)s AND number = 1",
            {"t": tenant_id, "c": community_id},
        )


def seed_members(url: str, tenant_id: str, joins: int, regions: int) -> None:
    """The joining members, and the joiners table the reference statement reads."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO members (tenant_id, id, name, phone, external_id, tier_id, referrer_id,
                ancestor_2, ancestor_3, binding_source, bound_at, direct_count, team_count,
                paid_order_count, lifetime_order_count, paid_total_fen, max_order_fen,
                first_paid_at, last_paid_at, version, anonymised_at, created_at, updated_at)
            SELECT %(t)s, 'mem_b' || lpad(n::text, 8, '0'), '会员' || n, NULL, NULL, NULL,
                NULL, NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0, NULL, now(), now()
            FROM generate_series(0, %(joins)s - 1) AS n
            """,
            {"t": tenant_id, "joins": joins},
        )
        conn.execute(
            "CREATE TABLE bench_joiners (seq int PRIMARY KEY, member_id text, region text)"
        )
        conn.execute(
            """
            INSERT INTO bench_joiners
            SELECT n, 'mem_b' || lpad(n::text, 8, '0'), 'r' || (n %% %(regions)s)
            FROM generate_series(0, %(joins)s - 1) AS n
            """,
            {"joins": joins, "regions": regions},
        )
        conn.execute("ANALYZE")


REFERENCE = """
WITH joiners AS (
    SELECT member_id, region,
           row_number() OVER (PARTITION BY region ORDER BY seq) AS k
    FROM bench_joiners
), seats AS (
    SELECT id, region, number,
           sum(cap - size) OVER (PARTITION BY region ORDER BY number) - (cap - size) AS before,
           sum(cap - size) OVER (PARTITION BY region ORDER BY number) AS upto
    FROM groups
    WHERE tenant_id = :t AND community_id = :c AND size < cap
)
INSERT INTO community_members (tenant_id, community_id, member_id, role, group_id, region,
    placed_by, joined_at)
SELECT :t, :c, j.member_id, 'member', s.id, j.region, 'region', now()
FROM joiners j JOIN seats s ON s.region = j.region AND j.k > s.before AND j.k <= s.upto
"""
REFERENCE_SIZES = """
UPDATE groups g SET size = g.size + n.placed, updated_at = now()
FROM (SELECT group_id, count(*) AS placed FROM community_members
      WHERE tenant_id = :t AND community_id = :c GROUP BY group_id) n
WHERE g.tenant_id = :t AND g.id = n.group_id
"""


def rule_rate(joins: int, regions: int, per_region: int) -> float:
    groups = [
        GroupRoom(f"g{n}", n + 1, f"r{n % regions}", PREFILLED, CAP)
        for n in range(1, regions * per_region + 1)
    ]
    joiners = [Joiner(f"m{n}", f"r{n % regions}") for n in range(joins)]
    numbers = count(1)
    started = time.perf_counter()
    plan = plan_placements(
        joiners,
        groups,
        policy=Policy.REGION,
        new_cap=CAP,
        next_number=len(groups) + 2,
        new_group_id=lambda: f"new{next(numbers)}",
    )
    elapsed = time.perf_counter() - started
    assert len(plan.placements) == joins
    return joins / elapsed


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--joins", type=int, default=1_000_000)
    parser.add_argument("--regions", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=50_000)
    args = parser.parse_args(argv)
    per_region = 10_000 // args.regions
    print(
        f"PostgreSQL {server_version(args.admin_url)}; {args.joins:,} joins into "
        f"{args.regions * per_region:,} groups ({args.regions} regions)",
        flush=True,
    )

    rule = rule_rate(args.joins, args.regions, per_region)
    print(f"rule: {rule:,.0f} joins/s", flush=True)

    with scratch_database(args.admin_url, f"shequn_bench_groups_{uuid.uuid4().hex[:8]}") as url:
        upgrade_database(url)
        db = Database.from_url(url, pool_size=2)
        clock = SystemClock()
        tenant_id, _ = create_tenant(db=db, clock=clock, name="bench")
        ctx = Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="bench")
        ours = create_community(ctx, name="shequn", size_class=CAP)["id"]
        reference = create_community(ctx, name="reference", size_class=CAP)["id"]
        for community_id in (ours, reference):
            seed_groups(url, tenant_id, community_id, args.regions, per_region)
        seed_members(url, tenant_id, args.joins, args.regions)
        with psycopg.connect(url) as conn:
            entries = [
                {"member_id": member_id, "region": region}
                for member_id, region in conn.execute(
                    "SELECT member_id, region FROM bench_joiners ORDER BY seq"
                )
            ]

        started = time.perf_counter()
        result = place_members(
            ctx, community_id=ours, entries=entries, policy="region", chunk=args.chunk
        )
        pg_elapsed = time.perf_counter() - started
        assert result["placed"] == args.joins, result
        pg = args.joins / pg_elapsed
        print(f"bulk path: {pg:,.0f} joins/s ({pg_elapsed:.1f} s)", flush=True)

        started = time.perf_counter()
        with db.transaction() as tx:
            placed = tx.execute(text(REFERENCE), {"t": tenant_id, "c": reference}).rowcount
            tx.execute(text(REFERENCE_SIZES), {"t": tenant_id, "c": reference})
        sql_elapsed = time.perf_counter() - started
        assert placed == args.joins, placed
        sql = args.joins / sql_elapsed
        print(f"hand-written SQL: {sql:,.0f} joins/s ({sql_elapsed:.1f} s)", flush=True)

        with db.read() as tx:
            differ = tx.execute(
                text(
                    """
                    SELECT count(*) FROM community_members a
                    JOIN groups ga ON ga.tenant_id = a.tenant_id AND ga.id = a.group_id
                    JOIN community_members b ON b.tenant_id = a.tenant_id
                        AND b.member_id = a.member_id AND b.community_id = :r
                    JOIN groups gb ON gb.tenant_id = b.tenant_id AND gb.id = b.group_id
                    WHERE a.tenant_id = :t AND a.community_id = :o AND ga.number <> gb.number
                    """
                ),
                {"t": tenant_id, "o": ours, "r": reference},
            ).scalar_one()
            over = tx.execute(
                text("SELECT count(*) FROM groups WHERE tenant_id = :t AND size > cap"),
                {"t": tenant_id},
            ).scalar_one()
        assert (differ, over) == (0, 0), (differ, over)
        print("both paths put every member in the group of the same number; none over its cap")
        db.dispose()
    print(f"rule_joins_per_s={rule:.0f} pg_joins_per_s={pg:.0f} ratio_to_sql={pg / sql:.3f}")


if __name__ == "__main__":
    main()
