"""The order path's two ways of writing, and the database rules they rely on.

An order is written from the copies this process keeps (`shequn.snapshot`) or from one read,
and paid in one optimistic statement or the locking way. These tests prove that every way
writes the same rows, that a copy gone stale is refused by the write (which then reads afresh
and comes to what a fresh process would), that the database moves every version and refuses
what must never change, and that replays and parallel callbacks count once.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from threading import Barrier
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import Table, func, select, text
from sqlalchemy.exc import DBAPIError

from shequn.catalog.service import update_product
from shequn.catalog.tables import product_tier_prices, products
from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.db import Database
from shequn.distribution.tables import (
    commission_lines,
    commission_plans,
    commission_rules,
    withdrawal_allocations,
)
from shequn.errors import Conflict, DomainError, InvalidInput, NotFound
from shequn.events.tables import events
from shequn.flows.settings import update_settings
from shequn.flows.tiers import create_tier, update_tier
from shequn.ledger.rules import Posting, Purpose, brand_account, member_account
from shequn.ledger.service import negative_pending_wallets, post_transaction
from shequn.ledger.tables import accounts, journal_transactions, postings
from shequn.members.service import update_member
from shequn.members.tables import member_tags, members
from shequn.money import MAX_AMOUNT_FEN
from shequn.orders import creation, payment
from shequn.orders.creation import create_order
from shequn.orders.payment import pay_order
from shequn.orders.refunds import refund_order
from shequn.orders.tables import order_lines, orders, payments, refunds
from shequn.orders.transitions import cancel_order
from shequn.referrals.tables import referral_bindings, referral_paths, referral_touches
from shequn.snapshot import Snapshot
from shequn.tenancy.tables import tenant_settings
from shequn.tiers.tables import tiers
from shequn.wallet.tables import withdrawals
from tests import factories as f
from tests.integration.test_ledger_properties import assert_sound, fresh, tenant_rows

# Every table a use case of the order path writes, or that it prices and pays from. (Not the
# tenant's own row, nor its API keys, whose hashes are random.)
ROW_TABLES: tuple[Table, ...] = (
    tenant_settings,
    tiers,
    products,
    product_tier_prices,
    members,
    member_tags,
    referral_paths,
    referral_bindings,
    referral_touches,
    commission_plans,
    commission_rules,
    orders,
    order_lines,
    payments,
    refunds,
    commission_lines,
    withdrawal_allocations,
    withdrawals,
    accounts,
    journal_transactions,
    postings,
    events,
)
TABLES = {t.name: t for t in ROW_TABLES}

LINES = [{"sku": "CORE-1", "quantity": 1}, {"sku": "BAIT-1", "quantity": 1}]
# The VIP buyer pays CORE-1 at its member price, BAIT-1 at 10 % off (rounded for the buyer).
VIP_UNITS = (8_800, 891)
VIP_TOTAL = 9_691


# --- a shop, and two processes serving it ------------------------------------------------------


@dataclass(frozen=True)
class Shop:
    ctx: Ctx  # this process: one snapshot for all its calls
    root: str
    middle: str
    vip: str  # a VIP buyer referred by `middle`, who was referred by `root`
    plain: str  # a buyer without a tier, referred by `middle`
    vip_tier: str

    @property
    def clock(self) -> ManualClock:
        assert isinstance(self.ctx.clock, ManualClock)
        return self.ctx.clock

    def other(self) -> Ctx:
        """Another process (or this one after a restart): the same tenant and clock, a snapshot
        of its own."""
        return replace(self.ctx, snapshot=Snapshot())


def open_shop(db: Database) -> Shop:
    """A VIP tier (10 % off, no upgrade criteria), root ← middle ← {VIP buyer, plain buyer},
    CORE-1 at 10 000 (8 800 for VIP), BAIT-1 at 990, a plan of 10 % and 5 %."""
    ctx = fresh(db)
    vip_tier = str(create_tier(ctx, name="VIP", rank=1, discount_bp=1_000)["id"])
    root, middle = f.chain(ctx, 2)
    vip = f.member(ctx, "VIP买家", referrer=middle, tier_id=vip_tier)
    plain = f.member(ctx, "普通买家", referrer=middle)
    f.product(ctx, price_fen=10_000, tier_prices=[{"tier_id": vip_tier, "member_price_fen": 8_800}])
    f.product(ctx, sku="BAIT-1", price_fen=990, ladder_role="bait")
    f.two_level_plan(ctx)
    return Shop(ctx, root, middle, vip, plain, vip_tier)


def buy(ctx: Ctx, buyer: str, txn: str, lines: Sequence[Mapping[str, Any]] = LINES) -> Any:
    """Create an order and pay it, both in `ctx`; the paid view."""
    order, replayed = create_order(ctx, buyer_id=buyer, lines=lines)
    assert replayed is False
    paid, replayed = pay_order(
        ctx, order_id=order["id"], provider_txn_id=txn, amount_fen=order["total_fen"]
    )
    assert (paid["status"], replayed) == ("paid", False)
    return paid


def seen(shop: Shop, ctx: Ctx | None = None) -> None:
    """An order of the VIP buyer created and paid by this process: it now keeps copies of the
    buyer, of the products at the VIP tier, of the settings and of the tier list."""
    buy(ctx or shop.ctx, shop.vip, "wx-seen")


# --- which way each call took ---------------------------------------------------------------


def watch(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count the steps the order path takes: copies found or not, reads, writes made or
    refused, the locking way."""
    ways: Counter[str] = Counter()

    def spy(module: ModuleType, name: str, label: str, outcome: Callable[[Any], str]) -> None:
        real = getattr(module, name)

        def spied(*args: Any, **kwargs: Any) -> Any:
            try:
                result = real(*args, **kwargs)
            except Exception:
                ways[f"{label}: {name} raised"] += 1
                raise
            ways[f"{label}: {outcome(result)}"] += 1
            return result

        monkeypatch.setattr(module, name, spied)

    spy(creation, "_inputs_from_copies", "create", lambda r: "copies" if r else "no copies")
    spy(
        creation,
        "_read_inputs",
        "create",
        lambda r: "replay read" if isinstance(r, dict) else "read",
    )
    spy(creation, "_write", "create", lambda r: "refused" if r is None else "written")
    spy(payment, "_inputs_from_copies", "pay", lambda r: "copies" if r else "no copies")
    spy(payment, "_read_inputs", "pay", lambda r: "read")
    spy(
        payment,
        "_optimistic_write",
        "pay",
        lambda r: "written" if isinstance(r, dict) else r.value,
    )
    spy(payment, "_pay_with_locks", "pay", lambda r: "locks")
    return ways


def only(ways: Counter[str], prefix: str) -> Counter[str]:
    return Counter({k: v for k, v in ways.items() if k.startswith(prefix)})


def refuse_optimistic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every payment take the locking way."""
    monkeypatch.setattr(payment, "_optimistic_write", lambda *args: payment._Refused.NEEDS_LOCKS)


# --- rows, compared ---------------------------------------------------------------------------

_ID = re.compile(r"\b[a-z]+_[0-9a-z]{26}\b")


def _walk(value: Any, on_text: Callable[[str], Any]) -> Any:
    if isinstance(value, str):
        return on_text(value)
    if isinstance(value, dict):
        return {_walk(k, on_text): _walk(v, on_text) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(v, on_text) for v in value]
    return value


def labelled(rows: Any) -> Any:
    """`rows` with every generated id replaced by its kind and rank (`<mem2>`: the third member
    id made), so that two tenants that went through the same steps compare equal. Ids are
    time-ordered, so the rank is the order of creation."""
    found: set[str] = set()

    def collect(value: str) -> str:
        found.update(_ID.findall(value))
        return value

    _walk(rows, collect)
    ranks: Counter[str] = Counter()
    names: dict[str, str] = {}
    for generated in sorted(found):
        kind = generated.split("_", 1)[0]
        names[generated] = f"<{kind}{ranks[kind]}>"
        ranks[kind] += 1
    return _walk(rows, lambda value: _ID.sub(lambda m: names[m.group()], value))


def comparable(ctx: Ctx) -> dict[str, list[Any]]:
    """Every row of the tenant in ROW_TABLES, ids labelled (and the orders' request hashes,
    made from ids, left out), each table's rows in a fixed order."""
    named = labelled(tenant_rows(ctx, ROW_TABLES))
    for row in named["orders"]:
        # A hash of the request, the buyer's id in it: equal requests, unequal ids.
        row["request_hash"] = row["request_hash"] is not None
    return {
        table: sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))
        for table, rows in named.items()
    }


def changes(
    before: Mapping[str, list[dict[str, Any]]], after: Mapping[str, list[dict[str, Any]]]
) -> dict[str, tuple[int, int, int]]:
    """Per table that differs: (rows changed, rows added, rows removed), rows matched by key."""

    def keyed(table: str, rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
        key = [c.name for c in TABLES[table].primary_key.columns]
        return {tuple(r[c] for c in key): r for r in rows}

    found = {}
    for table in before:
        old, new = keyed(table, before[table]), keyed(table, after[table])
        changed = sum(1 for k in old.keys() & new.keys() if old[k] != new[k])
        counts = (changed, len(new.keys() - old.keys()), len(old.keys() - new.keys()))
        if counts != (0, 0, 0):
            found[table] = counts
    return found


def member_row(ctx: Ctx, member_id: str) -> Any:
    with ctx.db.read() as tx:
        return tx.execute(
            select(members).where(members.c.tenant_id == ctx.tenant_id, members.c.id == member_id)
        ).one()


def facts(ctx: Ctx, member_id: str) -> tuple[int, int, int, int, int]:
    """(paid orders, lifetime orders, paid total, largest order, version) of a member."""
    row = member_row(ctx, member_id)
    return (
        row.paid_order_count,
        row.lifetime_order_count,
        row.paid_total_fen,
        row.max_order_fen,
        row.version,
    )


def without_ids(order: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **{k: v for k, v in order.items() if k not in ("id", "lines")},
        "lines": [{k: v for k, v in line.items() if k != "id"} for line in order["lines"]],
    }


def commissions_sorted(view: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **view,
        "commissions": sorted(
            view["commissions"], key=lambda c: (c["level"], c["beneficiary_id"], c["amount_fen"])
        ),
    }


# --- the two ways of paying -----------------------------------------------------------------


def _three_orders(shop: Shop) -> list[Any]:
    """Three orders created and paid one after the other in the shop's process."""
    paid = []
    for n, (buyer, lines) in enumerate(
        [
            (shop.vip, [{"sku": "CORE-1", "quantity": 2}, {"sku": "BAIT-1", "quantity": 1}]),
            (shop.plain, [{"sku": "CORE-1", "quantity": 1}]),
            (shop.vip, [{"sku": "BAIT-1", "quantity": 3}]),
        ]
    ):
        order, _ = create_order(shop.ctx, buyer_id=buyer, lines=lines)
        shop.clock.advance(minutes=5)
        paid.append(
            pay_order(
                shop.ctx,
                order_id=order["id"],
                provider_txn_id=f"wx-{n}",
                amount_fen=order["total_fen"],
            )
        )
    return paid


def test_the_optimistic_way_and_the_locking_way_write_the_same_rows(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given two identical shops
    optimistic, locking = open_shop(db), open_shop(db)
    assert comparable(optimistic.ctx) == comparable(locking.ctx)
    ways = watch(monkeypatch)

    # when one pays three orders the optimistic way (the first from a read, as the process has
    # no copy of the settings yet; the others from the copies its creation and the first
    # payment left)
    paid_optimistic = _three_orders(optimistic)
    assert only(ways, "pay") == Counter(
        {"pay: no copies": 1, "pay: read": 1, "pay: copies": 2, "pay: written": 3}
    )
    # and the other pays the same orders of the same buyers the locking way
    ways.clear()
    refuse_optimistic(monkeypatch)
    paid_locking = _three_orders(locking)
    assert only(ways, "pay") == Counter(
        {"pay: no copies": 1, "pay: read": 1, "pay: copies": 2, "pay: locks": 3}
    )

    # then both answered the same and wrote the same rows, ids apart: orders, payments,
    # commission lines, journal and postings, balances, the buyers' facts and versions, events
    assert labelled(paid_optimistic) == labelled(paid_locking)
    assert [(p[0]["total_fen"], p[1]) for p in paid_optimistic] == [
        (2 * 8_800 + 891, False),
        (10_000, False),
        (3 * 891, False),
    ]
    assert [
        sorted((c["level"], c["amount_fen"]) for c in p[0]["commissions"]) for p in paid_optimistic
    ] == [[(1, 89), (1, 1_760), (2, 44), (2, 880)], [(1, 1_000), (2, 500)], [(1, 267), (2, 133)]]
    rows = comparable(optimistic.ctx)
    assert rows == comparable(locking.ctx)
    assert [len(rows[t]) for t in ("payments", "commission_lines", "journal_transactions")] == [
        3,
        8,
        6,
    ]
    vip = next(m for m in rows["members"] if m["name"] == "VIP买家")
    assert (vip["paid_order_count"], vip["paid_total_fen"], vip["max_order_fen"]) == (
        2,
        2 * 8_800 + 891 + 3 * 891,
        2 * 8_800 + 891,
    )
    assert_sound(optimistic.ctx)


# --- copies gone stale: creation ------------------------------------------------------------

Change = Callable[[Shop, Ctx], Any]


def _raw_rename(shop: Shop, other: Ctx) -> None:
    with other.db.transaction() as tx:
        tx.execute(
            text("UPDATE products SET name = '新名字' WHERE tenant_id = :t AND sku = 'BAIT-1'"),
            {"t": other.tenant_id},
        )


def _new_tier_for_buyer(shop: Shop, other: Ctx) -> None:
    gold = create_tier(other, name="GOLD", rank=2, discount_bp=2_000)
    update_member(other, member_id=shop.vip, tier_id=gold["id"], set_tier=True)


CREATION_CHANGES: dict[str, tuple[Change, tuple[int, int], tuple[int, int]]] = {
    # name: (the change, the units it leads to, the list prices it leads to)
    "nothing": (lambda shop, other: None, VIP_UNITS, (10_000, 990)),
    "list price": (
        lambda shop, other: update_product(other, sku="CORE-1", price_fen=12_000),
        VIP_UNITS,
        (12_000, 990),
    ),
    "member price": (
        lambda shop, other: update_product(
            other,
            sku="CORE-1",
            tier_prices=[{"tier_id": shop.vip_tier, "member_price_fen": 7_700}],
        ),
        (7_700, 891),
        (10_000, 990),
    ),
    "member price removed": (
        lambda shop, other: update_product(other, sku="CORE-1", tier_prices=[]),
        (9_000, 891),
        (10_000, 990),
    ),
    "name changed by raw SQL": (_raw_rename, VIP_UNITS, (10_000, 990)),
    "tier discount": (
        lambda shop, other: update_tier(other, tier_id=shop.vip_tier, discount_bp=2_000),
        (8_800, 792),
        (10_000, 990),
    ),
    "buyer's tier removed": (
        lambda shop, other: update_member(other, member_id=shop.vip, set_tier=True),
        (10_000, 990),
        (10_000, 990),
    ),
    "buyer moved to another tier": (_new_tier_for_buyer, (8_000, 792), (10_000, 990)),
    "settings": (
        lambda shop, other: update_settings(other, patch={"after_sales_days": 3}),
        VIP_UNITS,
        (10_000, 990),
    ),
}


@pytest.mark.parametrize("change_name", list(CREATION_CHANGES))
def test_an_order_from_stale_copies_is_refused_and_priced_as_a_fresh_process_would(
    db: Database, monkeypatch: pytest.MonkeyPatch, change_name: str
) -> None:
    change, units, list_prices = CREATION_CHANGES[change_name]
    # given a process that has seen the VIP buyer, the products, the settings and the tiers
    shop = open_shop(db)
    seen(shop)
    # when another process changes what the copies were taken from
    change(shop, shop.other())
    before = tenant_rows(shop.ctx, ROW_TABLES)
    ways = watch(monkeypatch)
    order, replayed = create_order(shop.ctx, buyer_id=shop.vip, lines=LINES)

    # then a stale copy was refused by the write (which wrote nothing) and read afresh
    if change_name == "nothing":
        assert ways == Counter({"create: copies": 1, "create: written": 1})
    else:
        assert ways == Counter(
            {"create: copies": 1, "create: refused": 1, "create: read": 1, "create: written": 1}
        )
    assert changes(before, tenant_rows(shop.ctx, ROW_TABLES)) == {
        "orders": (0, 1, 0),
        "order_lines": (0, 2, 0),
        "events": (0, 1, 0),
    }
    # and the order is priced as things now are, as a fresh process prices it
    assert replayed is False
    assert tuple(line["unit_price_fen"] for line in order["lines"]) == units
    assert tuple(line["list_price_fen"] for line in order["lines"]) == list_prices
    assert (order["subtotal_fen"], order["total_fen"]) == (sum(list_prices), sum(units))
    if change_name == "name changed by raw SQL":
        assert order["lines"][1]["name"] == "新名字"
    ways.clear()
    afresh, _ = create_order(shop.other(), buyer_id=shop.vip, lines=LINES)
    assert ways == Counter({"create: no copies": 1, "create: read": 1, "create: written": 1})
    assert without_ids(afresh) == without_ids(order)
    with shop.ctx.db.read() as tx:
        written = {
            r.id: {k: v for k, v in r._mapping.items() if k != "id"}
            for r in tx.execute(
                select(orders).where(
                    orders.c.tenant_id == shop.ctx.tenant_id,
                    orders.c.id.in_([order["id"], afresh["id"]]),
                )
            )
        }
    assert written[order["id"]] == written[afresh["id"]]


def test_an_order_of_a_product_deactivated_since_it_was_copied_is_refused(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a process that has seen the products, one of which is then deactivated
    shop = open_shop(db)
    seen(shop)
    update_product(shop.other(), sku="BAIT-1", active=False)
    before = tenant_rows(shop.ctx, ROW_TABLES)
    ways = watch(monkeypatch)

    # when the process orders it from its copies
    with pytest.raises(Conflict) as refused:
        create_order(shop.ctx, buyer_id=shop.vip, lines=LINES)

    # then the copy was refused, the fresh read found the product inactive, nothing was written
    assert (refused.value.code, refused.value.params) == ("product_inactive", {"sku": "BAIT-1"})
    assert ways == Counter(
        {"create: copies": 1, "create: refused": 1, "create: _read_inputs raised": 1}
    )
    assert tenant_rows(shop.ctx, ROW_TABLES) == before


def test_a_buyer_the_process_has_not_seen_is_taken_to_have_no_tier_and_checked(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a process with copies of the products at no tier (a plain buyer bought them), and
    # members it has not seen: one without a tier, one VIP, and an id that is nobody's
    shop = open_shop(db)
    buy(shop.ctx, shop.plain, "wx-plain")
    newcomer = f.member(shop.other(), "新客", referrer=shop.plain)
    new_vip = f.member(shop.other(), "新VIP", referrer=shop.plain, tier_id=shop.vip_tier)
    before = tenant_rows(shop.ctx, ROW_TABLES)
    ways = watch(monkeypatch)

    # when each of them orders from this process
    first, _ = create_order(shop.ctx, buyer_id=newcomer, lines=LINES)
    assert ways == Counter({"create: copies": 1, "create: written": 1})
    ways.clear()
    second, _ = create_order(shop.ctx, buyer_id=new_vip, lines=LINES)
    assert ways == Counter(
        {"create: copies": 1, "create: refused": 1, "create: read": 1, "create: written": 1}
    )
    ways.clear()
    with pytest.raises(NotFound) as unknown:
        create_order(shop.ctx, buyer_id="mem_nobody", lines=LINES)
    assert ways == Counter(
        {"create: copies": 1, "create: refused": 1, "create: _read_inputs raised": 1}
    )

    # then the newcomer pays list prices, the VIP its tier's, and the unknown id wrote nothing
    assert (first["total_fen"], second["total_fen"]) == (10_990, VIP_TOTAL)
    assert (unknown.value.code, unknown.value.params) == ("member_not_found", {"id": "mem_nobody"})
    assert changes(before, tenant_rows(shop.ctx, ROW_TABLES)) == {
        "orders": (0, 2, 0),
        "order_lines": (0, 4, 0),
        "events": (0, 2, 0),
    }


def test_an_order_too_large_only_at_copied_prices_is_decided_at_the_prices_now(
    db: Database,
) -> None:
    # given a process that bought a product copied at the largest price there is
    shop = open_shop(db)
    f.product(shop.ctx, sku="GOLD-1", price_fen=MAX_AMOUNT_FEN, ladder_role="partner")
    buy(shop.ctx, shop.plain, "wx-gold", [{"sku": "GOLD-1", "quantity": 1}])
    # when its price falls to a tenth and the process orders ten of it
    update_product(shop.other(), sku="GOLD-1", price_fen=MAX_AMOUNT_FEN // 10)
    ten, _ = create_order(shop.ctx, buyer_id=shop.plain, lines=[{"sku": "GOLD-1", "quantity": 10}])
    # then it is priced as a fresh process would: at the price now, within the limit
    assert ten["total_fen"] == 10 * (MAX_AMOUNT_FEN // 10)


def test_a_tier_discount_changed_between_the_read_and_the_write_is_caught(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a process that has no copies, and a tier discount changed by another process just
    # after this one read the inputs of an order
    shop = open_shop(db)
    real_read = creation._read_inputs
    changed: list[bool] = []

    def read_then_change(ctx: Ctx, request: Any) -> Any:
        found = real_read(ctx, request)
        if not changed:
            changed.append(True)
            update_tier(shop.other(), tier_id=shop.vip_tier, discount_bp=2_000)
        return found

    monkeypatch.setattr(creation, "_read_inputs", read_then_change)
    # when it writes the order
    order, _ = create_order(shop.ctx, buyer_id=shop.vip, lines=LINES)
    # then the write noticed and the order is at the discount in force when it was written
    assert changed == [True]
    assert [line["unit_price_fen"] for line in order["lines"]] == [8_800, 792]


# --- copies gone stale: payment -------------------------------------------------------------


def _other_pays_another_order(shop: Shop, other: Ctx) -> None:
    buy(other, shop.vip, "wx-other")


def _other_refunds_the_earlier_order(shop: Shop, other: Ctx) -> None:
    with other.db.read() as tx:
        earlier = tx.execute(
            select(payments.c.order_id).where(
                payments.c.tenant_id == other.tenant_id, payments.c.provider_txn_id == "wx-seen"
            )
        ).scalar_one()
    refund_order(other, order_id=earlier, amount_fen=VIP_TOTAL, reason="全额退款")


# name: (the change, and what the payment then leaves of the buyer's facts: paid orders,
# lifetime orders and paid total added, updates of the buyer's row made)
PAYMENT_CHANGES: dict[str, tuple[Change, tuple[int, int, int, int]]] = {
    "nothing": (lambda shop, other: None, (1, 1, VIP_TOTAL, 1)),
    "another process paid another order of the buyer": (
        _other_pays_another_order,
        (2, 2, 2 * VIP_TOTAL, 2),
    ),
    "another process refunded the buyer's earlier order": (
        _other_refunds_the_earlier_order,
        (0, 1, 0, 2),
    ),
    "a new plan was activated": (
        lambda shop, other: f.two_level_plan(other, l1=2_000, l2=1_000),
        (1, 1, VIP_TOTAL, 1),
    ),
    "the settings changed": (
        lambda shop, other: update_settings(other, patch={"after_sales_days": 3}),
        (1, 1, VIP_TOTAL, 1),
    ),
    "the buyer's tier was removed": (
        lambda shop, other: update_member(other, member_id=shop.vip, set_tier=True),
        (1, 1, VIP_TOTAL, 2),
    ),
    "the tier's discount changed": (
        lambda shop, other: update_tier(other, tier_id=shop.vip_tier, discount_bp=2_000),
        (1, 1, VIP_TOTAL, 1),
    ),
}


def _pay_after(
    db: Database, change: Change, this: Callable[[Shop], Ctx], ways: Counter[str]
) -> tuple[Shop, Any, tuple[int, ...]]:
    """Create an order of the VIP buyer in `this(shop)`, let another process make `change`,
    then pay it in `this(shop)`. Returns the shop, the payment's answer and the VIP buyer's
    facts before the order."""
    shop = open_shop(db)
    seen(shop, this(shop))
    start = facts(shop.ctx, shop.vip)
    order, _ = create_order(this(shop), buyer_id=shop.vip, lines=LINES)
    shop.clock.advance(minutes=1)
    change(shop, shop.other())
    shop.clock.advance(minutes=1)
    ways.clear()
    paid = pay_order(
        this(shop), order_id=order["id"], provider_txn_id="wx-late", amount_fen=order["total_fen"]
    )
    return shop, paid, start


@pytest.mark.parametrize("change_name", list(PAYMENT_CHANGES))
def test_a_payment_from_stale_copies_is_refused_and_pays_as_a_fresh_process_would(
    db: Database, monkeypatch: pytest.MonkeyPatch, change_name: str
) -> None:
    change, (paid_orders, lifetime_orders, paid_total, updates) = PAYMENT_CHANGES[change_name]
    ways = watch(monkeypatch)
    # given a process that created an order from its copies, and then a change made by another
    # process between the order's creation and its payment
    # when the process pays the order from its copies
    stale, paid, start = _pay_after(db, change, lambda shop: shop.ctx, ways)

    # then the write refused what had moved, wrote nothing, and paid from a fresh read
    if change_name == "nothing":
        assert only(ways, "pay") == Counter({"pay: copies": 1, "pay: written": 1})
    else:
        assert only(ways, "pay") == Counter(
            {"pay: copies": 1, "pay: moved": 1, "pay: read": 1, "pay: written": 1}
        )
    # and it left exactly what the same steps leave when every call is made by a fresh process
    afresh, paid_afresh, _ = _pay_after(db, change, lambda shop: shop.other(), ways)
    assert labelled(paid) == labelled(paid_afresh)
    assert comparable(stale.ctx) == comparable(afresh.ctx)

    # the buyer's facts count each payment once, and its version moved once per update of it
    assert start[:4] == (1, 1, VIP_TOTAL, VIP_TOTAL)
    assert facts(stale.ctx, stale.vip) == (
        start[0] + paid_orders,
        start[1] + lifetime_orders,
        start[2] + paid_total,
        VIP_TOTAL,
        start[4] + updates,
    )
    # and the commission is the one the plan in force at payment pays
    rates = (2_000, 1_000) if change_name == "a new plan was activated" else (1_000, 500)
    assert sorted((c["level"], c["amount_fen"]) for c in paid[0]["commissions"]) == sorted(
        (level, unit * rate // 10_000)
        for level, rate in zip((1, 2), rates, strict=True)
        for unit in VIP_UNITS
    )
    assert_sound(stale.ctx)


def _pay_cancelled(
    db: Database, this: Callable[[Shop], Ctx], ways: Counter[str]
) -> tuple[Shop, Any, Any, Any]:
    """An order created in `this(shop)`, cancelled by another process, then its payment
    callback to `this(shop)`: (shop, the answer or the refusal, the buyer's facts before, the
    order)."""
    shop = open_shop(db)
    seen(shop, this(shop))
    start = facts(shop.ctx, shop.vip)
    order, _ = create_order(this(shop), buyer_id=shop.vip, lines=LINES)
    cancel_order(shop.other(), order_id=order["id"])
    shop.clock.advance(minutes=1)
    ways.clear()
    try:
        outcome: Any = pay_order(
            this(shop), order_id=order["id"], provider_txn_id="wx-late", amount_fen=VIP_TOTAL
        )
    except DomainError as refused:
        outcome = (refused.code, refused.params)
    return shop, outcome, start, order


def test_a_payment_of_an_order_cancelled_since_it_was_copied_is_what_a_fresh_process_makes_of_it(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an order this process created, which another process then cancelled
    ways = watch(monkeypatch)
    # when its payment arrives at this process, whose copy still has it unpaid
    stale, outcome, start, order = _pay_cancelled(db, lambda shop: shop.ctx, ways)

    # then the copy was refused and the payment handled as a fresh process handles it
    assert (ways["pay: copies"], ways["pay: moved"], ways["pay: read"]) == (1, 1, 1)
    assert ways["pay: needs_locks"] == 1
    afresh, outcome_afresh, _, _ = _pay_cancelled(db, lambda shop: shop.other(), ways)
    assert labelled(outcome) == labelled(outcome_afresh)
    assert comparable(stale.ctx) == comparable(afresh.ctx)
    # the order stays cancelled, counts in no fact of the buyer and pays no commission
    with stale.ctx.db.read() as tx:
        status = tx.execute(
            select(orders.c.status).where(
                orders.c.tenant_id == stale.ctx.tenant_id, orders.c.id == order["id"]
            )
        ).scalar_one()
    assert status == "cancelled"
    assert facts(stale.ctx, stale.vip) == start
    assert _order_rows(stale.ctx, commission_lines, [order["id"]]) == []
    assert_sound(stale.ctx)


# --- versions and rules the database keeps ----------------------------------------------------


def _version(ctx: Ctx, table: Table, **key: str) -> tuple[int, ...]:
    columns = [table.c.version] + ([table.c.tiers_version] if table is tenant_settings else [])
    with ctx.db.read() as tx:
        row = tx.execute(
            select(*columns).where(
                table.c.tenant_id == ctx.tenant_id, *[table.c[k] == v for k, v in key.items()]
            )
        ).one()
    return tuple(row)


def _sql(ctx: Ctx, statement: str, **params: Any) -> None:
    with ctx.db.transaction() as tx:
        tx.execute(text(statement), {"t": ctx.tenant_id, **params})


def test_every_update_of_a_product_moves_its_version_whatever_wrote_it(ctx: Ctx) -> None:
    # given a product with a member price at one tier
    vip = create_tier(ctx, name="VIP", rank=1)["id"]
    gold = create_tier(ctx, name="GOLD", rank=2)["id"]
    product = f.product(ctx, tier_prices=[{"tier_id": vip, "member_price_fen": 9_000}])
    other = f.product(ctx, sku="OTHER-1")

    def version() -> int:
        return _version(ctx, products, id=product["id"])[0]

    steps: list[tuple[str, Callable[[], Any], int]] = [
        ("the catalog renames it", lambda: update_product(ctx, sku="CORE-1", name="新"), 1),
        (
            "raw SQL renames it",
            lambda: _sql(
                ctx,
                "UPDATE products SET name = 'x' WHERE tenant_id = :t AND id = :p",
                p=product["id"],
            ),
            1,
        ),
        (
            "raw SQL sets nothing new",
            lambda: _sql(
                ctx,
                "UPDATE products SET name = name WHERE tenant_id = :t AND id = :p",
                p=product["id"],
            ),
            1,
        ),
        (
            "raw SQL tries to set the version back",
            lambda: _sql(
                ctx,
                "UPDATE products SET version = 0 WHERE tenant_id = :t AND id = :p",
                p=product["id"],
            ),
            1,
        ),
        (
            "raw SQL adds a tier price",
            lambda: _sql(
                ctx,
                "INSERT INTO product_tier_prices (tenant_id, product_id, tier_id, member_price_fen)"
                " VALUES (:t, :p, :g, 8000)",
                p=product["id"],
                g=gold,
            ),
            1,
        ),
        (
            "raw SQL changes a tier price",
            lambda: _sql(
                ctx,
                "UPDATE product_tier_prices SET member_price_fen = 7000"
                " WHERE tenant_id = :t AND product_id = :p AND tier_id = :g",
                p=product["id"],
                g=gold,
            ),
            1,
        ),
        (
            "raw SQL removes a tier price",
            lambda: _sql(
                ctx,
                "DELETE FROM product_tier_prices"
                " WHERE tenant_id = :t AND product_id = :p AND tier_id = :g",
                p=product["id"],
                g=gold,
            ),
            1,
        ),
        # The row itself (1), the one tier price it had removed (1), two written (2).
        (
            "the catalog replaces its tier prices",
            lambda: update_product(
                ctx,
                sku="CORE-1",
                tier_prices=[
                    {"tier_id": vip, "member_price_fen": 8_500},
                    {"tier_id": gold, "member_price_fen": 8_000},
                ],
            ),
            4,
        ),
        (
            "the catalog changes its price",
            lambda: update_product(ctx, sku="CORE-1", price_fen=9_500),
            1,
        ),
    ]
    for name, step, moves in steps:
        # when it is changed this way
        before, other_before = version(), _version(ctx, products, id=other["id"])
        step()
        # then its version moved by one per row written, and no other product's did
        assert (name, version()) == (name, before + moves)
        assert _version(ctx, products, id=other["id"]) == other_before
    # and a statement that updates several products moves each of them once
    both = [version(), _version(ctx, products, id=other["id"])[0]]
    _sql(ctx, "UPDATE products SET active = active WHERE tenant_id = :t")
    assert [version(), _version(ctx, products, id=other["id"])[0]] == [b + 1 for b in both]


def test_every_update_of_a_member_or_the_settings_moves_its_version(ctx: Ctx) -> None:
    # given a member and the tenant's settings
    member = f.member(ctx, "会员")
    tier = create_tier(ctx, name="VIP", rank=1)["id"]

    def member_version() -> int:
        return _version(ctx, members, id=member)[0]

    def settings_version() -> tuple[int, ...]:
        return _version(ctx, tenant_settings)

    member_steps: list[tuple[str, Callable[[], Any]]] = [
        ("renamed", lambda: update_member(ctx, member_id=member, name="新名字")),
        ("given a tier", lambda: update_member(ctx, member_id=member, tier_id=tier, set_tier=True)),
        (
            "raw SQL",
            lambda: _sql(
                ctx, "UPDATE members SET name = 'x' WHERE tenant_id = :t AND id = :m", m=member
            ),
        ),
        (
            "raw SQL setting the version back",
            lambda: _sql(
                ctx, "UPDATE members SET version = 0 WHERE tenant_id = :t AND id = :m", m=member
            ),
        ),
        (
            "raw SQL moving the version on by five",
            lambda: _sql(
                ctx,
                "UPDATE members SET version = version + 5 WHERE tenant_id = :t AND id = :m",
                m=member,
            ),
        ),
    ]
    for name, step in member_steps:
        before = member_version()
        step()
        assert (name, member_version()) == (name, before + 1)

    # (version, tiers_version) moves: a change of settings moves the version only; a change of
    # a tier, by a use case or raw SQL, moves tiers_version and so the version
    settings_steps: list[tuple[str, Callable[[], Any], tuple[int, int]]] = [
        ("settings changed", lambda: update_settings(ctx, patch={"after_sales_days": 3}), (1, 0)),
        (
            "settings by raw SQL",
            lambda: _sql(
                ctx, "UPDATE tenant_settings SET after_sales_days = 4 WHERE tenant_id = :t"
            ),
            (1, 0),
        ),
        (
            "settings version set back by raw SQL",
            lambda: _sql(ctx, "UPDATE tenant_settings SET version = 0 WHERE tenant_id = :t"),
            (1, 0),
        ),
        ("a tier created", lambda: create_tier(ctx, name="GOLD", rank=2), (1, 1)),
        ("a tier changed", lambda: update_tier(ctx, tier_id=tier, discount_bp=500), (1, 1)),
        (
            "a tier changed by raw SQL",
            lambda: _sql(
                ctx, "UPDATE tiers SET name = 'x' WHERE tenant_id = :t AND id = :i", i=tier
            ),
            (1, 1),
        ),
        (
            "a tier added by raw SQL",
            lambda: _sql(
                ctx,
                "INSERT INTO tiers (tenant_id, id, name, rank, discount_bp, may_distribute,"
                " created_at) VALUES (:t, 'tier_raw', 'RAW', 9, 0, false, CURRENT_TIMESTAMP)",
            ),
            (1, 1),
        ),
    ]
    for name, step, (moves, tier_moves) in settings_steps:
        version, tiers_version = settings_version()
        step()
        assert (name, settings_version()) == (name, (version + moves, tiers_version + tier_moves))


PLAN_CHANGES = {
    "plan depth": "UPDATE commission_plans SET depth = 1 WHERE tenant_id = :t",
    "plan mode": "UPDATE commission_plans SET mode = 'differential' WHERE tenant_id = :t",
    "plan peer bonus": "UPDATE commission_plans SET peer_bonus_bp = 100 WHERE tenant_id = :t",
    "plan tier rates": "UPDATE commission_plans SET tier_rates = '{\"x\": 1}' WHERE tenant_id = :t",
    "plan version": "UPDATE commission_plans SET version = version + 100 WHERE tenant_id = :t",
    "plan release": "UPDATE commission_plans SET release = 'on_payment' WHERE tenant_id = :t",
    "rule rate": "UPDATE commission_rules SET rate_bp = rate_bp + 1 WHERE tenant_id = :t",
    "rule scope": "UPDATE commission_rules SET scope_kind = scope_kind WHERE tenant_id = :t",
    "rule deleted": "DELETE FROM commission_rules WHERE tenant_id = :t",
}


@pytest.mark.parametrize("statement", list(PLAN_CHANGES))
def test_a_commission_plan_once_written_never_changes(ctx: Ctx, statement: str) -> None:
    # given an active plan of two levels
    f.two_level_plan(ctx)
    before = tenant_rows(ctx, (commission_plans, commission_rules, tenant_settings))
    assert [len(before["commission_plans"]), len(before["commission_rules"])] == [1, 2]

    # when raw SQL changes its spec or its rules
    with pytest.raises(DBAPIError) as refused, ctx.db.transaction() as tx:
        tx.execute(text(PLAN_CHANGES[statement]), {"t": ctx.tenant_id})

    # then the database refuses it and nothing changed
    assert "never changes once written" in str(refused.value)
    assert tenant_rows(ctx, (commission_plans, commission_rules, tenant_settings)) == before


def test_a_posting_that_would_leave_a_frozen_wallet_below_zero_is_refused(
    db: Database,
) -> None:
    # given a payment that froze 969 for the buyer's referrer and 484 for the one above
    shop = open_shop(db)
    ctx = shop.ctx
    buy(ctx, shop.vip, "wx-1")
    middle_pd = member_account(shop.middle, Purpose.WALLET_PENDING)
    plain_pd = member_account(shop.plain, Purpose.WALLET_PENDING)
    clearing = brand_account(Purpose.BRAND_CLEARING)
    before = tenant_rows(ctx)
    assert {
        r["account_id"]: r["amount"] for r in before["postings"] if r["account_id"] == middle_pd
    } == {middle_pd: 969}

    def post(*items: tuple[str, int]) -> None:
        with ctx.db.transaction() as tx:
            post_transaction(
                tx,
                tenant_id=ctx.tenant_id,
                kind="test_move",
                ref_type="test",
                ref_id="test-1",
                at=ctx.clock.now(),
                items=[Posting(account, amount, "CNY") for account, amount in items],
            )

    # when a transaction takes more than a frozen wallet holds: at once, in two postings, or
    # from a frozen wallet that holds nothing
    for attempt in (
        [(middle_pd, -970), (clearing, 970)],
        [(middle_pd, -500), (middle_pd, -470), (clearing, 970)],
        [(plain_pd, -1), (clearing, 1)],
    ):
        with pytest.raises(DBAPIError) as refused:
            post(*attempt)
        # then the database refuses it and nothing changed
        assert "below zero" in str(refused.value)
        assert tenant_rows(ctx) == before
    assert_sound(ctx)

    # while taking exactly what it holds is allowed (the wallet is then empty)
    post((middle_pd, -969), (clearing, 969))
    with ctx.db.read() as tx:
        assert negative_pending_wallets(tx, tenant_id=ctx.tenant_id) == []
        held = tx.execute(
            select(func.sum(postings.c.amount)).where(
                postings.c.tenant_id == ctx.tenant_id, postings.c.account_id == middle_pd
            )
        ).scalar_one()
    assert held == 0


# --- replays ----------------------------------------------------------------------------------


def test_the_same_key_on_create_returns_the_first_order_from_copies_and_after_a_restart(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an order written from this process's copies with an idempotency key
    shop = open_shop(db)
    seen(shop)
    ways = watch(monkeypatch)
    first, replayed = create_order(shop.ctx, buyer_id=shop.vip, lines=LINES, idempotency_key="k")
    assert (replayed, ways) == (False, Counter({"create: copies": 1, "create: written": 1}))
    rows = tenant_rows(shop.ctx, ROW_TABLES)

    # when the same request comes again, to this process and to one that has just started
    ways.clear()
    again, replayed_again = create_order(
        shop.ctx, buyer_id=shop.vip, lines=LINES, idempotency_key="k"
    )
    assert ways == Counter({"create: copies": 1, "create: _write raised": 1})
    ways.clear()
    restarted, replayed_restarted = create_order(
        shop.other(), buyer_id=shop.vip, lines=LINES, idempotency_key=" k "
    )
    assert ways == Counter({"create: no copies": 1, "create: replay read": 1})

    # then both answers are the first order, replayed, and nothing was written
    assert (replayed_again, replayed_restarted) == (True, True)
    assert again == restarted == first
    assert tenant_rows(shop.ctx, ROW_TABLES) == rows

    # and another request with the same key is refused, by either process, writing nothing
    for process in (shop.ctx, shop.other()):
        for buyer, lines in (
            (shop.vip, [{"sku": "BAIT-1", "quantity": 2}]),
            (shop.plain, LINES),
        ):
            with pytest.raises(Conflict) as reused:
                create_order(process, buyer_id=buyer, lines=lines, idempotency_key="k")
            assert (reused.value.code, reused.value.params) == (
                "idempotency_key_reused",
                {"key": "k"},
            )
    assert tenant_rows(shop.ctx, ROW_TABLES) == rows


def test_the_same_payment_callback_replays_and_a_different_one_changes_nothing(
    db: Database,
) -> None:
    # given an order created and paid by this process
    shop = open_shop(db)
    order, _ = create_order(shop.ctx, buyer_id=shop.vip, lines=LINES)
    paid, replayed = pay_order(
        shop.ctx, order_id=order["id"], provider_txn_id="wx-1", amount_fen=VIP_TOTAL
    )
    assert (paid["status"], replayed) == ("paid", False)
    rows = tenant_rows(shop.ctx, ROW_TABLES)
    paid_facts = facts(shop.ctx, shop.vip)
    assert paid_facts[:4] == (1, 1, VIP_TOTAL, VIP_TOTAL)

    # when the same callback comes again, to this process and to a restarted one
    for process in (shop.ctx, shop.other()):
        again, replayed = pay_order(
            process, order_id=order["id"], provider_txn_id="wx-1", amount_fen=VIP_TOTAL
        )
        # then it is answered as the first time was, and nothing was written
        assert replayed is True
        # (its commission lines in another order: by level, where the first answer has them
        # line by line)
        assert commissions_sorted(again) == commissions_sorted(paid)
        assert tenant_rows(shop.ctx, ROW_TABLES) == rows

    # and a callback for it with another amount or another transaction is refused unchanged
    for txn, amount, error, code in (
        ("wx-1", VIP_TOTAL - 1, Conflict, "payment_replay_amount_mismatch"),
        ("wx-2", VIP_TOTAL, Conflict, "order_already_paid"),
        ("wx-2", VIP_TOTAL + 1, Conflict, "order_already_paid"),
    ):
        with pytest.raises(error) as refused:
            pay_order(shop.ctx, order_id=order["id"], provider_txn_id=txn, amount_fen=amount)
        assert (txn, refused.value.code) == (txn, code)
        assert tenant_rows(shop.ctx, ROW_TABLES) == rows
    assert facts(shop.ctx, shop.vip) == paid_facts


def test_a_payment_of_the_wrong_amount_is_refused_and_changes_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an order this process has just created (its copy in the snapshot)
    shop = open_shop(db)
    seen(shop)
    order, _ = create_order(shop.ctx, buyer_id=shop.vip, lines=LINES)
    rows = tenant_rows(shop.ctx, ROW_TABLES)
    start = facts(shop.ctx, shop.vip)
    ways = watch(monkeypatch)

    # when its callback says another amount
    with pytest.raises(InvalidInput) as refused:
        pay_order(shop.ctx, order_id=order["id"], provider_txn_id="wx-1", amount_fen=VIP_TOTAL - 1)

    # then the optimistic write handed it to the locking way, which refused it unchanged
    assert (refused.value.code, refused.value.params) == (
        "payment_amount_mismatch",
        {"expected_fen": VIP_TOTAL, "got_fen": VIP_TOTAL - 1},
    )
    assert only(ways, "pay") == Counter(
        {"pay: copies": 1, "pay: needs_locks": 1, "pay: _pay_with_locks raised": 1}
    )
    assert tenant_rows(shop.ctx, ROW_TABLES) == rows
    # and the right amount, with the same transaction id, is then paid once
    paid, replayed = pay_order(
        shop.ctx, order_id=order["id"], provider_txn_id="wx-1", amount_fen=VIP_TOTAL
    )
    assert (paid["status"], replayed) == ("paid", False)
    assert facts(shop.ctx, shop.vip) == (
        start[0] + 1,
        start[1] + 1,
        start[2] + VIP_TOTAL,
        VIP_TOTAL,
        start[4] + 1,
    )


@pytest.mark.parametrize("way", ["copies", "read", "locks"])
def test_a_provider_transaction_of_another_order_is_refused_and_changes_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    # given one order paid with wx-1 and another this process has just created
    shop = open_shop(db)
    seen(shop)
    buy(shop.ctx, shop.vip, "wx-1")
    second, _ = create_order(shop.ctx, buyer_id=shop.vip, lines=LINES)
    rows = tenant_rows(shop.ctx, ROW_TABLES)
    start = facts(shop.ctx, shop.vip)
    if way == "locks":
        refuse_optimistic(monkeypatch)
    process = shop.other() if way == "read" else shop.ctx

    # when the second is paid with wx-1, from the copies, from a read or the locking way
    with pytest.raises(Conflict) as reused:
        pay_order(process, order_id=second["id"], provider_txn_id="wx-1", amount_fen=VIP_TOTAL)

    # then it is refused and nothing was written; its own transaction then pays it once
    assert reused.value.code == "payment_txn_reused"
    assert tenant_rows(shop.ctx, ROW_TABLES) == rows
    paid, replayed = pay_order(
        process, order_id=second["id"], provider_txn_id="wx-2", amount_fen=VIP_TOTAL
    )
    assert (paid["status"], replayed) == ("paid", False)
    assert facts(shop.ctx, shop.vip) == (
        start[0] + 1,
        start[1] + 1,
        start[2] + VIP_TOTAL,
        VIP_TOTAL,
        start[4] + 1,
    )
    assert_sound(shop.ctx)


# --- in parallel, on PostgreSQL ---------------------------------------------------------------


def _order_rows(ctx: Ctx, table: Table, order_ids: Sequence[str]) -> list[Any]:
    column = table.c.ref_id if table is journal_transactions else table.c.order_id
    with ctx.db.read() as tx:
        return list(
            tx.execute(
                select(table).where(table.c.tenant_id == ctx.tenant_id, column.in_(order_ids))
            ).all()
        )


@pytest.mark.postgres
@pytest.mark.parametrize("snapshots", ["shared", "one per process"])
def test_parallel_orders_of_one_buyer_each_count_once(
    postgres_db: Database, snapshots: str
) -> None:
    # given a VIP buyer this process has seen
    shop = open_shop(postgres_db)
    seen(shop)
    start = facts(shop.ctx, shop.vip)
    barrier = Barrier(12, timeout=60)

    # when twelve orders of it are created and paid at the same instant, in one process (one
    # snapshot) or in twelve
    def order_and_pay(n: int) -> tuple[Any, bool]:
        process = shop.ctx if snapshots == "shared" else shop.other()
        barrier.wait()
        order, _ = create_order(
            process, buyer_id=shop.vip, lines=[{"sku": "CORE-1", "quantity": 1}]
        )
        return pay_order(process, order_id=order["id"], provider_txn_id=f"wx-{n}", amount_fen=8_800)

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(order_and_pay, range(12)))

    # then each was paid once with its two commission lines, and the buyer's facts count all
    assert [(r[0]["status"], r[1]) for r in results] == [("paid", False)] * 12
    assert [
        sorted((c["beneficiary_id"], c["amount_fen"]) for c in r[0]["commissions"]) for r in results
    ] == [sorted([(shop.middle, 880), (shop.root, 440)])] * 12
    ids = [r[0]["id"] for r in results]
    assert len(set(ids)) == 12
    assert [len(_order_rows(shop.ctx, t, ids)) for t in (payments, commission_lines)] == [12, 24]
    assert sorted(r.kind for r in _order_rows(shop.ctx, journal_transactions, ids)) == sorted(
        ["payment_received", "commission_accrued"] * 12
    )
    assert facts(shop.ctx, shop.vip) == (
        start[0] + 12,
        start[1] + 12,
        start[2] + 12 * 8_800,
        VIP_TOTAL,
        start[4] + 12,
    )
    with shop.ctx.db.read() as tx:
        first_purchases = [
            p["first_purchase"]
            for p in tx.execute(
                select(events.c.payload).where(
                    events.c.tenant_id == shop.ctx.tenant_id, events.c.type == "OrderPaid"
                )
            ).scalars()
        ]
    assert Counter(first_purchases) == Counter({True: 1, False: 12})
    assert_sound(shop.ctx)


@pytest.mark.postgres
def test_parallel_identical_payment_callbacks_make_one_payment(postgres_db: Database) -> None:
    # given an order just created by this process (its copy in the snapshot)
    shop = open_shop(postgres_db)
    seen(shop)
    start = facts(shop.ctx, shop.vip)
    order, _ = create_order(shop.ctx, buyer_id=shop.vip, lines=LINES)
    barrier = Barrier(20, timeout=60)

    # when its callback arrives twenty times at the same instant, half of them to this process
    # and half to processes of their own
    def callback(n: int) -> tuple[Any, bool]:
        process = shop.ctx if n % 2 == 0 else shop.other()
        barrier.wait()
        return pay_order(
            process, order_id=order["id"], provider_txn_id="wx-1", amount_fen=VIP_TOTAL
        )

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(callback, range(20)))

    # then one made the payment, the other nineteen replayed it, and it counted once
    assert Counter(r[1] for r in results) == Counter({False: 1, True: 19})
    assert {(r[0]["status"], r[0]["paid_fen"]) for r in results} == {("paid", VIP_TOTAL)}
    assert [len(_order_rows(shop.ctx, t, [order["id"]])) for t in (payments, commission_lines)] == [
        1,
        4,
    ]
    assert sorted(r.kind for r in _order_rows(shop.ctx, journal_transactions, [order["id"]])) == [
        "commission_accrued",
        "payment_received",
    ]
    assert facts(shop.ctx, shop.vip) == (
        start[0] + 1,
        start[1] + 1,
        start[2] + VIP_TOTAL,
        VIP_TOTAL,
        start[4] + 1,
    )
    assert_sound(shop.ctx)


@pytest.mark.postgres
def test_parallel_creates_with_one_idempotency_key_make_one_order(postgres_db: Database) -> None:
    # given a buyer that this process has seen and others have not
    shop = open_shop(postgres_db)
    seen(shop)
    before = tenant_rows(shop.ctx, ROW_TABLES)
    barrier = Barrier(10, timeout=60)

    # when the same request with one key arrives ten times at once, to this process and to
    # processes of their own
    def create(n: int) -> tuple[Any, bool]:
        process = shop.ctx if n % 2 == 0 else shop.other()
        barrier.wait()
        return create_order(process, buyer_id=shop.vip, lines=LINES, idempotency_key="once")

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(create, range(10)))

    # then one order was written, and the nine others answered with it
    assert Counter(r[1] for r in results) == Counter({False: 1, True: 9})
    assert len({r[0]["id"] for r in results}) == 1
    assert {r[0]["total_fen"] for r in results} == {VIP_TOTAL}
    assert changes(before, tenant_rows(shop.ctx, ROW_TABLES)) == {
        "orders": (0, 1, 0),
        "order_lines": (0, 2, 0),
        "events": (0, 1, 0),
    }
