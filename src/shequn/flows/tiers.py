"""Tier changes, checked against the catalog (a tier reached by buying a product names it),
and the tier list with how many members hold each tier."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from shequn.catalog.repo import existing_skus
from shequn.context import Ctx
from shequn.errors import Conflict, NotFound
from shequn.members.repo import count_by_tier
from shequn.tenancy.repo import load_settings
from shequn.tiers import service


def _check_skus(tx: Connection, tenant_id: str, values: dict[str, Any]) -> None:
    named = service.bought_skus(values)
    missing = sorted(named - existing_skus(tx, tenant_id, named))
    if missing:
        raise NotFound("product_not_found", sku=missing[0])


def create_tier(ctx: Ctx, **fields: Any) -> dict[str, Any]:
    """Add a tier: name and rank, and optionally `criteria` (a tree), the privileges
    (`discount_bp`, `points_multiplier_bp`, `may_distribute`, `service_tags`) and `demotion`."""
    values = service.validate_new_tier(fields)
    try:
        with ctx.db.transaction() as tx:
            # The settings carry the tier list's version, which the change moves.
            load_settings(tx, ctx.tenant_id, for_update=True)
            _check_skus(tx, ctx.tenant_id, values)
            return {**service.insert_tier(tx, ctx, values), "member_count": 0}
    except IntegrityError:
        raise Conflict("tier_exists") from None


def update_tier(ctx: Ctx, *, tier_id: str, **fields: Any) -> dict[str, Any]:
    values = service.validate_tier_change(fields)
    try:
        with ctx.db.transaction() as tx:
            load_settings(tx, ctx.tenant_id, for_update=True)
            _check_skus(tx, ctx.tenant_id, values)
            tier = service.change_tier(tx, ctx, tier_id=tier_id, values=values)
            count = count_by_tier(tx, ctx.tenant_id).get(tier_id, 0)
            return {**tier, "member_count": count}
    except IntegrityError:
        raise Conflict("tier_exists") from None


def list_tiers(ctx: Ctx) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        rows = service.list_tier_rows(tx, ctx.tenant_id)
        counts = count_by_tier(tx, ctx.tenant_id)
    return [{**r, "member_count": counts.get(r["id"], 0)} for r in rows]
