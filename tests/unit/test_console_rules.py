"""The console's pure rules: roles, lockout, logins and passwords, sessions, one-time codes,
and amounts and rates as people type them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shequn.console.rules import (
    LOCKOUT,
    Capability,
    ConsoleRole,
    SessionKind,
    can,
    check_password,
    clean_code,
    clean_login,
    code_digest,
    is_locked,
    minutes_until,
    needs_touch,
    parse_role,
    resend_wait_seconds,
    sees_only_assigned_members,
    session_alive,
)
from shequn.entrypoints.web.forms import Form, bp_text, fen_text, percent_to_bp, yuan_to_fen
from shequn.errors import InvalidInput

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_each_role_may_do_what_it_says() -> None:
    assert {c for c in Capability if can(ConsoleRole.OWNER, c)} == set(Capability)
    assert not can(ConsoleRole.OPERATOR, Capability.ADMINISTER)
    assert can(ConsoleRole.OPERATOR, Capability.OPERATE)
    assert {c for c in Capability if can(ConsoleRole.STAFF, c)} == {
        Capability.MEMBERS,
        Capability.TAG,
    }
    assert {c for c in Capability if can(ConsoleRole.READONLY, c)} == {
        Capability.VIEW,
        Capability.MEMBERS,
    }
    assert [r for r in ConsoleRole if sees_only_assigned_members(r)] == [ConsoleRole.STAFF]
    with pytest.raises(InvalidInput) as refused:
        parse_role("admin")
    assert refused.value.params == {"role": "admin", "field": "role"}


def test_the_lock_starts_at_the_fifth_failure_and_ends_after_fifteen_minutes() -> None:
    assert [LOCKOUT.locked_until(n, NOW) for n in range(5)] == [None] * 5
    assert LOCKOUT.locked_until(5, NOW) == NOW + timedelta(minutes=15)
    assert [LOCKOUT.attempts_left(n) for n in (0, 4, 5, 9)] == [5, 1, 0, 0]
    until = NOW + timedelta(minutes=15)
    assert is_locked(until, NOW)
    assert not is_locked(until, until)
    assert not is_locked(None, NOW)
    assert minutes_until(until, NOW) == 15
    assert minutes_until(NOW + timedelta(seconds=10), NOW) == 1


def test_logins_and_passwords() -> None:
    assert clean_login("  Owner@Brand.CN ") == "owner@brand.cn"
    for bad in ("ab", "has space", "x" * 81, "-lead", "中文名"):
        with pytest.raises(InvalidInput):
            clean_login(bad)
    check_password("correct-horse-battery")
    for bad, code in (
        ("short", "password_length"),
        ("x" * 129, "password_length"),
        ("aaaaaaaaaaaa", "password_too_simple"),
        ("owner@brand", "password_too_simple"),
    ):
        with pytest.raises(InvalidInput) as refused:
            check_password(bad, login="owner@brand")
        assert refused.value.code == code


def test_sessions_end_when_idle_or_old_and_are_touched_now_and_then() -> None:
    kind = SessionKind.CONSOLE
    assert session_alive(kind, created_at=NOW, last_seen_at=NOW, now=NOW + timedelta(hours=11))
    assert not session_alive(kind, created_at=NOW, last_seen_at=NOW, now=NOW + timedelta(hours=12))
    assert not session_alive(
        kind, created_at=NOW, last_seen_at=NOW + timedelta(days=7), now=NOW + timedelta(days=7)
    )
    assert not needs_touch(kind, last_seen_at=NOW, now=NOW + timedelta(minutes=4))
    assert needs_touch(kind, last_seen_at=NOW, now=NOW + timedelta(minutes=5))
    assert session_alive(
        SessionKind.PORTAL, created_at=NOW, last_seen_at=NOW, now=NOW + timedelta(days=29)
    )


def test_codes_are_six_digits_hashed_with_their_row_and_resent_after_a_minute() -> None:
    assert clean_code(" 12 34 56 ") == "123456"
    for bad in ("12345", "1234567", "12345a"):
        with pytest.raises(InvalidInput):
            clean_code(bad)
    assert code_digest("otc_a", "123456") != code_digest("otc_b", "123456")
    assert resend_wait_seconds(None, NOW) == 0
    assert resend_wait_seconds(NOW, NOW + timedelta(seconds=15)) == 45
    assert resend_wait_seconds(NOW, NOW + timedelta(seconds=60)) == 0


@given(st.integers(min_value=0, max_value=10**13))
def test_an_amount_shown_in_a_field_reads_back_as_the_same_fen(fen: int) -> None:
    assert yuan_to_fen(fen_text(fen)) == fen


@given(st.integers(min_value=0, max_value=10_000))
def test_a_rate_shown_in_a_field_reads_back_as_the_same_bp(bp: int) -> None:
    assert percent_to_bp(bp_text(bp)) == bp


def test_amounts_and_rates_are_read_as_typed() -> None:
    assert [yuan_to_fen(t) for t in ("88", "88.5", "¥1,288.05", "0.01")] == [8800, 8850, 128805, 1]
    assert [yuan_to_fen(t) for t in ("12.345", "-1", "1e3", "", "abc")] == [None] * 5
    assert [percent_to_bp(t) for t in ("10", "12.5", "0.01", "7%")] == [1000, 1250, 1, 700]
    assert [percent_to_bp(t) for t in ("1.234", "-3", "x")] == [None] * 3


def test_a_form_keeps_what_was_typed_and_says_what_is_wrong_beside_each_field() -> None:
    form = Form.submitted(
        [("name", "  精华  液 "), ("price", "12.345"), ("rate", "150"), ("qty", "x")]
    )
    assert form.text("name", required=True) == "精华 液"
    assert form.yuan("price", required=True) is None
    assert form.percent("rate", max_bp=10_000) is None
    assert form.integer("qty", low=1, high=9) is None
    assert form.text("missing", required=True) is None
    assert set(form.errors) == {"price", "rate", "qty", "missing"}
    assert form.get("price") == "12.345"
