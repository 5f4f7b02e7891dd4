"""Member use cases: read, list, update; and the member's own part of a registration (the
registration with its referral binding is `shequn.flows.registration`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, exists, insert, select
from sqlalchemy.exc import IntegrityError

from shequn.context import Ctx
from shequn.errors import Conflict, InvalidInput
from shequn.events.service import record_event
from shequn.ids import checked_cursor
from shequn.ledger.service import open_member_accounts
from shequn.members.repo import (
    member_id_taken_by,
    referred_buyers,
    require_member,
    set_profile,
)
from shequn.members.rules import (
    StageFacts,
    clean_external_id,
    derive_stage,
    normalise_phone,
    normalise_tag,
)
from shequn.members.tables import member_tags, members
from shequn.tenancy.repo import load_settings
from shequn.tiers.repo import require_tier


def clean_name(name: str) -> str:
    clean = " ".join(name.split())
    if not clean or len(clean) > 80:
        raise InvalidInput("member_name_invalid")
    return clean


def clean_tags(tags: Sequence[str] | None) -> list[str]:
    if not tags:
        return []
    cleaned = sorted({normalise_tag(t) for t in tags})
    if len(cleaned) > 50:
        raise InvalidInput("too_many_tags")
    return cleaned


def check_unique(
    tx: Connection,
    tenant_id: str,
    *,
    phone: str | None,
    external_id: str | None,
    exclude: str | None = None,
) -> None:
    """Refuse a phone or external id another member has."""
    if phone is not None and member_id_taken_by(
        tx, tenant_id, column="phone", value=phone, exclude=exclude
    ):
        raise Conflict("phone_taken", phone=phone)
    if external_id is not None and member_id_taken_by(
        tx, tenant_id, column="external_id", value=external_id, exclude=exclude
    ):
        raise Conflict("external_id_taken", external_id=external_id)


def explain_identity_conflict(
    ctx: Ctx, *, phone: str | None, external_id: str | None, exclude: str | None = None
) -> None:
    """After losing a race on a unique phone or external id, raise the conflict the check
    before the insert would have raised (the caller re-raises the original error otherwise)."""
    with ctx.db.read() as tx:
        check_unique(tx, ctx.tenant_id, phone=phone, external_id=external_id, exclude=exclude)


def write_tags(tx: Connection, tenant_id: str, member_id: str, tags: Sequence[str]) -> None:
    if tags:
        tx.execute(
            insert(member_tags),
            [{"tenant_id": tenant_id, "member_id": member_id, "tag": t} for t in tags],
        )


def open_member(
    tx: Connection, ctx: Ctx, *, member_id: str, tags: Sequence[str], currency: str, at: datetime
) -> None:
    """What a new member row brings with it: its tags and its accounts."""
    write_tags(tx, ctx.tenant_id, member_id, tags)
    open_member_accounts(tx, tenant_id=ctx.tenant_id, member_id=member_id, currency=currency)


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


def _view(
    row: Row[Any], tags: list[str], criteria: dict[str, int], referred: int
) -> dict[str, Any]:
    stage = derive_stage(
        StageFacts(paid_order_count=row.paid_order_count, referred_buyer_count=referred),
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
        "referred_buyer_count": referred,
        "stage": stage.value,
        "tags": tags,
        "anonymised_at": row.anonymised_at,
        "created_at": row.created_at,
    }


def _views(tx: Connection, tenant_id: str, rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    criteria = load_settings(tx, tenant_id).stage_criteria
    tags = _tags_of(tx, tenant_id, ids)
    referred = referred_buyers(tx, tenant_id, ids)
    return [_view(r, tags[r.id], criteria, referred[r.id]) for r in rows]


def member_view(tx: Connection, tenant_id: str, member_id: str) -> dict[str, Any]:
    """The member as the API shows it."""
    return _views(tx, tenant_id, [require_member(tx, tenant_id, member_id)])[0]


def get_member(ctx: Ctx, *, member_id: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        return member_view(tx, ctx.tenant_id, member_id)


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
    after = checked_cursor(after, "mem")
    with ctx.db.read() as tx:
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
        items = _views(tx, ctx.tenant_id, page)
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
        changes["name"] = clean_name(name)
    if phone is not None:
        changes["phone"] = normalise_phone(phone)
    if external_id is not None:
        changes["external_id"] = clean_external_id(external_id)
    new_tags = clean_tags(tags) if tags is not None else None
    now = ctx.clock.now()
    try:
        with ctx.db.transaction() as tx:
            current = require_member(tx, ctx.tenant_id, member_id, for_update=True)
            check_unique(
                tx,
                ctx.tenant_id,
                phone=changes.get("phone"),
                external_id=changes.get("external_id"),
                exclude=member_id,
            )
            if set_tier:
                if tier_id is not None:
                    require_tier(tx, ctx.tenant_id, tier_id)
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
                set_profile(tx, ctx.tenant_id, member_id, {**changes, "updated_at": now})
            if new_tags is not None:
                tx.execute(
                    delete(member_tags).where(
                        member_tags.c.tenant_id == ctx.tenant_id,
                        member_tags.c.member_id == member_id,
                    )
                )
                write_tags(tx, ctx.tenant_id, member_id, new_tags)
            if changes or new_tags is not None:
                record_event(
                    tx,
                    tenant_id=ctx.tenant_id,
                    actor=ctx.actor,
                    at=now,
                    type="MemberUpdated",
                    subject_type="member",
                    subject_id=member_id,
                    payload={
                        "fields": sorted(changes) + (["tags"] if new_tags is not None else [])
                    },
                )
            return member_view(tx, ctx.tenant_id, member_id)
    except IntegrityError:
        explain_identity_conflict(
            ctx,
            phone=changes.get("phone"),
            external_id=changes.get("external_id"),
            exclude=member_id,
        )
        raise


ANONYMISED_NAME = "—"


def erase_personal_fields(
    tx: Connection, ctx: Ctx, *, member_id: str
) -> tuple[str | None, str | None] | None:
    """Erase the member's name, phone, external id and tags (the caller's transaction); returns
    the phone and external id it had, or None if it was anonymised before."""
    row = require_member(tx, ctx.tenant_id, member_id, for_update=True)
    if row.anonymised_at is not None:
        return None
    now = ctx.clock.now()
    tx.execute(
        delete(member_tags).where(
            member_tags.c.tenant_id == ctx.tenant_id, member_tags.c.member_id == member_id
        )
    )
    set_profile(
        tx,
        ctx.tenant_id,
        member_id,
        {
            "name": ANONYMISED_NAME,
            "phone": None,
            "external_id": None,
            "anonymised_at": now,
            "updated_at": now,
        },
    )
    record_event(
        tx,
        tenant_id=ctx.tenant_id,
        actor=ctx.actor,
        at=now,
        type="MemberAnonymised",
        subject_type="member",
        subject_id=member_id,
    )
    return row.phone, row.external_id
