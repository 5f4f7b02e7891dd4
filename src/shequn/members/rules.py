"""Member rules (pure): phone normalisation and the relationship stage."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import phonenumbers

from shequn.errors import InvalidInput


@dataclass(frozen=True)
class PurchaseFacts:
    """What a member's paid orders add up to, kept on the member row."""

    paid_order_count: int  # less the fully refunded ones
    lifetime_order_count: int  # never decreases
    paid_total_fen: int
    max_order_fen: int
    first_paid_at: datetime | None
    last_paid_at: datetime | None


def facts_after_purchase(facts: PurchaseFacts, *, amount_fen: int, at: datetime) -> PurchaseFacts:
    """The facts once one more order of `amount_fen` is paid at `at`."""
    return PurchaseFacts(
        paid_order_count=facts.paid_order_count + 1,
        lifetime_order_count=facts.lifetime_order_count + 1,
        paid_total_fen=facts.paid_total_fen + amount_fen,
        max_order_fen=max(facts.max_order_fen, amount_fen),
        first_paid_at=facts.first_paid_at if facts.first_paid_at is not None else at,
        last_paid_at=at,
    )


class Stage(StrEnum):
    """客户 → 用户 → 粉丝 → 朋友 (customer → user → fan → friend)."""

    CUSTOMER = "customer"
    USER = "user"
    FAN = "fan"
    FRIEND = "friend"


@dataclass(frozen=True)
class StageFacts:
    paid_order_count: int
    referred_buyer_count: int
    group_count: int = 0
    offline_events_attended: int = 0


def derive_stage(facts: StageFacts, criteria: Mapping[str, int]) -> Stage:
    """A friend refers buyers or meets offline; a fan keeps buying or belongs to a group; a user
    has come back at least once."""
    if (
        facts.referred_buyer_count >= criteria["friend_min_referred_buyers"]
        or facts.offline_events_attended > 0
    ):
        return Stage.FRIEND
    if facts.paid_order_count >= criteria["fan_min_paid_orders"] or facts.group_count > 0:
        return Stage.FAN
    if facts.paid_order_count >= criteria["user_min_paid_orders"]:
        return Stage.USER
    return Stage.CUSTOMER


_PHONE_TEXT = re.compile(r"\+?[\d ()\-.]{3,32}")


def normalise_phone(raw: str, default_region: str = "CN") -> str:
    """Return E.164 (`+8613812345678`); mainland numbers may be given without the country code,
    with spaces, dashes or a 0086 prefix."""
    text = raw.strip()
    # Digits and separators only: the parser would read letters as keypad digits (and drop an
    # extension), turning a typo into somebody else's number.
    if not _PHONE_TEXT.fullmatch(text):
        raise InvalidInput("phone_invalid", phone=raw)
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        raise InvalidInput("phone_invalid", phone=raw) from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInput("phone_invalid", phone=raw)
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def clean_external_id(external_id: str | None) -> str | None:
    """An id from the brand's other systems (a WeChat openid, a CRM key), trimmed."""
    if external_id is None:
        return None
    clean = external_id.strip()
    if not clean or len(clean) > 80:
        raise InvalidInput("external_id_invalid")
    return clean


def normalise_tag(raw: str) -> str:
    tag = " ".join(raw.split())
    if not tag or len(tag) > 40:
        raise InvalidInput("tag_invalid", tag=raw)
    return tag
