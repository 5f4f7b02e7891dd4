from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, status
from pydantic import Field

from shequn.compliance.service import compliance_report
from shequn.distribution.plans import build_plan_spec
from shequn.entrypoints.api.http import API_PREFIX, Admin, Body, Reader, blocking
from shequn.entrypoints.rendering import findings_shown
from shequn.flows import plans

router = APIRouter(prefix=API_PREFIX, tags=["distribution"])


class Scope(Body):
    kind: Literal["all", "ladder_role", "category", "product"] = "all"
    value: str | None = None


class LevelIn(Body):
    level: int
    rate_bp: int = 0
    fixed_fen: int = 0
    scope: Scope | None = None
    tiers: list[str] | None = None


class TierRateIn(Body):
    tier_id: str
    rate_bp: int


class PlanCreate(Body):
    mode: Literal["levels", "differential"]
    name: str | None = None
    depth: int | None = None
    levels: list[LevelIn] = Field(default_factory=list)
    tier_rates: list[TierRateIn] = Field(default_factory=list)
    peer_bonus_bp: int = 0
    signup_reward_fen: int = 0
    qualification_sku: str | None = None
    team_volume_bonus_bp: int = 0
    release: Literal["on_close", "on_payment"] = "on_close"


@router.post("/commission-plans", status_code=status.HTTP_201_CREATED)
@blocking
def create_plan(ctx: Admin, body: PlanCreate) -> dict[str, Any]:
    data = body.model_dump()
    name = data.pop("name")
    spec = build_plan_spec(**data)
    return findings_shown(plans.create_plan(ctx, spec=spec, name=name))


@router.get("/commission-plans")
@blocking
def list_plans(ctx: Reader) -> list[dict[str, Any]]:
    return [findings_shown(plan) for plan in plans.list_plans(ctx)]


@router.get("/commission-plans/{plan_id}")
@blocking
def get_plan(ctx: Reader, plan_id: str) -> dict[str, Any]:
    return findings_shown(plans.get_plan(ctx, plan_id=plan_id))


@router.post("/commission-plans/{plan_id}/activate")
@blocking
def activate_plan(ctx: Admin, plan_id: str) -> dict[str, Any]:
    return findings_shown(plans.activate_plan(ctx, plan_id=plan_id))


@router.get("/compliance/report")
@blocking
def report(ctx: Reader) -> dict[str, Any]:
    return findings_shown(compliance_report(ctx))
