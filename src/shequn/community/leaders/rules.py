"""Leaderboards (pure): the kinds, the windows (7 d, 30 d, all time) as local days of the
tenant, and the order of a board."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from shequn.errors import InvalidInput

MAX_LIMIT = 100


class BoardKind(StrEnum):
    SALES = "sales"  # fen paid by the member's orders
    REFERRALS = "referrals"  # members it referred
    STREAKS = "streaks"  # the best check-in streak of its programs
    POINTS = "points"  # points earned
    ATTENDANCE = "attendance"  # occurrences attended


class Period(StrEnum):
    WEEK = "7d"
    MONTH = "30d"
    ALL = "all"


def board_kind(value: str) -> BoardKind:
    try:
        return BoardKind(value)
    except ValueError:
        raise InvalidInput("leaderboard_kind_invalid", kind=value[:20]) from None


def period_of(value: str) -> Period:
    try:
        return Period(value)
    except ValueError:
        raise InvalidInput("leaderboard_period_invalid", period=value[:10]) from None


def window_start(period: Period, *, now: datetime, time_zone: str) -> datetime | None:
    """The start (UTC) of the window: today and the 6 (or 29) local days before it, from
    local midnight; none for all time."""
    if period is Period.ALL:
        return None
    days = 7 if period is Period.WEEK else 30
    local = now.astimezone(ZoneInfo(time_zone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    start = (midnight.replace(tzinfo=None) - timedelta(days=days - 1)).replace(
        tzinfo=ZoneInfo(time_zone)
    )
    return start.astimezone(UTC)


def in_window(at: datetime, start: datetime | None, now: datetime) -> bool:
    return (start is None or at >= start) and at <= now


def ranked(scores: Sequence[tuple[str, int]], limit: int) -> list[tuple[int, str, int]]:
    """(rank, member, score), highest first; equal scores share a rank (1, 2, 2, 4)."""
    ordered = sorted(((m, s) for m, s in scores if s > 0), key=lambda p: (-p[1], p[0]))
    out: list[tuple[int, str, int]] = []
    for index, (member_id, score) in enumerate(ordered[:limit]):
        rank = out[-1][0] if out and out[-1][2] == score else index + 1
        out.append((rank, member_id, score))
    return out
