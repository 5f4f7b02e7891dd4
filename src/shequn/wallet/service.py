"""Wallets and withdrawals: request (guarded debit), approve, reject, payout result."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, bindparam, case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from shequn.context import Ctx
from shequn.distribution.tables import commission_lines, withdrawal_allocations
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import Event, record_events
from shequn.ids import checked_cursor, new_id
from shequn.ledger.rules import Posting, Purpose, brand_account, member_account, system_account
from shequn.ledger.service import (
    debit_if_covered,
    lock_balances,
    member_balances,
    post_transaction,
)
from shequn.locks import Lock, take
from shequn.members.repo import require_member
from shequn.money import MAX_AMOUNT_FEN
from shequn.tenancy.repo import load_settings
from shequn.tenancy.rules import local_day_start
from shequn.wallet.rules import (
    WithdrawalStatus,
    next_withdrawal_status,
    quote_withdrawal,
    within_daily_limits,
)
from shequn.wallet.tables import withdrawals


def wallet(ctx: Ctx, *, member_id: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        require_member(tx, ctx.tenant_id, member_id)
        balances = member_balances(tx, tenant_id=ctx.tenant_id, member_id=member_id)
        in_flight = tx.execute(
            select(withdrawals.c.amount_fen).where(
                withdrawals.c.tenant_id == ctx.tenant_id,
                withdrawals.c.member_id == member_id,
                withdrawals.c.status.in_(("requested", "approved")),
            )
        ).scalars()
        settings = load_settings(tx, ctx.tenant_id)
        return {
            "member_id": member_id,
            "currency": settings.currency,
            "available_fen": balances[Purpose.WALLET_AVAILABLE],
            "pending_fen": balances[Purpose.WALLET_PENDING],
            "debt_fen": -balances[Purpose.DEBT],
            "withdrawing_fen": sum(in_flight),
            "points": balances[Purpose.POINTS],
        }


def _view(row: Row[Any]) -> dict[str, Any]:
    return {k: v for k, v in row._mapping.items() if k != "tenant_id"}


def _row(
    tx: Connection, tenant_id: str, withdrawal_id: str, *, for_update: bool = False
) -> Row[Any]:
    query = select(withdrawals).where(
        withdrawals.c.tenant_id == tenant_id, withdrawals.c.id == withdrawal_id
    )
    if for_update:
        query = query.with_for_update()
    row = tx.execute(query).first()
    if row is None:
        raise NotFound("withdrawal_not_found", id=withdrawal_id)
    return row


_draw_line = (
    update(commission_lines)
    .where(
        commission_lines.c.tenant_id == bindparam("t_id"),
        commission_lines.c.id == bindparam("c_id"),
    )
    .values(
        withdrawn_fen=commission_lines.c.withdrawn_fen + bindparam("part"),
        status=bindparam("new_status"),
    )
)


def _allocate_to_lines(
    tx: Connection, tenant_id: str, member_id: str, withdrawal_id: str, amount: int
) -> None:
    """Mark the member's released commission lines as withdrawn, oldest first (the caller
    holds the member's available account, which every change of its lines takes first)."""
    take(tx, Lock.COMMISSION_LINES)
    rows = tx.execute(
        select(
            commission_lines.c.id,
            commission_lines.c.amount_fen,
            commission_lines.c.cancelled_fen,
            commission_lines.c.reversed_fen,
            commission_lines.c.withdrawn_fen,
        )
        .where(
            commission_lines.c.tenant_id == tenant_id,
            commission_lines.c.beneficiary_id == member_id,
            commission_lines.c.status == "available",
        )
        .order_by(commission_lines.c.released_at, commission_lines.c.id)
        .with_for_update()
    ).all()
    left = amount
    draws = []
    for r in rows:
        if left <= 0:
            break
        room = r.amount_fen - r.cancelled_fen - r.reversed_fen - r.withdrawn_fen
        if room <= 0:
            continue
        part = min(room, left)
        left -= part
        draws.append(
            {
                "t_id": tenant_id,
                "c_id": r.id,
                "part": part,
                "new_status": "withdrawn" if part == room else "available",
            }
        )
    if draws:
        tx.execute(_draw_line, draws)
        tx.execute(
            insert(withdrawal_allocations),
            [
                {
                    "tenant_id": tenant_id,
                    "withdrawal_id": withdrawal_id,
                    "commission_line_id": d["c_id"],
                    "amount_fen": d["part"],
                }
                for d in draws
            ],
        )


def _release_allocations(tx: Connection, tenant_id: str, withdrawal_id: str) -> None:
    take(tx, Lock.COMMISSION_LINES)
    rows = tx.execute(
        select(
            withdrawal_allocations.c.commission_line_id, withdrawal_allocations.c.amount_fen
        ).where(
            withdrawal_allocations.c.tenant_id == tenant_id,
            withdrawal_allocations.c.withdrawal_id == withdrawal_id,
        )
    ).all()
    if not rows:
        return
    tx.execute(
        update(commission_lines)
        .where(
            commission_lines.c.tenant_id == bindparam("t_id"),
            commission_lines.c.id == bindparam("c_id"),
        )
        .values(
            withdrawn_fen=commission_lines.c.withdrawn_fen - bindparam("part"),
            status=case(
                (commission_lines.c.status == "withdrawn", "available"),
                else_=commission_lines.c.status,
            ),
        ),
        [{"t_id": tenant_id, "c_id": r.commission_line_id, "part": r.amount_fen} for r in rows],
    )
    tx.execute(
        delete(withdrawal_allocations).where(
            withdrawal_allocations.c.tenant_id == tenant_id,
            withdrawal_allocations.c.withdrawal_id == withdrawal_id,
        )
    )


def request_withdrawal(
    ctx: Ctx, *, member_id: str, amount_fen: int, idempotency_key: str | None = None
) -> tuple[dict[str, Any], bool]:
    """Take the amount from the available wallet with one guarded update (never overdrawn,
    however many requests race), charge the fee, and approve automatically under the
    threshold. Returns (withdrawal, replayed)."""
    if not 1 <= amount_fen <= MAX_AMOUNT_FEN:
        raise InvalidInput("amount_invalid", field="amount_fen")
    key = None
    if idempotency_key is not None:
        key = idempotency_key.strip()
        if not key or len(key) > 80:
            raise InvalidInput("idempotency_key_invalid")
    now = ctx.clock.now()
    withdrawal_id = new_id("wd")
    try:
        with ctx.db.transaction() as tx:
            settings = load_settings(tx, ctx.tenant_id)
            require_member(tx, ctx.tenant_id, member_id)
            if key is not None:
                earlier = tx.execute(
                    select(withdrawals).where(
                        withdrawals.c.tenant_id == ctx.tenant_id,
                        withdrawals.c.member_id == member_id,
                        withdrawals.c.idempotency_key == key,
                    )
                ).first()
                if earlier is not None:
                    if earlier.amount_fen != amount_fen:
                        raise Conflict("idempotency_key_reused", key=key)
                    return _view(earlier), True
            quote = quote_withdrawal(
                amount_fen,
                minimum_fen=settings.withdrawal_min_fen,
                fee_bp=settings.withdrawal_fee_bp,
                auto_approve_max_fen=settings.withdrawal_auto_approve_max_fen,
            )
            available = member_account(member_id, Purpose.WALLET_AVAILABLE)
            if not debit_if_covered(
                tx, tenant_id=ctx.tenant_id, account_id=available, amount=amount_fen
            ):
                balances = member_balances(tx, tenant_id=ctx.tenant_id, member_id=member_id)
                raise Conflict(
                    "insufficient_funds",
                    amount_fen=amount_fen,
                    available_fen=balances[Purpose.WALLET_AVAILABLE],
                )
            earlier = tx.execute(
                select(func.count(), func.coalesce(func.sum(withdrawals.c.amount_fen), 0)).where(
                    withdrawals.c.tenant_id == ctx.tenant_id,
                    withdrawals.c.member_id == member_id,
                    withdrawals.c.requested_at >= local_day_start(now, settings.time_zone),
                    withdrawals.c.status.not_in(("rejected", "failed")),
                )
            ).one()
            auto_approve = quote.auto_approve and within_daily_limits(
                amount_fen,
                earlier_today=int(earlier[0]),
                earlier_today_fen=int(earlier[1]),
                count_max=settings.withdrawal_daily_count_max,
                amount_max_fen=settings.withdrawal_daily_amount_max_fen,
            )
            status = WithdrawalStatus.APPROVED if auto_approve else WithdrawalStatus.REQUESTED
            tx.execute(
                insert(withdrawals).values(
                    tenant_id=ctx.tenant_id,
                    id=withdrawal_id,
                    member_id=member_id,
                    amount_fen=amount_fen,
                    fee_fen=quote.fee_fen,
                    net_fen=quote.net_fen,
                    status=status.value,
                    payout_id=new_id("po"),
                    idempotency_key=key,
                    decided_by="auto" if auto_approve else None,
                    requested_at=now,
                    approved_at=now if auto_approve else None,
                )
            )
            post_transaction(
                tx,
                tenant_id=ctx.tenant_id,
                kind="withdrawal_requested",
                ref_type="withdrawal",
                ref_id=withdrawal_id,
                at=now,
                items=[
                    Posting(available, -amount_fen, settings.currency),
                    Posting(
                        system_account(Purpose.PAYOUT_CLEARING), quote.net_fen, settings.currency
                    ),
                    Posting(brand_account(Purpose.FEE_INCOME), quote.fee_fen, settings.currency),
                ],
                preapplied=frozenset({available}),
            )
            _allocate_to_lines(tx, ctx.tenant_id, member_id, withdrawal_id, amount_fen)
            items = [
                Event(
                    "WithdrawalRequested",
                    "withdrawal",
                    withdrawal_id,
                    {"member_id": member_id, "amount_fen": amount_fen, "fee_fen": quote.fee_fen},
                )
            ]
            if auto_approve:
                items.append(
                    Event("WithdrawalApproved", "withdrawal", withdrawal_id, {"by": "auto"})
                )
            record_events(tx, tenant_id=ctx.tenant_id, actor=ctx.actor, at=now, items=items)
            return _view(_row(tx, ctx.tenant_id, withdrawal_id)), False
    except IntegrityError:
        if key is None:
            raise
    with ctx.db.read() as tx:
        earlier = tx.execute(
            select(withdrawals).where(
                withdrawals.c.tenant_id == ctx.tenant_id,
                withdrawals.c.member_id == member_id,
                withdrawals.c.idempotency_key == key,
            )
        ).first()
    if earlier is None or earlier.amount_fen != amount_fen:
        raise Conflict("idempotency_key_reused", key=key)
    return _view(earlier), True


def _return_funds(tx: Connection, ctx: Ctx, row: Row[Any], kind: str) -> None:
    settings = load_settings(tx, ctx.tenant_id)
    available = member_account(row.member_id, Purpose.WALLET_AVAILABLE)
    lock_balances(tx, tenant_id=ctx.tenant_id, account_ids=[available])
    post_transaction(
        tx,
        tenant_id=ctx.tenant_id,
        kind=kind,
        ref_type="withdrawal",
        ref_id=row.id,
        at=ctx.clock.now(),
        items=[
            Posting(
                member_account(row.member_id, Purpose.WALLET_AVAILABLE),
                row.amount_fen,
                settings.currency,
            ),
            Posting(system_account(Purpose.PAYOUT_CLEARING), -row.net_fen, settings.currency),
            Posting(brand_account(Purpose.FEE_INCOME), -row.fee_fen, settings.currency),
        ],
    )
    _release_allocations(tx, ctx.tenant_id, row.id)


def _decide(
    ctx: Ctx,
    *,
    withdrawal_id: str,
    action: str,
    reason: str | None = None,
    provider_ref: str | None = None,
) -> tuple[dict[str, Any], bool]:
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        take(tx, Lock.WITHDRAWALS)
        row = _row(tx, ctx.tenant_id, withdrawal_id, for_update=True)
        current = WithdrawalStatus(row.status)
        final_for = {"paid": WithdrawalStatus.PAID, "failed": WithdrawalStatus.FAILED}
        if action in final_for and current is final_for[action]:
            return _view(row), True  # the provider repeated its callback
        target = next_withdrawal_status(current, action)
        values: dict[str, Any] = {"status": target.value}
        if target is WithdrawalStatus.APPROVED:
            values.update(approved_at=now, decided_by=ctx.actor)
        else:
            values["finished_at"] = now
        if target is WithdrawalStatus.REJECTED:
            values.update(reason=reason, decided_by=ctx.actor)
        if target in (WithdrawalStatus.PAID, WithdrawalStatus.FAILED):
            values.update(provider_ref=provider_ref, reason=reason)
        tx.execute(
            update(withdrawals)
            .where(withdrawals.c.tenant_id == ctx.tenant_id, withdrawals.c.id == withdrawal_id)
            .values(**values)
        )
        if target in (WithdrawalStatus.REJECTED, WithdrawalStatus.FAILED):
            _return_funds(tx, ctx, row, f"withdrawal_{target.value}")
        elif target is WithdrawalStatus.PAID:
            settings = load_settings(tx, ctx.tenant_id)
            post_transaction(
                tx,
                tenant_id=ctx.tenant_id,
                kind="withdrawal_paid",
                ref_type="withdrawal",
                ref_id=row.id,
                at=now,
                items=[
                    Posting(
                        system_account(Purpose.PAYOUT_CLEARING), -row.net_fen, settings.currency
                    ),
                    Posting(
                        system_account(Purpose.PAYMENT_CLEARING), row.net_fen, settings.currency
                    ),
                ],
            )
        event_type = {
            WithdrawalStatus.APPROVED: "WithdrawalApproved",
            WithdrawalStatus.REJECTED: "WithdrawalRejected",
            WithdrawalStatus.PAID: "WithdrawalPaid",
            WithdrawalStatus.FAILED: "WithdrawalFailed",
        }[target]
        record_events(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            items=[
                Event(
                    event_type,
                    "withdrawal",
                    withdrawal_id,
                    {"member_id": row.member_id, "reason": reason},
                )
            ],
        )
        return _view(_row(tx, ctx.tenant_id, withdrawal_id)), False


def approve_withdrawal(ctx: Ctx, *, withdrawal_id: str) -> dict[str, Any]:
    return _decide(ctx, withdrawal_id=withdrawal_id, action="approve")[0]


def reject_withdrawal(ctx: Ctx, *, withdrawal_id: str, reason: str) -> dict[str, Any]:
    """Refuse a withdrawal before it is paid out; the funds go back to the wallet."""
    clean = " ".join(reason.split())
    if not clean or len(clean) > 500:
        raise InvalidInput("reject_reason_required")
    return _decide(ctx, withdrawal_id=withdrawal_id, action="reject", reason=clean)[0]


def record_payout_result(
    ctx: Ctx,
    *,
    withdrawal_id: str,
    payout_id: str,
    status: str,
    provider_ref: str | None = None,
    reason: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """The payout provider's answer for `payout_id`; repeated answers change nothing."""
    if status not in ("paid", "failed"):
        raise InvalidInput("payout_status_invalid", status=status)
    if provider_ref is not None and len(provider_ref) > 120:
        raise InvalidInput("provider_ref_invalid")
    with ctx.db.read() as tx:
        row = _row(tx, ctx.tenant_id, withdrawal_id)
    if row.payout_id != payout_id:
        raise Conflict("payout_id_mismatch", expected=row.payout_id)
    done = {"paid": WithdrawalStatus.PAID, "failed": WithdrawalStatus.FAILED}
    if (
        row.status in (WithdrawalStatus.PAID.value, WithdrawalStatus.FAILED.value)
        and row.status != done[status]
    ):
        raise Conflict("withdrawal_transition_invalid", status=row.status, action=status)
    return _decide(
        ctx,
        withdrawal_id=withdrawal_id,
        action=status,
        reason=(reason or "").strip()[:500] or None,
        provider_ref=provider_ref,
    )


def get_withdrawal(ctx: Ctx, *, withdrawal_id: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        return _view(_row(tx, ctx.tenant_id, withdrawal_id))


def list_withdrawals(
    ctx: Ctx,
    *,
    member_id: str | None = None,
    status: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    if not 1 <= limit <= 500:
        raise InvalidInput("limit_out_of_range", low=1, high=500)
    if status is not None and status not in {s.value for s in WithdrawalStatus}:
        raise InvalidInput("withdrawal_status_invalid", status=status)
    after = checked_cursor(after, "wd")
    with ctx.db.read() as tx:
        query = select(withdrawals).where(withdrawals.c.tenant_id == ctx.tenant_id)
        if member_id is not None:
            query = query.where(withdrawals.c.member_id == member_id)
        if status is not None:
            query = query.where(withdrawals.c.status == status)
        if after is not None:
            query = query.where(withdrawals.c.id > after)
        rows = tx.execute(query.order_by(withdrawals.c.id).limit(limit + 1)).all()
    page = rows[:limit]
    return {
        "items": [_view(r) for r in page],
        "next_after": page[-1].id if len(rows) > limit else None,
    }
