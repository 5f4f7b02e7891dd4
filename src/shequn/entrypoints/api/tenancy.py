from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Path, status
from pydantic import Field

from shequn.compliance.rules import Profile
from shequn.entrypoints.api.http import API_PREFIX, Admin, Body, Reader, blocking
from shequn.entrypoints.api.shapes import Shape, limits
from shequn.flows.settings import update_settings
from shequn.tenancy import service
from shequn.tenancy.rules import Role

router = APIRouter(prefix=API_PREFIX, tags=["tenant"])


def bounded(low: int, high: int, what: str) -> Any:
    """A setting the use case checks (422 `setting_out_of_range`); null or absent: unchanged."""
    return Field(
        default=None,
        description=f"{what}, {low} to {high} (else 422 `setting_out_of_range`).",
        json_schema_extra=limits(minimum=low, maximum=high),
    )


# --- requests ------------------------------------------------------------------------------


class BindingPolicyPatch(Body):
    mode: Literal["first_touch", "last_touch"] | None = Field(
        default=None,
        description="Which touch inside the window a new member is bound to: the first or the "
        "latest.",
    )
    window_days: int | None = bounded(1, 365, "Days a touch counts for")
    trigger: Literal["registration", "first_paid_order"] | None = Field(
        default=None, description="When a member is bound: at registration or first payment."
    )
    protection_days: int | None = bounded(
        0, 3650, "Days a binding is kept from a newer touch under `last_touch` (0: for ever)"
    )


class StageCriteriaPatch(Body):
    user_min_paid_orders: int | None = bounded(1, 1000, "Paid orders that make a user")
    fan_min_paid_orders: int | None = bounded(1, 1000, "Paid orders that make a fan")
    friend_min_referred_buyers: int | None = bounded(1, 1000, "Referred buyers that make a friend")


class SettingsPatch(Body):
    after_sales_days: int | None = bounded(
        0, 365, "Days after completion before an order closes and its commissions are released"
    )
    auto_complete_days: int | None = bounded(
        1, 365, "Days after shipping before the settlement completes an order nobody confirmed"
    )
    compliance_profile: Literal["direct", "wechat", "custom"] | None = Field(
        default=None,
        description="`direct` (直销: one level), `wechat` (WeChat's rules: two levels, 30 % in "
        "all), `custom` (up to three levels, `custom_commission_cap_bp` in all). A profile the "
        "active plan breaks is refused (409 `settings_break_active_plan`).",
    )
    custom_commission_cap_bp: int | None = bounded(
        0, 10_000, "Under `custom`, the most a sale may pay in total, in basis points"
    )
    binding_policy: BindingPolicyPatch | None = Field(
        default=None, description="Only the fields sent change."
    )
    withdrawal_min_fen: int | None = bounded(0, 10**11, "The smallest withdrawal, in fen")
    withdrawal_fee_bp: int | None = bounded(0, 5_000, "The withdrawal fee, in basis points")
    withdrawal_auto_approve_max_fen: int | None = bounded(
        0, 10**11, "The largest withdrawal approved without an operator, in fen"
    )
    withdrawal_daily_count_max: int | None = bounded(
        1, 1_000, "Withdrawals a member may make in a day before an operator approves them"
    )
    withdrawal_daily_amount_max_fen: int | None = bounded(
        0, 10**12, "What a member may withdraw in a day before an operator approves, in fen"
    )
    unpaid_cancel_minutes: int | None = bounded(
        1, 60 * 24 * 30, "Minutes an order may stay unpaid before the settlement cancels it"
    )
    time_zone: str | None = Field(
        default=None,
        max_length=64,
        description="The IANA time zone of the tenant's days and months (`Asia/Shanghai`; "
        "else 422 `time_zone_invalid`).",
    )
    stage_criteria: StageCriteriaPatch | None = Field(
        default=None, description="Only the fields sent change."
    )
    locale: Literal["zh_CN", "en"] | None = Field(
        default=None, description="The language of the tenant's messages by default."
    )


class ApiKeyCreate(Body):
    name: str = Field(min_length=1, max_length=80, description="What the key is for.")
    role: Literal["owner", "operator", "readonly"] = Field(
        description="`owner`: everything; `operator`: day-to-day operations (members, catalog, "
        "orders, payouts); `readonly`: reads only."
    )


# --- answers -------------------------------------------------------------------------------


class BindingPolicyOut(Shape):
    mode: Literal["first_touch", "last_touch"]
    window_days: int
    trigger: Literal["registration", "first_paid_order"]
    protection_days: int = Field(description="0: a binding is kept for ever.")


class StageCriteriaOut(Shape):
    user_min_paid_orders: int
    fan_min_paid_orders: int
    friend_min_referred_buyers: int


class SettingsOut(Shape):
    tenant_id: str
    currency: str = Field(description="ISO 4217 (`CNY`).")
    locale: Literal["zh_CN", "en"]
    after_sales_days: int
    auto_complete_days: int
    compliance_profile: Profile
    custom_commission_cap_bp: int
    withdrawal_min_fen: int
    withdrawal_fee_bp: int
    withdrawal_auto_approve_max_fen: int
    withdrawal_daily_count_max: int
    withdrawal_daily_amount_max_fen: int
    unpaid_cancel_minutes: int
    time_zone: str
    stage_criteria: StageCriteriaOut
    active_plan_id: str | None
    binding_policy: BindingPolicyOut


class ApiKeyOut(Shape):
    id: str
    name: str
    role: Role
    key_prefix: str = Field(description="The key's first characters, to tell keys apart.")
    created_at: datetime
    revoked_at: datetime | None


class NewApiKeyOut(Shape):
    id: str
    name: str
    role: Role
    api_key: str = Field(description="The key itself, shown this once: only its hash is kept.")


# --- routes --------------------------------------------------------------------------------


@router.get("/settings", response_model=SettingsOut)
@blocking
def read_settings(ctx: Reader) -> dict[str, Any]:
    """Read the tenant's settings

    The after-sales window, the compliance profile, the binding policy, the withdrawal
    thresholds and limits, the time zone and the stage criteria."""
    return service.get_settings(ctx)


@router.patch("/settings", response_model=SettingsOut)
@blocking
def patch_settings(ctx: Admin, body: SettingsPatch) -> dict[str, Any]:
    """Change the tenant's settings

    Only the fields sent (and not null) change. A change of the compliance profile or cap
    that the active plan would break is refused (409 `settings_break_active_plan`)."""
    return update_settings(ctx, patch=body.model_dump(exclude_unset=True, exclude_none=True))


@router.get("/api-keys", response_model=list[ApiKeyOut])
@blocking
def read_keys(ctx: Admin) -> list[dict[str, Any]]:
    """List the tenant's API keys

    Oldest first, revoked ones too; never the keys themselves."""
    return service.list_api_keys(ctx)


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, response_model=NewApiKeyOut)
@blocking
def create_key(ctx: Admin, body: ApiKeyCreate) -> dict[str, Any]:
    """Issue an API key

    The answer carries the key this once; keep it."""
    return service.create_api_key(ctx, name=body.name, role=body.role)


@router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
@blocking
def revoke_key(ctx: Admin, key_id: str = Path(description="The key's id (`key_…`).")) -> None:
    """Revoke an API key

    The tenant's last owner key cannot be revoked (409 `last_owner_key`)."""
    service.revoke_api_key(ctx, key_id=key_id)
