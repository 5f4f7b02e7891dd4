"""Tier use cases and the upgrade step run when a member's purchase facts change."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from shequn.context import Ctx
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import record_event
from shequn.ids import new_id
from shequn.members.tables import members
from shequn.tenancy.rules import TenantSettings
from shequn.tenancy.tables import tenant_settings
from shequn.tiers.rules import TierSpec, UpgradeFacts, best_tier
from shequn.tiers.tables import tiers

_CRITERIA = (
    "upgrade_spend_fen",
    "upgrade_single_order_fen",
    "upgrade_product_sku",
    "upgrade_team_headcount",
)


_tier_cache: dict[tuple[str, int], list[TierSpec]] = {}
_tier_cache_lock = threading.Lock()


def cached_tiers(tx: Connection, settings: TenantSettings) -> list[TierSpec]:
    """The tier list, cached per process and keyed by the tenant's tier version."""
    key = (settings.tenant_id, settings.tiers_version)
    with _tier_cache_lock:
        found = _tier_cache.get(key)
    if found is not None:
        return found
    loaded = load_tiers(tx, settings.tenant_id)
    with _tier_cache_lock:
        if len(_tier_cache) > 5_000:
            _tier_cache.clear()
        _tier_cache[key] = loaded
    return loaded


def _bump_tiers_version(tx: Connection, tenant_id: str) -> None:
    tx.execute(
        update(tenant_settings)
        .where(tenant_settings.c.tenant_id == tenant_id)
        .values(
            tiers_version=tenant_settings.c.tiers_version + 1,
            version=tenant_settings.c.version + 1,
        )
    )


def load_tiers(tx: Connection, tenant_id: str) -> list[TierSpec]:
    rows = tx.execute(
        select(tiers).where(tiers.c.tenant_id == tenant_id).order_by(tiers.c.rank)
    ).all()
    return [
        TierSpec(
            id=r.id,
            name=r.name,
            rank=r.rank,
            discount_bp=r.discount_bp,
            may_distribute=r.may_distribute,
            upgrade_spend_fen=r.upgrade_spend_fen,
            upgrade_single_order_fen=r.upgrade_single_order_fen,
            upgrade_product_sku=r.upgrade_product_sku,
            upgrade_team_headcount=r.upgrade_team_headcount,
        )
        for r in rows
    ]


# Fields that always have a value (the upgrade criteria may be cleared with null).
_REQUIRED = frozenset({"name", "rank", "discount_bp", "may_distribute"})


def _validate(fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None and key in _REQUIRED:
            raise InvalidInput("field_required", field=key)
        if key == "name":
            if not isinstance(value, str):
                raise InvalidInput("tier_name_invalid")
            clean = " ".join(value.split())
            if not clean or len(clean) > 40:
                raise InvalidInput("tier_name_invalid")
            out[key] = clean
        elif key == "rank":
            if not 0 <= value <= 1000:
                raise InvalidInput("tier_rank_invalid")
            out[key] = value
        elif key == "discount_bp":
            if not 0 <= value <= 9_000:
                raise InvalidInput("tier_discount_invalid")
            out[key] = value
        elif key == "may_distribute":
            if not isinstance(value, bool):
                raise InvalidInput("field_invalid", field=key)
            out[key] = value
        elif key in ("upgrade_spend_fen", "upgrade_single_order_fen"):
            if value is not None and not 1 <= value <= 10**12:
                raise InvalidInput("tier_criterion_invalid", field=key)
            out[key] = value
        elif key == "upgrade_team_headcount":
            if value is not None and not 1 <= value <= 10**7:
                raise InvalidInput("tier_criterion_invalid", field=key)
            out[key] = value
        elif key == "upgrade_product_sku":
            if value is not None and not 1 <= len(value) <= 64:
                raise InvalidInput("tier_criterion_invalid", field=key)
            out[key] = value
        else:
            raise InvalidInput("field_unknown", field=key)
    return out


def _view(row: Any) -> dict[str, Any]:
    return {k: v for k, v in row._mapping.items() if k != "tenant_id"}


def create_tier(ctx: Ctx, **fields: Any) -> dict[str, Any]:
    values = _validate(fields)
    if "name" not in values or "rank" not in values:
        raise InvalidInput("tier_name_invalid")
    tier_id = new_id("tier")
    now = ctx.clock.now()
    try:
        with ctx.db.transaction() as tx:
            _check_sku(tx, ctx.tenant_id, values.get("upgrade_product_sku"))
            tx.execute(
                insert(tiers).values(
                    tenant_id=ctx.tenant_id,
                    id=tier_id,
                    created_at=now,
                    **{"discount_bp": 0, "may_distribute": False, **values},
                )
            )
            _bump_tiers_version(tx, ctx.tenant_id)
            record_event(
                tx,
                tenant_id=ctx.tenant_id,
                actor=ctx.actor,
                at=now,
                type="TierCreated",
                subject_type="tier",
                subject_id=tier_id,
                payload={"name": values["name"], "rank": values["rank"]},
            )
            row = tx.execute(
                select(tiers).where(tiers.c.tenant_id == ctx.tenant_id, tiers.c.id == tier_id)
            ).one()
    except IntegrityError:
        raise Conflict("tier_exists") from None
    return _view(row)


def _check_sku(tx: Connection, tenant_id: str, sku: str | None) -> None:
    from shequn.catalog.tables import products

    if sku is None:
        return
    found = tx.execute(
        select(products.c.id).where(products.c.tenant_id == tenant_id, products.c.sku == sku)
    ).first()
    if found is None:
        raise NotFound("product_not_found", sku=sku)


def update_tier(ctx: Ctx, *, tier_id: str, **fields: Any) -> dict[str, Any]:
    values = _validate(fields)
    now = ctx.clock.now()
    try:
        with ctx.db.transaction() as tx:
            _check_sku(tx, ctx.tenant_id, values.get("upgrade_product_sku"))
            result = (
                tx.execute(
                    update(tiers)
                    .where(tiers.c.tenant_id == ctx.tenant_id, tiers.c.id == tier_id)
                    .values(**values)
                )
                if values
                else None
            )
            row = tx.execute(
                select(tiers).where(tiers.c.tenant_id == ctx.tenant_id, tiers.c.id == tier_id)
            ).first()
            if row is None or (result is not None and result.rowcount != 1):
                raise NotFound("tier_not_found", id=tier_id)
            if values:
                _bump_tiers_version(tx, ctx.tenant_id)
                record_event(
                    tx,
                    tenant_id=ctx.tenant_id,
                    actor=ctx.actor,
                    at=now,
                    type="TierChanged",
                    subject_type="tier",
                    subject_id=tier_id,
                    payload={"fields": sorted(values)},
                )
    except IntegrityError:
        raise Conflict("tier_exists") from None
    return _view(row)


def list_tiers(ctx: Ctx) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(tiers).where(tiers.c.tenant_id == ctx.tenant_id).order_by(tiers.c.rank)
        ).all()
        counts: dict[str, int] = dict(
            tx.execute(
                select(members.c.tier_id, func.count())
                .where(members.c.tenant_id == ctx.tenant_id, members.c.tier_id.is_not(None))
                .group_by(members.c.tier_id)
            ).all()
        )
    return [{**_view(r), "member_count": counts.get(r.id, 0)} for r in rows]


def apply_upgrade(
    tx: Connection,
    *,
    tenant_id: str,
    member: Any,
    tier_list: list[TierSpec],
    actor: str,
    at: datetime,
) -> str | None:
    """Move the member up to the best tier its facts reach; never down. `member` carries id,
    tier_id, paid_total_fen, max_order_fen and team_count as they are now. Returns the new
    tier."""
    if not any(t.has_criteria for t in tier_list):
        return None
    from shequn.orders.tables import order_lines, orders

    member_id = member.id
    by_id = {t.id: t for t in tier_list}
    current = by_id.get(member.tier_id) if member.tier_id else None
    skus = {t.upgrade_product_sku for t in tier_list if t.upgrade_product_sku}
    bought: set[str] = set()
    if skus:
        bought = set(
            tx.execute(
                select(order_lines.c.sku)
                .distinct()
                .select_from(
                    order_lines.join(
                        orders,
                        and_(
                            orders.c.tenant_id == order_lines.c.tenant_id,
                            orders.c.id == order_lines.c.order_id,
                        ),
                    )
                )
                .where(
                    orders.c.tenant_id == tenant_id,
                    orders.c.buyer_id == member_id,
                    orders.c.paid_at.is_not(None),
                    order_lines.c.sku.in_(sorted(skus)),
                    order_lines.c.refunded_fen < order_lines.c.line_total_fen,
                )
            ).scalars()
        )
    target = best_tier(
        tier_list,
        UpgradeFacts(
            paid_total_fen=member.paid_total_fen,
            max_order_fen=member.max_order_fen,
            bought_skus=bought,
            team_count=member.team_count,
        ),
        current.rank if current else None,
    )
    if target is None:
        return None
    tx.execute(
        update(members)
        .where(members.c.tenant_id == tenant_id, members.c.id == member_id)
        .values(tier_id=target.id, updated_at=at)
    )
    record_event(
        tx,
        tenant_id=tenant_id,
        actor=actor,
        at=at,
        type="MemberTierChanged",
        subject_type="member",
        subject_id=member_id,
        payload={"from": member.tier_id, "to": target.id, "reason": "upgrade"},
    )
    return target.id
