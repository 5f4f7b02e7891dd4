"""Tenants, API keys and per-tenant settings."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import asdict
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from shequn.clock import Clock
from shequn.context import Ctx
from shequn.db import Database
from shequn.errors import Conflict, InvalidInput, NotFound, Unauthorized
from shequn.events.service import record_event
from shequn.ids import new_id
from shequn.ledger.service import ensure_tenant_accounts
from shequn.tenancy.repo import load_settings
from shequn.tenancy.repo import require_tenant as _require_tenant
from shequn.tenancy.rules import (
    DEFAULT_STAGE_CRITERIA,
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
    """Every tenant with its time zone (a person reads its dates there)."""
    query = (
        select(
            tenants,
            func.coalesce(tenant_settings.c.time_zone, TenantSettings.time_zone).label("time_zone"),
        )
        .select_from(
            tenants.outerjoin(tenant_settings, tenant_settings.c.tenant_id == tenants.c.tenant_id)
        )
        .order_by(tenants.c.created_at)
    )
    with db.read() as tx:
        rows = tx.execute(query).all()
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


def settings_view(settings: TenantSettings) -> dict[str, Any]:
    data = asdict(settings)
    data["binding_policy"] = data.pop("binding")
    del data["tiers_version"], data["version"]
    return data


def get_settings(ctx: Ctx) -> dict[str, Any]:
    with ctx.db.read() as tx:
        return settings_view(load_settings(tx, ctx.tenant_id))


def apply_settings_patch(
    tx: Connection, ctx: Ctx, *, current: TenantSettings, patch: dict[str, Any]
) -> tuple[TenantSettings, list[str]]:
    """Validate and write a patch inside the caller's transaction (which has locked the
    settings); returns the settings as they now are and the columns changed."""
    if isinstance(patch.get("stage_criteria"), dict):
        patch = {**patch, "stage_criteria": {**current.stage_criteria, **patch["stage_criteria"]}}
    columns = validate_settings_patch(patch)
    if not columns:
        return current, []
    tx.execute(
        update(tenant_settings)
        .where(tenant_settings.c.tenant_id == ctx.tenant_id)
        .values(**columns, updated_at=ctx.clock.now())
    )
    return load_settings(tx, ctx.tenant_id), sorted(columns)
