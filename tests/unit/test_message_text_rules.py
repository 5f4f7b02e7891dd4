"""Pure rules of ingested message texts: what an activity's `text` may be, and what a crisis
alert keeps of it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shequn.community.activities.rules import MAX_TEXT, parse_activity
from shequn.community.complaints.rules import excerpt, merged
from shequn.errors import InvalidInput

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
BASE = {"external_id": "m-1", "occurred_at": "2026-11-30T01:00:00Z", "group_id": "grp_1"}


def test_a_message_carries_its_text() -> None:
    parsed = parse_activity({**BASE, "kind": "message", "text": "曝光"}, now=NOW)
    assert parsed.text == "曝光"
    assert parse_activity({**BASE, "kind": "message"}, now=NOW).text is None


@pytest.mark.parametrize(
    ("item", "code"),
    [
        ({"kind": "message", "text": "字" * (MAX_TEXT + 1)}, "activity_text_too_long"),
        ({"kind": "like", "text": "曝光"}, "activity_text_not_allowed"),
        ({"kind": "message", "text": 7}, "activity_field_invalid"),
    ],
)
def test_a_bad_text_is_refused_with_its_code(item: dict[str, object], code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_activity({**BASE, **item}, now=NOW)
    assert refused.value.code == code


def test_a_text_of_exactly_the_limit_is_taken() -> None:
    parsed = parse_activity(
        {**BASE, "kind": "reply", "text": "字" * MAX_TEXT, "staff_account_id": "stf_1"}, now=NOW
    )
    assert parsed.text == "字" * MAX_TEXT


def test_an_excerpt_is_the_first_match_with_a_little_around_it() -> None:
    assert excerpt("这是假货", ["假货"]) == "这是假货"
    assert excerpt("一二三四五六七八九十甲乙丙丁假货一二三四五六七八九十甲乙丙", ["假货"], 3) == (
        "…乙丙丁假货一二三…"
    )
    assert excerpt("没有问题", ["假货"]) == ""


def test_merged_keeps_the_latest_without_repeats() -> None:
    assert merged(["a", "b"], ["b", "c", "d"], 3) == ["b", "c", "d"]
