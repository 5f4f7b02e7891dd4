"""Catalog rules (pure)."""

from __future__ import annotations

import re
from enum import StrEnum

from shequn.errors import InvalidInput
from shequn.money import MAX_AMOUNT_FEN


class LadderRole(StrEnum):
    """The product ladder: 引流/试用 → 会员 → 合伙人礼包."""

    BAIT = "bait"
    CORE = "core"
    PARTNER = "partner"


_SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def clean_sku(raw: str) -> str:
    if not _SKU.fullmatch(raw):
        raise InvalidInput("sku_invalid", sku=raw)
    return raw


def clean_product_name(raw: str) -> str:
    name = " ".join(raw.split())
    if not name or len(name) > 120:
        raise InvalidInput("product_name_invalid")
    return name


def clean_category(raw: str | None) -> str | None:
    if raw is None:
        return None
    category = " ".join(raw.split())
    if not category or len(category) > 40:
        raise InvalidInput("category_invalid")
    return category


def check_price(value: int, field: str = "price_fen") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_AMOUNT_FEN:
        raise InvalidInput("amount_invalid", field=field)
    return value


def parse_ladder_role(raw: str) -> LadderRole:
    try:
        return LadderRole(raw)
    except ValueError:
        raise InvalidInput("ladder_role_invalid", ladder_role=raw) from None
