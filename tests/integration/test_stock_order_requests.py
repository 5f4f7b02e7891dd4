"""Stock orders awaiting payment on SQLite and PostgreSQL: a request becomes a paid stock order
in the transaction of its payment (by the provider's notification or an operator's offline
confirmation), once; a refused request, payment or cancellation changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from shequn.catalog.service import update_product
from shequn.context import Ctx
from shequn.db import Database
from shequn.errors import Conflict, DomainError, InvalidInput
from shequn.flows.tiers import create_tier
from shequn.growth.settings.service import update_growth_settings
from shequn.growth.stock.requests import (
    cancel_stock_order_request,
    confirm_offline_payment,
    create_stock_order_request,
    get_stock_order_request,
    list_stock_order_requests,
    orderable_products,
    pay_stock_order_request,
)
from shequn.growth.stock.service import agent_stock, place_stock_order, quote_stock_order
from shequn.growth.stock.tables import stock_orders
from shequn.locks import Lock
from tests import factories as f
from tests.e2e.conftest import contents
from tests.races import race

LINES = [{"sku": "CORE-1", "quantity": 10}]  # 10 units at ¥50.00


def _agent(ctx: Ctx) -> str:
    """CORE-1 at ¥100, an agent tier buying at ¥50; 30 units a month assumed, 60 days allowed
    (so at most 60 units held)."""
    tier = create_tier(ctx, name="代理", rank=1)["id"]
    f.product(ctx, price_fen=10_000)
    update_product(ctx, sku="CORE-1", tier_prices=[{"tier_id": tier, "wholesale_price_fen": 5_000}])
    update_growth_settings(ctx, patch={"new_agent_monthly_sales": 30, "stock_cover_limit_days": 60})
    return f.member(ctx, "代理", tier_id=tier)


def _units(ctx: Ctx, agent: str) -> int:
    return sum(p["units"] for p in agent_stock(ctx, member_id=agent)["products"])


def _orders(ctx: Ctx) -> list[Any]:
    with ctx.db.read() as tx:
        return list(
            tx.execute(select(stock_orders).where(stock_orders.c.tenant_id == ctx.tenant_id)).all()
        )


def test_a_request_is_priced_then_paid_into_stock_once(ctx: Ctx) -> None:
    agent = _agent(ctx)
    asked = create_stock_order_request(ctx, member_id=agent, lines=LINES)
    assert (asked["status"], asked["amount_fen"], asked["stock_order_id"]) == (
        "awaiting_payment",
        50_000,
        None,
    )
    assert asked["expires_at"] == ctx.clock.now() + timedelta(days=3)
    assert asked["lines"] == [
        {
            "sku": "CORE-1",
            "product_id": asked["lines"][0]["product_id"],
            "name": "商品 CORE-1",
            "quantity": 10,
            "unit_cost_fen": 5_000,
        }
    ]
    assert _units(ctx, agent) == 0
    paid, replayed = pay_stock_order_request(
        ctx, request_id=asked["id"], provider_txn_id="wx-1", amount_fen=50_000
    )
    assert (paid["status"], paid["provider_txn_id"], replayed) == ("paid", "wx-1", False)
    assert paid["stock_order_id"] == _orders(ctx)[0].id
    assert _units(ctx, agent) == 10
    # the provider's notification again: the same answer, nothing more
    before = contents(ctx.db, ctx.tenant_id)
    again, replayed = pay_stock_order_request(
        ctx, request_id=asked["id"], provider_txn_id="wx-1", amount_fen=50_000
    )
    assert replayed is True
    assert again == paid
    assert contents(ctx.db, ctx.tenant_id) == before
    # another payment of a paid request is refused
    with pytest.raises(Conflict) as refused:
        pay_stock_order_request(
            ctx, request_id=asked["id"], provider_txn_id="wx-2", amount_fen=50_000
        )
    assert refused.value.code == "stock_request_already_paid"
    assert contents(ctx.db, ctx.tenant_id) == before


def test_a_payment_of_another_amount_is_refused_and_changes_nothing(ctx: Ctx) -> None:
    agent = _agent(ctx)
    asked = create_stock_order_request(ctx, member_id=agent, lines=LINES)
    before = contents(ctx.db, ctx.tenant_id)
    for amount in (49_999, 50_001):
        with pytest.raises(InvalidInput) as refused:
            pay_stock_order_request(
                ctx, request_id=asked["id"], provider_txn_id="wx-1", amount_fen=amount
            )
        assert (refused.value.code, refused.value.params) == (
            "stock_amount_mismatch",
            {"expected_fen": 50_000, "got_fen": amount},
        )
    assert contents(ctx.db, ctx.tenant_id) == before
    assert get_stock_order_request(ctx, request_id=asked["id"])["status"] == "awaiting_payment"


def test_a_cancelled_request_cannot_be_paid(ctx: Ctx) -> None:
    agent = _agent(ctx)
    asked = create_stock_order_request(ctx, member_id=agent, lines=LINES)
    done = cancel_stock_order_request(ctx, request_id=asked["id"], member_id=agent)
    assert (done["status"], done["cancelled_at"]) == ("cancelled", ctx.clock.now())
    before = contents(ctx.db, ctx.tenant_id)
    with pytest.raises(Conflict) as refused:
        pay_stock_order_request(
            ctx, request_id=asked["id"], provider_txn_id="wx-1", amount_fen=50_000
        )
    assert refused.value.code == "stock_request_cancelled"
    with pytest.raises(Conflict) as again:
        cancel_stock_order_request(ctx, request_id=asked["id"])
    assert again.value.code == "stock_request_cancelled"
    assert contents(ctx.db, ctx.tenant_id) == before
    assert _units(ctx, agent) == 0


def test_a_request_over_the_cover_limit_creates_nothing(ctx: Ctx) -> None:
    agent = _agent(ctx)
    before = contents(ctx.db, ctx.tenant_id)
    with pytest.raises(Conflict) as refused:
        create_stock_order_request(ctx, member_id=agent, lines=[{"sku": "CORE-1", "quantity": 61}])
    assert (refused.value.code, refused.value.params) == (
        "stock_cover_exceeded",
        {"sku": "CORE-1", "cover_days": "61.0", "limit_days": 60, "units": 61, "monthly_sales": 30},
    )
    with pytest.raises(Conflict):
        quote_stock_order(ctx, member_id=agent, lines=[{"sku": "CORE-1", "quantity": 61}])
    assert contents(ctx.db, ctx.tenant_id) == before


def test_a_first_order_under_the_minimum_creates_nothing(ctx: Ctx) -> None:
    agent = _agent(ctx)
    update_growth_settings(ctx, patch={"min_first_stock_order_fen": 100_000})
    before = contents(ctx.db, ctx.tenant_id)
    with pytest.raises(Conflict) as refused:
        create_stock_order_request(ctx, member_id=agent, lines=LINES)
    assert (refused.value.code, refused.value.params) == (
        "stock_first_order_minimum",
        {"minimum_fen": 100_000, "amount_fen": 50_000},
    )
    assert contents(ctx.db, ctx.tenant_id) == before


def test_the_quote_shows_the_price_and_the_cover_it_leaves(ctx: Ctx) -> None:
    agent = _agent(ctx)
    quote = quote_stock_order(ctx, member_id=agent, lines=LINES)
    line = quote["lines"][0]
    assert (quote["amount_fen"], quote["first_order"], quote["cover_limit_days"]) == (
        50_000,
        True,
        60,
    )
    assert (line["unit_cost_fen"], line["amount_fen"], line["units_after"]) == (5_000, 50_000, 10)
    assert line["cover_days_after"] == "10.0"
    assert orderable_products(ctx, member_id=agent)["products"] == [
        {"sku": "CORE-1", "name": "商品 CORE-1", "unit_cost_fen": 5_000}
    ]


def test_a_request_keeps_its_price_and_its_cover_is_checked_again_when_paid(ctx: Ctx) -> None:
    agent = _agent(ctx)
    asked = create_stock_order_request(
        ctx, member_id=agent, lines=[{"sku": "CORE-1", "quantity": 40}]
    )
    cheap = create_stock_order_request(ctx, member_id=agent, lines=LINES)
    tier = asked["tier_id"]
    update_product(ctx, sku="CORE-1", tier_prices=[{"tier_id": tier, "wholesale_price_fen": 6_000}])
    paid, _ = pay_stock_order_request(
        ctx, request_id=cheap["id"], provider_txn_id="wx-cheap", amount_fen=50_000
    )
    assert _orders(ctx)[0].amount_fen == 50_000
    assert paid["status"] == "paid"
    # 10 held and 40 more: 50 units, within 60 days; another 40 then would not be
    place_stock_order(
        ctx,
        member_id=agent,
        lines=[{"sku": "CORE-1", "quantity": 20}],
        provider_txn_id="wx-d",
        amount_fen=120_000,
    )
    before = contents(ctx.db, ctx.tenant_id)
    with pytest.raises(Conflict) as refused:
        pay_stock_order_request(
            ctx, request_id=asked["id"], provider_txn_id="wx-late", amount_fen=200_000
        )
    assert refused.value.code == "stock_cover_exceeded"
    assert contents(ctx.db, ctx.tenant_id) == before


def test_an_expired_request_cannot_be_paid_or_cancelled(ctx: Ctx) -> None:
    agent = _agent(ctx)
    asked = create_stock_order_request(ctx, member_id=agent, lines=LINES)
    ctx.clock.advance(days=3)  # type: ignore[attr-defined]
    assert get_stock_order_request(ctx, request_id=asked["id"])["status"] == "expired"
    assert [r["id"] for r in list_stock_order_requests(ctx, status="expired")["items"]] == [
        asked["id"]
    ]
    assert list_stock_order_requests(ctx, status="awaiting_payment")["items"] == []
    before = contents(ctx.db, ctx.tenant_id)
    for attempt in (
        lambda: pay_stock_order_request(
            ctx, request_id=asked["id"], provider_txn_id="wx-1", amount_fen=50_000
        ),
        lambda: cancel_stock_order_request(ctx, request_id=asked["id"]),
    ):
        with pytest.raises(Conflict) as refused:
            attempt()
        assert refused.value.code == "stock_request_expired"
    assert contents(ctx.db, ctx.tenant_id) == before


def test_an_operator_confirms_an_offline_payment(ctx: Ctx) -> None:
    agent = _agent(ctx)
    asked = create_stock_order_request(ctx, member_id=agent, lines=LINES)
    paid, replayed = confirm_offline_payment(
        ctx, request_id=asked["id"], reference=" 2026 0101-77 ", amount_fen=50_000
    )
    assert (paid["status"], paid["provider_txn_id"], paid["paid_by"], replayed) == (
        "paid",
        "offline:2026 0101-77",
        "test",
        False,
    )
    assert _units(ctx, agent) == 10


def test_a_transaction_id_of_another_stock_order_is_refused(ctx: Ctx) -> None:
    agent = _agent(ctx)
    first = create_stock_order_request(ctx, member_id=agent, lines=LINES)
    second = create_stock_order_request(ctx, member_id=agent, lines=LINES)
    pay_stock_order_request(ctx, request_id=first["id"], provider_txn_id="wx-1", amount_fen=50_000)
    before = contents(ctx.db, ctx.tenant_id)
    with pytest.raises(Conflict) as refused:
        pay_stock_order_request(
            ctx, request_id=second["id"], provider_txn_id="wx-1", amount_fen=50_000
        )
    assert refused.value.code == "payment_txn_reused"
    assert contents(ctx.db, ctx.tenant_id) == before


def test_an_agent_cancels_only_its_own_request(ctx: Ctx) -> None:
    agent = _agent(ctx)
    other = f.member(ctx, "别人")
    asked = create_stock_order_request(ctx, member_id=agent, lines=LINES)
    before = contents(ctx.db, ctx.tenant_id)
    with pytest.raises(DomainError) as refused:
        cancel_stock_order_request(ctx, request_id=asked["id"], member_id=other)
    assert (refused.value.status, refused.value.code) == (404, "stock_request_not_found")
    assert contents(ctx.db, ctx.tenant_id) == before


def test_requests_are_listed_a_page_at_a_time(ctx: Ctx) -> None:
    agent = _agent(ctx)
    ids = [
        create_stock_order_request(ctx, member_id=agent, lines=[{"sku": "CORE-1", "quantity": 1}])[
            "id"
        ]
        for _ in range(3)
    ]
    first = list_stock_order_requests(ctx, member_id=agent, limit=2)
    assert [r["id"] for r in first["items"]] == ids[:2]
    rest = list_stock_order_requests(ctx, member_id=agent, after=first["next_after"], limit=2)
    assert ([r["id"] for r in rest["items"]], rest["next_after"]) == (ids[2:], None)


def test_the_request_lock_comes_before_the_agents() -> None:
    assert Lock.ORDERS < Lock.STOCK_ORDER_REQUESTS < Lock.MEMBERS


@pytest.mark.postgres
def test_concurrent_payments_of_one_request_place_one_stock_order(pg_ctx: Ctx) -> None:
    agent = _agent(pg_ctx)
    asked = create_stock_order_request(pg_ctx, member_id=agent, lines=LINES)

    def pay(i: int) -> Any:
        return pay_stock_order_request(
            pg_ctx, request_id=asked["id"], provider_txn_id=f"wx-{i % 2}", amount_fen=50_000
        )

    results = race(4, pay)
    won = [r for r in results if isinstance(r, tuple)]
    refused = [r for r in results if isinstance(r, DomainError)]
    txn = won[0][0]["provider_txn_id"]
    assert all(r[0]["provider_txn_id"] == txn for r in won)
    assert sorted(r[1] for r in won) == [False] + [True] * (len(won) - 1)
    assert {r.code for r in refused} <= {"stock_request_already_paid"}
    assert len(won) + len(refused) == 4
    assert len(_orders(pg_ctx)) == 1
    assert _units(pg_ctx, agent) == 10


@pytest.mark.postgres
def test_a_payment_and_a_cancellation_at_once_leave_one_outcome(pg_ctx: Ctx) -> None:
    agent = _agent(pg_ctx)
    asked = create_stock_order_request(pg_ctx, member_id=agent, lines=LINES)

    def act(i: int) -> Any:
        if i == 0:
            return pay_stock_order_request(
                pg_ctx, request_id=asked["id"], provider_txn_id="wx-1", amount_fen=50_000
            )
        return cancel_stock_order_request(pg_ctx, request_id=asked["id"])

    results = race(2, act)
    final = get_stock_order_request(pg_ctx, request_id=asked["id"])["status"]
    refused = [r for r in results if isinstance(r, DomainError)]
    assert len(refused) == 1
    assert final in ("paid", "cancelled")
    assert _units(pg_ctx, agent) == (10 if final == "paid" else 0)
    assert len(_orders(pg_ctx)) == (1 if final == "paid" else 0)


def test_the_migration_builds_the_table(db: Database) -> None:
    from sqlalchemy import inspect

    columns = {c["name"] for c in inspect(db.engine).get_columns("stock_order_requests")}
    assert {"status", "amount_fen", "expires_at", "stock_order_id", "provider_txn_id"} <= columns
