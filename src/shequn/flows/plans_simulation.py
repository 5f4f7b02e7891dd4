"""What a commission plan would pay, before it is activated: the orders paid in a period (or a
set of orders the operator describes) replayed under the plan and under the active one, per
member and per order line, with the compliance findings (`shequn.distribution.simulator`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, select

from shequn.catalog.tables import product_tier_prices, products
from shequn.compliance.rules import Finding, runtime_cap_bp
from shequn.compliance.service import check_spec
from shequn.context import Ctx
from shequn.distribution.repo import load_plan, plan_row
from shequn.distribution.rules import SaleLine
from shequn.distribution.simulator import (
    MAX_PERIOD_DAYS,
    ReplayLine,
    ReplayOrder,
    SimLine,
    TierTimeline,
    Totals,
    deepest_level,
    parse_period,
    replay,
    totals,
)
from shequn.errors import InvalidInput, NotFound
from shequn.events.tables import events
from shequn.members.tables import members
from shequn.money import MAX_AMOUNT_FEN
from shequn.orders.copies import sale_line
from shequn.orders.tables import order_lines, orders
from shequn.tenancy.repo import load_settings
from shequn.tiers.facts import TIER_CHANGED
from shequn.tiers.repo import load_tiers
from shequn.tiers.rules import TierSpec, tier_price

MAX_ORDERS = 200_000
MAX_SIMULATED_ORDERS = 1_000
MAX_LINES_SHOWN = 5_000
MAX_MEMBERS_SHOWN = 500


def _check(
    start: datetime | None,
    end: datetime | None,
    described: Sequence[Mapping[str, Any]] | None,
    limit: int,
) -> None:
    if not 1 <= limit <= MAX_LINES_SHOWN:
        raise InvalidInput("limit_out_of_range", low=1, high=MAX_LINES_SHOWN)
    if described is not None:
        if not 1 <= len(described) <= MAX_SIMULATED_ORDERS:
            raise InvalidInput("simulation_orders_invalid", max=MAX_SIMULATED_ORDERS)
        return
    if start is None or end is None:
        raise InvalidInput("period_invalid", max_days=MAX_PERIOD_DAYS)
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("period_invalid", max_days=MAX_PERIOD_DAYS)
    if not start < end or end - start > timedelta(days=MAX_PERIOD_DAYS):
        raise InvalidInput("period_invalid", max_days=MAX_PERIOD_DAYS)


@dataclass(frozen=True)
class _Run:
    plan_id: str
    orders: list[ReplayOrder]
    lines: list[SimLine]
    active_lines: list[SimLine]
    active_id: str | None
    findings: list[Finding]
    names: dict[str, str]


def _run(
    ctx: Ctx,
    plan_id: str,
    start: datetime | None,
    end: datetime | None,
    described: Sequence[Mapping[str, Any]] | None,
) -> _Run:
    with ctx.db.read() as tx:
        settings = load_settings(tx, ctx.tenant_id)
        plan_row(tx, ctx.tenant_id, plan_id)
        spec = load_plan(tx, ctx.tenant_id, plan_id, ctx.snapshot)
        active_id = settings.active_plan_id
        active = load_plan(tx, ctx.tenant_id, active_id, ctx.snapshot) if active_id else None
        tier_list = load_tiers(tx, ctx.tenant_id)
        findings = check_spec(tx, settings=settings, spec=spec)
        if described is not None:
            replayed = _described(tx, ctx, tier_list, described)
            timeline = _timeline(tx, ctx.tenant_id, replayed, since=None)
        else:
            assert start is not None
            assert end is not None
            replayed = _paid_between(tx, ctx.tenant_id, start, end)
            timeline = _timeline(tx, ctx.tenant_id, replayed, since=start)
        ranks = {t.id: t.rank for t in tier_list}
        cap = runtime_cap_bp(settings.compliance_profile, settings.custom_commission_cap_bp)
        lines = replay(spec, replayed, tiers=timeline, ranks=ranks, cap_bp=cap)
        active_lines = (
            replay(active, replayed, tiers=timeline, ranks=ranks, cap_bp=cap) if active else []
        )
        names = _names(tx, ctx.tenant_id, {s.award.beneficiary_id for s in lines + active_lines})
    return _Run(plan_id, replayed, lines, active_lines, active_id, findings, names)


def simulate_plan(
    ctx: Ctx,
    *,
    plan_id: str,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    orders_described: Sequence[Mapping[str, Any]] | None = None,
    limit: int = 500,
) -> dict[str, Any]:
    """Replay the orders paid in [`start`, `end`) (or the described ones, priced now at their
    buyers' tiers) under the plan and under the active plan. Every line says what it would
    pay and why (the first `limit` lines are shown); the totals are given as bp of the
    orders' GMV. Writes nothing."""
    run, period = _simulated(ctx, plan_id, start, end, orders_described, limit)
    return _answer(run, period, limit)


def simulate_plan_lines(
    ctx: Ctx,
    *,
    plan_id: str,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    orders_described: Sequence[Mapping[str, Any]] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The simulation (its first lines shown) and every line, for an export."""
    run, period = _simulated(ctx, plan_id, start, end, orders_described, MAX_LINES_SHOWN)
    return _answer(run, period, MAX_LINES_SHOWN), [_line_view(s) for s in run.lines]


def _simulated(
    ctx: Ctx,
    plan_id: str,
    start: datetime | str | None,
    end: datetime | str | None,
    described: Sequence[Mapping[str, Any]] | None,
    limit: int,
) -> tuple[_Run, tuple[datetime, datetime] | None]:
    if isinstance(start, str) and isinstance(end, str):
        with ctx.db.read() as tx:
            zone = load_settings(tx, ctx.tenant_id).time_zone
        start, end = parse_period(start, end, zone)
    elif isinstance(start, str) or isinstance(end, str):
        raise InvalidInput("period_invalid", max_days=MAX_PERIOD_DAYS)
    _check(start, end, described, limit)
    run = _run(ctx, plan_id, start, end, described)
    if described is not None or start is None or end is None:
        return run, None
    return run, (start, end)


def _answer(run: _Run, period: tuple[datetime, datetime] | None, limit: int) -> dict[str, Any]:
    drafted, current = totals(run.orders, run.lines), totals(run.orders, run.active_lines)
    return {
        "plan_id": run.plan_id,
        "source": "paid_orders" if period else "described",
        "from": period[0] if period else None,
        "to": period[1] if period else None,
        "orders": drafted.orders,
        "gmv_fen": drafted.gmv_fen,
        "total_fen": drafted.total_fen,
        "net_fen": drafted.net_fen,
        "cost_bp_of_gmv": drafted.cost_bp_of_gmv,
        "deepest_level": deepest_level(run.lines),
        "lines": [_line_view(s) for s in run.lines[:limit]],
        "lines_total": len(run.lines),
        "members": _members_view(drafted, current, run.names, run.lines),
        "findings": run.findings,
        "against_active": {
            "plan_id": run.active_id,
            "total_fen": current.total_fen,
            "cost_bp_of_gmv": current.cost_bp_of_gmv,
            "difference_fen": drafted.total_fen - current.total_fen,
            "difference_bp": drafted.cost_bp_of_gmv - current.cost_bp_of_gmv,
        },
    }


def _line_view(s: SimLine) -> dict[str, Any]:
    a = s.award
    return {
        "order_index": s.order.index,
        "order_id": s.order.order_id,
        "order_line_id": a.line_id if s.order.order_id is not None else None,
        "sku": s.line.sale.sku,
        "buyer_id": s.order.buyer_id,
        "beneficiary_id": a.beneficiary_id,
        "level": a.level,
        "kind": a.kind.value,
        "rule": s.rule,
        "rate_bp": a.rate_bp,
        "base_fen": a.base_fen,
        "amount_fen": a.amount_fen,
        "net_fen": s.net_fen,
        "capped": s.capped,
    }


def _members_view(
    drafted: Totals, current: Totals, names: Mapping[str, str], lines: Sequence[SimLine]
) -> list[dict[str, Any]]:
    counts: dict[str, int] = defaultdict(int)
    for s in lines:
        counts[s.award.beneficiary_id] += 1

    def key(m: str) -> tuple[int, int, str]:
        total = drafted.by_member.get(m, 0)
        return (-total, -abs(total - current.by_member.get(m, 0)), m)

    everyone = sorted(set(drafted.by_member) | set(current.by_member), key=key)
    rows: list[dict[str, Any]] = [
        {
            "member_id": m,
            "name": names.get(m, ""),
            "total_fen": drafted.by_member.get(m, 0),
            "active_fen": current.by_member.get(m, 0),
            "difference_fen": drafted.by_member.get(m, 0) - current.by_member.get(m, 0),
            "lines": counts.get(m, 0),
        }
        for m in everyone[:MAX_MEMBERS_SHOWN]
    ]
    return rows


def _names(tx: Connection, tenant_id: str, member_ids: set[str]) -> dict[str, str]:
    if not member_ids:
        return {}
    found: dict[str, str] = {}
    ids = sorted(member_ids)
    for start in range(0, len(ids), 5_000):
        rows = tx.execute(
            select(members.c.id, members.c.name).where(
                members.c.tenant_id == tenant_id, members.c.id.in_(ids[start : start + 5_000])
            )
        )
        found.update({r.id: r.name for r in rows})
    return found


def _chain(row: Any) -> tuple[str, ...]:
    return tuple(a for a in (row.referrer_id, row.ancestor_2, row.ancestor_3) if a)


def _paid_between(
    tx: Connection, tenant_id: str, start: datetime, end: datetime
) -> list[ReplayOrder]:
    """The orders paid in the period (a late payment refunded at once paid nothing), oldest
    payment first, with their lines and their buyers' chains as they are now."""
    o, ln, m = orders, order_lines, members
    window = and_(
        o.c.tenant_id == tenant_id,
        o.c.paid_at >= start,
        o.c.paid_at < end,
        o.c.status != "cancelled",
    )
    count = tx.execute(select(func.count()).select_from(o).where(window)).scalar_one()
    if count > MAX_ORDERS:
        raise InvalidInput("simulation_too_large", orders=count, max=MAX_ORDERS)
    rows = tx.execute(
        select(
            ln,
            o.c.buyer_id,
            o.c.paid_at,
            o.c.paid_fen,
            m.c.referrer_id,
            m.c.ancestor_2,
            m.c.ancestor_3,
        )
        .select_from(
            o.join(ln, and_(ln.c.tenant_id == o.c.tenant_id, ln.c.order_id == o.c.id)).join(
                m, and_(m.c.tenant_id == o.c.tenant_id, m.c.id == o.c.buyer_id)
            )
        )
        .where(window)
        .order_by(o.c.paid_at, o.c.id, ln.c.line_no)
    ).all()
    grouped: dict[str, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row.order_id, []).append(row)
    out = []
    for index, (order_id, group) in enumerate(grouped.items()):
        head = group[0]
        out.append(
            ReplayOrder(
                index=index,
                order_id=order_id,
                buyer_id=head.buyer_id,
                uplines=_chain(head),
                paid_at=head.paid_at,
                paid_fen=head.paid_fen,
                lines=tuple(ReplayLine(sale_line(r._mapping), r.refunded_fen) for r in group),
            )
        )
    return out


def _described(
    tx: Connection, ctx: Ctx, tier_list: Sequence[TierSpec], described: Sequence[Mapping[str, Any]]
) -> list[ReplayOrder]:
    """Orders the operator describes (buyer, skus and quantities, or the amount a line would
    be paid), priced now as an order would be: at the buyer's tier."""
    buyer_ids = sorted({str(d["buyer_id"]) for d in described})
    buyers = {
        r.id: r
        for r in tx.execute(
            select(
                members.c.id,
                members.c.tier_id,
                members.c.referrer_id,
                members.c.ancestor_2,
                members.c.ancestor_3,
            ).where(members.c.tenant_id == ctx.tenant_id, members.c.id.in_(buyer_ids))
        )
    }
    missing = [b for b in buyer_ids if b not in buyers]
    if missing:
        raise NotFound("member_not_found", id=missing[0])
    skus = sorted({str(line["sku"]) for d in described for line in d["lines"]})
    found = {
        r.sku: r
        for r in tx.execute(
            select(products).where(products.c.tenant_id == ctx.tenant_id, products.c.sku.in_(skus))
        )
    }
    absent = [s for s in skus if s not in found]
    if absent:
        raise NotFound("product_not_found", sku=absent[0])
    member_prices = {
        (r.product_id, r.tier_id): r.member_price_fen
        for r in tx.execute(
            select(product_tier_prices).where(
                product_tier_prices.c.tenant_id == ctx.tenant_id,
                product_tier_prices.c.product_id.in_([p.id for p in found.values()]),
            )
        )
    }
    discounts = {t.id: t.discount_bp for t in tier_list}
    now = ctx.clock.now()
    out = []
    for index, order in enumerate(described):
        buyer = buyers[str(order["buyer_id"])]
        lines = []
        for number, wanted in enumerate(order["lines"], start=1):
            product = found[str(wanted["sku"])]
            quantity = int(wanted["quantity"])
            paid = wanted.get("paid_fen")
            if paid is None:
                unit = tier_price(
                    product.price_fen,
                    discount_bp=discounts.get(buyer.tier_id, 0) if buyer.tier_id else 0,
                    explicit_fen=member_prices.get((product.id, buyer.tier_id))
                    if buyer.tier_id
                    else None,
                )
                paid = unit * quantity
            if not 0 <= paid <= MAX_AMOUNT_FEN:
                raise InvalidInput("amount_invalid", field=f"orders[{index}].lines[{number - 1}]")
            lines.append(
                ReplayLine(
                    SaleLine(
                        line_id=f"{index}.{number}",
                        sku=product.sku,
                        category=product.category,
                        ladder_role=product.ladder_role,
                        quantity=quantity,
                        base_fen=paid,
                    )
                )
            )
        out.append(
            ReplayOrder(
                index=index,
                order_id=None,
                buyer_id=buyer.id,
                uplines=_chain(buyer),
                paid_at=now,
                paid_fen=sum(line.sale.base_fen for line in lines),
                lines=tuple(lines),
            )
        )
    return out


def _timeline(
    tx: Connection, tenant_id: str, replayed: Sequence[ReplayOrder], *, since: datetime | None
) -> TierTimeline:
    """The tiers of everyone in the orders' chains, now and as they changed since `since`
    (None: now only)."""
    involved = sorted({m for o in replayed for m in (o.buyer_id, *o.uplines)})
    current: dict[str, str | None] = {}
    changes: dict[str, list[tuple[datetime, str | None, str | None]]] = defaultdict(list)
    for start in range(0, len(involved), 5_000):
        part = involved[start : start + 5_000]
        current.update(
            {
                r.id: r.tier_id
                for r in tx.execute(
                    select(members.c.id, members.c.tier_id).where(
                        members.c.tenant_id == tenant_id, members.c.id.in_(part)
                    )
                )
            }
        )
        if since is None:
            continue
        e = events
        for r in tx.execute(
            select(e.c.subject_id, e.c.occurred_at, e.c.payload)
            .where(
                e.c.tenant_id == tenant_id,
                e.c.type == TIER_CHANGED,
                e.c.subject_type == "member",
                e.c.subject_id.in_(part),
                e.c.occurred_at >= since,
            )
            .order_by(e.c.id)
        ):
            changes[r.subject_id].append(
                (r.occurred_at, r.payload.get("from"), r.payload.get("to"))
            )
    return TierTimeline(current, dict(changes))
