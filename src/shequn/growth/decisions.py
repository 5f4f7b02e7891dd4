"""An operator's decision on a hold: release it (the commission line paid again on what is
left of its order, the reward granted) or cancel it, with a reason. A decided hold cannot be
decided again, so nothing is paid twice; a cancelled one stays withheld in the brand's
clearing account, so nothing is lost from the books."""

from __future__ import annotations

from typing import Any

from shequn.context import Ctx
from shequn.growth.holds.rules import HoldStatus, clean_decision_reason
from shequn.growth.holds.service import decide, hold_row, lock_hold, lock_order, release_commission
from shequn.growth.settings.service import load_growth_settings, lock_growth_work
from shequn.growth.sharing.service import cancel_reward, release_reward
from shequn.tenancy.repo import load_settings


def release_hold(ctx: Ctx, *, hold_id: str, reason: str) -> dict[str, Any]:
    """Pay what the hold withheld, as far as its order still stands."""
    clean = clean_decision_reason(reason)
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        lock_growth_work(tx, ctx.tenant_id)
        settings = load_settings(tx, ctx.tenant_id)
        seen = hold_row(tx, ctx.tenant_id, hold_id)
        if seen.kind == "commission":
            order = lock_order(tx, ctx.tenant_id, seen.order_id)
            held = lock_hold(tx, ctx.tenant_id, hold_id)
            paid = release_commission(tx, settings=settings, hold=held, order=order, at=now)
        else:
            # The growth lock serialises decisions: the reward's coupon comes before the hold.
            if seen.status != HoldStatus.HELD.value:
                lock_hold(tx, ctx.tenant_id, hold_id)  # says it was decided
            paid = release_reward(
                tx,
                settings=settings,
                growth=load_growth_settings(tx, ctx.tenant_id),
                reward_id=seen.subject_id,
                at=now,
            )
            lock_hold(tx, ctx.tenant_id, hold_id)
        return decide(
            tx,
            tenant_id=ctx.tenant_id,
            hold_id=hold_id,
            status=HoldStatus.RELEASED,
            reason=clean,
            released_fen=paid,
            actor=ctx.actor,
            at=now,
        )


def cancel_hold(ctx: Ctx, *, hold_id: str, reason: str) -> dict[str, Any]:
    """Keep what the hold withheld from being paid."""
    clean = clean_decision_reason(reason)
    now = ctx.clock.now()
    with ctx.db.transaction() as tx:
        lock_growth_work(tx, ctx.tenant_id)
        seen = hold_row(tx, ctx.tenant_id, hold_id)
        if seen.kind == "commission":
            lock_order(tx, ctx.tenant_id, seen.order_id)
        held = lock_hold(tx, ctx.tenant_id, hold_id)
        if held.kind == "reward":
            cancel_reward(tx, tenant_id=ctx.tenant_id, reward_id=held.subject_id)
        return decide(
            tx,
            tenant_id=ctx.tenant_id,
            hold_id=hold_id,
            status=HoldStatus.CANCELLED,
            reason=clean,
            released_fen=0,
            actor=ctx.actor,
            at=now,
        )
