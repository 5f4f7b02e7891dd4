"""The staff-account matrix (个人号矩阵), pure: who may take a new member now, which account a
policy picks, and how a leaving account's members and groups are handed over within the
limits WeChat Work sets.

WeChat Work's facts: a customer can be transferred between staff at most twice in 90 days;
one call transfers at most 100 customers; a transfer waits 24 hours, during which the
customer may refuse it, and fails if the receiver is full; a group owner hands over at most
300 groups a day. A staff account (like a personal WeChat) starts at 5,000 customers.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from shequn.errors import InvalidInput

DEFAULT_FRIEND_CAP = 5_000
MAX_FRIEND_CAP = 20_000
WARNING_BP = 9_000  # an account at 90 % of its cap is flagged
DEFAULT_DAILY_ADD_LIMIT = 300
TRANSFERS_PER_WINDOW = 2
TRANSFER_WINDOW = timedelta(days=90)
TRANSFERS_PER_CALL = 100
TRANSFER_WAIT = timedelta(hours=24)
GROUPS_PER_DAY = 300
MINUTES_PER_DAY = 24 * 60


class Channel(StrEnum):
    PERSONAL_WECHAT = "personal_wechat"  # cannot be automated: its messages are operator tasks
    WECOM = "wecom"


class AssignPolicy(StrEnum):
    ROUND_ROBIN = "round_robin"  # the eligible account that was given a member longest ago
    LEAST_LOADED = "least_loaded"
    REGION = "region"
    REFERRER = "referrer"  # the referrer's account (or its backup) while it can take one


class Unavailable(StrEnum):
    INACTIVE = "inactive"
    FULL = "full"
    OFF_DUTY = "off_duty"
    DAILY_LIMIT = "daily_limit"


def assign_policy_of(value: str | None) -> AssignPolicy:
    if value is None:
        return AssignPolicy.LEAST_LOADED
    try:
        return AssignPolicy(value)
    except ValueError:
        raise InvalidInput("assign_policy_invalid", policy=value[:40]) from None


def parse_hours(value: str) -> tuple[int, int]:
    """`"09:00-21:30"` → (540, 1290) minutes of the local day; an end before the start
    runs past midnight; `"00:00-24:00"` is the whole day."""
    try:
        start_text, end_text = value.strip().split("-")
        start, end = _minute(start_text), _minute(end_text)
    except ValueError:
        raise InvalidInput("working_hours_invalid", hours=value[:20]) from None
    if start in (end, MINUTES_PER_DAY):
        raise InvalidInput("working_hours_invalid", hours=value[:20])
    return start, end


def _minute(text: str) -> int:
    hours, minutes = text.strip().split(":")
    if len(hours) != 2 or len(minutes) != 2:
        raise ValueError(text)
    h, m = int(hours), int(minutes)
    if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m):
        raise ValueError(text)
    return h * 60 + m


def format_hours(start: int, end: int) -> str:
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def on_duty(start: int, end: int, minute: int) -> bool:
    """Whether minute `minute` of the local day falls in the working hours [start, end)."""
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


def load_bp(member_count: int, friend_cap: int) -> int:
    return member_count * 10_000 // friend_cap if friend_cap else 10_000


def near_full(member_count: int, friend_cap: int) -> bool:
    return load_bp(member_count, friend_cap) >= WARNING_BP


@dataclass(frozen=True)
class Account:
    """A staff account as assignment sees it now (`adds_today` counted on the local day)."""

    id: str
    member_count: int
    friend_cap: int
    adds_today: int
    daily_add_limit: int
    work_start: int
    work_end: int
    region: str | None = None
    backup_id: str | None = None
    active: bool = True
    assign_seq: int = 0  # when it was last given a member, in the tenant's order


def unavailable(account: Account, minute: int) -> Unavailable | None:
    """Why the account cannot take a new member at minute `minute` of the day, if it can't."""
    if not account.active:
        return Unavailable.INACTIVE
    if account.member_count >= account.friend_cap:
        return Unavailable.FULL
    if account.adds_today >= account.daily_add_limit:
        return Unavailable.DAILY_LIMIT
    if not on_duty(account.work_start, account.work_end, minute):
        return Unavailable.OFF_DUTY
    return None


def candidates(
    accounts: Sequence[Account],
    policy: AssignPolicy,
    *,
    minute: int,
    region: str | None = None,
    referrer_account_id: str | None = None,
) -> list[str]:
    """The accounts that can take a member now, best first under `policy`; full, off-duty
    and at-limit accounts are skipped. An unavailable preferred account (the referrer's)
    hands over to its backup."""
    by_id = {a.id: a for a in accounts}
    able = [a for a in accounts if unavailable(a, minute) is None]

    def least_loaded(a: Account) -> tuple[int, int, str]:
        return (load_bp(a.member_count, a.friend_cap), a.member_count, a.id)

    if policy is AssignPolicy.ROUND_ROBIN:
        ranked = sorted(able, key=lambda a: (a.assign_seq, a.id))
    else:
        ranked = sorted(able, key=least_loaded)
    if policy is AssignPolicy.REGION and region is not None:
        ranked = [a for a in ranked if a.region == region] + [
            a for a in ranked if a.region != region
        ]
    order = [a.id for a in ranked]
    if policy is AssignPolicy.REFERRER and referrer_account_id is not None:
        preferred: list[str] = []
        seen: set[str] = set()
        current = by_id.get(referrer_account_id)
        while current is not None and current.id not in seen:
            seen.add(current.id)
            if unavailable(current, minute) is None:
                preferred.append(current.id)
                break
            current = by_id.get(current.backup_id) if current.backup_id else None
        order = preferred + [i for i in order if i not in preferred]
    return order


# --- handover -------------------------------------------------------------------------------


class TransferStatus(StrEnum):
    PENDING = "pending"  # asked of the platform; the customer has 24 hours to refuse
    ACCEPTED = "accepted"
    REFUSED = "refused"  # the customer refused: the member stays listed
    RECEIVER_FULL = "receiver_full"  # the receiver had no room: tried again with the fallback
    WAITING = "waiting"  # not asked yet: a limit holds it back (see `reason`)


class WaitReason(StrEnum):
    TRANSFER_LIMIT = "transfer_limit"  # two transfers in the last 90 days
    NO_RECEIVER_ROOM = "no_receiver_room"
    REFUSED = "refused"
    GROUP_DAILY_LIMIT = "group_daily_limit"


# Transfers that count against a member's two in 90 days.
COUNTED = frozenset({TransferStatus.PENDING, TransferStatus.ACCEPTED})
OUTCOMES = frozenset(
    {TransferStatus.ACCEPTED, TransferStatus.REFUSED, TransferStatus.RECEIVER_FULL}
)


def outcome_of(value: str) -> TransferStatus:
    try:
        status = TransferStatus(value)
    except ValueError:
        raise InvalidInput("transfer_outcome_invalid", outcome=value[:40]) from None
    if status not in OUTCOMES:
        raise InvalidInput("transfer_outcome_invalid", outcome=value[:40])
    return status


@dataclass(frozen=True)
class Transferable:
    """A member to hand over, with the times of its counted transfers in the window, and a
    receiver it must not go to (the one that was full for it, say)."""

    member_id: str
    recent: tuple[datetime, ...] = ()
    avoid: str | None = None


@dataclass(frozen=True)
class Receiver:
    id: str
    room: int  # members it can still take


@dataclass
class HandoverPlan:
    """Transfers to ask for now, in calls of at most 100 to one receiver each, and the
    members that must wait, with why and from when they can be tried again (None: when a
    receiver has room)."""

    transfers: list[tuple[str, str, int]] = field(default_factory=list)  # member, to, call
    waiting: list[tuple[str, WaitReason, datetime | None]] = field(default_factory=list)


def plan_member_handover(
    members: Sequence[Transferable],
    receivers: Sequence[Receiver],
    *,
    now: datetime,
    first_call: int = 1,
) -> HandoverPlan:
    """Spread the members over the receivers, the one with most room first, never past a
    receiver's room or a member's two transfers in 90 days."""
    plan = HandoverPlan()
    heap = [(-r.room, i, r.id) for i, r in enumerate(receivers) if r.room > 0]
    heapq.heapify(heap)
    chosen: dict[str, list[str]] = {}
    for member in members:
        window_start = now - TRANSFER_WINDOW
        recent = sorted(t for t in member.recent if t > window_start)
        if len(recent) >= TRANSFERS_PER_WINDOW:
            free_at = recent[len(recent) - TRANSFERS_PER_WINDOW] + TRANSFER_WINDOW
            plan.waiting.append((member.member_id, WaitReason.TRANSFER_LIMIT, free_at))
            continue
        skipped: list[tuple[int, int, str]] = []
        target = None
        while heap:
            entry = heapq.heappop(heap)
            if entry[2] == member.avoid:
                skipped.append(entry)
                continue
            target = entry
            break
        for entry in skipped:
            heapq.heappush(heap, entry)
        if target is None:
            plan.waiting.append((member.member_id, WaitReason.NO_RECEIVER_ROOM, None))
            continue
        room, index, receiver_id = target
        chosen.setdefault(receiver_id, []).append(member.member_id)
        if room + 1 < 0:
            heapq.heappush(heap, (room + 1, index, receiver_id))
    call = first_call
    for receiver in receivers:
        taken = chosen.get(receiver.id, [])
        for start in range(0, len(taken), TRANSFERS_PER_CALL):
            for member_id in taken[start : start + TRANSFERS_PER_CALL]:
                plan.transfers.append((member_id, receiver.id, call))
            call += 1
    return plan


def groups_to_hand_over_today(group_ids: Sequence[str], *, handed_today: int) -> int:
    """How many of a leaving owner's groups can be handed over today (300 a day)."""
    return max(0, min(len(group_ids), GROUPS_PER_DAY - handed_today))
