"""The outbox (pure): what a message to send is, which adapter takes it, and the states a
message goes through.

An operator task (the default adapter, for personal WeChat accounts that cannot be automated)
waits for a person who sends it by hand and marks it done, or skips it. A message for a
signed webhook is sent by the dispatcher, and tried again later when the receiver fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shequn.errors import Conflict, InvalidInput

MAX_BODY = 4_000
MAX_DEDUPE_KEY = 120
MAX_KIND = 40
MAX_ATTEMPTS = 8
# WeChat Work wants a welcome message within 20 seconds of the add event.
WELCOME_DEADLINE = timedelta(seconds=20)


class Adapter(StrEnum):
    OPERATOR_TASK = "operator_task"
    SIGNED_WEBHOOK = "signed_webhook"
    WECOM = "wecom"  # WeChat Work's API: taken by its adapter where one is configured


class MessageStatus(StrEnum):
    PENDING = "pending"  # waiting for the operator, or for the dispatcher
    SENT = "sent"  # an automated adapter delivered it
    DONE = "done"  # the operator sent it by hand
    SKIPPED = "skipped"  # the operator chose not to send it
    FAILED = "failed"  # every attempt failed


_OPERATOR = {
    ("done", MessageStatus.PENDING): MessageStatus.DONE,
    ("skip", MessageStatus.PENDING): MessageStatus.SKIPPED,
    ("skip", MessageStatus.FAILED): MessageStatus.SKIPPED,
}


def operator_transition(current: MessageStatus, action: str, adapter: Adapter) -> MessageStatus:
    """An operator marks a task done or skipped; only tasks can be marked done by hand (a
    message the dispatcher sends is skipped, never done)."""
    if action == "done" and adapter is not Adapter.OPERATOR_TASK:
        raise Conflict("outbox_not_a_task", adapter=adapter.value)
    target = _OPERATOR.get((action, current))
    if target is None:
        raise Conflict("outbox_transition_invalid", status=current.value, action=action)
    return target


@dataclass(frozen=True)
class Message:
    """A message one capability wants sent. `dedupe_key` names it: a second message with the
    same key for the same tenant is the same message (it is kept once). `adapter` is chosen
    from the recipient (`route_message`) when not given."""

    dedupe_key: str
    kind: str
    body: str
    staff_account_id: str | None = None
    member_id: str | None = None
    group_id: str | None = None
    adapter: Adapter | None = None
    channel_id: str | None = None
    due_at: datetime | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


def check_message(message: Message) -> Message:
    if not message.dedupe_key or len(message.dedupe_key) > MAX_DEDUPE_KEY:
        raise InvalidInput("outbox_dedupe_key_invalid")
    if not message.kind or len(message.kind) > MAX_KIND:
        raise InvalidInput("outbox_kind_invalid")
    if not message.body.strip() or len(message.body) > MAX_BODY:
        raise InvalidInput("outbox_body_invalid", max=MAX_BODY)
    if message.adapter is Adapter.SIGNED_WEBHOOK and message.channel_id is None:
        raise InvalidInput("outbox_channel_missing")
    return message


def route_message(staff_channel: str | None, channel_id: str | None) -> Adapter:
    """The adapter of a message to a staff account: a channel the account is bound to (a
    signed webhook) takes it; anything else is a task for the account's operator, WeCom
    accounts included until a WeCom adapter is configured."""
    if channel_id is not None:
        return Adapter.SIGNED_WEBHOOK
    return Adapter.OPERATOR_TASK


def retry_delay(attempts: int) -> timedelta:
    """How long a failed send waits before the next attempt: 30 s, 1 min, 2 min … 1 h."""
    return min(timedelta(seconds=30 * 2 ** max(0, attempts - 1)), timedelta(hours=1))
