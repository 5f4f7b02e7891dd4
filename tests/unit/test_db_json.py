"""The JSON the database is given is the standard library's compact JSON, whatever the value,
with aware datetimes in ISO form, and a naive datetime is refused every time it is met."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shequn.jsoncodec import NaiveDatetimeError, dumps_json

_moments = st.datetimes(
    min_value=datetime(1970, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))]),
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | st.text()
    | _moments
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4)
    ),
    max_leaves=20,
)


def _reference(value: Any) -> str:
    return json.dumps(
        value,
        ensure_ascii=False,
        separators=(",", ":"),
        default=lambda v: v.isoformat() if isinstance(v, datetime) else None,
    )


@given(_values)
def test_it_is_the_standard_librarys_compact_json(value: Any) -> None:
    assert dumps_json(value) == _reference(value)


def test_a_naive_datetime_is_refused_each_time() -> None:
    naive = [{"at": datetime(2026, 1, 1, 8, 0)}]
    for _ in range(3):
        with pytest.raises(NaiveDatetimeError, match="naive datetime"):
            dumps_json(naive)
    assert dumps_json([{"at": None}]) == '[{"at":null}]'


def test_values_that_are_not_data_are_refused() -> None:
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        dumps_json({"tags": {"a"}})
