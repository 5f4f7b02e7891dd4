"""What a plan would pay: a sequence of orders replayed through the live engine's own rule
(`compute_awards`), with the chain and the tiers each order's payment saw, and every line
explained (which rule, level, rate, base). The reads are `shequn.flows.plans_simulation`'s;
this module computes from plain data only."""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shequn.distribution.rules import (
    SCOPE_PRIORITY,
    Award,
    AwardKind,
    ChainMember,
    LevelRule,
    PlanMode,
    PlanSpec,
    SaleLine,
    compute_awards,
    scaled_amount,
)
from shequn.errors import InvalidInput
from shequn.money import apply_rate

MAX_PERIOD_DAYS = 366


@dataclass(frozen=True)
class ReplayLine:
    sale: SaleLine
    refunded_fen: int = 0


@dataclass(frozen=True)
class ReplayOrder:
    """An order as its payment saw it: the buyer, its chain (referrer first), what was paid."""

    index: int
    order_id: str | None
    buyer_id: str
    uplines: tuple[str, ...]
    paid_at: datetime
    paid_fen: int
    lines: tuple[ReplayLine, ...]


@dataclass(frozen=True)
class TierTimeline:
    """Each member's tier over time, from its current tier and its tier changes (each
    `(at, from, to)`, oldest first). A change at the very moment of a payment is the payment's
    own (an upgrade it caused comes after its commission), so the tier a payment saw is the one
    before any change at or after its time."""

    current: Mapping[str, str | None]
    changes: Mapping[str, Sequence[tuple[datetime, str | None, str | None]]] = field(
        default_factory=dict
    )

    def at(self, member_id: str, when: datetime) -> str | None:
        history = self.changes.get(member_id, ())
        times = [c[0] for c in history]
        position = bisect.bisect_left(times, when)
        if position < len(history):
            return history[position][1]
        return self.current.get(member_id)


@dataclass(frozen=True)
class SimLine:
    """One commission line the plan would pay, and why."""

    order: ReplayOrder
    line: ReplayLine
    award: Award
    rule: dict[str, Any]
    capped: bool

    @property
    def net_fen(self) -> int:
        """What the line would be worth now, after the refunds its order line had."""
        base = self.line.sale.base_fen
        return scaled_amount(
            self.award.amount_fen, base_fen=base, remaining_base_fen=base - self.line.refunded_fen
        )


def _level_rule(spec: PlanSpec, level: int, line: SaleLine) -> LevelRule | None:
    """The rule the plan applies at `level` to `line`: the most specific scope that matches."""
    matching = [r for r in spec.rules if r.level == level and r.applies_to(line)]
    return max(matching, key=lambda r: SCOPE_PRIORITY[r.scope_kind]) if matching else None


def _why(
    spec: PlanSpec, award: Award, line: SaleLine, tier_of: Mapping[str, str | None]
) -> tuple[dict[str, Any], bool]:
    """The rule behind an award, and whether the order's cap cut it."""
    if award.kind is AwardKind.LEVEL:
        rule = _level_rule(spec, award.level, line)
        assert rule is not None
        full = apply_rate(line.base_fen, rule.rate_bp) + rule.fixed_fen * line.quantity
        return {
            "kind": award.kind.value,
            "scope_kind": rule.scope_kind.value,
            "scope_value": rule.scope_value,
            "fixed_fen": rule.fixed_fen,
            "tier_id": tier_of.get(award.beneficiary_id),
        }, award.amount_fen < full
    tier_id = tier_of.get(award.beneficiary_id)
    full = apply_rate(line.base_fen, award.rate_bp)
    if award.kind is AwardKind.DIFFERENTIAL:
        tier_rate = spec.tier_rates.get(tier_id or "", 0)
        return {
            "kind": award.kind.value,
            "tier_id": tier_id,
            "tier_rate_bp": tier_rate,
            "below_rate_bp": tier_rate - award.rate_bp,
        }, award.amount_fen < full
    return {"kind": award.kind.value, "tier_id": tier_id}, award.amount_fen < full


def replay(
    spec: PlanSpec,
    orders: Sequence[ReplayOrder],
    *,
    tiers: TierTimeline,
    ranks: Mapping[str, int],
    cap_bp: int,
) -> list[SimLine]:
    """Every line the plan would pay on the orders, as the live engine computes it at payment:
    the chain cut to the plan's depth, each member at the tier it held then."""
    out: list[SimLine] = []
    for order in orders:
        chain = [order.buyer_id, *order.uplines[: spec.depth]]
        tier_of = {m: tiers.at(m, order.paid_at) for m in chain}

        def member(member_id: str, tier_of: Mapping[str, str | None] = tier_of) -> ChainMember:
            tier_id = tier_of[member_id]
            return ChainMember(member_id, tier_id, ranks.get(tier_id) if tier_id else None)

        by_line = {line.sale.line_id: line for line in order.lines}
        awards = compute_awards(
            spec,
            buyer=member(order.buyer_id),
            uplines=[member(m) for m in chain[1:]],
            lines=[line.sale for line in order.lines],
            cap_bp=cap_bp,
        )
        for award in awards:
            line = by_line[award.line_id]
            rule, capped = _why(spec, award, line.sale, tier_of)
            out.append(SimLine(order, line, award, rule, capped))
    return out


@dataclass(frozen=True)
class Totals:
    orders: int
    gmv_fen: int
    total_fen: int
    net_fen: int
    cost_bp_of_gmv: int
    by_member: dict[str, int]


def totals(orders: Sequence[ReplayOrder], lines: Sequence[SimLine]) -> Totals:
    gmv = sum(o.paid_fen for o in orders)
    total = sum(s.award.amount_fen for s in lines)
    by_member: dict[str, int] = defaultdict(int)
    for s in lines:
        by_member[s.award.beneficiary_id] += s.award.amount_fen
    return Totals(
        orders=len(orders),
        gmv_fen=gmv,
        total_fen=total,
        net_fen=sum(s.net_fen for s in lines),
        cost_bp_of_gmv=total * 10_000 // gmv if gmv else 0,
        by_member=dict(by_member),
    )


def deepest_level(lines: Sequence[SimLine]) -> int:
    return max((s.award.level for s in lines), default=0)


def needs_tiers(spec: PlanSpec) -> bool:
    """Whether what the plan pays depends on tiers (for the explanation only: the replay
    always knows them)."""
    return (
        spec.mode is PlanMode.DIFFERENTIAL
        or spec.peer_bonus_bp > 0
        or any(r.tier_ids is not None for r in spec.rules)
    )


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_period(start: str, end: str, time_zone: str) -> tuple[datetime, datetime]:
    """A period from its two ends as people write them: dates (`2026-01-01`, the end date
    included) or ISO times (`2026-01-01T08:00:00+08:00`, the end excluded), local to the
    tenant's time zone when they carry no offset."""
    zone = ZoneInfo(time_zone)

    def moment(text: str, *, end_of_day: bool) -> datetime:
        clean = text.strip()
        try:
            if _DATE.fullmatch(clean):
                day = date.fromisoformat(clean) + timedelta(days=1 if end_of_day else 0)
                return datetime.combine(day, time(), zone).astimezone(UTC)
            found = datetime.fromisoformat(clean)
        except ValueError:
            raise InvalidInput("period_unreadable", value=clean[:40]) from None
        if found.tzinfo is None:
            found = found.replace(tzinfo=zone)
        return found.astimezone(UTC)

    return moment(start, end_of_day=False), moment(end, end_of_day=True)
