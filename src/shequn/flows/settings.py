"""Changing a tenant's settings: a stricter compliance profile is refused while the active
plan would break it."""

from __future__ import annotations

from typing import Any

from shequn.compliance.rules import Severity
from shequn.compliance.service import findings_for_plan
from shequn.context import Ctx
from shequn.errors import Conflict
from shequn.events.service import record_event
from shequn.tenancy.repo import load_settings
from shequn.tenancy.service import apply_settings_patch, settings_view


def update_settings(ctx: Ctx, *, patch: dict[str, Any]) -> dict[str, Any]:
    """Apply a validated patch."""
    with ctx.db.transaction() as tx:
        current = load_settings(tx, ctx.tenant_id, for_update=True)
        updated, changed = apply_settings_patch(tx, ctx, current=current, patch=patch)
        if not changed:
            return settings_view(current)
        if updated.active_plan_id and (
            "compliance_profile" in changed or "custom_commission_cap_bp" in changed
        ):
            findings = findings_for_plan(
                tx, settings=updated, plan_id=updated.active_plan_id, snapshot=ctx.snapshot
            )
            blocking = [f for f in findings if f.severity is Severity.BLOCK]
            if blocking:
                raise Conflict("settings_break_active_plan", findings=blocking)
        record_event(
            tx,
            tenant_id=ctx.tenant_id,
            actor=ctx.actor,
            at=ctx.clock.now(),
            type="SettingsChanged",
            subject_type="tenant",
            subject_id=ctx.tenant_id,
            payload={"changed": changed},
        )
    return settings_view(updated)
