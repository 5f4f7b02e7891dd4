"""Tenants, API keys and per-tenant settings."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from shequn.clock import Clock
from shequn.context import Ctx
from shequn.db import Database
from shequn.errors import Conflict, InvalidInput, NotFound, Unauthorized
from shequn.events.service import record_event
from shequn.ids import new_id
from shequn.ledger.service import ensure_tenant_accounts
from shequn.memo import Recent
from shequn.tenancy.rules import (
    DEFAULT_STAGE_CRITERIA,
    BindingPolicy,
    Principal,
    Role,
    TenantSettings,
    hash_api_key,
    validate_settings_patch,
)
from shequn.tenancy.tables import api_keys, tenant_settings, tenants


def create_tenant(*, db: Database, clock: Clock, name: str, actor: str = "cli") -> tuple[str, str]:
    """Create a tenant with default settings and an owner key; returns (tenant_id, raw key)."""
    clean = name.strip()
    if not clean or len(clean) > 120:
        raise InvalidInput("tenant_name_invalid")
    tenant_id = new_id("tn")
    now = clock.now()
    with db.transaction() as tx:
        tx.execute(insert(tenants).values(tenant_id=tenant_id, name=clean, created_at=now))
        tx.execute(
            insert(tenant_settings).values(
                tenant_id=tenant_id,
                stage_criteria=dict(DEFAULT_STAGE_CRITERIA),
                tiers_version=0,
                updated_at=now,
            )
        )
        ensure_tenant_accounts(tx, tenant_id=tenant_id, currency="CNY")
        raw_key, key_id = _insert_key(
            tx, tenant_id=tenant_id, name="owner", role=Role.OWNER, at=now
        )
        record_event(
            tx,
            tenant_id=tenant_id,
            actor=actor,
            at=now,
            type="TenantCreated",
            subject_type="tenant",
            subject_id=tenant_id,
            payload={"name": clean, "owner_key_id": key_id},
        )
    return tenant_id, raw_key


def list_tenants(*, db: Database) -> list[dict[str, Any]]:
    with db.read() as tx:
        rows = tx.execute(select(tenants).order_by(tenants.c.created_at)).all()
    return [dict(r._mapping) for r in rows]


def _insert_key(
    tx: Connection, *, tenant_id: str, name: str, role: Role, at: Any
) -> tuple[str, str]:
    raw_key = "sk_" + secrets.token_urlsafe(32)
    key_id = new_id("key")
    tx.execute(
        insert(api_keys).values(
            tenant_id=tenant_id,
            id=key_id,
            name=name,
            role=role.value,
            key_hash=hash_api_key(raw_key),
            key_prefix=raw_key[:10],
            created_at=at,
        )
    )
    return raw_key, key_id


def create_api_key(ctx: Ctx, *, name: str, role: str) -> dict[str, Any]:
    """Issue a key; the raw key is returned once and only its hash is stored."""
    try:
        parsed_role = Role(role)
    except ValueError:
        raise InvalidInput("role_invalid", role=role) from None
    clean = name.strip()
    if not clean or len(clean) > 80:
        raise InvalidInput("key_name_invalid")
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        _require_tenant(tx, ctx.tenant_id)
        raw_key, key_id = _insert_key(
            tx, tenant_id=ctx.tenant_id, name=clean, role=parsed_role, at=now
        )
        record_event(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            type="ApiKeyCreated",
            subject_type="api_key",
            subject_id=key_id,
            payload={"name": clean, "role": parsed_role.value},
        )
    return {"id": key_id, "name": clean, "role": parsed_role.value, "api_key": raw_key}


def list_api_keys(ctx: Ctx) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(
                api_keys.c.id,
                api_keys.c.name,
                api_keys.c.role,
                api_keys.c.key_prefix,
                api_keys.c.created_at,
                api_keys.c.revoked_at,
            )
            .where(api_keys.c.tenant_id == ctx.tenant_id)
            .order_by(api_keys.c.created_at)
        ).all()
    return [dict(r._mapping) for r in rows]


def revoke_api_key(ctx: Ctx, *, key_id: str) -> None:
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        result = tx.execute(
            update(api_keys)
            .where(
                api_keys.c.tenant_id == ctx.tenant_id,
                api_keys.c.id == key_id,
                api_keys.c.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
        if result.rowcount != 1:
            raise NotFound("api_key_not_found", id=key_id)
        remaining_owners = tx.execute(
            select(api_keys.c.id).where(
                api_keys.c.tenant_id == ctx.tenant_id,
                api_keys.c.role == Role.OWNER.value,
                api_keys.c.revoked_at.is_(None),
            )
        ).first()
        if remaining_owners is None:
            raise Conflict("last_owner_key")
        record_event(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            type="ApiKeyRevoked",
            subject_type="api_key",
            subject_id=key_id,
        )
    _KEY_CACHE.clear()


class _KeyCache:
    """A short-lived in-process cache of authenticated keys, to spare a query per request."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> Principal | None:
        with self._lock:
            item = self._items.get(key_hash)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def put(self, key_hash: str, principal: Principal, ttl: float) -> None:
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[key_hash] = (time.monotonic() + ttl, principal)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_KEY_CACHE = _KeyCache()


def cached_principal(raw_key: str) -> Principal | None:
    """The principal for a key authenticated moments ago, without touching the database."""
    if not raw_key.startswith("sk_") or len(raw_key) > 100:
        return None
    return _KEY_CACHE.get(hash_api_key(raw_key))


def authenticate(*, db: Database, raw_key: str, cache_seconds: float = 0) -> Principal:
    if not raw_key.startswith("sk_") or len(raw_key) > 100:
        raise Unauthorized("api_key_invalid")
    key_hash = hash_api_key(raw_key)
    if cache_seconds > 0:
        cached = _KEY_CACHE.get(key_hash)
        if cached is not None:
            return cached
    with db.read() as tx:
        row = tx.execute(
            select(api_keys.c.tenant_id, api_keys.c.id, api_keys.c.role).where(
                api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None)
            )
        ).first()
    if row is None:
        raise Unauthorized("api_key_invalid")
    principal = Principal(tenant_id=row.tenant_id, key_id=row.id, role=Role(row.role))
    if cache_seconds > 0:
        _KEY_CACHE.put(key_hash, principal, cache_seconds)
    return principal


def require_tenant(*, db: Database, tenant_id: str) -> None:
    with db.read() as tx:
        _require_tenant(tx, tenant_id)


def _require_tenant(tx: Connection, tenant_id: str) -> None:
    found = tx.execute(select(tenants.c.tenant_id).where(tenants.c.tenant_id == tenant_id)).first()
    if found is None:
        raise NotFound("tenant_not_found", id=tenant_id)


# Built once: the settings are read by nearly every use case.
_settings_query = select(tenant_settings).where(tenant_settings.c.tenant_id == bindparam("t_id"))
_settings_query_for_update = _settings_query.with_for_update()


def load_settings(tx: Connection, tenant_id: str, *, for_update: bool = False) -> TenantSettings:
    query = _settings_query_for_update if for_update else _settings_query
    row = tx.execute(query, {"t_id": tenant_id}).first()
    if row is None:
        raise NotFound("tenant_not_found", id=tenant_id)
    return settings_from_row(row._mapping)


SETTINGS_PREFIX = "settings_"


def settings_columns() -> list[Any]:
    """The settings columns labelled with `SETTINGS_PREFIX`, for a use case that reads its
    settings in the same statement as its other rows."""
    return [c.label(SETTINGS_PREFIX + c.name) for c in tenant_settings.c]


class _SeenSettings:
    """Each tenant's settings as this process last read them, for a use case that writes in one
    statement with a check that they are still at the same `version` (and reads them afresh if
    not), instead of reading them first."""

    def __init__(self, size: int) -> None:
        self._items: Recent[str, TenantSettings] = Recent(size)

    def put(self, settings: TenantSettings) -> None:
        self._items.put_unless_newer(
            settings.tenant_id, settings, newer=lambda held, new: held.version > new.version
        )

    def get(self, tenant_id: str) -> TenantSettings | None:
        return self._items.get(tenant_id)


seen_settings = _SeenSettings(1_000)


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
        stage_criteria=dict(col("stage_criteria")),
        active_plan_id=col("active_plan_id"),
        tiers_version=col("tiers_version"),
        version=col("version"),
    )


def settings_view(settings: TenantSettings) -> dict[str, Any]:
    data = asdict(settings)
    data["binding_policy"] = data.pop("binding")
    del data["tiers_version"], data["version"]
    return data


def get_settings(ctx: Ctx) -> dict[str, Any]:
    with ctx.db.read() as tx:
        return settings_view(load_settings(tx, ctx.tenant_id))


def update_settings(ctx: Ctx, *, patch: dict[str, Any]) -> dict[str, Any]:
    """Apply a validated patch; a stricter compliance profile is refused while the active plan
    would break it."""
    from shequn.compliance.service import findings_for_plan  # settings ↔ compliance cycle

    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        current = load_settings(tx, ctx.tenant_id, for_update=True)
        if isinstance(patch.get("stage_criteria"), dict):
            patch = {
                **patch,
                "stage_criteria": {**current.stage_criteria, **patch["stage_criteria"]},
            }
        columns = validate_settings_patch(patch)
        if not columns:
            return settings_view(current)
        tx.execute(
            update(tenant_settings)
            .where(tenant_settings.c.tenant_id == ctx.tenant_id)
            .values(**columns, version=tenant_settings.c.version + 1, updated_at=now)
        )
        updated = load_settings(tx, ctx.tenant_id)
        if updated.active_plan_id and (
            "compliance_profile" in columns or "custom_commission_cap_bp" in columns
        ):
            findings = findings_for_plan(tx, settings=updated, plan_id=updated.active_plan_id)
            blocking = [f for f in findings if f.severity == "block"]
            if blocking:
                raise Conflict(
                    "settings_break_active_plan", findings=[f.as_dict() for f in blocking]
                )
        record_event(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=now,
            type="SettingsChanged",
            subject_type="tenant",
            subject_id=ctx.tenant_id,
            payload={"changed": sorted(columns)},
        )
    return settings_view(updated)
