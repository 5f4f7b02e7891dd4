"""The commission lifecycle: accrue on payment, cancel or reverse on refund (release at
settlement is `shequn.settlement`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from shequn.batch import WriteBatch
from shequn.distribution.repo import load_plan
from shequn.distribution.rules import (
    Award,
    ChainMember,
    PlanMode,
    PlanSpec,
    SaleLine,
    compute_awards,
    scaled_amount,
)
from shequn.distribution.tables import commission_lines
from shequn.ids import new_id
from shequn.ledger.rules import (
    Posting,
    Purpose,
    brand_account,
    debt_repayment,
    member_account,
    split_reversal,
    stock_account,
    stock_currency,
)
from shequn.ledger.service import JournalEntry, debit_if_covered, lock_balances, post_transaction
from shequn.locks import Lock, take
from shequn.members.repo import Buyer
from shequn.members.tables import members
from shequn.snapshot import Snapshot
from shequn.tenancy.rules import TenantSettings
from shequn.tiers.rules import TierSpec

# The states in which a line still pays something.
_EARNING = ("pending", "available", "withdrawn")


def _needs_tiers(spec: PlanSpec) -> bool:
    return (
        spec.mode is PlanMode.DIFFERENTIAL
        or spec.peer_bonus_bp > 0
        or any(r.tier_ids is not None for r in spec.rules)
    )


def accrue_commissions(
    tx: Connection,
    batch: WriteBatch,
    *,
    settings: TenantSettings,
    tier_list: Sequence[TierSpec],
    order_id: str,
    buyer: Buyer,
    lines: Sequence[SaleLine],
    at: datetime,
    cap_bp: int,
    snapshot: Snapshot,
) -> tuple[list[Award], JournalEntry | None]:
    """Compute the active plan's commission for a paid order (no sale pays more than `cap_bp`
    in all), add its lines to the batch, and return the journal entry that freezes it in the
    uplines' pending wallets (the caller posts it)."""
    if settings.active_plan_id is None:
        return [], None
    upline_ids = buyer.uplines
    if not upline_ids:
        return [], None
    spec = load_plan(tx, settings.tenant_id, settings.active_plan_id, snapshot)
    upline_ids = upline_ids[: spec.depth]
    tier_of: dict[str, str | None] = {}
    if _needs_tiers(spec):
        tier_of = dict(
            tx.execute(
                select(members.c.id, members.c.tier_id).where(
                    members.c.tenant_id == settings.tenant_id, members.c.id.in_(upline_ids)
                )
            ).all()
        )
    ranks = {t.id: t.rank for t in tier_list}

    def as_chain(member_id: str, tier_id: str | None) -> ChainMember:
        return ChainMember(member_id, tier_id, ranks.get(tier_id) if tier_id else None)

    awards = compute_awards(
        spec,
        buyer=as_chain(buyer.id, buyer.tier_id),
        uplines=[as_chain(m, tier_of.get(m)) for m in upline_ids],
        lines=lines,
        cap_bp=cap_bp,
    )
    if not awards:
        return [], None
    batch.insert(
        commission_lines,
        [
            {
                "tenant_id": settings.tenant_id,
                "id": new_id("com"),
                "order_id": order_id,
                "order_line_id": a.line_id,
                "plan_id": settings.active_plan_id,
                "beneficiary_id": a.beneficiary_id,
                "level": a.level,
                "kind": a.kind.value,
                "rate_bp": a.rate_bp,
                "base_fen": a.base_fen,
                "amount_fen": a.amount_fen,
                "cancelled_fen": 0,
                "reversed_fen": 0,
                "withdrawn_fen": 0,
                "status": "pending",
                "created_at": at,
            }
            for a in awards
        ],
    )
    per_member: dict[str, int] = defaultdict(int)
    for a in awards:
        per_member[a.beneficiary_id] += a.amount_fen
    total = sum(per_member.values())
    entry = JournalEntry(
        kind="commission_accrued",
        ref_type="order",
        ref_id=order_id,
        items=[Posting(brand_account(Purpose.BRAND_CLEARING), -total, settings.currency)]
        + [
            Posting(member_account(m, Purpose.WALLET_PENDING), amount, settings.currency)
            for m, amount in sorted(per_member.items())
        ],
    )
    return awards, entry


OWN_SALE_KIND = "own_sale"
# The plan id of an agent's own-sale proceeds: no commission plan pays them.
OWN_SALE_PLAN = "cloud_stock"


def draw_agent_stock(
    tx: Connection,
    batch: WriteBatch,
    *,
    settings: TenantSettings,
    order_id: str,
    agent_id: str,
    lines: Sequence[Mapping[Any, Any]],
    at: datetime,
) -> list[JournalEntry]:
    """Fulfil the order's lines from the attributed agent's cloud stock (云仓), each line whole
    or not at all: one guarded update per line takes the units only if the agent holds them
    (parallel draws and stock orders never make stock negative). For every line drawn, the
    agent earns what the buyer paid for it as own-sale proceeds, frozen until the order closes
    like a commission (the agent paid the wholesale price for the units before). Returns the
    journal entries to post (the stock balances are already moved)."""
    entries: list[JournalEntry] = []
    proceeds: dict[str, int] = {}
    for line in lines:
        product_id, quantity = line["product_id"], line["quantity"]
        account = stock_account(agent_id, product_id)
        if not debit_if_covered(
            tx, tenant_id=settings.tenant_id, account_id=account, amount=quantity
        ):
            continue
        currency = stock_currency(product_id)
        entries.append(
            JournalEntry(
                kind="stock_drawn",
                ref_type="order",
                ref_id=order_id,
                items=[
                    Posting(account, -quantity, currency),
                    Posting(brand_account(Purpose.STOCK), quantity, currency),
                ],
                preapplied=frozenset({account}),
            )
        )
        paid = line["line_total_fen"] - line["refunded_fen"]
        if paid > 0:
            proceeds[line["id"]] = paid
    if not proceeds:
        return entries
    batch.insert(
        commission_lines,
        [
            {
                "tenant_id": settings.tenant_id,
                "id": new_id("com"),
                "order_id": order_id,
                "order_line_id": line_id,
                "plan_id": OWN_SALE_PLAN,
                "beneficiary_id": agent_id,
                "level": 1,
                "kind": OWN_SALE_KIND,
                "rate_bp": 10_000,
                "base_fen": amount,
                "amount_fen": amount,
                "cancelled_fen": 0,
                "reversed_fen": 0,
                "withdrawn_fen": 0,
                "status": "pending",
                "created_at": at,
            }
            for line_id, amount in sorted(proceeds.items())
        ],
    )
    total = sum(proceeds.values())
    entries.append(
        JournalEntry(
            kind="own_sale_accrued",
            ref_type="order",
            ref_id=order_id,
            items=[
                Posting(brand_account(Purpose.BRAND_CLEARING), -total, settings.currency),
                Posting(member_account(agent_id, Purpose.WALLET_PENDING), total, settings.currency),
            ],
        )
    )
    return entries


_shrink_line = (
    update(commission_lines)
    .where(
        commission_lines.c.tenant_id == bindparam("t_id"),
        commission_lines.c.id == bindparam("c_id"),
    )
    .values(
        cancelled_fen=commission_lines.c.cancelled_fen + bindparam("cancel"),
        reversed_fen=commission_lines.c.reversed_fen + bindparam("reverse"),
        status=bindparam("new_status"),
    )
)


def adjust_for_refund(
    tx: Connection,
    *,
    settings: TenantSettings,
    order_id: str,
    remaining_base: Mapping[str, int],
    refund_id: str,
    at: datetime,
) -> dict[str, int]:
    """Shrink the order's commission lines to what their remaining base earns. Pending lines
    are cancelled; released lines are reversed, taking what is available and recording the
    rest as debt. Returns {"cancelled_fen": …, "reversed_fen": …}.

    The caller holds the order. In the order of `shequn.locks`, the beneficiaries' accounts are
    locked before their lines: a withdrawal takes the same account first, then the lines."""
    cl = commission_lines
    beneficiaries = sorted(
        set(
            tx.execute(
                select(cl.c.beneficiary_id).where(
                    cl.c.tenant_id == settings.tenant_id,
                    cl.c.order_id == order_id,
                    cl.c.status.in_(_EARNING),
                )
            ).scalars()
        )
    )
    if not beneficiaries:
        return {"cancelled_fen": 0, "reversed_fen": 0}
    balances = lock_balances(
        tx,
        tenant_id=settings.tenant_id,
        account_ids=[
            member_account(m, p)
            for m in beneficiaries
            for p in (Purpose.WALLET_AVAILABLE, Purpose.DEBT)
        ],
    )
    take(tx, Lock.COMMISSION_LINES)
    rows = tx.execute(
        select(cl)
        .where(
            cl.c.tenant_id == settings.tenant_id,
            cl.c.order_id == order_id,
            cl.c.status.in_(_EARNING),
        )
        .order_by(cl.c.id)
        .with_for_update()
    ).all()
    updates = []
    cancel_by_member: dict[str, int] = defaultdict(int)
    reverse_by_member: dict[str, int] = defaultdict(int)
    for row in rows:
        net = row.amount_fen - row.cancelled_fen - row.reversed_fen
        target = scaled_amount(
            row.amount_fen,
            base_fen=row.base_fen,
            remaining_base_fen=remaining_base.get(row.order_line_id, row.base_fen),
        )
        delta = net - target
        if delta <= 0:
            continue
        if row.status == "pending":
            updates.append(
                {
                    "t_id": settings.tenant_id,
                    "c_id": row.id,
                    "cancel": delta,
                    "reverse": 0,
                    "new_status": "cancelled" if target == 0 else "pending",
                }
            )
            cancel_by_member[row.beneficiary_id] += delta
        else:
            updates.append(
                {
                    "t_id": settings.tenant_id,
                    "c_id": row.id,
                    "cancel": 0,
                    "reverse": delta,
                    "new_status": "reversed" if target == 0 else row.status,
                }
            )
            reverse_by_member[row.beneficiary_id] += delta
    if not updates:
        return {"cancelled_fen": 0, "reversed_fen": 0}
    tx.execute(_shrink_line, updates)
    currency = settings.currency
    items: list[Posting] = []
    for member_id, amount in sorted(cancel_by_member.items()):
        items.append(Posting(member_account(member_id, Purpose.WALLET_PENDING), -amount, currency))
    for member_id, amount in sorted(reverse_by_member.items()):
        available_id = member_account(member_id, Purpose.WALLET_AVAILABLE)
        from_available, to_debt = split_reversal(amount, balances.get(available_id, 0))
        items.append(Posting(available_id, -from_available, currency))
        items.append(Posting(member_account(member_id, Purpose.DEBT), -to_debt, currency))
    cancelled = sum(cancel_by_member.values())
    reversed_total = sum(reverse_by_member.values())
    items.append(
        Posting(brand_account(Purpose.BRAND_CLEARING), cancelled + reversed_total, currency)
    )
    post_transaction(
        tx,
        tenant_id=settings.tenant_id,
        kind="commission_adjusted",
        ref_type="refund",
        ref_id=refund_id,
        at=at,
        items=items,
    )
    return {"cancelled_fen": cancelled, "reversed_fen": reversed_total}


def withhold_lines(
    tx: Connection, *, settings: TenantSettings, line_ids: Sequence[str], at: datetime
) -> dict[str, int]:
    """Take back what commission lines still pay while an operator looks at them (a fraud
    hold): a pending line is cancelled, a released one reversed (what the wallet cannot cover
    becomes debt). Returns the amount withheld per line. The caller holds the lines' order."""
    cl = commission_lines
    wanted = sorted(set(line_ids))
    if not wanted:
        return {}
    beneficiaries = sorted(
        set(
            tx.execute(
                select(cl.c.beneficiary_id).where(
                    cl.c.tenant_id == settings.tenant_id, cl.c.id.in_(wanted)
                )
            ).scalars()
        )
    )
    balances = lock_balances(
        tx,
        tenant_id=settings.tenant_id,
        account_ids=[
            member_account(m, p)
            for m in beneficiaries
            for p in (Purpose.WALLET_AVAILABLE, Purpose.DEBT)
        ],
    )
    take(tx, Lock.COMMISSION_LINES)
    rows = tx.execute(
        select(cl)
        .where(cl.c.tenant_id == settings.tenant_id, cl.c.id.in_(wanted))
        .order_by(cl.c.id)
        .with_for_update()
    ).all()
    currency = settings.currency
    withheld: dict[str, int] = {}
    items: list[Posting] = []
    updates = []
    for row in rows:
        net = row.amount_fen - row.cancelled_fen - row.reversed_fen
        if net <= 0 or row.status not in _EARNING:
            continue
        withheld[row.id] = net
        pending = row.status == "pending"
        updates.append(
            {
                "t_id": settings.tenant_id,
                "c_id": row.id,
                "cancel": net if pending else 0,
                "reverse": 0 if pending else net,
                "new_status": "cancelled" if pending else "reversed",
            }
        )
        member = row.beneficiary_id
        if pending:
            items.append(Posting(member_account(member, Purpose.WALLET_PENDING), -net, currency))
        else:
            available_id = member_account(member, Purpose.WALLET_AVAILABLE)
            from_available, to_debt = split_reversal(net, balances.get(available_id, 0))
            balances[available_id] = balances.get(available_id, 0) - from_available
            items.append(Posting(available_id, -from_available, currency))
            items.append(Posting(member_account(member, Purpose.DEBT), -to_debt, currency))
    if not updates:
        return {}
    tx.execute(_shrink_line, updates)
    items.append(Posting(brand_account(Purpose.BRAND_CLEARING), sum(withheld.values()), currency))
    post_transaction(
        tx,
        tenant_id=settings.tenant_id,
        kind="commission_held",
        ref_type="order",
        ref_id=rows[0].order_id,
        at=at,
        items=items,
    )
    return withheld


def reissue_line(
    tx: Connection,
    *,
    settings: TenantSettings,
    line_id: str,
    remaining_base_fen: int,
    order_closed: bool,
    at: datetime,
) -> int:
    """Pay a withheld line again (its hold released): a new line worth what the original is
    worth on what is left of its base now, pending until the order closes or released at once
    if it has (repaying debt first). Returns its amount (0 if the order was refunded). The
    caller holds the order."""
    cl = commission_lines
    row = tx.execute(
        select(cl).where(cl.c.tenant_id == settings.tenant_id, cl.c.id == line_id)
    ).one()
    amount = scaled_amount(
        row.amount_fen, base_fen=row.base_fen, remaining_base_fen=remaining_base_fen
    )
    if amount <= 0:
        return 0
    currency = settings.currency
    beneficiary = row.beneficiary_id
    if order_closed:
        balances = lock_balances(
            tx,
            tenant_id=settings.tenant_id,
            account_ids=[member_account(beneficiary, Purpose.DEBT)],
        )
        repay = debt_repayment(amount, balances.get(member_account(beneficiary, Purpose.DEBT), 0))
        items = [
            Posting(member_account(beneficiary, Purpose.DEBT), repay, currency),
            Posting(
                member_account(beneficiary, Purpose.WALLET_AVAILABLE), amount - repay, currency
            ),
        ]
    else:
        items = [Posting(member_account(beneficiary, Purpose.WALLET_PENDING), amount, currency)]
    items.append(Posting(brand_account(Purpose.BRAND_CLEARING), -amount, currency))
    take(tx, Lock.COMMISSION_LINES)
    tx.execute(
        commission_lines.insert().values(
            tenant_id=settings.tenant_id,
            id=new_id("com"),
            order_id=row.order_id,
            order_line_id=row.order_line_id,
            plan_id=row.plan_id,
            beneficiary_id=beneficiary,
            level=row.level,
            kind=row.kind,
            rate_bp=row.rate_bp,
            base_fen=min(row.base_fen, max(0, remaining_base_fen)),
            amount_fen=amount,
            cancelled_fen=0,
            reversed_fen=0,
            withdrawn_fen=0,
            status="available" if order_closed else "pending",
            created_at=at,
            released_at=at if order_closed else None,
        )
    )
    post_transaction(
        tx,
        tenant_id=settings.tenant_id,
        kind="commission_released_from_hold",
        ref_type="commission",
        ref_id=line_id,
        at=at,
        items=items,
    )
    return amount
