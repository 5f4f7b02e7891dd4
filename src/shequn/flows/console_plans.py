"""A commission plan checked before it is saved: the console's editor shows its compliance
findings as the operator types, without writing a version."""

from __future__ import annotations

from typing import Any

from shequn.compliance.rules import Finding
from shequn.compliance.service import check_spec
from shequn.context import Ctx
from shequn.distribution.plans import check_references
from shequn.distribution.rules import PlanSpec, nominal_total_bp
from shequn.tenancy.repo import load_settings


def preview_plan(ctx: Ctx, *, spec: PlanSpec) -> dict[str, Any]:
    """The findings the plan would have if saved now, and its nominal total rate (its tiers
    and products must exist, as for saving)."""
    with ctx.db.read() as tx:
        settings = load_settings(tx, ctx.tenant_id)
        check_references(tx, ctx.tenant_id, spec)
        findings: list[Finding] = check_spec(tx, settings=settings, spec=spec)
    return {
        "findings": findings,
        "nominal_total_bp": nominal_total_bp(spec),
        "profile": settings.compliance_profile,
    }
