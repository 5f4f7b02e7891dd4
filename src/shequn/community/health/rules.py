"""Group health (pure): the active ratio, silent and drifting members, the share of the
top five senders, and customer messages left unanswered beyond the reply-time SLA counted in
working hours; which figures raise an alert.

- active: any activity in the last 7 days; silent: none in the last 14 days;
- drifting: among the top quarter of the group by activity over the last 56 days, and silent
  for 7 to 28 days now (someone who mattered, slipping away);
- a reply-time SLA counts only the minutes inside the staff account's working hours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

ACTIVE_DAYS = 7
SILENT_DAYS = 14
DRIFT_LOOKBACK_DAYS = 56
DRIFT_MIN_DAYS = 7
DRIFT_MAX_DAYS = 28
TOP_SENDERS = 5
REPLY_SLA_MINUTES = 30
DEFAULT_WORK_START = 9 * 60
DEFAULT_WORK_END = 21 * 60
LOW_ACTIVE_BP = 2_000  # below 20 % active in 7 days
SLOW_REPLIES = 1  # unanswered beyond the SLA


class AlertKind(StrEnum):
    LOW_ACTIVITY = "low_activity"
    OVERSIZE = "oversize"
    SLOW_REPLIES = "slow_replies"
    CRISIS = "crisis"


@dataclass(frozen=True)
class MemberActivity:
    member_id: str
    count: int  # activities in the drift lookback
    last_at: datetime | None


def ratio_bp(part: int, whole: int) -> int:
    return 0 if whole <= 0 else part * 10_000 // whole


def drifting(members: Sequence[MemberActivity], now: datetime) -> list[str]:
    """Members of the top quarter by activity who have been silent for 7 to 28 days."""
    active = [m for m in members if m.count > 0]
    if not active:
        return []
    top_n = math.ceil(len(members) / 4)
    top = sorted(active, key=lambda m: (-m.count, m.member_id))[:top_n]
    out = []
    for m in top:
        if m.last_at is None:
            continue
        quiet = now - m.last_at
        if timedelta(days=DRIFT_MIN_DAYS) <= quiet < timedelta(days=DRIFT_MAX_DAYS):
            out.append(m.member_id)
    return sorted(out)


def top_share_bp(counts: Sequence[int], top: int = TOP_SENDERS) -> int:
    """The share of messages sent by the `top` busiest senders, in bp."""
    total = sum(counts)
    return ratio_bp(sum(sorted(counts, reverse=True)[:top]), total)


def working_minutes(
    start: datetime, end: datetime, *, time_zone: str, work_start: int, work_end: int
) -> int:
    """Minutes between `start` and `end` that fall inside the local working hours of each
    day (work_start ≤ minute < work_end; a window may not span midnight)."""
    if end <= start or work_end <= work_start:
        return 0
    zone = ZoneInfo(time_zone)
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    day = local_start.date()
    total = 0.0
    while day <= local_end.date():
        midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
        opens = midnight + timedelta(minutes=work_start)
        closes = midnight + timedelta(minutes=work_end)
        lo, hi = max(opens, local_start), min(closes, local_end)
        if hi > lo:
            total += (hi - lo).total_seconds() / 60
        day += timedelta(days=1)
    return int(total)


def breaches_sla(
    asked_at: datetime,
    answered_at: datetime | None,
    *,
    now: datetime,
    sla_minutes: int,
    time_zone: str,
    work_start: int,
    work_end: int,
) -> bool:
    """Whether a customer's message waited (or still waits) longer than the SLA, in working
    minutes."""
    until = answered_at if answered_at is not None else now
    waited = working_minutes(
        asked_at, until, time_zone=time_zone, work_start=work_start, work_end=work_end
    )
    return waited > sla_minutes


@dataclass(frozen=True)
class Health:
    size: int
    cap: int
    active_7d: int
    silent_14d: int
    drifting: int
    top5_share_bp: int
    unanswered: int


def alerts_for(health: Health) -> list[AlertKind]:
    out = []
    if health.size > 0 and ratio_bp(health.active_7d, health.size) < LOW_ACTIVE_BP:
        out.append(AlertKind.LOW_ACTIVITY)
    if health.size > health.cap:
        out.append(AlertKind.OVERSIZE)
    if health.unanswered >= SLOW_REPLIES:
        out.append(AlertKind.SLOW_REPLIES)
    return out
