"""A tenant's headline figures, each one aggregate query."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, select

from shequn.context import Ctx
from shequn.distribution.tables import commission_lines
from shequn.ledger.rules import Purpose
from shequn.ledger.service import member_account_sql
from shequn.ledger.tables import accounts
from shequn.members.tables import members
from shequn.orders.tables import orders
from shequn.referrals.tables import referral_paths
from shequn.tiers.tables import tiers
from shequn.wallet.tables import withdrawals


def tenant_summary(ctx: Ctx, *, top: int = 8) -> dict[str, Any]:
    t = ctx.tenant_id
    net = (
        commission_lines.c.amount_fen
        - commission_lines.c.cancelled_fen
        - commission_lines.c.reversed_fen
    )
    with ctx.db.read() as tx:
        member_count, bound, buyers = tx.execute(
            select(
                func.count(),
                func.count(members.c.referrer_id),
                func.count(members.c.first_paid_at),
            ).where(members.c.tenant_id == t)
        ).one()
        # Levels, as the compliance report counts them: a path of depth d joins d + 1 members.
        depth = tx.execute(
            select(func.coalesce(func.max(referral_paths.c.depth) + 1, 0)).where(
                referral_paths.c.tenant_id == t
            )
        ).scalar_one()
        paid_orders, gmv, refunded = tx.execute(
            select(
                func.count(orders.c.paid_at),
                func.coalesce(func.sum(orders.c.paid_fen), 0),
                func.coalesce(func.sum(orders.c.refunded_fen), 0),
            ).where(orders.c.tenant_id == t)
        ).one()
        closed = tx.execute(
            select(func.count()).where(orders.c.tenant_id == t, orders.c.status == "closed")
        ).scalar_one()
        by_status = dict(
            tx.execute(
                select(commission_lines.c.status, func.coalesce(func.sum(net), 0))
                .where(commission_lines.c.tenant_id == t)
                .group_by(commission_lines.c.status)
            ).all()
        )
        paid_out = tx.execute(
            select(func.coalesce(func.sum(withdrawals.c.net_fen), 0)).where(
                withdrawals.c.tenant_id == t, withdrawals.c.status == "paid"
            )
        ).scalar_one()
        earned = (
            select(
                commission_lines.c.beneficiary_id.label("member_id"), func.sum(net).label("earned")
            )
            .where(commission_lines.c.tenant_id == t)
            .group_by(commission_lines.c.beneficiary_id)
            .subquery()
        )
        available = accounts.alias("available")
        top_rows = tx.execute(
            select(
                members.c.name,
                tiers.c.name.label("tier"),
                members.c.team_count,
                earned.c.earned,
                available.c.balance,
            )
            .select_from(
                earned.join(
                    members, and_(members.c.tenant_id == t, members.c.id == earned.c.member_id)
                )
                .outerjoin(tiers, and_(tiers.c.tenant_id == t, tiers.c.id == members.c.tier_id))
                .join(
                    available,
                    and_(
                        available.c.tenant_id == t,
                        available.c.id
                        == member_account_sql(members.c.id, Purpose.WALLET_AVAILABLE),
                    ),
                )
            )
            .order_by(earned.c.earned.desc(), members.c.id)
            .limit(top)
        ).all()
    figures = [
        ("members", member_count),
        ("bound_members", bound),
        ("buyers", buyers),
        ("deepest_referral", depth),
        ("paid_orders", paid_orders),
        ("closed_orders", closed),
        ("gmv_fen", int(gmv)),
        ("refunded_fen", int(refunded)),
        ("commission_pending_fen", int(by_status.get("pending", 0))),
        (
            "commission_released_fen",
            int(by_status.get("available", 0)) + int(by_status.get("withdrawn", 0)),
        ),
        ("paid_out_fen", int(paid_out)),
    ]
    return {
        "figures": figures,
        "top_earners": [
            {
                "name": r.name,
                "tier": r.tier,
                "team_count": r.team_count,
                "earned_fen": int(r.earned),
                "available_fen": int(r.balance),
            }
            for r in top_rows
        ],
    }
