"""The growth-path follower on SQLite and PostgreSQL: stages move after paid orders, referred
buyers and ingested activities once the feed is followed; a second pass changes nothing; the
cursor is kept in the database; another tenant's events stay its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from shequn.clock import ManualClock
from shequn.community.activities.rules import ActivityIn, ActivityKind
from shequn.community.activities.service import record_activities
from shequn.community.path import service as path
from shequn.community.path.tables import growth_path_cursors, growth_path_followed
from shequn.context import Ctx
from shequn.events.service import list_events
from shequn.flows import growth_path_follower as follower
from shequn.tenancy.service import create_tenant
from tests import factories as f

START = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
NO_LAG = timedelta(0)
COMMERCE = [
    {"name": "实战", "criteria": [{"fact": "first_sale", "op": ">=", "value": 1}]},
    {"name": "分享", "criteria": [{"fact": "referred_buyers", "op": ">=", "value": 1}]},
]


@pytest.fixture
def ops(ctx: Ctx, clock: ManualClock) -> Ctx:
    clock.set(START)
    path.set_stages(ctx, stages=COMMERCE)
    return ctx


def _stage(ctx: Ctx, member_id: str) -> int:
    return int(path.member_growth_view(ctx, member_id=member_id)["position"])


def _stored(ctx: Ctx) -> dict[str, int]:
    from shequn.community.path.tables import member_growth

    g = member_growth.c
    with ctx.db.read() as tx:
        rows = tx.execute(select(g.member_id, g.position).where(g.tenant_id == ctx.tenant_id)).all()
    return {r.member_id: int(r.position) for r in rows}


def _changes(ctx: Ctx) -> list[tuple[str, int]]:
    with ctx.db.read() as tx:
        rows = list_events(tx, tenant_id=ctx.tenant_id, type="GrowthStageChanged", limit=1_000)
    return [(r["subject_id"], r["payload"]["to_position"]) for r in rows]


def test_paid_orders_move_the_buyer_and_then_the_referrer(ops: Ctx) -> None:
    f.product(ops)
    referrer = f.member(ops, "推荐人")
    buyer = f.member(ops, "买家", referrer=referrer)
    f.paid_order(ops, referrer)
    assert _stored(ops) == {}  # the payment itself evaluates no stage

    first = follower.follow_growth(ops)
    assert _stored(ops) == {referrer: 1}
    assert first["changed"] == 1

    f.paid_order(ops, buyer)
    second = follower.follow_growth(ops)
    assert _stored(ops) == {referrer: 2, buyer: 1}
    assert (second["events"], second["changed"]) == (1, 2)
    assert sorted(_changes(ops)) == sorted([(referrer, 1), (referrer, 2), (buyer, 1)])

    again = follower.follow_growth(ops)
    assert again == {"events": 0, "evaluated": 0, "changed": 0, "swept": 0, "tier_changes": 0}
    assert len(_changes(ops)) == 3


def test_ingested_activities_move_stages_once_followed(ops: Ctx) -> None:
    path.set_stages(
        ops, stages=[{"name": "打卡", "criteria": [{"fact": "check_ins", "op": ">=", "value": 2}]}]
    )
    member = f.member(ops, "学员")
    follower.follow_growth(ops)
    items = [
        ActivityIn(f"ci-{i}", ActivityKind.CHECK_IN, START - timedelta(hours=i), member_id=member)
        for i in range(2)
    ]
    record_activities(ops, items=items)
    assert _stored(ops) == {}
    done = follower.follow_growth(ops)
    assert (done["events"], done["changed"]) == (2, 1)
    assert _stored(ops) == {member: 1}
    # The same deliveries again are duplicates: no event, nothing to follow.
    record_activities(ops, items=items)
    assert follower.follow_growth(ops)["events"] == 0


def test_a_changed_path_sweeps_every_member(ops: Ctx) -> None:
    f.product(ops)
    members = [f.member(ops, f"会员{i}") for i in range(3)]
    f.paid_order(ops, members[0])
    follower.follow_growth(ops)
    assert _stored(ops) == {members[0]: 1}
    path.set_stages(
        ops,
        stages=[
            {"name": "进入", "criteria": []},
            {"name": "实战", "criteria": [{"fact": "first_sale", "op": ">=", "value": 1}]},
        ],
    )
    done = follower.follow_growth(ops)
    assert done["swept"] == 3
    assert _stored(ops) == {members[0]: 2, members[1]: 1, members[2]: 1}
    with ops.db.read() as tx:
        sweep = tx.execute(
            select(growth_path_cursors.c.sweep_after).where(
                growth_path_cursors.c.tenant_id == ops.tenant_id
            )
        ).scalar_one()
    assert sweep is None


def test_the_cursor_is_kept_and_moves_on(ops: Ctx) -> None:
    f.product(ops)
    buyer = f.member(ops, "买家")
    f.paid_order(ops, buyer)
    follower.follow_growth(ops, lag=NO_LAG)
    with ops.db.read() as tx:
        cursor = tx.execute(
            select(growth_path_cursors.c.after_event_id).where(
                growth_path_cursors.c.tenant_id == ops.tenant_id
            )
        ).scalar_one()
        followed = tx.execute(
            select(func.count())
            .select_from(growth_path_followed)
            .where(growth_path_followed.c.tenant_id == ops.tenant_id)
        ).scalar_one()
        newest = list_events(tx, tenant_id=ops.tenant_id, limit=1_000)[-1]["id"]
    assert cursor >= newest
    assert followed == 0  # markers behind the cursor are pruned
    # A new follower (a restarted process) starts from the stored cursor.
    assert follower.has_work(ops.db, ops.tenant_id) is False
    second = f.member(ops, "新买家")
    f.paid_order(ops, second)
    assert follower.has_work(ops.db, ops.tenant_id) is True
    done = follower.follow_growth(ops, lag=NO_LAG)
    assert (done["events"], done["changed"]) == (2, 1)  # its registration and its payment
    assert _stored(ops) == {buyer: 1, second: 1}


def test_another_tenants_events_stay_its_own(ops: Ctx, clock: ManualClock) -> None:
    other_id, _ = create_tenant(db=ops.db, clock=clock, name="另一个品牌")
    other = Ctx(db=ops.db, clock=clock, tenant_id=other_id, actor="test")
    path.set_stages(other, stages=COMMERCE)
    f.product(other)
    buyer = f.member(other, "别家买家")
    f.paid_order(other, buyer)
    assert follower.follow_growth(ops)["evaluated"] == 0
    assert _stored(other) == {}
    done = follower.follow_growth(other)
    assert done["changed"] == 1
    assert _stored(other) == {buyer: 1}
    assert _stored(ops) == {}


def test_follow_all_tenants_reaches_every_tenant(ops: Ctx, clock: ManualClock) -> None:
    f.product(ops)
    buyer = f.member(ops, "买家")
    f.paid_order(ops, buyer)
    follower.follow_all_tenants(ops.db, clock=clock)
    assert _stored(ops) == {buyer: 1}
    assert _stage(ops, buyer) == 1


def test_the_follower_thread_follows_until_stopped(ops: Ctx, clock: ManualClock) -> None:
    f.product(ops)
    buyer = f.member(ops, "买家")
    f.paid_order(ops, buyer)
    heard: list[dict[str, int]] = []
    running = follower.start_growth_follower(
        ops.db, clock=clock, interval=0.05, on_pass=heard.append
    )
    try:
        for _ in range(200):
            if _stored(ops):
                break
            running.stopping.wait(0.05)
    finally:
        running.stop(timeout=30)
    assert not running.thread.is_alive()
    assert _stored(ops) == {buyer: 1}


def test_follow_interval_reads_the_environment() -> None:
    assert follower.follow_interval({}) == 2.0
    assert follower.follow_interval({"SHEQUN_GROWTH_FOLLOW_SECONDS": "0.5"}) == 0.5
    assert follower.follow_interval({"SHEQUN_GROWTH_FOLLOW_SECONDS": "often"}) == 2.0
    assert follower.follow_interval({"SHEQUN_GROWTH_FOLLOW_SECONDS": "0"}) == 2.0
