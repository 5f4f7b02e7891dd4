"""Cadence (pure): when a schedule may post (posts per day, a minimum gap, quiet hours, all
in the tenant's local time) and whether it fits every member's monthly message budget.

A schedule that breaks a limit is refused whole, with the figure, and nothing of it is
queued: post regularly, never carpet-bomb.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from shequn.errors import Conflict, InvalidInput

MAX_STEPS = 60
MAX_BODY = 4_000
MAX_SOP_DAYS = 366


class TargetKind(StrEnum):
    STAFF_ACCOUNT = "staff_account"
    GROUP = "group"
    SEGMENT = "segment"  # members with a tag


class PostKind(StrEnum):
    POST = "post"
    TASK = "task"


@dataclass(frozen=True)
class Cadence:
    posts_per_day: int = 3
    min_gap_minutes: int = 120
    quiet_start: int = 22 * 60  # 22:00 local
    quiet_end: int = 8 * 60  # 08:00 local
    monthly_budget: int = 30


LIMITS = {
    "posts_per_day": (1, 50),
    "min_gap_minutes": (0, 1_440),
    "quiet_start": (0, 1_439),
    "quiet_end": (0, 1_439),
    "monthly_budget": (1, 1_000),
}


def check_cadence_fields(fields: Mapping[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, value in fields.items():
        bounds = LIMITS.get(name)
        if bounds is None:
            raise InvalidInput("cadence_field_unknown", field=name[:40])
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidInput("cadence_field_invalid", field=name, low=bounds[0], high=bounds[1])
        if not bounds[0] <= value <= bounds[1]:
            raise InvalidInput("cadence_field_invalid", field=name, low=bounds[0], high=bounds[1])
        out[name] = value
    return out


def target_kind(value: str) -> TargetKind:
    try:
        return TargetKind(value)
    except ValueError:
        raise InvalidInput("cadence_target_invalid", kind=value[:20]) from None


def in_quiet_hours(minute: int, cadence: Cadence) -> bool:
    """Whether a local minute of the day is inside quiet hours (which may span midnight)."""
    start, end = cadence.quiet_start, cadence.quiet_end
    if start == end:
        return False
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def check_schedule(
    proposed: Sequence[datetime],
    *,
    existing: Sequence[datetime],
    cadence: Cadence,
    time_zone: str,
) -> None:
    """Refuse a schedule for one target that posts in quiet hours, more often than the limit
    per local day, or closer than the minimum gap (counting what is already scheduled)."""
    zone = ZoneInfo(time_zone)
    for at in proposed:
        local = at.astimezone(zone)
        minute = local.hour * 60 + local.minute
        if in_quiet_hours(minute, cadence):
            raise Conflict(
                "schedule_in_quiet_hours",
                at=local.strftime("%Y-%m-%d %H:%M"),
                start=_clock(cadence.quiet_start),
                end=_clock(cadence.quiet_end),
            )
    every = sorted([*existing, *proposed])
    per_day = Counter(at.astimezone(zone).date().isoformat() for at in every)
    for day, count in sorted(per_day.items()):
        if count > cadence.posts_per_day:
            raise Conflict(
                "schedule_too_many_per_day", day=day, count=count, limit=cadence.posts_per_day
            )
    gap = timedelta(minutes=cadence.min_gap_minutes)
    new = set(proposed)
    for earlier, later in itertools.pairwise(every):
        if (earlier in new or later in new) and later - earlier < gap:
            minutes = int((later - earlier).total_seconds() // 60)
            raise Conflict("schedule_gap_too_short", minutes=minutes, limit=cadence.min_gap_minutes)


def month_of(at: datetime, time_zone: str) -> str:
    return at.astimezone(ZoneInfo(time_zone)).strftime("%Y-%m")


def posts_per_month(proposed: Sequence[datetime], time_zone: str) -> dict[str, int]:
    return dict(Counter(month_of(at, time_zone) for at in proposed))


@dataclass(frozen=True)
class BudgetBreach:
    month: str
    member_id: str
    would_be: int
    budget: int


def budget_breach(
    needed: Mapping[str, int], most_used: Mapping[str, tuple[str, int]], budget: int
) -> BudgetBreach | None:
    """The first month in which the member with the most messages already (`most_used`:
    month → (member, used)) would pass the budget with the schedule's `needed` messages."""
    for month in sorted(needed):
        member_id, used = most_used.get(month, ("", 0))
        if used + needed[month] > budget:
            return BudgetBreach(month, member_id, used + needed[month], budget)
    return None


def refuse_breach(breach: BudgetBreach | None, recipients: int) -> None:
    if breach is not None:
        raise Conflict(
            "schedule_over_budget",
            month=breach.month,
            would_be=breach.would_be,
            budget=breach.budget,
            members=recipients,
        )


@dataclass(frozen=True)
class Step:
    day: int  # days after the SOP's start
    minute: int  # local minute of that day
    body: str
    kind: PostKind


def parse_steps(raw: Sequence[Mapping[str, Any]]) -> list[Step]:
    if not 1 <= len(raw) <= MAX_STEPS:
        raise InvalidInput("sop_steps_invalid", max=MAX_STEPS)
    out = []
    for item in raw:
        day, minute, body = item.get("day"), item.get("minute"), item.get("body")
        kind = item.get("kind") or "post"
        if not isinstance(day, int) or not 0 <= day <= MAX_SOP_DAYS:
            raise InvalidInput("sop_step_invalid", field="day")
        if not isinstance(minute, int) or not 0 <= minute < 1_440:
            raise InvalidInput("sop_step_invalid", field="minute")
        if not isinstance(body, str) or not body.strip() or len(body) > MAX_BODY:
            raise InvalidInput("sop_step_invalid", field="body")
        if kind not in set(PostKind):
            raise InvalidInput("sop_step_invalid", field="kind")
        out.append(Step(day, minute, body.strip(), PostKind(kind)))
    return sorted(out, key=lambda s: (s.day, s.minute))


def step_times(steps: Sequence[Step], *, starts_on: str, time_zone: str) -> list[datetime]:
    """Each step's time on the time line: its local day and minute in the tenant's zone."""
    zone = ZoneInfo(time_zone)
    start = datetime.fromisoformat(starts_on)
    return [(start + timedelta(days=s.day, minutes=s.minute)).replace(tzinfo=zone) for s in steps]


def search_terms(words: Sequence[str]) -> list[str]:
    """The words of a query worth matching: no blanks, no punctuation, each once."""
    out: list[str] = []
    for w in words:
        clean = w.strip().lower()
        if clean and any(ch.isalnum() for ch in clean) and clean not in out:
            out.append(clean)
    return out[:10]
