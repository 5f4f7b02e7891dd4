"""Tier changes, inside the transaction of the use case that makes them (`shequn.flows.tiers`,
which also checks what a tier refers to in other domains). Every change of a tier moves the
tenant's `tiers_version` (a trigger does it), so that a copy of the tier list is known stale."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from shequn.context import Ctx
from shequn.errors import InvalidInput, NotFound
from shequn.events.service import record_event
from shequn.ids import new_id
from shequn.locks import Lock, take
from shequn.tiers.tables import tiers

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


def validate_new_tier(fields: dict[str, Any]) -> dict[str, Any]:
    values = _validate(fields)
    if "name" not in values or "rank" not in values:
        raise InvalidInput("tier_name_invalid")
    return values


def insert_tier(tx: Connection, ctx: Ctx, values: dict[str, Any]) -> dict[str, Any]:
    """Add a tier (values from `validate_new_tier`); the caller holds the settings' lock."""
    tier_id = new_id("tier")
    now = ctx.clock.now()
    take(tx, Lock.TIERS)
    tx.execute(
        insert(tiers).values(
            tenant_id=ctx.tenant_id,
            id=tier_id,
            created_at=now,
            **{"discount_bp": 0, "may_distribute": False, **values},
        )
    )
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
    return _view(row)


def validate_tier_change(fields: dict[str, Any]) -> dict[str, Any]:
    return _validate(fields)


def change_tier(
    tx: Connection, ctx: Ctx, *, tier_id: str, values: dict[str, Any]
) -> dict[str, Any]:
    """Change a tier (values from `validate_tier_change`); the caller holds the settings'
    lock."""
    take(tx, Lock.TIERS)
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
        record_event(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=ctx.clock.now(),
            type="TierChanged",
            subject_type="tier",
            subject_id=tier_id,
            payload={"fields": sorted(values)},
        )
    return _view(row)


def list_tier_rows(tx: Connection, tenant_id: str) -> list[dict[str, Any]]:
    rows = tx.execute(
        select(tiers).where(tiers.c.tenant_id == tenant_id).order_by(tiers.c.rank)
    ).all()
    return [_view(r) for r in rows]
