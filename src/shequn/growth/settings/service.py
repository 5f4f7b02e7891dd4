"""Reading and changing a tenant's growth settings."""

from __future__ import annotations

from dataclasses import asdict, fields, replace
from typing import Any

from sqlalchemy import Connection, insert, select, text, update

from shequn.context import Ctx
from shequn.events.service import record_event
from shequn.growth.settings.rules import GrowthSettings, validate_patch
from shequn.growth.settings.tables import growth_settings
from shequn.locks import Lock, take
from shequn.tenancy.repo import load_settings, require_tenant

_NAMES = tuple(f.name for f in fields(GrowthSettings))


def load_growth_settings(tx: Connection, tenant_id: str) -> GrowthSettings:
    """The tenant's growth settings (the defaults where it set none)."""
    row = tx.execute(
        select(growth_settings).where(growth_settings.c.tenant_id == tenant_id)
    ).first()
    if row is None:
        return GrowthSettings()
    values = {name: row._mapping[name] for name in _NAMES}
    values["share_url_templates"] = dict(values["share_url_templates"])
    values["points_rules"] = dict(values["points_rules"])
    return GrowthSettings(**values)


def settings_view(settings: GrowthSettings) -> dict[str, Any]:
    data = asdict(settings)
    data["share_url_templates"] = dict(settings.share_url_templates)
    data["points_rules"] = dict(settings.points_rules)
    return data


def get_growth_settings(ctx: Ctx) -> dict[str, Any]:
    with ctx.db.read() as tx:
        require_tenant(tx, ctx.tenant_id)
        return settings_view(load_growth_settings(tx, ctx.tenant_id))


def update_growth_settings(ctx: Ctx, *, patch: dict[str, Any]) -> dict[str, Any]:
    """Apply a validated patch (nothing is written when it changes nothing)."""
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        # The tenant's settings row serialises changes (a first change inserts the row).
        load_settings(tx, ctx.tenant_id, for_update=True)
        current = load_growth_settings(tx, ctx.tenant_id)
        columns = validate_patch(current, patch)
        updated = replace(current, **columns)
        if updated == current:
            return settings_view(current)
        exists = tx.execute(
            select(growth_settings.c.tenant_id).where(growth_settings.c.tenant_id == ctx.tenant_id)
        ).first()
        values = {**settings_view(updated), "updated_at": now}
        if exists is None:
            tx.execute(insert(growth_settings).values(tenant_id=ctx.tenant_id, **values))
        else:
            tx.execute(
                update(growth_settings)
                .where(growth_settings.c.tenant_id == ctx.tenant_id)
                .values(**values)
            )
        record_event(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            type="GrowthSettingsChanged",
            subject_type="tenant",
            subject_id=ctx.tenant_id,
            payload={"changed": sorted(columns)},
        )
    return settings_view(updated)


def lock_growth_work(tx: Connection, tenant_id: str) -> None:
    """Serialise the tenant's growth sweeps and hold decisions (an advisory lock on
    PostgreSQL; SQLite's write lock already serialises)."""
    take(tx, Lock.GROWTH_SWEEP)
    if tx.dialect.name == "postgresql":
        tx.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"growth:{tenant_id}"},
        )
