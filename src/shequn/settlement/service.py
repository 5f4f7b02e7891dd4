"""Settlement: auto-complete long-shipped orders, close orders whose after-sales window has
passed and release their commissions, all set-based and idempotent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    case,
    func,
    insert,
    literal,
    select,
    text,
    union_all,
    update,
)

from shequn.context import Ctx
from shequn.db import JsonType, sql_time_ordered_id
from shequn.distribution.tables import commission_lines
from shequn.events.service import fan_out_recorded, record_event
from shequn.events.tables import events
from shequn.ids import new_id
from shequn.ledger.rules import Purpose
from shequn.ledger.service import member_account_sql
from shequn.ledger.tables import accounts, journal_transactions, postings
from shequn.locks import Lock, take
from shequn.orders.tables import OPEN_AMOUNT, orders, unpaid_sweeps
from shequn.tenancy.repo import load_settings

BATCH_SIZE = 2_000


def open_amount() -> Any:
    """The condition of the settlement's partial indexes on orders, as it is written there (the
    planner uses a partial index only for a query that states its condition)."""
    return text(OPEN_AMOUNT)


def _order_events(
    tx: Connection, ctx: Ctx, order_ids: list[str], event_type: str, run_id: str
) -> None:
    now = ctx.clock.now()
    recorded = tx.execute(
        insert(events)
        .from_select(
            [
                "tenant_id",
                "id",
                "type",
                "subject_type",
                "subject_id",
                "actor",
                "payload",
                "occurred_at",
            ],
            select(
                orders.c.tenant_id,
                sql_time_ordered_id("evt"),
                literal(event_type),
                literal("order"),
                orders.c.id,
                literal(ctx.actor),
                literal({"settlement_run": run_id}, JsonType),
                literal(now, orders.c.created_at.type),
            ).where(orders.c.tenant_id == ctx.tenant_id, orders.c.id.in_(order_ids)),
        )
        .returning(events.c.id)
    ).scalars()
    fan_out_recorded(tx, tenant_id=ctx.tenant_id, event_ids=list(recorded))


def _auto_complete(tx: Connection, ctx: Ctx, days: int, run_id: str) -> int:
    now = ctx.clock.now()
    take(tx, Lock.ORDERS)
    ids = list(
        tx.execute(
            select(orders.c.id)
            .where(
                orders.c.tenant_id == ctx.tenant_id,
                orders.c.shipped_at <= now - timedelta(days=days),
                orders.c.completed_at.is_(None),
                orders.c.closed_at.is_(None),
                open_amount(),
                orders.c.status == "shipped",
            )
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    if not ids:
        return 0
    tx.execute(
        update(orders)
        .where(
            orders.c.tenant_id == ctx.tenant_id, orders.c.id.in_(ids), orders.c.status == "shipped"
        )
        .values(status="completed", completed_at=now, updated_at=now)
    )
    _order_events(tx, ctx, ids, "OrderCompleted", run_id)
    return len(ids)


def _close_batch(
    tx: Connection, ctx: Ctx, after_sales_days: int, currency: str, run_id: str
) -> dict[str, int]:
    now = ctx.clock.now()
    t = ctx.tenant_id
    take(tx, Lock.ORDERS)
    ids = list(
        tx.execute(
            select(orders.c.id)
            .where(
                orders.c.tenant_id == t,
                orders.c.completed_at <= now - timedelta(days=after_sales_days),
                orders.c.closed_at.is_(None),
                open_amount(),
                orders.c.status == "completed",
            )
            .order_by(orders.c.id)
            .limit(BATCH_SIZE)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    if not ids:
        return {"orders": 0, "lines": 0, "released_fen": 0}
    tx.execute(
        update(orders)
        .where(orders.c.tenant_id == t, orders.c.id.in_(ids))
        .values(status="closed", closed_at=now, updated_at=now)
    )
    _order_events(tx, ctx, ids, "OrderClosed", run_id)
    cl = commission_lines
    net = cl.c.amount_fen - cl.c.cancelled_fen - cl.c.reversed_fen
    released = (
        select(cl.c.beneficiary_id.label("member_id"), func.sum(net).label("amount"))
        .where(cl.c.tenant_id == t, cl.c.order_id.in_(ids), cl.c.status == "pending")
        .group_by(cl.c.beneficiary_id)
        .subquery("released")
    )
    # Lock every cached balance the release moves, in id order, before reading debt balances
    # (the frozen wallets have no cached figure to lock).
    touched = select(accounts.c.id).where(
        accounts.c.tenant_id == t,
        accounts.c.owner_type == "member",
        accounts.c.owner_id.in_(select(released.c.member_id)),
        accounts.c.purpose.in_(("wallet_available", "debt")),
    )
    take(tx, Lock.ACCOUNTS)
    tx.execute(touched.order_by(accounts.c.id).with_for_update()).all()
    journal_id = new_id("jtx")
    debt = accounts.alias("debt")
    with_debt = (
        select(
            released.c.member_id,
            released.c.amount,
            case(
                (-debt.c.balance < released.c.amount, -debt.c.balance),
                else_=released.c.amount,
            ).label("repay"),
        )
        .select_from(
            released.join(
                debt,
                and_(
                    debt.c.tenant_id == t,
                    debt.c.id == member_account_sql(released.c.member_id, Purpose.DEBT),
                ),
            )
        )
        .where(released.c.amount > 0)
        .subquery("with_debt")
    )
    total = tx.execute(select(func.coalesce(func.sum(with_debt.c.amount), 0))).scalar_one()
    if total:
        tx.execute(
            insert(journal_transactions).values(
                tenant_id=t,
                id=journal_id,
                kind="commission_released",
                ref_type="settlement",
                ref_id=run_id,
                occurred_at=now,
            )
        )

        def legs(purpose: Purpose, amount: Any) -> Any:
            return select(
                literal(t).label("tenant_id"),
                sql_time_ordered_id("pst").label("id"),
                literal(journal_id).label("transaction_id"),
                member_account_sql(with_debt.c.member_id, purpose).label("account_id"),
                literal(currency).label("currency"),
                amount.label("amount"),
                literal(now, orders.c.created_at.type).label("occurred_at"),
            ).where(amount != 0)

        tx.execute(
            insert(postings).from_select(
                [
                    "tenant_id",
                    "id",
                    "transaction_id",
                    "account_id",
                    "currency",
                    "amount",
                    "occurred_at",
                ],
                union_all(
                    legs(Purpose.WALLET_PENDING, -with_debt.c.amount),
                    legs(Purpose.DEBT, with_debt.c.repay),
                    legs(Purpose.WALLET_AVAILABLE, with_debt.c.amount - with_debt.c.repay),
                ),
            )
        )
        moved = (
            select(func.sum(postings.c.amount))
            .where(
                postings.c.tenant_id == accounts.c.tenant_id,
                postings.c.transaction_id == journal_id,
                postings.c.account_id == accounts.c.id,
            )
            .scalar_subquery()
        )
        tx.execute(
            update(accounts)
            .where(
                accounts.c.tenant_id == t,
                accounts.c.tracks_balance.is_(True),
                accounts.c.id.in_(
                    select(postings.c.account_id).where(
                        postings.c.tenant_id == t, postings.c.transaction_id == journal_id
                    )
                ),
            )
            .values(balance=accounts.c.balance + moved)
        )
    take(tx, Lock.COMMISSION_LINES)
    line_count = tx.execute(
        update(cl)
        .where(cl.c.tenant_id == t, cl.c.order_id.in_(ids), cl.c.status == "pending")
        .values(status="available", released_at=now)
    ).rowcount
    return {"orders": len(ids), "lines": line_count, "released_fen": int(total)}


def _cancel_unpaid(tx: Connection, ctx: Ctx, minutes: int, run_id: str) -> int:
    """Cancel the orders left unpaid longer than `minutes`. Orders are scanned in id order
    from where the last sweep stopped: the first order still unpaid but not yet due stops it
    (later ids are younger), and the sweep resumes from there next time."""
    t = ctx.tenant_id
    now = ctx.clock.now()
    due = now - timedelta(minutes=minutes)
    mark = tx.execute(
        select(unpaid_sweeps.c.swept_until).where(unpaid_sweeps.c.tenant_id == t)
    ).scalar_one_or_none()
    position = mark or ""
    cancelled: list[str] = []
    while True:
        rows = tx.execute(
            select(orders.c.id, orders.c.created_at)
            .where(orders.c.tenant_id == t, orders.c.id > position, orders.c.status == "created")
            .order_by(orders.c.id)
            .limit(BATCH_SIZE)
        ).all()
        young = next((r for r in rows if r.created_at > due), None)
        old = [r.id for r in rows if young is None or r.id < young.id]
        if old:
            take(tx, Lock.ORDERS)
            cancelled += list(
                tx.execute(
                    update(orders)
                    .where(orders.c.tenant_id == t, orders.c.id.in_(old))
                    .where(orders.c.status == "created")
                    .values(status="cancelled", cancelled_at=now, updated_at=now)
                    .returning(orders.c.id)
                ).scalars()
            )
            position = old[-1]
        if young is not None or len(rows) < BATCH_SIZE:
            break
    if cancelled:
        _order_events(tx, ctx, sorted(cancelled), "OrderCancelled", run_id)
    if position and position != mark:
        if mark is None:
            tx.execute(insert(unpaid_sweeps).values(tenant_id=t, swept_until=position))
        else:
            tx.execute(
                update(unpaid_sweeps)
                .where(unpaid_sweeps.c.tenant_id == t)
                .values(swept_until=position)
            )
    return len(cancelled)


def run_settlement(ctx: Ctx) -> dict[str, Any]:
    """Cancel the orders left unpaid too long, close every order whose after-sales window has
    passed and release its commissions. Running it again at the same time changes nothing."""
    run_id = new_id("stl")
    totals = {
        "orders_cancelled": 0,
        "orders_completed": 0,
        "orders_closed": 0,
        "commissions_released": 0,
        "released_fen": 0,
    }
    with ctx.db.transaction() as tx:
        settings = load_settings(tx, ctx.tenant_id)
        totals["orders_cancelled"] = _cancel_unpaid(tx, ctx, settings.unpaid_cancel_minutes, run_id)
    with ctx.db.transaction() as tx:
        totals["orders_completed"] = _auto_complete(tx, ctx, settings.auto_complete_days, run_id)
    while True:
        with ctx.db.transaction() as tx:
            batch = _close_batch(tx, ctx, settings.after_sales_days, settings.currency, run_id)
        totals["orders_closed"] += batch["orders"]
        totals["commissions_released"] += batch["lines"]
        totals["released_fen"] += batch["released_fen"]
        if batch["orders"] < BATCH_SIZE:
            break
    if totals["orders_cancelled"] or totals["orders_completed"] or totals["orders_closed"]:
        with ctx.db.transaction() as tx:
            record_event(
                tx,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                at=ctx.clock.now(),
                type="SettlementRun",
                subject_type="tenant",
                subject_id=ctx.tenant_id,
                payload={"run_id": run_id, **totals},
            )
    return {"run_id": run_id, **totals}
