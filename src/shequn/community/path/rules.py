"""The growth path (pure): ordered stages, each with criteria over a member's facts; the
stage a member has reached and its next step.

A member is in the last stage whose criteria it meets and whose every earlier stage it meets
too (a path is walked in order); the next step names the conditions of the following stage
still unmet and how far each is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shequn.errors import InvalidInput

# Facts a stage may test: commerce (orders, spending, referred buyers) and community
# (events attended, challenges completed, check-ins, messages, talks given, courses done).
FACTS = frozenset(
    {
        "paid_order_count",
        "paid_total_fen",
        "first_sale",
        "referred_buyers",
        "direct_count",
        "events_attended",
        "challenges_completed",
        "lessons_done",
        "check_ins",
        "messages",
        "talks_given",
        "communities",
    }
)
OPERATORS = (">=", ">", "=")
MAX_STAGES = 12
MAX_CONDITIONS = 6

DEFAULT_STAGES: tuple[tuple[str, tuple[tuple[str, str, int], ...]], ...] = (
    ("进入", (("communities", ">=", 1),)),
    ("学习", (("events_attended", ">=", 1),)),
    ("实践", (("challenges_completed", ">=", 1),)),
    ("实战", (("first_sale", ">=", 1),)),
    ("提升", (("paid_total_fen", ">=", 100_000), ("events_attended", ">=", 4))),
    ("分享", (("talks_given", ">=", 1),)),
    ("自我实现", (("referred_buyers", ">=", 10),)),
)


@dataclass(frozen=True)
class Criterion:
    fact: str
    op: str
    value: int

    def met(self, facts: Mapping[str, int]) -> bool:
        have = facts.get(self.fact, 0)
        if self.op == ">=":
            return have >= self.value
        if self.op == ">":
            return have > self.value
        return have == self.value

    def gap(self, facts: Mapping[str, int]) -> int:
        """How much more of the fact the criterion wants (0 once met)."""
        if self.met(facts):
            return 0
        have = facts.get(self.fact, 0)
        return max(1, self.value - have + (1 if self.op == ">" else 0))


@dataclass(frozen=True)
class Stage:
    position: int
    name: str
    criteria: tuple[Criterion, ...]


def parse_stages(raw: Sequence[Mapping[str, Any]]) -> list[Stage]:
    if not 1 <= len(raw) <= MAX_STAGES:
        raise InvalidInput("growth_stages_invalid", max=MAX_STAGES)
    out: list[Stage] = []
    names: set[str] = set()
    for position, item in enumerate(raw, start=1):
        name = " ".join(str(item.get("name") or "").split())
        if not name or len(name) > 40 or name in names:
            raise InvalidInput("growth_stage_name_invalid", position=position)
        names.add(name)
        conditions = item.get("criteria") or []
        if len(conditions) > MAX_CONDITIONS:
            raise InvalidInput("growth_stages_invalid", max=MAX_STAGES)
        parsed = []
        for c in conditions:
            fact, op, value = c.get("fact"), c.get("op"), c.get("value")
            if fact not in FACTS:
                raise InvalidInput("growth_fact_unknown", fact=str(fact)[:40])
            if op not in OPERATORS or not isinstance(value, int) or value < 0:
                raise InvalidInput("growth_criterion_invalid", fact=str(fact))
            parsed.append(Criterion(str(fact), str(op), value))
        out.append(Stage(position, name, tuple(parsed)))
    return out


def default_stages() -> list[Stage]:
    return [
        Stage(i, name, tuple(Criterion(*c) for c in conditions))
        for i, (name, conditions) in enumerate(DEFAULT_STAGES, start=1)
    ]


def stages_json(stages: Sequence[Stage]) -> list[dict[str, Any]]:
    return [
        {
            "name": s.name,
            "criteria": [{"fact": c.fact, "op": c.op, "value": c.value} for c in s.criteria],
        }
        for s in stages
    ]


def stage_of(stages: Sequence[Stage], facts: Mapping[str, int]) -> int:
    """The position of the stage reached (0: not even the first)."""
    reached = 0
    for stage in stages:
        if all(c.met(facts) for c in stage.criteria):
            reached = stage.position
        else:
            break
    return reached


@dataclass(frozen=True)
class NextStep:
    position: int
    name: str
    missing: tuple[tuple[Criterion, int, int], ...]  # (criterion, have, gap)


def next_step(stages: Sequence[Stage], facts: Mapping[str, int]) -> NextStep | None:
    """The following stage and what it still wants; none at the end of the path."""
    at = stage_of(stages, facts)
    following = [s for s in stages if s.position == at + 1]
    if not following:
        return None
    stage = following[0]
    missing = tuple(
        (c, facts.get(c.fact, 0), c.gap(facts)) for c in stage.criteria if not c.met(facts)
    )
    return NextStep(stage.position, stage.name, missing)


def changes(
    stages: Sequence[Stage], before: Mapping[str, int], facts: Mapping[str, Mapping[str, int]]
) -> dict[str, tuple[int, int]]:
    """Members whose stage moves: member → (from, to)."""
    out: dict[str, tuple[int, int]] = {}
    for member_id, own in facts.items():
        now = stage_of(stages, own)
        was = before.get(member_id, 0)
        if now != was:
            out[member_id] = (was, now)
    return out
