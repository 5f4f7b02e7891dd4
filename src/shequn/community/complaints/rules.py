"""Complaints (pure): the SLA timers of a ticket, the states it moves through, and when
complaints become a crisis (seed 002: in a community, one complaint becomes a group
incident).

A crisis is raised when complaints about one product cluster (at least three within 24
hours), when a complaint surfaces in a group of 100 or more, or when a message matches a
sensitive word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shequn.errors import Conflict

RESPOND_WITHIN = timedelta(hours=2)
RESOLVE_WITHIN = timedelta(hours=48)
CLUSTER_SIZE = 3
CLUSTER_WINDOW = timedelta(hours=24)
LARGE_GROUP = 100
SENSITIVE_WORDS = (
    "曝光",
    "投诉到",
    "维权",
    "假货",
    "骗子",
    "退款不给",
    "举报",
    "315",
    "过敏",
    "中毒",
)
MAX_BODY = 2_000


class ComplaintStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"


_MOVES = {
    (ComplaintStatus.OPEN, ComplaintStatus.IN_PROGRESS),
    (ComplaintStatus.OPEN, ComplaintStatus.RESOLVED),
    (ComplaintStatus.IN_PROGRESS, ComplaintStatus.RESOLVED),
}


def transition(current: ComplaintStatus, target: ComplaintStatus) -> ComplaintStatus:
    if (current, target) not in _MOVES:
        raise Conflict("complaint_transition_invalid", status=current.value, to=target.value)
    return target


@dataclass(frozen=True)
class Timers:
    respond_by: datetime
    resolve_by: datetime


def timers(created_at: datetime) -> Timers:
    return Timers(created_at + RESPOND_WITHIN, created_at + RESOLVE_WITHIN)


def overdue(deadline: datetime, done_at: datetime | None, now: datetime) -> bool:
    return (done_at or now) > deadline


def clustered(times: Sequence[datetime], now: datetime) -> bool:
    """Whether the complaints about one product within the window reach the cluster size."""
    recent = [t for t in times if now - CLUSTER_WINDOW <= t <= now]
    return len(recent) >= CLUSTER_SIZE


def sensitive_words(text: str, words: Sequence[str] = SENSITIVE_WORDS) -> list[str]:
    lowered = text.lower()
    return [w for w in words if w.lower() in lowered]


class Trigger(StrEnum):
    PRODUCT_CLUSTER = "product_cluster"
    LARGE_GROUP = "large_group"
    SENSITIVE_WORDS = "sensitive_words"


def triggers(
    *, product_times: Sequence[datetime], group_size: int, text: str, now: datetime
) -> list[Trigger]:
    """Why a new complaint is a crisis, if it is."""
    out = []
    if product_times and clustered(product_times, now):
        out.append(Trigger.PRODUCT_CLUSTER)
    if group_size >= LARGE_GROUP:
        out.append(Trigger.LARGE_GROUP)
    if sensitive_words(text):
        out.append(Trigger.SENSITIVE_WORDS)
    return out


# What a crisis alert keeps of ingested messages (PIPL: the words matched and a short excerpt
# around them, never the message).
EXCERPT_AROUND = 12
MAX_EXCERPTS = 5
MAX_ALERT_ACTIVITIES = 50


def excerpt(text: str, words: Sequence[str], around: int = EXCERPT_AROUND) -> str:
    """The first matched word with at most `around` characters either side, on one line."""
    lowered = text.lower()
    found = [(lowered.find(w.lower()), w) for w in words if w.lower() in lowered]
    if not found:
        return ""
    at, word = min(found)
    start, end = max(0, at - around), min(len(text), at + len(word) + around)
    shown = " ".join(text[start:end].split())
    return ("…" if start > 0 else "") + shown + ("…" if end < len(text) else "")


def merged(kept: Sequence[str], new: Sequence[str], limit: int) -> list[str]:
    """`kept` then the items of `new` it lacks, the latest `limit` of them."""
    out = list(kept)
    out.extend(i for i in new if i not in out)
    return out[-limit:]
