"""Programs (pure): which day of a challenge it is, what a member's check-ins, make-up days
(补卡) and streak freezes add up to, when the member has completed, and the milestones it
reached; the elimination of a competition's round.

Day 1 is the program's first local day. A day is *covered* when the member checked in on it
or made it up later (a make-up is for a past day of the program, within the limit). A
*frozen* day neither breaks a streak nor extends it (within its own limit).

- consecutive: complete when a run of covered days (frozen days bridging gaps) reaches N;
- cumulative: complete when N days are covered, in any order, while the program runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from shequn.errors import Conflict, InvalidInput

MAX_DAYS = 366
MAX_MILESTONES = 10
MAX_LESSONS = 100
MAX_SUBMISSION = 2_000


class ProgramKind(StrEnum):
    CHALLENGE = "challenge"
    COURSE = "course"
    COMPETITION = "competition"


class StreakMode(StrEnum):
    CONSECUTIVE = "consecutive"
    CUMULATIVE = "cumulative"


class CheckinKind(StrEnum):
    CHECKIN = "checkin"
    MAKEUP = "makeup"
    FREEZE = "freeze"
    LESSON = "lesson"


@dataclass(frozen=True)
class Milestone:
    day: int  # covered days that reach it
    badge_id: str | None = None
    tag: str | None = None
    points: int = 0


@dataclass(frozen=True)
class Limits:
    days: int
    window_days: int
    mode: StreakMode
    makeup_limit: int
    freeze_limit: int


@dataclass(frozen=True)
class Progress:
    covered: int
    streak: int  # the run that ends on the latest covered day (or today)
    best_streak: int
    completed: bool
    missed: tuple[int, ...]  # past days neither covered nor frozen


def check_limits(
    *, days: int, window_days: int | None, mode: str, makeup_limit: int, freeze_limit: int
) -> Limits:
    try:
        chosen = StreakMode(mode)
    except ValueError:
        raise InvalidInput("program_mode_invalid", mode=mode[:20]) from None
    window = window_days if window_days is not None else days
    if not 1 <= days <= MAX_DAYS or not days <= window <= MAX_DAYS:
        raise InvalidInput("program_days_invalid", max=MAX_DAYS)
    if not 0 <= makeup_limit <= days or not 0 <= freeze_limit <= days:
        raise InvalidInput("program_limit_invalid", max=days)
    return Limits(days, window, chosen, makeup_limit, freeze_limit)


def parse_milestones(raw: Sequence[Mapping[str, Any]], days: int) -> list[Milestone]:
    if len(raw) > MAX_MILESTONES:
        raise InvalidInput("program_milestones_invalid", max=MAX_MILESTONES)
    out: list[Milestone] = []
    for item in raw:
        day = item.get("day")
        points = item.get("points") or 0
        if not isinstance(day, int) or not 1 <= day <= days:
            raise InvalidInput("program_milestones_invalid", max=MAX_MILESTONES)
        if not isinstance(points, int) or not 0 <= points <= 1_000_000:
            raise InvalidInput("program_milestones_invalid", max=MAX_MILESTONES)
        out.append(Milestone(day, item.get("badge_id"), item.get("tag"), points))
    return sorted(out, key=lambda m: m.day)


def day_of(starts_on: date, today: date) -> int:
    """Which day of the program `today` is (1 on the first day; 0 or less before it)."""
    return (today - starts_on).days + 1


def check_day(
    kind: CheckinKind,
    *,
    day: int | None,
    today: int,
    limits: Limits,
    covered: set[int],
    frozen: set[int],
    makeups_used: int,
    freezes_used: int,
) -> int:
    """The day a check-in of `kind` is for, refused outside the program or over a limit
    (with the figure)."""
    if not 1 <= today <= limits.window_days:
        raise Conflict("program_not_running", day=today, days=limits.window_days)
    target = today if kind is CheckinKind.CHECKIN else day
    if target is None:
        raise InvalidInput("checkin_day_missing")
    if target in covered or target in frozen:
        raise Conflict("checkin_day_taken", day=target)
    if kind is CheckinKind.MAKEUP:
        if not 1 <= target < today:
            raise Conflict("makeup_day_invalid", day=target, today=today)
        if makeups_used >= limits.makeup_limit:
            raise Conflict("makeup_limit_reached", used=makeups_used, limit=limits.makeup_limit)
    if kind is CheckinKind.FREEZE:
        if not 1 <= target <= today:
            raise Conflict("freeze_day_invalid", day=target, today=today)
        if freezes_used >= limits.freeze_limit:
            raise Conflict("freeze_limit_reached", used=freezes_used, limit=limits.freeze_limit)
    return target


def progress(limits: Limits, *, covered: set[int], frozen: set[int], today: int) -> Progress:
    """What the member's covered and frozen days add up to on day `today`."""
    last = min(max(today, 0), limits.window_days)
    run = best = 0
    missed: list[int] = []
    for day in range(1, last + 1):
        if day in covered:
            run += 1
            best = max(best, run)
        elif day in frozen:
            continue
        elif day < today:
            missed.append(day)
            run = 0
    total = len({d for d in covered if 1 <= d <= limits.window_days})
    if limits.mode is StreakMode.CONSECUTIVE:
        completed = best >= limits.days
    else:
        completed = total >= limits.days
    return Progress(total, run, best, completed, tuple(missed))


def reached(milestones: Sequence[Milestone], before: int, after: int) -> list[Milestone]:
    """The milestones a member's covered days just passed."""
    return [m for m in milestones if before < m.day <= after]


def rank_key(covered: int, best_streak: int, completed: bool, joined: str) -> tuple[Any, ...]:
    """Ranking: completed first, then more covered days, the longer streak, the earlier."""
    return (not completed, -covered, -best_streak, joined)


def eliminate(scores: Mapping[str, int], alive: Sequence[str], count: int) -> list[str]:
    """The `count` teams still in the competition with the lowest total scores (ties: the
    later named goes first); never every team."""
    if count < 0:
        raise InvalidInput("elimination_invalid")
    if count >= len(alive) and alive:
        raise Conflict("elimination_leaves_no_team", teams=len(alive), eliminate=count)
    ordered = sorted(alive, key=lambda t: (scores.get(t, 0), t))
    return ordered[:count]


def check_lesson(lesson: int | None, lessons: int) -> int:
    if lesson is None or not 1 <= lesson <= lessons:
        raise InvalidInput("lesson_invalid", lessons=lessons)
    return lesson
