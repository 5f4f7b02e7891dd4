"""An order written from what the process saw lately is the order a fresh read would have
made, and anything changed since sends it back to the read."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import count
from threading import Barrier
from typing import Any

import pytest
from sqlalchemy import select

from shequn.catalog.service import update_product
from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.db import Database
from shequn.errors import Conflict, NotFound
from shequn.events.tables import events
from shequn.ledger.service import find_balance_mismatches, unbalanced_transactions
from shequn.members.service import update_member
from shequn.members.tables import members
from shequn.money import MAX_AMOUNT_FEN
from shequn.orders import service as orders_service
from shequn.orders.service import create_order, pay_order
from shequn.orders.tables import order_lines, orders
from shequn.tenancy.service import create_tenant
from shequn.tiers.service import create_tier, update_tier
from tests import factories as f


def _fresh(db: Database) -> Ctx:
    clock = ManualClock()
    tenant_id, _ = create_tenant(db=db, clock=clock, name="orders")
    return Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="test")


def _count_ways(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    ways: Counter[str] = Counter()
    as_seen = orders_service._create_as_seen
    as_read = orders_service._create_as_read

    def counted_as_seen(ctx: Ctx, request: Any) -> Any:
        result = as_seen(ctx, request)
        ways["as seen" if result is not None else "as seen refused"] += 1
        return result

    def counted_as_read(ctx: Ctx, request: Any) -> Any:
        ways["as read"] += 1
        return as_read(ctx, request)

    monkeypatch.setattr(orders_service, "_create_as_seen", counted_as_seen)
    monkeypatch.setattr(orders_service, "_create_as_read", counted_as_read)
    return ways


def _shop(db: Database) -> tuple[Ctx, str, str]:
    """A VIP tier (10 % off), a VIP buyer under a two-level chain, a product with an explicit VIP
    price and one without, a plan; returns (ctx, VIP buyer, plain buyer)."""
    ctx = _fresh(db)
    vip = create_tier(ctx, name="VIP", rank=1, discount_bp=1_000)
    middle = f.chain(ctx, 2)[-1]
    vip_buyer = f.member(ctx, "VIP买家", referrer=middle, tier_id=vip["id"])
    plain_buyer = f.member(ctx, "普通买家", referrer=middle)
    f.product(
        ctx, price_fen=10_000, tier_prices=[{"tier_id": vip["id"], "member_price_fen": 8_800}]
    )
    f.product(ctx, sku="BAIT-1", price_fen=990, ladder_role="bait")
    f.two_level_plan(ctx)
    return ctx, vip_buyer, plain_buyer


def _orders_made(ctx: Ctx, buyers: tuple[str, str]) -> None:
    """Each buyer orders and pays three times, the same lines each time."""
    for n in range(3):
        for i, buyer in enumerate(buyers):
            order, replayed = create_order(
                ctx,
                buyer_id=buyer,
                lines=[{"sku": "CORE-1", "quantity": 2}, {"sku": "BAIT-1", "quantity": 1}],
                idempotency_key=f"k-{i}-{n}",
            )
            assert replayed is False
            pay_order(
                ctx,
                order_id=order["id"],
                provider_txn_id=f"wx-{i}-{n}",
                amount_fen=order["total_fen"],
            )


def _orders_snapshot(ctx: Ctx) -> list[Any]:
    """The tenant's orders with their lines and creation events, ids left out."""
    t = ctx.tenant_id
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(orders).where(orders.c.tenant_id == t).order_by(orders.c.idempotency_key)
        ).all()
        made = []
        for r in rows:
            lines = tx.execute(
                select(
                    order_lines.c.line_no,
                    order_lines.c.sku,
                    order_lines.c.name,
                    order_lines.c.quantity,
                    order_lines.c.list_price_fen,
                    order_lines.c.unit_price_fen,
                    order_lines.c.line_total_fen,
                )
                .where(order_lines.c.tenant_id == t, order_lines.c.order_id == r.id)
                .order_by(order_lines.c.line_no)
            ).all()
            created = tx.execute(
                select(events.c.payload).where(
                    events.c.tenant_id == t,
                    events.c.subject_id == r.id,
                    events.c.type == "OrderCreated",
                )
            ).scalar_one()
            made.append(
                (
                    r.idempotency_key,
                    r.status,
                    r.subtotal_fen,
                    r.discount_fen,
                    r.total_fen,
                    r.paid_fen,
                    r.buyer_tier_id is not None,
                    [tuple(line) for line in lines],
                    created["total_fen"],
                )
            )
    return made


def test_orders_as_seen_and_as_read_are_the_same(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given two shops, one where orders may be written from what was seen, one where not
    ways = _count_ways(monkeypatch)
    quick, vip, plain = _shop(db)
    _orders_made(quick, (vip, plain))
    # the first order of each buyer is read (nothing seen yet), the rest are written as seen
    assert ways == Counter({"as seen refused": 2, "as read": 2, "as seen": 4})

    ways.clear()
    monkeypatch.setattr(orders_service, "_create_as_seen", lambda ctx, request: None)
    read, read_vip, read_plain = _shop(db)
    _orders_made(read, (read_vip, read_plain))
    assert ways == Counter({"as read": 6})

    # then both made the same orders: VIP at 8,800 for CORE-1 and 10 % off BAIT-1
    made = _orders_snapshot(quick)
    assert [m[1:] for m in made] == [m[1:] for m in _orders_snapshot(read)]
    assert sorted({(m[4], m[6]) for m in made}) == [(18_491, True), (20_990, False)]


def _tier_of(ctx: Ctx, member: str) -> str:
    with ctx.db.read() as tx:
        return str(
            tx.execute(
                select(members.c.tier_id).where(
                    members.c.tenant_id == ctx.tenant_id, members.c.id == member
                )
            ).scalar_one()
        )


_payments = count(1)


def _seen_once(ctx: Ctx, buyer: str) -> None:
    """An order paid for `buyer`, so that this process has seen the buyer, the product and the
    settings."""
    order, _ = create_order(ctx, buyer_id=buyer, lines=[{"sku": "CORE-1", "quantity": 1}])
    pay_order(
        ctx,
        order_id=order["id"],
        provider_txn_id=f"wx-seen-{next(_payments)}",
        amount_fen=order["total_fen"],
    )


@pytest.mark.parametrize(
    ("change", "expected_unit"),
    [
        (lambda ctx, vip, tier: update_product(ctx, sku="CORE-1", price_fen=12_000), 8_800),
        (
            lambda ctx, vip, tier: update_product(
                ctx, sku="CORE-1", tier_prices=[{"tier_id": tier, "member_price_fen": 7_700}]
            ),
            7_700,
        ),
        (lambda ctx, vip, tier: update_product(ctx, sku="CORE-1", tier_prices=[]), 9_000),
        (lambda ctx, vip, tier: update_member(ctx, member_id=vip, set_tier=True), 10_000),
    ],
    ids=["list price", "member price", "member price removed", "buyer's tier removed"],
)
def test_an_order_after_a_change_is_priced_afresh(
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[Ctx, str, str], Any],
    expected_unit: int,
) -> None:
    # given a VIP buyer this process has seen
    ctx, vip, _ = _shop(db)
    _seen_once(ctx, vip)

    # when the product or the buyer changes before the next order
    change(ctx, vip, _tier_of(ctx, vip))
    ways = _count_ways(monkeypatch)
    order, _ = create_order(ctx, buyer_id=vip, lines=[{"sku": "CORE-1", "quantity": 1}])

    # then that order refused what was seen and is priced as it now is
    assert ways == Counter({"as seen refused": 1, "as read": 1})
    assert order["lines"][0]["unit_price_fen"] == expected_unit
    assert order["total_fen"] == expected_unit


def test_an_order_after_a_tier_discount_changed_is_priced_afresh(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a VIP buyer this process has seen, buying the product without a VIP price
    ctx, vip, _ = _shop(db)
    _seen_once(ctx, vip)
    create_order(ctx, buyer_id=vip, lines=[{"sku": "BAIT-1", "quantity": 1}])

    # when the VIP discount goes from 10 % to 20 %
    update_tier(ctx, tier_id=_tier_of(ctx, vip), discount_bp=2_000)
    ways = _count_ways(monkeypatch)
    order, _ = create_order(ctx, buyer_id=vip, lines=[{"sku": "BAIT-1", "quantity": 1}])

    # then the order is priced at the new discount
    assert ways == Counter({"as seen refused": 1, "as read": 1})
    assert order["total_fen"] == 990 - 990 * 2_000 // 10_000


def test_an_inactive_product_is_refused_after_being_seen(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, vip, _ = _shop(db)
    _seen_once(ctx, vip)
    update_product(ctx, sku="CORE-1", active=False)
    with ctx.db.read() as tx:
        before = tx.execute(select(orders.c.id).where(orders.c.tenant_id == ctx.tenant_id)).all()
    with pytest.raises(Conflict) as refused:
        create_order(ctx, buyer_id=vip, lines=[{"sku": "CORE-1", "quantity": 1}])
    assert refused.value.code == "product_inactive"
    with ctx.db.read() as tx:
        after = tx.execute(select(orders.c.id).where(orders.c.tenant_id == ctx.tenant_id)).all()
    assert after == before


def test_a_key_used_again_replays_the_order_written_as_seen(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an order written from what was seen
    ctx, vip, _ = _shop(db)
    _seen_once(ctx, vip)
    ways = _count_ways(monkeypatch)
    lines = [{"sku": "CORE-1", "quantity": 1}]
    first, replayed = create_order(ctx, buyer_id=vip, lines=lines, idempotency_key="again")
    assert (ways, replayed) == (Counter({"as seen": 1}), False)

    # when the same request comes again, and then another request with the same key
    again, replayed_again = create_order(ctx, buyer_id=vip, lines=lines, idempotency_key="again")
    with pytest.raises(Conflict) as reused:
        create_order(
            ctx, buyer_id=vip, lines=[{"sku": "BAIT-1", "quantity": 1}], idempotency_key="again"
        )

    # then the first order is the answer to the first, the second is refused, one order exists
    assert replayed_again is True
    assert again == first
    assert reused.value.code == "idempotency_key_reused"
    with ctx.db.read() as tx:
        keyed = tx.execute(
            select(orders.c.id).where(
                orders.c.tenant_id == ctx.tenant_id, orders.c.idempotency_key == "again"
            )
        ).all()
    assert [r.id for r in keyed] == [first["id"]]


def test_an_order_as_seen_pays_from_the_buyer_as_it_now_is(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a buyer seen by this process, whose next order another process then made and paid
    ctx, vip, _ = _shop(db)
    _seen_once(ctx, vip)
    monkeypatch.setattr(orders_service._buyers_seen, "put", lambda *args: None)
    monkeypatch.setattr(orders_service._recent_orders, "put", lambda *args: None)
    _seen_once(ctx, vip)
    monkeypatch.undo()

    # when this process makes and pays the buyer's next order
    ways = _count_ways(monkeypatch)
    order, _ = create_order(ctx, buyer_id=vip, lines=[{"sku": "CORE-1", "quantity": 1}])
    paid = orders_service._pay_as_created
    paid_as_created: list[bool] = []

    def spied(*args: Any, **kw: Any) -> Any:
        result = paid(*args, **kw)
        paid_as_created.append(result is not None)
        return result

    monkeypatch.setattr(orders_service, "_pay_as_created", spied)
    pay_order(ctx, order_id=order["id"], provider_txn_id="wx-third", amount_fen=order["total_fen"])

    # then the order was written as seen and paid from the buyer its write found: three orders
    assert ways == Counter({"as seen": 1})
    assert paid_as_created == [True]
    with ctx.db.read() as tx:
        facts = tx.execute(
            select(members.c.paid_order_count, members.c.paid_total_fen).where(
                members.c.tenant_id == ctx.tenant_id, members.c.id == vip
            )
        ).one()
    assert tuple(facts) == (3, 3 * 8_800)


def test_an_order_too_large_at_the_prices_seen_is_decided_by_the_prices_as_read(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a plain buyer who bought a product seen at the largest price there is
    ctx, _, plain = _shop(db)
    f.product(ctx, sku="GOLD-1", price_fen=MAX_AMOUNT_FEN, ladder_role="partner")
    order, _ = create_order(ctx, buyer_id=plain, lines=[{"sku": "GOLD-1", "quantity": 1}])
    pay_order(ctx, order_id=order["id"], provider_txn_id="wx-gold", amount_fen=MAX_AMOUNT_FEN)

    # when its price falls to a tenth and the buyer orders ten
    update_product(ctx, sku="GOLD-1", price_fen=MAX_AMOUNT_FEN // 10)
    ways = _count_ways(monkeypatch)
    ten, _ = create_order(ctx, buyer_id=plain, lines=[{"sku": "GOLD-1", "quantity": 10}])

    # then the order is made at the price as it is now, not refused at the price seen
    assert ways == Counter({"as seen refused": 1, "as read": 1})
    assert ten["total_fen"] == MAX_AMOUNT_FEN


@pytest.mark.postgres
def test_parallel_orders_of_one_buyer_as_seen_add_up(postgres_db: Database) -> None:
    # given a VIP buyer this process has seen
    ctx, vip, _ = _shop(postgres_db)
    _seen_once(ctx, vip)

    # when twelve orders of it are made and paid at once
    barrier = Barrier(12)

    def order_and_pay(n: int) -> int:
        barrier.wait()
        order, _ = create_order(ctx, buyer_id=vip, lines=[{"sku": "CORE-1", "quantity": 1}])
        paid, replayed = pay_order(
            ctx, order_id=order["id"], provider_txn_id=f"wx-par-{n}", amount_fen=8_800
        )
        assert (paid["status"], replayed) == ("paid", False)
        return len(paid["commissions"])

    with ThreadPoolExecutor(max_workers=12) as pool:
        commissions = list(pool.map(order_and_pay, range(12)))

    # then every one counted once, with its two commission lines, and the books balance
    assert commissions == [2] * 12
    with ctx.db.read() as tx:
        facts = tx.execute(
            select(
                members.c.paid_order_count, members.c.lifetime_order_count, members.c.paid_total_fen
            ).where(members.c.tenant_id == ctx.tenant_id, members.c.id == vip)
        ).one()
        assert find_balance_mismatches(tx, tenant_id=ctx.tenant_id) == []
        assert unbalanced_transactions(tx, tenant_id=ctx.tenant_id) == []
    assert tuple(facts) == (13, 13, 13 * 8_800)


def test_a_buyer_not_seen_yet_is_taken_to_have_no_tier_and_checked(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a shop this process has seen (settings, and the products at no tier), and two
    # members it has not: one without a tier, one VIP
    ctx, vip, plain = _shop(db)
    _seen_once(ctx, plain)
    newcomer = f.member(ctx, "新客", referrer=plain)
    new_vip = f.member(ctx, "新VIP", referrer=plain, tier_id=_tier_of(ctx, vip))
    with ctx.db.read() as tx:
        before = tx.execute(select(orders.c.id).where(orders.c.tenant_id == ctx.tenant_id)).all()

    # when each orders, and an unknown member id orders too
    ways = _count_ways(monkeypatch)
    first, _ = create_order(ctx, buyer_id=newcomer, lines=[{"sku": "CORE-1", "quantity": 1}])
    assert ways == Counter({"as seen": 1})
    ways.clear()
    second, _ = create_order(ctx, buyer_id=new_vip, lines=[{"sku": "CORE-1", "quantity": 1}])
    assert ways == Counter({"as seen refused": 1, "as read": 1})
    with pytest.raises(NotFound) as unknown:
        create_order(ctx, buyer_id="mem_nobody", lines=[{"sku": "CORE-1", "quantity": 1}])

    # then the newcomer pays the list price, the VIP its member price, the unknown id nothing
    assert (first["total_fen"], second["total_fen"]) == (10_000, 8_800)
    assert unknown.value.code == "member_not_found"
    with ctx.db.read() as tx:
        after = tx.execute(select(orders.c.id).where(orders.c.tenant_id == ctx.tenant_id)).all()
    assert sorted(r.id for r in after) == sorted(
        [r.id for r in before] + [first["id"], second["id"]]
    )
