"""Group health and drift for 10,000 groups and 10,000,000 activities on PostgreSQL.

A community of `--groups` groups of `--members` members each, and `--activities` activities
in them over the last 56 days (messages, likes and check-ins; a member's share skewed so that
groups have busy members, quiet ones and some who went silent), seeded set-based in the
database. Two figures, in one run:

- the set-based path (`shequn.community.health.service.all_group_health`: every group's size,
  7-day active members, members silent 14 days, drifting members and the top-5 share of
  messages, in one statement), groups per second;
- the reference: a hand-written SQL aggregate computing the same figures, groups per second.

The two are checked to give every group the same figures. The last line is
`groups_per_s=… ratio_to_sql=…` (the path's time over the reference's).

    python bench/health.py                           # 10,000 groups, 10,000,000 activities
    python bench/health.py --activities 2000000      # a smaller history
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import psycopg
from sqlalchemy import text

from shequn.clock import ManualClock
from shequn.community.founding import create_community
from shequn.community.health.service import all_group_health
from shequn.context import Ctx
from shequn.db import Database
from shequn.schema import upgrade_database
from shequn.tenancy.service import create_tenant
from shequn_bench.options import DEFAULT_ADMIN_URL
from shequn_bench.seeding import scratch_database, server_version

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

REFERENCE = """
WITH per_member AS (
    SELECT group_id, member_id, count(*) AS n, max(occurred_at) AS last_at,
           count(*) FILTER (WHERE kind = 'message' AND occurred_at >= :week) AS messages
    FROM activities
    WHERE tenant_id = :t AND group_id IS NOT NULL AND member_id IS NOT NULL
      AND occurred_at >= :lookback AND occurred_at <= :now
    GROUP BY group_id, member_id
), ranked AS (
    SELECT c.group_id, coalesce(p.n, 0) AS n, coalesce(p.messages, 0) AS messages, p.last_at,
           row_number() OVER (PARTITION BY c.group_id
                              ORDER BY coalesce(p.n, 0) DESC, c.member_id) AS activity_rank,
           row_number() OVER (PARTITION BY c.group_id
                              ORDER BY coalesce(p.messages, 0) DESC, c.member_id) AS message_rank,
           count(*) OVER (PARTITION BY c.group_id) AS size
    FROM community_members c
    LEFT JOIN per_member p ON p.group_id = c.group_id AND p.member_id = c.member_id
    WHERE c.tenant_id = :t AND c.group_id IS NOT NULL
)
SELECT group_id, count(*) AS size,
       count(*) FILTER (WHERE last_at >= :week) AS active_7d,
       count(*) FILTER (WHERE last_at IS NULL OR last_at < :fortnight) AS silent_14d,
       count(*) FILTER (WHERE n > 0 AND activity_rank <= (size + 3) / 4
                        AND last_at >= :drift_old AND last_at < :drift_new) AS drifting,
       coalesce(sum(messages) FILTER (WHERE message_rank <= 5), 0) AS top5,
       sum(messages) AS messages
FROM ranked GROUP BY group_id
"""


def seed(
    url: str, tenant_id: str, community_id: str, groups: int, members: int, activities: int
) -> None:
    """Groups, their members and the activities, each one INSERT … SELECT."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO groups (tenant_id, id, community_id, venue_id, number, name, size_class,
                cap, size, region, interest, staff_account_id, lifecycle_stage, imported,
                external_id, split_from, created_at, updated_at)
            SELECT %(t)s, 'grp_b' || lpad(n::text, 8, '0'), %(c)s, NULL, n + 1, '群' || n, 150,
                150, %(m)s, NULL, NULL, NULL, NULL, false, NULL, NULL, now(), now()
            FROM generate_series(1, %(g)s) AS n
            """,
            {"t": tenant_id, "c": community_id, "g": groups, "m": members},
        )
        conn.execute(
            """
            INSERT INTO community_members (tenant_id, community_id, member_id, role, group_id,
                region, placed_by, joined_at)
            SELECT %(t)s, %(c)s, 'mem_b' || lpad(g::text, 8, '0') || '_' || m, 'member',
                'grp_b' || lpad(g::text, 8, '0'), NULL, 'fill', now()
            FROM generate_series(1, %(g)s) AS g, generate_series(1, %(m)s) AS m
            """,
            {"t": tenant_id, "c": community_id, "g": groups, "m": members},
        )
        # Member m of a group gets a share of the activity that falls with m (busy members
        # first); every fifth group's busiest members fell silent 7 to 27 days ago.
        conn.execute(
            """
            INSERT INTO activities (tenant_id, id, source_id, external_id, kind, member_id,
                target_member_id, community_id, group_id, venue_id, staff_account_id, state,
                value, occurred_at, received_at)
            SELECT %(t)s, 'act_b' || n, 'bench', n::text,
                (ARRAY['message', 'message', 'like', 'check_in'])[1 + n %% 4],
                'mem_b' || lpad(g::text, 8, '0') || '_' || m, NULL, %(c)s,
                'grp_b' || lpad(g::text, 8, '0'), NULL, NULL, NULL, NULL,
                %(now)s::timestamptz - make_interval(mins => (CASE
                    WHEN g %% 5 = 0 AND m <= 3 THEN 7 * 1440 + (n * 7919) %% (20 * 1440)
                    ELSE (n * 7919) %% (56 * 1440) END)::int),
                %(now)s::timestamptz
            FROM (
                SELECT n, 1 + (n * 2654435761) %% %(g)s AS g,
                       1 + floor(%(m)s * power(((n * 40503) %% 1000 + 0.5) / 1000.0, 2))::int AS m
                FROM generate_series(1::bigint, %(a)s::bigint) AS n
            ) AS s
            """,
            {
                "t": tenant_id,
                "c": community_id,
                "g": groups,
                "m": members,
                "a": activities,
                "now": NOW,
            },
        )
        conn.execute("VACUUM ANALYZE activities")
        conn.execute("VACUUM ANALYZE community_members")
        conn.execute("VACUUM ANALYZE groups")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--activities", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    print(
        f"PostgreSQL {server_version(args.admin_url)}; {args.groups:,} groups of "
        f"{args.members} members, {args.activities:,} activities",
        flush=True,
    )
    with scratch_database(args.admin_url, f"shequn_bench_health_{uuid.uuid4().hex[:8]}") as url:
        upgrade_database(url)
        db = Database.from_url(url, pool_size=2)
        clock = ManualClock(NOW)
        tenant_id, _ = create_tenant(db=db, clock=clock, name="bench")
        ctx = Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="bench")
        community_id = create_community(ctx, name="bench", size_class=150)["id"]
        started = time.perf_counter()
        seed(url, tenant_id, community_id, args.groups, args.members, args.activities)
        print(f"seeded in {time.perf_counter() - started:.1f} s", flush=True)
        params = {
            "t": tenant_id,
            "now": NOW,
            "lookback": NOW - timedelta(days=56),
            "week": NOW - timedelta(days=7),
            "fortnight": NOW - timedelta(days=14),
            "drift_old": NOW - timedelta(days=28),
            "drift_new": NOW - timedelta(days=7),
        }
        ours_s: list[float] = []
        sql_s: list[float] = []
        for _ in range(args.rounds):  # interleaved: both sides see the same machine
            started = time.perf_counter()
            figures = all_group_health(ctx)
            ours_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            with db.read() as tx:
                reference = {r.group_id: r for r in tx.execute(text(REFERENCE), params)}
            sql_s.append(time.perf_counter() - started)
        ours, sql = min(ours_s), min(sql_s)
        groups_found = [g for g in figures if g.startswith("grp_b")]
        assert len(groups_found) == args.groups == len(reference), (
            len(groups_found),
            len(reference),
        )
        for group_id in groups_found:
            shown, ref = figures[group_id], reference[group_id]
            expected = (ref.size, ref.active_7d, ref.silent_14d, ref.drifting, ref.messages)
            got = (
                shown["size"],
                shown["active_7d"],
                shown["silent_14d"],
                shown["drifting"],
                shown["messages_7d"],
            )
            assert got == expected, (group_id, got, expected)
        drifting = sum(figures[g]["drifting"] for g in groups_found)
        print(
            f"path: {args.groups / ours:,.0f} groups/s ({ours:.2f} s); hand-written SQL: "
            f"{args.groups / sql:,.0f} groups/s ({sql:.2f} s); both agree on every group "
            f"({drifting:,} drifting members)",
            flush=True,
        )
        db.dispose()
    print(f"groups_per_s={args.groups / ours:.0f} ratio_to_sql={ours / sql:.3f}")


if __name__ == "__main__":
    main()
