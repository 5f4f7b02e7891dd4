"""A payment written in one statement leaves exactly what the locking way leaves, and falls
back to it whenever what it read has changed."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Any

import pytest
from sqlalchemy import select

from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.db import Database
from shequn.distribution.tables import commission_lines
from shequn.errors import InvalidInput
from shequn.events.tables import events
from shequn.ledger.service import find_balance_mismatches, unbalanced_transactions
from shequn.ledger.tables import accounts, journal_transactions, postings
from shequn.members.tables import members
from shequn.orders import service as orders_service
from shequn.orders.service import create_order, pay_order
from shequn.orders.tables import orders, payments
from shequn.tenancy.service import create_tenant, load_settings, seen_settings
from tests import factories as f


def _snapshot(ctx: Ctx) -> dict[str, Any]:
    """The tenant's rows that a payment writes, with generated ids replaced by stable names."""
    names: dict[str, str] = {}

    def name(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        for generated, label in names.items():
            value = value.replace(generated, label)
        return value

    t = ctx.tenant_id
    with ctx.db.read() as tx:
        member_rows = tx.execute(
            select(members).where(members.c.tenant_id == t).order_by(members.c.name)
        ).all()
        for r in member_rows:
            names[r.id] = f"<{r.name}>"
        order_rows = tx.execute(
            select(orders).where(orders.c.tenant_id == t).order_by(orders.c.created_at)
        ).all()
        for n, r in enumerate(order_rows):
            names[r.id] = f"<order {n}>"
        snap = {
            "members": [
                (
                    r.name,
                    r.paid_order_count,
                    r.lifetime_order_count,
                    r.paid_total_fen,
                    r.max_order_fen,
                    r.referred_buyer_count,
                    r.first_paid_at,
                    r.last_paid_at,
                    r.updated_at,
                )
                for r in member_rows
            ],
            "orders": [
                (name(r.id), r.status, r.total_fen, r.paid_fen, r.paid_at, r.updated_at)
                for r in order_rows
            ],
            "payments": sorted(
                (name(r.order_id), r.provider_txn_id, r.amount_fen, r.created_at)
                for r in tx.execute(select(payments).where(payments.c.tenant_id == t))
            ),
            "commissions": sorted(
                (name(r.order_id), name(r.beneficiary_id), r.level, r.amount_fen, r.status)
                for r in tx.execute(
                    select(commission_lines).where(commission_lines.c.tenant_id == t)
                )
            ),
            "journal": sorted(
                (r.kind, name(r.ref_id))
                for r in tx.execute(
                    select(journal_transactions).where(journal_transactions.c.tenant_id == t)
                )
            ),
            "postings": sorted(
                (name(r.account_id), r.amount)
                for r in tx.execute(select(postings).where(postings.c.tenant_id == t))
            ),
            "balances": sorted(
                (name(r.id), r.balance)
                for r in tx.execute(select(accounts).where(accounts.c.tenant_id == t))
            ),
            "events": [
                (r.type, name(r.subject_id), {k: name(v) for k, v in r.payload.items()})
                for r in tx.execute(
                    select(events)
                    .where(events.c.tenant_id == t, events.c.type.in_(("OrderPaid",)))
                    .order_by(events.c.id)
                )
            ],
        }
        assert find_balance_mismatches(tx, tenant_id=t) == []
        assert unbalanced_transactions(tx, tenant_id=t) == []
    return snap


def _settings_seen(ctx: Ctx) -> None:
    """As after an earlier payment of the tenant in this process: its settings are known."""
    with ctx.db.read() as tx:
        seen_settings.put(load_settings(tx, ctx.tenant_id))


def _two_payments(ctx: Ctx) -> None:
    buyer = f.chain(ctx, 3)[-1]
    f.product(ctx, price_fen=10_000)
    f.product(ctx, sku="BAIT-1", price_fen=990, ladder_role="bait")
    f.two_level_plan(ctx)
    _settings_seen(ctx)
    for n, sku in enumerate(("CORE-1", "BAIT-1")):
        order, _ = create_order(ctx, buyer_id=buyer, lines=[{"sku": sku, "quantity": 2}])
        assert isinstance(ctx.clock, ManualClock)
        ctx.clock.advance(minutes=5)
        pay_order(
            ctx,
            order_id=order["id"],
            provider_txn_id=f"wx-{n}",
            amount_fen=order["total_fen"],
        )


def _fresh(db: Database) -> Ctx:
    clock = ManualClock()
    tenant_id, _ = create_tenant(db=db, clock=clock, name="paths")
    return Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="test")


def _count_ways(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Which way each payment took: from its creation's read, with a read of its own in one
    statement, or the locking way."""
    ways: Counter[str] = Counter()
    as_created = orders_service._pay_as_created
    one_statement = orders_service._pay_in_one_statement
    with_locks = orders_service._pay_with_locks

    def counted_as_created(ctx: Ctx, *args: Any, **kw: Any) -> Any:
        result = as_created(ctx, *args, **kw)
        ways["as created" if result is not None else "as created refused"] += 1
        return result

    def counted_one_statement(ctx: Ctx, **kw: Any) -> Any:
        result = one_statement(ctx, **kw)
        ways["one statement" if result is not None else "one statement refused"] += 1
        return result

    def counted_with_locks(ctx: Ctx, **kw: Any) -> Any:
        ways["with locks"] += 1
        return with_locks(ctx, **kw)

    monkeypatch.setattr(orders_service, "_pay_as_created", counted_as_created)
    monkeypatch.setattr(orders_service, "_pay_in_one_statement", counted_one_statement)
    monkeypatch.setattr(orders_service, "_pay_with_locks", counted_with_locks)
    return ways


def test_the_three_ways_of_paying_write_the_same(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given payments that follow their orders in this process
    ways = _count_ways(monkeypatch)
    quick = _fresh(db)
    _two_payments(quick)
    assert ways == Counter({"as created": 2})

    # when the same payments find no creation remembered (another process made the orders)
    ways.clear()
    monkeypatch.setattr(orders_service._recent_orders, "put", lambda *args: None)
    read = _fresh(db)
    _two_payments(read)
    assert ways == Counter({"one statement": 2})

    # and when they take the locking way
    ways.clear()
    monkeypatch.setattr(orders_service, "_pay_in_one_statement", lambda ctx, **kw: None)
    locked = _fresh(db)
    _two_payments(locked)
    assert ways == Counter({"with locks": 2})

    # then all three leave the same rows
    assert _snapshot(quick) == _snapshot(read) == _snapshot(locked)


def _shop(db: Database, *, depth: int, price_fen: int) -> tuple[Ctx, str]:
    """A tenant with a referral chain, one product and a plan of 10% and 5%; the buyer."""
    ctx = _fresh(db)
    buyer = f.chain(ctx, depth)[-1]
    f.product(ctx, price_fen=price_fen)
    f.two_level_plan(ctx)
    return ctx, buyer


def test_a_payment_after_the_settings_changed_reads_them_afresh(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an order made under a plan of 10% and 5%
    ctx, buyer = _shop(db, depth=3, price_fen=10_000)
    order, _ = create_order(ctx, buyer_id=buyer, lines=[{"sku": "CORE-1", "quantity": 1}])

    # when a plan of 20% and 10% is activated before the order is paid
    _settings_seen(ctx)
    f.two_level_plan(ctx, l1=2_000, l2=1_000)
    ways = _count_ways(monkeypatch)
    paid, _ = pay_order(ctx, order_id=order["id"], provider_txn_id="wx-1", amount_fen=10_000)

    # then the payment refused what its creation read and earned under the new plan
    assert ways == Counter({"as created refused": 1, "one statement": 1})
    assert [(c["level"], c["amount_fen"]) for c in paid["commissions"]] == [
        (1, 2_000),
        (2, 1_000),
    ]
    assert sorted(c[3] for c in _snapshot(ctx)["commissions"]) == [1_000, 2_000]


def test_a_payment_after_another_of_the_buyers_reads_the_buyer_afresh(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given two orders of one referred buyer, made before either is paid
    ctx, buyer = _shop(db, depth=2, price_fen=1_000)
    first, _ = create_order(ctx, buyer_id=buyer, lines=[{"sku": "CORE-1", "quantity": 1}])
    second, _ = create_order(ctx, buyer_id=buyer, lines=[{"sku": "CORE-1", "quantity": 3}])
    _settings_seen(ctx)

    # when both are paid, one after the other
    ways = _count_ways(monkeypatch)
    pay_order(ctx, order_id=first["id"], provider_txn_id="wx-1", amount_fen=1_000)
    pay_order(ctx, order_id=second["id"], provider_txn_id="wx-2", amount_fen=3_000)

    # then the second refused the buyer its creation read, and the facts add up
    assert ways == Counter({"as created": 1, "as created refused": 1, "one statement": 1})
    snap = _snapshot(ctx)
    buyer_row = next(m for m in snap["members"] if m[0] == "链1")
    referrer_row = next(m for m in snap["members"] if m[0] == "链0")
    assert buyer_row[1:5] == (2, 2, 4_000, 3_000)
    assert referrer_row[5] == 1
    assert [e[2]["first_purchase"] for e in snap["events"]] == [True, False]


def test_a_wrong_amount_for_a_remembered_order_changes_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an order this process just made
    ctx, buyer = _shop(db, depth=2, price_fen=1_000)
    order, _ = create_order(ctx, buyer_id=buyer, lines=[{"sku": "CORE-1", "quantity": 1}])
    _settings_seen(ctx)
    before = _snapshot(ctx)

    # when its payment says another amount
    with pytest.raises(InvalidInput) as refused:
        pay_order(ctx, order_id=order["id"], provider_txn_id="wx-1", amount_fen=999)

    # then it is refused and nothing changed; the right amount is then paid as usual
    assert refused.value.code == "payment_amount_mismatch"
    assert _snapshot(ctx) == before
    ways = _count_ways(monkeypatch)
    paid, replayed = pay_order(ctx, order_id=order["id"], provider_txn_id="wx-1", amount_fen=1_000)
    assert (paid["status"], replayed) == ("paid", False)
    assert ways == Counter({"one statement": 1})


@pytest.mark.postgres
def test_a_payment_that_finds_its_buyer_changed_takes_the_locking_way(
    postgres_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a buyer with two unpaid orders, made by another process
    monkeypatch.setattr(orders_service._recent_orders, "put", lambda *args: None)
    ctx = _fresh(postgres_db)
    parent, buyer = f.chain(ctx, 2)
    f.product(ctx, price_fen=10_000)
    f.two_level_plan(ctx)
    first, _ = create_order(ctx, buyer_id=buyer, lines=[{"sku": "CORE-1", "quantity": 1}])
    second, _ = create_order(ctx, buyer_id=buyer, lines=[{"sku": "CORE-1", "quantity": 1}])

    # when the second order is paid by another connection after the first payment has read
    # the buyer but before it writes
    real_tiers = orders_service.cached_tiers
    interleaved: list[bool] = []

    def pay_second_meanwhile(tx: Any, settings: Any) -> Any:
        if not interleaved:
            interleaved.append(True)
            pay_order(ctx, order_id=second["id"], provider_txn_id="wx-2", amount_fen=10_000)
        return real_tiers(tx, settings)

    locked_way = orders_service._pay_with_locks
    took_locks: list[str] = []

    def spied(ctx: Ctx, **kw: Any) -> Any:
        took_locks.append(kw["order_id"])
        return locked_way(ctx, **kw)

    monkeypatch.setattr(orders_service, "cached_tiers", pay_second_meanwhile)
    monkeypatch.setattr(orders_service, "_pay_with_locks", spied)
    paid, replayed = pay_order(ctx, order_id=first["id"], provider_txn_id="wx-1", amount_fen=10_000)
    assert took_locks == [first["id"]]

    # then the first payment still counts: the buyer's facts add up and only one of the two
    # was its first purchase, which the referrer counted once
    assert (paid["status"], replayed) == ("paid", False)
    with ctx.db.read() as tx:
        row = tx.execute(
            select(members).where(members.c.tenant_id == ctx.tenant_id, members.c.id == buyer)
        ).one()
        referrer = tx.execute(
            select(members.c.referred_buyer_count).where(
                members.c.tenant_id == ctx.tenant_id, members.c.id == parent
            )
        ).scalar_one()
        flags = [
            r.payload["first_purchase"]
            for r in tx.execute(
                select(events.c.payload).where(
                    events.c.tenant_id == ctx.tenant_id, events.c.type == "OrderPaid"
                )
            )
        ]
    assert (row.paid_order_count, row.lifetime_order_count, row.paid_total_fen) == (2, 2, 20_000)
    assert referrer == 1
    assert sorted(flags) == [False, True]
    assert len(_snapshot(ctx)["commissions"]) == 2


@pytest.mark.postgres
def test_parallel_first_payments_of_one_buyer_count_one_first_purchase(
    postgres_db: Database,
) -> None:
    # given a referred buyer with six unpaid orders
    ctx = _fresh(postgres_db)
    buyer = f.chain(ctx, 2)[-1]
    f.product(ctx, price_fen=1_000)
    f.two_level_plan(ctx)
    placed = [
        create_order(ctx, buyer_id=buyer, lines=[{"sku": "CORE-1", "quantity": 1}])[0]
        for _ in range(6)
    ]

    # when all six are paid at the same instant
    barrier = Barrier(len(placed))

    def pay(i: int) -> tuple[dict[str, Any], bool]:
        barrier.wait()
        return pay_order(ctx, order_id=placed[i]["id"], provider_txn_id=f"wx-{i}", amount_fen=1_000)

    with ThreadPoolExecutor(max_workers=len(placed)) as pool:
        results = list(pool.map(pay, range(len(placed))))

    # then every payment counted once and exactly one was the first purchase
    assert [r[1] for r in results] == [False] * 6
    snap = _snapshot(ctx)
    buyer_row = next(m for m in snap["members"] if m[0] == "链1")
    referrer_row = next(m for m in snap["members"] if m[0] == "链0")
    assert buyer_row[1:5] == (6, 6, 6_000, 1_000)
    assert referrer_row[5] == 1
    assert Counter(e[2]["first_purchase"] for e in snap["events"]) == Counter({True: 1, False: 5})
    assert len(snap["commissions"]) == 6
