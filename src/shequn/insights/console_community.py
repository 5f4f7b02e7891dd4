"""The console's reads of communities: a community's groups (a staff-account operator sees the
groups of their own accounts and those holding members assigned to them), one group with its
members' names, and the communities and groups of one member."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select

from shequn.community.groups.service import get_group
from shequn.community.health.tables import community_alerts
from shequn.community.tables import (
    certificates,
    communities,
    community_members,
    groups,
    staff_accounts,
)
from shequn.context import Ctx
from shequn.errors import NotFound
from shequn.growth.holds.tables import holds
from shequn.growth.stock.service import overstocked_in
from shequn.growth.stock.tables import stock_buybacks, stock_orders
from shequn.ids import checked_cursor
from shequn.insights.console_scope import assigned_member_ids
from shequn.members.tables import members
from shequn.tiers.tables import tiers

GROUP_PAGE = 50
MEMBER_PAGE = 100


def own_account_ids(tenant_id: str, operator: str) -> Any:
    """A subquery of the staff accounts that `operator` (a console login) runs."""
    return select(staff_accounts.c.id).where(
        staff_accounts.c.tenant_id == tenant_id,
        func.lower(staff_accounts.c.operator) == operator.lower(),
    )


def _groups_visible(tenant_id: str, operator: str | None) -> Any:
    """The condition a group row meets when the user may see it (`operator` None: any)."""
    if operator is None:
        return groups.c.tenant_id == tenant_id
    c = community_members.c
    holds_assigned = (
        select(c.group_id)
        .where(c.tenant_id == tenant_id, c.member_id.in_(assigned_member_ids(tenant_id, operator)))
        .where(c.group_id.is_not(None))
    )
    return and_(
        groups.c.tenant_id == tenant_id,
        or_(
            groups.c.staff_account_id.in_(own_account_ids(tenant_id, operator)),
            groups.c.id.in_(holds_assigned),
        ),
    )


def visible_community_ids(ctx: Ctx, *, viewer: str | None) -> set[str] | None:
    """The communities a user sees (None: every one of the tenant)."""
    if viewer is None:
        return None
    with ctx.db.read() as tx:
        return set(
            tx.execute(
                select(groups.c.community_id)
                .where(_groups_visible(ctx.tenant_id, viewer))
                .distinct()
            ).scalars()
        )


def community_groups(
    ctx: Ctx, *, community_id: str, viewer: str | None = None, after: str | None = None
) -> dict[str, Any]:
    """A page of the community's groups by id, with each one's room and whether it is over
    its cap."""
    after = checked_cursor(after, "grp")
    g = groups.c
    query = select(groups, staff_accounts.c.name.label("staff_name")).select_from(
        groups.outerjoin(
            staff_accounts,
            and_(
                staff_accounts.c.tenant_id == g.tenant_id, staff_accounts.c.id == g.staff_account_id
            ),
        )
    )
    query = query.where(_groups_visible(ctx.tenant_id, viewer), g.community_id == community_id)
    if after is not None:
        query = query.where(g.id > after)
    with ctx.db.read() as tx:
        _require_community(tx, ctx.tenant_id, community_id)
        rows = tx.execute(query.order_by(g.id).limit(GROUP_PAGE + 1)).all()
    page = rows[:GROUP_PAGE]
    return {
        "items": [_group_row(r) for r in page],
        "next_after": page[-1].id if len(rows) > GROUP_PAGE else None,
    }


def _group_row(row: Any) -> dict[str, Any]:
    data = {k: v for k, v in row._mapping.items() if k != "tenant_id"}
    data["room"] = max(0, data["cap"] - data["size"])
    data["oversize"] = data["size"] > data["cap"]
    data["fill_bp"] = data["size"] * 10_000 // data["cap"] if data["cap"] else 0
    return data


def _require_community(tx: Connection, tenant_id: str, community_id: str) -> Any:
    row = tx.execute(
        select(communities.c.id, communities.c.name).where(
            communities.c.tenant_id == tenant_id, communities.c.id == community_id
        )
    ).first()
    if row is None:
        raise NotFound("community_not_found", id=community_id)
    return row


def group_page(
    ctx: Ctx, *, group_id: str, viewer: str | None = None, after: str | None = None
) -> dict[str, Any]:
    """One group: its figures, its community, and a page of its members (name, role, tier,
    when they joined); a staff-account operator sees a group of theirs whole and, of another
    group, only the members assigned to them."""
    after = checked_cursor(after, "mem")
    group = get_group(ctx, group_id=group_id)
    t = ctx.tenant_id
    c = community_members.c
    with ctx.db.read() as tx:
        visible = tx.execute(
            select(groups.c.id).where(_groups_visible(t, viewer), groups.c.id == group_id)
        ).first()
        if visible is None:
            raise NotFound("group_not_found", id=group_id)
        own = viewer is None or (
            group["staff_account_id"] is not None
            and tx.execute(
                select(func.count()).where(
                    staff_accounts.c.id == group["staff_account_id"],
                    staff_accounts.c.id.in_(own_account_ids(t, viewer)),
                )
            ).scalar_one()
            > 0
        )
        community = _require_community(tx, t, group["community_id"])
        staff_name = (
            tx.execute(
                select(staff_accounts.c.name).where(
                    staff_accounts.c.tenant_id == t,
                    staff_accounts.c.id == group["staff_account_id"],
                )
            ).scalar_one_or_none()
            if group["staff_account_id"]
            else None
        )
        query = (
            select(
                c.member_id,
                c.role,
                c.joined_at,
                members.c.name,
                members.c.phone,
                tiers.c.name.label("tier"),
            )
            .select_from(
                community_members.join(
                    members, and_(members.c.tenant_id == c.tenant_id, members.c.id == c.member_id)
                ).outerjoin(
                    tiers, and_(tiers.c.tenant_id == c.tenant_id, tiers.c.id == members.c.tier_id)
                )
            )
            .where(c.tenant_id == t, c.group_id == group_id)
        )
        if not own and viewer is not None:
            query = query.where(c.member_id.in_(assigned_member_ids(t, viewer)))
        if after is not None:
            query = query.where(c.member_id > after)
        rows = tx.execute(query.order_by(c.member_id).limit(MEMBER_PAGE + 1)).all()
    page = rows[:MEMBER_PAGE]
    group["fill_bp"] = group["size"] * 10_000 // group["cap"] if group["cap"] else 0
    return {
        "group": group,
        "community": {"id": community.id, "name": community.name},
        "staff_name": staff_name,
        "members": [dict(r._mapping) for r in page],
        "next_after": page[-1].member_id if len(rows) > MEMBER_PAGE else None,
        "whole": own,
    }


def member_groups(ctx: Ctx, *, member_id: str) -> list[dict[str, Any]]:
    """The communities a member belongs to, with the role and the group of each."""
    c = community_members.c
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(
                c.community_id,
                c.role,
                c.group_id,
                c.joined_at,
                communities.c.name.label("community_name"),
                groups.c.name.label("group_name"),
            )
            .select_from(
                community_members.join(
                    communities,
                    and_(
                        communities.c.tenant_id == c.tenant_id,
                        communities.c.id == c.community_id,
                    ),
                ).outerjoin(
                    groups, and_(groups.c.tenant_id == c.tenant_id, groups.c.id == c.group_id)
                )
            )
            .where(c.tenant_id == ctx.tenant_id, c.member_id == member_id)
            .order_by(c.joined_at, c.community_id)
        ).all()
    return [dict(r._mapping) for r in rows]


def group_alerts(ctx: Ctx) -> dict[str, int]:
    """What the dashboard tells of the tenant's groups: how many are over their cap, and how
    many are full."""
    g = groups.c
    with ctx.db.read() as tx:
        total, oversize, full = tx.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((g.size > g.cap, 1), else_=0)), 0),
                func.coalesce(func.sum(case((g.size == g.cap, 1), else_=0)), 0),
            ).where(g.tenant_id == ctx.tenant_id)
        ).one()
    return {"groups": int(total), "oversize": int(oversize), "full": int(full)}


def member_certificates(ctx: Ctx, *, member_id: str) -> list[dict[str, Any]]:
    """The certificates issued to a member, newest first (revoked ones too, marked)."""
    c = certificates.c
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(
                c.id,
                c.serial,
                c.kind,
                c.title,
                c.tier,
                c.territory,
                c.valid_from,
                c.valid_until,
                c.issued_at,
                c.revoked_at,
            )
            .where(c.tenant_id == ctx.tenant_id, c.member_id == member_id)
            .order_by(c.issued_at.desc(), c.id.desc())
        ).all()
    return [dict(r._mapping) for r in rows]


def recent_certificates(ctx: Ctx, *, limit: int = 20) -> list[dict[str, Any]]:
    """The tenant's latest certificates with their holders."""
    c = certificates.c
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(
                c.id,
                c.serial,
                c.kind,
                c.title,
                c.holder_name,
                c.member_id,
                c.issued_at,
                c.revoked_at,
            )
            .where(c.tenant_id == ctx.tenant_id)
            .order_by(c.issued_at.desc(), c.id.desc())
            .limit(limit)
        ).all()
    return [dict(r._mapping) for r in rows]


def open_alerts(ctx: Ctx) -> dict[str, int]:
    """What waits for an operator beyond money: fraud holds not yet decided (and what they
    withhold), groups over their cap, community alerts, and agents holding more stock than
    they sell within the cover limit."""
    h, g = holds.c, groups.c
    with ctx.db.read() as tx:
        overstocked = overstocked_in(tx, ctx.tenant_id, ctx.clock.now())
        held, held_fen = tx.execute(
            select(func.count(), func.coalesce(func.sum(h.amount_fen), 0)).where(
                h.tenant_id == ctx.tenant_id, h.status == "held"
            )
        ).one()
        oversize = tx.execute(
            select(func.count()).where(g.tenant_id == ctx.tenant_id, g.size > g.cap)
        ).scalar_one()
        a = community_alerts.c
        kinds: dict[str, int] = {
            str(kind): int(n)
            for kind, n in tx.execute(
                select(a.kind, func.count())
                .where(a.tenant_id == ctx.tenant_id, a.status == "open")
                .group_by(a.kind)
            ).all()
        }
    return {
        "holds": int(held),
        "holds_fen": int(held_fen),
        "oversize_groups": int(oversize),
        "crisis": int(kinds.get("crisis", 0)),
        "group_alerts": int(sum(n for k, n in kinds.items() if k != "crisis")),
        "overstocked": len({o["member_id"] for o in overstocked}),
    }


def require_hold(ctx: Ctx, *, hold_id: str) -> None:
    """Refuse a hold the tenant does not have."""
    with ctx.db.read() as tx:
        found = tx.execute(
            select(holds.c.id).where(holds.c.tenant_id == ctx.tenant_id, holds.c.id == hold_id)
        ).first()
    if found is None:
        raise NotFound("hold_not_found", id=hold_id)


def stock_history(ctx: Ctx, *, member_id: str, limit: int = 20) -> dict[str, Any]:
    """An agent's latest stock orders (what was bought, for how much) and buybacks."""
    o, b = stock_orders.c, stock_buybacks.c
    with ctx.db.read() as tx:
        ordered = tx.execute(
            select(o.id, o.lines, o.amount_fen, o.created_at)
            .where(o.tenant_id == ctx.tenant_id, o.member_id == member_id)
            .order_by(o.created_at.desc(), o.id.desc())
            .limit(limit)
        ).all()
        bought_back = tx.execute(
            select(b.id, b.quantity, b.amount_fen, b.created_at)
            .where(b.tenant_id == ctx.tenant_id, b.member_id == member_id)
            .order_by(b.created_at.desc(), b.id.desc())
            .limit(limit)
        ).all()
    return {
        "orders": [
            {
                "id": r.id,
                "units": sum(int(line["quantity"]) for line in r.lines),
                "skus": [str(line["sku"]) for line in r.lines],
                "amount_fen": int(r.amount_fen),
                "created_at": r.created_at,
            }
            for r in ordered
        ],
        "buybacks": [dict(r._mapping) for r in bought_back],
    }
