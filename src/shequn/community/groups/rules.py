"""Dunbar-capped groups (pure): size classes and hard caps, placement of joining members by
policy, and the split of an oversize group that keeps members who interact together.

Dunbar's circles: 5 (intimate), 15 (sympathy), 35 (daily contact), 150 (the most stable
relationships a person keeps). A group's hard cap is its size class, or the venue's platform
limit where that is lower; no placement ever puts a group over its cap.

Placement (`plan_placements`) is one function for a single join and for a million: a joining
member carries a key under the policy (its region, interest, staff account or lifecycle
stage, or its referrer for the referrer policy) and goes to the group of that key with room
that was opened first; a keyed member whose key has no group with room opens one new group of
that key; a member without a key (or whose referrer's group is full) goes to any group with
room, and opens a new plain group only when none has room. So one overflow opens exactly one
group, and groups fill in the order they were opened.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from shequn.errors import InvalidInput

SIZE_CLASSES = (5, 15, 35, 150)
DEFAULT_SIZE_CLASS = 150


class Policy(StrEnum):
    FILL = "fill"  # the oldest group with room
    REGION = "region"
    INTEREST = "interest"
    REFERRER = "referrer"  # the referrer's group while it has room
    STAFF_ACCOUNT = "staff_account"
    LIFECYCLE = "lifecycle"


# Policies under which a member whose key has no group with room opens a group of that key.
OPENS_KEYED_GROUPS = frozenset(
    {Policy.REGION, Policy.INTEREST, Policy.STAFF_ACCOUNT, Policy.LIFECYCLE}
)


def policy_of(value: str | None) -> Policy:
    if value is None:
        return Policy.FILL
    try:
        return Policy(value)
    except ValueError:
        raise InvalidInput("placement_policy_invalid", policy=value[:40]) from None


def size_class_of(value: int) -> int:
    if value not in SIZE_CLASSES:
        raise InvalidInput("size_class_invalid", size_class=value)
    return value


def hard_cap(size_class: int, platform_limit: int | None) -> int:
    """min(size class, the venue's platform limit)."""
    size_class_of(size_class)
    if platform_limit is None:
        return size_class
    return min(size_class, platform_limit)


def is_oversize(size: int, cap: int) -> bool:
    return size > cap


# --- placement ------------------------------------------------------------------------------


@dataclass(slots=True)
class GroupRoom:
    """A group as placement sees it: its opening order, its key under the policy, its size
    and hard cap."""

    id: str
    number: int
    key: str | None
    size: int
    cap: int


@dataclass(frozen=True, slots=True)
class Joiner:
    """A member to place: its key under the policy (None if it has none), and, for the
    referrer policy, its referrer."""

    member_id: str
    key: str | None = None
    referrer_id: str | None = None


@dataclass(frozen=True, slots=True)
class OpenedGroup:
    id: str
    number: int
    key: str | None
    cap: int


@dataclass
class PlacementPlan:
    """Which group each member goes to (in the order given), the groups to open, each
    touched group's size after the plan, and the group a join code points at afterwards (the
    first opened with room)."""

    placements: list[tuple[str, str]] = field(default_factory=list)
    opened: list[OpenedGroup] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    join_target: str | None = None


class _Rooms:
    """Groups with room, by opening order: one heap for all and one per key. A full group
    leaves a heap when it comes to the top."""

    def __init__(self, groups: Iterable[GroupRoom]) -> None:
        self.all: list[tuple[int, str]] = []
        self.by_key: dict[str | None, list[tuple[int, str]]] = {}
        self.groups: dict[str, GroupRoom] = {}
        for group in groups:
            self.add(group)
        for heap in (self.all, *self.by_key.values()):
            heapq.heapify(heap)

    def add(self, group: GroupRoom, *, push: bool = False) -> None:
        self.groups[group.id] = group
        if group.size >= group.cap:
            return
        entry = (group.number, group.id)
        keyed = self.by_key.setdefault(group.key, [])
        if push:
            heapq.heappush(self.all, entry)
            heapq.heappush(keyed, entry)
        else:
            self.all.append(entry)
            keyed.append(entry)

    def first(self, heap: list[tuple[int, str]] | None) -> GroupRoom | None:
        groups = self.groups
        while heap:
            group = groups[heap[0][1]]
            if group.size < group.cap:
                return group
            heapq.heappop(heap)
        return None


def plan_placements(
    joiners: Sequence[Joiner],
    groups: Iterable[GroupRoom],
    *,
    policy: Policy,
    new_cap: int,
    next_number: int,
    new_group_id: Callable[[], str],
    placed: Mapping[str, str] | None = None,
    keep_room: bool = True,
) -> PlacementPlan:
    """Place `joiners` in order into `groups` (those of one community) under `policy`; new
    groups get numbers from `next_number` on, the cap `new_cap` and ids from `new_group_id`.
    `placed` maps members already in the community to their groups (for the referrer
    policy). With `keep_room`, a plan that leaves no group with room opens one more plain
    group, so that the community's join code always points at a group with room."""
    if new_cap < 1:
        raise ValueError("a new group needs a cap of at least one")
    rooms = _Rooms(groups)
    plan = PlacementPlan()
    by_member: dict[str, str] = dict(placed or {})
    keyed_opens = policy in OPENS_KEYED_GROUPS
    referrer_policy = policy is Policy.REFERRER
    number = next_number
    out = plan.placements
    touched = plan.sizes
    for joiner in joiners:
        target: GroupRoom | None = None
        if referrer_policy:
            if joiner.referrer_id is not None:
                home = by_member.get(joiner.referrer_id)
                if home is not None:
                    candidate = rooms.groups.get(home)
                    if candidate is not None and candidate.size < candidate.cap:
                        target = candidate
            key = None
        else:
            key = joiner.key
            if key is not None:
                target = rooms.first(rooms.by_key.get(key))
        if target is None and (key is None or not keyed_opens):
            target = rooms.first(rooms.all)
        if target is None:
            target = GroupRoom(new_group_id(), number, key if keyed_opens else None, 0, new_cap)
            number += 1
            plan.opened.append(OpenedGroup(target.id, target.number, target.key, new_cap))
            rooms.add(target, push=True)
        target.size += 1
        touched[target.id] = target.size
        out.append((joiner.member_id, target.id))
        if referrer_policy:
            by_member[joiner.member_id] = target.id
    first = rooms.first(rooms.all)
    if first is None and keep_room:
        first = GroupRoom(new_group_id(), number, None, 0, new_cap)
        plan.opened.append(OpenedGroup(first.id, first.number, None, new_cap))
    plan.join_target = first.id if first is not None else None
    return plan


# --- split ----------------------------------------------------------------------------------


def _components(
    members: Sequence[str], weights: Mapping[str, Mapping[str, int]]
) -> list[list[str]]:
    """Members linked by interaction, each component in the order the members were given."""
    order = {m: i for i, m in enumerate(members)}
    parent = {m: m for m in members}

    def root(m: str) -> str:
        while parent[m] != m:
            parent[m] = parent[parent[m]]
            m = parent[m]
        return m

    for a, links in weights.items():
        for b in links:
            ra, rb = root(a), root(b)
            if ra != rb:
                if order[ra] < order[rb]:
                    parent[rb] = ra
                else:
                    parent[ra] = rb
    grouped: dict[str, list[str]] = {}
    for m in members:
        grouped.setdefault(root(m), []).append(m)
    return list(grouped.values())


def _chunks(
    component: list[str], weights: Mapping[str, Mapping[str, int]], cap: int
) -> list[list[str]]:
    """A component too large for one group, cut into pieces of `cap`: each piece grows from
    the most connected member left by the member most connected to the piece so far."""
    left = set(component)
    order = {m: i for i, m in enumerate(component)}
    strength = {m: sum(weights.get(m, {}).values()) for m in component}
    pieces: list[list[str]] = []
    while left:
        piece: list[str] = []
        ties: dict[str, int] = {}
        frontier: list[tuple[int, int, str]] = []
        while len(piece) < cap and left:
            chosen = None
            while frontier:
                neg, _, m = heapq.heappop(frontier)
                if m in left and -neg == ties.get(m):
                    chosen = m
                    break
            if chosen is None:
                chosen = min(left, key=lambda m: (-strength[m], order[m]))
            left.discard(chosen)
            piece.append(chosen)
            for other, w in weights.get(chosen, {}).items():
                if other in left:
                    ties[other] = ties.get(other, 0) + w
                    heapq.heappush(frontier, (-ties[other], order[other], other))
        pieces.append(piece)
    return pieces


def split_members(
    members: Sequence[str], interactions: Iterable[tuple[str, str, int]], cap: int
) -> list[list[str]]:
    """Parts of at most `cap` members that together hold every member once, keeping members
    who interact together: members linked by interactions (`(a, b, weight)`, either way round)
    form components; a component that fits in a group stays whole, a larger one is cut where
    its links are weakest; the pieces are then packed, largest first, into the first part
    with room. The largest part comes first."""
    if cap < 1:
        raise ValueError("a part holds at least one member")
    known = set(members)
    if len(known) != len(members):
        raise ValueError("members are given once each")
    weights: dict[str, dict[str, int]] = {}
    for a, b, w in interactions:
        if a == b or a not in known or b not in known or w <= 0:
            continue
        weights.setdefault(a, {})[b] = weights.get(a, {}).get(b, 0) + w
        weights.setdefault(b, {})[a] = weights.get(b, {}).get(a, 0) + w
    pieces: list[list[str]] = []
    for component in _components(members, weights):
        if len(component) <= cap:
            pieces.append(component)
        else:
            pieces.extend(_chunks(component, weights, cap))
    order = {m: i for i, m in enumerate(members)}
    pieces.sort(key=lambda p: (-len(p), order[p[0]]))
    parts: list[list[str]] = []
    for piece in pieces:
        for part in parts:
            if len(part) + len(piece) <= cap:
                part.extend(piece)
                break
        else:
            parts.append(list(piece))
    parts.sort(key=lambda p: (-len(p), order[p[0]]))
    return parts
