"""KPIs per staff account, set-based: members, active members (any activity in the last 7
days), the GMV its members paid since they were given to it, and how fast it replies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, select

from shequn.community.activities.rules import ActivityKind
from shequn.community.staff.rules import load_bp, near_full
from shequn.community.tables import activities, staff_accounts, staff_assignments
from shequn.context import Ctx
from shequn.errors import InvalidInput
from shequn.orders.tables import orders

ACTIVE_WINDOW = timedelta(days=7)
MAX_DAYS = 366


def staff_kpis(ctx: Ctx, *, account_id: str | None = None, days: int = 30) -> list[dict[str, Any]]:
    """One row per account (or the one asked for): `members`, `active_members` (7 days),
    `attributed_gmv_fen` (paid less refunded, by its members since assigned, over `days`),
    `replies` and `avg_reply_seconds` / `max_reply_seconds` over `days`."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput("days_invalid", max=MAX_DAYS)
    now = ctx.clock.now()
    since = now - timedelta(days=days)
    s, a, act, o = staff_accounts.c, staff_assignments.c, activities.c, orders.c
    with ctx.db.read() as tx:
        query = select(staff_accounts).where(s.tenant_id == ctx.tenant_id)
        if account_id is not None:
            query = query.where(s.id == account_id)
        accounts = tx.execute(query.order_by(s.id)).all()
        if account_id is not None and not accounts:
            from shequn.errors import NotFound

            raise NotFound("staff_account_not_found", id=account_id)
        scope = [] if account_id is None else [a.staff_account_id == account_id]
        active: dict[str, int] = dict(
            tx.execute(
                select(a.staff_account_id, func.count(func.distinct(act.member_id)))
                .join(
                    activities,
                    and_(act.tenant_id == a.tenant_id, act.member_id == a.member_id),
                )
                .where(a.tenant_id == ctx.tenant_id, act.occurred_at >= now - ACTIVE_WINDOW, *scope)
                .group_by(a.staff_account_id)
            ).all()
        )
        gmv = dict(
            tx.execute(
                select(a.staff_account_id, func.sum(o.paid_fen - o.refunded_fen))
                .join(orders, and_(o.tenant_id == a.tenant_id, o.buyer_id == a.member_id))
                .where(
                    a.tenant_id == ctx.tenant_id,
                    o.paid_at.is_not(None),
                    o.paid_at >= a.assigned_at,
                    o.paid_at >= since,
                    *scope,
                )
                .group_by(a.staff_account_id)
            ).all()
        )
        reply_scope = [] if account_id is None else [act.staff_account_id == account_id]
        replies = {
            r[0]: r
            for r in tx.execute(
                select(
                    act.staff_account_id,
                    func.count(),
                    func.avg(act.value),
                    func.max(act.value),
                )
                .where(
                    act.tenant_id == ctx.tenant_id,
                    act.kind == ActivityKind.REPLY.value,
                    act.value.is_not(None),
                    act.occurred_at >= since,
                    *reply_scope,
                )
                .group_by(act.staff_account_id)
            ).all()
        }
    out = []
    for row in accounts:
        reply = replies.get(row.id)
        out.append(
            {
                "staff_account_id": row.id,
                "name": row.name,
                "status": row.status,
                "members": row.member_count,
                "friend_cap": row.friend_cap,
                "load_bp": load_bp(row.member_count, row.friend_cap),
                "near_full": near_full(row.member_count, row.friend_cap),
                "active_members": int(active.get(row.id, 0)),
                "attributed_gmv_fen": int(gmv.get(row.id) or 0),
                "replies": int(reply[1]) if reply else 0,
                "avg_reply_seconds": round(float(reply[2]))
                if reply and reply[2] is not None
                else None,
                "max_reply_seconds": int(reply[3]) if reply and reply[3] is not None else None,
                "days": days,
            }
        )
    return out
