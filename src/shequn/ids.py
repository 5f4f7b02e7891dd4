"""Time-ordered, prefixed identifiers (ULID body), generated in the application."""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """Return `prefix_` + 26 characters; ids made later in a process sort later."""
    global _last_ms, _last_rand
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _last_rand += 1
        else:
            _last_rand = int.from_bytes(os.urandom(10), "big") >> 1
        _last_ms = ms
        rand = _last_rand & ((1 << 80) - 1)
    return f"{prefix}_{_encode(ms, 10)}{_encode(rand, 16)}"


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
