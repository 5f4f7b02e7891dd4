"""Member use cases: create (with referral binding), read, list, update."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    delete,
    exists,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from shequn.batch import WriteBatch
from shequn.context import Ctx
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import record_event
from shequn.ids import new_id
from shequn.ledger.service import open_member_accounts
from shequn.members.rules import (
    PurchaseFacts,
    StageFacts,
    clean_external_id,
    derive_stage,
    facts_after_purchase,
    normalise_phone,
    normalise_tag,
)
from shequn.members.tables import member_tags, members
from shequn.referrals.rules import BindingSource
from shequn.referrals.service import (
    bind_by_policy,
    insert_root,
    lock_tree,
    save_touch,
)
from shequn.tenancy.service import load_settings
from shequn.tiers.tables import tiers


def _clean_name(name: str) -> str:
    clean = " ".join(name.split())
    if not clean or len(clean) > 80:
        raise InvalidInput("member_name_invalid")
    return clean


def _clean_tags(tags: Sequence[str] | None) -> list[str]:
    if not tags:
        return []
    cleaned = sorted({normalise_tag(t) for t in tags})
    if len(cleaned) > 50:
        raise InvalidInput("too_many_tags")
    return cleaned


def _require_tier(tx: Connection, tenant_id: str, tier_id: str) -> None:
    if (
        tx.execute(
            select(tiers.c.id).where(tiers.c.tenant_id == tenant_id, tiers.c.id == tier_id)
        ).first()
        is None
    ):
        raise NotFound("tier_not_found", id=tier_id)


def require_member(
    tx: Connection, tenant_id: str, member_id: str, *, for_update: bool = False
) -> Row[Any]:
    query = select(members).where(members.c.tenant_id == tenant_id, members.c.id == member_id)
    if for_update:
        query = query.with_for_update()
    row = tx.execute(query).first()
    if row is None:
        raise NotFound("member_not_found", id=member_id)
    return row


def _explain_identity_conflict(
    ctx: Ctx, *, phone: str | None, external_id: str | None, exclude: str | None = None
) -> None:
    """After losing a race on a unique phone or external id, raise the conflict the check
    before the insert would have raised (the caller re-raises the original error otherwise)."""
    with ctx.db.read() as tx:
        _check_unique(tx, ctx.tenant_id, phone=phone, external_id=external_id, exclude=exclude)


def _check_unique(
    tx: Connection,
    tenant_id: str,
    *,
    phone: str | None,
    external_id: str | None,
    exclude: str | None = None,
) -> None:
    if phone is not None:
        query = select(members.c.id).where(
            members.c.tenant_id == tenant_id, members.c.phone == phone
        )
        if exclude:
            query = query.where(members.c.id != exclude)
        if tx.execute(query).first() is not None:
            raise Conflict("phone_taken", phone=phone)
    if external_id is not None:
        query = select(members.c.id).where(
            members.c.tenant_id == tenant_id, members.c.external_id == external_id
        )
        if exclude:
            query = query.where(members.c.id != exclude)
        if tx.execute(query).first() is not None:
            raise Conflict("external_id_taken", external_id=external_id)


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
) -> dict[str, Any]:
    """Register a member. An explicit referrer counts as a touch now; the tenant's binding
    policy (first/last touch, window, trigger) then decides who the member is bound to."""
    clean_name = _clean_name(name)
    clean_phone = normalise_phone(phone) if phone is not None else None
    clean_external = clean_external_id(external_id)
    clean_tags = _clean_tags(tags)
    try:
        binding_source = BindingSource(source)
    except ValueError:
        raise InvalidInput("binding_source_invalid", source=source) from None
    if binding_source is BindingSource.ADMIN:
        raise InvalidInput("binding_source_invalid", source=source)
    member_id = new_id("mem")
    now = ctx.clock.now()
    try:
        with ctx.db.transaction() as tx:
            settings = load_settings(tx, ctx.tenant_id)
            if referrer_id is not None:
                referrer = tx.execute(
                    select(members.c.id, members.c.phone).where(
                        members.c.tenant_id == ctx.tenant_id, members.c.id == referrer_id
                    )
                ).first()
                if referrer is None:
                    raise NotFound("referrer_not_found", id=referrer_id)
                # Registering oneself again under one's own link: say so (before `phone_taken`).
                if clean_phone is not None and referrer.phone == clean_phone:
                    raise InvalidInput("self_referral")
            _check_unique(tx, ctx.tenant_id, phone=clean_phone, external_id=clean_external)
            if tier_id is not None:
                _require_tier(tx, ctx.tenant_id, tier_id)
            tx.execute(
                insert(members).values(
                    tenant_id=ctx.tenant_id,
                    id=member_id,
                    name=clean_name,
                    phone=clean_phone,
                    external_id=clean_external,
                    tier_id=tier_id,
                    direct_count=0,
                    team_count=0,
                    paid_order_count=0,
                    lifetime_order_count=0,
                    paid_total_fen=0,
                    max_order_fen=0,
                    referred_buyer_count=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            if clean_tags:
                tx.execute(
                    insert(member_tags),
                    [
                        {"tenant_id": ctx.tenant_id, "member_id": member_id, "tag": t}
                        for t in clean_tags
                    ],
                )
            open_member_accounts(
                tx, tenant_id=ctx.tenant_id, member_id=member_id, currency=settings.currency
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
            lock_tree(tx, ctx.tenant_id)
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
            return _member_view(
                tx,
                ctx.tenant_id,
                require_member(tx, ctx.tenant_id, member_id),
                settings.stage_criteria,
            )
    except IntegrityError:
        # A concurrent registration took the phone or external id between check and insert:
        # name which one, as the check would have.
        _explain_identity_conflict(ctx, phone=clean_phone, external_id=clean_external)
        raise


def _tags_of(tx: Connection, tenant_id: str, member_ids: Sequence[str]) -> dict[str, list[str]]:
    if not member_ids:
        return {}
    rows = tx.execute(
        select(member_tags.c.member_id, member_tags.c.tag)
        .where(member_tags.c.tenant_id == tenant_id, member_tags.c.member_id.in_(list(member_ids)))
        .order_by(member_tags.c.tag)
    ).all()
    out: dict[str, list[str]] = {m: [] for m in member_ids}
    for r in rows:
        out[r.member_id].append(r.tag)
    return out


def _view(row: Row[Any], tags: list[str], criteria: dict[str, int]) -> dict[str, Any]:
    stage = derive_stage(
        StageFacts(
            paid_order_count=row.paid_order_count, referred_buyer_count=row.referred_buyer_count
        ),
        criteria,
    )
    return {
        "id": row.id,
        "name": row.name,
        "phone": row.phone,
        "external_id": row.external_id,
        "tier_id": row.tier_id,
        "referrer_id": row.referrer_id,
        "ancestors": [a for a in (row.referrer_id, row.ancestor_2, row.ancestor_3) if a],
        "binding_source": row.binding_source,
        "bound_at": row.bound_at,
        "direct_count": row.direct_count,
        "team_count": row.team_count,
        "paid_order_count": row.paid_order_count,
        "paid_total_fen": row.paid_total_fen,
        "referred_buyer_count": row.referred_buyer_count,
        "stage": stage.value,
        "tags": tags,
        "created_at": row.created_at,
    }


def _member_view(
    tx: Connection, tenant_id: str, row: Row[Any], criteria: dict[str, int]
) -> dict[str, Any]:
    return _view(row, _tags_of(tx, tenant_id, [row.id])[row.id], criteria)


def get_member(ctx: Ctx, *, member_id: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        settings = load_settings(tx, ctx.tenant_id)
        return _member_view(
            tx, ctx.tenant_id, require_member(tx, ctx.tenant_id, member_id), settings.stage_criteria
        )


def list_members(
    ctx: Ctx,
    *,
    tag: str | None = None,
    tier_id: str | None = None,
    referrer_id: str | None = None,
    phone: str | None = None,
    external_id: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Keyset-paged by id (ids are time-ordered, so pages run oldest first). `phone` (in any
    form the registration accepts) and `external_id` find a member from another system."""
    if not 1 <= limit <= 500:
        raise InvalidInput("limit_out_of_range", low=1, high=500)
    clean_phone = normalise_phone(phone) if phone is not None else None
    clean_external = clean_external_id(external_id)
    with ctx.db.read() as tx:
        settings = load_settings(tx, ctx.tenant_id)
        query = select(members).where(members.c.tenant_id == ctx.tenant_id)
        if tag is not None:
            query = query.where(
                exists().where(
                    member_tags.c.tenant_id == members.c.tenant_id,
                    member_tags.c.member_id == members.c.id,
                    member_tags.c.tag == tag,
                )
            )
        if tier_id is not None:
            query = query.where(members.c.tier_id == tier_id)
        if referrer_id is not None:
            query = query.where(members.c.referrer_id == referrer_id)
        if clean_phone is not None:
            query = query.where(members.c.phone == clean_phone)
        if clean_external is not None:
            query = query.where(members.c.external_id == clean_external)
        if after is not None:
            query = query.where(members.c.id > after)
        rows = tx.execute(query.order_by(members.c.id).limit(limit + 1)).all()
        page = rows[:limit]
        tags = _tags_of(tx, ctx.tenant_id, [r.id for r in page])
        items = [_view(r, tags[r.id], settings.stage_criteria) for r in page]
    return {"items": items, "next_after": page[-1].id if len(rows) > limit else None}


def update_member(
    ctx: Ctx,
    *,
    member_id: str,
    name: str | None = None,
    phone: str | None = None,
    external_id: str | None = None,
    tags: Sequence[str] | None = None,
    tier_id: str | None = None,
    set_tier: bool = False,
) -> dict[str, Any]:
    """Change profile fields; `tags` replaces the tag set; a manual tier change is audited."""
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = _clean_name(name)
    if phone is not None:
        changes["phone"] = normalise_phone(phone)
    if external_id is not None:
        changes["external_id"] = clean_external_id(external_id)
    clean_tags = _clean_tags(tags) if tags is not None else None
    now = ctx.clock.now()
    try:
        with ctx.db.transaction() as tx:
            settings = load_settings(tx, ctx.tenant_id)
            current = require_member(tx, ctx.tenant_id, member_id, for_update=True)
            _check_unique(
                tx,
                ctx.tenant_id,
                phone=changes.get("phone"),
                external_id=changes.get("external_id"),
                exclude=member_id,
            )
            if set_tier:
                if tier_id is not None:
                    _require_tier(tx, ctx.tenant_id, tier_id)
                if tier_id != current.tier_id:
                    changes["tier_id"] = tier_id
                    record_event(
                        tx,
                        tenant_id=ctx.tenant_id,
                        actor=ctx.actor,
                        at=now,
                        type="MemberTierChanged",
                        subject_type="member",
                        subject_id=member_id,
                        payload={"from": current.tier_id, "to": tier_id, "reason": "manual"},
                    )
            if changes:
                tx.execute(
                    update(members)
                    .where(members.c.tenant_id == ctx.tenant_id, members.c.id == member_id)
                    .values(**changes, updated_at=now)
                )
            if clean_tags is not None:
                tx.execute(
                    delete(member_tags).where(
                        member_tags.c.tenant_id == ctx.tenant_id,
                        member_tags.c.member_id == member_id,
                    )
                )
                if clean_tags:
                    tx.execute(
                        insert(member_tags),
                        [
                            {"tenant_id": ctx.tenant_id, "member_id": member_id, "tag": t}
                            for t in clean_tags
                        ],
                    )
            if changes or clean_tags is not None:
                record_event(
                    tx,
                    tenant_id=ctx.tenant_id,
                    actor=ctx.actor,
                    at=now,
                    type="MemberUpdated",
                    subject_type="member",
                    subject_id=member_id,
                    payload={
                        "fields": sorted(changes) + (["tags"] if clean_tags is not None else [])
                    },
                )
            return _member_view(
                tx,
                ctx.tenant_id,
                require_member(tx, ctx.tenant_id, member_id),
                settings.stage_criteria,
            )
    except IntegrityError:
        _explain_identity_conflict(
            ctx,
            phone=changes.get("phone"),
            external_id=changes.get("external_id"),
            exclude=member_id,
        )
        raise


BUYER_PREFIX = "buyer_"
BUYER_COLUMNS = (
    "id",
    "tier_id",
    "referrer_id",
    "ancestor_2",
    "ancestor_3",
    "phone",
    "external_id",
    "team_count",
    "paid_order_count",
    "lifetime_order_count",
    "paid_total_fen",
    "max_order_fen",
    "first_paid_at",
    "last_paid_at",
)


@dataclass(frozen=True)
class Buyer:
    """The member paying an order: its chain, its tier and its purchase facts."""

    id: str
    tier_id: str | None
    referrer_id: str | None
    ancestor_2: str | None
    ancestor_3: str | None
    phone: str | None
    external_id: str | None
    team_count: int
    facts: PurchaseFacts

    @property
    def paid_total_fen(self) -> int:
        return self.facts.paid_total_fen

    @property
    def max_order_fen(self) -> int:
        return self.facts.max_order_fen

    @property
    def lifetime_order_count(self) -> int:
        return self.facts.lifetime_order_count


def buyer_columns() -> list[Any]:
    """The buyer's columns labelled with `BUYER_PREFIX`, for a use case that reads (and locks)
    the buyer in the same statement as its other rows."""
    return [members.c[name].label(BUYER_PREFIX + name) for name in BUYER_COLUMNS]


def buyer_from_row(row: Mapping[Any, Any], prefix: str = BUYER_PREFIX) -> Buyer:
    def col(name: str) -> Any:
        return row[prefix + name]

    return Buyer(
        id=col("id"),
        tier_id=col("tier_id"),
        referrer_id=col("referrer_id"),
        ancestor_2=col("ancestor_2"),
        ancestor_3=col("ancestor_3"),
        phone=col("phone"),
        external_id=col("external_id"),
        team_count=col("team_count"),
        facts=PurchaseFacts(
            paid_order_count=col("paid_order_count"),
            lifetime_order_count=col("lifetime_order_count"),
            paid_total_fen=col("paid_total_fen"),
            max_order_fen=col("max_order_fen"),
            first_paid_at=col("first_paid_at"),
            last_paid_at=col("last_paid_at"),
        ),
    )


def stage_purchase(
    batch: WriteBatch,
    *,
    tenant_id: str,
    buyer: Buyer,
    amount_fen: int,
    at: datetime,
    guarded: bool = False,
) -> Buyer:
    """Add a paid order to the buyer's facts; returns the buyer as it now is (with
    `lifetime_order_count == 1` on the first purchase ever: a fully refunded first order does
    not make the next one a first purchase again).

    The new facts are computed from `buyer` as read, so either the caller has locked the buyer,
    or `guarded` makes the write the batch's guard: it happens only if the facts and the chain
    a payment relies on are still those read."""
    facts = facts_after_purchase(buyer.facts, amount_fen=amount_fen, at=at)
    key = {"tenant_id": tenant_id, "id": buyer.id}
    values = {
        "paid_order_count": facts.paid_order_count,
        "lifetime_order_count": facts.lifetime_order_count,
        "paid_total_fen": facts.paid_total_fen,
        "max_order_fen": facts.max_order_fen,
        "first_paid_at": facts.first_paid_at,
        "last_paid_at": facts.last_paid_at,
        "updated_at": at,
    }
    if guarded:
        batch.guard(
            members,
            key,
            where={
                "paid_order_count": buyer.facts.paid_order_count,
                "lifetime_order_count": buyer.facts.lifetime_order_count,
                "paid_total_fen": buyer.facts.paid_total_fen,
                "max_order_fen": buyer.facts.max_order_fen,
                "tier_id": buyer.tier_id,
                "referrer_id": buyer.referrer_id,
                "ancestor_2": buyer.ancestor_2,
                "ancestor_3": buyer.ancestor_3,
            },
            values=values,
        )
    else:
        batch.update(members, key, values=values)
    return replace(buyer, facts=facts)


def stage_referred_buyer(batch: WriteBatch, *, tenant_id: str, referrer_id: str) -> None:
    """The referrer has one more referred member who bought."""
    batch.update(
        members,
        {"tenant_id": tenant_id, "id": referrer_id},
        increments={"referred_buyer_count": 1},
    )
