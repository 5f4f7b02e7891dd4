"""How a portal one-time code reaches the member: a delivery function, replaceable (by the
community's outbox, or a test that reads the code). The default one logs the message for the
operator, as a personal WeChat account's messages are an operator's task anyway."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("shequn.portal")


@dataclass(frozen=True)
class CodeMessage:
    tenant_id: str
    member_id: str
    phone: str
    code: str
    minutes: int  # how long the code stays good


CodeDelivery = Callable[[CodeMessage], None]


def log_delivery(message: CodeMessage) -> None:
    log.warning(
        "portal login code for member %s (%s): %s, good for %d minutes",
        message.member_id,
        message.phone,
        message.code,
        message.minutes,
    )


_lock = threading.Lock()
_delivery: list[CodeDelivery] = [log_delivery]


def set_code_delivery(delivery: CodeDelivery) -> CodeDelivery:
    """Send codes through `delivery` from now on; returns the one used before."""
    with _lock:
        before = _delivery[0]
        _delivery[0] = delivery
    return before


def deliver_code(message: CodeMessage) -> None:
    with _lock:
        delivery = _delivery[0]
    delivery(message)
