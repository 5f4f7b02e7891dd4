"""Reads of commission lines."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, select

from shequn.context import Ctx
from shequn.distribution.tables import COMMISSION_STATUSES, commission_lines
from shequn.errors import InvalidInput
from shequn.ids import checked_cursor
from shequn.members.repo import require_member


def line_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "order_id": row.order_id,
        "order_line_id": row.order_line_id,
        "plan_id": row.plan_id,
        "level": row.level,
        "kind": row.kind,
        "rate_bp": row.rate_bp,
        "base_fen": row.base_fen,
        "amount_fen": row.amount_fen,
        "cancelled_fen": row.cancelled_fen,
        "reversed_fen": row.reversed_fen,
        "withdrawn_fen": row.withdrawn_fen,
        "net_fen": row.amount_fen - row.cancelled_fen - row.reversed_fen,
        "status": row.status,
        "created_at": row.created_at,
        "released_at": row.released_at,
    }


def member_commissions(
    ctx: Ctx,
    *,
    member_id: str,
    status: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    if not 1 <= limit <= 500:
        raise InvalidInput("limit_out_of_range", low=1, high=500)
    if status is not None and status not in COMMISSION_STATUSES:
        raise InvalidInput("commission_status_invalid", status=status)
    after = checked_cursor(after, "com")
    with ctx.db.read() as tx:
        require_member(tx, ctx.tenant_id, member_id)
        query = select(commission_lines).where(
            commission_lines.c.tenant_id == ctx.tenant_id,
            commission_lines.c.beneficiary_id == member_id,
        )
        if status is not None:
            query = query.where(commission_lines.c.status == status)
        if after is not None:
            query = query.where(commission_lines.c.id > after)
        rows = tx.execute(query.order_by(commission_lines.c.id).limit(limit + 1)).all()
    page = rows[:limit]
    return {
        "items": [line_view(r) for r in page],
        "next_after": page[-1].id if len(rows) > limit else None,
    }


def order_commissions(tx: Connection, *, tenant_id: str, order_id: str) -> list[dict[str, Any]]:
    rows = tx.execute(
        select(commission_lines)
        .where(commission_lines.c.tenant_id == tenant_id, commission_lines.c.order_id == order_id)
        .order_by(commission_lines.c.level, commission_lines.c.id)
    ).all()
    return [{**line_view(r), "beneficiary_id": r.beneficiary_id} for r in rows]
