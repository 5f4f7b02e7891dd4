"""The console's member reads: a searchable, keyset-paged list and the member 360 (profile,
tags, stage, tier, orders, wallet and commissions, team and its tree, bindings, events)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, desc, exists, or_, select

from shequn.context import Ctx
from shequn.errors import InvalidInput, NotFound
from shequn.events.tables import events
from shequn.ids import checked_cursor
from shequn.insights.console_money import commission_page
from shequn.insights.console_scope import member_visible
from shequn.members.repo import referred_buyers
from shequn.members.rules import StageFacts, derive_stage, normalise_phone
from shequn.members.service import get_member
from shequn.members.tables import member_tags, members
from shequn.orders.views import list_orders
from shequn.referrals.binding import binding_history
from shequn.referrals.tree import team_members, team_summary
from shequn.tenancy.repo import load_settings
from shequn.tiers.tables import tiers
from shequn.wallet.service import list_withdrawals, wallet

FILTERS = ("buyers", "repeat", "bound", "unbound", "agents")
TREE_DEPTH = 3
TREE_LIMIT = 300


def tier_names(tx: Connection, tenant_id: str) -> dict[str, str]:
    rows = tx.execute(
        select(tiers.c.id, tiers.c.name)
        .where(tiers.c.tenant_id == tenant_id)
        .order_by(tiers.c.rank)
    ).all()
    return {r.id: r.name for r in rows}


def _tags(tx: Connection, tenant_id: str, ids: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {i: [] for i in ids}
    if ids:
        for r in tx.execute(
            select(member_tags.c.member_id, member_tags.c.tag)
            .where(member_tags.c.tenant_id == tenant_id, member_tags.c.member_id.in_(list(ids)))
            .order_by(member_tags.c.tag)
        ):
            out[r.member_id].append(r.tag)
    return out


def _as_phone(text: str) -> str | None:
    try:
        return normalise_phone(text)
    except InvalidInput:
        return None


def search_members(
    ctx: Ctx,
    *,
    q: str | None = None,
    tag: str | None = None,
    tier_id: str | None = None,
    show: str | None = None,
    after: str | None = None,
    limit: int = 50,
    viewer: str | None = None,
) -> dict[str, Any]:
    """Members newest first, found by name (any part), phone or id, tag, tier, and what they
    did; `viewer` is a staff-account operator who sees only their own members."""
    if not 1 <= limit <= 200:
        raise InvalidInput("limit_out_of_range", low=1, high=200)
    if show is not None and show not in FILTERS:
        raise InvalidInput("member_filter_invalid", field="show")
    after = checked_cursor(after, "mem")
    t = ctx.tenant_id
    m = members
    query = select(
        m.c.id,
        m.c.name,
        m.c.phone,
        m.c.tier_id,
        m.c.referrer_id,
        m.c.team_count,
        m.c.direct_count,
        m.c.paid_order_count,
        m.c.lifetime_order_count,
        m.c.paid_total_fen,
        m.c.created_at,
    ).where(m.c.tenant_id == t, member_visible(t, viewer))
    text = (q or "").strip()
    if text:
        phone = _as_phone(text) if any(ch.isdigit() for ch in text) else None
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        found = [m.c.name.like(pattern, escape="\\"), m.c.id == text]
        if phone is not None:
            found.append(m.c.phone == phone)
        query = query.where(or_(*found))
    if tag:
        query = query.where(
            exists().where(
                member_tags.c.tenant_id == t,
                member_tags.c.member_id == m.c.id,
                member_tags.c.tag == tag.strip(),
            )
        )
    if tier_id:
        query = query.where(m.c.tier_id == tier_id)
    if show == "buyers":
        query = query.where(m.c.lifetime_order_count > 0)
    elif show == "repeat":
        query = query.where(m.c.lifetime_order_count >= 2)
    elif show == "bound":
        query = query.where(m.c.referrer_id.is_not(None))
    elif show == "unbound":
        query = query.where(m.c.referrer_id.is_(None))
    elif show == "agents":
        query = query.where(m.c.direct_count > 0)
    if after is not None:
        query = query.where(m.c.id < after)
    with ctx.db.read() as tx:
        rows = tx.execute(query.order_by(desc(m.c.id)).limit(limit + 1)).all()
        page = rows[:limit]
        ids = [r.id for r in page]
        tags = _tags(tx, t, ids)
        referred = referred_buyers(tx, t, ids)
        criteria = load_settings(tx, t).stage_criteria
        names = tier_names(tx, t)
    items = []
    for r in page:
        stage = derive_stage(
            StageFacts(paid_order_count=r.paid_order_count, referred_buyer_count=referred[r.id]),
            criteria,
        )
        items.append(
            {
                **dict(r._mapping),
                "tier": names.get(r.tier_id) if r.tier_id else None,
                "tags": tags[r.id],
                "stage": stage.value,
            }
        )
    return {
        "items": items,
        "next_after": page[-1].id if len(rows) > limit else None,
        "tiers": names,
    }


def member_filters(ctx: Ctx) -> dict[str, Any]:
    """What the member list can be filtered by: the tenant's tiers."""
    with ctx.db.read() as tx:
        return {"tiers": tier_names(tx, ctx.tenant_id)}


def require_visible(ctx: Ctx, *, member_id: str, viewer: str | None) -> None:
    """Refuse a member the viewer may not see as if it did not exist."""
    t = ctx.tenant_id
    with ctx.db.read() as tx:
        found = tx.execute(
            select(members.c.id).where(
                members.c.tenant_id == t, members.c.id == member_id, member_visible(t, viewer)
            )
        ).first()
    if found is None:
        raise NotFound("member_not_found", id=member_id)


def _tree(rows: Sequence[dict[str, Any]], root: str) -> list[dict[str, Any]]:
    """The team as nested nodes under `root` (each node: member, children)."""
    children: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        children.setdefault(r["referrer_id"], []).append({**r, "children": []})

    def attach(node_id: str, depth: int) -> list[dict[str, Any]]:
        found = children.get(node_id, [])
        for node in found:
            if depth < TREE_DEPTH:
                node["children"] = attach(node["id"], depth + 1)
        return found

    return attach(root, 1)


def member_360(ctx: Ctx, *, member_id: str, viewer: str | None = None) -> dict[str, Any]:
    """Everything the console shows of one member."""
    require_visible(ctx, member_id=member_id, viewer=viewer)
    member = get_member(ctx, member_id=member_id)
    t = ctx.tenant_id
    with ctx.db.read() as tx:
        names = tier_names(tx, t)
        chain_ids = [a for a in member["ancestors"] if a]
        chain = (
            {
                r.id: r.name
                for r in tx.execute(
                    select(members.c.id, members.c.name).where(
                        members.c.tenant_id == t, members.c.id.in_(chain_ids)
                    )
                )
            }
            if chain_ids
            else {}
        )
        recent_events = [
            {k: v for k, v in r._mapping.items() if k != "tenant_id"}
            for r in tx.execute(
                select(events)
                .where(
                    events.c.tenant_id == t,
                    events.c.subject_type == "member",
                    events.c.subject_id == member_id,
                )
                .order_by(desc(events.c.id))
                .limit(20)
            )
        ]
    team_rows = team_members(
        ctx, member_id=member_id, max_depth=TREE_DEPTH, after=None, limit=TREE_LIMIT
    )
    team_names = {r["id"]: r for r in team_rows}
    for r in team_rows:
        r["tier"] = names.get(r["tier_id"]) if r["tier_id"] else None
    orders = list_orders(ctx, buyer_id=member_id, limit=20)
    return {
        "member": {**member, "tier": names.get(member["tier_id"]) if member["tier_id"] else None},
        "chain": [{"id": a, "name": chain.get(a, a)} for a in chain_ids],
        "tiers": names,
        "wallet": wallet(ctx, member_id=member_id),
        "withdrawals": list_withdrawals(ctx, member_id=member_id, limit=10)["items"],
        "orders": orders["items"],
        "more_orders": orders["next_after"] is not None,
        "commissions": commission_page(ctx, beneficiary_id=member_id, limit=20)["items"],
        "team": team_summary(ctx, member_id=member_id),
        "tree": _tree(team_rows, member_id),
        "tree_cut": len(team_rows) >= TREE_LIMIT,
        "team_size_shown": len(team_names),
        "bindings": binding_history(ctx, member_id=member_id),
        "events": recent_events,
    }
