"""Commission plans and their compliance: a new version reports its findings, and a plan
with a blocking finding is never activated."""

from __future__ import annotations

from typing import Any

from shequn.compliance.rules import Severity
from shequn.compliance.service import check_spec
from shequn.context import Ctx
from shequn.distribution.plans import insert_plan, plan_view, switch_active_plan
from shequn.distribution.repo import load_plan, plan_row, plan_rows
from shequn.distribution.rules import PlanSpec
from shequn.errors import Conflict
from shequn.events.service import Event, record_events
from shequn.tenancy.repo import load_settings


def create_plan(ctx: Ctx, *, spec: PlanSpec, name: str | None = None) -> dict[str, Any]:
    """Store a new draft version and report its compliance findings."""
    with ctx.db.transaction() as tx:
        settings = load_settings(tx, ctx.tenant_id, for_update=True)  # serialises versions
        plan_id = insert_plan(tx, ctx, spec=spec, name=name)
        findings = check_spec(tx, settings=settings, spec=spec)
        row = plan_row(tx, ctx.tenant_id, plan_id)
        record_events(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=ctx.clock.now(),
            items=[
                Event(
                    "CommissionPlanCreated",
                    "plan",
                    plan_id,
                    {
                        "version": row.version,
                        "blocking": sum(f.severity is Severity.BLOCK for f in findings),
                    },
                )
            ],
        )
    return plan_view(row, spec, findings)


def get_plan(ctx: Ctx, *, plan_id: str) -> dict[str, Any]:
    with ctx.db.read() as tx:
        settings = load_settings(tx, ctx.tenant_id)
        row = plan_row(tx, ctx.tenant_id, plan_id)
        spec = load_plan(tx, ctx.tenant_id, plan_id, ctx.snapshot)
        findings = check_spec(tx, settings=settings, spec=spec)
    return plan_view(row, spec, findings)


def list_plans(ctx: Ctx) -> list[dict[str, Any]]:
    """Every version, oldest first, each with its findings under the current profile."""
    with ctx.db.read() as tx:
        settings = load_settings(tx, ctx.tenant_id)
        out = []
        for row in plan_rows(tx, ctx.tenant_id):
            spec = load_plan(tx, ctx.tenant_id, row.id, ctx.snapshot)
            out.append(plan_view(row, spec, check_spec(tx, settings=settings, spec=spec)))
        return out


def activate_plan(ctx: Ctx, *, plan_id: str) -> dict[str, Any]:
    """Make the plan the one active plan, unless a compliance finding blocks it."""
    with ctx.db.transaction() as tx:
        settings = load_settings(tx, ctx.tenant_id, for_update=True)
        row = plan_row(tx, ctx.tenant_id, plan_id, for_update=True)
        spec = load_plan(tx, ctx.tenant_id, plan_id, ctx.snapshot)
        findings = check_spec(tx, settings=settings, spec=spec)
        if any(f.severity is Severity.BLOCK for f in findings):
            raise Conflict("plan_blocked", findings=findings)
        switch_active_plan(tx, ctx, settings=settings, row=row)
        row = plan_row(tx, ctx.tenant_id, plan_id)
    return plan_view(row, spec, findings)
