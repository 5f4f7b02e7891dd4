"""Commission plans and the commission computation (pure).

Level 1 is the member who referred the buyer, i.e. the one who made the sale; level 2 and 3
are that member's own referrers. Depth never exceeds three.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from shequn.errors import InvalidInput
from shequn.money import MAX_AMOUNT_FEN, apply_rate, scale_down

# A sku, a category or a ladder role: never longer than the longest of them (a sku).
MAX_SCOPE_VALUE = 64
HARD_MAX_DEPTH = 3
LEGAL_TOTAL_CAP_BP = 3_000


class PlanMode(StrEnum):
    LEVELS = "levels"
    DIFFERENTIAL = "differential"  # 级差


class ScopeKind(StrEnum):
    ALL = "all"
    LADDER_ROLE = "ladder_role"
    CATEGORY = "category"
    PRODUCT = "product"


# A rule for a single product beats one for its category, which beats its ladder role.
SCOPE_PRIORITY = {
    ScopeKind.PRODUCT: 3,
    ScopeKind.CATEGORY: 2,
    ScopeKind.LADDER_ROLE: 1,
    ScopeKind.ALL: 0,
}


class Release(StrEnum):
    ON_CLOSE = "on_close"  # after the after-sales window
    ON_PAYMENT = "on_payment"  # never allowed: commission on unsettled sales


class AwardKind(StrEnum):
    LEVEL = "level"
    DIFFERENTIAL = "differential"
    PEER_BONUS = "peer_bonus"  # 平级奖


@dataclass(frozen=True)
class LevelRule:
    level: int
    rate_bp: int = 0
    fixed_fen: int = 0  # per unit sold
    scope_kind: ScopeKind = ScopeKind.ALL
    scope_value: str | None = None
    tier_ids: frozenset[str] | None = None  # None: anyone may earn at this level

    def applies_to(self, line: SaleLine) -> bool:
        if self.scope_kind is ScopeKind.ALL:
            return True
        if self.scope_kind is ScopeKind.PRODUCT:
            return line.sku == self.scope_value
        if self.scope_kind is ScopeKind.CATEGORY:
            return line.category == self.scope_value
        return line.ladder_role == self.scope_value


@dataclass(frozen=True)
class PlanSpec:
    mode: PlanMode
    depth: int
    rules: tuple[LevelRule, ...] = ()
    tier_rates: Mapping[str, int] = field(default_factory=dict)
    peer_bonus_bp: int = 0
    signup_reward_fen: int = 0
    qualification_sku: str | None = None
    team_volume_bonus_bp: int = 0
    release: Release = Release.ON_CLOSE


@dataclass(frozen=True)
class ChainMember:
    member_id: str
    tier_id: str | None
    tier_rank: int | None


@dataclass(frozen=True)
class SaleLine:
    line_id: str
    sku: str
    category: str | None
    ladder_role: str
    quantity: int
    base_fen: int  # what the buyer actually paid for the line


@dataclass(frozen=True)
class Award:
    line_id: str
    beneficiary_id: str
    level: int
    kind: AwardKind
    rate_bp: int
    base_fen: int
    amount_fen: int


def _bp(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10_000:
        raise InvalidInput("rate_invalid", field=name)
    return value


def validate_plan(spec: PlanSpec) -> PlanSpec:
    """Structural checks that hold for every profile; legal limits are compliance findings."""
    for rule in spec.rules:
        if isinstance(rule.level, bool) or rule.level < 1:
            raise InvalidInput("rule_level_invalid", level=rule.level)
    if spec.depth < 1:
        raise InvalidInput("plan_depth_invalid", depth=spec.depth)
    if spec.depth > HARD_MAX_DEPTH:
        raise InvalidInput("plan_depth_exceeded", depth=spec.depth, max=HARD_MAX_DEPTH)
    _bp(spec.peer_bonus_bp, "peer_bonus_bp")
    _bp(spec.team_volume_bonus_bp, "team_volume_bonus_bp")
    if not 0 <= spec.signup_reward_fen <= MAX_AMOUNT_FEN:
        raise InvalidInput("amount_invalid", field="signup_reward_fen")
    seen: set[tuple[int, ScopeKind, str | None]] = set()
    for rule in spec.rules:
        if not 1 <= rule.level <= HARD_MAX_DEPTH:
            raise InvalidInput("plan_depth_exceeded", depth=rule.level, max=HARD_MAX_DEPTH)
        if rule.level > spec.depth:
            raise InvalidInput("rule_level_beyond_depth", level=rule.level, depth=spec.depth)
        _bp(rule.rate_bp, "rate_bp")
        if not 0 <= rule.fixed_fen <= MAX_AMOUNT_FEN:
            raise InvalidInput("amount_invalid", field="fixed_fen")
        if (rule.scope_kind is ScopeKind.ALL) != (rule.scope_value is None):
            raise InvalidInput("rule_scope_invalid")
        if rule.scope_value is not None and not (
            isinstance(rule.scope_value, str) and 1 <= len(rule.scope_value) <= MAX_SCOPE_VALUE
        ):
            raise InvalidInput("rule_scope_invalid")
        key = (rule.level, rule.scope_kind, rule.scope_value)
        if key in seen:
            raise InvalidInput("rule_duplicate", level=rule.level)
        seen.add(key)
    if spec.mode is PlanMode.LEVELS:
        if not spec.rules:
            raise InvalidInput("plan_levels_required")
        if spec.tier_rates:
            raise InvalidInput("tier_rates_only_differential")
    else:
        if not spec.tier_rates:
            raise InvalidInput("plan_tier_rates_required")
        if spec.rules:
            raise InvalidInput("levels_only_levels_mode")
        for rate in spec.tier_rates.values():
            _bp(rate, "tier_rates.rate_bp")
    return spec


def nominal_total_bp(spec: PlanSpec) -> int:
    """The most a plan can pay on one sale in rate terms (fixed amounts not included)."""
    peer = spec.peer_bonus_bp * spec.depth
    if spec.mode is PlanMode.DIFFERENTIAL:
        return max(spec.tier_rates.values(), default=0) + peer
    by_level: dict[int, int] = {}
    for rule in spec.rules:
        by_level[rule.level] = max(by_level.get(rule.level, 0), rule.rate_bp)
    return sum(by_level.values()) + peer


def max_earning_level(spec: PlanSpec) -> int:
    if spec.mode is PlanMode.DIFFERENTIAL:
        return spec.depth
    levels = [r.level for r in spec.rules if r.rate_bp > 0 or r.fixed_fen > 0]
    if spec.peer_bonus_bp > 0:
        levels.append(spec.depth)
    return max(levels, default=0)


def _rule_for(spec: PlanSpec, level: int, line: SaleLine) -> LevelRule | None:
    matching = [r for r in spec.rules if r.level == level and r.applies_to(line)]
    if not matching:
        return None
    return max(matching, key=lambda r: SCOPE_PRIORITY[r.scope_kind])


def _reached(below: ChainMember, upline: ChainMember) -> bool:
    """A downline reached or passed its upline's tier."""
    return (
        below.tier_rank is not None
        and upline.tier_rank is not None
        and below.tier_rank >= upline.tier_rank
    )


def compute_awards(
    spec: PlanSpec,
    *,
    buyer: ChainMember,
    uplines: Sequence[ChainMember],
    lines: Sequence[SaleLine],
    cap_bp: int,
) -> list[Award]:
    """Commission for every (line, upline) under the plan, clamped so that no line ever pays
    more than `cap_bp` of what was paid for it (deeper levels give way first)."""
    awards: list[Award] = []
    chain = list(uplines[: spec.depth])
    for line in lines:
        if line.base_fen <= 0:
            continue
        line_awards: list[Award] = []
        below = buyer
        highest_rate = 0
        for index, upline in enumerate(chain):
            level = index + 1
            eligible = False
            if spec.mode is PlanMode.LEVELS:
                rule = _rule_for(spec, level, line)
                if rule is not None and (rule.tier_ids is None or upline.tier_id in rule.tier_ids):
                    eligible = True
                    amount = (
                        apply_rate(line.base_fen, rule.rate_bp) + rule.fixed_fen * line.quantity
                    )
                    if amount > 0:
                        line_awards.append(
                            Award(
                                line.line_id,
                                upline.member_id,
                                level,
                                AwardKind.LEVEL,
                                rule.rate_bp,
                                line.base_fen,
                                amount,
                            )
                        )
            else:
                rate = spec.tier_rates.get(upline.tier_id) if upline.tier_id else None
                if rate is not None:
                    eligible = True
                    if rate > highest_rate:
                        amount = apply_rate(line.base_fen, rate - highest_rate)
                        if amount > 0:
                            line_awards.append(
                                Award(
                                    line.line_id,
                                    upline.member_id,
                                    level,
                                    AwardKind.DIFFERENTIAL,
                                    rate - highest_rate,
                                    line.base_fen,
                                    amount,
                                )
                            )
                        highest_rate = rate
            if eligible and spec.peer_bonus_bp > 0 and _reached(below, upline):
                amount = apply_rate(line.base_fen, spec.peer_bonus_bp)
                if amount > 0:
                    line_awards.append(
                        Award(
                            line.line_id,
                            upline.member_id,
                            level,
                            AwardKind.PEER_BONUS,
                            spec.peer_bonus_bp,
                            line.base_fen,
                            amount,
                        )
                    )
            below = upline
        awards.extend(_clamp(line_awards, apply_rate(line.base_fen, cap_bp)))
    return awards


def _clamp(line_awards: list[Award], cap_fen: int) -> list[Award]:
    kept: list[Award] = []
    room = cap_fen
    for award in line_awards:
        if room <= 0:
            break
        amount = min(award.amount_fen, room)
        room -= amount
        kept.append(
            award
            if amount == award.amount_fen
            else Award(
                award.line_id,
                award.beneficiary_id,
                award.level,
                award.kind,
                award.rate_bp,
                award.base_fen,
                amount,
            )
        )
    return kept


def scaled_amount(amount_fen: int, *, base_fen: int, remaining_base_fen: int) -> int:
    """What a commission line is worth once its base shrank (refund): proportional, floored."""
    if base_fen <= 0:
        return 0
    remaining = max(0, min(remaining_base_fen, base_fen))
    return scale_down(amount_fen, remaining, base_fen)
