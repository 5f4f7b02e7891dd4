"""Catalog rules: sku, name, category, price and ladder-role validation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shequn.catalog.rules import (
    LadderRole,
    check_price,
    clean_category,
    clean_product_name,
    clean_sku,
    parse_ladder_role,
)
from shequn.errors import InvalidInput
from shequn.money import MAX_AMOUNT_FEN


@pytest.mark.parametrize("sku", ["A", "CORE-1", "bait_01", "p.2026.v2", "0", "A" * 64])
def test_valid_skus_are_kept_as_given(sku: str) -> None:
    assert clean_sku(sku) == sku


@pytest.mark.parametrize(
    "sku",
    ["", "-A", ".A", "_A", "A B", " A", "A ", "A" * 65, "商品1", "A/B", "A\x00", "\nA"],
)
def test_invalid_skus_are_refused(sku: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        clean_sku(sku)
    assert (caught.value.code, caught.value.params) == ("sku_invalid", {"sku": sku})


@pytest.mark.parametrize("sku", ["CORE-1\n", "A\n"])
def test_a_trailing_newline_is_not_part_of_a_valid_sku(sku: str) -> None:
    with pytest.raises(InvalidInput):
        clean_sku(sku)


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True))
def test_every_sku_of_the_documented_shape_is_accepted(sku: str) -> None:
    assert clean_sku(sku) == sku


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("精华液 30ml", "精华液 30ml"), ("  a \t b  ", "a b"), ("x" * 120, "x" * 120)],
)
def test_product_names_collapse_whitespace(raw: str, expected: str) -> None:
    assert clean_product_name(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "x" * 121])
def test_empty_or_long_product_names_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        clean_product_name(raw)
    assert caught.value.code == "product_name_invalid"


def test_categories() -> None:
    assert clean_category(None) is None
    assert clean_category(" 护肤  品 ") == "护肤 品"
    assert clean_category("c" * 40) == "c" * 40
    for bad in ("", "  ", "c" * 41):
        with pytest.raises(InvalidInput) as caught:
            clean_category(bad)
        assert caught.value.code == "category_invalid"


@pytest.mark.parametrize("value", [0, 1, 9_990, MAX_AMOUNT_FEN])
def test_prices_in_range_are_accepted(value: int) -> None:
    assert check_price(value) == value


@pytest.mark.parametrize(
    "value",
    [-1, MAX_AMOUNT_FEN + 1, 99.9, 100.0, True, False, "100", None],
)
def test_bad_prices_are_refused_naming_the_field(value: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_price(value, "member_price_fen")
    assert (caught.value.code, caught.value.params) == (
        "amount_invalid",
        {"field": "member_price_fen"},
    )


def test_price_field_defaults_to_price_fen() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_price(-5)
    assert caught.value.params == {"field": "price_fen"}


@pytest.mark.parametrize(
    ("raw", "role"),
    [("bait", LadderRole.BAIT), ("core", LadderRole.CORE), ("partner", LadderRole.PARTNER)],
)
def test_ladder_roles(raw: str, role: LadderRole) -> None:
    assert parse_ladder_role(raw) is role


@pytest.mark.parametrize("raw", ["", "Core", "CORE", "agent", " core"])
def test_unknown_ladder_roles_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_ladder_role(raw)
    assert (caught.value.code, caught.value.params) == ("ladder_role_invalid", {"ladder_role": raw})


def test_the_ladder_has_exactly_three_rungs() -> None:
    assert [r.value for r in LadderRole] == ["bait", "core", "partner"]
