"""Roles, permissions and the validation of a tenant's business settings (pure)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shequn.errors import InvalidInput


class Role(StrEnum):
    OWNER = "owner"
    OPERATOR = "operator"
    READONLY = "readonly"


class Permission(StrEnum):
    READ = "read"
    WRITE = "write"  # day-to-day operations: members, catalog, orders, payouts
    ADMIN = "admin"  # settings, keys, tiers, plans, rebinding a member


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset({Permission.READ, Permission.WRITE, Permission.ADMIN}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.WRITE}),
    Role.READONLY: frozenset({Permission.READ}),
}


def least_role_for(permission: Permission) -> Role:
    """The least role that has `permission` (the roles are ordered: readonly < operator <
    owner)."""
    for role in (Role.READONLY, Role.OPERATOR, Role.OWNER):
        if permission in ROLE_PERMISSIONS[role]:
            return role
    raise ValueError(f"no role has {permission}")


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    key_id: str
    role: Role

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]


def hash_api_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


COMPLIANCE_PROFILES = ("direct", "wechat", "custom")
BINDING_MODES = ("first_touch", "last_touch")
BINDING_TRIGGERS = ("registration", "first_paid_order")

DEFAULT_STAGE_CRITERIA: dict[str, int] = {
    "user_min_paid_orders": 2,
    "fan_min_paid_orders": 3,
    "friend_min_referred_buyers": 1,
}


@dataclass(frozen=True)
class BindingPolicy:
    mode: str = "first_touch"
    window_days: int = 30
    trigger: str = "registration"
    protection_days: int = 0  # 0 = permanent


@dataclass(frozen=True)
class TenantSettings:
    tenant_id: str
    currency: str = "CNY"
    locale: str = "zh_CN"
    after_sales_days: int = 7
    auto_complete_days: int = 10
    compliance_profile: str = "wechat"
    custom_commission_cap_bp: int = 3000
    binding: BindingPolicy = field(default_factory=BindingPolicy)
    withdrawal_min_fen: int = 100
    withdrawal_fee_bp: int = 0
    withdrawal_auto_approve_max_fen: int = 50_000
    withdrawal_daily_count_max: int = 3
    withdrawal_daily_amount_max_fen: int = 500_000
    unpaid_cancel_minutes: int = 30
    time_zone: str = "Asia/Shanghai"
    stage_criteria: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_STAGE_CRITERIA))
    active_plan_id: str | None = None
    tiers_version: int = 0
    version: int = 0


_INT_BOUNDS: dict[str, tuple[int, int]] = {
    "after_sales_days": (0, 365),
    "auto_complete_days": (1, 365),
    "custom_commission_cap_bp": (0, 10_000),
    "withdrawal_min_fen": (0, 10**11),
    "withdrawal_fee_bp": (0, 5_000),
    "withdrawal_auto_approve_max_fen": (0, 10**11),
    "withdrawal_daily_count_max": (1, 1_000),
    "withdrawal_daily_amount_max_fen": (0, 10**12),
    "unpaid_cancel_minutes": (1, 60 * 24 * 30),
}


def is_time_zone(name: str) -> bool:
    """Whether `name` is an IANA time zone this system knows (e.g. Asia/Shanghai)."""
    if not 1 <= len(name) <= 64 or name.startswith("/") or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _require_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("setting_invalid", field=name)
    if not low <= value <= high:
        raise InvalidInput("setting_out_of_range", field=name, low=low, high=high)
    return value


def validate_settings_patch(patch: dict[str, Any]) -> dict[str, Any]:
    """Turn an API patch into column values, refusing anything unknown or out of range."""
    columns: dict[str, Any] = {}
    for name, value in patch.items():
        if name in _INT_BOUNDS:
            columns[name] = _require_int(name, value, *_INT_BOUNDS[name])
        elif name == "compliance_profile":
            if value not in COMPLIANCE_PROFILES:
                raise InvalidInput("setting_invalid", field=name)
            columns[name] = value
        elif name == "time_zone":
            if not isinstance(value, str) or not is_time_zone(value):
                raise InvalidInput("time_zone_invalid", time_zone=str(value))
            columns[name] = value
        elif name == "locale":
            if value not in ("zh_CN", "en"):
                raise InvalidInput("setting_invalid", field=name)
            columns[name] = value
        elif name == "binding_policy":
            if not isinstance(value, dict):
                raise InvalidInput("setting_invalid", field=name)
            for key, item in value.items():
                if key == "mode":
                    if item not in BINDING_MODES:
                        raise InvalidInput("setting_invalid", field="binding_policy.mode")
                    columns["binding_mode"] = item
                elif key == "trigger":
                    if item not in BINDING_TRIGGERS:
                        raise InvalidInput("setting_invalid", field="binding_policy.trigger")
                    columns["binding_trigger"] = item
                elif key == "window_days":
                    columns["binding_window_days"] = _require_int(
                        "binding_policy.window_days", item, 1, 365
                    )
                elif key == "protection_days":
                    columns["binding_protection_days"] = _require_int(
                        "binding_policy.protection_days", item, 0, 3650
                    )
                else:
                    raise InvalidInput("setting_unknown", field=f"binding_policy.{key}")
        elif name == "stage_criteria":
            if not isinstance(value, dict):
                raise InvalidInput("setting_invalid", field=name)
            merged = dict(DEFAULT_STAGE_CRITERIA)
            for key, item in value.items():
                if key not in DEFAULT_STAGE_CRITERIA:
                    raise InvalidInput("setting_unknown", field=f"stage_criteria.{key}")
                merged[key] = _require_int(f"stage_criteria.{key}", item, 1, 1000)
            columns["stage_criteria"] = merged
        else:
            raise InvalidInput("setting_unknown", field=name)
    return columns


def local_day_start(at: datetime, time_zone: str) -> datetime:
    """The start (in UTC) of the day `at` falls in, in the tenant's time zone."""
    local = at.astimezone(ZoneInfo(time_zone))
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.astimezone(UTC)
