"""A write batch writes the same rows on both databases, all or nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from shequn.batch import BatchError, WriteBatch
from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.db import Database
from shequn.events.tables import events
from shequn.members.tables import members
from shequn.tenancy.service import create_tenant
from tests import factories as f

AT = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def _member_row(ctx: Ctx, member_id: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        row = tx.execute(
            select(members).where(members.c.tenant_id == ctx.tenant_id, members.c.id == member_id)
        ).one()
    return dict(row._mapping)


def _events_of(ctx: Ctx, subject: str) -> list[tuple[str, dict[str, Any], datetime]]:
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(events.c.type, events.c.payload, events.c.occurred_at)
            .where(
                events.c.tenant_id == ctx.tenant_id,
                events.c.subject_id == subject,
                events.c.type == "BatchTested",
            )
            .order_by(events.c.id)
        ).all()
    return [(r.type, r.payload, r.occurred_at) for r in rows]


def _event(ctx: Ctx, subject: str, n: int, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "tenant_id": ctx.tenant_id,
        "id": f"evt_{n}_{subject[-26:]}",
        "type": "BatchTested",
        "subject_type": "member",
        "subject_id": subject,
        "actor": "test",
        "payload": payload,
        "occurred_at": AT + timedelta(seconds=n),
    }


def test_inserts_and_updates_land_together(ctx: Ctx) -> None:
    # given two members
    a, b = f.member(ctx), f.member(ctx)

    # when one batch inserts events (nested JSON, non-ASCII, nulls) and updates both members
    batch = WriteBatch()
    batch.insert(events, [_event(ctx, a, 1, {"名": "茶", "n": None, "list": [1, "x"]})])
    batch.insert(events, [_event(ctx, a, 2, {})])
    batch.update(
        members,
        {"tenant_id": ctx.tenant_id, "id": a},
        values={"last_paid_at": AT, "max_order_fen": 900},
        increments={"paid_total_fen": 900},
    )
    batch.update(members, {"tenant_id": ctx.tenant_id, "id": b}, increments={"team_count": 2})
    batch.update(
        members, {"tenant_id": ctx.tenant_id, "id": "mem_missing"}, increments={"direct_count": 1}
    )
    with ctx.db.transaction() as tx:
        flushed = batch.flush(tx)

    # then everything is written, and each update says how many rows it matched
    assert flushed.applied is True
    assert flushed.matched == [1, 1, 0]
    assert _events_of(ctx, a) == [
        ("BatchTested", {"名": "茶", "n": None, "list": [1, "x"]}, AT + timedelta(seconds=1)),
        ("BatchTested", {}, AT + timedelta(seconds=2)),
    ]
    row_a, row_b = _member_row(ctx, a), _member_row(ctx, b)
    assert (row_a["paid_total_fen"], row_a["max_order_fen"], row_a["last_paid_at"]) == (
        900,
        900,
        AT,
    )
    assert row_b["team_count"] == 2
    assert not batch  # a flushed batch is empty


def test_a_failing_row_leaves_nothing_behind(ctx: Ctx) -> None:
    # given a member and an event already recorded
    a = f.member(ctx)
    with ctx.db.transaction() as tx:
        first = WriteBatch()
        first.insert(events, [_event(ctx, a, 1, {"v": 1})])
        first.flush(tx)
    before = _member_row(ctx, a)

    # when a batch updates the member and inserts the same event id again
    batch = WriteBatch()
    batch.update(members, {"tenant_id": ctx.tenant_id, "id": a}, increments={"team_count": 5})
    batch.insert(events, [_event(ctx, a, 1, {"v": 2})])
    with pytest.raises(IntegrityError), ctx.db.transaction() as tx:
        batch.flush(tx)

    # then the update did not happen either
    assert _member_row(ctx, a) == before
    assert _events_of(ctx, a) == [("BatchTested", {"v": 1}, AT + timedelta(seconds=1))]


def _grow_team(ctx: Ctx, member: str, by: int) -> None:
    with ctx.db.transaction() as tx:
        bump = WriteBatch()
        bump.update(
            members, {"tenant_id": ctx.tenant_id, "id": member}, increments={"team_count": by}
        )
        bump.flush(tx)


def _guarded(ctx: Ctx, a: str, b: str, expected_team: int, *, lock: bool = True) -> WriteBatch:
    batch = WriteBatch()
    condition = batch.require if lock else batch.check
    condition(members, {"tenant_id": ctx.tenant_id, "id": b}, equal={"team_count": 0})
    batch.guard(
        members,
        {"tenant_id": ctx.tenant_id, "id": a},
        where={"team_count": expected_team},
        values={"team_count": expected_team + 1, "updated_at": AT},
    )
    batch.insert(events, [_event(ctx, a, 7, {"guarded": True})])
    batch.update(members, {"tenant_id": ctx.tenant_id, "id": b}, increments={"direct_count": 3})
    return batch


@pytest.mark.parametrize("lock", [True, False])
def test_a_guarded_batch_applies_when_its_conditions_hold(ctx: Ctx, lock: bool) -> None:
    a, b = f.member(ctx), f.member(ctx)
    with ctx.db.transaction() as tx:
        flushed = _guarded(ctx, a, b, expected_team=0, lock=lock).flush(tx)
    assert flushed.applied is True
    assert flushed.matched == [1]
    assert _member_row(ctx, a)["team_count"] == 1
    assert _member_row(ctx, b)["direct_count"] == 3
    assert len(_events_of(ctx, a)) == 1


@pytest.mark.parametrize("broken", ["guard", "require", "check"])
def test_a_guarded_batch_writes_nothing_when_a_condition_fails(ctx: Ctx, broken: str) -> None:
    # given a member that the guard, the requirement or the check no longer matches
    a, b = f.member(ctx), f.member(ctx)
    if broken in ("require", "check"):
        _grow_team(ctx, b, 1)
    before_a, before_b = _member_row(ctx, a), _member_row(ctx, b)

    # when the guarded batch is flushed
    with ctx.db.transaction() as tx:
        flushed = _guarded(
            ctx, a, b, expected_team=4 if broken == "guard" else 0, lock=broken != "check"
        ).flush(tx)

    # then it says so and changed nothing
    assert flushed.applied is False
    assert _member_row(ctx, a) == before_a
    assert _member_row(ctx, b) == before_b
    assert _events_of(ctx, a) == []


@pytest.mark.parametrize("lock", [True, False])
@pytest.mark.parametrize("holds", [True, False])
def test_conditions_without_a_guard_gate_the_whole_batch(ctx: Ctx, lock: bool, holds: bool) -> None:
    # given two members, b with a team of 2
    a, b = f.member(ctx), f.member(ctx)
    _grow_team(ctx, b, 2)
    before_a = _member_row(ctx, a)

    # when a batch with no guard is conditioned on b's team (as it is, or as it is not)
    batch = WriteBatch()
    condition = batch.require if lock else batch.check
    condition(members, {"tenant_id": ctx.tenant_id, "id": b}, equal={"team_count": 2})
    condition(members, {"tenant_id": ctx.tenant_id, "id": a}, equal={"team_count": 0})
    if not holds:
        condition(members, {"tenant_id": ctx.tenant_id, "id": b}, equal={"direct_count": 9})
    batch.insert(events, [_event(ctx, a, 3, {"gated": True})])
    batch.update(members, {"tenant_id": ctx.tenant_id, "id": a}, increments={"direct_count": 1})
    with ctx.db.transaction() as tx:
        flushed = batch.flush(tx)

    # then it writes everything if they all hold, and nothing otherwise
    assert flushed.applied is holds
    if holds:
        assert flushed.matched == [1]
        assert _member_row(ctx, a)["direct_count"] == before_a["direct_count"] + 1
        assert len(_events_of(ctx, a)) == 1
    else:
        assert _member_row(ctx, a) == before_a
        assert _events_of(ctx, a) == []


@pytest.mark.parametrize("holds", [True, False])
def test_a_check_returns_the_row_as_the_statement_read_it(ctx: Ctx, holds: bool) -> None:
    # given a member with a team of 3
    a = f.member(ctx)
    _grow_team(ctx, a, 3)
    row = _member_row(ctx, a)

    # when a batch checks it and asks for some of its columns
    batch = WriteBatch()
    batch.check(
        members,
        {"tenant_id": ctx.tenant_id, "id": a},
        equal={"team_count": 3 if holds else 4},
        returning=("team_count", "tier_id", "created_at"),
    )
    batch.insert(events, [_event(ctx, a, 4, {"returned": True})])
    with ctx.db.transaction() as tx:
        flushed = batch.flush(tx)

    # then they come back as read (timestamps in UTC) if the batch took effect, else nothing
    assert flushed.applied is holds
    if holds:
        assert flushed.returned == [
            {"team_count": 3, "tier_id": None, "created_at": row["created_at"]}
        ]
        assert flushed.returned[0]["created_at"].utcoffset() == timedelta(0)
    else:
        assert flushed.returned == []
        assert _events_of(ctx, a) == []


@pytest.mark.postgres
@pytest.mark.parametrize("lock", [True, False])
def test_a_checked_row_stays_free_for_other_writers(postgres_db: Database, lock: bool) -> None:
    # given a guarded batch that requires or only checks member b, flushed in an open
    # transaction
    clock = ManualClock()
    tenant_id, _ = create_tenant(db=postgres_db, clock=clock, name="check")
    ctx = Ctx(db=postgres_db, clock=clock, tenant_id=tenant_id, actor="test")
    a, b = f.member(ctx), f.member(ctx)
    batch = WriteBatch()
    condition = batch.require if lock else batch.check
    condition(members, {"tenant_id": tenant_id, "id": b}, equal={"team_count": 0})
    batch.guard(
        members,
        {"tenant_id": tenant_id, "id": a},
        where={"team_count": 0},
        values={"team_count": 1, "updated_at": AT},
    )
    with postgres_db.transaction() as tx:
        assert batch.flush(tx).applied is True

        # when another connection changes b before that transaction ends
        with postgres_db.engine.connect() as other:
            other.execute(text("SET lock_timeout = '500ms'"))
            change = (
                update(members)
                .where(members.c.tenant_id == tenant_id, members.c.id == b)
                .values(name="changed")
            )
            if lock:
                # then a required row is locked until the end
                with pytest.raises(OperationalError, match="lock timeout"):
                    other.execute(change)
            else:
                # then a checked one is not
                assert other.execute(change).rowcount == 1
            other.rollback()


def test_misuse_is_refused_before_anything_is_sent(ctx: Ctx) -> None:
    batch = WriteBatch()
    key = {"tenant_id": ctx.tenant_id, "id": "mem_x"}
    with pytest.raises(BatchError, match="primary key"):
        batch.update(members, {"id": "mem_x"}, increments={"team_count": 1})
    with pytest.raises(BatchError, match="no column"):
        batch.insert(members, [{"tenant_id": ctx.tenant_id, "nope": 1}])
    batch.update(members, key, increments={"team_count": 1})
    with pytest.raises(BatchError, match="once"):
        batch.update(members, key, values={"name": "x"})
    with pytest.raises(BatchError, match="different columns"):
        batch.insert(events, [_event(ctx, "m", 1, {}), {"tenant_id": ctx.tenant_id}])
    renamed = _event(ctx, "m", 2, {})
    renamed["nope"] = renamed.pop("actor")  # as many columns, not the same ones
    with pytest.raises(BatchError, match="different columns"):
        batch.insert(events, [_event(ctx, "m", 1, {}), renamed])
    naive = WriteBatch()
    naive.insert(events, [{**_event(ctx, "m", 1, {}), "occurred_at": datetime(2026, 1, 1)}])
    with ctx.db.transaction() as tx, pytest.raises(BatchError, match="naive datetime"):
        naive.flush(tx)
