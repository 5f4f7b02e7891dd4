"""The portal's reads for one member: the team's latest orders and the member's own page."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, desc, select

from shequn.context import Ctx
from shequn.members.tables import members
from shequn.orders.tables import orders
from shequn.referrals.tables import referral_paths

TEAM_DEPTH = 3


def masked_name(name: str) -> str:
    """A teammate's name as another member sees it: its first character and a star."""
    clean = name.strip()
    if len(clean) <= 1:
        return clean
    return clean[0] + "*" * min(len(clean) - 1, 2)


def team_orders(ctx: Ctx, *, member_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """The latest paid orders of the member's team (three levels down), newest first."""
    t = ctx.tenant_id
    p = referral_paths
    rows = ctx.db
    with rows.read() as tx:
        found = tx.execute(
            select(
                orders.c.id,
                orders.c.status,
                orders.c.paid_fen,
                orders.c.refunded_fen,
                orders.c.paid_at,
                members.c.name,
                p.c.depth,
            )
            .select_from(
                p.join(
                    orders,
                    and_(orders.c.tenant_id == t, orders.c.buyer_id == p.c.descendant_id),
                ).join(members, and_(members.c.tenant_id == t, members.c.id == orders.c.buyer_id))
            )
            .where(
                p.c.tenant_id == t,
                p.c.ancestor_id == member_id,
                p.c.depth.between(1, TEAM_DEPTH),
                orders.c.paid_at.is_not(None),
            )
            .order_by(desc(orders.c.paid_at), desc(orders.c.id))
            .limit(limit)
        ).all()
    return [
        {
            "id": r.id,
            "status": r.status,
            "paid_fen": r.paid_fen,
            "refunded_fen": r.refunded_fen,
            "paid_at": r.paid_at,
            "buyer": masked_name(r.name),
            "depth": r.depth,
        }
        for r in found
    ]
