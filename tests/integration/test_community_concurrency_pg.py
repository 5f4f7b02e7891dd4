"""Community placements raced with real parallel connections on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from shequn.community.founding import create_community
from shequn.community.groups import placement
from shequn.community.staff import service as staff
from shequn.community.tables import community_members
from shequn.context import Ctx
from shequn.db import retrying
from shequn.errors import DomainError
from tests.integration.test_community import many_members, sizes
from tests.races import race

pytestmark = pytest.mark.postgres


def test_twenty_parallel_joins_for_the_last_seat(pg_ctx: Ctx) -> None:
    # given a group of 35 with one seat left
    ctx = pg_ctx
    cid = create_community(ctx, name="抢位", size_class=35)["id"]
    people = many_members(ctx, 54)
    placement.place_members(ctx, community_id=cid, entries=[{"member_id": m} for m in people[:34]])
    assert sizes(ctx, cid) == [(1, 34, 35)]
    racers = people[34:]

    # when twenty members join at the same instant
    results = race(
        20,
        lambda i: retrying(placement.join_community, ctx, community_id=cid, member_id=racers[i]),
    )

    # then exactly one gets the seat, the others land in one new group, none is over its cap
    assert not [r for r in results if isinstance(r, DomainError)]
    landed = Counter(r[0]["group"]["number"] for r in results)
    assert landed == Counter({1: 1, 2: 19})
    assert sizes(ctx, cid) == [(1, 35, 35), (2, 19, 35)]
    with ctx.db.read() as tx:
        placed = tx.execute(
            select(func.count()).where(
                community_members.c.tenant_id == ctx.tenant_id,
                community_members.c.community_id == cid,
            )
        ).scalar_one()
    assert placed == 54


def test_the_same_member_joining_twice_at_once_is_placed_once(pg_ctx: Ctx) -> None:
    ctx = pg_ctx
    cid = create_community(ctx, name="重复", size_class=5)["id"]
    (member,) = many_members(ctx, 1)
    results = race(
        8, lambda _: retrying(placement.join_community, ctx, community_id=cid, member_id=member)
    )
    assert sorted(r[1] for r in results) == [False] + [True] * 7
    assert sizes(ctx, cid) == [(1, 1, 5)]


def test_parallel_assignments_never_pass_an_accounts_cap(pg_ctx: Ctx) -> None:
    ctx = pg_ctx
    small = staff.create_account(ctx, name="小号", friend_cap=3, working_hours="00:00-24:00")
    other = staff.create_account(ctx, name="大号", friend_cap=10, working_hours="00:00-24:00")
    people = many_members(ctx, 12)
    results = race(
        12, lambda i: retrying(staff.assign_member, ctx, member_id=people[i], policy="round_robin")
    )
    refused = [r for r in results if isinstance(r, DomainError)]
    assert refused == []
    assert staff.get_account(ctx, account_id=small["id"])["member_count"] == 3
    assert staff.get_account(ctx, account_id=other["id"])["member_count"] == 9


def test_a_bulk_placement_run_through_the_asynchronous_driver_writes_its_rows(
    pg_ctx: Ctx,
) -> None:
    # the bulk path appends memberships with COPY, as the API runs it (`Database.run`)
    cid = create_community(pg_ctx, name="批量", size_class=5)["id"]
    people = many_members(pg_ctx, 12)
    entries = [{"member_id": m, "region": "华东"} for m in people]

    async def place() -> dict[str, Any]:
        try:
            return await pg_ctx.db.run(
                placement.place_members, pg_ctx, community_id=cid, entries=entries, chunk=5
            )
        finally:
            await pg_ctx.db.close_loop_connections()

    result = asyncio.run(place())
    assert (result["placed"], result["opened_groups"]) == (12, 2)
    assert sizes(pg_ctx, cid) == [(1, 5, 5), (2, 5, 5), (3, 2, 5)]
    with pg_ctx.db.read() as tx:
        regions = tx.execute(
            select(community_members.c.region, func.count())
            .where(
                community_members.c.tenant_id == pg_ctx.tenant_id,
                community_members.c.community_id == cid,
            )
            .group_by(community_members.c.region)
        ).all()
    assert [tuple(r) for r in regions] == [("华东", 12)]
