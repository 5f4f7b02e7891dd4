"""Creating an order: price the lines at the buyer's tier and write the order, its lines and
its event in one statement.

The prices come from copies in the snapshot (the products, the buyer's tier, the tier list)
when this process has them, and from one read otherwise; either way the write checks, without
locks, that every row it priced from is still at the version it was read at, and writes
nothing if one moved: then the inputs are read afresh and the write made again. A buyer this
process has not seen is taken to have no tier, as most buyers have none; the same check
settles it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, any_, bindparam, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from shequn.batch import WriteBatch
from shequn.catalog.tables import product_tier_prices, products
from shequn.context import Ctx
from shequn.db import violated_constraint
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import Event, stage_events
from shequn.ids import new_id
from shequn.locks import Lock, take
from shequn.members.repo import (
    BUYER_COLUMNS,
    BUYER_PREFIX,
    Buyer,
    buyer_columns,
    buyer_from_row,
    member_or_none,
    remember_buyer,
    remembered_buyer,
)
from shequn.members.tables import members
from shequn.money import MAX_AMOUNT_FEN
from shequn.orders.copies import (
    ProductPrice,
    UnpaidOrder,
    remember_product,
    remember_unpaid,
    remembered_product,
    sale_line,
)
from shequn.orders.rules import OrderStatus
from shequn.orders.tables import order_lines, orders
from shequn.orders.views import SUMMARY_KEYS, clean_key, line_view, replay
from shequn.tenancy.repo import remembered_settings
from shequn.tenancy.tables import tenant_settings
from shequn.tiers.repo import remembered_tiers
from shequn.tiers.rules import tier_price
from shequn.tiers.tables import tiers

MAX_LINES = 100
MAX_QUANTITY = 10_000
# Writes made before one holds: the first from the copies, the others each after a fresh
# read, which fails only if a product or the buyer changed in the moment between.
ATTEMPTS = 3
IDEMPOTENCY_CONSTRAINT = "uq_orders_tenant_id_idempotency_key"


@dataclass(frozen=True)
class _Request:
    order_id: str
    buyer_id: str
    wanted: Sequence[tuple[str, int]]  # (sku, quantity), in the order asked
    key: str | None
    request_hash: str
    sharer_id: str | None
    at: datetime


@dataclass(frozen=True)
class _Inputs:
    """What the order is priced from, and the versions the write checks."""

    tier_id: str | None
    discount_bp: int
    products: Mapping[str, ProductPrice]
    settings_version: int | None  # set when the discount came from a tier (its list's version)
    copied: bool = False  # priced from this process's copies, which may be out of date


def _request_hash(buyer_id: str, lines: Sequence[tuple[str, int]], sharer: str | None) -> str:
    canonical = json.dumps([buyer_id, sorted(lines), sharer], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def create_order(
    ctx: Ctx,
    *,
    buyer_id: str,
    lines: Sequence[Mapping[str, Any]],
    idempotency_key: str | None = None,
    attributed_sharer_id: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Price the lines at the buyer's tier and record the order. Returns (order, replayed):
    the same idempotency key with the same request returns the first order."""
    if not 1 <= len(lines) <= MAX_LINES:
        raise InvalidInput("order_lines_invalid", max=MAX_LINES)
    wanted: list[tuple[str, int]] = []
    for line in lines:
        sku, quantity = line["sku"], line["quantity"]
        if not 1 <= quantity <= MAX_QUANTITY:
            raise InvalidInput("quantity_invalid", sku=sku, max=MAX_QUANTITY)
        wanted.append((sku, quantity))
    if len({sku for sku, _ in wanted}) != len(wanted):
        raise InvalidInput("order_sku_repeated")
    request = _Request(
        order_id=new_id("ord"),
        buyer_id=buyer_id,
        wanted=wanted,
        key=clean_key(idempotency_key),
        request_hash=_request_hash(buyer_id, wanted, attributed_sharer_id),
        sharer_id=attributed_sharer_id,
        at=ctx.clock.now(),
    )
    inputs = _inputs_from_copies(ctx, request)
    for _ in range(ATTEMPTS):
        if inputs is None:
            read = _read_inputs(ctx, request)
            if isinstance(read, dict):
                return read, True
            inputs = read
        try:
            view = _write(ctx, request, inputs)
        except IntegrityError as exc:
            if request.key is None or violated_constraint(exc) != IDEMPOTENCY_CONSTRAINT:
                raise
            return _replay_after_race(ctx, request), True
        if view is not None:
            return view, False
        inputs = None
    raise Conflict("order_inputs_changed")


def _replay_after_race(ctx: Ctx, request: _Request) -> dict[str, Any]:
    """Another request with the same key wrote first: its order is the answer."""
    assert request.key is not None
    with ctx.db.read() as tx:
        found = replay(tx, ctx.tenant_id, request.key, request.request_hash)
    if found is None:
        raise Conflict("idempotency_key_in_use")
    return found


def _inputs_from_copies(ctx: Ctx, request: _Request) -> _Inputs | None:
    """The inputs from the snapshot, or None if one of them is not there (an order with a
    sharer is always read: the sharer must exist)."""
    if request.sharer_id is not None:
        return None
    tenant_id = ctx.tenant_id
    buyer = remembered_buyer(ctx.snapshot, tenant_id, request.buyer_id)
    tier_id = buyer.tier_id if buyer is not None else None
    found: dict[str, ProductPrice] = {}
    for sku, _ in request.wanted:
        product = remembered_product(ctx.snapshot, tenant_id, sku, tier_id)
        if product is None or not product.active:
            return None
        found[sku] = product
    if tier_id is None:
        return _Inputs(None, 0, found, None, copied=True)
    settings = remembered_settings(ctx.snapshot, tenant_id)
    if settings is None:
        return None
    kept = remembered_tiers(ctx.snapshot, tenant_id, settings.tiers_version)
    tier = next((t for t in kept or () if t.id == tier_id), None)
    if tier is None:
        return None
    return _Inputs(tier_id, tier.discount_bp, found, settings.version, copied=True)


# Everything an order needs in one statement: the buyer and its tier, the products asked for
# with the buyer's tier price, and an order already made with the same idempotency key. A
# buyer that is missing gives no row; a sku that is missing gives no product row.
_replay_id = (
    select(orders.c.id)
    .where(orders.c.tenant_id == bindparam("t_id"), orders.c.idempotency_key == bindparam("key"))
    .scalar_subquery()
)


def _order_inputs_query(postgres: bool) -> Any:
    sku_matches = (
        products.c.sku == any_(bindparam("skus", type_=postgresql.ARRAY(String)))
        if postgres
        else products.c.sku.in_(bindparam("skus", expanding=True))
    )
    return (
        select(
            tiers.c.discount_bp,
            tenant_settings.c.version.label("settings_version"),
            _replay_id.label("replay_id"),
            products.c.id.label("product_id"),
            products.c.sku,
            products.c.name,
            products.c.price_fen,
            products.c.ladder_role,
            products.c.category,
            products.c.active,
            products.c.version.label("product_version"),
            product_tier_prices.c.member_price_fen,
            *buyer_columns(),
        )
        .select_from(
            members.outerjoin(
                tiers,
                (tiers.c.tenant_id == members.c.tenant_id) & (tiers.c.id == members.c.tier_id),
            )
            .outerjoin(tenant_settings, tenant_settings.c.tenant_id == members.c.tenant_id)
            .outerjoin(products, (products.c.tenant_id == members.c.tenant_id) & sku_matches)
            .outerjoin(
                product_tier_prices,
                (product_tier_prices.c.tenant_id == members.c.tenant_id)
                & (product_tier_prices.c.tier_id == members.c.tier_id)
                & (product_tier_prices.c.product_id == products.c.id),
            )
        )
        .where(members.c.tenant_id == bindparam("t_id"), members.c.id == bindparam("m_id"))
    )


_ORDER_INPUTS = {postgres: _order_inputs_query(postgres) for postgres in (True, False)}


def _read_inputs(ctx: Ctx, request: _Request) -> _Inputs | dict[str, Any]:
    """The inputs as the database has them now (kept in the snapshot for the next order), or
    the order an earlier request with the same idempotency key made."""
    key = request.key
    with ctx.db.read() as tx:
        found_rows = tx.execute(
            _ORDER_INPUTS[ctx.db.is_postgres],
            {
                "t_id": ctx.tenant_id,
                "m_id": request.buyer_id,
                "key": key,
                "skus": [sku for sku, _ in request.wanted],
            },
        ).all()
        replay_id = found_rows[0].replay_id if found_rows else None
        if key is not None and (replay_id is not None or not found_rows):
            earlier = replay(tx, ctx.tenant_id, key, request.request_hash)
            if earlier is not None:
                return earlier
        if not found_rows:
            raise NotFound("member_not_found", id=request.buyer_id)
        if request.sharer_id is not None:
            if request.sharer_id == request.buyer_id:
                raise InvalidInput("self_referral")
            if member_or_none(tx, ctx.tenant_id, request.sharer_id) is None:
                raise NotFound("member_not_found", id=request.sharer_id)
    buyer = buyer_from_row(found_rows[0]._mapping)
    found: dict[str, ProductPrice] = {}
    for r in found_rows:
        if r.product_id is not None:
            found[r.sku] = ProductPrice(
                product_id=r.product_id,
                sku=r.sku,
                name=r.name,
                price_fen=r.price_fen,
                ladder_role=r.ladder_role,
                category=r.category,
                active=r.active,
                member_price_fen=r.member_price_fen,
                version=r.product_version,
            )
    remember_buyer(ctx.snapshot, ctx.tenant_id, buyer)
    for product in found.values():
        remember_product(ctx.snapshot, ctx.tenant_id, buyer.tier_id, product)
    for sku, _ in request.wanted:
        if sku not in found:
            raise NotFound("product_not_found", sku=sku)
        if not found[sku].active:
            raise Conflict("product_inactive", sku=sku)
    # A tier's discount holds only while the tier list is at the version read with it.
    settings_version = found_rows[0].settings_version if buyer.tier_id is not None else None
    return _Inputs(buyer.tier_id, found_rows[0].discount_bp or 0, found, settings_version)


def _write(ctx: Ctx, request: _Request, inputs: _Inputs) -> dict[str, Any] | None:
    """Write the order in one statement, checking every version it was priced from; None if
    one moved (nothing is written then)."""
    tenant_id = ctx.tenant_id
    line_rows, subtotal, total = _priced_lines(ctx, request, inputs)
    if total > MAX_AMOUNT_FEN:
        if inputs.copied:
            return None  # a price may have moved since it was copied: read it
        raise InvalidInput("order_total_too_large")
    values = {
        "tenant_id": tenant_id,
        "id": request.order_id,
        "buyer_id": request.buyer_id,
        "status": OrderStatus.CREATED.value,
        "subtotal_fen": subtotal,
        "discount_fen": subtotal - total,
        "total_fen": total,
        "paid_fen": 0,
        "refunded_fen": 0,
        "buyer_tier_id": inputs.tier_id,
        "attributed_sharer_id": request.sharer_id,
        "idempotency_key": request.key,
        "request_hash": request.request_hash,
        "created_at": request.at,
        "updated_at": request.at,
    }
    batch = WriteBatch()
    # The buyer as the statement finds it: its payment starts from these facts.
    batch.check(
        members,
        {"tenant_id": tenant_id, "id": request.buyer_id},
        equal={"tier_id": inputs.tier_id},
        returning=BUYER_COLUMNS,
    )
    if inputs.settings_version is not None:
        batch.check(
            tenant_settings, {"tenant_id": tenant_id}, equal={"version": inputs.settings_version}
        )
    for product in inputs.products.values():
        batch.check(
            products,
            {"tenant_id": tenant_id, "id": product.product_id},
            equal={"version": product.version},
        )
    batch.insert(orders, [values])
    batch.insert(order_lines, line_rows)
    stage_events(
        batch,
        tenant_id=tenant_id,
        actor=ctx.actor,
        at=request.at,
        items=[
            Event(
                "OrderCreated",
                "order",
                request.order_id,
                {"buyer_id": request.buyer_id, "total_fen": total, "sharer_id": request.sharer_id},
            )
        ],
    )
    with ctx.db.autocommit() as tx:
        flushed = batch.flush(tx)
    if not flushed.applied:
        return None
    buyer = buyer_from_row(flushed.returned[0], prefix="")
    remember_buyer(ctx.snapshot, tenant_id, buyer)
    return _created(ctx, values, line_rows, buyer)


def _priced_lines(
    ctx: Ctx, request: _Request, inputs: _Inputs
) -> tuple[list[dict[str, Any]], int, int]:
    """The order's lines at the buyer's tier; (lines, subtotal at list prices, total)."""
    line_rows = []
    subtotal = total = 0
    for number, (sku, quantity) in enumerate(request.wanted, start=1):
        product = inputs.products[sku]
        unit = tier_price(
            product.price_fen,
            discount_bp=inputs.discount_bp,
            explicit_fen=product.member_price_fen if inputs.tier_id else None,
        )
        subtotal += product.price_fen * quantity
        total += unit * quantity
        line_rows.append(
            {
                "tenant_id": ctx.tenant_id,
                "id": new_id("ol"),
                "order_id": request.order_id,
                "line_no": number,
                "product_id": product.product_id,
                "sku": sku,
                "name": product.name,
                "ladder_role": product.ladder_role,
                "category": product.category,
                "quantity": quantity,
                "list_price_fen": product.price_fen,
                "unit_price_fen": unit,
                "line_total_fen": unit * quantity,
                "refunded_fen": 0,
            }
        )
    return line_rows, subtotal, total


def _created(
    ctx: Ctx, values: Mapping[str, Any], line_rows: Sequence[Mapping[str, Any]], buyer: Buyer
) -> dict[str, Any]:
    """Keep a written order for its payment; its view."""
    summary = {k: values.get(k) for k in SUMMARY_KEYS}
    views = [line_view(r) for r in line_rows]
    remember_unpaid(
        ctx.snapshot,
        ctx.tenant_id,
        UnpaidOrder(
            order=summary,
            lines=tuple(views),
            sale_lines=tuple(sale_line(r) for r in line_rows),
            buyer=buyer,
        ),
    )
    return {**summary, "lines": [dict(v) for v in views]}


# --- an order priced by its caller: coupons and points (`shequn.flows.growth_orders`) -------


@dataclass(frozen=True)
class BuyerPrices:
    """The buyer's tier and the products asked for, as one read found them."""

    tier_id: str | None
    discount_bp: int
    products: Mapping[str, ProductPrice]


def read_buyer_prices(
    tx: Connection, ctx: Ctx, *, buyer_id: str, skus: Sequence[str]
) -> BuyerPrices:
    """The buyer's tier and the products at its price, read in the caller's transaction;
    refuses a missing buyer or product and an inactive product."""
    rows = tx.execute(
        _ORDER_INPUTS[ctx.db.is_postgres],
        {"t_id": ctx.tenant_id, "m_id": buyer_id, "key": None, "skus": list(skus)},
    ).all()
    if not rows:
        raise NotFound("member_not_found", id=buyer_id)
    tier_id = rows[0]._mapping[BUYER_PREFIX + "tier_id"]
    found = {
        r.sku: ProductPrice(
            product_id=r.product_id,
            sku=r.sku,
            name=r.name,
            price_fen=r.price_fen,
            ladder_role=r.ladder_role,
            category=r.category,
            active=r.active,
            member_price_fen=r.member_price_fen,
            version=r.product_version,
        )
        for r in rows
        if r.product_id is not None
    }
    for sku in skus:
        if sku not in found:
            raise NotFound("product_not_found", sku=sku)
        if not found[sku].active:
            raise Conflict("product_inactive", sku=sku)
    return BuyerPrices(tier_id, rows[0].discount_bp or 0, found)


@dataclass(frozen=True)
class OfferedLine:
    """A line as its caller priced it: the unit price before its discounts (the tier's, or
    the list price), and what the buyer pays for the whole line after them."""

    sku: str
    quantity: int
    unit_price_fen: int
    line_total_fen: int


def write_offered_order(
    tx: Connection,
    ctx: Ctx,
    *,
    buyer_id: str,
    prices: BuyerPrices,
    lines: Sequence[OfferedLine],
    idempotency_key: str | None,
    request_hash: str,
    sharer_id: str | None,
    at: datetime,
) -> dict[str, Any]:
    """Write an order its caller priced, in the caller's transaction (which holds what the
    discounts came from); the commission of each line is computed at payment on its total."""
    if not 1 <= len(lines) <= MAX_LINES:
        raise InvalidInput("order_lines_invalid", max=MAX_LINES)
    order_id = new_id("ord")
    line_rows = []
    subtotal = total = 0
    for number, line in enumerate(lines, start=1):
        product = prices.products[line.sku]
        subtotal += product.price_fen * line.quantity
        total += line.line_total_fen
        line_rows.append(
            {
                "tenant_id": ctx.tenant_id,
                "id": new_id("ol"),
                "order_id": order_id,
                "line_no": number,
                "product_id": product.product_id,
                "sku": line.sku,
                "name": product.name,
                "ladder_role": product.ladder_role,
                "category": product.category,
                "quantity": line.quantity,
                "list_price_fen": product.price_fen,
                "unit_price_fen": line.unit_price_fen,
                "line_total_fen": line.line_total_fen,
                "refunded_fen": 0,
            }
        )
    if total > MAX_AMOUNT_FEN:
        raise InvalidInput("order_total_too_large")
    values = {
        "tenant_id": ctx.tenant_id,
        "id": order_id,
        "buyer_id": buyer_id,
        "status": OrderStatus.CREATED.value,
        "subtotal_fen": subtotal,
        "discount_fen": subtotal - total,
        "total_fen": total,
        "paid_fen": 0,
        "refunded_fen": 0,
        "buyer_tier_id": prices.tier_id,
        "attributed_sharer_id": sharer_id,
        "idempotency_key": clean_key(idempotency_key),
        "request_hash": request_hash,
        "created_at": at,
        "updated_at": at,
    }
    take(tx, Lock.ORDERS)
    batch = WriteBatch()
    batch.insert(orders, [values])
    batch.insert(order_lines, line_rows)
    stage_events(
        batch,
        tenant_id=ctx.tenant_id,
        actor=ctx.actor,
        at=at,
        items=[
            Event(
                "OrderCreated",
                "order",
                order_id,
                {"buyer_id": buyer_id, "total_fen": total, "sharer_id": sharer_id},
            )
        ],
    )
    batch.flush(tx)
    return {**{k: values.get(k) for k in SUMMARY_KEYS}, "lines": [line_view(r) for r in line_rows]}
