"""Tier rules (pure): member prices, the criteria that reach a tier, privileges, demotion.

A tier's criteria are a tree: `all_of` and `any_of` groups over atoms, each atom a threshold on
one fact about the member (spend in a window, its largest order, a product bought, its direct
paying customers, a named fact of the event log). Every atom is monotone (met at a value, met at
any larger one), so a tree met stays met while its facts grow; only windows sliding and refunds
shrink them. Demotion re-checks a tier's tree with every threshold lowered by a buffer (90 %),
once the member has held the tier for the minimum hold period (as Discourse keeps trust level 3).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from shequn.errors import InvalidInput
from shequn.money import MAX_AMOUNT_FEN, apply_rate

FULL_BP = 10_000
MAX_WINDOW_DAYS = 3_650
MAX_COUNT = 10_000_000
MAX_ATOMS = 32
MAX_DEPTH = 4  # groups inside groups
MAX_CHILDREN = 16
MAX_SKU = 64
MAX_SERVICE_TAGS = 10
MAX_SERVICE_TAG = 20
MAX_POINTS_MULTIPLIER_BP = 100_000  # 10 points per point a purchase earns
MAX_DISCOUNT_BP = 9_000
MAX_HOLD_DAYS = 3_650
MIN_BUFFER_BP = 5_000
DEFAULT_BUFFER_BP = 9_000
# The type of an event in the log: `ChallengeCompleted`, `EventAttended`, `StageReached`…
FACT_TYPE = re.compile(r"[A-Z][A-Za-z0-9]{0,63}")


class Kind(StrEnum):
    ALL_OF = "all_of"
    ANY_OF = "any_of"
    SPEND = "spend"  # paid less refunded, over the window
    SINGLE_ORDER = "single_order"  # one order's paid less refunded, within the window
    BOUGHT = "bought"  # a line of the product not fully refunded, within the window
    DIRECT_CUSTOMERS = "direct_customers"  # members it referred with a paid order kept
    TEAM_SIZE = "team_size"  # members below it in the referral tree, at any depth
    FACT = "fact"  # events of a type about the member, within the window


class FactKey(NamedTuple):
    """What one atom reads: the kind of fact, its window (None: all time) and its argument
    (the sku of `bought`, the event type of `fact`)."""

    kind: Kind
    window_days: int | None = None
    arg: str | None = None


@dataclass(frozen=True)
class Atom:
    """A threshold on one fact: met when the fact is at least `minimum` (a `bought` atom has
    minimum 1: at least one line)."""

    kind: Kind
    minimum: int = 1
    window_days: int | None = None
    arg: str | None = None

    @property
    def key(self) -> FactKey:
        return FactKey(self.kind, self.window_days, self.arg)


@dataclass(frozen=True)
class Group:
    kind: Kind  # ALL_OF or ANY_OF
    items: tuple[Criterion, ...]


Criterion = Atom | Group

_MINIMUM_FIELD = {
    Kind.SPEND: "min_fen",
    Kind.SINGLE_ORDER: "min_fen",
    Kind.DIRECT_CUSTOMERS: "min_count",
    Kind.TEAM_SIZE: "min_count",
    Kind.FACT: "min_count",
}
HEADCOUNT = frozenset({Kind.DIRECT_CUSTOMERS, Kind.TEAM_SIZE})  # counted people, not sales
_FIELDS = {
    Kind.ALL_OF: {"kind", "of"},
    Kind.ANY_OF: {"kind", "of"},
    Kind.SPEND: {"kind", "min_fen", "window_days"},
    Kind.SINGLE_ORDER: {"kind", "min_fen", "window_days"},
    Kind.BOUGHT: {"kind", "sku", "window_days"},
    Kind.DIRECT_CUSTOMERS: {"kind", "min_count"},
    Kind.TEAM_SIZE: {"kind", "min_count"},
    Kind.FACT: {"kind", "event_type", "min_count", "window_days"},
}
_REQUIRED = {
    Kind.ALL_OF: {"of"},
    Kind.ANY_OF: {"of"},
    Kind.SPEND: {"min_fen"},
    Kind.SINGLE_ORDER: {"min_fen"},
    Kind.BOUGHT: {"sku"},
    Kind.DIRECT_CUSTOMERS: {"min_count"},
    Kind.TEAM_SIZE: {"min_count"},
    Kind.FACT: {"event_type"},
}


def _int_in(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def parse_criteria(data: Any, path: str = "criteria") -> Criterion:
    """A criteria tree from its JSON form (see `criteria_json`); refuses anything else with
    `tier_criterion_invalid` naming the field, or `tier_criteria_too_large`."""
    tree = _parse(data, path, 0)
    if len(list(atoms(tree))) > MAX_ATOMS:
        raise InvalidInput("tier_criteria_too_large", atoms=MAX_ATOMS, depth=MAX_DEPTH)
    return tree


def _parse(data: Any, path: str, depth: int) -> Criterion:
    if not isinstance(data, Mapping):
        raise InvalidInput("tier_criterion_invalid", field=path)
    try:
        kind = Kind(str(data.get("kind")))
    except ValueError:
        raise InvalidInput("tier_criterion_invalid", field=f"{path}.kind") from None
    unknown = sorted(set(data) - _FIELDS[kind])
    if unknown:
        raise InvalidInput("field_unknown", field=f"{path}.{unknown[0]}")
    missing = sorted(f for f in _REQUIRED[kind] if data.get(f) is None)
    if missing:
        raise InvalidInput("tier_criterion_invalid", field=f"{path}.{missing[0]}")
    if kind in (Kind.ALL_OF, Kind.ANY_OF):
        items = data["of"]
        if depth >= MAX_DEPTH:
            raise InvalidInput("tier_criteria_too_large", atoms=MAX_ATOMS, depth=MAX_DEPTH)
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_CHILDREN:
            raise InvalidInput("tier_criterion_invalid", field=f"{path}.of")
        return Group(
            kind, tuple(_parse(item, f"{path}.of[{i}]", depth + 1) for i, item in enumerate(items))
        )
    window = data.get("window_days")
    if window is not None and not _int_in(window, 1, MAX_WINDOW_DAYS):
        raise InvalidInput("tier_criterion_invalid", field=f"{path}.window_days")
    if kind is Kind.BOUGHT:
        sku = data["sku"]
        if not isinstance(sku, str) or not 1 <= len(sku) <= MAX_SKU or sku != sku.strip():
            raise InvalidInput("tier_criterion_invalid", field=f"{path}.sku")
        return Atom(kind, 1, window, sku)
    name = _MINIMUM_FIELD[kind]
    minimum = data.get(name, 1)
    high = MAX_AMOUNT_FEN if name == "min_fen" else MAX_COUNT
    if not _int_in(minimum, 1, high):
        raise InvalidInput("tier_criterion_invalid", field=f"{path}.{name}")
    if kind is Kind.FACT:
        event_type = data["event_type"]
        if not isinstance(event_type, str) or not FACT_TYPE.fullmatch(event_type):
            raise InvalidInput("tier_criterion_invalid", field=f"{path}.event_type")
        return Atom(kind, minimum, window, event_type)
    if kind in HEADCOUNT:
        return Atom(kind, minimum)
    return Atom(kind, minimum, window)


def criteria_json(tree: Criterion) -> dict[str, Any]:
    """The JSON form of a tree, as `parse_criteria` reads it (every field named)."""
    if isinstance(tree, Group):
        return {"kind": tree.kind.value, "of": [criteria_json(c) for c in tree.items]}
    out: dict[str, Any] = {"kind": tree.kind.value}
    if tree.kind is Kind.BOUGHT:
        out["sku"] = tree.arg
    elif tree.kind is Kind.FACT:
        out["event_type"] = tree.arg
    if tree.kind in _MINIMUM_FIELD:
        out[_MINIMUM_FIELD[tree.kind]] = tree.minimum
    if tree.kind not in HEADCOUNT:
        out["window_days"] = tree.window_days
    return out


def atoms(tree: Criterion) -> Iterable[Atom]:
    if isinstance(tree, Atom):
        yield tree
        return
    for item in tree.items:
        yield from atoms(item)


def fact_keys(trees: Iterable[Criterion | None]) -> set[FactKey]:
    return {a.key for tree in trees if tree is not None for a in atoms(tree)}


def buffered(minimum: int, buffer_bp: int) -> int:
    """A threshold lowered by a buffer, rounded up (a count of one stays one)."""
    return -(-minimum * buffer_bp // FULL_BP)


MemberFacts = Mapping[FactKey, int]


def atom_value(atom: Atom, facts: MemberFacts) -> int:
    return int(facts.get(atom.key, 0))


def is_met(tree: Criterion, facts: MemberFacts, buffer_bp: int = FULL_BP) -> bool:
    """Whether the member's facts meet the tree, every threshold lowered by `buffer_bp`."""
    if isinstance(tree, Atom):
        return atom_value(tree, facts) >= buffered(tree.minimum, buffer_bp)
    results = (is_met(item, facts, buffer_bp) for item in tree.items)
    return all(results) if tree.kind is Kind.ALL_OF else any(results)


def explain(tree: Criterion, facts: MemberFacts, buffer_bp: int = FULL_BP) -> dict[str, Any]:
    """The tree with each node's outcome and each atom's value and threshold: the facts that
    made a tier change, as its history records them."""
    if isinstance(tree, Group):
        items = [explain(item, facts, buffer_bp) for item in tree.items]
        met = [i["met"] for i in items]
        return {
            "kind": tree.kind.value,
            "met": all(met) if tree.kind is Kind.ALL_OF else any(met),
            "of": items,
        }
    threshold = buffered(tree.minimum, buffer_bp)
    value = atom_value(tree, facts)
    return {
        **criteria_json(tree),
        "value": value,
        "threshold": threshold,
        "met": value >= threshold,
    }


# --- tiers -----------------------------------------------------------------------------------


class DemotionMode(StrEnum):
    NEVER = "never"
    WINDOWED = "windowed"


@dataclass(frozen=True)
class Demotion:
    mode: DemotionMode = DemotionMode.NEVER
    buffer_bp: int = DEFAULT_BUFFER_BP
    hold_days: int = 0


NEVER = Demotion()


@dataclass(frozen=True)
class TierSpec:
    """A tier: its rank (higher is more senior), its privileges and how it is reached and
    kept. A tier without criteria is assigned by hand only."""

    id: str
    name: str
    rank: int
    discount_bp: int = 0  # member-price discount
    may_distribute: bool = False
    points_multiplier_bp: int = FULL_BP  # points per fen spent, 10 000 = 1×
    service_tags: tuple[str, ...] = ()
    criteria: Criterion | None = None
    demotion: Demotion = NEVER

    @property
    def has_criteria(self) -> bool:
        return self.criteria is not None

    @property
    def demotes(self) -> bool:
        return self.criteria is not None and self.demotion.mode is DemotionMode.WINDOWED


def parse_demotion(data: Any, criteria: Criterion | None) -> Demotion:
    """`{"mode": "never"}` or `{"mode": "windowed", "buffer_bp": 9000, "hold_days": 90}`; a
    tier demotes only on criteria that can lapse (one of its atoms has a window or counts
    something a refund takes back)."""
    if data is None:
        return NEVER
    if not isinstance(data, Mapping):
        raise InvalidInput("tier_demotion_invalid", field="demotion")
    unknown = sorted(set(data) - {"mode", "buffer_bp", "hold_days"})
    if unknown:
        raise InvalidInput("field_unknown", field=f"demotion.{unknown[0]}")
    try:
        mode = DemotionMode(str(data.get("mode")))
    except ValueError:
        raise InvalidInput("tier_demotion_invalid", field="demotion.mode") from None
    if mode is DemotionMode.NEVER:
        return NEVER
    buffer_bp = data.get("buffer_bp", DEFAULT_BUFFER_BP)
    hold_days = data.get("hold_days", 0)
    if not _int_in(buffer_bp, MIN_BUFFER_BP, FULL_BP):
        raise InvalidInput("tier_demotion_invalid", field="demotion.buffer_bp")
    if not _int_in(hold_days, 0, MAX_HOLD_DAYS):
        raise InvalidInput("tier_demotion_invalid", field="demotion.hold_days")
    if criteria is None or not any(_can_lapse(a) for a in atoms(criteria)):
        raise InvalidInput("tier_demotion_needs_window")
    return Demotion(mode, buffer_bp, hold_days)


def _can_lapse(atom: Atom) -> bool:
    return atom.window_days is not None or atom.kind in (Kind.SPEND, *HEADCOUNT)


def demotion_json(demotion: Demotion) -> dict[str, Any]:
    if demotion.mode is DemotionMode.NEVER:
        return {"mode": DemotionMode.NEVER.value, "buffer_bp": None, "hold_days": None}
    return {
        "mode": demotion.mode.value,
        "buffer_bp": demotion.buffer_bp,
        "hold_days": demotion.hold_days,
    }


def clean_service_tags(tags: Any) -> tuple[str, ...]:
    """Service tags (专属客服, 优先发货…): trimmed, each once, in the order given."""
    if not isinstance(tags, list | tuple) or len(tags) > MAX_SERVICE_TAGS:
        raise InvalidInput(
            "tier_service_tags_invalid", max=MAX_SERVICE_TAGS, length=MAX_SERVICE_TAG
        )
    out: list[str] = []
    for tag in tags:
        clean = " ".join(tag.split()) if isinstance(tag, str) else ""
        if not 1 <= len(clean) <= MAX_SERVICE_TAG:
            raise InvalidInput(
                "tier_service_tags_invalid", max=MAX_SERVICE_TAGS, length=MAX_SERVICE_TAG
            )
        if clean not in out:
            out.append(clean)
    return tuple(out)


def tier_price(price_fen: int, *, discount_bp: int, explicit_fen: int | None) -> int:
    """An explicit member price wins; otherwise the tier discount, rounded down for the buyer."""
    if explicit_fen is not None:
        return explicit_fen
    return price_fen - apply_rate(price_fen, discount_bp)


# --- changes of a member's tier --------------------------------------------------------------


class Reason(StrEnum):
    UPGRADE = "upgrade"
    DEMOTION = "demotion"


@dataclass(frozen=True)
class TierChange:
    """A member moved from one tier to another (None: no tier), and why: the tree of the tier
    reached (an upgrade) or of the tier lost, re-checked with its buffer (a demotion)."""

    member_id: str
    from_tier: str | None
    to_tier: str | None
    reason: Reason
    cause: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Standing:
    """What decides a member's tier: its current tier, its facts, and since when it holds the
    current tier."""

    member_id: str
    tier_id: str | None
    facts: MemberFacts
    held_since: datetime | None = None


def _rank_of(tiers: Sequence[TierSpec], tier_id: str | None) -> int | None:
    for tier in tiers:
        if tier.id == tier_id:
            return tier.rank
    return None


def best_reached(
    tiers: Sequence[TierSpec], facts: MemberFacts, above_rank: int | None
) -> TierSpec | None:
    """The highest tier above `above_rank` whose criteria the facts meet."""
    reached = [
        t
        for t in tiers
        if t.criteria is not None
        and (above_rank is None or t.rank > above_rank)
        and is_met(t.criteria, facts)
    ]
    return max(reached, key=lambda t: t.rank) if reached else None


def _kept_at(tier: TierSpec, facts: MemberFacts) -> bool:
    """A member may hold a tier while it meets the criteria, within the buffer if the tier
    demotes."""
    assert tier.criteria is not None
    buffer_bp = tier.demotion.buffer_bp if tier.demotes else FULL_BP
    return is_met(tier.criteria, facts, buffer_bp)


def decide(
    tiers: Sequence[TierSpec], standing: Standing, *, now: datetime, allow_demotion: bool = True
) -> TierChange | None:
    """The change the member's facts call for, if any: up to the highest tier reached above the
    current one; or, for a tier that demotes, held at least its hold period and no longer met
    within its buffer, down to the highest tier below that the member still holds by its
    criteria (or to no tier)."""
    target = best_reached(tiers, standing.facts, _rank_of(tiers, standing.tier_id))
    if target is not None:
        assert target.criteria is not None
        return TierChange(
            standing.member_id,
            standing.tier_id,
            target.id,
            Reason.UPGRADE,
            {"tier_id": target.id, "criteria": explain(target.criteria, standing.facts)},
        )
    if not allow_demotion:
        return None
    current = next((t for t in tiers if t.id == standing.tier_id), None)
    if current is None or not current.demotes or current.criteria is None:
        return None
    held_since = standing.held_since
    if held_since is not None and now - held_since < timedelta(days=current.demotion.hold_days):
        return None
    if _kept_at(current, standing.facts):
        return None
    below = [
        t
        for t in tiers
        if t.criteria is not None and t.rank < current.rank and _kept_at(t, standing.facts)
    ]
    lower = max(below, key=lambda t: t.rank) if below else None
    return TierChange(
        standing.member_id,
        standing.tier_id,
        lower.id if lower else None,
        Reason.DEMOTION,
        {
            "tier_id": current.id,
            "buffer_bp": current.demotion.buffer_bp,
            "held_since": held_since.isoformat() if held_since else None,
            "criteria": explain(current.criteria, standing.facts, current.demotion.buffer_bp),
        },
    )


# --- what a payment can change ----------------------------------------------------------------


@dataclass(frozen=True)
class PaymentFacts:
    """What a payment tells about its buyer without a read: its lifetime spend and largest
    order once paid (upper bounds of any window's), this order's amount and skus, its team
    size, and whether it is the buyer's first paid order kept (it then counts for its
    referrer's direct customers)."""

    paid_total_fen: int
    max_order_fen: int
    order_fen: int
    skus: Collection[str]
    first_paying: bool
    team_size: int = 0


def _could_hold(tree: Criterion, payment: PaymentFacts) -> bool:
    """Whether the tree could be met after the payment, each atom the payment bounds taken at
    its bound and every other atom taken as met."""
    if isinstance(tree, Group):
        results = (_could_hold(item, payment) for item in tree.items)
        return all(results) if tree.kind is Kind.ALL_OF else any(results)
    if tree.kind is Kind.SPEND:
        return payment.paid_total_fen >= tree.minimum
    if tree.kind is Kind.SINGLE_ORDER:
        return payment.max_order_fen >= tree.minimum
    if tree.kind is Kind.TEAM_SIZE:
        return payment.team_size >= tree.minimum
    return True


def _moved_by(tree: Criterion, payment: PaymentFacts) -> bool:
    """Whether an atom of the tree may have become met by this payment (a team grows without
    payments; a buyer whose team is large enough is evaluated when it pays, as it always
    was)."""
    for atom in atoms(tree):
        if atom.kind is Kind.SPEND and payment.paid_total_fen >= atom.minimum:
            return True
        if atom.kind is Kind.SINGLE_ORDER and payment.order_fen >= atom.minimum:
            return True
        if atom.kind is Kind.BOUGHT and atom.arg in payment.skus:
            return True
        if atom.kind is Kind.TEAM_SIZE and payment.team_size >= atom.minimum:
            return True
    return False


def payment_may_upgrade(
    tiers: Sequence[TierSpec], buyer_tier_id: str | None, payment: PaymentFacts
) -> bool:
    """Whether a payment could move its buyer up a tier, so that it must read the buyer's
    facts: a tier above the buyer's has an atom this payment may have met and a tree that can
    still hold. Atoms only grow with a payment, so a tree none of whose atoms it moved was as
    unmet before as after (what other events move, they evaluate themselves)."""
    current_rank = _rank_of(tiers, buyer_tier_id)
    return any(
        t.criteria is not None
        and (current_rank is None or t.rank > current_rank)
        and _moved_by(t.criteria, payment)
        and _could_hold(t.criteria, payment)
        for t in tiers
    )


def payment_may_upgrade_referrer(tiers: Sequence[TierSpec], payment: PaymentFacts) -> bool:
    """Whether the payment may lift its buyer's referrer: it makes the buyer a paying customer
    and some tier counts direct customers."""
    return payment.first_paying and counts_direct_customers(tiers)


def with_one_more_direct_customer(facts: MemberFacts) -> dict[FactKey, int]:
    """A referrer's facts once the payment being written counts its buyer."""
    key = FactKey(Kind.DIRECT_CUSTOMERS)
    return {**facts, key: int(facts.get(key, 0)) + 1}


def windows_start(keys: Iterable[FactKey], now: datetime) -> dict[int, datetime]:
    """The start of every window the keys name, as of `now`."""
    return {k.window_days: now - timedelta(days=k.window_days) for k in keys if k.window_days}


def needs(tree: Criterion, wanted: Callable[[Atom], bool]) -> bool:
    """Whether the tree cannot be met unless an atom `wanted` picks is: every other atom taken
    as met, the wanted ones as unmet, the tree fails."""

    def holds(node: Criterion) -> bool:
        if isinstance(node, Atom):
            return not wanted(node)
        results = (holds(item) for item in node.items)
        return all(results) if node.kind is Kind.ALL_OF else any(results)

    return not holds(tree)


def counts_direct_customers(tiers: Sequence[TierSpec]) -> bool:
    """Whether some tier's criteria count its holder's direct paying customers."""
    return any(
        t.criteria is not None and any(a.kind is Kind.DIRECT_CUSTOMERS for a in atoms(t.criteria))
        for t in tiers
    )
