"""Registering a member: the member row with its tags and accounts, the touch its referrer
link counts as, its place in the referral tree, and the binding the tenant's policy makes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError

from shequn.context import Ctx
from shequn.errors import InvalidInput, NotFound
from shequn.events.service import record_event
from shequn.ids import new_id
from shequn.locks import lock_referral_tree
from shequn.members.repo import insert_member, member_or_none
from shequn.members.rules import clean_external_id, normalise_phone
from shequn.members.service import (
    check_unique,
    clean_name,
    clean_tags,
    explain_identity_conflict,
    member_view,
    open_member,
)
from shequn.referrals.binding import (
    bind_by_policy,
    claim_visitor_touches,
    parse_source,
    save_touch,
    visitor_key,
)
from shequn.referrals.tree import insert_root
from shequn.tenancy.repo import load_settings
from shequn.tiers.repo import require_tier


def create_member(
    ctx: Ctx,
    *,
    name: str,
    phone: str | None = None,
    external_id: str | None = None,
    referrer_id: str | None = None,
    source: str = "share_link",
    scene: str | None = None,
    tags: Sequence[str] | None = None,
    tier_id: str | None = None,
    visitor: str | None = None,
) -> dict[str, Any]:
    """Register a member. An explicit referrer counts as a touch now, and so do the share
    links the member's browser followed (`visitor`, the id their redirect named); the
    tenant's binding policy (first/last touch, window, trigger) then decides who the member
    is bound to."""
    member_name = clean_name(name)
    clean_phone = normalise_phone(phone) if phone is not None else None
    clean_external = clean_external_id(external_id)
    member_tags = clean_tags(tags)
    if visitor is not None:
        visitor_key(visitor)  # refused before anything is written
    binding_source = parse_source(source)
    member_id = new_id("mem")
    now = ctx.clock.now()
    try:
        with ctx.db.transaction() as tx:
            # A registration changes the tree (its root, maybe its binding): its lock first.
            lock_referral_tree(tx, ctx.tenant_id)
            settings = load_settings(tx, ctx.tenant_id)
            if referrer_id is not None:
                referrer = member_or_none(tx, ctx.tenant_id, referrer_id)
                if referrer is None:
                    raise NotFound("referrer_not_found", id=referrer_id)
                # Registering oneself again under one's own link: say so (before `phone_taken`).
                if clean_phone is not None and referrer.phone == clean_phone:
                    raise InvalidInput("self_referral")
            check_unique(tx, ctx.tenant_id, phone=clean_phone, external_id=clean_external)
            if tier_id is not None:
                require_tier(tx, ctx.tenant_id, tier_id)
            insert_member(
                tx,
                tenant_id=ctx.tenant_id,
                member_id=member_id,
                name=member_name,
                phone=clean_phone,
                external_id=clean_external,
                tier_id=tier_id,
                at=now,
            )
            open_member(
                tx, ctx, member_id=member_id, tags=member_tags, currency=settings.currency, at=now
            )
            record_event(
                tx,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                at=now,
                type="MemberRegistered",
                subject_type="member",
                subject_id=member_id,
                # Who the registration named; `MemberBound` says who the referrer became.
                payload={"named_referrer_id": referrer_id, "source": binding_source.value},
            )
            if referrer_id is not None:
                save_touch(
                    tx,
                    tenant_id=ctx.tenant_id,
                    sharer_id=referrer_id,
                    visitor_key=f"member:{member_id}",
                    source=binding_source.value,
                    scene=scene,
                    at=now,
                )
            if visitor is not None:
                claim_visitor_touches(
                    tx, tenant_id=ctx.tenant_id, visitor=visitor, member_id=member_id
                )
            insert_root(tx, ctx.tenant_id, member_id)
            if settings.binding.trigger == "registration":
                bind_by_policy(
                    tx,
                    settings=settings,
                    member_id=member_id,
                    phone=clean_phone,
                    external_id=clean_external,
                    actor=ctx.actor,
                    at=now,
                    new_member=True,
                )
            return member_view(tx, ctx.tenant_id, member_id)
    except IntegrityError:
        # A concurrent registration took the phone or external id between check and insert:
        # name which one, as the check would have.
        explain_identity_conflict(ctx, phone=clean_phone, external_id=clean_external)
        raise
