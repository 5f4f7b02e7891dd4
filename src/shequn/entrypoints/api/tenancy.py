from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, status
from pydantic import Field

from shequn.entrypoints.api.http import API_PREFIX, Admin, Body, Reader, blocking
from shequn.flows.settings import update_settings
from shequn.tenancy import service

router = APIRouter(prefix=API_PREFIX, tags=["tenant"])


class BindingPolicyPatch(Body):
    mode: Literal["first_touch", "last_touch"] | None = None
    window_days: int | None = None
    trigger: Literal["registration", "first_paid_order"] | None = None
    protection_days: int | None = None


class StageCriteriaPatch(Body):
    user_min_paid_orders: int | None = None
    fan_min_paid_orders: int | None = None
    friend_min_referred_buyers: int | None = None


class SettingsPatch(Body):
    after_sales_days: int | None = None
    auto_complete_days: int | None = None
    compliance_profile: Literal["direct", "wechat", "custom"] | None = None
    custom_commission_cap_bp: int | None = None
    binding_policy: BindingPolicyPatch | None = None
    withdrawal_min_fen: int | None = None
    withdrawal_fee_bp: int | None = None
    withdrawal_auto_approve_max_fen: int | None = None
    stage_criteria: StageCriteriaPatch | None = None
    locale: Literal["zh_CN", "en"] | None = None


class ApiKeyCreate(Body):
    name: str = Field(min_length=1, max_length=80)
    role: Literal["owner", "operator", "readonly"]


@router.get("/settings")
@blocking
def read_settings(ctx: Reader) -> dict[str, Any]:
    return service.get_settings(ctx)


@router.patch("/settings")
@blocking
def patch_settings(ctx: Admin, body: SettingsPatch) -> dict[str, Any]:
    return update_settings(ctx, patch=body.model_dump(exclude_unset=True, exclude_none=True))


@router.get("/api-keys")
@blocking
def read_keys(ctx: Admin) -> list[dict[str, Any]]:
    return service.list_api_keys(ctx)


@router.post("/api-keys", status_code=status.HTTP_201_CREATED)
@blocking
def create_key(ctx: Admin, body: ApiKeyCreate) -> dict[str, Any]:
    return service.create_api_key(ctx, name=body.name, role=body.role)


@router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
@blocking
def revoke_key(ctx: Admin, key_id: str) -> None:
    service.revoke_api_key(ctx, key_id=key_id)
