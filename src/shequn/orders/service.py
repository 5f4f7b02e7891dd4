"""Order use cases: create, pay, ship, complete, cancel, refund; reads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, Row, String, any_, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from shequn.batch import WriteBatch
from shequn.catalog.tables import product_tier_prices, products
from shequn.context import Ctx
from shequn.db import UTCDateTime, violated_constraint
from shequn.distribution.rules import Award, SaleLine
from shequn.distribution.service import accrue_commissions, adjust_for_refund, order_commissions
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import Event, record_events, stage_events
from shequn.ids import new_id
from shequn.ledger.rules import Posting, Purpose, brand_account, system_account
from shequn.ledger.service import JournalEntry, post_transaction, stage_entries
from shequn.members.service import (
    BUYER_COLUMNS,
    Buyer,
    buyer_columns,
    buyer_from_row,
    require_member,
    stage_purchase,
    stage_referred_buyer,
)
from shequn.members.tables import members
from shequn.memo import Recent
from shequn.money import MAX_AMOUNT_FEN
from shequn.orders.rules import (
    REFUNDABLE,
    LineAmounts,
    OrderAction,
    OrderStatus,
    allocate_refund,
    next_status,
    status_after_refund,
)
from shequn.orders.tables import order_lines, orders, payments, refunds
from shequn.prepared import Prepared
from shequn.referrals.service import bind_by_policy, lock_tree
from shequn.tenancy.rules import TenantSettings
from shequn.tenancy.service import (
    SETTINGS_PREFIX,
    load_settings,
    seen_settings,
    settings_columns,
    settings_from_row,
)
from shequn.tenancy.tables import tenant_settings
from shequn.tiers.rules import TierSpec, tier_price
from shequn.tiers.service import apply_upgrade, cached_tiers
from shequn.tiers.tables import tiers

MAX_LINES = 100
MAX_QUANTITY = 10_000


def _clean_key(key: str | None, code: str = "idempotency_key_invalid") -> str | None:
    if key is None:
        return None
    clean = key.strip()
    if not clean or len(clean) > 80:
        raise InvalidInput(code)
    return clean


def _request_hash(buyer_id: str, lines: Sequence[tuple[str, int]], sharer: str | None) -> str:
    canonical = json.dumps([buyer_id, sorted(lines), sharer], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _order_row(
    tx: Connection, tenant_id: str, order_id: str, *, for_update: bool = False
) -> Row[Any]:
    query = select(orders).where(orders.c.tenant_id == tenant_id, orders.c.id == order_id)
    if for_update:
        query = query.with_for_update()
    row = tx.execute(query).first()
    if row is None:
        raise NotFound("order_not_found", id=order_id)
    return row


# Statements of the order and payment paths, built once (building them per call costs more
# CPU than running them).
_lines_query = (
    select(order_lines)
    .where(
        order_lines.c.tenant_id == bindparam("t_id"), order_lines.c.order_id == bindparam("o_id")
    )
    .order_by(order_lines.c.line_no)
)
_replay_query = select(orders).where(
    orders.c.tenant_id == bindparam("t_id"), orders.c.idempotency_key == bindparam("key")
)
# Everything an order needs in one statement: the buyer and its tier, the products asked for
# with the buyer's tier price, and an order already made with the same idempotency key; and
# the buyer's chain and facts, which paying the order will need (see `_recent_orders`). A buyer
# that is missing gives no row; a sku that is missing gives no product row.
_replay_id = (
    select(orders.c.id)
    .where(orders.c.tenant_id == bindparam("t_id"), orders.c.idempotency_key == bindparam("key"))
    .scalar_subquery()
)


def _order_context_query(sku_matches: Any) -> Any:
    return (
        select(
            members.c.tier_id,
            tiers.c.discount_bp,
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


_order_context = Prepared(
    _order_context_query(products.c.sku.in_(bindparam("skus", expanding=True))),
    postgresql=_order_context_query(
        products.c.sku == any_(bindparam("skus", type_=postgresql.ARRAY(String)))
    ),
)
_amount = bindparam("amount", type_=BigInteger)
_at = bindparam("at", type_=UTCDateTime())
_mark_paid = Prepared(
    update(orders)
    .where(
        orders.c.tenant_id == bindparam("t_id"),
        orders.c.id == bindparam("o_id"),
        orders.c.status == OrderStatus.CREATED.value,
        orders.c.total_fen == _amount,
    )
    .values(status=OrderStatus.PAID.value, paid_fen=_amount, paid_at=_at, updated_at=_at)
    .returning(*orders.c)
)
# What a payment needs once the order is marked paid, in one statement: the order's lines, the
# buyer (locked: its purchase facts are about to change) and the tenant's settings.
_payment_context = Prepared(
    select(order_lines, *buyer_columns(), *settings_columns())
    .select_from(
        order_lines.join(
            members,
            (members.c.tenant_id == order_lines.c.tenant_id) & (members.c.id == bindparam("m_id")),
        ).join(tenant_settings, tenant_settings.c.tenant_id == order_lines.c.tenant_id)
    )
    .where(
        order_lines.c.tenant_id == bindparam("t_id"), order_lines.c.order_id == bindparam("o_id")
    )
    .order_by(order_lines.c.line_no)
    .with_for_update(of=members)
)


ORDER_PREFIX = "o_"


def order_columns() -> list[Any]:
    """The order's columns labelled with `ORDER_PREFIX`."""
    return [c.label(ORDER_PREFIX + c.name) for c in orders.c]


def _lines_of(tx: Connection, tenant_id: str, order_id: str) -> list[Row[Any]]:
    return list(tx.execute(_lines_query, {"t_id": tenant_id, "o_id": order_id}).all())


def _summary(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "buyer_id": row.buyer_id,
        "status": row.status,
        "subtotal_fen": row.subtotal_fen,
        "discount_fen": row.discount_fen,
        "total_fen": row.total_fen,
        "paid_fen": row.paid_fen,
        "refunded_fen": row.refunded_fen,
        "attributed_sharer_id": row.attributed_sharer_id,
        "idempotency_key": row.idempotency_key,
        "created_at": row.created_at,
        "paid_at": row.paid_at,
        "shipped_at": row.shipped_at,
        "completed_at": row.completed_at,
        "closed_at": row.closed_at,
        "cancelled_at": row.cancelled_at,
    }


_LINE_KEYS = (
    "id",
    "sku",
    "name",
    "ladder_role",
    "quantity",
    "list_price_fen",
    "unit_price_fen",
    "line_total_fen",
    "refunded_fen",
)


def _line_view(line: Mapping[Any, Any]) -> dict[str, Any]:
    return {k: line[k] for k in _LINE_KEYS}


def _full_view(tx: Connection, tenant_id: str, row: Row[Any]) -> dict[str, Any]:
    payment = tx.execute(
        select(payments.c.provider_txn_id, payments.c.amount_fen, payments.c.created_at).where(
            payments.c.tenant_id == tenant_id, payments.c.order_id == row.id
        )
    ).first()
    refund_rows = tx.execute(
        select(refunds)
        .where(refunds.c.tenant_id == tenant_id, refunds.c.order_id == row.id)
        .order_by(refunds.c.created_at, refunds.c.id)
    ).all()
    return {
        **_summary(row),
        "lines": [_line_view(line._mapping) for line in _lines_of(tx, tenant_id, row.id)],
        "payment": dict(payment._mapping) if payment else None,
        "refunds": [_refund_view(r) for r in refund_rows],
        "commissions": order_commissions(tx, tenant_id=tenant_id, order_id=row.id),
    }


def _refund_view(r: Row[Any]) -> dict[str, Any]:
    return {
        "id": r.id,
        "order_id": r.order_id,
        "amount_fen": r.amount_fen,
        "reason": r.reason,
        "phase": r.phase,
        "commission_cancelled_fen": r.commission_cancelled_fen,
        "commission_reversed_fen": r.commission_reversed_fen,
        "created_at": r.created_at,
    }


def create_order(
    ctx: Ctx,
    *,
    buyer_id: str,
    lines: Sequence[Mapping[str, Any]],
    idempotency_key: str | None = None,
    attributed_sharer_id: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Price the lines at the buyer's tier and record the order. Returns (order, replayed):
    the same idempotency key with the same request returns the first order.

    The order and its lines and event are one statement, after one read of the buyer and the
    products (`_create_as_read`); with nothing read first when this process has seen the buyer,
    the products and the tenant's settings lately (`_create_as_seen`)."""
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
    request = _OrderRequest(
        order_id=new_id("ord"),
        buyer_id=buyer_id,
        wanted=wanted,
        key=_clean_key(idempotency_key),
        request_hash=_request_hash(buyer_id, wanted, attributed_sharer_id),
        sharer_id=attributed_sharer_id,
        at=ctx.clock.now(),
    )
    try:
        if attributed_sharer_id is None:
            view = _create_as_seen(ctx, request)
            if view is not None:
                return view, False
        return _create_as_read(ctx, request)
    except IntegrityError:
        if request.key is None:
            raise
    # Lost a race on the idempotency key: the winner's order is the answer.
    with ctx.db.read() as tx:
        replay = _replay(tx, ctx.tenant_id, request.key, request.request_hash)
    if replay is None:
        raise Conflict("idempotency_key_in_use")
    return replay, True


@dataclass(frozen=True)
class _OrderRequest:
    order_id: str
    buyer_id: str
    wanted: Sequence[tuple[str, int]]  # (sku, quantity), in the order asked
    key: str | None
    request_hash: str
    sharer_id: str | None
    at: datetime


@dataclass(frozen=True)
class _ProductSeen:
    """A product as an order read it, with its member price at one tier (None: no tier, or no
    explicit price at it)."""

    product_id: str
    sku: str
    name: str
    price_fen: int
    ladder_role: str
    category: str | None
    active: bool
    member_price_fen: int | None
    version: int


# What orders and payments read lately, to write without reading first (see `_create_as_seen`
# and `_pay_as_created`): the buyers as last read or paid for, by (tenant, member); the
# products with their member price, by (tenant, sku, tier of the buyer).
_buyers_seen: Recent[tuple[str, str], Buyer] = Recent(20_000)
_products_seen: Recent[tuple[str, str, str | None], _ProductSeen] = Recent(5_000)


def _create_as_read(ctx: Ctx, request: _OrderRequest) -> tuple[dict[str, Any], bool]:
    """Read the buyer, its tier and the products, then write the order in one statement."""
    key = request.key
    with ctx.db.autocommit() as tx:
        found_rows = _order_context.all(
            tx,
            {
                "t_id": ctx.tenant_id,
                "m_id": request.buyer_id,
                "key": key,
                "skus": [sku for sku, _ in request.wanted],
            },
        )
        replay_id = found_rows[0].replay_id if found_rows else None
        if key is not None and (replay_id is not None or not found_rows):
            replay = _replay(tx, ctx.tenant_id, key, request.request_hash)
            if replay is not None:
                return replay, True
        if not found_rows:
            raise NotFound("member_not_found", id=request.buyer_id)
        sharer = request.sharer_id
        if sharer is not None:
            if sharer == request.buyer_id:
                raise InvalidInput("self_referral")
            require_member(tx, ctx.tenant_id, sharer)
        buyer = buyer_from_row(found_rows[0]._mapping)
        found: dict[str, _ProductSeen] = {}
        for r in found_rows:
            if r.product_id is not None:
                found[r.sku] = _ProductSeen(
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
        for sku, _ in request.wanted:
            if sku not in found:
                raise NotFound("product_not_found", sku=sku)
            if not found[sku].active:
                raise Conflict("product_inactive", sku=sku)
        order = _draft(ctx, request, buyer.tier_id, found, found_rows[0].discount_bp or 0)
        order.batch.flush(tx)
    _buyers_seen.put((ctx.tenant_id, buyer.id), buyer)
    for product in found.values():
        _products_seen.put((ctx.tenant_id, product.sku, buyer.tier_id), product)
    return _created(ctx, request, order, buyer), False


def _create_as_seen(ctx: Ctx, request: _OrderRequest) -> dict[str, Any] | None:
    """Write the order in one statement from the buyer, products and settings this process saw
    lately, checking in the statement (without locks) that the buyer's tier, each product and
    the settings (tier discounts included) are still as seen. A buyer not seen yet is taken to
    have no tier, as most buyers have none; the same check settles it. None if something is
    not known or has changed (or the buyer is not there): nothing is then written, and the
    order is made as read."""
    tenant_id = ctx.tenant_id
    settings = seen_settings.get(tenant_id)
    if settings is None:
        return None
    seen = _buyers_seen.get((tenant_id, request.buyer_id))
    tier_id = seen.tier_id if seen is not None else None
    found: dict[str, _ProductSeen] = {}
    for sku, _ in request.wanted:
        product = _products_seen.get((tenant_id, sku, tier_id))
        if product is None or not product.active:
            return None
        found[sku] = product
    with ctx.db.autocommit() as tx:
        discount_bp = 0
        if tier_id is not None:
            tier = next((t for t in cached_tiers(tx, settings) if t.id == tier_id), None)
            if tier is None:
                return None
            discount_bp = tier.discount_bp
        try:
            order = _draft(ctx, request, tier_id, found, discount_bp)
        except InvalidInput:
            return None  # too large at the prices seen: the prices as read decide
        batch = order.batch
        # The buyer as the statement finds it: its purchase facts may have moved since it was
        # seen (another process paid an order of it), and its payment starts from them.
        batch.check(
            members,
            {"tenant_id": tenant_id, "id": request.buyer_id},
            equal={"tier_id": tier_id},
            returning=BUYER_COLUMNS,
        )
        batch.check(tenant_settings, {"tenant_id": tenant_id}, equal={"version": settings.version})
        for product in found.values():
            batch.check(
                products,
                {"tenant_id": tenant_id, "id": product.product_id},
                equal={"version": product.version},
            )
        flushed = batch.flush(tx)
        if not flushed.applied:
            return None
    current = buyer_from_row(flushed.returned[0], prefix="")
    _buyers_seen.put((tenant_id, current.id), current)
    return _created(ctx, request, order, current)


@dataclass(frozen=True)
class _Draft:
    values: dict[str, Any]  # the order's row
    line_rows: list[dict[str, Any]]
    batch: WriteBatch  # the order, its lines and its event


def _draft(
    ctx: Ctx,
    request: _OrderRequest,
    tier_id: str | None,
    found: Mapping[str, _ProductSeen],
    discount_bp: int,
) -> _Draft:
    """The order's rows, priced at the buyer's tier (`tier_id`), in a batch."""
    order_id, now = request.order_id, request.at
    line_rows = []
    subtotal = total = 0
    for number, (sku, quantity) in enumerate(request.wanted, start=1):
        product = found[sku]
        unit = tier_price(
            product.price_fen,
            discount_bp=discount_bp,
            explicit_fen=product.member_price_fen if tier_id else None,
        )
        subtotal += product.price_fen * quantity
        total += unit * quantity
        line_rows.append(
            {
                "tenant_id": ctx.tenant_id,
                "id": new_id("ol"),
                "order_id": order_id,
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
    if total > MAX_AMOUNT_FEN:
        raise InvalidInput("order_total_too_large")
    values = {
        "tenant_id": ctx.tenant_id,
        "id": order_id,
        "buyer_id": request.buyer_id,
        "status": OrderStatus.CREATED.value,
        "subtotal_fen": subtotal,
        "discount_fen": subtotal - total,
        "total_fen": total,
        "paid_fen": 0,
        "refunded_fen": 0,
        "buyer_tier_id": tier_id,
        "attributed_sharer_id": request.sharer_id,
        "idempotency_key": request.key,
        "request_hash": request.request_hash,
        "created_at": now,
        "updated_at": now,
    }
    batch = WriteBatch()
    batch.insert(orders, [values])
    batch.insert(order_lines, line_rows)
    stage_events(
        batch,
        tenant_id=ctx.tenant_id,
        actor=ctx.actor,
        at=now,
        items=[
            Event(
                "OrderCreated",
                "order",
                order_id,
                {"buyer_id": request.buyer_id, "total_fen": total, "sharer_id": request.sharer_id},
            )
        ],
    )
    return _Draft(values, line_rows, batch)


def _created(ctx: Ctx, request: _OrderRequest, order: _Draft, buyer: Buyer) -> dict[str, Any]:
    """Remember a written order for its payment (`_pay_as_created`); its view."""
    summary = {k: order.values.get(k) for k in _SUMMARY_KEYS}
    views = [_line_view(r) for r in order.line_rows]
    _recent_orders.put(
        (ctx.tenant_id, request.order_id),
        _CreatedOrder(
            order=summary,
            lines=tuple(views),
            sale_lines=tuple(_sale_line(r) for r in order.line_rows),
            buyer=buyer,
        ),
    )
    return {**summary, "lines": [dict(v) for v in views]}


_SUMMARY_KEYS = (
    "id",
    "buyer_id",
    "status",
    "subtotal_fen",
    "discount_fen",
    "total_fen",
    "paid_fen",
    "refunded_fen",
    "attributed_sharer_id",
    "idempotency_key",
    "created_at",
    "paid_at",
    "shipped_at",
    "completed_at",
    "closed_at",
    "cancelled_at",
)


def _replay(tx: Connection, tenant_id: str, key: str, request_hash: str) -> dict[str, Any] | None:
    row = tx.execute(_replay_query, {"t_id": tenant_id, "key": key}).first()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise Conflict("idempotency_key_reused", key=key)
    return {
        **_summary(row),
        "lines": [_line_view(r._mapping) for r in _lines_of(tx, tenant_id, row.id)],
    }


def pay_order(
    ctx: Ctx, *, order_id: str, provider_txn_id: str, amount_fen: int
) -> tuple[dict[str, Any], bool]:
    """Record the provider's payment callback. Idempotent on the provider transaction id; the
    amount must equal the amount due. Returns (order, replayed).

    The common case is written in one statement that also checks what it read (see
    `_pay_in_one_statement`), with nothing read first when this process created the order
    moments ago (`_pay_as_created`); anything else, a lost race included, takes the locking
    way."""
    txn = (provider_txn_id or "").strip()
    if not txn or len(txn) > 120:
        raise InvalidInput("provider_txn_id_invalid")
    if not 0 <= amount_fen <= MAX_AMOUNT_FEN:
        raise InvalidInput("amount_invalid", field="amount_fen")
    now = ctx.clock.now()
    created = _recent_orders.take((ctx.tenant_id, order_id))
    settings = seen_settings.get(ctx.tenant_id)
    if created is not None and settings is not None:
        paid = _pay_as_created(ctx, created, settings, txn=txn, amount_fen=amount_fen, at=now)
        if paid is not None:
            return paid, False
    paid = _pay_in_one_statement(ctx, order_id=order_id, txn=txn, amount_fen=amount_fen, at=now)
    if paid is not None:
        return paid, False
    return _pay_with_locks(ctx, order_id=order_id, txn=txn, amount_fen=amount_fen, at=now)


@dataclass(frozen=True)
class _CreatedOrder:
    """An order as its creation wrote it, with the buyer as the creation read it (chain, tier
    and purchase facts)."""

    order: Mapping[str, Any]  # the summary keys
    lines: tuple[Mapping[str, Any], ...]  # the line views
    sale_lines: tuple[SaleLine, ...]
    buyer: Buyer


# The orders this process created and that have not been paid through it yet. A shop's payment
# callback follows its order within moments, mostly to the same process (the same client
# connection); paying from what the creation read, and from the settings this process last read
# (`seen_settings`), saves the payment its read. What may have changed since is checked by the
# payment's write: the order still unpaid (and locked), the buyer's facts and chain unchanged,
# the settings at the same version; if not, the payment reads afresh.
_recent_orders: Recent[tuple[str, str], _CreatedOrder] = Recent(2_048)


def _sale_line(line: Mapping[str, Any]) -> SaleLine:
    return SaleLine(
        line_id=line["id"],
        sku=line["sku"],
        category=line["category"],
        ladder_role=line["ladder_role"],
        quantity=line["quantity"],
        base_fen=line["line_total_fen"],
    )


# The order, its lines, its buyer and the tenant's settings, read without locks by a payment
# that then writes in one statement.
_payment_preview = Prepared(
    select(order_lines, *order_columns(), *buyer_columns(), *settings_columns())
    .select_from(
        order_lines.join(
            orders,
            (orders.c.tenant_id == order_lines.c.tenant_id)
            & (orders.c.id == order_lines.c.order_id),
        )
        .join(
            members,
            (members.c.tenant_id == orders.c.tenant_id) & (members.c.id == orders.c.buyer_id),
        )
        .join(tenant_settings, tenant_settings.c.tenant_id == order_lines.c.tenant_id)
    )
    .where(
        order_lines.c.tenant_id == bindparam("t_id"), order_lines.c.order_id == bindparam("o_id")
    )
    .order_by(order_lines.c.line_no)
)


def _pay_in_one_statement(
    ctx: Ctx, *, order_id: str, txn: str, amount_fen: int, at: datetime
) -> dict[str, Any] | None:
    """Pay with one read and one write and no lock held in between: the write checks that the
    order is still unpaid (locking it first, as the locking way does) and that the buyer's
    facts and chain are still those read, and writes nothing otherwise. Returns None when the
    payment needs the locking way: an order not payable as read (a replay, a wrong amount), a
    binding made by this payment, tiers to re-evaluate, or a write that found things changed."""
    with ctx.db.autocommit() as tx:
        line_rows = _payment_preview.all(tx, {"t_id": ctx.tenant_id, "o_id": order_id})
        if not line_rows:
            return None
        rows = [line._mapping for line in line_rows]
        head = rows[0]
        read = _CreatedOrder(
            order={k: head[ORDER_PREFIX + k] for k in _SUMMARY_KEYS},
            lines=tuple(_line_view(row) for row in rows),
            sale_lines=tuple(_sale_line(row) for row in rows),
            buyer=buyer_from_row(head),
        )
        settings = settings_from_row(head, SETTINGS_PREFIX)
        seen_settings.put(settings)
        return _write_payment(
            tx, ctx, read, settings, txn=txn, amount_fen=amount_fen, at=at, as_of_read=True
        )


def _pay_as_created(
    ctx: Ctx,
    created: _CreatedOrder,
    settings: TenantSettings,
    *,
    txn: str,
    amount_fen: int,
    at: datetime,
) -> dict[str, Any] | None:
    """Pay in one statement and nothing else, from what the order's creation read and the
    settings as last read. Returns None as `_pay_in_one_statement` does, and also when the
    buyer or the settings have changed since."""
    with ctx.db.autocommit() as tx:
        return _write_payment(
            tx, ctx, created, settings, txn=txn, amount_fen=amount_fen, at=at, as_of_read=False
        )


def _write_payment(
    tx: Connection,
    ctx: Ctx,
    read: _CreatedOrder,
    settings: TenantSettings,
    *,
    txn: str,
    amount_fen: int,
    at: datetime,
    as_of_read: bool,
) -> dict[str, Any] | None:
    """The write of a payment in one statement, from `read` and `settings`: read just now on
    the same connection (`as_of_read`), or earlier, when the settings too must be unchanged."""
    order, buyer = read.order, read.buyer
    order_id = order["id"]
    if order["status"] != OrderStatus.CREATED.value or order["total_fen"] != amount_fen:
        return None
    if _binds_on_payment(settings, buyer):
        return None
    tier_list = cached_tiers(tx, settings)
    if any(t.has_criteria for t in tier_list):
        return None
    key = {"tenant_id": ctx.tenant_id, "id": order_id}
    batch = WriteBatch()
    batch.require(orders, key, equal={"status": OrderStatus.CREATED.value, "total_fen": amount_fen})
    if not as_of_read:
        batch.check(
            tenant_settings, {"tenant_id": ctx.tenant_id}, equal={"version": settings.version}
        )
    paid_values = {
        "status": OrderStatus.PAID.value,
        "paid_fen": amount_fen,
        "paid_at": at,
        "updated_at": at,
    }
    batch.update(orders, key, values=paid_values)
    payment = _Payment(order_id, txn, amount_fen, read.sale_lines, settings, tier_list, at)
    staged = _stage_payment(tx, batch, ctx, payment, buyer, guard_buyer=True)
    _stage_paid_event(batch, ctx, payment, staged)
    if not _flush_payment(tx, batch, txn):
        return None
    _buyers_seen.put((ctx.tenant_id, buyer.id), staged.buyer)
    return _paid_view({**order, **paid_values}, read.lines, staged.awards)


def _pay_with_locks(
    ctx: Ctx, *, order_id: str, txn: str, amount_fen: int, at: datetime
) -> tuple[dict[str, Any], bool]:
    with ctx.db.transaction() as tx:
        # The guarded update is the lock: of many identical callbacks one flips the status,
        # the others wait for it and then find the payment it recorded.
        paid = _mark_paid.first(
            tx, {"t_id": ctx.tenant_id, "o_id": order_id, "amount": amount_fen, "at": at}
        )
        if paid is None:
            return _explain_unpaid(tx, ctx.tenant_id, order_id, txn, amount_fen), True
        line_rows = _payment_context.all(
            tx, {"t_id": ctx.tenant_id, "o_id": order_id, "m_id": paid.buyer_id}
        )
        settings = settings_from_row(line_rows[0]._mapping, SETTINGS_PREFIX)
        seen_settings.put(settings)
        buyer = buyer_from_row(line_rows[0]._mapping)
        if _binds_on_payment(settings, buyer):
            buyer = _bind_on_first_payment(tx, settings, buyer, ctx.actor, at)
        tier_list = cached_tiers(tx, settings)
        batch = WriteBatch()
        sale_lines = [_sale_line(line._mapping) for line in line_rows]
        payment = _Payment(order_id, txn, amount_fen, sale_lines, settings, tier_list, at)
        staged = _stage_payment(tx, batch, ctx, payment, buyer, guard_buyer=False)
        staged.new_tier = apply_upgrade(
            tx,
            tenant_id=ctx.tenant_id,
            member=staged.buyer,
            tier_list=tier_list,
            actor=ctx.actor,
            at=at,
        )
        _stage_paid_event(batch, ctx, payment, staged)
        _flush_payment(tx, batch, txn)
        _buyers_seen.take((ctx.tenant_id, buyer.id))  # its tier may have changed
        lines = [_line_view(line._mapping) for line in line_rows]
        return _paid_view(_summary(paid), lines, staged.awards), False


def _binds_on_payment(settings: TenantSettings, buyer: Buyer) -> bool:
    """Under the `first_paid_order` trigger, the first payment of an unbound buyer binds it."""
    return (
        buyer.lifetime_order_count == 0
        and buyer.referrer_id is None
        and settings.binding.trigger == "first_paid_order"
    )


@dataclass(frozen=True)
class _Payment:
    """A payment callback and what was read for it."""

    order_id: str
    txn: str
    amount_fen: int
    lines: Sequence[SaleLine]
    settings: TenantSettings
    tier_list: list[TierSpec]
    at: datetime


@dataclass
class _StagedPayment:
    buyer: Buyer  # as the payment leaves it
    first_purchase: bool
    awards: list[Award]
    new_tier: str | None = None


def _stage_payment(
    tx: Connection,
    batch: WriteBatch,
    ctx: Ctx,
    payment: _Payment,
    buyer: Buyer,
    *,
    guard_buyer: bool,
) -> _StagedPayment:
    """Everything a payment writes besides the order's own row and its event: the payment,
    the buyer's purchase facts, the referrer's count of buyers, the commission lines and the
    journal. With `guard_buyer` the buyer's facts are written only if they are still those
    read (the batch's guard)."""
    amount_fen, at, currency = payment.amount_fen, payment.at, payment.settings.currency
    batch.insert(
        payments,
        [
            {
                "tenant_id": ctx.tenant_id,
                "id": new_id("pay"),
                "order_id": payment.order_id,
                "provider_txn_id": payment.txn,
                "amount_fen": amount_fen,
                "created_at": at,
            }
        ],
    )
    paid_buyer = stage_purchase(
        batch,
        tenant_id=ctx.tenant_id,
        buyer=buyer,
        amount_fen=amount_fen,
        at=at,
        guarded=guard_buyer,
    )
    first_purchase = paid_buyer.lifetime_order_count == 1
    if first_purchase and paid_buyer.referrer_id is not None:
        stage_referred_buyer(batch, tenant_id=ctx.tenant_id, referrer_id=paid_buyer.referrer_id)
    awards, accrual = accrue_commissions(
        tx,
        batch,
        settings=payment.settings,
        tier_list=payment.tier_list,
        order_id=payment.order_id,
        buyer=paid_buyer,
        lines=payment.lines,
        at=at,
    )
    entries = [] if accrual is None else [accrual]
    if amount_fen > 0:
        entries.insert(
            0,
            JournalEntry(
                kind="payment_received",
                ref_type="order",
                ref_id=payment.order_id,
                items=[
                    Posting(system_account(Purpose.PAYMENT_CLEARING), -amount_fen, currency),
                    Posting(brand_account(Purpose.SALES), amount_fen, currency),
                ],
            ),
        )
    stage_entries(batch, tenant_id=ctx.tenant_id, at=at, entries=entries)
    return _StagedPayment(paid_buyer, first_purchase, awards)


def _stage_paid_event(
    batch: WriteBatch, ctx: Ctx, payment: _Payment, staged: _StagedPayment
) -> None:
    stage_events(
        batch,
        tenant_id=ctx.tenant_id,
        actor=ctx.actor,
        at=payment.at,
        items=[
            Event(
                "OrderPaid",
                "order",
                payment.order_id,
                {
                    "buyer_id": staged.buyer.id,
                    "amount_fen": payment.amount_fen,
                    "provider_txn_id": payment.txn,
                    "first_purchase": staged.first_purchase,
                    "commission_fen": sum(a.amount_fen for a in staged.awards),
                    "commission_lines": len(staged.awards),
                    "tier_upgraded_to": staged.new_tier,
                },
            )
        ],
    )


def _flush_payment(tx: Connection, batch: WriteBatch, txn: str) -> bool:
    try:
        return batch.flush(tx).applied
    except IntegrityError as exc:
        if violated_constraint(exc) != "uq_payments_tenant_id_provider_txn_id":
            raise
        # Another order already holds this provider transaction id; nothing is kept.
        raise Conflict("payment_txn_reused", provider_txn_id=txn) from None


def _paid_view(
    order: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], awards: Sequence[Award]
) -> dict[str, Any]:
    return {
        **{k: order[k] for k in _SUMMARY_KEYS},
        "lines": [dict(line) for line in lines],
        "commissions": [
            {
                "beneficiary_id": a.beneficiary_id,
                "level": a.level,
                "kind": a.kind.value,
                "amount_fen": a.amount_fen,
                "status": "pending",
            }
            for a in awards
        ],
    }


def _bind_on_first_payment(
    tx: Connection, settings: TenantSettings, buyer: Buyer, actor: str, at: datetime
) -> Buyer:
    """Under the `first_paid_order` trigger the binding happens now, so this very order
    already pays the new referrer's chain."""
    lock_tree(tx, settings.tenant_id)
    referrer = bind_by_policy(
        tx,
        settings=settings,
        member_id=buyer.id,
        phone=buyer.phone,
        external_id=buyer.external_id,
        actor=actor,
        at=at,
    )
    if referrer is None:
        return buyer
    bound = require_member(tx, settings.tenant_id, buyer.id)
    return replace(
        buyer,
        referrer_id=bound.referrer_id,
        ancestor_2=bound.ancestor_2,
        ancestor_3=bound.ancestor_3,
    )


def _payment_by_txn(tx: Connection, tenant_id: str, txn: str) -> Any:
    return tx.execute(
        select(payments.c.order_id, payments.c.amount_fen).where(
            payments.c.tenant_id == tenant_id, payments.c.provider_txn_id == txn
        )
    ).first()


def _replayed_payment(
    tx: Connection, tenant_id: str, seen: Row[Any], order_id: str, amount_fen: int
) -> dict[str, Any]:
    if seen.order_id != order_id:
        raise Conflict("payment_txn_reused", order_id=seen.order_id)
    if seen.amount_fen != amount_fen:
        # A retry repeats the callback exactly; another amount is a forged or garbled one.
        raise Conflict(
            "payment_replay_amount_mismatch", recorded_fen=seen.amount_fen, got_fen=amount_fen
        )
    return _full_view(tx, tenant_id, _order_row(tx, tenant_id, order_id))


def _explain_unpaid(
    tx: Connection, tenant_id: str, order_id: str, txn: str, amount_fen: int
) -> dict[str, Any]:
    """The guarded update matched nothing: say why, or replay a payment that won the race."""
    row = _order_row(tx, tenant_id, order_id)
    seen = _payment_by_txn(tx, tenant_id, txn)
    if seen is not None:
        return _replayed_payment(tx, tenant_id, seen, order_id, amount_fen)
    if row.status != OrderStatus.CREATED.value:
        if row.paid_at is not None:
            raise Conflict("order_already_paid", id=order_id)
        raise Conflict("order_transition_invalid", status=row.status, action="pay")
    raise InvalidInput("payment_amount_mismatch", expected_fen=row.total_fen, got_fen=amount_fen)


_TIMESTAMP_FOR = {
    OrderAction.SHIP: "shipped_at",
    OrderAction.COMPLETE: "completed_at",
    OrderAction.CANCEL: "cancelled_at",
}
_EVENT_FOR = {
    OrderAction.SHIP: "OrderShipped",
    OrderAction.COMPLETE: "OrderCompleted",
    OrderAction.CANCEL: "OrderCancelled",
}


def _transition(ctx: Ctx, order_id: str, action: OrderAction) -> dict[str, Any]:
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        row = _order_row(tx, ctx.tenant_id, order_id, for_update=True)
        target = next_status(OrderStatus(row.status), action)
        tx.execute(
            update(orders)
            .where(orders.c.tenant_id == ctx.tenant_id, orders.c.id == order_id)
            .values({"status": target.value, _TIMESTAMP_FOR[action]: now, "updated_at": now})
        )
        record_events(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[Event(_EVENT_FOR[action], "order", order_id, {"from": row.status})],
        )
        return _full_view(tx, ctx.tenant_id, _order_row(tx, ctx.tenant_id, order_id))


def ship_order(ctx: Ctx, *, order_id: str) -> dict[str, Any]:
    return _transition(ctx, order_id, OrderAction.SHIP)


def complete_order(ctx: Ctx, *, order_id: str) -> dict[str, Any]:
    """The buyer confirmed receipt; the after-sales window starts now."""
    return _transition(ctx, order_id, OrderAction.COMPLETE)


def cancel_order(ctx: Ctx, *, order_id: str) -> dict[str, Any]:
    return _transition(ctx, order_id, OrderAction.CANCEL)


_refund_line = (
    update(order_lines)
    .where(order_lines.c.tenant_id == bindparam("t_id"), order_lines.c.id == bindparam("l_id"))
    .values(refunded_fen=order_lines.c.refunded_fen + bindparam("part"))
)


def refund_order(
    ctx: Ctx, *, order_id: str, amount_fen: int, reason: str, idempotency_key: str | None = None
) -> tuple[dict[str, Any], bool]:
    """Refund part or all of a paid order, before or after close. Commission follows: pending
    lines are cancelled, released lines reversed (debt if the wallet cannot cover it)."""
    if not 1 <= amount_fen <= MAX_AMOUNT_FEN:
        raise InvalidInput("amount_invalid", field="amount_fen")
    clean_reason = " ".join(reason.split())
    if not clean_reason or len(clean_reason) > 500:
        raise InvalidInput("refund_reason_required")
    key = _clean_key(idempotency_key)
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        row = _order_row(tx, ctx.tenant_id, order_id, for_update=True)
        if key is not None:
            earlier = tx.execute(
                select(refunds).where(
                    refunds.c.tenant_id == ctx.tenant_id,
                    refunds.c.order_id == order_id,
                    refunds.c.idempotency_key == key,
                )
            ).first()
            if earlier is not None:
                if earlier.amount_fen != amount_fen:
                    raise Conflict("idempotency_key_reused", key=key)
                return _refund_view(earlier), True
        status = OrderStatus(row.status)
        if status not in REFUNDABLE:
            raise Conflict("order_transition_invalid", status=row.status, action="refund")
        line_rows = _lines_of(tx, ctx.tenant_id, order_id)
        parts = allocate_refund(
            amount_fen,
            [LineAmounts(r.id, r.line_total_fen, r.refunded_fen) for r in line_rows],
        )
        tx.execute(
            _refund_line,
            [
                {"t_id": ctx.tenant_id, "l_id": line_id, "part": part}
                for line_id, part in parts.items()
            ],
        )
        refunded_total = row.refunded_fen + amount_fen
        new_status = status_after_refund(status, paid_fen=row.paid_fen, refunded_fen=refunded_total)
        tx.execute(
            update(orders)
            .where(orders.c.tenant_id == ctx.tenant_id, orders.c.id == order_id)
            .values(refunded_fen=refunded_total, status=new_status.value, updated_at=now)
        )
        settings = load_settings(tx, ctx.tenant_id)
        refund_id = new_id("rfd")
        post_transaction(
            tx,
            tenant_id=ctx.tenant_id,
            kind="payment_refunded",
            ref_type="refund",
            ref_id=refund_id,
            at=now,
            items=[
                Posting(system_account(Purpose.PAYMENT_CLEARING), amount_fen, settings.currency),
                Posting(brand_account(Purpose.SALES), -amount_fen, settings.currency),
            ],
        )
        adjusted = adjust_for_refund(
            tx,
            settings=settings,
            order_id=order_id,
            remaining_base={
                r.id: r.line_total_fen - r.refunded_fen - parts.get(r.id, 0) for r in line_rows
            },
            refund_id=refund_id,
            at=now,
        )
        fully = refunded_total >= row.paid_fen
        tx.execute(
            update(members)
            .where(members.c.tenant_id == ctx.tenant_id, members.c.id == row.buyer_id)
            .values(
                paid_total_fen=members.c.paid_total_fen - amount_fen,
                paid_order_count=members.c.paid_order_count - (1 if fully else 0),
                updated_at=now,
            )
        )
        phase = "after_close" if status is OrderStatus.CLOSED else "before_close"
        tx.execute(
            insert(refunds).values(
                tenant_id=ctx.tenant_id,
                id=refund_id,
                order_id=order_id,
                amount_fen=amount_fen,
                reason=clean_reason,
                phase=phase,
                idempotency_key=key,
                commission_cancelled_fen=adjusted["cancelled_fen"],
                commission_reversed_fen=adjusted["reversed_fen"],
                actor=ctx.actor,
                created_at=now,
            )
        )
        record_events(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[
                Event(
                    "OrderRefunded",
                    "order",
                    order_id,
                    {"refund_id": refund_id, "amount_fen": amount_fen, "phase": phase, **adjusted},
                )
            ],
        )
        created = tx.execute(
            select(refunds).where(refunds.c.tenant_id == ctx.tenant_id, refunds.c.id == refund_id)
        ).one()
        return _refund_view(created), False


def get_order(ctx: Ctx, *, order_id: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        return _full_view(tx, ctx.tenant_id, _order_row(tx, ctx.tenant_id, order_id))


def list_orders(
    ctx: Ctx,
    *,
    buyer_id: str | None = None,
    status: str | None = None,
    idempotency_key: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Orders oldest first; `idempotency_key` finds an order by the key its client sent (often
    the order number of the shop that placed it)."""
    if not 1 <= limit <= 500:
        raise InvalidInput("limit_out_of_range", low=1, high=500)
    if status is not None and status not in {s.value for s in OrderStatus}:
        raise InvalidInput("order_status_invalid", status=status)
    key = _clean_key(idempotency_key)
    with ctx.db.read() as tx:
        query = select(orders).where(orders.c.tenant_id == ctx.tenant_id)
        if buyer_id is not None:
            query = query.where(orders.c.buyer_id == buyer_id)
        if status is not None:
            query = query.where(orders.c.status == status)
        if key is not None:
            query = query.where(orders.c.idempotency_key == key)
        if after is not None:
            query = query.where(orders.c.id > after)
        rows = tx.execute(query.order_by(orders.c.id).limit(limit + 1)).all()
    page = rows[:limit]
    return {
        "items": [_summary(r) for r in page],
        "next_after": page[-1].id if len(rows) > limit else None,
    }
