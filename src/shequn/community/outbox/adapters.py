"""Channel adapters: how a queued message leaves the system.

`ChannelAdapter` is what the dispatcher calls for an automated adapter; the operator task list
is not automated (a person sends the message and marks the task). `WeComGateway` is what a
WeChat Work adapter provides to the rest of the system: contact-me codes that carry a `state`
(at most 30 characters, returned with the add event), the welcome message sent within 20
seconds of the add, group join codes that open a new group when one is full
(`auto_create_room`, `room_base_name`), and customer transfers between staff (100 per call).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx2

from shequn import __version__
from shequn.community.outbox.rules import Adapter
from shequn.jsoncodec import dumps_json
from shequn.webhooks.rules import SIGNATURE_HEADER, signature_header
from shequn.webhooks.worker import Resolver, checked_target, resolve_host

USER_AGENT = f"Shequn-Outbox/{__version__}"
ERROR_KEPT = 200


@dataclass(frozen=True)
class Outgoing:
    """A message as an adapter sends it."""

    tenant_id: str
    id: str
    kind: str
    body: str
    staff_account_id: str | None
    member_id: str | None
    group_id: str | None
    due_at: datetime | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class Sent:
    """What an attempt came to: delivered, or the error to keep."""

    ok: bool
    error: str | None = None


class ChannelAdapter(Protocol):
    adapter: Adapter

    def send(self, message: Outgoing, *, now: datetime) -> Sent: ...


def message_body(message: Outgoing) -> bytes:
    """The JSON a receiver gets (the bytes that are signed)."""
    return dumps_json(
        {
            "id": message.id,
            "tenant_id": message.tenant_id,
            "kind": message.kind,
            "body": message.body,
            "staff_account_id": message.staff_account_id,
            "member_id": message.member_id,
            "group_id": message.group_id,
            "due_at": message.due_at,
            "payload": message.payload,
        }
    ).encode()


class SignedWebhookAdapter:
    """POSTs each message to the channel's URL with `Shequn-Signature: t=…,v1=…` (HMAC-SHA256
    of `f"{t}.{body}"` with the channel's secret, as the event webhooks sign)."""

    adapter = Adapter.SIGNED_WEBHOOK

    def __init__(
        self,
        url: str,
        secret: str,
        http: httpx2.Client,
        *,
        allow_private: bool = False,
        resolve: Resolver = resolve_host,
    ) -> None:
        self.url = url
        self.secret = secret
        self.http = http
        self.allow_private = allow_private
        self.resolve = resolve

    def send(self, message: Outgoing, *, now: datetime) -> Sent:
        body = message_body(message)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature_header([self.secret], int(now.timestamp()), body),
            "Shequn-Message-Id": message.id,
        }
        try:
            # Only to a public address (as the event webhooks), unless the deployment allows
            # private hosts: a channel must not reach into the deployment's own network.
            target = checked_target(
                self.url, allow_private=self.allow_private, resolve=self.resolve
            )
            if isinstance(target, str):
                return Sent(False, target[:ERROR_KEPT])
            answer = self.http.post(
                target.url,
                content=body,
                headers={**headers, **target.headers},
                extensions=target.extensions,
            )
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            return Sent(False, f"{type(exc).__name__}: {exc}"[:ERROR_KEPT])
        if 200 <= answer.status_code < 300:
            return Sent(True)
        return Sent(False, f"HTTP {answer.status_code}"[:ERROR_KEPT])


@dataclass(frozen=True)
class TransferResult:
    external_userid: str
    accepted: bool
    reason: str | None = None  # e.g. the receiver is full


class WeComGateway(Protocol):
    """What a WeChat Work adapter provides (see the module's docstring)."""

    def contact_me_code(self, *, staff_userid: str, state: str) -> str: ...

    def send_welcome(self, *, welcome_code: str, body: str) -> None: ...

    def group_join_code(self, *, chat_ids: Sequence[str], room_base_name: str) -> str: ...

    def transfer_customers(
        self, *, from_userid: str, to_userid: str, external_userids: Sequence[str]
    ) -> list[TransferResult]: ...
