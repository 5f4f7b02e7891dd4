"""How orders read: their rows as the API shows them, and the reads of orders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select

from shequn.context import Ctx
from shequn.distribution.queries import order_commissions
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.ids import checked_cursor
from shequn.orders.rules import OrderStatus
from shequn.orders.tables import order_lines, orders, payments, refunds

SUMMARY_KEYS = (
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

LINE_KEYS = (
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


def clean_key(key: str | None, code: str = "idempotency_key_invalid") -> str | None:
    """An idempotency key as stored: trimmed, 1 to 80 characters."""
    if key is None:
        return None
    clean = key.strip()
    if not clean or len(clean) > 80:
        raise InvalidInput(code)
    return clean


def order_row(
    tx: Connection, tenant_id: str, order_id: str, *, for_update: bool = False
) -> Row[Any]:
    query = select(orders).where(orders.c.tenant_id == tenant_id, orders.c.id == order_id)
    if for_update:
        query = query.with_for_update()
    row = tx.execute(query).first()
    if row is None:
        raise NotFound("order_not_found", id=order_id)
    return row


_lines_query = (
    select(order_lines)
    .where(
        order_lines.c.tenant_id == bindparam("t_id"), order_lines.c.order_id == bindparam("o_id")
    )
    .order_by(order_lines.c.line_no)
)


def lines_of(tx: Connection, tenant_id: str, order_id: str) -> list[Row[Any]]:
    return list(tx.execute(_lines_query, {"t_id": tenant_id, "o_id": order_id}).all())


def summary(row: Mapping[str, Any] | Row[Any]) -> dict[str, Any]:
    data = row if isinstance(row, Mapping) else row._mapping
    return {k: data[k] for k in SUMMARY_KEYS}


def line_view(line: Mapping[Any, Any]) -> dict[str, Any]:
    return {k: line[k] for k in LINE_KEYS}


def refund_view(r: Row[Any]) -> dict[str, Any]:
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


def full_view(tx: Connection, tenant_id: str, row: Row[Any]) -> dict[str, Any]:
    """The order with its lines, payment, refunds and commission lines."""
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
        **summary(row),
        "lines": [line_view(line._mapping) for line in lines_of(tx, tenant_id, row.id)],
        "payment": dict(payment._mapping) if payment else None,
        "refunds": [refund_view(r) for r in refund_rows],
        "commissions": order_commissions(tx, tenant_id=tenant_id, order_id=row.id),
    }


PAID_COMMISSION_KEYS = ("beneficiary_id", "level", "kind", "amount_fen", "status")


def paid_view(order: Mapping[str, Any]) -> dict[str, Any]:
    """An order (`full_view`) as a payment answers it, however the payment went: its summary,
    its lines, and who each commission line pays, at which level, how much, in which state;
    the lines in the order the payment made them (their ids are time-ordered)."""
    made = sorted(order["commissions"], key=lambda c: str(c["id"]))
    return {
        **{k: order[k] for k in SUMMARY_KEYS},
        "lines": order["lines"],
        "commissions": [{k: c[k] for k in PAID_COMMISSION_KEYS} for c in made],
    }


_replay_query = select(orders).where(
    orders.c.tenant_id == bindparam("t_id"), orders.c.idempotency_key == bindparam("key")
)


def replay(tx: Connection, tenant_id: str, key: str, request_hash: str) -> dict[str, Any] | None:
    """The order an earlier request with the same idempotency key made (refused if that
    request asked for something else)."""
    row = tx.execute(_replay_query, {"t_id": tenant_id, "key": key}).first()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise Conflict("idempotency_key_reused", key=key)
    return {
        **summary(row),
        "lines": [line_view(r._mapping) for r in lines_of(tx, tenant_id, row.id)],
    }


def get_order(ctx: Ctx, *, order_id: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        return full_view(tx, ctx.tenant_id, order_row(tx, ctx.tenant_id, order_id))


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
    key = clean_key(idempotency_key)
    after = checked_cursor(after, "ord")
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
        "items": [summary(r) for r in page],
        "next_after": page[-1].id if len(rows) > limit else None,
    }
