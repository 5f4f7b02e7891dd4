"""Reads of a tenant's settings, for the use cases of every domain."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, bindparam, select

from shequn.errors import NotFound
from shequn.locks import Lock, take
from shequn.snapshot import Snapshot
from shequn.tenancy.rules import BindingPolicy, TenantSettings
from shequn.tenancy.tables import tenant_settings, tenants

# Built once: the settings are read by nearly every use case.
_settings_query = select(tenant_settings).where(tenant_settings.c.tenant_id == bindparam("t_id"))
_settings_query_for_update = _settings_query.with_for_update()

SETTINGS_PREFIX = "settings_"


def load_settings(tx: Connection, tenant_id: str, *, for_update: bool = False) -> TenantSettings:
    """The tenant's settings; `for_update` locks them (a change of settings, tiers or plans)."""
    if for_update:
        take(tx, Lock.TENANT_SETTINGS)
    query = _settings_query_for_update if for_update else _settings_query
    row = tx.execute(query, {"t_id": tenant_id}).first()
    if row is None:
        raise NotFound("tenant_not_found", id=tenant_id)
    return settings_from_row(row._mapping)


def require_tenant(tx: Connection, tenant_id: str) -> None:
    found = tx.execute(select(tenants.c.tenant_id).where(tenants.c.tenant_id == tenant_id)).first()
    if found is None:
        raise NotFound("tenant_not_found", id=tenant_id)


def settings_columns() -> list[Any]:
    """The settings columns labelled with `SETTINGS_PREFIX`, for a use case that reads its
    settings in the same statement as its other rows."""
    return [c.label(SETTINGS_PREFIX + c.name) for c in tenant_settings.c]


def settings_from_row(row: Mapping[Any, Any], prefix: str = "") -> TenantSettings:
    def col(name: str) -> Any:
        return row[prefix + name]

    return TenantSettings(
        tenant_id=col("tenant_id"),
        currency=col("currency"),
        locale=col("locale"),
        after_sales_days=col("after_sales_days"),
        auto_complete_days=col("auto_complete_days"),
        compliance_profile=col("compliance_profile"),
        custom_commission_cap_bp=col("custom_commission_cap_bp"),
        binding=BindingPolicy(
            mode=col("binding_mode"),
            window_days=col("binding_window_days"),
            trigger=col("binding_trigger"),
            protection_days=col("binding_protection_days"),
        ),
        withdrawal_min_fen=col("withdrawal_min_fen"),
        withdrawal_fee_bp=col("withdrawal_fee_bp"),
        withdrawal_auto_approve_max_fen=col("withdrawal_auto_approve_max_fen"),
        withdrawal_daily_count_max=col("withdrawal_daily_count_max"),
        withdrawal_daily_amount_max_fen=col("withdrawal_daily_amount_max_fen"),
        unpaid_cancel_minutes=col("unpaid_cancel_minutes"),
        time_zone=col("time_zone"),
        stage_criteria=dict(col("stage_criteria")),
        active_plan_id=col("active_plan_id"),
        tiers_version=col("tiers_version"),
        version=col("version"),
    )


def _newer(held: TenantSettings, new: TenantSettings) -> bool:
    return held.version > new.version


def remember_settings(snapshot: Snapshot, settings: TenantSettings) -> None:
    """Keep the settings as read (a copy read late does not replace a newer one)."""
    snapshot.kind("settings").put(settings.tenant_id, settings, unless=_newer)


def remembered_settings(snapshot: Snapshot, tenant_id: str) -> TenantSettings | None:
    """The settings as last read, for a write that checks their `version`."""
    found: TenantSettings | None = snapshot.kind("settings").get(tenant_id)
    return found
