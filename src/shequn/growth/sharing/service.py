"""Sharing programs, and their rewards: decided when a referred order closes, granted (or
held, or over the cap), taken back in proportion when the order is refunded after close.

A reward's effects are made in the order of `shequn.locks`: coupons, tiers, holds, points, and
money last; the caller holds the tenant's growth lock (`lock_growth_work`), which serialises
every grant, reversal and hold decision of the tenant."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from shequn.context import Ctx
from shequn.errors import InvalidInput, NotFound
from shequn.events.service import record_event
from shequn.growth.coupons.service import issue_from_program, require_template
from shequn.growth.coupons.tables import coupons
from shequn.growth.holds.rules import Reason
from shequn.growth.holds.service import open_hold, suspicions
from shequn.growth.points.service import EarnedLot, TakeBack, earn_lots, take_back_earned
from shequn.growth.settings.rules import GrowthSettings
from shequn.growth.sharing.rules import (
    MONEY_KINDS,
    RewardKind,
    RewardStatus,
    local_month_start,
    money_reward,
    runs_at,
    still_due,
    validate_program,
    within_caps,
)
from shequn.growth.sharing.tables import sharing_programs, sharing_rewards
from shequn.ids import checked_cursor, new_id
from shequn.ledger.rules import (
    Posting,
    Purpose,
    brand_account,
    debt_repayment,
    member_account,
    split_reversal,
)
from shequn.ledger.service import lock_balances, post_transaction
from shequn.locks import Lock, lock_rows
from shequn.members.repo import require_member, set_profile, set_tier
from shequn.orders.tables import order_lines, orders
from shequn.tenancy.rules import TenantSettings, local_day_start
from shequn.tiers.tables import tiers

SHARER, NEW_CUSTOMER = "sharer", "new_customer"


def _program_view(row: Row[Any]) -> dict[str, Any]:
    data = {k: v for k, v in row._mapping.items() if k != "tenant_id"}
    data["target_skus"] = list(row.target_skus)
    return data


def create_program(ctx: Ctx, **fields: Any) -> dict[str, Any]:
    """A sharing program: what the sharer (and a new customer) get when an order a share
    brought closes."""
    values = validate_program(fields)
    program_id = new_id("shp")
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        for key in ("coupon_template_id", "new_customer_coupon_template_id"):
            if values[key] is not None:
                require_template(tx, ctx.tenant_id, values[key])
        if values["tier_id"] is not None and (
            tx.execute(
                select(tiers.c.id).where(
                    tiers.c.tenant_id == ctx.tenant_id, tiers.c.id == values["tier_id"]
                )
            ).first()
            is None
        ):
            raise NotFound("tier_not_found", id=values["tier_id"])
        tx.execute(
            insert(sharing_programs).values(
                tenant_id=ctx.tenant_id, id=program_id, active=True, created_at=now, **values
            )
        )
        record_event(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            type="SharingProgramCreated",
            subject_type="sharing_program",
            subject_id=program_id,
            payload={"name": values["name"], "sharer_reward": values["sharer_reward"]},
        )
        row = tx.execute(
            select(sharing_programs).where(
                sharing_programs.c.tenant_id == ctx.tenant_id, sharing_programs.c.id == program_id
            )
        ).one()
    return _program_view(row)


def list_programs(ctx: Ctx) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(sharing_programs)
            .where(sharing_programs.c.tenant_id == ctx.tenant_id)
            .order_by(sharing_programs.c.id)
        ).all()
    return [_program_view(r) for r in rows]


def reward_view(row: Row[Any]) -> dict[str, Any]:
    return {k: v for k, v in row._mapping.items() if k != "tenant_id"}


def list_rewards(
    ctx: Ctx,
    *,
    member_id: str | None = None,
    order_id: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    if not 1 <= limit <= 500:
        raise InvalidInput("limit_out_of_range", low=1, high=500)
    after = checked_cursor(after, "shr")
    with ctx.db.read() as tx:
        query = select(sharing_rewards).where(sharing_rewards.c.tenant_id == ctx.tenant_id)
        if member_id is not None:
            query = query.where(sharing_rewards.c.member_id == member_id)
        if order_id is not None:
            query = query.where(sharing_rewards.c.order_id == order_id)
        if after is not None:
            query = query.where(sharing_rewards.c.id > after)
        rows = tx.execute(query.order_by(sharing_rewards.c.id).limit(limit + 1)).all()
    page = rows[:limit]
    return {
        "items": [reward_view(r) for r in page],
        "next_after": page[-1].id if len(rows) > limit else None,
    }


def reward_row(tx: Connection, tenant_id: str, reward_id: str) -> Row[Any]:
    row = tx.execute(
        select(sharing_rewards).where(
            sharing_rewards.c.tenant_id == tenant_id, sharing_rewards.c.id == reward_id
        )
    ).first()
    if row is None:
        raise NotFound("reward_not_found", id=reward_id)
    return row


def _first_order(tx: Connection, tenant_id: str, order: Row[Any]) -> bool:
    earlier = tx.execute(
        select(orders.c.id)
        .where(
            orders.c.tenant_id == tenant_id,
            orders.c.buyer_id == order.buyer_id,
            orders.c.id != order.id,
            orders.c.paid_at.is_not(None),
            orders.c.paid_at <= order.paid_at,
        )
        .limit(1)
    ).first()
    return earlier is None


def _counts(
    tx: Connection, tenant_id: str, program_id: str, member_id: str, since: datetime
) -> int:
    return int(
        tx.execute(
            select(func.count()).where(
                sharing_rewards.c.tenant_id == tenant_id,
                sharing_rewards.c.program_id == program_id,
                sharing_rewards.c.member_id == member_id,
                sharing_rewards.c.role == SHARER,
                sharing_rewards.c.status.in_(("granted", "held", "reversed")),
                sharing_rewards.c.created_at >= since,
            )
        ).scalar_one()
    )


def reward_closed_order(
    tx: Connection,
    *,
    settings: TenantSettings,
    growth: GrowthSettings,
    order_id: str,
    actor: str,
    at: datetime,
) -> list[str]:
    """Decide and grant the rewards of a closed order that a share brought (its attributed
    sharer is not its buyer), for every program running when it was paid; returns the rewards
    made (none the second time)."""
    tenant_id = settings.tenant_id
    order = tx.execute(
        select(orders).where(orders.c.tenant_id == tenant_id, orders.c.id == order_id)
    ).first()
    if (
        order is None
        or order.closed_at is None
        or order.attributed_sharer_id is None
        or order.attributed_sharer_id == order.buyer_id
    ):
        return []
    base = order.paid_fen - order.refunded_fen
    if base <= 0:
        return []
    programs = [
        p
        for p in tx.execute(
            select(sharing_programs)
            .where(sharing_programs.c.tenant_id == tenant_id, sharing_programs.c.active.is_(True))
            .order_by(sharing_programs.c.id)
        ).all()
        if runs_at(p.starts_at, p.ends_at, order.paid_at)
    ]
    if not programs:
        return []
    done = set(
        tx.execute(
            select(sharing_rewards.c.program_id, sharing_rewards.c.role).where(
                sharing_rewards.c.tenant_id == tenant_id, sharing_rewards.c.order_id == order_id
            )
        ).all()
    )
    skus = set(
        tx.execute(
            select(order_lines.c.sku).where(
                order_lines.c.tenant_id == tenant_id, order_lines.c.order_id == order_id
            )
        ).scalars()
    )
    first = _first_order(tx, tenant_id, order)
    sharer = order.attributed_sharer_id
    checks = suspicions(
        tx,
        tenant_id=tenant_id,
        growth=growth,
        buyer_id=order.buyer_id,
        beneficiaries={sharer: 1},
        at=order.paid_at,
        new_customer_reward=first,
    )[sharer]
    # The new customer's own coupon is held only for what says the customer itself is gaming.
    own = [r for r in checks if r in (Reason.VELOCITY, Reason.RE_REGISTRATION)]
    day = local_day_start(at, settings.time_zone)
    month = local_month_start(at, settings.time_zone)
    made: list[dict[str, Any]] = []
    for program in programs:
        if program.first_order_only and not first:
            continue
        if program.target_skus and not skus & set(program.target_skus):
            continue
        if (program.id, SHARER) not in done:
            kind = RewardKind(program.sharer_reward)
            capped = not within_caps(
                today=_counts(tx, tenant_id, program.id, sharer, day),
                this_month=_counts(tx, tenant_id, program.id, sharer, month),
                cap_per_day=program.cap_per_day,
                cap_per_month=program.cap_per_month,
            )
            made.append(
                {
                    "program": program,
                    "role": SHARER,
                    "member_id": sharer,
                    "kind": kind,
                    "amount_fen": money_reward(
                        kind,
                        paid_fen=base,
                        cashback_bp=program.cashback_bp,
                        amount_fen=program.amount_fen,
                    ),
                    "points": program.points if kind is RewardKind.POINTS else 0,
                    "template": program.coupon_template_id,
                    "tier_id": program.tier_id,
                    "status": RewardStatus.CAPPED
                    if capped
                    else (RewardStatus.HELD if checks else RewardStatus.GRANTED),
                    "reasons": checks,
                }
            )
        if (
            program.new_customer_coupon_template_id
            and first
            and (program.id, NEW_CUSTOMER) not in done
        ):
            made.append(
                {
                    "program": program,
                    "role": NEW_CUSTOMER,
                    "member_id": order.buyer_id,
                    "kind": RewardKind.COUPON,
                    "amount_fen": 0,
                    "points": 0,
                    "template": program.new_customer_coupon_template_id,
                    "tier_id": None,
                    "status": RewardStatus.HELD if own else RewardStatus.GRANTED,
                    "reasons": own,
                }
            )
    if not made:
        return []
    rows = []
    for item in made:
        item["id"] = new_id("shr")
        rows.append(
            {
                "tenant_id": tenant_id,
                "id": item["id"],
                "program_id": item["program"].id,
                "order_id": order_id,
                "role": item["role"],
                "member_id": item["member_id"],
                "buyer_id": order.buyer_id,
                "kind": item["kind"].value,
                "status": item["status"].value,
                "base_fen": base,
                "amount_fen": item["amount_fen"],
                "points": item["points"],
                "coupon_id": None,
                "tier_id": item["tier_id"],
                "previous_tier_id": None,
                "reversed_fen": 0,
                "reversed_points": 0,
                "created_at": at,
                "granted_at": None,
            }
        )
    tx.execute(insert(sharing_rewards), rows)
    granted = [item for item in made if item["status"] is RewardStatus.GRANTED]
    _grant(tx, settings=settings, growth=growth, items=granted, at=at)
    for item in made:
        if item["status"] is RewardStatus.HELD:
            open_hold(
                tx,
                tenant_id=tenant_id,
                kind="reward",
                subject_id=item["id"],
                member_id=item["member_id"],
                buyer_id=order.buyer_id,
                order_id=order_id,
                amount_fen=item["amount_fen"],
                points=item["points"],
                reasons=item["reasons"],
                actor=actor,
                at=at,
            )
    # Points and money come last (their lots and accounts are the last locks).
    _grant_points_and_money(tx, settings=settings, growth=growth, items=granted, at=at)
    record_event(
        tx,
        tenant_id=tenant_id,
        actor=actor,
        at=at,
        type="SharingRewardsDecided",
        subject_type="order",
        subject_id=order_id,
        payload={
            "rewards": [
                {
                    "id": i["id"],
                    "role": i["role"],
                    "kind": i["kind"].value,
                    "status": i["status"].value,
                }
                for i in made
            ]
        },
    )
    return [item["id"] for item in made]


def _grant(
    tx: Connection,
    *,
    settings: TenantSettings,
    growth: GrowthSettings,
    items: Sequence[dict[str, Any]],
    at: datetime,
) -> None:
    """The coupons and tier upgrades of rewards granted now (before any later lock)."""
    tenant_id = settings.tenant_id
    for item in items:
        values: dict[str, Any] = {"granted_at": at}
        if item["kind"] is RewardKind.COUPON:
            coupon_id = issue_from_program(
                tx,
                tenant_id=tenant_id,
                template_id=item["template"],
                member_id=item["member_id"],
                ref=item["id"],
                at=at,
            )
            values["coupon_id"] = coupon_id
            if coupon_id is None:
                values["status"] = RewardStatus.CAPPED.value
        tx.execute(
            update(sharing_rewards)
            .where(sharing_rewards.c.tenant_id == tenant_id, sharing_rewards.c.id == item["id"])
            .values(**values)
        )
    for item in items:
        if item["kind"] is RewardKind.TIER_UPGRADE:
            _upgrade_tier(
                tx,
                tenant_id=tenant_id,
                reward_id=item["id"],
                member_id=item["member_id"],
                tier_id=item["tier_id"],
                at=at,
            )


def _upgrade_tier(
    tx: Connection, *, tenant_id: str, reward_id: str, member_id: str, tier_id: str, at: datetime
) -> None:
    """Raise the sharer to the program's tier (never lower it)."""
    member = require_member(tx, tenant_id, member_id, for_update=True)
    ranks = dict(
        tx.execute(
            select(tiers.c.id, tiers.c.rank).where(
                tiers.c.tenant_id == tenant_id,
                tiers.c.id.in_([t for t in (tier_id, member.tier_id) if t]),
            )
        ).all()
    )
    if tier_id not in ranks:
        return
    if member.tier_id is not None and ranks.get(member.tier_id, -1) >= ranks[tier_id]:
        return
    set_tier(tx, tenant_id, member_id, tier_id, at)
    tx.execute(
        update(sharing_rewards)
        .where(sharing_rewards.c.tenant_id == tenant_id, sharing_rewards.c.id == reward_id)
        .values(previous_tier_id=member.tier_id)
    )
    record_event(
        tx,
        tenant_id=tenant_id,
        actor="system",
        at=at,
        type="MemberTierChanged",
        subject_type="member",
        subject_id=member_id,
        payload={
            "from": member.tier_id,
            "to": tier_id,
            "reason": "sharing_reward",
            "reward_id": reward_id,
        },
    )


def _grant_points_and_money(
    tx: Connection,
    *,
    settings: TenantSettings,
    growth: GrowthSettings,
    items: Sequence[dict[str, Any]],
    at: datetime,
) -> None:
    tenant_id = settings.tenant_id
    earn_lots(
        tx,
        tenant_id=tenant_id,
        lots=[
            EarnedLot(item["member_id"], "sharing", item["id"], item["points"])
            for item in items
            if item["kind"] is RewardKind.POINTS
        ],
        at=at,
        expiry_days=growth.points_expiry_days,
    )
    money = [i for i in items if i["kind"] in MONEY_KINDS and i["amount_fen"] > 0]
    if not money:
        return
    debts = lock_balances(
        tx,
        tenant_id=tenant_id,
        account_ids=sorted({member_account(i["member_id"], Purpose.DEBT) for i in money}),
    )
    for item in money:
        debt_id = member_account(item["member_id"], Purpose.DEBT)
        repay = debt_repayment(item["amount_fen"], debts.get(debt_id, 0))
        debts[debt_id] = debts.get(debt_id, 0) + repay
        post_transaction(
            tx,
            tenant_id=tenant_id,
            kind="sharing_reward",
            ref_type="sharing_reward",
            ref_id=item["id"],
            at=at,
            items=[
                Posting(
                    brand_account(Purpose.BRAND_CLEARING), -item["amount_fen"], settings.currency
                ),
                Posting(debt_id, repay, settings.currency),
                Posting(
                    member_account(item["member_id"], Purpose.WALLET_AVAILABLE),
                    item["amount_fen"] - repay,
                    settings.currency,
                ),
            ],
        )


def release_reward(
    tx: Connection,
    *,
    settings: TenantSettings,
    growth: GrowthSettings,
    reward_id: str,
    at: datetime,
) -> int:
    """Grant a held reward, on what is left of its order now; returns the money paid."""
    tenant_id = settings.tenant_id
    row = reward_row(tx, tenant_id, reward_id)
    order = tx.execute(
        select(orders.c.paid_fen, orders.c.refunded_fen).where(
            orders.c.tenant_id == tenant_id, orders.c.id == row.order_id
        )
    ).one()
    remaining = order.paid_fen - order.refunded_fen
    kind = RewardKind(row.kind)
    amount = still_due(row.amount_fen, base_fen=row.base_fen, remaining_fen=remaining)
    points = still_due(row.points, base_fen=row.base_fen, remaining_fen=remaining)
    if remaining <= 0:
        tx.execute(
            update(sharing_rewards)
            .where(sharing_rewards.c.tenant_id == tenant_id, sharing_rewards.c.id == reward_id)
            .values(
                status=RewardStatus.REVERSED.value,
                reversed_fen=row.amount_fen,
                reversed_points=row.points,
            )
        )
        return 0
    tx.execute(
        update(sharing_rewards)
        .where(sharing_rewards.c.tenant_id == tenant_id, sharing_rewards.c.id == reward_id)
        .values(
            status=RewardStatus.GRANTED.value,
            reversed_fen=row.amount_fen - amount,
            reversed_points=row.points - points,
        )
    )
    item = {
        "id": reward_id,
        "kind": kind,
        "member_id": row.member_id,
        "amount_fen": amount,
        "points": points,
        "template": None,
        "tier_id": row.tier_id,
    }
    if kind is RewardKind.COUPON:
        program = tx.execute(
            select(sharing_programs).where(
                sharing_programs.c.tenant_id == tenant_id, sharing_programs.c.id == row.program_id
            )
        ).one()
        item["template"] = (
            program.coupon_template_id
            if row.role == SHARER
            else program.new_customer_coupon_template_id
        )
    _grant(tx, settings=settings, growth=growth, items=[item], at=at)
    _grant_points_and_money(tx, settings=settings, growth=growth, items=[item], at=at)
    return amount if kind in MONEY_KINDS else 0


def cancel_reward(tx: Connection, *, tenant_id: str, reward_id: str) -> None:
    tx.execute(
        update(sharing_rewards)
        .where(sharing_rewards.c.tenant_id == tenant_id, sharing_rewards.c.id == reward_id)
        .values(status=RewardStatus.CANCELLED.value)
    )


def reverse_after_refund(
    tx: Connection, *, settings: TenantSettings, order_id: str, refund_id: str, at: datetime
) -> dict[str, int]:
    """Take back, in proportion to what the order has left unrefunded, what its granted rewards
    paid: money (the wallet first, then debt), points (never below zero), an unused coupon
    and a tier upgrade (once refunded in full). Returns the money and points taken back."""
    tenant_id = settings.tenant_id
    order = tx.execute(
        select(orders.c.paid_fen, orders.c.refunded_fen).where(
            orders.c.tenant_id == tenant_id, orders.c.id == order_id
        )
    ).one()
    remaining = order.paid_fen - order.refunded_fen
    rows = tx.execute(
        select(sharing_rewards)
        .where(
            sharing_rewards.c.tenant_id == tenant_id,
            sharing_rewards.c.order_id == order_id,
            sharing_rewards.c.status == RewardStatus.GRANTED.value,
        )
        .order_by(sharing_rewards.c.id)
    ).all()
    if not rows:
        return {"reversed_fen": 0, "reversed_points": 0}
    full = remaining <= 0
    coupons_back = [r.coupon_id for r in rows if r.coupon_id and full]
    if coupons_back:
        lock_rows(tx, Lock.COUPONS, coupons, tenant_id, coupons_back)
        tx.execute(
            update(coupons)
            .where(
                coupons.c.tenant_id == tenant_id,
                coupons.c.id.in_(coupons_back),
                coupons.c.status == "available",
            )
            .values(status="void")
        )
    for r in rows:
        if full and r.kind == RewardKind.TIER_UPGRADE.value and r.tier_id:
            member = require_member(tx, tenant_id, r.member_id, for_update=True)
            if member.tier_id == r.tier_id and r.previous_tier_id != r.tier_id:
                _set_tier_back(tx, tenant_id=tenant_id, member_id=r.member_id, reward=r, at=at)
    points_due = {
        r.id: r.points
        - r.reversed_points
        - still_due(r.points, base_fen=r.base_fen, remaining_fen=remaining)
        for r in rows
    }
    backs = [
        TakeBack(r.member_id, "sharing", r.id, points_due[r.id])
        for r in rows
        if points_due[r.id] > 0
    ]
    taken_points = sum(
        take_back_earned(tx, tenant_id=tenant_id, items=backs, reason_ref=refund_id, at=at).values()
    )
    for back in backs:
        tx.execute(
            update(sharing_rewards)
            .where(sharing_rewards.c.tenant_id == tenant_id, sharing_rewards.c.id == back.ref)
            .values(reversed_points=sharing_rewards.c.reversed_points + back.points)
        )
    money = {
        r.id: r.amount_fen
        - r.reversed_fen
        - still_due(r.amount_fen, base_fen=r.base_fen, remaining_fen=remaining)
        for r in rows
    }
    money = {k: v for k, v in money.items() if v > 0}
    by_id = {r.id: r for r in rows}
    if money:
        members_ = sorted({by_id[k].member_id for k in money})
        balances = lock_balances(
            tx,
            tenant_id=tenant_id,
            account_ids=[
                member_account(m, p)
                for m in members_
                for p in (Purpose.WALLET_AVAILABLE, Purpose.DEBT)
            ],
        )
        for reward_id, amount in sorted(money.items()):
            member_id = by_id[reward_id].member_id
            available_id = member_account(member_id, Purpose.WALLET_AVAILABLE)
            from_available, to_debt = split_reversal(amount, balances.get(available_id, 0))
            balances[available_id] = balances.get(available_id, 0) - from_available
            post_transaction(
                tx,
                tenant_id=tenant_id,
                kind="sharing_reward_reversed",
                ref_type="sharing_reward",
                ref_id=reward_id,
                at=at,
                items=[
                    Posting(available_id, -from_available, settings.currency),
                    Posting(member_account(member_id, Purpose.DEBT), -to_debt, settings.currency),
                    Posting(brand_account(Purpose.BRAND_CLEARING), amount, settings.currency),
                ],
            )
            tx.execute(
                update(sharing_rewards)
                .where(sharing_rewards.c.tenant_id == tenant_id, sharing_rewards.c.id == reward_id)
                .values(reversed_fen=sharing_rewards.c.reversed_fen + amount)
            )
    if full:
        tx.execute(
            update(sharing_rewards)
            .where(
                sharing_rewards.c.tenant_id == tenant_id,
                sharing_rewards.c.id.in_([r.id for r in rows]),
            )
            .values(status=RewardStatus.REVERSED.value)
        )
    return {"reversed_fen": sum(money.values()), "reversed_points": taken_points}


def _set_tier_back(
    tx: Connection, *, tenant_id: str, member_id: str, reward: Row[Any], at: datetime
) -> None:
    set_profile(tx, tenant_id, member_id, {"tier_id": reward.previous_tier_id, "updated_at": at})
    record_event(
        tx,
        tenant_id=tenant_id,
        actor="system",
        at=at,
        type="MemberTierChanged",
        subject_type="member",
        subject_id=member_id,
        payload={
            "from": reward.tier_id,
            "to": reward.previous_tier_id,
            "reason": "sharing_reward_reversed",
            "reward_id": reward.id,
        },
    )
