"""Referral binding rules: which touch wins, the attribution window, protection, cycles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shequn.referrals.rules import (
    BindingSource,
    Touch,
    choose_touch,
    creates_cycle,
    eligible_touches,
    protection_over,
)
from shequn.tenancy.rules import BindingPolicy

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FIRST = BindingPolicy(mode="first_touch", window_days=30)
LAST = BindingPolicy(mode="last_touch", window_days=30)


def touch(sharer: str, days_ago: float, touch_id: str = "", source: str = "share_link") -> Touch:
    return Touch(sharer, source, NOW - timedelta(days=days_ago), touch_id)


def test_policy_defaults_match_the_design() -> None:
    assert BindingPolicy() == BindingPolicy(
        mode="first_touch", window_days=30, trigger="registration", protection_days=0
    )


def test_binding_sources() -> None:
    assert [s.value for s in BindingSource] == [
        "share_link",
        "qr_scene",
        "staff",
        "import",
        "admin",
    ]


def test_first_touch_picks_the_earliest_and_last_touch_the_latest() -> None:
    touches = [touch("B", 3), touch("A", 10), touch("C", 1)]
    assert choose_touch(touches, policy=FIRST, now=NOW, member_id="M") == touch("A", 10)
    assert choose_touch(touches, policy=LAST, now=NOW, member_id="M") == touch("C", 1)


def test_no_touches_binds_nobody() -> None:
    assert choose_touch([], policy=FIRST, now=NOW, member_id="M") is None
    assert choose_touch([], policy=LAST, now=NOW, member_id="M") is None


def test_window_is_inclusive_at_its_start_and_ends_now() -> None:
    on_edge = touch("A", 30)
    just_outside = Touch("B", "share_link", NOW - timedelta(days=30, microseconds=1))
    future = Touch("C", "share_link", NOW + timedelta(seconds=1))
    assert eligible_touches(
        [on_edge, just_outside, future], policy=FIRST, now=NOW, member_id="M"
    ) == [on_edge]


def test_expired_touches_do_not_count_even_under_first_touch() -> None:
    touches = [touch("OLD", 31), touch("NEW", 2)]
    assert choose_touch(touches, policy=FIRST, now=NOW, member_id="M") == touch("NEW", 2)
    assert choose_touch([touch("OLD", 31)], policy=LAST, now=NOW, member_id="M") is None


def test_window_length_comes_from_the_policy() -> None:
    week = BindingPolicy(mode="first_touch", window_days=7)
    touches = [touch("A", 8), touch("B", 7), touch("C", 6)]
    assert choose_touch(touches, policy=week, now=NOW, member_id="M") == touch("B", 7)


def test_own_touches_are_ignored() -> None:
    touches = [touch("M", 5), touch("A", 1)]
    assert choose_touch(touches, policy=FIRST, now=NOW, member_id="M") == touch("A", 1)
    assert choose_touch([touch("M", 5)], policy=LAST, now=NOW, member_id="M") is None


def test_simultaneous_touches_break_ties_by_touch_id() -> None:
    touches = [touch("B", 1, "tch_2"), touch("A", 1, "tch_1"), touch("C", 1, "tch_3")]
    assert choose_touch(touches, policy=FIRST, now=NOW, member_id="M") == touches[1]
    assert choose_touch(touches, policy=LAST, now=NOW, member_id="M") == touches[2]


def test_chosen_touch_keeps_its_source() -> None:
    chosen = choose_touch([touch("A", 1, source="qr_scene")], policy=FIRST, now=NOW, member_id="M")
    assert chosen is not None
    assert (chosen.sharer_id, chosen.source) == ("A", "qr_scene")


@pytest.mark.parametrize(
    ("policy", "bound_days_ago", "expected"),
    [
        # first touch: a binding never moves
        (BindingPolicy(mode="first_touch", protection_days=7), 100, False),
        # last touch with protection 0 = permanent
        (BindingPolicy(mode="last_touch", protection_days=0), 1_000, False),
        # last touch: inside the period, on its end, after it
        (BindingPolicy(mode="last_touch", protection_days=7), 6.99, False),
        (BindingPolicy(mode="last_touch", protection_days=7), 7, True),
        (BindingPolicy(mode="last_touch", protection_days=7), 30, True),
    ],
)
def test_protection_period(policy: BindingPolicy, bound_days_ago: float, expected: bool) -> None:
    bound_at = NOW - timedelta(days=bound_days_ago)
    assert protection_over(policy, bound_at=bound_at, now=NOW) is expected


def test_an_unbound_member_has_no_protection_to_end() -> None:
    policy = BindingPolicy(mode="last_touch", protection_days=7)
    assert protection_over(policy, bound_at=None, now=NOW) is False


@pytest.mark.parametrize(
    ("member", "lineage", "expected"),
    [
        ("M", [], False),
        ("M", ["A"], False),
        ("M", ["A", "B", "C"], False),
        ("M", ["M"], True),  # self-referral
        ("A", ["B", "A"], True),  # A→B→A
        ("A", ["D", "C", "B", "A", "R"], True),  # deep cycle, not only the two-step one
    ],
)
def test_cycle_check_covers_the_whole_lineage(
    member: str, lineage: list[str], expected: bool
) -> None:
    assert creates_cycle(member, lineage) is expected


touches_strategy = st.lists(
    st.builds(
        Touch,
        sharer_id=st.sampled_from(["A", "B", "C", "M"]),
        source=st.sampled_from(["share_link", "qr_scene"]),
        touched_at=st.integers(-3_000, 60).map(lambda h: NOW - timedelta(hours=h)),
        touch_id=st.text(alphabet="0123456789", min_size=1, max_size=4),
    ),
    max_size=12,
)


@given(touches=touches_strategy, window=st.integers(1, 120))
def test_chosen_touch_is_an_eligible_extreme(touches: list[Touch], window: int) -> None:
    first = BindingPolicy(mode="first_touch", window_days=window)
    last = BindingPolicy(mode="last_touch", window_days=window)
    eligible = eligible_touches(touches, policy=first, now=NOW, member_id="M")
    assert all(t.sharer_id != "M" for t in eligible)
    assert all(NOW - timedelta(days=window) <= t.touched_at <= NOW for t in eligible)
    assert len(eligible) == sum(
        1
        for t in touches
        if t.sharer_id != "M" and NOW - timedelta(days=window) <= t.touched_at <= NOW
    )
    chosen_first = choose_touch(touches, policy=first, now=NOW, member_id="M")
    chosen_last = choose_touch(touches, policy=last, now=NOW, member_id="M")
    if not eligible:
        assert (chosen_first, chosen_last) == (None, None)
        return
    assert chosen_first is not None
    assert chosen_last is not None
    assert chosen_first.touched_at == min(t.touched_at for t in eligible)
    assert chosen_last.touched_at == max(t.touched_at for t in eligible)

    # the order in which touches arrive does not change the choice
    def key(t: Touch | None) -> tuple[datetime, str] | None:
        return None if t is None else (t.touched_at, t.touch_id)

    shuffled = list(reversed(touches))
    assert key(choose_touch(shuffled, policy=first, now=NOW, member_id="M")) == key(chosen_first)
    assert key(choose_touch(shuffled, policy=last, now=NOW, member_id="M")) == key(chosen_last)
