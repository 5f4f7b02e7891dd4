"""Reads of commission plans. A plan never changes once written (the database refuses it:
see `shequn.migrations.triggers`), so a copy of one is always current."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, select

from shequn.distribution.rules import LevelRule, PlanMode, PlanSpec, Release, ScopeKind
from shequn.distribution.tables import commission_plans, commission_rules
from shequn.errors import NotFound
from shequn.locks import Lock, take
from shequn.snapshot import Snapshot


def plan_row(tx: Connection, tenant_id: str, plan_id: str, *, for_update: bool = False) -> Row[Any]:
    if for_update:
        take(tx, Lock.COMMISSION_PLANS)
    query = select(commission_plans).where(
        commission_plans.c.tenant_id == tenant_id, commission_plans.c.id == plan_id
    )
    if for_update:
        query = query.with_for_update()
    row = tx.execute(query).first()
    if row is None:
        raise NotFound("plan_not_found", id=plan_id)
    return row


def plan_rows(tx: Connection, tenant_id: str) -> list[Row[Any]]:
    return list(
        tx.execute(
            select(commission_plans)
            .where(commission_plans.c.tenant_id == tenant_id)
            .order_by(commission_plans.c.version)
        ).all()
    )


def _read_plan(tx: Connection, tenant_id: str, plan_id: str) -> PlanSpec:
    row = plan_row(tx, tenant_id, plan_id)
    rule_rows = tx.execute(
        select(commission_rules)
        .where(commission_rules.c.tenant_id == tenant_id, commission_rules.c.plan_id == plan_id)
        .order_by(commission_rules.c.level, commission_rules.c.id)
    ).all()
    return PlanSpec(
        mode=PlanMode(row.mode),
        depth=row.depth,
        rules=tuple(
            LevelRule(
                level=r.level,
                rate_bp=r.rate_bp,
                fixed_fen=r.fixed_fen,
                scope_kind=ScopeKind(r.scope_kind),
                scope_value=r.scope_value,
                tier_ids=frozenset(r.tier_ids) if r.tier_ids is not None else None,
            )
            for r in rule_rows
        ),
        tier_rates=dict(row.tier_rates),
        peer_bonus_bp=row.peer_bonus_bp,
        signup_reward_fen=row.signup_reward_fen,
        qualification_sku=row.qualification_sku,
        team_volume_bonus_bp=row.team_volume_bonus_bp,
        release=Release(row.release),
    )


def load_plan(tx: Connection, tenant_id: str, plan_id: str, snapshot: Snapshot) -> PlanSpec:
    """The plan's rules, from the snapshot or read."""
    kept = snapshot.kind("plans")
    found: PlanSpec | None = kept.get((tenant_id, plan_id))
    if found is None:
        found = _read_plan(tx, tenant_id, plan_id)
        kept.put((tenant_id, plan_id), found)
    return found
