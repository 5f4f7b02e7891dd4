"""Races proven with real parallel connections on PostgreSQL."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.distribution.tables import commission_lines
from shequn.errors import DomainError
from shequn.flows.settings import update_settings
from shequn.ledger.service import find_balance_mismatches
from shequn.orders.creation import create_order
from shequn.orders.payment import pay_order
from shequn.orders.refunds import refund_order
from shequn.orders.tables import payments
from shequn.orders.views import get_order
from shequn.settlement.service import run_settlement
from shequn.wallet.service import (
    approve_withdrawal,
    get_withdrawal,
    record_payout_result,
    reject_withdrawal,
    request_withdrawal,
    wallet,
)
from tests import factories as f
from tests.races import race

pytestmark = pytest.mark.postgres


def test_fifty_parallel_withdrawals_against_a_balance_for_ten(pg_ctx: Ctx) -> None:
    ctx = pg_ctx
    assert isinstance(ctx.clock, ManualClock)
    update_settings(ctx, patch={"withdrawal_min_fen": 100, "withdrawal_auto_approve_max_fen": 0})
    parent, buyer = f.chain(ctx, 2)
    f.product(ctx, price_fen=10_000)  # 10 % = 1 000 fen of commission
    f.two_level_plan(ctx)
    f.completed_order(ctx, buyer)
    ctx.clock.advance(days=7)
    run_settlement(ctx)
    assert wallet(ctx, member_id=parent)["available_fen"] == 1_000

    results = race(50, lambda _: request_withdrawal(ctx, member_id=parent, amount_fen=100)[0])

    succeeded = [r for r in results if isinstance(r, dict)]
    refused = Counter(r.code for r in results if isinstance(r, DomainError))
    assert len(succeeded) == 10
    assert refused == Counter({"insufficient_funds": 40})
    assert len({w["payout_id"] for w in succeeded}) == 10
    assert wallet(ctx, member_id=parent)["available_fen"] == 0
    with ctx.db.read() as tx:
        assert find_balance_mismatches(tx, tenant_id=ctx.tenant_id) == []


def test_the_same_payment_callback_twenty_times_in_parallel(pg_ctx: Ctx) -> None:
    ctx = pg_ctx
    grandparent, parent, buyer = f.chain(ctx, 3)
    f.product(ctx, price_fen=10_000)
    f.two_level_plan(ctx)
    order, _ = create_order(ctx, buyer_id=buyer, lines=[{"sku": "CORE-1", "quantity": 1}])

    results = race(
        20,
        lambda _: pay_order(
            ctx, order_id=order["id"], provider_txn_id="wx-same", amount_fen=10_000
        ),
    )

    assert [r for r in results if isinstance(r, DomainError)] == []
    assert Counter(replayed for _, replayed in results) == Counter({False: 1, True: 19})
    with ctx.db.read() as tx:
        paid = tx.execute(
            select(func.count()).where(
                payments.c.tenant_id == ctx.tenant_id, payments.c.order_id == order["id"]
            )
        ).scalar_one()
        lines = tx.execute(
            select(commission_lines.c.beneficiary_id, commission_lines.c.amount_fen)
            .where(commission_lines.c.tenant_id == ctx.tenant_id)
            .order_by(commission_lines.c.level)
        ).all()
        assert find_balance_mismatches(tx, tenant_id=ctx.tenant_id) == []
    assert paid == 1
    assert [tuple(r) for r in lines] == [(parent, 1_000), (grandparent, 500)]
    assert wallet(ctx, member_id=parent)["pending_fen"] == 1_000


def test_parallel_orders_with_one_idempotency_key_make_one_order(pg_ctx: Ctx) -> None:
    ctx = pg_ctx
    buyer = f.member(ctx)
    f.product(ctx)
    results = race(
        12,
        lambda _: create_order(
            ctx, buyer_id=buyer, lines=[{"sku": "CORE-1", "quantity": 1}], idempotency_key="same"
        ),
    )
    assert [r for r in results if isinstance(r, DomainError)] == []
    assert len({order["id"] for order, _ in results}) == 1


def test_parallel_rebinds_cannot_close_a_cycle(pg_ctx: Ctx) -> None:
    from shequn.members.service import get_member
    from shequn.referrals.binding import rebind_member

    ctx = pg_ctx
    a = f.member(ctx, "A")
    b = f.member(ctx, "B")
    moves = [(a, b), (b, a)] * 4
    results = race(
        len(moves),
        lambda i: rebind_member(ctx, member_id=moves[i][0], referrer_id=moves[i][1], reason="争议"),
    )
    errors = Counter(r.code for r in results if isinstance(r, DomainError))
    assert set(errors) <= {"referral_cycle", "rebind_same_referrer"}
    referrers = {
        get_member(ctx, member_id=a)["referrer_id"],
        get_member(ctx, member_id=b)["referrer_id"],
    }
    assert None in referrers


def test_parallel_partial_refunds_never_refund_more_than_was_paid(pg_ctx: Ctx) -> None:
    ctx = pg_ctx
    parent, buyer = f.chain(ctx, 2)
    f.product(ctx, price_fen=10_000)
    f.two_level_plan(ctx)
    order = f.paid_order(ctx, buyer)

    results = race(
        12,
        lambda i: refund_order(
            ctx, order_id=order["id"], amount_fen=3_000, reason="退款", idempotency_key=f"r{i}"
        )[0],
    )

    refused = Counter(r.code for r in results if isinstance(r, DomainError))
    assert len([r for r in results if isinstance(r, dict)]) == 3
    assert refused == Counter({"refund_exceeds_paid": 9})
    after = get_order(ctx, order_id=order["id"])
    assert (after["refunded_fen"], after["status"]) == (9_000, "paid")
    # the upline's frozen commission shrank in proportion: 1 000 fen × 10 % left
    assert wallet(ctx, member_id=parent)["pending_fen"] == 100
    with ctx.db.read() as tx:
        assert find_balance_mismatches(tx, tenant_id=ctx.tenant_id) == []


def test_parallel_settlement_runs_release_each_commission_once(pg_ctx: Ctx) -> None:
    ctx = pg_ctx
    assert isinstance(ctx.clock, ManualClock)
    update_settings(ctx, patch={"after_sales_days": 0})
    parent, buyer = f.chain(ctx, 2)
    f.product(ctx, price_fen=10_000)
    f.two_level_plan(ctx)
    for _ in range(6):
        f.completed_order(ctx, buyer)

    results = race(8, lambda _: run_settlement(ctx))

    assert [r for r in results if isinstance(r, DomainError)] == []
    assert sum(r["orders_closed"] for r in results) == 6
    assert sum(r["released_fen"] for r in results) == 6_000
    assert wallet(ctx, member_id=parent)["available_fen"] == 6_000
    with ctx.db.read() as tx:
        assert find_balance_mismatches(tx, tenant_id=ctx.tenant_id) == []


def test_a_withdrawal_is_either_rejected_or_failed_once_never_both(pg_ctx: Ctx) -> None:
    ctx = pg_ctx
    assert isinstance(ctx.clock, ManualClock)
    update_settings(ctx, patch={"after_sales_days": 0, "withdrawal_auto_approve_max_fen": 0})
    parent, buyer = f.chain(ctx, 2)
    f.product(ctx, price_fen=10_000)
    f.two_level_plan(ctx)
    f.completed_order(ctx, buyer)
    run_settlement(ctx)
    withdrawal, _ = request_withdrawal(ctx, member_id=parent, amount_fen=1_000)
    approve_withdrawal(ctx, withdrawal_id=withdrawal["id"])

    # the payout provider's "failed" and an operator's rejection arrive together, many times
    def settle_it(i: int) -> Any:
        if i % 2:
            return reject_withdrawal(ctx, withdrawal_id=withdrawal["id"], reason="撤回")
        return record_payout_result(
            ctx, withdrawal_id=withdrawal["id"], payout_id=withdrawal["payout_id"], status="failed"
        )

    results = race(10, settle_it)

    # one of them won, the others were refused or replayed, and the funds came back once
    final = get_withdrawal(ctx, withdrawal_id=withdrawal["id"])["status"]
    assert final in {"rejected", "failed"}
    assert {r.code for r in results if isinstance(r, DomainError)} <= {
        "withdrawal_transition_invalid"
    }
    assert wallet(ctx, member_id=parent)["available_fen"] == 1_000
    with ctx.db.read() as tx:
        assert find_balance_mismatches(tx, tenant_id=ctx.tenant_id) == []


def test_parallel_registrations_with_one_phone_make_one_member(pg_ctx: Ctx) -> None:
    from shequn.flows.registration import create_member
    from shequn.members.service import list_members

    ctx = pg_ctx
    referrer = f.member(ctx, "推荐人")

    results = race(
        10,
        lambda i: create_member(ctx, name=f"同号{i}", phone="13912345678", referrer_id=referrer),
    )

    created = [r for r in results if isinstance(r, dict)]
    refused = Counter(r.code for r in results if isinstance(r, DomainError))
    assert (len(created), refused) == (1, Counter({"phone_taken": 9}))
    assert [m["id"] for m in list_members(ctx, phone="13912345678")["items"]] == [created[0]["id"]]
    team = list_members(ctx, referrer_id=referrer)["items"]
    assert [m["id"] for m in team] == [created[0]["id"]]
