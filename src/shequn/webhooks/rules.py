"""Webhook policy: what an endpoint may be, how a delivery is signed, when a failed one is
tried again, and which deliveries may go out now.

Signatures follow the scheme receivers know from Stripe: the header
`Shequn-Signature: t=<unix seconds>,v1=<hex>` carries an HMAC-SHA256, keyed with the whole
secret (`whsec_…`, as UTF-8), of `f"{t}.{body}"`. While a rotated secret's grace period lasts,
the header carries one `v1` per valid secret, the current one first; a receiver accepts the
delivery if any of them matches and `t` is recent.

Order: the deliveries of one subject (an order, a member…) to one endpoint go out in the order
of their events. A delivery waits while an older one of the same subject to the same endpoint
is pending (not yet delivered, or waiting for a retry) or dead; a dead one holds the younger
ones back until an operator replays it (it is then sent again, first) or skips it. A receiver
therefore never sees a subject's events out of order, and a subject whose receiver keeps
refusing one event does not skip past it unnoticed.

Reach: an endpoint is a host on the public internet. A URL naming a private, loopback,
link-local or otherwise non-global address (or `localhost`) is refused when it is registered,
and the worker resolves the host before each attempt and sends only to a public address it
resolved (a name that resolves, or comes to resolve, inward is refused then). A deployment
whose receivers live on its own network says so (SHEQUN_WEBHOOK_ALLOW_PRIVATE_HOSTS).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from shequn.errors import InvalidInput
from shequn.events.types import EVENT_TYPES

SIGNATURE_HEADER = "Shequn-Signature"
SIGNATURE_VERSION = "v1"
SECRET_PREFIX = "whsec_"
# How old a signed timestamp a receiver should accept (replayed captures are refused after).
SIGNATURE_TOLERANCE_SECONDS = 300
ANY_EVENT_TYPE = "*"
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 200
MAX_EVENT_TYPES = len(EVENT_TYPES)
# How long the previous secret still signs after a rotation, unless the owner says otherwise.
DEFAULT_ROTATION_GRACE = timedelta(hours=24)
MAX_ROTATION_GRACE = timedelta(days=7)


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its first attempt or a retry
    DELIVERED = "delivered"  # the endpoint answered 2xx
    DEAD = "dead"  # every attempt failed; waits for an operator
    SKIPPED = "skipped"  # an operator gave up on it


# The statuses of an older delivery that hold a younger one of the same subject back.
HOLDS_BACK = frozenset({DeliveryStatus.PENDING, DeliveryStatus.DEAD})
# What an operator may replay (a pending delivery goes out anyway) and skip.
REPLAYABLE = frozenset({DeliveryStatus.DELIVERED, DeliveryStatus.DEAD, DeliveryStatus.SKIPPED})
SKIPPABLE = frozenset({DeliveryStatus.PENDING, DeliveryStatus.DEAD})


# --- endpoints ------------------------------------------------------------------------------


def validate_url(url: str) -> str:
    """An absolute http(s) URL with a host, without spaces or a fragment."""
    clean = url.strip()
    if not clean or len(clean) > MAX_URL_LENGTH or any(c.isspace() for c in clean):
        raise InvalidInput("webhook_url_invalid")
    try:
        parts = urlsplit(clean)
        port = parts.port  # refuses a port that is not a number in range
    except ValueError:
        raise InvalidInput("webhook_url_invalid") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment or port == 0:
        raise InvalidInput("webhook_url_invalid")
    return clean


LOCAL_NAMES = ("localhost", "localhost.localdomain")


def is_public_address(address: str) -> bool:
    """Whether an IP address (v4 or v6, as text) is one on the public internet: not private,
    loopback, link-local, shared (CGNAT), reserved, unspecified or multicast; an IPv4 address
    written as IPv6 (`::ffff:127.0.0.1`) is judged as the IPv4 one."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is not None:
            ip = inner
    return ip.is_global and not ip.is_multicast


def _numeric_host(host: str) -> bool:
    """A host written as a number (`2130706433`, `0x7f.1`, `127.1`): an address in a legacy
    form that resolvers read as IPv4 (no top-level domain is all digits)."""
    labels = host.rstrip(".").split(".")
    return all(
        label.isdigit()
        or (label.startswith("0x") and all(c in "0123456789abcdef" for c in label[2:]))
        for label in labels
    )


def check_reachable_host(url: str, *, allow_private: bool) -> None:
    """Refuse an endpoint URL (already valid, `validate_url`) whose host is a non-public
    address or a local name, unless the deployment allows private hosts. A host name is not
    resolved here: the worker checks what it resolves to before every attempt."""
    if allow_private:
        return
    host = (urlsplit(url).hostname or "").lower()
    name = host.rstrip(".")
    if name in LOCAL_NAMES or name.endswith(".localhost"):
        raise InvalidInput("webhook_url_private", host=host[:64])
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        if _numeric_host(host):
            raise InvalidInput("webhook_url_private", host=host[:64]) from None
        return
    if not is_public_address(host):
        raise InvalidInput("webhook_url_private", host=host[:64])


def refused_addresses(addresses: Iterable[str]) -> list[str]:
    """The addresses a host resolved to that a delivery may not be sent to."""
    return [a for a in addresses if not is_public_address(a)]


def validate_event_types(event_types: Sequence[str]) -> list[str]:
    """The subscribed types, sorted and without repeats: known types, or "*" alone for every
    type (so that no event ever matches one endpoint twice)."""
    if not event_types:
        raise InvalidInput("webhook_event_types_empty")
    chosen = sorted(set(event_types))
    if ANY_EVENT_TYPE in chosen:
        if len(chosen) > 1:
            raise InvalidInput("webhook_event_types_wildcard_alone")
        return chosen
    for event_type in chosen:
        if event_type not in EVENT_TYPES:
            raise InvalidInput("webhook_event_type_unknown", type=event_type[:64])
    return chosen


def validate_description(description: str) -> str:
    clean = description.strip()
    if len(clean) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInput("webhook_description_too_long", max=MAX_DESCRIPTION_LENGTH)
    return clean


def validate_grace(hours: int) -> timedelta:
    """How long a rotated secret still signs: 0 to 168 hours."""
    most = int(MAX_ROTATION_GRACE.total_seconds()) // 3600
    if not 0 <= hours <= most:
        raise InvalidInput("webhook_rotation_grace_invalid", max=most)
    return timedelta(hours=hours)


# --- secrets and signatures -----------------------------------------------------------------


def signing_secret(server_key: str, *, tenant_id: str, endpoint_id: str, salt: str) -> str:
    """The endpoint's secret, derived from the server's key and the endpoint's salt: the
    database holds only the salt, so a copy of the database cannot sign, and the worker
    derives the same secret whenever it sends."""
    message = f"shequn.webhook-secret\x00{tenant_id}\x00{endpoint_id}\x00{salt}".encode()
    digest = hmac.new(server_key.encode(), message, hashlib.sha256).digest()
    return SECRET_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signed_payload(timestamp: int, body: bytes) -> bytes:
    return str(timestamp).encode() + b"." + body


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `f"{timestamp}.{body}"` keyed with the whole secret."""
    return hmac.new(secret.encode(), signed_payload(timestamp, body), hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """`t=<timestamp>,v1=<hex>` with one `v1` per secret, in the order given."""
    signed = ",".join(f"{SIGNATURE_VERSION}={signature(s, timestamp, body)}" for s in secrets)
    return f"t={timestamp},{signed}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    *,
    now: int,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """Whether `header` signs `body` with `secret` at a time within `tolerance` seconds of
    `now` (unix seconds): what a receiver checks."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == SIGNATURE_VERSION:
            candidates.append(value)
    if timestamp is None or not candidates or abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, c) for c in candidates)


# --- retries ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: after the n-th failure in a row the next attempt waits
    `first_delay * factor**(n-1)`, capped at `max_delay`, less a random share of up to
    `jitter` of it (so that endpoints that failed together are not retried together). After
    `max_attempts` failures in a row the delivery is dead. The defaults try 16 times over
    about a day (at most 29 hours)."""

    first_delay: timedelta = timedelta(seconds=10)
    factor: int = 2
    max_delay: timedelta = timedelta(hours=6)
    jitter: float = 0.5
    max_attempts: int = 16

    def full_delay(self, failures: int) -> timedelta:
        """The delay after `failures` failures in a row, before jitter."""
        if failures < 1:
            return timedelta(0)
        seconds = self.first_delay.total_seconds() * float(self.factor) ** min(failures - 1, 60)
        return timedelta(seconds=min(seconds, self.max_delay.total_seconds()))

    def delay(self, failures: int, draw: float) -> timedelta:
        """The wait after `failures` failures in a row; `draw` is uniform in [0, 1)."""
        full = self.full_delay(failures)
        return full - full * (self.jitter * min(max(draw, 0.0), 1.0))

    def gives_up(self, failures: int) -> bool:
        return failures >= self.max_attempts


def succeeded(status_code: int | None) -> bool:
    """An attempt succeeded when the endpoint answered 2xx (a redirect is not followed)."""
    return status_code is not None and 200 <= status_code < 300


# --- what may go out now ----------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryState:
    """What the ordering rule looks at in a delivery."""

    id: str
    endpoint_id: str
    subject_type: str
    subject_id: str
    event_id: str
    status: DeliveryStatus
    next_attempt_at: datetime
    claimed_until: datetime | None = None


def is_claimable(delivery: DeliveryState, now: datetime) -> bool:
    """Pending, due, and not held by a worker whose claim still runs."""
    return (
        delivery.status == DeliveryStatus.PENDING
        and delivery.next_attempt_at <= now
        and (delivery.claimed_until is None or delivery.claimed_until <= now)
    )


def holds_back(older: DeliveryState, younger: DeliveryState) -> bool:
    """Whether `older` keeps `younger` waiting: same endpoint and subject, an earlier event,
    and not yet delivered or skipped."""
    return (
        older.endpoint_id == younger.endpoint_id
        and older.subject_type == younger.subject_type
        and older.subject_id == younger.subject_id
        and older.event_id < younger.event_id
        and older.status in HOLDS_BACK
    )


def due_deliveries(deliveries: Iterable[DeliveryState], now: datetime) -> list[str]:
    """The ids of the deliveries that may be sent now, oldest event first (the rule the
    worker's claim applies in SQL)."""
    every = list(deliveries)
    due = [
        d
        for d in every
        if is_claimable(d, now) and not any(holds_back(other, d) for other in every)
    ]
    return [d.id for d in sorted(due, key=lambda d: (d.next_attempt_at, d.event_id))]


def clipped_error(text: str, limit: int = 300) -> str:
    """An error text short enough for the attempts table."""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"
