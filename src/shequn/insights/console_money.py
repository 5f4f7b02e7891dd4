"""The console's money reads: commission lines of the whole tenant, members in debt, and the
explanation of each commission line (for the portal and the console alike)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, desc, select

from shequn.context import Ctx
from shequn.distribution.tables import COMMISSION_STATUSES, commission_lines
from shequn.errors import InvalidInput
from shequn.events.tables import events
from shequn.ids import checked_cursor
from shequn.ledger.rules import Purpose
from shequn.ledger.tables import accounts
from shequn.members.tables import members
from shequn.orders.tables import order_lines, orders

# The states a commission line can be in, for a page's filter.
LINE_STATUSES: tuple[str, ...] = COMMISSION_STATUSES


def _net(table: Any = commission_lines) -> Any:
    return table.c.amount_fen - table.c.cancelled_fen - table.c.reversed_fen


def commission_page(
    ctx: Ctx,
    *,
    status: str | None = None,
    beneficiary_id: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Commission lines newest first, each with who earns it, on which order and product, from
    whose purchase: what a person needs to see why the line exists."""
    if not 1 <= limit <= 200:
        raise InvalidInput("limit_out_of_range", low=1, high=200)
    if status is not None and status not in COMMISSION_STATUSES:
        raise InvalidInput("commission_status_invalid", status=status, field="status")
    after = checked_cursor(after, "com")
    t = ctx.tenant_id
    cl = commission_lines
    earner = members.alias("earner")
    buyer = members.alias("buyer")
    query = (
        select(
            cl.c.id,
            cl.c.order_id,
            cl.c.level,
            cl.c.kind,
            cl.c.rate_bp,
            cl.c.base_fen,
            cl.c.amount_fen,
            cl.c.cancelled_fen,
            cl.c.reversed_fen,
            cl.c.withdrawn_fen,
            _net().label("net_fen"),
            cl.c.status,
            cl.c.created_at,
            cl.c.released_at,
            cl.c.beneficiary_id,
            earner.c.name.label("beneficiary_name"),
            orders.c.buyer_id,
            buyer.c.name.label("buyer_name"),
            orders.c.status.label("order_status"),
            orders.c.completed_at,
            order_lines.c.sku,
            order_lines.c.name.label("product_name"),
            order_lines.c.quantity,
        )
        .select_from(
            cl.join(earner, and_(earner.c.tenant_id == t, earner.c.id == cl.c.beneficiary_id))
            .join(orders, and_(orders.c.tenant_id == t, orders.c.id == cl.c.order_id))
            .join(buyer, and_(buyer.c.tenant_id == t, buyer.c.id == orders.c.buyer_id))
            .join(
                order_lines,
                and_(order_lines.c.tenant_id == t, order_lines.c.id == cl.c.order_line_id),
            )
        )
        .where(cl.c.tenant_id == t)
    )
    if status is not None:
        query = query.where(cl.c.status == status)
    if beneficiary_id is not None:
        query = query.where(cl.c.beneficiary_id == beneficiary_id)
    if after is not None:
        query = query.where(cl.c.id < after)
    with ctx.db.read() as tx:
        rows = tx.execute(query.order_by(desc(cl.c.id)).limit(limit + 1)).all()
    page = rows[:limit]
    return {
        "items": [dict(r._mapping) for r in page],
        "next_after": page[-1].id if len(rows) > limit else None,
    }


def debts(ctx: Ctx, *, after: str | None = None, limit: int = 50) -> dict[str, Any]:
    """Members who owe money back (a commission reversed after it was withdrawn), largest debt
    first is not kept stable across pages, so they come in member order."""
    if not 1 <= limit <= 200:
        raise InvalidInput("limit_out_of_range", low=1, high=200)
    after = checked_cursor(after, "mem")
    t = ctx.tenant_id
    query = (
        select(members.c.id, members.c.name, members.c.phone, accounts.c.balance)
        .select_from(
            accounts.join(
                members, and_(members.c.tenant_id == t, members.c.id == accounts.c.owner_id)
            )
        )
        .where(
            accounts.c.tenant_id == t,
            accounts.c.owner_type == "member",
            accounts.c.purpose == Purpose.DEBT.value,
            accounts.c.balance < 0,
        )
    )
    if after is not None:
        query = query.where(members.c.id > after)
    with ctx.db.read() as tx:
        rows = tx.execute(query.order_by(members.c.id).limit(limit + 1)).all()
    page = rows[:limit]
    return {
        "items": [
            {"id": r.id, "name": r.name, "phone": r.phone, "debt_fen": -int(r.balance)}
            for r in page
        ],
        "next_after": page[-1].id if len(rows) > limit else None,
    }


def recent_events(ctx: Ctx, *, type: str, limit: int = 10) -> list[dict[str, Any]]:
    """The tenant's latest events of one type, newest first (the settlement's runs, say)."""
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(events)
            .where(events.c.tenant_id == ctx.tenant_id, events.c.type == type)
            .order_by(desc(events.c.id))
            .limit(limit)
        ).all()
    return [{k: v for k, v in r._mapping.items() if k != "tenant_id"} for r in rows]
