"""Repurchase (追销) on both databases: intervals learned as the median gap or set by the
tenant, the members due with their days overdue, reminders queued once for each member's
staff account, and the revenue mix that tells a reminded repurchase from the others."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from shequn.clock import ManualClock
from shequn.community.outbox.service import outbox_page
from shequn.community.staff.service import assign_member, create_account
from shequn.context import Ctx
from shequn.errors import InvalidInput, NotFound
from shequn.insights.repurchase import (
    due_page,
    list_intervals,
    revenue_mix,
    send_reminders,
    set_interval,
)
from shequn.orders.refunds import refund_order
from tests import factories as f


def interval_of(ctx: Ctx, sku: str) -> dict[str, Any]:
    return next(i for i in list_intervals(ctx) if i["sku"] == sku)


@pytest.fixture
def buyers(ctx: Ctx, clock: ManualClock) -> dict[str, Any]:
    """Three buyers of CORE-1: one every 10 days (three times), one after 30 days, one once;
    and TEA-1 bought twice by one of them."""
    f.product(ctx, sku="CORE-1", price_fen=10_000)
    f.product(ctx, sku="TEA-1", price_fen=5_000, category="food")
    start = clock.now()
    referrer = f.member(ctx, "推荐人")
    regular, slow, once = (
        f.member(ctx, "常客", referrer),
        f.member(ctx, "慢客"),
        f.member(ctx, "一次"),
    )
    f.paid_order(ctx, regular)
    f.paid_order(ctx, slow)
    f.paid_order(ctx, once)
    clock.advance(days=10)
    f.paid_order(ctx, regular)
    f.paid_order(ctx, regular, sku="TEA-1")
    clock.advance(days=10)
    f.paid_order(ctx, regular)
    f.paid_order(ctx, regular, sku="TEA-1")
    clock.advance(days=10)
    f.paid_order(ctx, slow)
    return {"start": start, "regular": regular, "slow": slow, "once": once, "referrer": referrer}


def test_the_interval_is_the_median_gap_until_the_tenant_sets_one(
    ctx: Ctx, buyers: dict[str, Any]
) -> None:
    # gaps of CORE-1: 10, 10 and 30 days; TEA-1 has one gap, too few to learn from
    assert interval_of(ctx, "CORE-1") == {
        "sku": "CORE-1",
        "interval_days": 10,
        "source": "learned",
        "set_days": None,
        "learned_days": 10,
        "gaps": 3,
        "window_days": 14,
    }
    assert (interval_of(ctx, "TEA-1")["interval_days"], interval_of(ctx, "TEA-1")["gaps"]) == (
        None,
        1,
    )
    set_interval(ctx, sku="TEA-1", interval_days=7, window_days=3)
    assert {
        k: interval_of(ctx, "TEA-1")[k] for k in ("interval_days", "source", "window_days")
    } == {
        "interval_days": 7,
        "source": "set",
        "window_days": 3,
    }
    set_interval(ctx, sku="TEA-1", interval_days=None)
    assert interval_of(ctx, "TEA-1")["source"] is None


def test_two_lines_of_one_order_are_one_purchase_and_refunded_lines_none(
    ctx: Ctx, clock: ManualClock
) -> None:
    f.product(ctx, sku="CORE-1", price_fen=100)
    member = f.member(ctx)
    for day in (0, 6, 12, 18):
        clock.advance(days=6 if day else 0)
        order = f.paid_order(ctx, member, quantity=2)
        if day == 12:
            refund_order(ctx, order_id=order["id"], amount_fen=200, reason="退货")
    # purchases kept on days 0, 6 and 18: gaps of 6 and 12, too few to learn from
    assert interval_of(ctx, "CORE-1")["gaps"] == 2


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"interval_days": 0}, "repurchase_days_invalid"),
        ({"interval_days": 3_651}, "repurchase_days_invalid"),
        ({"interval_days": 7, "window_days": 0}, "repurchase_days_invalid"),
        ({"interval_days": 7, "window_days": 366}, "repurchase_days_invalid"),
    ],
)
def test_bad_intervals_are_refused_and_change_nothing(
    ctx: Ctx, buyers: dict[str, Any], fields: dict[str, Any], code: str
) -> None:
    before = list_intervals(ctx)
    with pytest.raises(InvalidInput) as refused:
        set_interval(ctx, sku="CORE-1", **fields)
    assert refused.value.code == code
    with pytest.raises(NotFound):
        set_interval(ctx, sku="NOPE", interval_days=7)
    assert list_intervals(ctx) == before


def test_members_past_the_interval_are_due_with_their_days_overdue(
    ctx: Ctx, clock: ManualClock, buyers: dict[str, Any]
) -> None:
    # day 30: the regular last bought on day 20 (10 days ago), the one-time buyer on day 0
    page = due_page(ctx)
    assert [(i["name"], i["sku"], i["days_overdue"]) for i in page["items"]] == sorted(
        [("常客", "CORE-1", 0), ("一次", "CORE-1", 20)],
        key=lambda item: {"常客": buyers["regular"], "一次": buyers["once"]}[item[0]],
    )
    assert page["next_after"] is None
    clock.advance(days=5)
    assert {i["name"]: i["days_overdue"] for i in due_page(ctx, sku="CORE-1")["items"]} == {
        "常客": 5,
        "一次": 25,
    }
    first = due_page(ctx, limit=1)
    assert len({i["member_id"] for i in first["items"]}) == 1
    rest = due_page(ctx, limit=1, after=first["next_after"])
    assert {i["member_id"] for i in first["items"] + rest["items"]} == {
        buyers["regular"],
        buyers["once"],
    }
    with pytest.raises(InvalidInput) as refused:
        due_page(ctx, limit=0)
    assert refused.value.code == "limit_out_of_range"


def test_reminders_go_once_to_each_members_staff_account(
    ctx: Ctx, clock: ManualClock, buyers: dict[str, Any]
) -> None:
    account = create_account(ctx, name="宝妈小美")
    assign_member(ctx, member_id=buyers["regular"])
    assert send_reminders(ctx) == {"reminded": 2, "queued": 2}
    tasks = [m for m in outbox_page(ctx, limit=200)["items"] if m["kind"] == "repurchase_reminder"]
    assert {(t["member_id"], t["staff_account_id"]) for t in tasks} == {
        (buyers["regular"], account["id"]),
        (buyers["once"], None),
    }
    assert all(t["adapter"] == "operator_task" for t in tasks)
    assert "常客" in next(t["body"] for t in tasks if t["member_id"] == buyers["regular"])
    reminded = {i["member_id"]: i["reminded_at"] for i in due_page(ctx)["items"]}
    assert reminded == {buyers["regular"]: clock.now(), buyers["once"]: clock.now()}
    clock.advance(days=1)
    assert send_reminders(ctx) == {"reminded": 0, "queued": 0}


def test_the_next_order_within_the_window_counts_as_a_reminded_repurchase(
    ctx: Ctx, clock: ManualClock, buyers: dict[str, Any]
) -> None:
    send_reminders(ctx, sku="CORE-1")
    clock.advance(days=3)
    f.paid_order(ctx, buyers["regular"])  # reminded, within 14 days: reminded
    f.paid_order(ctx, buyers["regular"])  # not the next one: a plain repurchase
    clock.advance(days=20)
    f.paid_order(ctx, buyers["once"])  # reminded, but past the window
    fresh = f.member(ctx, "新客", buyers["referrer"])
    f.paid_order(ctx, fresh)  # a first order by referral
    f.paid_order(ctx, f.member(ctx, "路人"))  # a first order otherwise
    mix = revenue_mix(ctx, start=buyers["start"], end=clock.now() + timedelta(seconds=1))
    assert {c["channel"]: (c["orders"], c["revenue_fen"]) for c in mix["channels"]} == {
        "reminded_repurchase": (1, 10_000),
        # slow's second, the regular's second and third (core and tea each), the regular's
        # order after the reminded one, and once's past the window
        "repurchase": (1 + 4 + 2, 10_000 + 2 * (10_000 + 5_000) + 10_000 + 10_000),
        # the regular's first, and the fresh member's
        "referral": (2, 20_000),
        # slow's, once's and the walk-in's first orders
        "other": (3, 30_000),
    }
    assert mix["revenue_fen"] == sum(c["revenue_fen"] for c in mix["channels"])
    assert sum(c["share_bp"] for c in mix["channels"]) <= 10_000
    with pytest.raises(InvalidInput) as refused:
        revenue_mix(ctx, start="2026-02-01", end="2026-01-01")
    assert refused.value.code == "period_invalid"
