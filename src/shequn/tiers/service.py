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
from shequn.tiers.repo import tier_from_row
from shequn.tiers.rules import (
    FULL_BP,
    MAX_DISCOUNT_BP,
    MAX_POINTS_MULTIPLIER_BP,
    NEVER,
    Criterion,
    Demotion,
    DemotionMode,
    Kind,
    TierSpec,
    atoms,
    clean_service_tags,
    criteria_json,
    demotion_json,
    parse_criteria,
    parse_demotion,
)
from shequn.tiers.tables import tiers

# Fields that always have a value (the criteria may be cleared with null: by hand only).
_REQUIRED = frozenset(
    {"name", "rank", "discount_bp", "may_distribute", "points_multiplier_bp", "service_tags"}
)
_DEFAULTS: dict[str, Any] = {
    "discount_bp": 0,
    "may_distribute": False,
    "points_multiplier_bp": FULL_BP,
    "service_tags": [],
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields as columns (the demotion is checked against the criteria by the caller, who
    knows both)."""
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
            if not _is_int(value) or not 0 <= value <= 1000:
                raise InvalidInput("tier_rank_invalid")
            out[key] = value
        elif key == "discount_bp":
            if not _is_int(value) or not 0 <= value <= MAX_DISCOUNT_BP:
                raise InvalidInput("tier_discount_invalid")
            out[key] = value
        elif key == "points_multiplier_bp":
            if not _is_int(value) or not 0 <= value <= MAX_POINTS_MULTIPLIER_BP:
                raise InvalidInput(
                    "tier_points_multiplier_invalid", max_bp=MAX_POINTS_MULTIPLIER_BP
                )
            out[key] = value
        elif key == "may_distribute":
            if not isinstance(value, bool):
                raise InvalidInput("field_invalid", field=key)
            out[key] = value
        elif key == "service_tags":
            out[key] = list(clean_service_tags(value))
        elif key == "criteria":
            out[key] = None if value is None else criteria_json(parse_criteria(value))
        elif key == "demotion":
            out[key] = value  # checked with the criteria (`_demotion_columns`)
        else:
            raise InvalidInput("field_unknown", field=key)
    return out


def _demotion_columns(demotion: Demotion) -> dict[str, Any]:
    return {
        "demotion_mode": demotion.mode.value,
        "demotion_buffer_bp": demotion.buffer_bp,
        "demotion_hold_days": demotion.hold_days,
    }


def _columns(values: dict[str, Any], current: TierSpec | None) -> dict[str, Any]:
    """The validated fields as the row's columns: the demotion is checked against the criteria
    the tier will have (a changed tree must still suit a demotion kept as it was)."""
    columns = {k: v for k, v in values.items() if k != "demotion"}
    if "criteria" not in values and "demotion" not in values:
        return columns
    criteria: Criterion | None
    if "criteria" in values:
        criteria = None if values["criteria"] is None else parse_criteria(values["criteria"])
    else:
        criteria = current.criteria if current is not None else None
    if "demotion" in values:
        demotion = parse_demotion(values["demotion"], criteria)
    else:
        kept = current.demotion if current is not None else NEVER
        windowed = kept.mode is DemotionMode.WINDOWED
        demotion = parse_demotion(demotion_json(kept), criteria) if windowed else NEVER
    return {**columns, **_demotion_columns(demotion)}


def tier_view(row: Any) -> dict[str, Any]:
    """A tier as the API shows it: how it is reached and kept, and what it gives."""
    spec = tier_from_row(row)
    return {
        "id": spec.id,
        "name": spec.name,
        "rank": spec.rank,
        "criteria": None if spec.criteria is None else criteria_json(spec.criteria),
        "privileges": {
            "discount_bp": spec.discount_bp,
            "points_multiplier_bp": spec.points_multiplier_bp,
            "may_distribute": spec.may_distribute,
            "service_tags": list(spec.service_tags),
        },
        "demotion": demotion_json(spec.demotion),
        "created_at": row.created_at,
    }


def validate_new_tier(fields: dict[str, Any]) -> dict[str, Any]:
    values = _validate(fields)
    if "name" not in values or "rank" not in values:
        raise InvalidInput("tier_name_invalid")
    return {**_DEFAULTS, **values}


def bought_skus(values: dict[str, Any]) -> set[str]:
    """The products a tier's new criteria name (to be checked against the catalog)."""
    criteria = values.get("criteria")
    if criteria is None:
        return set()
    return {a.arg for a in atoms(parse_criteria(criteria)) if a.kind is Kind.BOUGHT and a.arg}


def _row(tx: Connection, tenant_id: str, tier_id: str) -> Any:
    return tx.execute(
        select(tiers).where(tiers.c.tenant_id == tenant_id, tiers.c.id == tier_id)
    ).first()


def insert_tier(tx: Connection, ctx: Ctx, values: dict[str, Any]) -> dict[str, Any]:
    """Add a tier (values from `validate_new_tier`); the caller holds the settings' lock."""
    tier_id = new_id("tier")
    now = ctx.clock.now()
    columns = _columns(values, None)
    columns.setdefault("demotion_mode", DemotionMode.NEVER.value)
    take(tx, Lock.TIERS)
    tx.execute(insert(tiers).values(tenant_id=ctx.tenant_id, id=tier_id, created_at=now, **columns))
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
    return tier_view(_row(tx, ctx.tenant_id, tier_id))


def validate_tier_change(fields: dict[str, Any]) -> dict[str, Any]:
    return _validate(fields)


def change_tier(
    tx: Connection, ctx: Ctx, *, tier_id: str, values: dict[str, Any]
) -> dict[str, Any]:
    """Change a tier (values from `validate_tier_change`); the caller holds the settings'
    lock."""
    take(tx, Lock.TIERS)
    current = tx.execute(
        select(tiers)
        .where(tiers.c.tenant_id == ctx.tenant_id, tiers.c.id == tier_id)
        .with_for_update()
    ).first()
    if current is None:
        raise NotFound("tier_not_found", id=tier_id)
    columns = _columns(values, tier_from_row(current))
    if columns:
        tx.execute(
            update(tiers)
            .where(tiers.c.tenant_id == ctx.tenant_id, tiers.c.id == tier_id)
            .values(**columns)
        )
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
    return tier_view(_row(tx, ctx.tenant_id, tier_id))


def list_tier_rows(tx: Connection, tenant_id: str) -> list[dict[str, Any]]:
    rows = tx.execute(
        select(tiers).where(tiers.c.tenant_id == tenant_id).order_by(tiers.c.rank)
    ).all()
    return [tier_view(r) for r in rows]
