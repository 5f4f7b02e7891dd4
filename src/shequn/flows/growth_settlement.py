"""Settlement with growth: the growth sweep holds suspect commissions of paid orders before
the settlement releases them, then the settlement closes orders and releases commissions, and
the sweep again grants the points and sharing rewards of the orders it closed (and gives back
or takes back what refunds and cancellations call for)."""

from __future__ import annotations

from typing import Any

from shequn.context import Ctx
from shequn.growth.sweep import run_growth_sweep
from shequn.settlement.service import run_settlement


def settle_with_growth(ctx: Ctx) -> dict[str, Any]:
    before = run_growth_sweep(ctx)
    settled = run_settlement(ctx)
    after = run_growth_sweep(ctx)
    growth = {key: before[key] + after[key] for key in before}
    return {**settled, "growth": growth}
