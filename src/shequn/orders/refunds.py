"""Refunds, full or partial, before or after the order closes; commission follows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, insert, select, update

from shequn.context import Ctx
from shequn.distribution.commissions import adjust_for_refund
from shequn.errors import Conflict, InvalidInput
from shequn.events.service import Event, record_events
from shequn.ids import new_id
from shequn.ledger.rules import Posting, Purpose, brand_account, system_account
from shequn.ledger.service import post_transaction
from shequn.locks import Lock, take
from shequn.members.repo import record_refund
from shequn.money import MAX_AMOUNT_FEN
from shequn.orders.rules import (
    REFUNDABLE,
    LineAmounts,
    OrderStatus,
    allocate_refund,
    status_after_refund,
)
from shequn.orders.tables import order_lines, orders, refunds
from shequn.orders.views import clean_key, lines_of, order_row, refund_view
from shequn.tenancy.repo import load_settings

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
    key = clean_key(idempotency_key)
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        take(tx, Lock.ORDERS)
        row = order_row(tx, ctx.tenant_id, order_id, for_update=True)
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
                return refund_view(earlier), True
        status = OrderStatus(row.status)
        if status not in REFUNDABLE:
            raise Conflict("order_transition_invalid", status=row.status, action="refund")
        line_rows = lines_of(tx, ctx.tenant_id, order_id)
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
        # The buyer before the commission lines' accounts (the order of shequn.locks).
        record_refund(
            tx,
            ctx.tenant_id,
            row.buyer_id,
            amount_fen=amount_fen,
            fully=refunded_total >= row.paid_fen,
            at=now,
        )
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
        return refund_view(created), False
