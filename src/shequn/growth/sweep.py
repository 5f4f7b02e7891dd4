"""The growth sweep: follows the orders' lifecycle in the event log and does what growth owes
each step, every event once.

- `OrderPaid`: a commission line whose beneficiary looks like the buyer itself, or linked to
  it, or whose buyer registers or orders too fast, is withheld for an operator (before the
  settlement releases it);
- `OrderClosed`: the buyer's points for the purchase; the rewards of the sharer who brought
  the order, and of a new customer;
- `OrderRefunded`: the coupons (in full, as their templates say) and the points the order
  spent are given back; after close the rewards and the purchase's points are taken back in
  proportion;
- `OrderCancelled`: the coupons and points an unpaid order spent are given back.

Events are read after a cursor; an event processed is marked, so that one recorded by a
transaction that committed late is still found by the next run (the cursor trails the newest
event by `LAG`), and none is processed twice. Each step is its own transaction, taking its
locks in the order of `shequn.locks` after the tenant's growth lock."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, exists, insert, select, update

from shequn.context import Ctx
from shequn.distribution.commissions import OWN_SALE_KIND
from shequn.distribution.tables import commission_lines
from shequn.events.tables import events
from shequn.growth.coupons.service import restore_order_coupons
from shequn.growth.holds.service import hold_order_commissions
from shequn.growth.points.rules import earned_points
from shequn.growth.points.service import (
    TakeBack,
    earn_for_purchases,
    restore_spent,
    take_back_earned,
    tier_points_multiplier_bp,
)
from shequn.growth.points.tables import point_lots, point_spends
from shequn.growth.settings.service import load_growth_settings, lock_growth_work
from shequn.growth.sharing.service import reverse_after_refund, reward_closed_order
from shequn.growth.tables import growth_cursors, growth_processed
from shequn.ids import encode_body
from shequn.orders.tables import orders
from shequn.tenancy.repo import load_settings

TYPES = ("OrderPaid", "OrderClosed", "OrderRefunded", "OrderCancelled")
BATCH = 500
LAG_MS = 10 * 60 * 1000  # how far behind the newest event the cursor stays


def _floor_id(ms: int) -> str:
    """The smallest event id made at or after `ms` (ids lead with their time)."""
    return "evt_" + encode_body(max(ms, 0), 0)


def _cursor(tx: Connection, tenant_id: str) -> str:
    found = tx.execute(
        select(growth_cursors.c.after_event_id).where(growth_cursors.c.tenant_id == tenant_id)
    ).scalar_one_or_none()
    return found or ""


def _pending(tx: Connection, tenant_id: str, after: str) -> list[Any]:
    return list(
        tx.execute(
            select(events.c.id, events.c.type, events.c.subject_id, events.c.payload)
            .where(
                events.c.tenant_id == tenant_id,
                events.c.type.in_(TYPES),
                events.c.id > after,
                ~exists().where(
                    growth_processed.c.tenant_id == events.c.tenant_id,
                    growth_processed.c.event_id == events.c.id,
                ),
            )
            .order_by(events.c.id)
            .limit(BATCH)
        ).all()
    )


def _mark(tx: Connection, tenant_id: str, event_ids: list[str], at: datetime) -> None:
    if event_ids:
        tx.execute(
            insert(growth_processed),
            [{"tenant_id": tenant_id, "event_id": e, "processed_at": at} for e in event_ids],
        )


def _seen(tx: Connection, tenant_id: str, event_id: str) -> bool:
    return (
        tx.execute(
            select(growth_processed.c.event_id).where(
                growth_processed.c.tenant_id == tenant_id, growth_processed.c.event_id == event_id
            )
        ).first()
        is not None
    )


def run_growth_sweep(ctx: Ctx) -> dict[str, int]:
    """Process every order event not processed yet; returns what was done."""
    totals = {
        "events": 0,
        "commissions_held": 0,
        "points_earned": 0,
        "rewards": 0,
        "coupons_restored": 0,
        "points_restored": 0,
        "rewards_reversed_fen": 0,
        "points_taken_back": 0,
    }
    while True:
        with ctx.db.read() as tx:
            batch = _pending(tx, ctx.tenant_id, _cursor(tx, ctx.tenant_id))
        if not batch:
            break
        _closed_points(ctx, [e for e in batch if e.type == "OrderClosed"], totals)
        for event in batch:
            _process(ctx, event, totals)
        totals["events"] += len(batch)
        if len(batch) < BATCH:
            break
    _advance(ctx)
    return totals


def _advance(ctx: Ctx) -> None:
    """Move the cursor to `LAG_MS` before now (never back), and forget the markers before it."""
    floor = _floor_id(time.time_ns() // 1_000_000 - LAG_MS)
    with ctx.db.transaction() as tx:
        lock_growth_work(tx, ctx.tenant_id)
        current = _cursor(tx, ctx.tenant_id)
        if floor <= current:
            return
        if current:
            tx.execute(
                update(growth_cursors)
                .where(growth_cursors.c.tenant_id == ctx.tenant_id)
                .values(after_event_id=floor)
            )
        else:
            tx.execute(insert(growth_cursors).values(tenant_id=ctx.tenant_id, after_event_id=floor))
        tx.execute(
            delete(growth_processed).where(
                growth_processed.c.tenant_id == ctx.tenant_id, growth_processed.c.event_id <= floor
            )
        )


def _closed_points(ctx: Ctx, closed: list[Any], totals: dict[str, int]) -> None:
    """The purchase points of a batch of closed orders, in one transaction (a lot per order,
    never two)."""
    if not closed:
        return
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        lock_growth_work(tx, ctx.tenant_id)
        growth = load_growth_settings(tx, ctx.tenant_id)
        rows = tx.execute(
            select(
                orders.c.id,
                orders.c.buyer_id,
                orders.c.buyer_tier_id,
                orders.c.paid_fen,
                orders.c.refunded_fen,
            ).where(
                orders.c.tenant_id == ctx.tenant_id,
                orders.c.id.in_(sorted({e.subject_id for e in closed})),
                orders.c.closed_at.is_not(None),
            )
        ).all()
        totals["points_earned"] += earn_for_purchases(
            tx,
            tenant_id=ctx.tenant_id,
            settings=growth,
            orders=[dict(r._mapping) for r in rows],
            at=now,
        )


def _process(ctx: Ctx, event: Any, totals: dict[str, int]) -> None:
    if event.type == "OrderRefunded":
        _refunded(ctx, event, totals)
        return
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        lock_growth_work(tx, ctx.tenant_id)
        if _seen(tx, ctx.tenant_id, event.id):
            return
        settings = load_settings(tx, ctx.tenant_id)
        growth = load_growth_settings(tx, ctx.tenant_id)
        order_id = event.subject_id
        if event.type == "OrderPaid" and _has_commission(tx, ctx.tenant_id, order_id):
            totals["commissions_held"] += hold_order_commissions(
                tx, settings=settings, growth=growth, order_id=order_id, actor="system", at=now
            )
        elif event.type == "OrderClosed":
            totals["rewards"] += len(
                reward_closed_order(
                    tx, settings=settings, growth=growth, order_id=order_id, actor="system", at=now
                )
            )
        elif event.type == "OrderCancelled":
            totals["coupons_restored"] += len(
                restore_order_coupons(
                    tx, tenant_id=ctx.tenant_id, order_id=order_id, cancelled=True
                )
            )
            totals["points_restored"] += restore_spent(
                tx,
                tenant_id=ctx.tenant_id,
                purpose="order",
                ref=order_id,
                refunded_fen=0,
                paid_fen=0,
                cancelled=True,
                at=now,
            )
        _mark(tx, ctx.tenant_id, [event.id], now)


def _has_commission(tx: Connection, tenant_id: str, order_id: str) -> bool:
    cl = commission_lines
    return (
        tx.execute(
            select(cl.c.id)
            .where(
                cl.c.tenant_id == tenant_id, cl.c.order_id == order_id, cl.c.kind != OWN_SALE_KIND
            )
            .limit(1)
        ).first()
        is not None
    )


def _refunded(ctx: Ctx, event: Any, totals: dict[str, int]) -> None:
    """A refund's consequences, each step its own transaction (each takes back or gives back
    only what is still due, so a step run again does nothing)."""
    order_id, refund_id = event.subject_id, event.payload.get("refund_id") or event.id
    after_close = event.payload.get("phase") == "after_close"
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        lock_growth_work(tx, ctx.tenant_id)
        if _seen(tx, ctx.tenant_id, event.id):
            return
        order = _order(tx, ctx.tenant_id, order_id)
        if order.refunded_fen >= order.paid_fen:
            totals["coupons_restored"] += len(
                restore_order_coupons(
                    tx, tenant_id=ctx.tenant_id, order_id=order_id, cancelled=False
                )
            )
        totals["points_restored"] += restore_spent(
            tx,
            tenant_id=ctx.tenant_id,
            purpose="order",
            ref=order_id,
            refunded_fen=order.refunded_fen,
            paid_fen=order.paid_fen,
            cancelled=False,
            at=now,
        )
    if after_close:
        with ctx.db.transaction() as tx:
            lock_growth_work(tx, ctx.tenant_id)
            settings = load_settings(tx, ctx.tenant_id)
            reversed_ = reverse_after_refund(
                tx, settings=settings, order_id=order_id, refund_id=refund_id, at=now
            )
            totals["rewards_reversed_fen"] += reversed_["reversed_fen"]
            totals["points_taken_back"] += reversed_["reversed_points"]
        with ctx.db.transaction() as tx:
            lock_growth_work(tx, ctx.tenant_id)
            totals["points_taken_back"] += _take_back_purchase_points(tx, ctx, order_id, now)
    with ctx.db.transaction() as tx:
        lock_growth_work(tx, ctx.tenant_id)
        if not _seen(tx, ctx.tenant_id, event.id):
            _mark(tx, ctx.tenant_id, [event.id], now)


def _order(tx: Connection, tenant_id: str, order_id: str) -> Any:
    return tx.execute(
        select(orders).where(orders.c.tenant_id == tenant_id, orders.c.id == order_id)
    ).one()


def _take_back_purchase_points(tx: Connection, ctx: Ctx, order_id: str, at: datetime) -> int:
    """What a closed purchase earned beyond what it earns on what is left unrefunded, less
    what was taken back for it before."""
    lot = tx.execute(
        select(point_lots.c.member_id, point_lots.c.amount).where(
            point_lots.c.tenant_id == ctx.tenant_id,
            point_lots.c.source == "purchase",
            point_lots.c.ref == order_id,
        )
    ).first()
    if lot is None:
        return 0
    order = _order(tx, ctx.tenant_id, order_id)
    growth = load_growth_settings(tx, ctx.tenant_id)
    worth = earned_points(
        max(0, order.paid_fen - order.refunded_fen),
        earn_bp=growth.points_earn_bp,
        multiplier_bp=tier_points_multiplier_bp(tx, ctx.tenant_id, order.buyer_tier_id),
    )
    ref = f"purchase:{order_id}"
    before = sum(
        tx.execute(
            select(point_spends.c.points).where(
                point_spends.c.tenant_id == ctx.tenant_id,
                point_spends.c.purpose == "reversal",
                point_spends.c.ref == ref,
            )
        ).scalars()
    )
    due = min(lot.amount, lot.amount - worth) - before
    if due <= 0:
        return 0
    taken = take_back_earned(
        tx,
        tenant_id=ctx.tenant_id,
        items=[TakeBack(lot.member_id, "purchase", order_id, due)],
        reason_ref=ref,
        at=at,
    )
    return taken.get(order_id, 0)
