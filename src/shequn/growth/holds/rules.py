"""Fraud checks over identity fingerprints (pure).

A fingerprint is a salted hash of a phone number, device id, address or payment account, so
that the checks compare them without keeping the values (and a deleted member's fingerprints
still recognise it coming back)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from enum import StrEnum

from shequn.errors import InvalidInput

KINDS = ("phone", "device", "address", "payment")


class Reason(StrEnum):
    SELF_REFERRAL = "self_referral"  # the buyer shares a phone, address or device with its referrer
    LINKED_ACCOUNTS = "linked_accounts"  # ... a device, address or payment account with its chain
    VELOCITY = "velocity"  # too many registrations or orders from one device or address an hour
    RE_REGISTRATION = "re_registration"  # a deleted member come back for a new-customer reward


class HoldStatus(StrEnum):
    HELD = "held"
    RELEASED = "released"
    CANCELLED = "cancelled"


def _normal(kind: str, value: str) -> str:
    clean = " ".join(value.split())
    if kind == "address":
        clean = clean.casefold().replace(" ", "")
    return clean


def fingerprint(tenant_id: str, kind: str, value: str) -> str:
    """The fingerprint of an identity value within a tenant."""
    if kind not in KINDS:
        raise ValueError(kind)
    digest = hashlib.sha256(f"shequn:{tenant_id}:{kind}:{_normal(kind, value)}".encode())
    return digest.hexdigest()[:40]


def clean_signal_value(kind: str, value: str | None) -> str | None:
    if value is None:
        return None
    clean = _normal(kind, value)
    if not 1 <= len(clean) <= 200:
        raise InvalidInput("signal_value_invalid", field=kind)
    return clean


@dataclass(frozen=True)
class Identity:
    """A member's fingerprints by kind."""

    member_id: str
    prints: Mapping[str, Set[str]] = field(default_factory=dict)

    def of(self, kind: str) -> Set[str]:
        return self.prints.get(kind, frozenset())

    def shares(self, other: Identity, kinds: tuple[str, ...]) -> bool:
        return any(self.of(k) & other.of(k) for k in kinds)


def pair_reasons(buyer: Identity, beneficiary: Identity, *, level: int) -> list[Reason]:
    """Why a reward to `beneficiary` for `buyer`'s order is suspect: at level 1 (the referrer
    or the sharer) a shared phone, address or device is self-referral, a shared payment
    account a linked account; deeper in the chain any shared device, address or payment
    account links them."""
    if buyer.member_id == beneficiary.member_id:
        return [Reason.SELF_REFERRAL]
    reasons = []
    if level <= 1 and buyer.shares(beneficiary, ("phone", "address", "device")):
        reasons.append(Reason.SELF_REFERRAL)
    linked_kinds = ("payment",) if level <= 1 else ("device", "address", "payment")
    if buyer.shares(beneficiary, linked_kinds):
        reasons.append(Reason.LINKED_ACCOUNTS)
    return reasons


def too_fast(count_last_hour: int, limit: int) -> bool:
    """Whether the registrations and orders seen from one device or address in the last hour
    reach the tenant's limit."""
    return count_last_hour >= limit


def hold_reasons(
    buyer: Identity,
    beneficiary: Identity,
    *,
    level: int,
    velocity_count: int,
    velocity_limit: int,
    came_back: bool,
    new_customer_reward: bool,
) -> list[Reason]:
    """Every reason to hold a commission or reward, in a stable order (none: pay it)."""
    reasons = pair_reasons(buyer, beneficiary, level=level)
    if too_fast(velocity_count, velocity_limit):
        reasons.append(Reason.VELOCITY)
    if came_back and new_customer_reward:
        reasons.append(Reason.RE_REGISTRATION)
    return sorted(set(reasons), key=list(Reason).index)


def clean_decision_reason(reason: str) -> str:
    clean = " ".join(reason.split())
    if not 1 <= len(clean) <= 500:
        raise InvalidInput("hold_reason_required")
    return clean
