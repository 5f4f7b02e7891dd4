"""Stock orders awaiting payment (进货单): an agent asks for units at its tier's wholesale
prices and sees what to pay; the order becomes a paid stock order when the payment provider
says it was paid, or when an operator confirms an offline payment (a bank transfer), in the
same transaction that marks the request paid. The request's row is locked before the agent's
(`Lock.STOCK_ORDER_REQUESTS`), so a payment and a cancellation go one after the other."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from shequn.catalog.tables import product_tier_prices, products
from shequn.context import Ctx
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import record_event
from shequn.growth.stock.rules import (
    PAYMENT_WINDOW,
    REQUEST_STATUSES,
    RequestStatus,
    check_awaiting_payment,
    check_lines,
    effective_status,
    offline_txn_id,
    payment_reference,
)
from shequn.growth.stock.service import (
    clean_txn_id,
    place_stock_order_in,
    price_and_check,
    stock_order_by_txn,
)
from shequn.growth.stock.tables import stock_order_requests
from shequn.ids import checked_cursor, new_id
from shequn.locks import Lock, lock_rows
from shequn.members.repo import require_member
from shequn.members.tables import members

MAX_PAGE = 200
_COLUMNS = tuple(c.name for c in stock_order_requests.c if c.name != "tenant_id")


def request_view(row: Row[Any] | Mapping[str, Any], now: datetime) -> dict[str, Any]:
    data = dict(row._mapping) if isinstance(row, Row) else dict(row)
    return {
        "id": data["id"],
        "member_id": data["member_id"],
        "tier_id": data["tier_id"],
        "lines": [
            {
                "sku": line["sku"],
                "product_id": line["product_id"],
                "name": line["name"],
                "quantity": int(line["quantity"]),
                "unit_cost_fen": int(line["unit_cost_fen"]),
            }
            for line in data["lines"]
        ],
        "amount_fen": int(data["amount_fen"]),
        "status": effective_status(data["status"], data["expires_at"], now),
        "payment_reference": payment_reference(data["id"]),
        "expires_at": data["expires_at"],
        "provider_txn_id": data["provider_txn_id"],
        "stock_order_id": data["stock_order_id"],
        "paid_by": data["paid_by"],
        "created_at": data["created_at"],
        "paid_at": data["paid_at"],
        "cancelled_at": data["cancelled_at"],
    }


def _read(tx: Connection, tenant_id: str, request_id: str) -> Row[Any] | None:
    r = stock_order_requests.c
    return tx.execute(
        select(stock_order_requests).where(r.tenant_id == tenant_id, r.id == request_id)
    ).first()


def _locked(tx: Connection, tenant_id: str, request_id: str) -> Any:
    found = lock_rows(
        tx,
        Lock.STOCK_ORDER_REQUESTS,
        stock_order_requests,
        tenant_id,
        [request_id],
        columns=_COLUMNS,
    )
    if not found:
        raise NotFound("stock_request_not_found", id=request_id)
    return found[0]


def create_stock_order_request(
    ctx: Ctx, *, member_id: str, lines: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """An agent's stock order awaiting payment, at its tier's wholesale prices now (kept for
    the payment window): refused, creating nothing, when it would be refused as a paid order
    (over the tenant's cover limit, under its first order minimum, no wholesale price)."""
    wanted = check_lines([(line["sku"], line["quantity"]) for line in lines])
    now = ctx.clock.now()
    request_id = new_id("sor")
    with ctx.db.transaction() as tx:
        agent = require_member(tx, ctx.tenant_id, member_id)
        if agent.anonymised_at is not None:
            raise Conflict("member_anonymised", id=member_id)
        quote = price_and_check(tx, tenant_id=ctx.tenant_id, agent=agent, wanted=wanted, now=now)
        row = {
            "tenant_id": ctx.tenant_id,
            "id": request_id,
            "member_id": member_id,
            "tier_id": agent.tier_id,
            "lines": [
                {
                    "sku": line["sku"],
                    "product_id": line["product_id"],
                    "name": line["name"],
                    "quantity": line["quantity"],
                    "unit_cost_fen": line["unit_cost_fen"],
                }
                for line in quote["lines"]
            ],
            "amount_fen": quote["amount_fen"],
            "status": RequestStatus.AWAITING_PAYMENT,
            "expires_at": now + PAYMENT_WINDOW,
            "provider_txn_id": None,
            "stock_order_id": None,
            "paid_by": None,
            "created_at": now,
            "paid_at": None,
            "cancelled_at": None,
        }
        tx.execute(insert(stock_order_requests).values(row))
        record_event(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            type="StockOrderRequested",
            subject_type="member",
            subject_id=member_id,
            payload={"stock_order_request_id": request_id, "amount_fen": quote["amount_fen"]},
        )
    return request_view(row, now)


def _pay_in(
    tx: Connection,
    *,
    tenant_id: str,
    actor: str,
    now: datetime,
    request_id: str,
    txn: str,
    amount_fen: int,
) -> tuple[dict[str, Any], bool]:
    row = _locked(tx, tenant_id, request_id)
    if row.status == RequestStatus.PAID and row.provider_txn_id == txn:
        if row.amount_fen != amount_fen:
            raise InvalidInput(
                "stock_amount_mismatch", expected_fen=int(row.amount_fen), got_fen=amount_fen
            )
        return request_view(row._mapping, now), True
    check_awaiting_payment(row.status, row.expires_at, now)
    if amount_fen != row.amount_fen:
        raise InvalidInput(
            "stock_amount_mismatch", expected_fen=int(row.amount_fen), got_fen=amount_fen
        )
    if stock_order_by_txn(tx, tenant_id, txn) is not None:
        raise Conflict("payment_txn_reused", provider_txn_id=txn)
    order, _ = place_stock_order_in(
        tx,
        tenant_id=tenant_id,
        actor=actor,
        now=now,
        member_id=row.member_id,
        lines=row.lines,
        provider_txn_id=txn,
        amount_fen=amount_fen,
        quoted={line["sku"]: int(line["unit_cost_fen"]) for line in row.lines},
    )
    r = stock_order_requests.c
    # The row is locked above: this update waits for nobody.
    tx.execute(
        update(stock_order_requests)
        .where(r.tenant_id == tenant_id, r.id == request_id)
        .values(
            status=RequestStatus.PAID,
            provider_txn_id=txn,
            stock_order_id=order["id"],
            paid_by=actor[:120],
            paid_at=now,
        )
    )
    record_event(
        tx,
        tenant_id=tenant_id,
        actor=actor,
        at=now,
        type="StockOrderRequestPaid",
        subject_type="member",
        subject_id=row.member_id,
        payload={
            "stock_order_request_id": request_id,
            "stock_order_id": order["id"],
            "amount_fen": amount_fen,
        },
    )
    fresh = _read(tx, tenant_id, request_id)
    assert fresh is not None
    return request_view(fresh, now), False


def pay_stock_order_request(
    ctx: Ctx, *, request_id: str, provider_txn_id: str, amount_fen: int
) -> tuple[dict[str, Any], bool]:
    """The payment of a stock order request: it becomes a paid stock order (its cover checked
    again, at the prices it was asked for) in the transaction that marks it paid. The amount
    must be the request's; the same payment again changes nothing. Returns (request,
    replayed)."""
    txn = clean_txn_id(provider_txn_id)
    now = ctx.clock.now()
    try:
        with ctx.db.transaction() as tx:
            return _pay_in(
                tx,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                now=now,
                request_id=request_id,
                txn=txn,
                amount_fen=amount_fen,
            )
    except IntegrityError:
        pass  # another stock order took this transaction id at the same moment
    with ctx.db.read() as tx:
        row = _read(tx, ctx.tenant_id, request_id)
    if row is not None and row.status == RequestStatus.PAID and row.provider_txn_id == txn:
        return request_view(row, now), True
    raise Conflict("payment_txn_reused", provider_txn_id=txn)


def confirm_offline_payment(
    ctx: Ctx, *, request_id: str, reference: str, amount_fen: int
) -> tuple[dict[str, Any], bool]:
    """An operator's confirmation that a request was paid outside any payment provider (a
    bank transfer with its reference), for the amount received."""
    return pay_stock_order_request(
        ctx,
        request_id=request_id,
        provider_txn_id=offline_txn_id(reference),
        amount_fen=amount_fen,
    )


def cancel_stock_order_request(
    ctx: Ctx, *, request_id: str, member_id: str | None = None
) -> dict[str, Any]:
    """Cancel a request still awaiting payment (`member_id`: only the agent's own)."""
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        row = _locked(tx, ctx.tenant_id, request_id)
        if member_id is not None and row.member_id != member_id:
            raise NotFound("stock_request_not_found", id=request_id)
        check_awaiting_payment(row.status, row.expires_at, now)
        r = stock_order_requests.c
        tx.execute(
            update(stock_order_requests)
            .where(r.tenant_id == ctx.tenant_id, r.id == request_id)
            .values(status=RequestStatus.CANCELLED, cancelled_at=now)
        )
        record_event(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            type="StockOrderRequestCancelled",
            subject_type="member",
            subject_id=row.member_id,
            payload={"stock_order_request_id": request_id},
        )
        fresh = _read(tx, ctx.tenant_id, request_id)
    assert fresh is not None
    return request_view(fresh, now)


def get_stock_order_request(
    ctx: Ctx, *, request_id: str, member_id: str | None = None
) -> dict[str, Any]:
    """One request (`member_id`: only if it is that agent's)."""
    with ctx.db.read() as tx:
        row = _read(tx, ctx.tenant_id, request_id)
    if row is None or (member_id is not None and row.member_id != member_id):
        raise NotFound("stock_request_not_found", id=request_id)
    return request_view(row, ctx.clock.now())


def list_stock_order_requests(
    ctx: Ctx,
    *,
    member_id: str | None = None,
    status: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Requests in id order (oldest first), of one agent or one status (a request awaiting
    payment past its window counts as expired), a page at a time."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit_out_of_range", low=1, high=MAX_PAGE)
    if status is not None and status not in REQUEST_STATUSES:
        raise InvalidInput("stock_request_status_invalid", field="status")
    after = checked_cursor(after, "sor")
    now = ctx.clock.now()
    r = stock_order_requests.c
    query = select(stock_order_requests).where(r.tenant_id == ctx.tenant_id)
    if member_id is not None:
        query = query.where(r.member_id == member_id)
    if status == RequestStatus.AWAITING_PAYMENT:
        query = query.where(r.status == status, r.expires_at > now)
    elif status == RequestStatus.EXPIRED:
        query = query.where(
            or_(
                r.status == status,
                and_(r.status == RequestStatus.AWAITING_PAYMENT, r.expires_at <= now),
            )
        )
    elif status is not None:
        query = query.where(r.status == status)
    if after is not None:
        query = query.where(r.id > after)
    with ctx.db.read() as tx:
        rows = tx.execute(query.order_by(r.id).limit(limit + 1)).all()
    items = [request_view(row, now) for row in rows[:limit]]
    return {"items": items, "next_after": items[-1]["id"] if len(rows) > limit else None}


def orderable_products(ctx: Ctx, *, member_id: str) -> dict[str, Any]:
    """What the agent may order as stock: the active products with a wholesale price at its
    tier, by SKU (none when it has no tier)."""
    with ctx.db.read() as tx:
        agent = require_member(tx, ctx.tenant_id, member_id)
        if agent.tier_id is None:
            return {"tier_id": None, "products": []}
        p, tp = products.c, product_tier_prices.c
        rows = tx.execute(
            select(p.sku, p.name, tp.wholesale_price_fen)
            .join(
                product_tier_prices,
                (tp.tenant_id == p.tenant_id) & (tp.product_id == p.id),
            )
            .where(
                p.tenant_id == ctx.tenant_id,
                p.active.is_(True),
                tp.tier_id == agent.tier_id,
                tp.wholesale_price_fen.is_not(None),
            )
            .order_by(p.sku)
        ).all()
    return {
        "tier_id": agent.tier_id,
        "products": [
            {"sku": r.sku, "name": r.name, "unit_cost_fen": int(r.wholesale_price_fen)}
            for r in rows
        ],
    }


def agent_names(ctx: Ctx, *, member_ids: Sequence[str]) -> dict[str, str]:
    """The names of the agents of a page of requests, by member id."""
    wanted = sorted(set(member_ids))
    if not wanted:
        return {}
    m = members.c
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(m.id, m.name).where(m.tenant_id == ctx.tenant_id, m.id.in_(wanted))
        ).all()
    return {r.id: r.name for r in rows}
