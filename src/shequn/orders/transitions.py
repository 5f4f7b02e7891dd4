"""Moving an order along its state machine: shipped, completed (the after-sales window starts),
cancelled before payment."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from shequn.context import Ctx
from shequn.events.service import Event, record_events
from shequn.locks import Lock, take
from shequn.orders.rules import OrderAction, OrderStatus, next_status
from shequn.orders.tables import orders
from shequn.orders.views import full_view, order_row

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
        take(tx, Lock.ORDERS)
        row = order_row(tx, ctx.tenant_id, order_id, for_update=True)
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
        return full_view(tx, ctx.tenant_id, order_row(tx, ctx.tenant_id, order_id))


def ship_order(ctx: Ctx, *, order_id: str) -> dict[str, Any]:
    return _transition(ctx, order_id, OrderAction.SHIP)


def complete_order(ctx: Ctx, *, order_id: str) -> dict[str, Any]:
    """The buyer confirmed receipt; the after-sales window starts now."""
    return _transition(ctx, order_id, OrderAction.COMPLETE)


def cancel_order(ctx: Ctx, *, order_id: str) -> dict[str, Any]:
    return _transition(ctx, order_id, OrderAction.CANCEL)
