"""Gatherings (pure): a recurrence rule read in the tenant's time zone, seats and the
waitlist, and which occurrence an attendance code belongs to.

An RRULE says when in local wall time ("every Tuesday and Thursday at 20:00"): its
occurrences are generated in local time and only then placed on the time line, so that a
class stays at 20:00 on both sides of a daylight-saving change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from shequn.errors import Conflict, InvalidInput

MAX_RULE = 500
MAX_RANGE = timedelta(days=366)
MAX_OCCURRENCES = 500
# An attendance code is taken from a little before an occurrence until a while after it ends.
CHECK_IN_EARLY = timedelta(minutes=30)
CHECK_IN_LATE = timedelta(minutes=60)
ALLOWED_FREQUENCIES = frozenset({"DAILY", "WEEKLY", "MONTHLY", "YEARLY"})


class EventKind(StrEnum):
    CLASS = "class"
    MEETUP = "meetup"
    FESTIVAL = "festival"
    LAB = "lab"
    LIVE = "live"


class RsvpStatus(StrEnum):
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"


def event_kind(value: str) -> EventKind:
    try:
        return EventKind(value)
    except ValueError:
        raise InvalidInput("calendar_event_kind_invalid", kind=value[:20]) from None


def _local_naive(at: datetime, zone: ZoneInfo) -> datetime:
    return at.astimezone(zone).replace(tzinfo=None)


@dataclass(frozen=True)
class Rule:
    """A parsed rule: its recurrence (DTSTART at local wall time), and the COUNT and UNTIL
    it states, read from its text."""

    recurrence: rrule
    count: int | None
    until: datetime | None

    def bounded(self, local_to: datetime) -> list[datetime]:
        """The rule's local wall times from its start up to `local_to`: the iteration stops
        there whatever the rule (one that never matches could run to the year 9999)."""
        stop = local_to if self.until is None else min(self.until, local_to)
        found = list(self.recurrence.replace(count=None, until=stop))
        return found[: self.count] if self.count is not None else found


def _until(value: str | None) -> datetime | None:
    if value is None:
        return None
    for shape in ("%Y%m%dT%H%M%S", "%Y%m%d"):
        try:
            return datetime.strptime(value, shape)
        except ValueError:
            continue
    raise ValueError(value)


ALLOWED_PARTS = frozenset(
    {
        "FREQ",
        "INTERVAL",
        "COUNT",
        "UNTIL",
        "BYDAY",
        "BYMONTHDAY",
        "BYMONTH",
        "BYHOUR",
        "BYMINUTE",
        "WKST",
    }
)
MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _numbers(value: str) -> list[int]:
    return [int(v) for v in value.split(",")]


def _can_occur(parts: dict[str, str]) -> bool:
    """Whether a rule of these parts can ever occur (the recurrence library looks for a
    first occurrence of a rule that never occurs until the year 9999, a day at a time)."""
    if set(parts) - ALLOWED_PARTS:
        return False
    if not 1 <= int(parts.get("INTERVAL", "1")) <= 1_000:
        return False
    for day in (parts.get("BYDAY") or "").split(","):
        ordinal = day.strip()[:-2]
        if ordinal not in ("", "+", "-") and not 1 <= abs(int(ordinal)) <= 5:
            return False
    if "BYMONTHDAY" not in parts:
        return True
    months = _numbers(parts["BYMONTH"]) if "BYMONTH" in parts else list(range(1, 13))
    days = _numbers(parts["BYMONTHDAY"])
    return any(1 <= m <= 12 and any(1 <= abs(d) <= MONTH_DAYS[m - 1] for d in days) for m in months)


def parse_rule(text: str, *, starts_at: datetime, time_zone: str) -> Rule:
    """The rule with its DTSTART at `starts_at`'s local wall time; refused unless it is an
    RRULE of days, weeks, months or years (UNTIL, if any, in local time) that occurs within
    two years of its start."""
    check_moment(starts_at, "starts_at")
    clean = text.strip()
    if clean.upper().startswith("RRULE:"):
        clean = clean[6:]
    if not clean or len(clean) > MAX_RULE or "DTSTART" in clean.upper() or "\n" in clean:
        raise InvalidInput("rrule_invalid", rule=text[:60])
    zone = ZoneInfo(time_zone)
    dtstart = _local_naive(starts_at, zone)
    parts = dict(p.partition("=")[::2] for p in clean.upper().split(";"))
    try:
        possible = parts.get("FREQ") in ALLOWED_FREQUENCIES and _can_occur(parts)
    except ValueError:
        possible = False
    if not possible:
        raise InvalidInput("rrule_invalid", rule=text[:60])
    try:
        parsed = rrulestr(clean, dtstart=dtstart)
        count = int(parts["COUNT"]) if "COUNT" in parts else None
        rule = Rule(parsed, count, _until(parts.get("UNTIL")))  # type: ignore[arg-type]
        first = rule.bounded(dtstart + timedelta(days=731))[:1]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError):
        raise InvalidInput("rrule_invalid", rule=text[:60]) from None
    if not isinstance(parsed, rrule) or not first or (count is not None and count < 1):
        raise InvalidInput("rrule_invalid", rule=text[:60])
    return rule


def occurrences(
    text: str, *, starts_at: datetime, time_zone: str, start: datetime, end: datetime
) -> list[datetime]:
    """The occurrences (UTC) in [start, end): local wall times of the rule, each placed in
    the zone (a wall time a change skips is placed as the clock reads after it)."""
    check_moment(start, "from")
    check_moment(end, "to")
    if end <= start:
        raise InvalidInput("occurrence_range_invalid")
    if end - start > MAX_RANGE:
        raise InvalidInput("occurrence_range_too_long", days=MAX_RANGE.days)
    rule = parse_rule(text, starts_at=starts_at, time_zone=time_zone)
    zone = ZoneInfo(time_zone)
    # A day of margin either side: the exact bounds are applied on the time line.
    local_from = _local_naive(start, zone) - timedelta(days=1)
    local_to = _local_naive(end, zone) + timedelta(days=1)
    found: list[datetime] = []
    for local in rule.bounded(local_to):
        if local < local_from:
            continue
        at = local.replace(tzinfo=zone).astimezone(UTC)
        if start <= at < end:
            found.append(at)
            if len(found) > MAX_OCCURRENCES:
                raise InvalidInput("occurrence_range_too_long", days=MAX_RANGE.days)
    return found


def is_occurrence(text: str, *, starts_at: datetime, time_zone: str, at: datetime) -> bool:
    """Whether `at` is one of the rule's occurrences."""
    return at in occurrences(
        text,
        starts_at=starts_at,
        time_zone=time_zone,
        start=at - timedelta(minutes=1),
        end=at + timedelta(minutes=1),
    )


def seat_for(capacity: int | None, confirmed: int) -> RsvpStatus:
    """A new RSVP takes a seat while one is free, else it waits."""
    if capacity is None or confirmed < capacity:
        return RsvpStatus.CONFIRMED
    return RsvpStatus.WAITLISTED


def to_promote(capacity: int | None, confirmed: int, waiting: Sequence[str]) -> list[str]:
    """Who on the waitlist (in order of asking) takes the seats free now."""
    if capacity is None:
        return list(waiting)
    free = max(0, capacity - confirmed)
    return list(waiting[:free])


@dataclass(frozen=True)
class Window:
    opens: datetime
    closes: datetime


def check_in_window(occurrence_at: datetime, duration_minutes: int) -> Window:
    return Window(
        occurrence_at - CHECK_IN_EARLY,
        occurrence_at + timedelta(minutes=duration_minutes) + CHECK_IN_LATE,
    )


def occurrence_open_at(
    candidates: Sequence[datetime], *, now: datetime, duration_minutes: int
) -> datetime:
    """The occurrence whose check-in window holds `now`; refused when none does."""
    for at in candidates:
        window = check_in_window(at, duration_minutes)
        if window.opens <= now <= window.closes:
            return at
    raise Conflict("attendance_not_open")


def no_show(confirmed: bool, attended: bool, ended: bool) -> bool:
    """A member who held a seat for an occurrence that ended, and did not come."""
    return confirmed and ended and not attended


EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def check_moment(at: datetime, field: str) -> datetime:
    """A time a schedule can be about: aware, and between 2000 and 2100."""
    if at.tzinfo is None:
        raise InvalidInput("datetime_naive", field=field)
    if not EARLIEST <= at < LATEST:
        raise InvalidInput("datetime_out_of_range", field=field)
    return at


def check_local_date(day: date, field: str) -> date:
    if not EARLIEST.date() <= day < LATEST.date():
        raise InvalidInput("datetime_out_of_range", field=field)
    return day
