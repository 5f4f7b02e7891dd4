"""Ledger invariants over random sequences of business operations, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.db import Database
from shequn.distribution.plans import build_plan_spec
from shequn.distribution.tables import commission_lines
from shequn.errors import DomainError
from shequn.flows.plans import activate_plan, create_plan
from shequn.flows.settings import update_settings
from shequn.ledger.rules import Purpose
from shequn.ledger.service import find_balance_mismatches, unbalanced_transactions
from shequn.ledger.tables import accounts, postings
from shequn.orders.creation import create_order
from shequn.orders.payment import pay_order
from shequn.orders.refunds import refund_order
from shequn.orders.transitions import complete_order, ship_order
from shequn.settlement.service import run_settlement
from shequn.tenancy.service import create_tenant
from shequn.wallet.service import (
    record_payout_result,
    reject_withdrawal,
    request_withdrawal,
    wallet,
)
from tests import factories as f

BACKENDS = ["sqlite_db", pytest.param("postgres_db", marks=pytest.mark.postgres)]
PROPERTY = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def fresh(db: Database) -> Ctx:
    clock = ManualClock()
    tenant_id, _ = create_tenant(db=db, clock=clock, name="property")
    return Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="property")


def all_balances(ctx: Ctx) -> dict[str, int]:
    """Every account's balance summed from its postings."""
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(accounts.c.id, func.coalesce(func.sum(postings.c.amount), 0))
            .select_from(
                accounts.outerjoin(
                    postings,
                    (postings.c.tenant_id == accounts.c.tenant_id)
                    & (postings.c.account_id == accounts.c.id),
                )
            )
            .where(accounts.c.tenant_id == ctx.tenant_id)
            .group_by(accounts.c.id)
        ).all()
    return {r[0]: int(r[1]) for r in rows}


def pending_by_member(ctx: Ctx) -> tuple[dict[str, int], dict[str, int]]:
    """Each member's frozen wallet, and what its pending commission lines still promise."""
    with ctx.db.read() as tx:
        # A frozen wallet's balance is the sum of its postings (it has no cached figure).
        wallets = tx.execute(
            select(accounts.c.owner_id, func.sum(postings.c.amount))
            .select_from(
                accounts.join(
                    postings,
                    (postings.c.tenant_id == accounts.c.tenant_id)
                    & (postings.c.account_id == accounts.c.id),
                )
            )
            .where(
                accounts.c.tenant_id == ctx.tenant_id,
                accounts.c.purpose == Purpose.WALLET_PENDING.value,
            )
            .group_by(accounts.c.owner_id)
            .having(func.sum(postings.c.amount) != 0)
        ).all()
        lines = tx.execute(
            select(
                commission_lines.c.beneficiary_id,
                func.sum(commission_lines.c.amount_fen - commission_lines.c.cancelled_fen),
            )
            .where(
                commission_lines.c.tenant_id == ctx.tenant_id,
                commission_lines.c.status == "pending",
            )
            .group_by(commission_lines.c.beneficiary_id)
        ).all()
    return {r[0]: int(r[1]) for r in wallets}, {r[0]: int(r[1]) for r in lines if r[1]}


def assert_sound(ctx: Ctx) -> None:
    with ctx.db.read() as tx:
        assert unbalanced_transactions(tx, tenant_id=ctx.tenant_id) == []
        assert find_balance_mismatches(tx, tenant_id=ctx.tenant_id) == []
    assert sum(all_balances(ctx).values()) == 0
    wallets, promised = pending_by_member(ctx)
    assert wallets == promised


def setup_community(ctx: Ctx, l1: int, l2: int, peer: int) -> list[str]:
    from shequn.flows.tiers import create_tier

    vip = create_tier(ctx, name="VIP", rank=1, upgrade_spend_fen=30_000)
    members = f.chain(ctx, 4)
    f.member(ctx, referrer=members[1], tier_id=vip["id"])
    f.product(ctx, sku="A", price_fen=9_990)
    f.product(ctx, sku="B", price_fen=12_345, ladder_role="bait")
    plan = create_plan(
        ctx,
        spec=build_plan_spec(
            mode="levels",
            levels=[{"level": 1, "rate_bp": l1}, {"level": 2, "rate_bp": l2}],
            peer_bonus_bp=peer,
        ),
    )
    activate_plan(ctx, plan_id=plan["id"])
    return members


# Level 1, level 2 and a peer bonus paid at both levels: at most 1 400 + 1 000 + 2 × 300 =
# 3 000 bp, the legal cap, so that every plan drawn can be activated.
RATES = st.tuples(st.integers(0, 1_400), st.integers(0, 1_000), st.integers(0, 300))

operations = st.lists(
    st.tuples(
        st.sampled_from(
            ["buy", "ship", "complete", "refund", "settle", "wait", "withdraw", "reject", "fail"]
        ),
        st.integers(0, 10**6),
    ),
    min_size=5,
    max_size=30,
)


@pytest.mark.parametrize("backend", BACKENDS)
@PROPERTY
@given(
    rates=RATES,
    ops=operations,
)
def test_every_journal_transaction_sums_to_zero(
    request: pytest.FixtureRequest,
    backend: str,
    rates: tuple[int, int, int],
    ops: list[tuple[str, int]],
) -> None:
    ctx = fresh(request.getfixturevalue(backend))
    assert isinstance(ctx.clock, ManualClock)
    members = setup_community(ctx, *rates)
    orders: list[dict[str, Any]] = []
    withdrawals: list[dict[str, Any]] = []
    for op, n in ops:
        try:
            if op == "buy":
                order, _ = create_order(
                    ctx,
                    buyer_id=members[n % len(members)],
                    lines=[{"sku": "AB"[n % 2], "quantity": 1 + n % 3}],
                )
                pay_order(
                    ctx,
                    order_id=order["id"],
                    provider_txn_id=f"t{len(orders)}",
                    amount_fen=order["total_fen"],
                )
                orders.append(order)
            elif op in ("ship", "complete", "refund") and orders:
                order = orders[n % len(orders)]
                if op == "ship":
                    ship_order(ctx, order_id=order["id"])
                elif op == "complete":
                    complete_order(ctx, order_id=order["id"])
                else:
                    refund_order(
                        ctx, order_id=order["id"], amount_fen=1 + n % order["total_fen"], reason="r"
                    )
            elif op == "settle":
                run_settlement(ctx)
            elif op == "wait":
                ctx.clock.advance(days=1 + n % 9)
            elif op == "withdraw":
                member = members[n % len(members)]
                available = wallet(ctx, member_id=member)["available_fen"]
                if available >= 100:
                    withdrawal, _ = request_withdrawal(
                        ctx, member_id=member, amount_fen=max(100, available // 2)
                    )
                    withdrawals.append(withdrawal)
            elif op in ("reject", "fail") and withdrawals:
                withdrawal = withdrawals[n % len(withdrawals)]
                if op == "reject":
                    reject_withdrawal(ctx, withdrawal_id=withdrawal["id"], reason="r")
                else:
                    record_payout_result(
                        ctx,
                        withdrawal_id=withdrawal["id"],
                        payout_id=withdrawal["payout_id"],
                        status="failed",
                    )
        except DomainError:
            pass  # refused operations must leave the ledger as it was; checked below
        assert_sound(ctx)


@pytest.mark.parametrize("backend", BACKENDS)
@PROPERTY
@given(
    rates=RATES,
    quantity=st.integers(1, 5),
    partial=st.lists(st.integers(1, 5_000), max_size=3),
    close_first=st.booleans(),
    buyer_index=st.integers(0, 4),
)
def test_a_full_refund_returns_every_balance_to_where_it_was(
    request: pytest.FixtureRequest,
    backend: str,
    rates: tuple[int, int, int],
    quantity: int,
    partial: list[int],
    close_first: bool,
    buyer_index: int,
) -> None:
    ctx = fresh(request.getfixturevalue(backend))
    assert isinstance(ctx.clock, ManualClock)
    members = setup_community(ctx, *rates)
    update_settings(ctx, patch={"after_sales_days": 1})
    buyer = members[buyer_index % len(members)]
    before = all_balances(ctx)

    order = f.completed_order(ctx, buyer, sku="A", quantity=quantity)
    refunded = 0
    for amount in partial:
        amount = min(amount, order["total_fen"] - refunded - 1)
        if amount > 0:
            refund_order(ctx, order_id=order["id"], amount_fen=amount, reason="部分退款")
            refunded += amount
    if close_first:
        ctx.clock.advance(days=1)
        run_settlement(ctx)
    refund_order(
        ctx, order_id=order["id"], amount_fen=order["total_fen"] - refunded, reason="全额退款"
    )

    assert all_balances(ctx) == before
    assert_sound(ctx)
