"""Commission plans: validated from the API's input, stored as a new version (never changed
afterwards), activated as the tenant's one active plan. The compliance check that decides
whether a plan may be activated is `shequn.flows.plans`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from shequn.catalog.repo import existing_skus
from shequn.context import Ctx
from shequn.distribution.rules import (
    LevelRule,
    PlanMode,
    PlanSpec,
    Release,
    ScopeKind,
    nominal_total_bp,
    validate_plan,
)
from shequn.distribution.tables import commission_plans, commission_rules
from shequn.errors import InvalidInput, NotFound
from shequn.events.service import Event, record_events
from shequn.ids import new_id
from shequn.locks import Lock, take
from shequn.tenancy.rules import TenantSettings
from shequn.tenancy.tables import tenant_settings
from shequn.tiers.repo import load_tiers


def _parse_mode(raw: str) -> PlanMode:
    try:
        return PlanMode(raw)
    except ValueError:
        raise InvalidInput("plan_mode_invalid", mode=raw) from None


def build_plan_spec(
    *,
    mode: str,
    levels: Sequence[Mapping[str, Any]] = (),
    tier_rates: Sequence[Mapping[str, Any]] = (),
    depth: int | None = None,
    peer_bonus_bp: int = 0,
    signup_reward_fen: int = 0,
    qualification_sku: str | None = None,
    team_volume_bonus_bp: int = 0,
    release: str = "on_close",
) -> PlanSpec:
    """Turn API input into a validated plan (raises InvalidInput with a stable code)."""
    parsed_mode = _parse_mode(mode)
    rules: list[LevelRule] = []
    for item in levels:
        scope = item.get("scope") or {}
        try:
            scope_kind = ScopeKind(scope.get("kind", "all"))
        except ValueError:
            raise InvalidInput("rule_scope_invalid") from None
        tier_ids = item.get("tiers")
        rules.append(
            LevelRule(
                level=item["level"],
                rate_bp=item.get("rate_bp", 0),
                fixed_fen=item.get("fixed_fen", 0),
                scope_kind=scope_kind,
                scope_value=scope.get("value"),
                tier_ids=frozenset(tier_ids) if tier_ids is not None else None,
            )
        )
    rates: dict[str, int] = {}
    for item in tier_rates:
        if item["tier_id"] in rates:
            raise InvalidInput("tier_rate_duplicate", tier_id=item["tier_id"])
        rates[item["tier_id"]] = item["rate_bp"]
    if depth is None:
        depth = max((r.level for r in rules), default=2) if parsed_mode is PlanMode.LEVELS else 2
    try:
        parsed_release = Release(release)
    except ValueError:
        raise InvalidInput("plan_release_invalid", release=release) from None
    return validate_plan(
        PlanSpec(
            mode=parsed_mode,
            depth=depth,
            rules=tuple(rules),
            tier_rates=rates,
            peer_bonus_bp=peer_bonus_bp,
            signup_reward_fen=signup_reward_fen,
            qualification_sku=qualification_sku,
            team_volume_bonus_bp=team_volume_bonus_bp,
            release=parsed_release,
        )
    )


def plan_view(row: Row[Any], spec: PlanSpec, findings: Sequence[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "version": row.version,
        "name": row.name,
        "mode": spec.mode.value,
        "depth": spec.depth,
        "status": row.status,
        "levels": [
            {
                "level": r.level,
                "rate_bp": r.rate_bp,
                "fixed_fen": r.fixed_fen,
                "scope": {"kind": r.scope_kind.value, "value": r.scope_value},
                "tiers": sorted(r.tier_ids) if r.tier_ids is not None else None,
            }
            for r in spec.rules
        ],
        "tier_rates": [{"tier_id": t, "rate_bp": v} for t, v in sorted(spec.tier_rates.items())],
        "peer_bonus_bp": spec.peer_bonus_bp,
        "signup_reward_fen": spec.signup_reward_fen,
        "qualification_sku": spec.qualification_sku,
        "team_volume_bonus_bp": spec.team_volume_bonus_bp,
        "release": spec.release.value,
        "nominal_total_bp": nominal_total_bp(spec),
        "created_at": row.created_at,
        "activated_at": row.activated_at,
        "retired_at": row.retired_at,
        "findings": list(findings),
    }


def check_references(tx: Connection, tenant_id: str, spec: PlanSpec) -> None:
    tier_ids = set(spec.tier_rates)
    for rule in spec.rules:
        tier_ids |= set(rule.tier_ids or ())
    known = {t.id for t in load_tiers(tx, tenant_id)}
    missing = sorted(tier_ids - known)
    if missing:
        raise NotFound("tier_not_found", id=missing[0])
    skus = {r.scope_value for r in spec.rules if r.scope_kind is ScopeKind.PRODUCT}
    if spec.qualification_sku:
        skus.add(spec.qualification_sku)
    named = {s for s in skus if s}
    absent = sorted(named - existing_skus(tx, tenant_id, named))
    if absent:
        raise NotFound("product_not_found", sku=absent[0])
    for rule in spec.rules:
        if rule.scope_kind is ScopeKind.LADDER_ROLE and rule.scope_value not in (
            "bait",
            "core",
            "partner",
        ):
            raise InvalidInput("ladder_role_invalid", ladder_role=rule.scope_value)


def insert_plan(tx: Connection, ctx: Ctx, *, spec: PlanSpec, name: str | None) -> str:
    """Store a new draft version; the caller holds the settings' lock (which serialises the
    versions)."""
    check_references(tx, ctx.tenant_id, spec)
    plan_id = new_id("plan")
    now = ctx.clock.now()
    version = (
        tx.execute(
            select(func.coalesce(func.max(commission_plans.c.version), 0)).where(
                commission_plans.c.tenant_id == ctx.tenant_id
            )
        ).scalar_one()
        + 1
    )
    tx.execute(
        insert(commission_plans).values(
            tenant_id=ctx.tenant_id,
            id=plan_id,
            version=version,
            name=(name or "").strip()[:80] or f"v{version}",
            mode=spec.mode.value,
            depth=spec.depth,
            peer_bonus_bp=spec.peer_bonus_bp,
            signup_reward_fen=spec.signup_reward_fen,
            qualification_sku=spec.qualification_sku,
            team_volume_bonus_bp=spec.team_volume_bonus_bp,
            release=spec.release.value,
            tier_rates=dict(spec.tier_rates),
            status="draft",
            created_by=ctx.actor,
            created_at=now,
        )
    )
    if spec.rules:
        tx.execute(
            insert(commission_rules),
            [
                {
                    "tenant_id": ctx.tenant_id,
                    "id": new_id("rule"),
                    "plan_id": plan_id,
                    "level": r.level,
                    "rate_bp": r.rate_bp,
                    "fixed_fen": r.fixed_fen,
                    "scope_kind": r.scope_kind.value,
                    "scope_value": r.scope_value,
                    "tier_ids": sorted(r.tier_ids) if r.tier_ids is not None else None,
                }
                for r in spec.rules
            ],
        )
    return plan_id


def switch_active_plan(
    tx: Connection, ctx: Ctx, *, settings: TenantSettings, row: Row[Any]
) -> None:
    """Make `row` the tenant's active plan and retire the one before; the caller holds the
    settings and the plan."""
    if row.status == "active":
        return
    now = ctx.clock.now()
    take(tx, Lock.COMMISSION_PLANS)
    if settings.active_plan_id is not None:
        tx.execute(
            update(commission_plans)
            .where(
                commission_plans.c.tenant_id == ctx.tenant_id,
                commission_plans.c.id == settings.active_plan_id,
            )
            .values(status="retired", retired_at=now)
        )
    tx.execute(
        update(commission_plans)
        .where(commission_plans.c.tenant_id == ctx.tenant_id, commission_plans.c.id == row.id)
        .values(status="active", activated_at=now, retired_at=None)
    )
    tx.execute(
        update(tenant_settings)
        .where(tenant_settings.c.tenant_id == ctx.tenant_id)
        .values(active_plan_id=row.id, updated_at=now)
    )
    record_events(
        tx,
        tenant_id=ctx.tenant_id,
        actor=ctx.actor,
        at=now,
        items=[
            Event(
                "CommissionPlanActivated",
                "plan",
                row.id,
                {"version": row.version, "replaced": settings.active_plan_id},
            )
        ],
    )
