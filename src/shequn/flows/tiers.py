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


def _check_sku(tx: Connection, tenant_id: str, sku: str | None) -> None:
    if sku is not None and not existing_skus(tx, tenant_id, {sku}):
        raise NotFound("product_not_found", sku=sku)


def create_tier(ctx: Ctx, **fields: Any) -> dict[str, Any]:
    values = service.validate_new_tier(fields)
    try:
        with ctx.db.transaction() as tx:
            # The settings carry the tier list's version, which the change moves.
            load_settings(tx, ctx.tenant_id, for_update=True)
            _check_sku(tx, ctx.tenant_id, values.get("upgrade_product_sku"))
            return service.insert_tier(tx, ctx, values)
    except IntegrityError:
        raise Conflict("tier_exists") from None


def update_tier(ctx: Ctx, *, tier_id: str, **fields: Any) -> dict[str, Any]:
    values = service.validate_tier_change(fields)
    try:
        with ctx.db.transaction() as tx:
            load_settings(tx, ctx.tenant_id, for_update=True)
            _check_sku(tx, ctx.tenant_id, values.get("upgrade_product_sku"))
            return service.change_tier(tx, ctx, tier_id=tier_id, values=values)
    except IntegrityError:
        raise Conflict("tier_exists") from None


def list_tiers(ctx: Ctx) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        rows = service.list_tier_rows(tx, ctx.tenant_id)
        counts = count_by_tier(tx, ctx.tenant_id)
    return [{**r, "member_count": counts.get(r["id"], 0)} for r in rows]
