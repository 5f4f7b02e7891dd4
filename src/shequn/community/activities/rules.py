"""Activity ingestion (pure): what an activity from an outside channel may say, and how a
batch is cleaned before it is written.

Outside platforms deliver late, twice and out of order. An activity is known by its external
event id (per source): a second delivery of the same id is the same activity, counted once;
every count and every "first" and "last" is taken over the activities' own times (event
time), never over the order they arrived in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shequn.community.rituals.rules import ACTIVITY_FACTS
from shequn.errors import InvalidInput

MAX_BATCH = 1_000
MAX_EXTERNAL_ID = 80
MAX_STATE = 30  # WeChat Work's `state` of a contact-me code
# An activity dated later than this past the server's time is refused (a clock gone wrong).
MAX_CLOCK_SKEW = timedelta(minutes=10)
MAX_VALUE = 10**9
# A message's text, read for sensitive words at ingestion and never stored.
MAX_TEXT = 2_000


class ActivityKind(StrEnum):
    MESSAGE = "message"
    LIKE = "like"
    VISIT = "visit"
    CHECK_IN = "check_in"
    ADD = "add"  # a staff account added the member (its `state` comes back with it)
    REPLY = "reply"  # a staff account answered; `value` is the seconds it took
    FEEDBACK = "feedback"


# The name of each kind's count among a member's facts (those badge criteria test).
FACT_NAMES: Mapping[ActivityKind, str] = {
    ActivityKind(kind): name for name, kind in ACTIVITY_FACTS.items()
}
# Kinds in which one member engages with another (`target_member_id`): they tell a split
# which members belong together.
INTERACTIONS = frozenset({ActivityKind.MESSAGE, ActivityKind.LIKE, ActivityKind.REPLY})
# Kinds that are messages someone wrote, which may carry their `text`.
TEXT_KINDS = frozenset({ActivityKind.MESSAGE, ActivityKind.REPLY, ActivityKind.FEEDBACK})


@dataclass(frozen=True)
class ActivityIn:
    """One activity as a channel reported it."""

    external_id: str
    kind: ActivityKind
    occurred_at: datetime
    member_id: str | None = None
    target_member_id: str | None = None
    group_id: str | None = None
    venue_id: str | None = None
    staff_account_id: str | None = None
    state: str | None = None
    value: int | None = None
    text: str | None = None  # a message's words, scanned at ingestion, not kept


def _text(item: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = item.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidInput("activity_field_invalid", field=name)
    return value.strip()


def _time(value: Any, now: datetime) -> datetime:
    if isinstance(value, datetime):
        at = value
    elif isinstance(value, str):
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput("activity_field_invalid", field="occurred_at") from None
    else:
        raise InvalidInput("activity_field_invalid", field="occurred_at")
    if at.tzinfo is None:
        raise InvalidInput("activity_time_naive")
    if at > now + MAX_CLOCK_SKEW:
        raise InvalidInput("activity_in_future", external_id="")
    return at


FIELDS = frozenset(
    {
        "external_id",
        "kind",
        "occurred_at",
        "member_id",
        "target_member_id",
        "group_id",
        "venue_id",
        "staff_account_id",
        "state",
        "value",
        "text",
    }
)


def parse_activity(item: Mapping[str, Any], *, now: datetime) -> ActivityIn:
    """One activity from its JSON form (as the webhook receives it), refused whole if any
    field is wrong."""
    if not isinstance(item, Mapping) or not set(item) <= FIELDS:
        raise InvalidInput("activity_invalid")
    external_id = _text(item, "external_id", MAX_EXTERNAL_ID)
    if external_id is None:
        raise InvalidInput("activity_field_invalid", field="external_id")
    kind_value = item.get("kind")
    try:
        kind = ActivityKind(str(kind_value))
    except ValueError:
        raise InvalidInput("activity_kind_invalid", kind=str(kind_value)[:40]) from None
    value = item.get("value")
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_VALUE
    ):
        raise InvalidInput("activity_field_invalid", field="value")
    activity = ActivityIn(
        external_id=external_id,
        kind=kind,
        occurred_at=_time(item.get("occurred_at"), now),
        member_id=_text(item, "member_id", 40),
        target_member_id=_text(item, "target_member_id", 40),
        group_id=_text(item, "group_id", 40),
        venue_id=_text(item, "venue_id", 40),
        staff_account_id=_text(item, "staff_account_id", 40),
        state=_text(item, "state", MAX_STATE),
        value=value,
        text=_message_text(item.get("text")),
    )
    return checked(activity, now=now)


def _message_text(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("activity_field_invalid", field="text")
    return value


def checked(activity: ActivityIn, *, now: datetime) -> ActivityIn:
    """What every activity must say, however it arrived."""
    if activity.occurred_at.tzinfo is None:
        raise InvalidInput("activity_time_naive")
    if activity.occurred_at > now + MAX_CLOCK_SKEW:
        raise InvalidInput("activity_in_future", external_id=activity.external_id)
    if activity.member_id is None and activity.group_id is None and activity.venue_id is None:
        raise InvalidInput("activity_subject_missing", external_id=activity.external_id)
    if activity.kind is ActivityKind.ADD and (
        activity.member_id is None or activity.staff_account_id is None
    ):
        raise InvalidInput("activity_add_incomplete", external_id=activity.external_id)
    if activity.kind is ActivityKind.REPLY and activity.staff_account_id is None:
        raise InvalidInput("activity_reply_incomplete", external_id=activity.external_id)
    if activity.state is not None and len(activity.state) > MAX_STATE:
        raise InvalidInput("activity_field_invalid", field="state")
    if activity.text is not None:
        if len(activity.text) > MAX_TEXT:
            raise InvalidInput(
                "activity_text_too_long", external_id=activity.external_id, max=MAX_TEXT
            )
        if activity.kind not in TEXT_KINDS:
            raise InvalidInput(
                "activity_text_not_allowed",
                external_id=activity.external_id,
                kind=activity.kind.value,
            )
    return activity


def distinct_in_batch(items: Sequence[ActivityIn]) -> list[ActivityIn]:
    """The batch with each external id once (the first delivery of it wins), in event-time
    order (ties by external id), the order in which they are written."""
    seen: dict[str, ActivityIn] = {}
    for item in items:
        seen.setdefault(item.external_id, item)
    return sorted(seen.values(), key=lambda a: (a.occurred_at, a.external_id))
