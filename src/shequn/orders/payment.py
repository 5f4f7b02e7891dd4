"""Paying an order: the provider's callback, idempotent on its transaction id.

Two ways, the second only when the first cannot be used:

1. the optimistic write: everything the payment writes (the order marked paid, the payment,
   the buyer's purchase facts, the commission lines, the journal, the event) in one
   statement, computed from the order, its buyer and the tenant's settings as this process
   has them (the order as created here, or one read); the statement locks the order if it is
   still unpaid at the amount due, checks that the settings are at the version used, and
   writes the buyer's facts only if its row is at the version used (a compare-and-set). If
   any of that moved it writes nothing, and the write is made once more from a fresh read;
2. the locking way, one transaction in the order of `shequn.locks`: for a payment that binds
   the buyer to a referrer (the `first_paid_order` trigger), that moves the buyer up a tier,
   that repeats an earlier callback or is refused, or that lost a race.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import BigInteger, Connection, bindparam, select, update
from sqlalchemy.exc import IntegrityError

from shequn.batch import WriteBatch
from shequn.compliance.rules import runtime_cap_bp
from shequn.context import Ctx
from shequn.db import UTCDateTime, violated_constraint
from shequn.distribution.commissions import accrue_commissions, draw_agent_stock
from shequn.distribution.rules import Award, SaleLine
from shequn.errors import Conflict, InvalidInput
from shequn.events.service import Event, stage_events
from shequn.ids import new_id
from shequn.ledger.rules import Posting, Purpose, brand_account, system_account
from shequn.ledger.service import JournalEntry, stage_entries
from shequn.locks import Lock, lock_referral_tree, take
from shequn.members.repo import (
    Buyer,
    buyer_columns,
    buyer_from_row,
    forget_buyer,
    lock_members,
    remember_buyer,
    remembered_buyer,
    require_member,
    stage_purchase,
)
from shequn.members.tables import members
from shequn.money import MAX_AMOUNT_FEN
from shequn.orders.copies import UnpaidOrder, sale_line, take_unpaid
from shequn.orders.rules import OrderStatus
from shequn.orders.tables import order_lines, orders, payments, refunds
from shequn.orders.views import (
    SUMMARY_KEYS,
    full_view,
    line_view,
    order_row,
    paid_view,
    summary,
)
from shequn.referrals.binding import bind_by_policy
from shequn.tenancy.repo import (
    SETTINGS_PREFIX,
    load_settings,
    remember_settings,
    remembered_settings,
    settings_columns,
    settings_from_row,
)
from shequn.tenancy.rules import TenantSettings
from shequn.tenancy.tables import tenant_settings
from shequn.tiers.evaluation import apply_changes, evaluate_members
from shequn.tiers.repo import tiers_at
from shequn.tiers.rules import (
    PaymentFacts,
    TierSpec,
    counts_direct_customers,
    payment_may_upgrade,
    payment_may_upgrade_referrer,
)

ORDER_PREFIX = "o_"
TXN_CONSTRAINT = "uq_payments_tenant_id_provider_txn_id"


def pay_order(
    ctx: Ctx, *, order_id: str, provider_txn_id: str, amount_fen: int
) -> tuple[dict[str, Any], bool]:
    """Record the provider's payment callback. Idempotent on the provider transaction id; the
    amount must equal the amount due. Returns (order, replayed)."""
    txn = (provider_txn_id or "").strip()
    if not txn or len(txn) > 120:
        raise InvalidInput("provider_txn_id_invalid")
    if not 0 <= amount_fen <= MAX_AMOUNT_FEN:
        raise InvalidInput("amount_invalid", field="amount_fen")
    payment = _Callback(order_id, txn, amount_fen, ctx.clock.now())
    inputs = _inputs_from_copies(ctx, order_id)
    outcome: dict[str, Any] | _Refused = _Refused.MOVED
    if inputs is not None:
        outcome = _optimistic_write(ctx, inputs, payment)
    if outcome is _Refused.MOVED:
        inputs = _read_inputs(ctx, order_id)
        if inputs is not None:
            outcome = _optimistic_write(ctx, inputs, payment)
    if isinstance(outcome, dict):
        return outcome, False
    return _pay_with_locks(ctx, payment)


class _Refused(Enum):
    """Why the optimistic write wrote nothing: something it relied on moved (read it again),
    or the payment is one for the locking way."""

    MOVED = "moved"
    NEEDS_LOCKS = "needs_locks"


@dataclass(frozen=True)
class _Callback:
    order_id: str
    txn: str
    amount_fen: int
    at: datetime


@dataclass(frozen=True)
class _Inputs:
    """The order (as created), its buyer and the settings a payment is computed from."""

    order: UnpaidOrder
    buyer: Buyer
    settings: TenantSettings


def _inputs_from_copies(ctx: Ctx, order_id: str) -> _Inputs | None:
    unpaid = take_unpaid(ctx.snapshot, ctx.tenant_id, order_id)
    settings = remembered_settings(ctx.snapshot, ctx.tenant_id)
    if unpaid is None or settings is None:
        return None
    # The buyer as this process last saw it (it may have paid another order since).
    buyer = remembered_buyer(ctx.snapshot, ctx.tenant_id, unpaid.buyer.id) or unpaid.buyer
    return _Inputs(unpaid, buyer, settings)


# The order, its lines, its buyer and the tenant's settings, read without locks.
_payment_inputs = (
    select(order_lines, *[c.label(ORDER_PREFIX + c.name) for c in orders.c])
    .add_columns(*buyer_columns(), *settings_columns())
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


def _read_inputs(ctx: Ctx, order_id: str) -> _Inputs | None:
    with ctx.db.read() as tx:
        rows = [
            r._mapping
            for r in tx.execute(_payment_inputs, {"t_id": ctx.tenant_id, "o_id": order_id})
        ]
    if not rows:
        return None  # no such order: the locking way says so
    head = rows[0]
    buyer = buyer_from_row(head)
    settings = settings_from_row(head, SETTINGS_PREFIX)
    remember_buyer(ctx.snapshot, ctx.tenant_id, buyer)
    remember_settings(ctx.snapshot, settings)
    order = UnpaidOrder(
        order={k: head[ORDER_PREFIX + k] for k in SUMMARY_KEYS},
        lines=tuple(line_view(row) for row in rows),
        sale_lines=tuple(sale_line(row) for row in rows),
        buyer=buyer,
    )
    return _Inputs(order, buyer, settings)


def _optimistic_write(ctx: Ctx, inputs: _Inputs, payment: _Callback) -> dict[str, Any] | _Refused:
    """The payment in one statement, or why it wrote nothing."""
    order, buyer, settings = inputs.order.order, inputs.buyer, inputs.settings
    if order["status"] != OrderStatus.CREATED.value or order["total_fen"] != payment.amount_fen:
        return _Refused.NEEDS_LOCKS  # a replay, a refusal: the locking way explains it
    if _binds_on_payment(settings, buyer):
        return _Refused.NEEDS_LOCKS
    if order["attributed_sharer_id"] is not None:
        return _Refused.NEEDS_LOCKS  # its lines may be drawn from the sharer's cloud stock
    key = {"tenant_id": ctx.tenant_id, "id": payment.order_id}
    paid_values = {
        "status": OrderStatus.PAID.value,
        "paid_fen": payment.amount_fen,
        "paid_at": payment.at,
        "updated_at": payment.at,
    }
    with ctx.db.autocommit() as tx:
        tier_list = tiers_at(ctx.snapshot, tx, settings)
        if _may_change_tiers(tier_list, buyer, payment.amount_fen, inputs.order.sale_lines):
            return _Refused.NEEDS_LOCKS
        batch = WriteBatch()
        # In the order of shequn.locks: the order, then the buyer (the guard).
        batch.require(
            orders,
            key,
            equal={"status": OrderStatus.CREATED.value, "total_fen": order["total_fen"]},
        )
        batch.check(
            tenant_settings, {"tenant_id": ctx.tenant_id}, equal={"version": settings.version}
        )
        batch.update(orders, key, values=paid_values)
        staged = _stage_payment(
            tx, batch, ctx, payment, inputs.order.sale_lines, settings, tier_list, buyer, True
        )
        _stage_paid_event(batch, ctx, payment, staged)
        if not _flush(tx, batch, payment.txn):
            return _Refused.MOVED
    remember_buyer(ctx.snapshot, ctx.tenant_id, staged.buyer)
    return _paid_view({**order, **paid_values}, inputs.order.lines, staged.awards)


def _binds_on_payment(settings: TenantSettings, buyer: Buyer) -> bool:
    """Under the `first_paid_order` trigger, the first payment of an unbound buyer binds it."""
    return (
        buyer.lifetime_order_count == 0
        and buyer.referrer_id is None
        and settings.binding.trigger == "first_paid_order"
    )


@dataclass
class _Staged:
    buyer: Buyer  # as the payment leaves it
    first_purchase: bool
    awards: list[Award]
    new_tier: str | None = None


def _stage_payment(
    tx: Connection,
    batch: WriteBatch,
    ctx: Ctx,
    payment: _Callback,
    lines: Sequence[SaleLine],
    settings: TenantSettings,
    tier_list: list[TierSpec],
    buyer: Buyer,
    guard_buyer: bool,
) -> _Staged:
    """Everything a payment writes besides the order's own row and its event: the payment,
    the buyer's purchase facts, the commission lines and the journal. With `guard_buyer` the
    buyer's facts are written only if its row is still at the version read."""
    amount_fen, at, currency = payment.amount_fen, payment.at, settings.currency
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
    awards, accrual = accrue_commissions(
        tx,
        batch,
        settings=settings,
        tier_list=tier_list,
        order_id=payment.order_id,
        buyer=paid_buyer,
        lines=lines,
        at=at,
        cap_bp=runtime_cap_bp(settings.compliance_profile, settings.custom_commission_cap_bp),
        snapshot=ctx.snapshot,
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
    return _Staged(paid_buyer, paid_buyer.lifetime_order_count == 1, awards)


def _stage_paid_event(batch: WriteBatch, ctx: Ctx, payment: _Callback, staged: _Staged) -> None:
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


def _flush(tx: Connection, batch: WriteBatch, txn: str) -> bool:
    try:
        return batch.flush(tx).applied
    except IntegrityError as exc:
        if violated_constraint(exc) != TXN_CONSTRAINT:
            raise
        # Another order already holds this provider transaction id; nothing is kept.
        raise Conflict("payment_txn_reused", provider_txn_id=txn) from None


def _paid_view(
    order: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], awards: Sequence[Award]
) -> dict[str, Any]:
    return {
        **{k: order[k] for k in SUMMARY_KEYS},
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


# --- the locking way ---------------------------------------------------------------------------

_amount = bindparam("amount", type_=BigInteger)
_at = bindparam("at", type_=UTCDateTime())
_mark_paid = (
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
# What a payment needs once the order is marked paid: its lines and the buyer, locked.
_locked_inputs = (
    select(order_lines, *buyer_columns())
    .select_from(
        order_lines.join(
            members,
            (members.c.tenant_id == order_lines.c.tenant_id) & (members.c.id == bindparam("m_id")),
        )
    )
    .where(
        order_lines.c.tenant_id == bindparam("t_id"), order_lines.c.order_id == bindparam("o_id")
    )
    .order_by(order_lines.c.line_no)
    .with_for_update(of=members)
)


def _pay_with_locks(ctx: Ctx, payment: _Callback) -> tuple[dict[str, Any], bool]:
    with ctx.db.transaction() as tx:
        settings = load_settings(tx, ctx.tenant_id)
        if settings.binding.trigger == "first_paid_order":
            # The payment may bind its buyer, which changes the tree: its lock comes first.
            lock_referral_tree(tx, ctx.tenant_id)
        # The guarded update is the order's lock: of many identical callbacks one flips the
        # status, the others wait for it and then find the payment it recorded.
        take(tx, Lock.ORDERS)
        paid = tx.execute(
            _mark_paid,
            {
                "t_id": ctx.tenant_id,
                "o_id": payment.order_id,
                "amount": payment.amount_fen,
                "at": payment.at,
            },
        ).first()
        if paid is None:
            return _explain_unpaid(tx, ctx, payment)
        take(tx, Lock.MEMBERS)
        tier_list = tiers_at(ctx.snapshot, tx, settings)
        referrer_held = _lock_referrer(tx, ctx, tier_list, paid.buyer_id)
        line_rows = tx.execute(
            _locked_inputs,
            {"t_id": ctx.tenant_id, "o_id": payment.order_id, "m_id": paid.buyer_id},
        ).all()
        buyer = buyer_from_row(line_rows[0]._mapping)
        if _binds_on_payment(settings, buyer):
            buyer = _bind_on_first_payment(tx, ctx, settings, buyer, payment.at)
            referrer_held = buyer.referrer_id  # the binding holds its row
        batch = WriteBatch()
        lines = [sale_line(line._mapping) for line in line_rows]
        staged = _stage_payment(tx, batch, ctx, payment, lines, settings, tier_list, buyer, False)
        staged.new_tier = _upgrade(tx, ctx, tier_list, buyer, payment, lines, referrer_held)
        if paid.attributed_sharer_id is not None:
            drawn = draw_agent_stock(
                tx,
                batch,
                settings=settings,
                order_id=payment.order_id,
                agent_id=paid.attributed_sharer_id,
                lines=[line._mapping for line in line_rows],
                at=payment.at,
            )
            stage_entries(batch, tenant_id=ctx.tenant_id, at=payment.at, entries=drawn)
        _stage_paid_event(batch, ctx, payment, staged)
        _flush(tx, batch, payment.txn)
        forget_buyer(ctx.snapshot, ctx.tenant_id, buyer.id)  # its tier may have changed
        views = [line_view(line._mapping) for line in line_rows]
        return _paid_view(summary(paid), views, staged.awards), False


def _bind_on_first_payment(
    tx: Connection, ctx: Ctx, settings: TenantSettings, buyer: Buyer, at: datetime
) -> Buyer:
    """Under the `first_paid_order` trigger the binding happens now, so this very order
    already pays the new referrer's chain (the caller holds the tree lock)."""
    referrer = bind_by_policy(
        tx,
        settings=settings,
        member_id=buyer.id,
        phone=buyer.phone,
        external_id=buyer.external_id,
        actor=ctx.actor,
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


def _payment_facts(buyer: Buyer, amount_fen: int, lines: Sequence[SaleLine]) -> PaymentFacts:
    return PaymentFacts(
        paid_total_fen=buyer.paid_total_fen + amount_fen,
        max_order_fen=max(buyer.max_order_fen, amount_fen),
        order_fen=amount_fen,
        skus=frozenset(line.sku for line in lines),
        first_paying=buyer.facts.paid_order_count == 0,
        team_size=buyer.team_count,
    )


def _may_change_tiers(
    tier_list: list[TierSpec], buyer: Buyer, amount_fen: int, lines: Sequence[SaleLine]
) -> bool:
    """Whether the payment may move its buyer, or the referrer it makes a paying customer of,
    up a tier: the test, on what the payment already knows, that spares every other payment
    the read of its buyer's facts."""
    facts = _payment_facts(buyer, amount_fen, lines)
    return payment_may_upgrade(tier_list, buyer.tier_id, facts) or (
        buyer.referrer_id is not None and payment_may_upgrade_referrer(tier_list, facts)
    )


def _lock_referrer(
    tx: Connection, ctx: Ctx, tier_list: list[TierSpec], buyer_id: str
) -> str | None:
    """Where a tier counts direct paying customers, the payment may lift its buyer's referrer:
    it holds the referrer's row with the buyer's, both in key order. Returns the referrer."""
    if not counts_direct_customers(tier_list):
        return None
    referrer = tx.execute(
        select(members.c.referrer_id).where(
            members.c.tenant_id == ctx.tenant_id, members.c.id == buyer_id
        )
    ).scalar()
    if referrer is None:
        return None
    lock_members(tx, ctx.tenant_id, [buyer_id, referrer])
    return str(referrer)


def _upgrade(
    tx: Connection,
    ctx: Ctx,
    tier_list: list[TierSpec],
    buyer: Buyer,
    payment: _Callback,
    lines: Sequence[SaleLine],
    referrer_held: str | None,
) -> str | None:
    """Move the buyer (as it was before this payment), and the referrer it makes a paying
    customer of, up to the tiers their facts now reach, each change recorded with its cause;
    never down. Returns the buyer's new tier (the payment holds both rows)."""
    facts = _payment_facts(buyer, payment.amount_fen, lines)
    wanted = [buyer.id] if payment_may_upgrade(tier_list, buyer.tier_id, facts) else []
    counted = None
    if (
        buyer.referrer_id is not None
        and buyer.referrer_id == referrer_held
        and payment_may_upgrade_referrer(tier_list, facts)
    ):
        counted = buyer.referrer_id
        wanted.append(counted)
    if not wanted:
        return None
    _, changes = evaluate_members(
        tx,
        tenant_id=ctx.tenant_id,
        tier_list=tier_list,
        member_ids=wanted,
        now=payment.at,
        allow_demotion=False,
        counted_customer_of=counted,
    )
    made = apply_changes(
        tx,
        tenant_id=ctx.tenant_id,
        actor=ctx.actor,
        at=payment.at,
        changes=changes,
        source="payment",
    )
    for change in made:
        forget_buyer(ctx.snapshot, ctx.tenant_id, change.member_id)
    return next((c.to_tier for c in made if c.member_id == buyer.id), None)


def _explain_unpaid(tx: Connection, ctx: Ctx, payment: _Callback) -> tuple[dict[str, Any], bool]:
    """The guarded update matched nothing: say why, replay a payment that won the race, or
    refund a payment that came after its order was cancelled (the money must not be lost)."""
    tenant_id = ctx.tenant_id
    row = order_row(tx, tenant_id, payment.order_id, for_update=True)
    seen = _payment_by_txn(tx, tenant_id, payment.txn)
    if seen is not None:
        if seen.order_id != payment.order_id:
            raise Conflict("payment_txn_reused", order_id=seen.order_id)
        if seen.amount_fen != payment.amount_fen:
            # A retry repeats the callback exactly; another amount is a forged or garbled one.
            raise Conflict(
                "payment_replay_amount_mismatch",
                recorded_fen=seen.amount_fen,
                got_fen=payment.amount_fen,
            )
        return paid_view(full_view(tx, tenant_id, row)), True
    if row.status == OrderStatus.CANCELLED.value and row.paid_at is None:
        return _refund_late_payment(tx, ctx, row, payment), False
    if row.status != OrderStatus.CREATED.value:
        if row.paid_at is not None:
            raise Conflict("order_already_paid", id=payment.order_id)
        raise Conflict("order_transition_invalid", status=row.status, action="pay")
    raise InvalidInput(
        "payment_amount_mismatch", expected_fen=row.total_fen, got_fen=payment.amount_fen
    )


LATE_PAYMENT_REASON = "order cancelled before its payment arrived"


def _refund_late_payment(tx: Connection, ctx: Ctx, row: Any, payment: _Callback) -> dict[str, Any]:
    """The payment of an order already cancelled (left unpaid too long): it is recorded, and
    refunded in full at once, so that the provider returns the money to the buyer; the order
    stays cancelled and pays no commission."""
    settings = load_settings(tx, ctx.tenant_id)
    currency, amount, at = settings.currency, payment.amount_fen, payment.at
    refund_id = new_id("rfd")
    batch = WriteBatch()
    batch.insert(
        payments,
        [
            {
                "tenant_id": ctx.tenant_id,
                "id": new_id("pay"),
                "order_id": row.id,
                "provider_txn_id": payment.txn,
                "amount_fen": amount,
                "created_at": at,
            }
        ],
    )
    batch.update(
        orders,
        {"tenant_id": ctx.tenant_id, "id": row.id},
        values={"paid_fen": amount, "refunded_fen": amount, "paid_at": at, "updated_at": at},
    )
    if amount > 0:
        batch.insert(
            refunds,
            [
                {
                    "tenant_id": ctx.tenant_id,
                    "id": refund_id,
                    "order_id": row.id,
                    "amount_fen": amount,
                    "reason": LATE_PAYMENT_REASON,
                    "phase": "before_close",
                    "idempotency_key": None,
                    "commission_cancelled_fen": 0,
                    "commission_reversed_fen": 0,
                    "actor": ctx.actor,
                    "created_at": at,
                }
            ],
        )
        stage_entries(
            batch,
            tenant_id=ctx.tenant_id,
            at=at,
            entries=[
                JournalEntry(
                    "payment_received",
                    "order",
                    row.id,
                    [
                        Posting(system_account(Purpose.PAYMENT_CLEARING), -amount, currency),
                        Posting(brand_account(Purpose.SALES), amount, currency),
                    ],
                ),
                JournalEntry(
                    "payment_refunded",
                    "refund",
                    refund_id,
                    [
                        Posting(system_account(Purpose.PAYMENT_CLEARING), amount, currency),
                        Posting(brand_account(Purpose.SALES), -amount, currency),
                    ],
                ),
            ],
        )
    stage_events(
        batch,
        tenant_id=ctx.tenant_id,
        actor=ctx.actor,
        at=at,
        items=[
            Event(
                "LatePaymentRefunded",
                "order",
                row.id,
                {"provider_txn_id": payment.txn, "amount_fen": amount, "refund_id": refund_id},
            )
        ],
    )
    _flush(tx, batch, payment.txn)
    return paid_view(full_view(tx, ctx.tenant_id, order_row(tx, ctx.tenant_id, row.id)))


def _payment_by_txn(tx: Connection, tenant_id: str, txn: str) -> Any:
    return tx.execute(
        select(payments.c.order_id, payments.c.amount_fen).where(
            payments.c.tenant_id == tenant_id, payments.c.provider_txn_id == txn
        )
    ).first()
