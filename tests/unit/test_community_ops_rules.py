"""The pure rules of community operations II: recurrence in a time zone, seats, streaks with
make-up days and freezes, growth criteria, leaderboard windows, cadence and budget, drift,
the reply-time SLA in working hours, and crisis detection."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from shequn.community.cadence.rules import (
    Cadence,
    budget_breach,
    check_schedule,
    in_quiet_hours,
    parse_steps,
    posts_per_month,
    refuse_breach,
    step_times,
)
from shequn.community.complaints.rules import (
    ComplaintStatus,
    Trigger,
    clustered,
    sensitive_words,
    timers,
    transition,
    triggers,
)
from shequn.community.gatherings.rules import (
    RsvpStatus,
    occurrence_open_at,
    occurrences,
    parse_rule,
    seat_for,
    to_promote,
)
from shequn.community.health.rules import (
    AlertKind,
    Health,
    MemberActivity,
    alerts_for,
    breaches_sla,
    drifting,
    top_share_bp,
    working_minutes,
)
from shequn.community.leaders.rules import Period, ranked, window_start
from shequn.community.path.rules import (
    Criterion,
    default_stages,
    next_step,
    parse_stages,
    stage_of,
)
from shequn.community.programs.rules import (
    CheckinKind,
    Limits,
    StreakMode,
    check_day,
    day_of,
    eliminate,
    parse_milestones,
    progress,
    reached,
)
from shequn.errors import Conflict, InvalidInput

SHANGHAI = "Asia/Shanghai"
BERLIN = "Europe/Berlin"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- recurrence ----------------------------------------------------------------------------


def test_tue_thu_classes_at_20_00_in_shanghai_for_december() -> None:
    # 20:00 in Shanghai is 12:00 UTC; December 2026 starts on a Tuesday
    found = occurrences(
        "FREQ=WEEKLY;BYDAY=TU,TH",
        starts_at=utc(2026, 12, 1, 12),
        time_zone=SHANGHAI,
        start=utc(2026, 11, 30, 16),  # local midnight of 1 December
        end=utc(2026, 12, 31, 16),
    )
    assert [d.astimezone(UTC).day for d in found] == [1, 3, 8, 10, 15, 17, 22, 24, 29, 31]
    assert {(d.hour, d.minute) for d in found} == {(12, 0)}


def test_occurrences_keep_local_wall_time_across_berlin_dst_change() -> None:
    # Sundays 19:00 in Berlin: UTC+1 before 29 March 2026, UTC+2 after
    found = occurrences(
        "FREQ=WEEKLY;BYDAY=SU",
        starts_at=utc(2026, 3, 15, 18),
        time_zone=BERLIN,
        start=utc(2026, 3, 15),
        end=utc(2026, 4, 6),
    )
    assert found == [
        utc(2026, 3, 15, 18),
        utc(2026, 3, 22, 18),
        utc(2026, 3, 29, 17),
        utc(2026, 4, 5, 17),
    ]


def test_a_wall_time_the_change_skips_is_placed_after_it() -> None:
    # 02:30 on 29 March 2026 does not exist in Berlin; the occurrence lands at 03:30 local
    found = occurrences(
        "FREQ=DAILY;COUNT=3",
        starts_at=utc(2026, 3, 28, 1, 30),
        time_zone=BERLIN,
        start=utc(2026, 3, 28),
        end=utc(2026, 3, 31),
    )
    assert found == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]


@pytest.mark.parametrize(
    "rule",
    [
        "",
        "FREQ=HOURLY",
        "FREQ=MINUTELY;INTERVAL=1",
        "DTSTART:20260101T000000\nRRULE:FREQ=DAILY",
        "nonsense",
        "FREQ=WEEKLY;BYDAY=XX",
        # rules that can never occur (the recurrence library would look until the year 9999)
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=MONTHLY;BYDAY=6MO",
        "FREQ=DAILY;BYHOUR=20;BYSETPOS=2",
        "FREQ=YEARLY;BYWEEKNO=60",
        "FREQ=DAILY;INTERVAL=0",
    ],
)
def test_rules_that_are_not_days_weeks_months_or_years_are_refused(rule: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_rule(rule, starts_at=utc(2026, 1, 1), time_zone=SHANGHAI)
    assert refused.value.code == "rrule_invalid"


def test_an_occurrence_range_is_bounded() -> None:
    with pytest.raises(InvalidInput) as refused:
        occurrences(
            "FREQ=DAILY",
            starts_at=utc(2026, 1, 1),
            time_zone=SHANGHAI,
            start=utc(2026, 1, 1),
            end=utc(2027, 6, 1),
        )
    assert refused.value.code == "occurrence_range_too_long"


def test_seats_then_waitlist_then_promotion_in_order_of_asking() -> None:
    assert seat_for(2, 1) is RsvpStatus.CONFIRMED
    assert seat_for(2, 2) is RsvpStatus.WAITLISTED
    assert seat_for(None, 10_000) is RsvpStatus.CONFIRMED
    assert to_promote(2, 1, ["a", "b", "c"]) == ["a"]
    assert to_promote(2, 2, ["a"]) == []


def test_the_attendance_window_opens_before_and_closes_after() -> None:
    at = utc(2026, 12, 1, 12)
    assert occurrence_open_at([at], now=at - timedelta(minutes=30), duration_minutes=60) == at
    assert occurrence_open_at([at], now=at + timedelta(minutes=120), duration_minutes=60) == at
    with pytest.raises(Conflict):
        occurrence_open_at([at], now=at + timedelta(minutes=121), duration_minutes=60)


# --- streaks -------------------------------------------------------------------------------


def _covered_with_makeups(
    missed: set[int], limits: Limits
) -> tuple[set[int], int, list[tuple[str, dict[str, object]]]]:
    """Every day but `missed` checked in, then each missed day made up while the limit lets
    it: (covered days, make-ups used, refusals)."""
    covered = {d for d in range(1, limits.window_days + 1) if d not in missed}
    used = 0
    refused: list[tuple[str, dict[str, object]]] = []
    for day in sorted(missed):
        try:
            check_day(
                CheckinKind.MAKEUP,
                day=day,
                today=limits.window_days,
                limits=limits,
                covered=covered,
                frozen=set(),
                makeups_used=used,
                freezes_used=0,
            )
        except Conflict as exc:
            refused.append((exc.code, exc.params))
            continue
        covered.add(day)
        used += 1
    return covered, used, refused


@pytest.mark.parametrize("mode", list(StreakMode))
def test_21_days_complete_with_2_missed_days_made_up_not_with_3(mode: StreakMode) -> None:
    limits = Limits(21, 21, mode, makeup_limit=2, freeze_limit=0)
    two, used, refused = _covered_with_makeups({5, 12}, limits)
    assert (used, refused) == (2, [])
    assert progress(limits, covered=two, frozen=set(), today=21).completed
    three, used, refused = _covered_with_makeups({5, 12, 18}, limits)
    assert (used, refused) == (2, [("makeup_limit_reached", {"used": 2, "limit": 2})])
    state = progress(limits, covered=three, frozen=set(), today=22)
    assert not state.completed
    assert state.missed == (18,)
    assert state.covered == 20


def test_a_freeze_bridges_a_consecutive_streak_but_adds_no_day() -> None:
    limits = Limits(5, 6, StreakMode.CONSECUTIVE, makeup_limit=0, freeze_limit=1)
    covered = {1, 2, 3, 5, 6}
    assert not progress(limits, covered=covered, frozen=set(), today=6).completed
    frozen = progress(limits, covered=covered, frozen={4}, today=6)
    assert frozen.completed
    assert (frozen.covered, frozen.best_streak, frozen.missed) == (5, 5, ())


def test_cumulative_counts_covered_days_in_any_order_and_freezes_keep_the_streak() -> None:
    limits = Limits(5, 7, StreakMode.CUMULATIVE, makeup_limit=0, freeze_limit=1)
    state = progress(limits, covered={1, 3, 5, 6, 7}, frozen={4}, today=7)
    assert state.completed
    assert state.missed == (2,)
    assert state.best_streak == 4  # 3, (4 frozen), 5, 6, 7
    assert not progress(limits, covered={1, 3, 5, 7}, frozen=set(), today=7).completed


def test_make_up_and_freeze_limits_and_days_are_checked_with_the_figure() -> None:
    limits = Limits(21, 21, StreakMode.CONSECUTIVE, makeup_limit=1, freeze_limit=1)
    common = {"limits": limits, "covered": {1}, "frozen": set(), "freezes_used": 0}
    with pytest.raises(Conflict) as future:
        check_day(CheckinKind.MAKEUP, day=5, today=5, makeups_used=0, **common)  # type: ignore[arg-type]
    assert (future.value.code, future.value.params) == (
        "makeup_day_invalid",
        {"day": 5, "today": 5},
    )
    with pytest.raises(Conflict) as taken:
        check_day(CheckinKind.MAKEUP, day=1, today=5, makeups_used=0, **common)  # type: ignore[arg-type]
    assert taken.value.code == "checkin_day_taken"
    with pytest.raises(Conflict) as over:
        check_day(
            CheckinKind.FREEZE,
            day=2,
            today=5,
            limits=limits,
            covered={1},
            frozen=set(),
            makeups_used=0,
            freezes_used=1,
        )
    assert over.value.params == {"used": 1, "limit": 1}
    with pytest.raises(Conflict) as ended:
        check_day(CheckinKind.CHECKIN, day=None, today=22, makeups_used=0, **common)  # type: ignore[arg-type]
    assert ended.value.params == {"day": 22, "days": 21}
    assert day_of(date(2026, 12, 1), date(2026, 12, 21)) == 21


def test_milestones_passed_and_elimination() -> None:
    stones = parse_milestones([{"day": 21, "points": 100}, {"day": 7, "tag": "7天"}], 21)
    assert [m.day for m in reached(stones, 6, 7)] == [7]
    assert [m.day for m in reached(stones, 7, 21)] == [21]
    assert eliminate({"a": 10, "b": 3, "c": 3}, ["a", "b", "c"], 1) == ["b"]
    with pytest.raises(Conflict):
        eliminate({"a": 1}, ["a"], 1)


# --- growth path ---------------------------------------------------------------------------


def test_default_path_is_walked_in_order() -> None:
    stages = default_stages()
    assert [s.name for s in stages] == ["进入", "学习", "实践", "实战", "提升", "分享", "自我实现"]
    facts = {"communities": 1, "events_attended": 2, "first_sale": 1}
    assert stage_of(stages, facts) == 2  # 实践 (a challenge) not yet; 实战 does not count
    step = next_step(stages, facts)
    assert step is not None
    assert step.name == "实践"
    assert [(c.fact, have, gap) for c, have, gap in step.missing] == [
        ("challenges_completed", 0, 1)
    ]
    assert stage_of(stages, {}) == 0


def test_criteria_compare_and_measure_the_gap() -> None:
    assert Criterion("paid_total_fen", ">=", 100_000).gap({"paid_total_fen": 40_000}) == 60_000
    assert Criterion("talks_given", ">", 1).gap({"talks_given": 1}) == 1
    assert Criterion("messages", "=", 0).met({})
    with pytest.raises(InvalidInput) as unknown:
        parse_stages([{"name": "x", "criteria": [{"fact": "zodiac", "op": ">=", "value": 1}]}])
    assert unknown.value.code == "growth_fact_unknown"
    with pytest.raises(InvalidInput):
        parse_stages([{"name": "a"}, {"name": "a"}])


# --- leaderboards --------------------------------------------------------------------------


def test_windows_start_at_local_midnight() -> None:
    now = utc(2026, 12, 4, 20)  # 04:00 on 5 December in Shanghai
    assert window_start(Period.WEEK, now=now, time_zone=SHANGHAI) == utc(2026, 11, 28, 16)
    assert window_start(Period.MONTH, now=now, time_zone=SHANGHAI) == utc(2026, 11, 5, 16)
    assert window_start(Period.ALL, now=now, time_zone=SHANGHAI) is None


def test_equal_scores_share_a_rank_and_zero_is_left_out() -> None:
    assert ranked([("a", 5), ("b", 9), ("c", 5), ("d", 0), ("e", 1)], 10) == [
        (1, "b", 9),
        (2, "a", 5),
        (2, "c", 5),
        (4, "e", 1),
    ]


# --- cadence and budget --------------------------------------------------------------------

LIMITS = Cadence(
    posts_per_day=2, min_gap_minutes=120, quiet_start=22 * 60, quiet_end=8 * 60, monthly_budget=30
)


def test_quiet_hours_may_span_midnight() -> None:
    assert in_quiet_hours(23 * 60, LIMITS)
    assert in_quiet_hours(7 * 60 + 59, LIMITS)
    assert not in_quiet_hours(8 * 60, LIMITS)
    assert not in_quiet_hours(21 * 60 + 59, LIMITS)


def test_a_post_in_quiet_hours_is_refused_with_the_local_time() -> None:
    with pytest.raises(Conflict) as refused:
        check_schedule([utc(2026, 12, 5, 15)], existing=[], cadence=LIMITS, time_zone=SHANGHAI)
    assert refused.value.code == "schedule_in_quiet_hours"
    assert refused.value.params == {"at": "2026-12-05 23:00", "start": "22:00", "end": "08:00"}


def test_posts_per_day_and_minimum_gap_count_what_is_scheduled() -> None:
    nine, noon, three = utc(2026, 12, 5, 1), utc(2026, 12, 5, 4), utc(2026, 12, 5, 7)
    check_schedule([noon], existing=[nine], cadence=LIMITS, time_zone=SHANGHAI)
    with pytest.raises(Conflict) as crowded:
        check_schedule([three], existing=[nine, noon], cadence=LIMITS, time_zone=SHANGHAI)
    assert crowded.value.params == {"day": "2026-12-05", "count": 3, "limit": 2}
    with pytest.raises(Conflict) as close:
        check_schedule(
            [nine + timedelta(minutes=90)], existing=[nine], cadence=LIMITS, time_zone=SHANGHAI
        )
    assert close.value.params == {"minutes": 90, "limit": 120}


def test_the_monthly_budget_refuses_with_the_figure() -> None:
    needed = posts_per_month([utc(2026, 12, 5, 4), utc(2026, 12, 31, 17)], SHANGHAI)
    assert needed == {"2026-12": 1, "2027-01": 1}  # 01:00 on 1 January in Shanghai
    assert budget_breach(needed, {"2026-12": ("m", 29)}, 30) is None
    breach = budget_breach(needed, {"2026-12": ("m", 30)}, 30)
    assert breach is not None
    assert (breach.month, breach.would_be) == ("2026-12", 31)
    with pytest.raises(Conflict) as refused:
        refuse_breach(breach, 150)
    assert refused.value.params == {
        "month": "2026-12",
        "would_be": 31,
        "budget": 30,
        "members": 150,
    }


def test_sop_steps_are_placed_at_local_days_and_minutes() -> None:
    steps = parse_steps(
        [{"day": 3, "minute": 1200, "body": "首课"}, {"day": 0, "minute": 600, "body": "欢迎"}]
    )
    times = step_times(steps, starts_on="2026-12-07", time_zone=SHANGHAI)
    assert [t.astimezone(UTC) for t in times] == [utc(2026, 12, 7, 2), utc(2026, 12, 10, 12)]


# --- group health --------------------------------------------------------------------------

NOW = utc(2026, 12, 4, 12)


def test_drifting_is_the_top_quarter_silent_7_to_28_days() -> None:
    members = [
        MemberActivity("top-quiet", 50, NOW - timedelta(days=10)),
        MemberActivity("top-active", 40, NOW - timedelta(days=1)),
        MemberActivity("low-quiet", 2, NOW - timedelta(days=10)),
        *[MemberActivity(f"m{i}", 1, NOW - timedelta(days=1)) for i in range(5)],
    ]
    assert drifting(members, NOW) == ["top-quiet"]
    gone = [MemberActivity("top-gone", 50, NOW - timedelta(days=28)), MemberActivity("x", 1, NOW)]
    assert drifting(gone, NOW) == []


def test_top_five_share() -> None:
    assert top_share_bp([10, 10, 10, 10, 10, 50]) == 10_000 * 90 // 100
    assert top_share_bp([]) == 0


def test_reply_sla_counts_only_working_minutes() -> None:
    # 20:50 Shanghai on Friday, working 09:00–21:00: 10 minutes that evening, then from 09:00
    asked = utc(2026, 12, 4, 12, 50)
    hours = {"time_zone": SHANGHAI, "work_start": 540, "work_end": 1260}
    assert working_minutes(asked, utc(2026, 12, 5, 1, 15), **hours) == 10 + 15
    assert not breaches_sla(asked, utc(2026, 12, 5, 1, 15), now=NOW, sla_minutes=30, **hours)
    assert breaches_sla(asked, None, now=utc(2026, 12, 5, 1, 25), sla_minutes=30, **hours)


def test_alerts_on_low_activity_oversize_and_slow_replies() -> None:
    assert alerts_for(Health(100, 150, 10, 80, 3, 7_000, 0)) == [AlertKind.LOW_ACTIVITY]
    assert alerts_for(Health(160, 150, 100, 0, 0, 1_000, 2)) == [
        AlertKind.OVERSIZE,
        AlertKind.SLOW_REPLIES,
    ]


# --- complaints ----------------------------------------------------------------------------


def test_three_complaints_on_a_product_within_24_hours_cluster() -> None:
    times = [NOW - timedelta(hours=30), NOW - timedelta(hours=20), NOW - timedelta(hours=1)]
    assert not clustered(times, NOW)
    assert clustered([*times, NOW], NOW)
    assert triggers(product_times=[*times, NOW], group_size=10, text="", now=NOW) == [
        Trigger.PRODUCT_CLUSTER
    ]


def test_a_large_group_or_sensitive_words_make_one_complaint_a_crisis() -> None:
    assert triggers(product_times=[NOW], group_size=120, text="", now=NOW) == [Trigger.LARGE_GROUP]
    assert sensitive_words("再不退款我就去曝光，说你们卖假货") == ["曝光", "假货"]
    assert triggers(product_times=[], group_size=0, text="要维权", now=NOW) == [
        Trigger.SENSITIVE_WORDS
    ]


def test_ticket_timers_and_states() -> None:
    due = timers(NOW)
    assert (due.respond_by, due.resolve_by) == (NOW + timedelta(hours=2), NOW + timedelta(hours=48))
    assert transition(ComplaintStatus.OPEN, ComplaintStatus.RESOLVED) is ComplaintStatus.RESOLVED
    with pytest.raises(Conflict):
        transition(ComplaintStatus.RESOLVED, ComplaintStatus.RESOLVED)
