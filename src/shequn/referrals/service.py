"""Referral tree maintenance (closure table + ancestor columns + team counts) and the
binding use cases. Tree helpers run inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, delete, func, insert, literal, select, text, update
from sqlalchemy.orm import aliased

from shequn.context import Ctx
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import record_event
from shequn.ids import new_id
from shequn.members.tables import members
from shequn.referrals.rules import (
    BindingSource,
    Touch,
    choose_touch,
    creates_cycle,
    protection_over,
)
from shequn.referrals.tables import referral_bindings, referral_paths, referral_touches
from shequn.tenancy.rules import TenantSettings
from shequn.tenancy.service import load_settings


def lock_tree(tx: Connection, tenant_id: str) -> None:
    """Serialise changes to one tenant's referral tree (two concurrent rebinds could otherwise
    close a cycle between them). SQLite's write lock already serialises."""
    if tx.dialect.name == "postgresql":
        tx.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"referral-tree:{tenant_id}"},
        )


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
    tx.execute(
        update(members)
        .where(members.c.tenant_id == tenant_id, members.c.id.in_(ancestors_of_member))
        .values(team_count=members.c.team_count - size)
    )
    if previous is not None:
        tx.execute(
            update(members)
            .where(members.c.tenant_id == tenant_id, members.c.id == previous)
            .values(direct_count=members.c.direct_count - 1)
        )
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
        tx.execute(
            update(members)
            .where(members.c.tenant_id == tenant_id, members.c.id.in_(ancestors_of_member))
            .values(team_count=members.c.team_count + size)
        )
        tx.execute(
            update(members)
            .where(members.c.tenant_id == tenant_id, members.c.id == referrer_id)
            .values(direct_count=members.c.direct_count + 1)
        )
    tx.execute(
        update(members)
        .where(members.c.tenant_id == tenant_id, members.c.id == member_id)
        .values(referrer_id=referrer_id, binding_source=source, bound_at=at, updated_at=at)
    )
    _refresh_ancestor_columns(tx, tenant_id=tenant_id, member_id=member_id)
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


def _attach_new_member(
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
    tx.execute(
        update(members)
        .where(members.c.tenant_id == tenant_id, members.c.id.in_(chain))
        .values(
            team_count=members.c.team_count + 1,
            direct_count=members.c.direct_count + case((members.c.id == referrer_id, 1), else_=0),
        )
    )
    tx.execute(
        update(members)
        .where(members.c.tenant_id == tenant_id, members.c.id == member_id)
        .values(
            referrer_id=referrer_id,
            ancestor_2=chain[1] if len(chain) > 1 else None,
            ancestor_3=chain[2] if len(chain) > 2 else None,
            binding_source=source,
            bound_at=at,
            updated_at=at,
        )
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


def _refresh_ancestor_columns(tx: Connection, *, tenant_id: str, member_id: str) -> None:
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
    tx.execute(
        update(members)
        .where(members.c.tenant_id == tenant_id, members.c.id.in_(near))
        .values(referrer_id=ancestor_at(1), ancestor_2=ancestor_at(2), ancestor_3=ancestor_at(3))
    )


def touches_for(tx: Connection, *, tenant_id: str, visitor_keys: Sequence[str]) -> list[Touch]:
    rows = tx.execute(
        select(
            referral_touches.c.id,
            referral_touches.c.sharer_id,
            referral_touches.c.source,
            referral_touches.c.touched_at,
        ).where(
            referral_touches.c.tenant_id == tenant_id,
            referral_touches.c.visitor_key.in_(list(visitor_keys)),
        )
    ).all()
    return [Touch(r.sharer_id, r.source, r.touched_at, r.id) for r in rows]


def visitor_keys(member_id: str, phone: str | None, external_id: str | None) -> list[str]:
    keys = [f"member:{member_id}"]
    if phone:
        keys.append(f"phone:{phone}")
    if external_id:
        keys.append(f"external:{external_id}")
    return keys


def save_touch(
    tx: Connection,
    *,
    tenant_id: str,
    sharer_id: str,
    visitor_key: str,
    source: str,
    scene: str | None,
    at: datetime,
) -> Touch:
    touch_id = new_id("tch")
    tx.execute(
        insert(referral_touches).values(
            tenant_id=tenant_id,
            id=touch_id,
            sharer_id=sharer_id,
            visitor_key=visitor_key,
            source=source,
            scene=scene,
            touched_at=at,
        )
    )
    return Touch(sharer_id, source, at, touch_id)


def bind_by_policy(
    tx: Connection,
    *,
    settings: TenantSettings,
    member_id: str,
    phone: str | None,
    external_id: str | None,
    actor: str,
    at: datetime,
    new_member: bool = False,
) -> str | None:
    """Bind an unbound member to the touch the tenant's policy picks; returns the referrer.
    `new_member` says the member was registered in this transaction (no downline yet)."""
    touch = choose_touch(
        touches_for(
            tx,
            tenant_id=settings.tenant_id,
            visitor_keys=visitor_keys(member_id, phone, external_id),
        ),
        policy=settings.binding,
        now=at,
        member_id=member_id,
    )
    if touch is None:
        return None
    if new_member:
        _attach_new_member(
            tx,
            tenant_id=settings.tenant_id,
            member_id=member_id,
            referrer_id=touch.sharer_id,
            source=touch.source,
            actor=actor,
            at=at,
        )
        return touch.sharer_id
    if creates_cycle(member_id, lineage(tx, settings.tenant_id, touch.sharer_id)):
        return None  # a stale touch from one's own downline is ignored, not an error
    set_referrer(
        tx,
        tenant_id=settings.tenant_id,
        member_id=member_id,
        referrer_id=touch.sharer_id,
        source=touch.source,
        kind="bind",
        reason=None,
        actor=actor,
        at=at,
    )
    return touch.sharer_id


def _member_or_none(tx: Connection, tenant_id: str, member_id: str) -> Any:
    return tx.execute(
        select(members).where(members.c.tenant_id == tenant_id, members.c.id == member_id)
    ).first()


def _require_member(tx: Connection, tenant_id: str, member_id: str) -> Any:
    row = _member_or_none(tx, tenant_id, member_id)
    if row is None:
        raise NotFound("member_not_found", id=member_id)
    return row


def _parse_source(source: str) -> BindingSource:
    try:
        return BindingSource(source)
    except ValueError:
        raise InvalidInput("binding_source_invalid", source=source) from None


def record_touch(
    ctx: Ctx,
    *,
    sharer_id: str,
    member_id: str | None = None,
    phone: str | None = None,
    external_id: str | None = None,
    source: str = "share_link",
    scene: str | None = None,
) -> dict[str, Any]:
    """Log a share click / QR scan. A bound member under `last_touch` with an expired
    protection period moves to the new sharer; an unbound member is bound when the policy
    binds on registration."""
    from shequn.members.rules import clean_external_id, normalise_phone

    parsed_source = _parse_source(source)
    if parsed_source is BindingSource.ADMIN:
        raise InvalidInput("binding_source_invalid", source=source)
    if sum(x is not None for x in (member_id, phone, external_id)) != 1:
        raise InvalidInput("touch_visitor_required")
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        settings = load_settings(tx, ctx.tenant_id)
        _require_member(tx, ctx.tenant_id, sharer_id)
        if member_id is not None:
            visitor = _require_member(tx, ctx.tenant_id, member_id)
            if member_id == sharer_id:
                raise InvalidInput("self_referral")
            key = f"member:{member_id}"
        elif phone is not None:
            visitor = None
            key = f"phone:{normalise_phone(phone)}"
        else:
            visitor = None
            key = f"external:{clean_external_id(external_id)}"
        touch = save_touch(
            tx,
            tenant_id=ctx.tenant_id,
            sharer_id=sharer_id,
            visitor_key=key,
            source=parsed_source.value,
            scene=scene,
            at=now,
        )
        bound_to: str | None = None
        movable = (
            visitor is not None
            and visitor.referrer_id not in (None, sharer_id)
            and protection_over(settings.binding, bound_at=visitor.bound_at, now=now)
        )
        if movable and visitor is not None:
            lock_tree(tx, ctx.tenant_id)
            if not creates_cycle(visitor.id, lineage(tx, ctx.tenant_id, sharer_id)):
                set_referrer(
                    tx,
                    tenant_id=ctx.tenant_id,
                    member_id=visitor.id,
                    referrer_id=sharer_id,
                    source=parsed_source.value,
                    kind="auto_rebind",
                    reason=None,
                    actor=ctx.actor,
                    at=now,
                )
                bound_to = sharer_id
        record_event(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            type="ReferralTouched",
            subject_type="member",
            subject_id=sharer_id,
            payload={"source": parsed_source.value, "scene": scene, "visitor": member_id},
        )
    return {"id": touch.touch_id, "sharer_id": sharer_id, "rebound_to": bound_to}


def rebind_member(ctx: Ctx, *, member_id: str, referrer_id: str | None, reason: str) -> None:
    """An audited administrative move (dispute resolution); refuses cycles and self-referral."""
    clean_reason = reason.strip()
    if not clean_reason or len(clean_reason) > 500:
        raise InvalidInput("rebind_reason_required")
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        lock_tree(tx, ctx.tenant_id)
        member = _require_member(tx, ctx.tenant_id, member_id)
        if referrer_id is not None:
            if referrer_id == member_id:
                raise InvalidInput("self_referral")
            if _member_or_none(tx, ctx.tenant_id, referrer_id) is None:
                raise NotFound("referrer_not_found", id=referrer_id)
        if member.referrer_id == referrer_id:
            raise Conflict("rebind_same_referrer")
        set_referrer(
            tx,
            tenant_id=ctx.tenant_id,
            member_id=member_id,
            referrer_id=referrer_id,
            source=BindingSource.ADMIN.value,
            kind="rebind",
            reason=clean_reason,
            actor=ctx.actor,
            at=now,
        )


def binding_history(ctx: Ctx, *, member_id: str) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        _require_member(tx, ctx.tenant_id, member_id)
        rows = tx.execute(
            select(referral_bindings)
            .where(
                referral_bindings.c.tenant_id == ctx.tenant_id,
                referral_bindings.c.member_id == member_id,
            )
            .order_by(referral_bindings.c.occurred_at, referral_bindings.c.id)
        ).all()
    return [{k: v for k, v in r._mapping.items() if k != "tenant_id"} for r in rows]


def team_summary(ctx: Ctx, *, member_id: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        member = _require_member(tx, ctx.tenant_id, member_id)
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
        _require_member(tx, ctx.tenant_id, member_id)
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
