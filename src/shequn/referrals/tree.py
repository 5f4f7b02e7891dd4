"""The referral tree: a closure table (`referral_paths`) beside the chain columns and team
counts of each member row, changed set-based. Helpers run inside the caller's transaction,
which holds the tenant's tree lock (`shequn.locks.lock_referral_tree`); the member rows are
written through `shequn.members.repo`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, literal, select
from sqlalchemy.orm import aliased

from shequn.context import Ctx
from shequn.errors import InvalidInput
from shequn.events.service import record_event
from shequn.ids import new_id
from shequn.members import repo as member_rows
from shequn.members.tables import members
from shequn.referrals.rules import creates_cycle
from shequn.referrals.tables import referral_bindings, referral_paths


def lineage(tx: Connection, tenant_id: str, member_id: str) -> list[str]:
    """The member and all of its ancestors, nearest first."""
    rows = tx.execute(
        select(referral_paths.c.ancestor_id)
        .where(
            referral_paths.c.tenant_id == tenant_id,
            referral_paths.c.descendant_id == member_id,
        )
        .order_by(referral_paths.c.depth)
    ).all()
    return [r.ancestor_id for r in rows]


def insert_root(tx: Connection, tenant_id: str, member_id: str) -> None:
    """A new member is a tree of its own until it is bound."""
    tx.execute(
        insert(referral_paths).values(
            tenant_id=tenant_id, ancestor_id=member_id, descendant_id=member_id, depth=0
        )
    )


def _write_binding(
    tx: Connection,
    *,
    tenant_id: str,
    member_id: str,
    referrer_id: str | None,
    previous: str | None,
    kind: str,
    source: str,
    reason: str | None,
    actor: str,
    at: datetime,
) -> None:
    tx.execute(
        insert(referral_bindings).values(
            tenant_id=tenant_id,
            id=new_id("bnd"),
            member_id=member_id,
            referrer_id=referrer_id,
            previous_referrer_id=previous,
            kind=kind,
            source=source,
            reason=reason,
            actor=actor,
            occurred_at=at,
        )
    )
    record_event(
        tx,
        tenant_id=tenant_id,
        actor=actor,
        at=at,
        type="MemberBound" if kind == "bind" else "MemberRebound",
        subject_type="member",
        subject_id=member_id,
        payload={
            "referrer_id": referrer_id,
            "previous_referrer_id": previous,
            "source": source,
            "reason": reason,
        },
    )


def set_referrer(
    tx: Connection,
    *,
    tenant_id: str,
    member_id: str,
    referrer_id: str | None,
    source: str,
    kind: str,
    reason: str | None,
    actor: str,
    at: datetime,
) -> None:
    """Move the member (with its whole subtree) under `referrer_id`, set-based.

    The caller holds the tree lock and has checked that both members exist."""
    previous = tx.execute(
        select(members.c.referrer_id).where(
            members.c.tenant_id == tenant_id, members.c.id == member_id
        )
    ).scalar_one()
    if previous == referrer_id:
        return
    if referrer_id is not None:
        if referrer_id == member_id:
            raise InvalidInput("self_referral")
        if creates_cycle(member_id, lineage(tx, tenant_id, referrer_id)):
            raise InvalidInput("referral_cycle", member_id=member_id, referrer_id=referrer_id)

    p = referral_paths
    subtree = select(p.c.descendant_id).where(
        p.c.tenant_id == tenant_id, p.c.ancestor_id == member_id
    )
    size = tx.execute(
        select(func.count())
        .select_from(p)
        .where(p.c.tenant_id == tenant_id, p.c.ancestor_id == member_id)
    ).scalar_one()
    ancestors_of_member = select(p.c.ancestor_id).where(
        p.c.tenant_id == tenant_id, p.c.descendant_id == member_id, p.c.depth > 0
    )
    member_rows.add_to_team_counts(tx, tenant_id, ancestors_of_member, -size)
    if previous is not None:
        member_rows.add_to_direct_count(tx, tenant_id, previous, -1)
    # Cut every path that enters the subtree from outside.
    tx.execute(
        delete(p).where(
            p.c.tenant_id == tenant_id,
            p.c.descendant_id.in_(subtree),
            p.c.ancestor_id.not_in(subtree),
        )
    )
    if referrer_id is not None:
        above = aliased(p, name="above")
        below = aliased(p, name="below")
        tx.execute(
            insert(p).from_select(
                ["tenant_id", "ancestor_id", "descendant_id", "depth"],
                select(
                    literal(tenant_id),
                    above.c.ancestor_id,
                    below.c.descendant_id,
                    above.c.depth + below.c.depth + 1,
                )
                .select_from(above.join(below, literal(True)))
                .where(
                    above.c.tenant_id == tenant_id,
                    above.c.descendant_id == referrer_id,
                    below.c.tenant_id == tenant_id,
                    below.c.ancestor_id == member_id,
                ),
            )
        )
        member_rows.add_to_team_counts(tx, tenant_id, ancestors_of_member, size)
        member_rows.add_to_direct_count(tx, tenant_id, referrer_id, 1)
    member_rows.set_referrer_columns(
        tx, tenant_id, member_id, referrer_id=referrer_id, source=source, at=at, chain_known=False
    )
    _refresh_chains_below(tx, tenant_id=tenant_id, member_id=member_id)
    _write_binding(
        tx,
        tenant_id=tenant_id,
        member_id=member_id,
        referrer_id=referrer_id,
        previous=previous,
        kind=kind,
        source=source,
        reason=reason,
        actor=actor,
        at=at,
    )


def attach_new_member(
    tx: Connection,
    *,
    tenant_id: str,
    member_id: str,
    referrer_id: str,
    source: str,
    actor: str,
    at: datetime,
) -> None:
    """Bind a member registered in this very transaction: it has no subtree and no referrer
    yet, so its paths are the referrer's lineage one level down, no path is cut, and no
    cycle is possible."""
    chain = lineage(tx, tenant_id, referrer_id)  # the referrer first, then its ancestors
    tx.execute(
        insert(referral_paths),
        [
            {"tenant_id": tenant_id, "ancestor_id": a, "descendant_id": member_id, "depth": d}
            for d, a in enumerate(chain, start=1)
        ],
    )
    member_rows.add_to_team_counts(tx, tenant_id, chain, 1, referrer_id=referrer_id)
    member_rows.set_referrer_columns(
        tx,
        tenant_id,
        member_id,
        referrer_id=referrer_id,
        ancestor_2=chain[1] if len(chain) > 1 else None,
        ancestor_3=chain[2] if len(chain) > 2 else None,
        source=source,
        at=at,
    )
    _write_binding(
        tx,
        tenant_id=tenant_id,
        member_id=member_id,
        referrer_id=referrer_id,
        previous=None,
        kind="bind",
        source=source,
        reason=None,
        actor=actor,
        at=at,
    )


def _refresh_chains_below(tx: Connection, *, tenant_id: str, member_id: str) -> None:
    """Members up to two levels below the moved one have new 2nd/3rd ancestors."""
    p = referral_paths

    def ancestor_at(depth: int) -> Any:
        return (
            select(p.c.ancestor_id)
            .where(
                p.c.tenant_id == members.c.tenant_id,
                p.c.descendant_id == members.c.id,
                p.c.depth == depth,
            )
            .scalar_subquery()
        )

    near = select(p.c.descendant_id).where(
        p.c.tenant_id == tenant_id, p.c.ancestor_id == member_id, p.c.depth <= 2
    )
    member_rows.refresh_chains(tx, tenant_id, near, ancestor_at)


def team_summary(ctx: Ctx, *, member_id: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        member = member_rows.require_member(tx, ctx.tenant_id, member_id)
        by_depth = tx.execute(
            select(referral_paths.c.depth, func.count())
            .where(
                referral_paths.c.tenant_id == ctx.tenant_id,
                referral_paths.c.ancestor_id == member_id,
                referral_paths.c.depth > 0,
            )
            .group_by(referral_paths.c.depth)
            .order_by(referral_paths.c.depth)
        ).all()
    return {
        "member_id": member_id,
        "direct_count": member.direct_count,
        "team_count": member.team_count,
        "by_depth": [{"depth": d, "count": c} for d, c in by_depth],
    }


def team_members(
    ctx: Ctx, *, member_id: str, max_depth: int | None, after: str | None, limit: int
) -> list[dict[str, Any]]:
    """One indexed query over the closure table."""
    p = referral_paths
    with ctx.db.read() as tx:
        member_rows.require_member(tx, ctx.tenant_id, member_id)
        query = (
            select(
                members.c.id, members.c.name, members.c.referrer_id, members.c.tier_id, p.c.depth
            )
            .select_from(
                p.join(
                    members,
                    and_(members.c.tenant_id == p.c.tenant_id, members.c.id == p.c.descendant_id),
                )
            )
            .where(p.c.tenant_id == ctx.tenant_id, p.c.ancestor_id == member_id, p.c.depth > 0)
        )
        if max_depth is not None:
            query = query.where(p.c.depth <= max_depth)
        if after is not None:
            query = query.where(p.c.descendant_id > after)
        rows = tx.execute(query.order_by(p.c.descendant_id).limit(limit)).all()
    return [dict(r._mapping) for r in rows]
