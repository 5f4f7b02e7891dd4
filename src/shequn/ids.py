"""Time-ordered, prefixed identifiers (ULID body), generated in the application."""

from __future__ import annotations

import os
import threading
import time

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case, in ASCII order
# Every pair of base32 digits, so that an id is 13 lookups instead of 26 (a paid order makes a
# dozen ids; this is the cheap way to make them in pure Python).
_PAIRS = [a + b for a in ALPHABET for b in ALPHABET]
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def encode_body(ms: int, rand: int) -> str:
    """26 base32 digits: 10 for the millisecond timestamp (50 bits), 16 for 80 random bits."""
    v = (ms << 80) | (rand & ((1 << 80) - 1))
    p = _PAIRS
    return (
        p[v >> 120 & 1023]
        + p[v >> 110 & 1023]
        + p[v >> 100 & 1023]
        + p[v >> 90 & 1023]
        + p[v >> 80 & 1023]
        + p[v >> 70 & 1023]
        + p[v >> 60 & 1023]
        + p[v >> 50 & 1023]
        + p[v >> 40 & 1023]
        + p[v >> 30 & 1023]
        + p[v >> 20 & 1023]
        + p[v >> 10 & 1023]
        + p[v & 1023]
    )


def new_id(prefix: str) -> str:
    """Return `prefix_` + 26 characters; ids made later in a process sort later (within one
    millisecond the random part counts up)."""
    global _last_ms, _last_rand
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _last_rand += 1
        else:
            _last_rand = int.from_bytes(os.urandom(10), "big") >> 1
        _last_ms = ms
        rand = _last_rand
    return f"{prefix}_{encode_body(ms, rand)}"


_BODY = frozenset(ALPHABET)


def is_id(value: str, prefix: str) -> bool:
    """Whether `value` has the shape of an id made with `prefix` (a keyset cursor, say)."""
    head, sep, body = value.partition("_")
    return sep == "_" and head == prefix and len(body) == 26 and set(body) <= _BODY


def checked_cursor(after: str | None, prefix: str) -> str | None:
    """A keyset cursor (`after`), refused unless it is an id of the listed kind."""
    if after is not None and not is_id(after, prefix):
        from shequn.errors import InvalidInput

        raise InvalidInput("cursor_invalid", field="after")
    return after


PREFIXES = {
    "tenant": "tn",
    "api_key": "key",
    "member": "mem",
    "product": "prd",
    "tier": "tier",
    "order": "ord",
    "order_line": "ol",
    "payment": "pay",
    "refund": "rfd",
    "account": "acc",
    "journal": "jtx",
    "posting": "pst",
    "plan": "plan",
    "rule": "rule",
    "commission": "com",
    "withdrawal": "wd",
    "payout": "po",
    "event": "evt",
    "touch": "tch",
    "binding": "bnd",
}
