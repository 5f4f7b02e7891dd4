"""Referral binding on both databases: policy, window, trigger, protection, cycles, audited
rebinds, and the stored ancestry (closure table, ancestor columns, team counts)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.db import Database
from shequn.errors import Conflict, DomainError, InvalidInput, NotFound
from shequn.events.service import list_events
from shequn.events.tables import events
from shequn.flows.registration import create_member
from shequn.flows.settings import update_settings
from shequn.members.service import get_member
from shequn.members.tables import members
from shequn.referrals.binding import binding_history, rebind_member, record_touch
from shequn.referrals.tables import referral_bindings, referral_paths, referral_touches
from shequn.referrals.tree import team_members, team_summary
from shequn.tenancy.service import create_tenant
from tests import factories as f


def policy(ctx: Ctx, **binding: Any) -> None:
    update_settings(ctx, patch={"binding_policy": binding})


def snapshot(ctx: Ctx) -> dict[str, Any]:
    """Everything a binding change may touch, for "nothing changed" checks."""
    t = ctx.tenant_id
    with ctx.db.read() as tx:
        return {
            "members": sorted(
                tuple(r)
                for r in tx.execute(
                    select(
                        members.c.id,
                        members.c.referrer_id,
                        members.c.ancestor_2,
                        members.c.ancestor_3,
                        members.c.binding_source,
                        members.c.bound_at,
                        members.c.direct_count,
                        members.c.team_count,
                        members.c.version,
                    ).where(members.c.tenant_id == t)
                )
            ),
            "paths": closure(ctx),
            "bindings": tx.execute(
                select(func.count())
                .select_from(referral_bindings)
                .where(referral_bindings.c.tenant_id == t)
            ).scalar_one(),
            "touches": tx.execute(
                select(func.count())
                .select_from(referral_touches)
                .where(referral_touches.c.tenant_id == t)
            ).scalar_one(),
            "events": tx.execute(
                select(func.count()).select_from(events).where(events.c.tenant_id == t)
            ).scalar_one(),
        }


def closure(ctx: Ctx) -> set[tuple[str, str, int]]:
    p = referral_paths
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(p.c.ancestor_id, p.c.descendant_id, p.c.depth).where(
                p.c.tenant_id == ctx.tenant_id
            )
        ).all()
    return {(r.ancestor_id, r.descendant_id, r.depth) for r in rows}


def tree_columns(ctx: Ctx) -> dict[str, tuple[str | None, str | None, str | None, int, int]]:
    """member → (referrer, ancestor_2, ancestor_3, direct_count, team_count)."""
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(
                members.c.id,
                members.c.referrer_id,
                members.c.ancestor_2,
                members.c.ancestor_3,
                members.c.direct_count,
                members.c.team_count,
            ).where(members.c.tenant_id == ctx.tenant_id)
        ).all()
    return {
        r.id: (r.referrer_id, r.ancestor_2, r.ancestor_3, r.direct_count, r.team_count)
        for r in rows
    }


def expected_from_parents(
    parents: dict[str, str | None],
) -> tuple[
    set[tuple[str, str, int]], dict[str, tuple[str | None, str | None, str | None, int, int]]
]:
    """The closure table and tree columns that parent pointers imply, computed naively."""
    chains: dict[str, list[str]] = {}
    for member in parents:
        chain: list[str] = []
        node = parents[member]
        while node is not None:
            assert node not in chain, "model has a cycle"
            assert node != member, "model has a cycle"
            chain.append(node)
            node = parents[node]
        chains[member] = chain
    paths = {(m, m, 0) for m in parents}
    paths |= {(a, m, depth) for m, chain in chains.items() for depth, a in enumerate(chain, 1)}
    columns = {}
    for m, chain in chains.items():
        padded = [*chain[:3], None, None, None]
        direct = sum(1 for p in parents.values() if p == m)
        team = sum(1 for c in chains.values() if m in c)
        columns[m] = (padded[0], padded[1], padded[2], direct, team)
    return paths, columns


def assert_tree_matches(ctx: Ctx, parents: dict[str, str | None]) -> None:
    paths, columns = expected_from_parents(parents)
    assert closure(ctx) == paths
    assert tree_columns(ctx) == columns


def referrer_of(ctx: Ctx, member_id: str) -> str | None:
    found: str | None = get_member(ctx, member_id=member_id)["referrer_id"]
    return found


def event_payloads(ctx: Ctx, type_: str, subject_id: str) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        return [
            e["payload"]
            for e in list_events(
                tx,
                tenant_id=ctx.tenant_id,
                type=type_,
                subject_type="member",
                subject_id=subject_id,
            )
        ]


# --- binding at registration -----------------------------------------------------------------


@pytest.mark.parametrize("source", ["share_link", "qr_scene", "staff", "import"])
def test_registration_binds_and_records_the_source(ctx: Ctx, source: str) -> None:
    parent = f.member(ctx, "推荐人")
    child = create_member(ctx, name="新人", referrer_id=parent, source=source, scene="poster-1")

    assert (child["referrer_id"], child["ancestors"], child["binding_source"]) == (
        parent,
        [parent],
        source,
    )
    assert child["bound_at"] == ctx.clock.now()
    history = binding_history(ctx, member_id=child["id"])
    assert [
        (
            h["kind"],
            h["referrer_id"],
            h["previous_referrer_id"],
            h["source"],
            h["reason"],
            h["actor"],
        )
        for h in history
    ] == [("bind", parent, None, source, None, "test")]
    assert event_payloads(ctx, "MemberBound", child["id"]) == [
        {"referrer_id": parent, "previous_referrer_id": None, "source": source, "reason": None}
    ]
    assert team_summary(ctx, member_id=parent) == {
        "member_id": parent,
        "direct_count": 1,
        "team_count": 1,
        "by_depth": [{"depth": 1, "count": 1}],
    }


@pytest.mark.parametrize("source", ["admin", "wechat", ""])
def test_admin_or_unknown_sources_are_refused_at_registration(ctx: Ctx, source: str) -> None:
    parent = f.member(ctx)
    before = snapshot(ctx)
    with pytest.raises(InvalidInput) as caught:
        create_member(ctx, name="x", referrer_id=parent, source=source)
    assert (caught.value.code, caught.value.params) == (
        "binding_source_invalid",
        {"source": source},
    )
    assert snapshot(ctx) == before


def test_unknown_referrer_is_refused_and_nothing_is_created(ctx: Ctx) -> None:
    before = snapshot(ctx)
    with pytest.raises(NotFound) as caught:
        create_member(ctx, name="x", referrer_id="mem_missing")
    assert (caught.value.code, caught.value.params) == ("referrer_not_found", {"id": "mem_missing"})
    assert snapshot(ctx) == before


def test_a_member_without_referrer_or_touch_is_a_root(ctx: Ctx) -> None:
    root = create_member(ctx, name="根")
    assert (root["referrer_id"], root["ancestors"], root["binding_source"], root["bound_at"]) == (
        None,
        [],
        None,
        None,
    )
    assert binding_history(ctx, member_id=root["id"]) == []
    assert closure(ctx) == {(root["id"], root["id"], 0)}


@pytest.mark.parametrize(
    ("mode", "winner"),
    [("first_touch", "early"), ("last_touch", "late")],
)
def test_first_touch_and_last_touch_pick_different_sharers(
    ctx: Ctx, clock: ManualClock, mode: str, winner: str
) -> None:
    policy(ctx, mode=mode)
    early, late = f.member(ctx, "早"), f.member(ctx, "晚")
    record_touch(ctx, sharer_id=early, phone="138 0000 0001", source="qr_scene", scene="店内")
    clock.advance(days=5)
    record_touch(ctx, sharer_id=late, phone="+86 138-0000-0001")
    clock.advance(days=1)

    member = create_member(ctx, name="访客", phone="13800000001")

    expected = {"early": (early, "qr_scene"), "late": (late, "share_link")}[winner]
    assert (member["referrer_id"], member["binding_source"]) == expected


@pytest.mark.parametrize(("mode", "winner"), [("first_touch", "sharer"), ("last_touch", "named")])
def test_an_explicit_referrer_at_registration_is_just_the_latest_touch(
    ctx: Ctx, clock: ManualClock, mode: str, winner: str
) -> None:
    policy(ctx, mode=mode)
    sharer, named = f.member(ctx, "分享者"), f.member(ctx, "填写的推荐人")
    record_touch(ctx, sharer_id=sharer, external_id="wx-openid-1")
    clock.advance(hours=3)
    member = create_member(ctx, name="访客", external_id="wx-openid-1", referrer_id=named)
    assert member["referrer_id"] == {"sharer": sharer, "named": named}[winner]


@pytest.mark.parametrize(
    ("window_days", "waited_days", "bound"),
    [(30, 30, True), (30, 31, False), (7, 7, True), (7, 8, False)],
)
def test_attribution_window(
    ctx: Ctx, clock: ManualClock, window_days: int, waited_days: int, bound: bool
) -> None:
    policy(ctx, window_days=window_days)
    sharer = f.member(ctx, "分享者")
    record_touch(ctx, sharer_id=sharer, phone="13900000042")
    clock.advance(days=waited_days)

    member = create_member(ctx, name="访客", phone="13900000042")

    assert member["referrer_id"] == (sharer if bound else None)
    assert len(binding_history(ctx, member_id=member["id"])) == (1 if bound else 0)
    assert team_summary(ctx, member_id=sharer)["team_count"] == (1 if bound else 0)


def test_an_expired_first_touch_gives_way_to_a_fresh_one(ctx: Ctx, clock: ManualClock) -> None:
    old, fresh_sharer = f.member(ctx, "旧"), f.member(ctx, "新")
    record_touch(ctx, sharer_id=old, phone="13900000043")
    clock.advance(days=40)
    record_touch(ctx, sharer_id=fresh_sharer, phone="13900000043")
    member = create_member(ctx, name="访客", phone="13900000043")
    assert member["referrer_id"] == fresh_sharer


# --- trigger: first paid order ---------------------------------------------------------------


def test_first_paid_order_trigger_binds_only_when_the_first_order_is_paid(
    ctx: Ctx, clock: ManualClock
) -> None:
    policy(ctx, trigger="first_paid_order")
    grandparent = f.member(ctx, "祖")
    parent = f.member(ctx, "父", referrer=grandparent)  # bound only once it pays; it never does
    sharer = f.member(ctx, "分享者")
    f.product(ctx, price_fen=10_000)
    f.two_level_plan(ctx)

    buyer = create_member(ctx, name="买家", referrer_id=sharer, source="qr_scene")
    assert (buyer["referrer_id"], buyer["binding_source"], buyer["bound_at"]) == (None, None, None)
    assert binding_history(ctx, member_id=buyer["id"]) == []
    assert team_summary(ctx, member_id=sharer)["direct_count"] == 0
    assert referrer_of(ctx, parent) is None

    clock.advance(days=3)
    order = f.paid_order(ctx, buyer["id"])

    after = get_member(ctx, member_id=buyer["id"])
    assert (after["referrer_id"], after["binding_source"], after["bound_at"]) == (
        sharer,
        "qr_scene",
        clock.now(),
    )
    # this very order already pays the new referrer
    assert [(c["beneficiary_id"], c["level"], c["amount_fen"]) for c in order["commissions"]] == [
        (sharer, 1, 1_000)
    ]
    assert [
        (h["kind"], h["referrer_id"], h["source"])
        for h in binding_history(ctx, member_id=buyer["id"])
    ] == [("bind", sharer, "qr_scene")]
    sharer_view = get_member(ctx, member_id=sharer)
    assert (
        sharer_view["direct_count"],
        sharer_view["team_count"],
        sharer_view["referred_buyer_count"],
    ) == (1, 1, 1)

    # a second order changes nothing about the binding
    f.paid_order(ctx, buyer["id"])
    assert len(binding_history(ctx, member_id=buyer["id"])) == 1
    assert get_member(ctx, member_id=sharer)["referred_buyer_count"] == 1


def test_first_paid_order_trigger_respects_the_window_at_payment_time(
    ctx: Ctx, clock: ManualClock
) -> None:
    policy(ctx, trigger="first_paid_order", window_days=10)
    sharer = f.member(ctx, "分享者")
    f.product(ctx)
    buyer = f.member(ctx, "买家", referrer=sharer)
    clock.advance(days=11)
    f.paid_order(ctx, buyer)
    assert referrer_of(ctx, buyer) is None
    assert binding_history(ctx, member_id=buyer) == []

    # a touch after the first payment binds nobody: the trigger has passed
    record_touch(ctx, sharer_id=sharer, member_id=buyer)
    f.paid_order(ctx, buyer)
    assert referrer_of(ctx, buyer) is None


def test_first_paid_order_trigger_uses_touches_made_after_registration(
    ctx: Ctx, clock: ManualClock
) -> None:
    policy(ctx, trigger="first_paid_order", mode="last_touch")
    first, second = f.member(ctx, "一"), f.member(ctx, "二")
    f.product(ctx)
    buyer = f.member(ctx, "买家", referrer=first)
    clock.advance(days=2)
    record_touch(ctx, sharer_id=second, member_id=buyer, source="staff")
    clock.advance(days=2)
    f.paid_order(ctx, buyer)
    assert (referrer_of(ctx, buyer), get_member(ctx, member_id=buyer)["binding_source"]) == (
        second,
        "staff",
    )


def test_a_stale_touch_from_ones_own_downline_is_ignored_at_payment(ctx: Ctx) -> None:
    policy(ctx, trigger="first_paid_order")
    f.product(ctx)
    a = f.member(ctx, "A")
    b = f.member(ctx, "B", referrer=a)
    f.paid_order(ctx, b)  # B is now bound under A
    assert referrer_of(ctx, b) == a
    record_touch(ctx, sharer_id=b, member_id=a)  # B shares back to its own upline
    before = closure(ctx)

    f.paid_order(ctx, a)

    assert referrer_of(ctx, a) is None
    assert closure(ctx) == before


# --- protection period and last-touch moves --------------------------------------------------


def test_protection_period_refuses_a_move_until_it_ends(ctx: Ctx, clock: ManualClock) -> None:
    policy(ctx, mode="last_touch", protection_days=7)
    first, second = f.member(ctx, "一"), f.member(ctx, "二")
    member = f.member(ctx, "会员", referrer=first)

    clock.advance(days=6, hours=23)
    inside = record_touch(ctx, sharer_id=second, member_id=member)
    assert inside["rebound_to"] is None
    assert referrer_of(ctx, member) == first

    clock.advance(hours=1)
    moved = record_touch(ctx, sharer_id=second, member_id=member, source="qr_scene")
    assert moved == {"id": moved["id"], "sharer_id": second, "rebound_to": second}
    view = get_member(ctx, member_id=member)
    assert (view["referrer_id"], view["binding_source"], view["bound_at"]) == (
        second,
        "qr_scene",
        clock.now(),
    )
    history = binding_history(ctx, member_id=member)
    assert [(h["kind"], h["referrer_id"], h["previous_referrer_id"]) for h in history] == [
        ("bind", first, None),
        ("auto_rebind", second, first),
    ]
    assert (
        team_summary(ctx, member_id=first)["direct_count"],
        team_summary(ctx, member_id=second)["direct_count"],
    ) == (0, 1)

    # the move starts a new protection period
    again = record_touch(ctx, sharer_id=first, member_id=member)
    assert again["rebound_to"] is None
    assert referrer_of(ctx, member) == second


@pytest.mark.parametrize(
    "binding",
    [
        {"mode": "last_touch", "protection_days": 0},  # 0 = permanent
        {"mode": "first_touch", "protection_days": 7},  # first touch never moves
    ],
)
def test_permanent_bindings_never_move(
    ctx: Ctx, clock: ManualClock, binding: dict[str, Any]
) -> None:
    policy(ctx, **binding)
    first, second = f.member(ctx, "一"), f.member(ctx, "二")
    member = f.member(ctx, "会员", referrer=first)
    clock.advance(days=3_000)
    assert record_touch(ctx, sharer_id=second, member_id=member)["rebound_to"] is None
    assert referrer_of(ctx, member) == first
    assert len(binding_history(ctx, member_id=member)) == 1


def test_a_last_touch_move_never_closes_a_cycle(ctx: Ctx, clock: ManualClock) -> None:
    policy(ctx, mode="last_touch", protection_days=1)
    root = f.member(ctx, "根")
    member = f.member(ctx, "会员", referrer=root)
    child = f.member(ctx, "下级", referrer=member)
    clock.advance(days=2)
    result = record_touch(ctx, sharer_id=child, member_id=member)
    assert result["rebound_to"] is None
    assert referrer_of(ctx, member) == root


def test_touch_needs_exactly_one_visitor_and_refuses_self(ctx: Ctx) -> None:
    sharer = f.member(ctx)
    before = snapshot(ctx)
    for visitor in ({}, {"phone": "13800000009", "external_id": "e1"}):
        with pytest.raises(InvalidInput) as caught:
            record_touch(ctx, sharer_id=sharer, **visitor)
        assert caught.value.code == "touch_visitor_required"
    with pytest.raises(InvalidInput) as caught:
        record_touch(ctx, sharer_id=sharer, member_id=sharer)
    assert caught.value.code == "self_referral"
    with pytest.raises(InvalidInput) as caught:
        record_touch(ctx, sharer_id=sharer, phone="13800000009", source="admin")
    assert caught.value.code == "binding_source_invalid"
    with pytest.raises(NotFound) as caught_missing:
        record_touch(ctx, sharer_id="mem_missing", phone="13800000009")
    assert caught_missing.value.code == "member_not_found"
    assert snapshot(ctx) == before


# --- self-referral, cycles, audited rebinds --------------------------------------------------


def test_self_referral_is_refused_and_nothing_changes(ctx: Ctx) -> None:
    root, member = f.chain(ctx, 2)
    before = snapshot(ctx)
    with pytest.raises(InvalidInput) as caught:
        rebind_member(ctx, member_id=member, referrer_id=member, reason="测试")
    assert (caught.value.code, caught.value.params, caught.value.status) == (
        "self_referral",
        {},
        422,
    )
    assert snapshot(ctx) == before
    assert referrer_of(ctx, member) == root


@pytest.mark.parametrize("below", [1, 2, 4])
def test_binding_under_any_descendant_is_a_cycle(ctx: Ctx, below: int) -> None:
    ids = f.chain(ctx, 5)
    top, descendant = ids[0], ids[below]
    before = snapshot(ctx)
    with pytest.raises(InvalidInput) as caught:
        rebind_member(ctx, member_id=top, referrer_id=descendant, reason="争议")
    assert (caught.value.code, caught.value.params) == (
        "referral_cycle",
        {"member_id": top, "referrer_id": descendant},
    )
    assert snapshot(ctx) == before


def test_cycle_check_applies_to_a_middle_member_too(ctx: Ctx) -> None:
    a, b, c, d = f.chain(ctx, 4)
    before = snapshot(ctx)
    with pytest.raises(InvalidInput) as caught:
        rebind_member(ctx, member_id=b, referrer_id=d, reason="争议")
    assert caught.value.code == "referral_cycle"
    assert snapshot(ctx) == before
    # moving b under a sibling branch is fine
    e = f.member(ctx, "E", referrer=a)
    rebind_member(ctx, member_id=b, referrer_id=e, reason="争议")
    assert [referrer_of(ctx, m) for m in (b, c, d)] == [e, b, c]


def test_audited_rebind_writes_history_and_an_event(ctx: Ctx, clock: ManualClock) -> None:
    old, new = f.member(ctx, "旧"), f.member(ctx, "新")
    member = f.member(ctx, "会员", referrer=old)
    clock.advance(days=1)
    ops = ctx.as_actor("key:ops-1")

    rebind_member(ops, member_id=member, referrer_id=new, reason="  客户申诉：实际由新推荐人介绍  ")

    view = get_member(ctx, member_id=member)
    assert (view["referrer_id"], view["binding_source"], view["bound_at"]) == (
        new,
        "admin",
        clock.now(),
    )
    last = binding_history(ctx, member_id=member)[-1]
    assert {k: last[k] for k in last if k != "id"} == {
        "member_id": member,
        "referrer_id": new,
        "previous_referrer_id": old,
        "kind": "rebind",
        "source": "admin",
        "reason": "客户申诉：实际由新推荐人介绍",
        "actor": "key:ops-1",
        "occurred_at": clock.now(),
    }
    with ctx.db.read() as tx:
        rebound = list_events(tx, tenant_id=ctx.tenant_id, type="MemberRebound")
    assert [(e["subject_id"], e["actor"], e["occurred_at"], e["payload"]) for e in rebound] == [
        (
            member,
            "key:ops-1",
            clock.now(),
            {
                "referrer_id": new,
                "previous_referrer_id": old,
                "source": "admin",
                "reason": "客户申诉：实际由新推荐人介绍",
            },
        )
    ]
    assert (
        team_summary(ctx, member_id=old)["team_count"],
        team_summary(ctx, member_id=new)["team_count"],
    ) == (0, 1)


def test_rebind_to_nobody_makes_a_root(ctx: Ctx) -> None:
    a, b, c = f.chain(ctx, 3)
    rebind_member(ctx, member_id=b, referrer_id=None, reason="解除绑定")
    assert get_member(ctx, member_id=b)["ancestors"] == []
    assert get_member(ctx, member_id=c)["ancestors"] == [b]
    assert_tree_matches(ctx, {a: None, b: None, c: b})
    assert binding_history(ctx, member_id=b)[-1]["referrer_id"] is None


@pytest.mark.parametrize("reason", ["", "   \n ", "理" * 501])
def test_rebind_needs_a_reason(ctx: Ctx, reason: str) -> None:
    _, member = f.chain(ctx, 2)
    other = f.member(ctx)
    before = snapshot(ctx)
    with pytest.raises(InvalidInput) as caught:
        rebind_member(ctx, member_id=member, referrer_id=other, reason=reason)
    assert caught.value.code == "rebind_reason_required"
    assert snapshot(ctx) == before


def test_rebind_refusals_change_nothing(ctx: Ctx) -> None:
    root, member = f.chain(ctx, 2)
    loner = f.member(ctx)
    before = snapshot(ctx)
    with pytest.raises(Conflict) as conflict:
        rebind_member(ctx, member_id=member, referrer_id=root, reason="重复")
    assert conflict.value.code == "rebind_same_referrer"
    with pytest.raises(Conflict) as conflict:
        rebind_member(ctx, member_id=loner, referrer_id=None, reason="重复")
    assert conflict.value.code == "rebind_same_referrer"
    with pytest.raises(NotFound) as missing:
        rebind_member(ctx, member_id="mem_missing", referrer_id=root, reason="x")
    assert (missing.value.code, missing.value.params) == ("member_not_found", {"id": "mem_missing"})
    with pytest.raises(NotFound) as missing:
        rebind_member(ctx, member_id=member, referrer_id="mem_missing", reason="x")
    assert (missing.value.code, missing.value.params) == (
        "referrer_not_found",
        {"id": "mem_missing"},
    )
    assert snapshot(ctx) == before


def test_another_tenants_member_is_not_found(ctx: Ctx, db: Database, clock: ManualClock) -> None:
    other_tenant, _ = create_tenant(db=db, clock=clock, name="别家")
    other = Ctx(db=db, clock=clock, tenant_id=other_tenant, actor="test")
    theirs = f.member(other, "别家会员")
    mine = f.member(ctx)
    before = snapshot(ctx)
    with pytest.raises(NotFound):
        rebind_member(ctx, member_id=mine, referrer_id=theirs, reason="跨租户")
    with pytest.raises(NotFound):
        create_member(ctx, name="x", referrer_id=theirs)
    assert snapshot(ctx) == before


# --- ancestry and team statistics ------------------------------------------------------------


def test_ancestor_columns_and_closure_after_moving_a_subtree(ctx: Ctx) -> None:
    r1, a, b, c, d, e = f.chain(ctx, 6)
    r2, x, y = f.chain(ctx, 3)
    assert [get_member(ctx, member_id=m)["ancestors"] for m in (b, e)] == [[a, r1], [d, c, b]]

    rebind_member(ctx, member_id=b, referrer_id=y, reason="整条线改挂")

    assert {m: get_member(ctx, member_id=m)["ancestors"] for m in (a, b, c, d, e)} == {
        a: [r1],
        b: [y, x, r2],
        c: [b, y, x],
        d: [c, b, y],
        e: [d, c, b],
    }
    assert {(anc, depth) for anc, desc, depth in closure(ctx) if desc == e} == {
        (e, 0),
        (d, 1),
        (c, 2),
        (b, 3),
        (y, 4),
        (x, 5),
        (r2, 6),
    }
    assert_tree_matches(ctx, {r1: None, a: r1, b: y, c: b, d: c, e: d, r2: None, x: r2, y: x})
    assert {m: tree_columns(ctx)[m][3:] for m in (r1, a, r2, x, y, b)} == {
        r1: (1, 1),
        a: (0, 0),
        r2: (1, 6),
        x: (1, 5),
        y: (1, 4),
        b: (1, 3),
    }


def test_team_counts_after_creates_and_rebinds(ctx: Ctx) -> None:
    boss = f.member(ctx, "老大")
    leads = [f.member(ctx, f"组长{i}", referrer=boss) for i in range(3)]
    crew = [
        [f.member(ctx, f"组员{index}{j}", referrer=lead) for j in range(index + 1)]
        for index, lead in enumerate(leads)
    ]
    assert team_summary(ctx, member_id=boss) == {
        "member_id": boss,
        "direct_count": 3,
        "team_count": 9,
        "by_depth": [{"depth": 1, "count": 3}, {"depth": 2, "count": 6}],
    }
    assert [team_summary(ctx, member_id=lead)["team_count"] for lead in leads] == [1, 2, 3]

    # lead 2 (with 3 members) moves under lead 0
    rebind_member(ctx, member_id=leads[2], referrer_id=leads[0], reason="合并团队")
    assert team_summary(ctx, member_id=boss) == {
        "member_id": boss,
        "direct_count": 2,
        "team_count": 9,
        "by_depth": [
            {"depth": 1, "count": 2},
            {"depth": 2, "count": 4},
            {"depth": 3, "count": 3},
        ],
    }
    lead0 = team_summary(ctx, member_id=leads[0])
    assert (lead0["direct_count"], lead0["team_count"]) == (2, 5)

    direct = team_members(ctx, member_id=leads[0], max_depth=1, after=None, limit=100)
    assert [(m["id"], m["referrer_id"], m["depth"]) for m in direct] == sorted(
        [(crew[0][0], leads[0], 1), (leads[2], leads[0], 1)]
    )
    everyone = team_members(ctx, member_id=leads[0], max_depth=None, after=None, limit=100)
    assert [(m["id"], m["depth"]) for m in everyone] == sorted(
        [(crew[0][0], 1), (leads[2], 1), *((m, 2) for m in crew[2])]
    )
    # keyset paging over the same query
    first_page = team_members(ctx, member_id=leads[0], max_depth=None, after=None, limit=3)
    rest = team_members(
        ctx, member_id=leads[0], max_depth=None, after=first_page[-1]["id"], limit=3
    )
    assert [m["id"] for m in first_page + rest] == [m["id"] for m in everyone]


# --- property: the stored tree always equals the tree the parent pointers describe ----------

TREE_PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

tree_ops = st.lists(
    st.tuples(
        st.sampled_from(["create", "create", "rebind"]), st.integers(0, 99), st.integers(0, 99)
    ),
    min_size=1,
    max_size=24,
)


def expected_refusal(
    parents: dict[str, str | None], member: str, referrer: str | None
) -> str | None:
    if referrer == member:
        return "self_referral"
    if parents[member] == referrer:
        return "rebind_same_referrer"
    node = referrer
    while node is not None:
        if node == member:
            return "referral_cycle"
        node = parents[node]
    return None


@TREE_PROPERTY
@given(ops=tree_ops)
def test_stored_tree_equals_the_transitive_closure_of_the_parents(
    db: Database, ops: list[tuple[str, int, int]]
) -> None:
    clock = ManualClock()
    tenant_id, _ = create_tenant(db=db, clock=clock, name="tree property")
    ctx = Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="property")
    parents: dict[str, str | None] = {}
    ids: list[str] = []
    for op, a, b in ops:
        if op == "create" or not ids:
            referrer = None if not ids or b % 4 == 0 else ids[b % len(ids)]
            new = f.member(ctx, f"m{len(ids)}", referrer=referrer)
            ids.append(new)
            parents[new] = referrer
        else:
            member = ids[a % len(ids)]
            target = None if b % 5 == 0 else ids[b % len(ids)]
            refusal = expected_refusal(parents, member, target)
            if refusal is None:
                rebind_member(ctx, member_id=member, referrer_id=target, reason="property")
                parents[member] = target
            else:
                before = snapshot(ctx)
                with pytest.raises(DomainError) as caught:
                    rebind_member(ctx, member_id=member, referrer_id=target, reason="property")
                assert caught.value.code == refusal
                assert snapshot(ctx) == before
        clock.advance(minutes=1)
        assert_tree_matches(ctx, parents)
