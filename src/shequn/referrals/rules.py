"""Referral binding policy (pure): which touch wins, when a binding may move, cycles."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shequn.tenancy.rules import BindingPolicy


class BindingSource(StrEnum):
    SHARE_LINK = "share_link"
    QR_SCENE = "qr_scene"
    STAFF = "staff"
    IMPORT = "import"
    ADMIN = "admin"


@dataclass(frozen=True)
class Touch:
    sharer_id: str
    source: str
    touched_at: datetime
    touch_id: str = ""


def eligible_touches(
    touches: Iterable[Touch], *, policy: BindingPolicy, now: datetime, member_id: str
) -> list[Touch]:
    """Touches inside the attribution window that did not come from the member itself."""
    earliest = now - timedelta(days=policy.window_days)
    return [t for t in touches if earliest <= t.touched_at <= now and t.sharer_id != member_id]


def choose_touch(
    touches: Iterable[Touch], *, policy: BindingPolicy, now: datetime, member_id: str
) -> Touch | None:
    """First touch wins under `first_touch`, the latest under `last_touch`."""
    candidates = eligible_touches(touches, policy=policy, now=now, member_id=member_id)
    if not candidates:
        return None
    ordered = sorted(candidates, key=lambda t: (t.touched_at, t.touch_id))
    return ordered[0] if policy.mode == "first_touch" else ordered[-1]


def protection_over(policy: BindingPolicy, *, bound_at: datetime | None, now: datetime) -> bool:
    """Whether an existing binding may be moved by a newer touch (never when permanent)."""
    if policy.mode != "last_touch" or policy.protection_days == 0 or bound_at is None:
        return False
    return now >= bound_at + timedelta(days=policy.protection_days)


def creates_cycle(member_id: str, referrer_lineage: Sequence[str]) -> bool:
    """`referrer_lineage` is the referrer and all of its ancestors; binding the member under any
    of them would make the member its own ancestor."""
    return member_id in referrer_lineage
