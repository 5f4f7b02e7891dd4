"""Binding members to referrers: share touches, the tenant's policy (first or last touch,
window, trigger, protection), and audited rebinds."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from shequn.context import Ctx
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import record_event
from shequn.ids import new_id
from shequn.locks import lock_referral_tree
from shequn.members.repo import member_or_none, require_member
from shequn.members.rules import clean_external_id, normalise_phone
from shequn.referrals.rules import (
    BindingSource,
    Touch,
    choose_touch,
    creates_cycle,
    protection_over,
)
from shequn.referrals.tables import referral_bindings, referral_touches
from shequn.referrals.tree import attach_new_member, lineage, set_referrer
from shequn.tenancy.repo import load_settings
from shequn.tenancy.rules import TenantSettings


def parse_source(source: str) -> BindingSource:
    """A binding source a request may name (`admin` is for rebinds only)."""
    try:
        parsed = BindingSource(source)
    except ValueError:
        raise InvalidInput("binding_source_invalid", source=source) from None
    if parsed is BindingSource.ADMIN:
        raise InvalidInput("binding_source_invalid", source=source)
    return parsed


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


VISITOR_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def visitor_key(visitor: str) -> str:
    """The key of a browser's touches before it is anyone: the visitor id a share link's
    redirect gave it (and named in the target URL), refused unless well formed."""
    if VISITOR_PATTERN.fullmatch(visitor) is None:
        raise InvalidInput("visitor_invalid")
    return f"visitor:{visitor}"


def claim_visitor_touches(tx: Connection, *, tenant_id: str, visitor: str, member_id: str) -> None:
    """The touches a browser collected by following share links become the new member's
    (so that the binding policy counts them as its own)."""
    tx.execute(
        update(referral_touches)
        .where(
            referral_touches.c.tenant_id == tenant_id,
            referral_touches.c.visitor_key == visitor_key(visitor),
        )
        .values(visitor_key=f"member:{member_id}")
    )


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
    `new_member` says the member was registered in this transaction (no downline yet). The
    caller holds the tree lock."""
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
        attach_new_member(
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
    parsed_source = parse_source(source)
    if sum(x is not None for x in (member_id, phone, external_id)) != 1:
        raise InvalidInput("touch_visitor_required")
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        settings = load_settings(tx, ctx.tenant_id)
        require_member(tx, ctx.tenant_id, sharer_id)
        if member_id is not None:
            visitor = require_member(tx, ctx.tenant_id, member_id)
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
            # Nothing is locked yet (the touch is a new row), so the tree lock comes first.
            lock_referral_tree(tx, ctx.tenant_id)
        if (
            movable
            and visitor is not None
            and not creates_cycle(visitor.id, lineage(tx, ctx.tenant_id, sharer_id))
        ):
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
        lock_referral_tree(tx, ctx.tenant_id)
        member = require_member(tx, ctx.tenant_id, member_id)
        if referrer_id is not None:
            if referrer_id == member_id:
                raise InvalidInput("self_referral")
            if member_or_none(tx, ctx.tenant_id, referrer_id) is None:
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
        require_member(tx, ctx.tenant_id, member_id)
        rows = tx.execute(
            select(referral_bindings)
            .where(
                referral_bindings.c.tenant_id == ctx.tenant_id,
                referral_bindings.c.member_id == member_id,
            )
            .order_by(referral_bindings.c.occurred_at, referral_bindings.c.id)
        ).all()
    return [{k: v for k, v in r._mapping.items() if k != "tenant_id"} for r in rows]


def forget_touches(
    tx: Connection, tenant_id: str, *, phone: str | None, external_id: str | None
) -> None:
    """Delete the share touches recorded under a phone or an external id (personal data)."""
    keys = [f"phone:{phone}"] if phone else []
    keys += [f"external:{external_id}"] if external_id else []
    if keys:
        tx.execute(
            delete(referral_touches).where(
                referral_touches.c.tenant_id == tenant_id,
                referral_touches.c.visitor_key.in_(keys),
            )
        )
