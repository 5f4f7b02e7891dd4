"""Member rules: phone normalisation, tag normalisation, the relationship stage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shequn.errors import InvalidInput
from shequn.members.rules import Stage, StageFacts, derive_stage, normalise_phone, normalise_tag
from shequn.tenancy.rules import DEFAULT_STAGE_CRITERIA

# --- phone -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "13812345678",
        "+8613812345678",
        "8613812345678",
        "+86 138 1234 5678",
        "138 1234 5678",
        "138-1234-5678",
        "+86-138-1234-5678",
        "0086 138 1234 5678",
        "  13812345678  ",
        "138 1234 5678\n",
        "１３８１２３４５６７８",  # full-width digits from a Chinese IME
    ],
)
def test_mainland_mobile_forms_normalise_to_e164(raw: str) -> None:
    assert normalise_phone(raw) == "+8613812345678"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("010-12345678", "+861012345678"),  # a Beijing landline is a valid number too
        ("(021) 6123 4567", "+862161234567"),
        ("+1 650 253 0000", "+16502530000"),  # foreign numbers keep their own country code
        ("+852 6123 4567", "+85261234567"),
    ],
)
def test_other_valid_numbers_normalise_to_e164(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "123",
        "abc",
        "1381234567",  # 10 digits
        "138123456789",  # 12 digits
        "23812345678",  # 11 digits but no mobile prefix
        "+86 12345678901",
        "00861381234567",
        "1381234567a",
        "138\x0012345678",
    ],
)
def test_invalid_phones_are_refused_with_the_raw_value(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalise_phone(raw)
    assert (caught.value.code, caught.value.params) == ("phone_invalid", {"phone": raw})
    assert caught.value.status == 422


def test_default_region_decides_numbers_without_country_code() -> None:
    assert normalise_phone("6123 4567", default_region="HK") == "+85261234567"
    with pytest.raises(InvalidInput):
        normalise_phone("6123 4567")  # not a mainland number


@pytest.mark.parametrize("raw", ["138-1234-ABCD", "1-800-FLOWERS", "13812345678 ext. 5"])
def test_letters_in_a_phone_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput):
        normalise_phone(raw)


@given(st.integers(0, 99_999_999), st.sampled_from(["", " ", "-"]))
def test_any_139_mobile_normalises_whatever_the_separator(tail: int, sep: str) -> None:
    digits = f"139{tail:08d}"
    spaced = sep.join([digits[:3], digits[3:7], digits[7:]])
    assert normalise_phone(spaced) == f"+86{digits}"
    assert normalise_phone(f"+86{sep}{spaced}") == f"+86{digits}"
    # normalising is idempotent
    assert normalise_phone(normalise_phone(spaced)) == f"+86{digits}"


# --- tags ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("vip", "vip"),
        ("  vip  ", "vip"),
        ("a  b\tc", "a b c"),
        ("高 净值\n客户", "高 净值 客户"),
        ("VIP", "VIP"),  # case is kept
        ("x" * 40, "x" * 40),
    ],
)
def test_tags_collapse_whitespace(raw: str, expected: str) -> None:
    assert normalise_tag(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "\t\n", "x" * 41, " " + "好" * 41])
def test_empty_or_long_tags_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalise_tag(raw)
    assert (caught.value.code, caught.value.params) == ("tag_invalid", {"tag": raw})


@given(st.text(max_size=60))
def test_tag_normalisation_is_idempotent(raw: str) -> None:
    try:
        tag = normalise_tag(raw)
    except InvalidInput:
        return
    assert normalise_tag(tag) == tag
    assert tag == tag.strip()
    assert 1 <= len(tag) <= 40
    assert "  " not in tag


# --- relationship stage ----------------------------------------------------------------------

CRITERIA = dict(DEFAULT_STAGE_CRITERIA)


def test_default_stage_criteria() -> None:
    assert CRITERIA == {
        "user_min_paid_orders": 2,
        "fan_min_paid_orders": 3,
        "friend_min_referred_buyers": 1,
    }


@pytest.mark.parametrize(
    ("facts", "stage"),
    [
        (StageFacts(paid_order_count=0, referred_buyer_count=0), Stage.CUSTOMER),
        (StageFacts(paid_order_count=1, referred_buyer_count=0), Stage.CUSTOMER),
        (StageFacts(paid_order_count=2, referred_buyer_count=0), Stage.USER),
        (StageFacts(paid_order_count=3, referred_buyer_count=0), Stage.FAN),
        (StageFacts(paid_order_count=50, referred_buyer_count=0), Stage.FAN),
        (StageFacts(paid_order_count=0, referred_buyer_count=0, group_count=1), Stage.FAN),
        (StageFacts(paid_order_count=0, referred_buyer_count=1), Stage.FRIEND),
        (StageFacts(paid_order_count=5, referred_buyer_count=3), Stage.FRIEND),
        (
            StageFacts(paid_order_count=0, referred_buyer_count=0, offline_events_attended=1),
            Stage.FRIEND,
        ),
    ],
)
def test_stage_from_facts_with_default_criteria(facts: StageFacts, stage: Stage) -> None:
    assert derive_stage(facts, CRITERIA) is stage


def test_stage_follows_configured_criteria() -> None:
    strict = {"user_min_paid_orders": 3, "fan_min_paid_orders": 6, "friend_min_referred_buyers": 4}
    stages = [
        derive_stage(StageFacts(paid_order_count=n, referred_buyer_count=0), strict)
        for n in range(8)
    ]
    assert stages == [Stage.CUSTOMER] * 3 + [Stage.USER] * 3 + [Stage.FAN] * 2
    assert derive_stage(StageFacts(paid_order_count=9, referred_buyer_count=3), strict) is Stage.FAN
    assert (
        derive_stage(StageFacts(paid_order_count=0, referred_buyer_count=4), strict) is Stage.FRIEND
    )


def test_stage_values_are_the_api_strings() -> None:
    assert [s.value for s in Stage] == ["customer", "user", "fan", "friend"]


ORDER = list(Stage)


@given(
    orders=st.integers(0, 20),
    referred=st.integers(0, 5),
    groups=st.integers(0, 3),
    offline=st.integers(0, 3),
    more_orders=st.integers(0, 5),
    more_referred=st.integers(0, 3),
)
def test_more_facts_never_lower_the_stage(
    orders: int, referred: int, groups: int, offline: int, more_orders: int, more_referred: int
) -> None:
    before = derive_stage(StageFacts(orders, referred, groups, offline), CRITERIA)
    after = derive_stage(
        StageFacts(orders + more_orders, referred + more_referred, groups, offline), CRITERIA
    )
    assert ORDER.index(after) >= ORDER.index(before)
