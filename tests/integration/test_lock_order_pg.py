"""One lock order, proven with real parallel connections on PostgreSQL: pairs of different use
cases that touch the same rows run at the same instant, round after round, and none of them
ever meets a deadlock or a serialization failure (the use cases run without the retry the API
adds), and every ledger and tree invariant holds after."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Any

import pytest
from sqlalchemy import select

from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.distribution.tables import commission_lines
from shequn.errors import DomainError
from shequn.flows.registration import create_member
from shequn.flows.settings import update_settings
from shequn.ledger.service import verify_ledger_of
from shequn.locks import Lock, LockOrderError, take
from shequn.members.service import get_member
from shequn.orders.creation import create_order
from shequn.orders.payment import pay_order
from shequn.orders.refunds import refund_order
from shequn.orders.views import get_order
from shequn.referrals.binding import rebind_member, record_touch
from shequn.settlement.service import run_settlement
from shequn.wallet.service import request_withdrawal, wallet
from tests import factories as f
from tests.integration.test_ledger_properties import assert_sound
from tests.integration.test_referrals import closure, tree_columns

pytestmark = pytest.mark.postgres

ROUNDS = 3
PAIRS = 15


def together(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run every call in a thread of its own, all released at the same instant; each one's
    result, its DomainError, or any other exception it raised."""
    barrier = Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait()
        try:
            return call()
        except DomainError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - the test asserts there is none
            return ("unexpected", repr(exc))

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def unexpected(results: Sequence[Any]) -> list[Any]:
    return [r for r in results if isinstance(r, tuple) and r[:1] == ("unexpected",)]


def test_refunds_after_close_race_withdrawals_of_the_same_member(pg_ctx: Ctx) -> None:
    ctx = pg_ctx
    assert isinstance(ctx.clock, ManualClock)
    update_settings(
        ctx,
        patch={
            "after_sales_days": 0,
            "withdrawal_min_fen": 100,
            "withdrawal_auto_approve_max_fen": 10**9,
        },
    )
    upline, buyer = f.chain(ctx, 2)
    f.product(ctx, price_fen=10_000)  # 10 % = 1 000 fen to the upline per order
    f.two_level_plan(ctx)
    for _ in range(ROUNDS):
        # given closed orders whose commission the upline may draw
        closed = [f.completed_order(ctx, buyer) for _ in range(PAIRS)]
        run_settlement(ctx)
        assert {get_order(ctx, order_id=o["id"])["status"] for o in closed} == {"closed"}

        # when each order is refunded while the upline withdraws, all at once
        calls: list[Callable[[], Any]] = []
        for order in closed:
            calls.append(
                lambda o=order: refund_order(
                    ctx, order_id=o["id"], amount_fen=o["total_fen"], reason="退货"
                )
            )
            calls.append(lambda: request_withdrawal(ctx, member_id=upline, amount_fen=700))
        results = together(calls)

        # then nothing but domain refusals came back (funds ran out, perhaps), every refund
        # went through, and the books hold
        assert unexpected(results) == []
        assert all(not isinstance(r, DomainError) for r in results[0::2])
        refused = {r.code for r in results[1::2] if isinstance(r, DomainError)}
        assert refused <= {"insufficient_funds"}
        assert verify_ledger_of(ctx)["ok"] is True
        assert_sound(ctx)
    with ctx.db.read() as tx:
        lines = tx.execute(
            select(commission_lines).where(commission_lines.c.tenant_id == ctx.tenant_id)
        ).all()
    assert all(0 <= r.withdrawn_fen <= r.amount_fen - r.cancelled_fen for r in lines)
    assert wallet(ctx, member_id=upline)["available_fen"] >= 0


def test_first_payments_that_bind_race_registrations_and_rebinds(pg_ctx: Ctx) -> None:
    ctx = pg_ctx
    root, referrer = f.chain(ctx, 2)
    other = f.member(ctx, "另一位推荐人", referrer=root)
    update_settings(ctx, patch={"binding_policy": {"trigger": "first_paid_order"}})
    f.product(ctx, price_fen=10_000)
    f.two_level_plan(ctx)
    for round_no in range(ROUNDS):
        # given buyers who clicked the referrer's link but are not bound yet, each with an
        # order to pay, and followers of those buyers about to be moved or registered
        buyers = [f.member(ctx, f"买家{round_no}-{i}") for i in range(PAIRS)]
        for buyer in buyers:
            record_touch(ctx, sharer_id=referrer, member_id=buyer)
        orders = [
            create_order(ctx, buyer_id=b, lines=[{"sku": "CORE-1", "quantity": 1}])[0]
            for b in buyers
        ]
        movers = [f.member(ctx, f"被移{round_no}-{i}") for i in range(PAIRS)]
        for mover in movers:
            rebind_member(ctx, member_id=mover, referrer_id=other, reason="归入团队")

        # when every first payment races a registration under the referrer and an
        # administrative move into the buyer's future team
        calls: list[Callable[[], Any]] = []
        for i, (buyer, order) in enumerate(zip(buyers, orders, strict=True)):
            calls.append(
                lambda o=order, n=i, r=round_no: pay_order(
                    ctx,
                    order_id=o["id"],
                    provider_txn_id=f"bind-{r}-{n}",
                    amount_fen=o["total_fen"],
                )
            )
            calls.append(
                lambda n=i, r=round_no: create_member(
                    ctx, name=f"新人{r}-{n}", referrer_id=referrer
                )
            )
            calls.append(
                lambda m=movers[i], b=buyer: rebind_member(
                    ctx, member_id=m, referrer_id=b, reason="纠纷裁定"
                )
            )
        results = together(calls)

        # then every call went through
        assert unexpected(results) == []
        assert [r for r in results if isinstance(r, DomainError)] == []
        # and each buyer is bound to the referrer, its first order paying the chain
        for buyer, order in zip(buyers, orders, strict=True):
            assert get_member(ctx, member_id=buyer)["referrer_id"] == referrer
            paid = get_order(ctx, order_id=order["id"])
            assert {c["beneficiary_id"] for c in paid["commissions"]} == {referrer, root}
    # and the stored tree is the closure of the parents, with its counts
    columns = tree_columns(ctx)
    parents = {m: c[0] for m, c in columns.items()}
    expected: set[tuple[str, str, int]] = set()
    for member in parents:
        node: str | None = member
        depth = 0
        while node is not None:
            expected.add((node, member, depth))
            node, depth = parents[node], depth + 1
    assert closure(ctx) == expected
    for member, (_, _, _, direct, team) in columns.items():
        assert direct == sum(1 for p in parents.values() if p == member)
        assert team == sum(1 for a, d, depth in expected if a == member and depth > 0)
    assert_sound(ctx)


def test_refunds_race_the_settlement_of_the_same_orders(pg_ctx: Ctx) -> None:
    ctx = pg_ctx
    update_settings(ctx, patch={"after_sales_days": 0})
    _upline, buyer = f.chain(ctx, 2)
    f.product(ctx, price_fen=10_000)
    f.two_level_plan(ctx)
    for _ in range(ROUNDS):
        # given completed orders the settlement may close at once
        completed = [f.completed_order(ctx, buyer) for _ in range(PAIRS)]

        # when each is refunded in full while settlement runs, as often
        calls: list[Callable[[], Any]] = []
        for order in completed:
            calls.append(
                lambda o=order: refund_order(
                    ctx, order_id=o["id"], amount_fen=o["total_fen"], reason="退款"
                )
            )
            calls.append(lambda: run_settlement(ctx))
        results = together(calls)

        # then all of it went through, and every refunded order pays nothing any more
        assert unexpected(results) == []
        assert [r for r in results if isinstance(r, DomainError)] == []
        for order in completed:
            seen = get_order(ctx, order_id=order["id"])
            assert seen["refunded_fen"] == seen["paid_fen"]
            assert seen["status"] in ("refunded", "closed")
            assert all(c["net_fen"] == 0 for c in seen["commissions"])
        assert verify_ledger_of(ctx)["ok"] is True
        assert_sound(ctx)


def test_a_lock_above_one_held_is_refused(pg_ctx: Ctx) -> None:
    with pg_ctx.db.transaction() as tx:
        take(tx, Lock.ORDERS)
        take(tx, Lock.ORDERS)  # more of the same level
        take(tx, Lock.ACCOUNTS)  # a later level
        with pytest.raises(LockOrderError, match="MEMBERS taken after ACCOUNTS"):
            take(tx, Lock.MEMBERS)
    with pg_ctx.db.transaction() as tx:
        take(tx, Lock.MEMBERS)  # a new transaction starts with nothing held
