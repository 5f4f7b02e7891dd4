"""Reads of a tenant's tiers, for the use cases of every domain."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from shequn.errors import NotFound
from shequn.snapshot import Snapshot
from shequn.tenancy.rules import TenantSettings
from shequn.tiers.rules import NEVER, Demotion, DemotionMode, TierSpec, parse_criteria
from shequn.tiers.tables import tiers


def tier_from_row(row: Any) -> TierSpec:
    criteria = None if row.criteria is None else parse_criteria(row.criteria)
    return TierSpec(
        id=row.id,
        name=row.name,
        rank=row.rank,
        discount_bp=row.discount_bp,
        may_distribute=row.may_distribute,
        points_multiplier_bp=row.points_multiplier_bp,
        service_tags=tuple(row.service_tags or ()),
        criteria=criteria,
        demotion=Demotion(
            DemotionMode(row.demotion_mode), row.demotion_buffer_bp, row.demotion_hold_days
        )
        if row.demotion_mode == DemotionMode.WINDOWED.value
        else NEVER,
    )


def load_tiers(tx: Connection, tenant_id: str) -> list[TierSpec]:
    """The tenant's tiers, lowest rank first."""
    rows = tx.execute(
        select(tiers).where(tiers.c.tenant_id == tenant_id).order_by(tiers.c.rank)
    ).all()
    return [tier_from_row(r) for r in rows]


def tiers_at(snapshot: Snapshot, tx: Connection, settings: TenantSettings) -> list[TierSpec]:
    """The tier list at the settings' `tiers_version` (which the database moves on every
    change of a tier), from the snapshot or read. A tier changed between the settings' read
    and this one is caught by the write, which checks the settings' version."""
    key = (settings.tenant_id, settings.tiers_version)
    kept = snapshot.kind("tiers")
    found: list[TierSpec] | None = kept.get(key)
    if found is None:
        found = load_tiers(tx, settings.tenant_id)
        kept.put(key, found)
    return found


def remembered_tiers(
    snapshot: Snapshot, tenant_id: str, tiers_version: int
) -> list[TierSpec] | None:
    """The tier list at `tiers_version` if the snapshot has it."""
    found: list[TierSpec] | None = snapshot.kind("tiers").get((tenant_id, tiers_version))
    return found


def require_tier(tx: Connection, tenant_id: str, tier_id: str) -> None:
    found = tx.execute(
        select(tiers.c.id).where(tiers.c.tenant_id == tenant_id, tiers.c.id == tier_id)
    ).first()
    if found is None:
        raise NotFound("tier_not_found", id=tier_id)


def existing_tier_ids(tx: Connection, tenant_id: str, tier_ids: list[str]) -> set[str]:
    if not tier_ids:
        return set()
    return set(
        tx.execute(
            select(tiers.c.id).where(tiers.c.tenant_id == tenant_id, tiers.c.id.in_(tier_ids))
        ).scalars()
    )
