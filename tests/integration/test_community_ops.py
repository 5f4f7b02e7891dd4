"""Community operations II on SQLite and PostgreSQL: calendar events with RSVPs, reminders
and attendance; check-in programs with make-up days and their certificate; competitions;
the growth path; leaderboards; SOPs, cadence and the message budget; the copy library; group
health; complaints and crisis."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from shequn.clock import ManualClock
from shequn.community.activities.rules import ActivityIn, ActivityKind
from shequn.community.activities.service import record_activities
from shequn.community.cadence import service as cadence
from shequn.community.cadence.tables import message_budgets, scheduled_posts
from shequn.community.complaints import service as complaints
from shequn.community.founding import create_community
from shequn.community.gatherings import service as gatherings
from shequn.community.groups import placement
from shequn.community.health import service as health
from shequn.community.leaders import service as leaders
from shequn.community.outbox import service as outbox
from shequn.community.path import service as path
from shequn.community.programs import service as programs
from shequn.community.rituals import certificates, chronicle
from shequn.community.staff import service as staff
from shequn.community.tables import outbox_messages
from shequn.context import Ctx
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import list_events
from shequn.flows import community_rewards
from shequn.flows.tiers import create_tier
from shequn.growth.points.service import member_points
from shequn.members.service import get_member
from tests import factories as f

SECRET = "test-deployment-secret"
# Monday 30 November 2026, 10:00 in Shanghai
START = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


@pytest.fixture
def ops(ctx: Ctx, clock: ManualClock) -> Ctx:
    clock.set(START)
    return ctx


def _community(ctx: Ctx, n: int) -> tuple[str, str, list[str]]:
    community = create_community(ctx, name=f"文案营 {ctx.tenant_id[-6:]}", size_class=150)
    members = [f.member(ctx, f"学员{i}") for i in range(n)]
    group_id = ""
    for m in members:
        placed, _ = placement.join_community(ctx, community_id=community["id"], member_id=m)
        group_id = placed["group_id"]
    return community["id"], group_id, members


def _count(ctx: Ctx, table: Any) -> int:
    with ctx.db.read() as tx:
        return int(
            tx.execute(
                select(func.count()).select_from(table).where(table.c.tenant_id == ctx.tenant_id)
            ).scalar_one()
        )


# --- gatherings ----------------------------------------------------------------------------


def _classes(ctx: Ctx, **extra: Any) -> dict[str, Any]:
    return gatherings.create_event(
        ctx,
        title="精英班",
        kind="class",
        rrule="FREQ=WEEKLY;BYDAY=TU,TH",
        starts_at=datetime(2026, 12, 1, 12, 0, tzinfo=UTC),  # 20:00 in Shanghai
        **extra,
    )


def test_a_tue_thu_series_in_shanghai_yields_the_month_exactly(ops: Ctx) -> None:
    event = _classes(ops)
    month = gatherings.event_occurrences(
        ops,
        event_id=event["id"],
        start=datetime(2026, 11, 30, 16, tzinfo=UTC),
        end=datetime(2026, 12, 31, 16, tzinfo=UTC),
    )
    assert event["time_zone"] == "Asia/Shanghai"
    local = [i["starts_at"].astimezone(UTC) + timedelta(hours=8) for i in month["items"]]
    assert [(d.day, d.hour, d.minute) for d in local] == [
        (day, 20, 0) for day in (1, 3, 8, 10, 15, 17, 22, 24, 29, 31)
    ]
    assert {d.strftime("%a") for d in local} == {"Tue", "Thu"}


def test_rsvps_beyond_capacity_wait_and_are_promoted_when_a_seat_frees(ops: Ctx) -> None:
    event = _classes(ops, capacity=2)
    at = datetime(2026, 12, 1, 12, tzinfo=UTC)
    a, b, c = (f.member(ops, n) for n in ("甲", "乙", "丙"))
    first, _ = gatherings.rsvp(ops, event_id=event["id"], member_id=a, occurrence_at=at)
    gatherings.rsvp(ops, event_id=event["id"], member_id=b, occurrence_at=at)
    third, _ = gatherings.rsvp(ops, event_id=event["id"], member_id=c, occurrence_at=at)
    assert (first["status"], third["status"], third["waitlist_position"]) == (
        "confirmed",
        "waitlisted",
        1,
    )
    again, replayed = gatherings.rsvp(ops, event_id=event["id"], member_id=c, occurrence_at=at)
    assert replayed
    assert again["status"] == "waitlisted"

    freed, _ = gatherings.rsvp(
        ops, event_id=event["id"], member_id=a, occurrence_at=at, cancel=True
    )
    assert (freed["status"], freed["promoted"]) == ("cancelled", [c])
    seats = gatherings.event_occurrences(
        ops, event_id=event["id"], start=at, end=at + timedelta(hours=1)
    )
    assert seats["items"][0] | {} == {
        "starts_at": at,
        "ends_at": at + timedelta(hours=1),
        "confirmed": 2,
        "waitlisted": 0,
        "seats_left": 0,
        "attended": 0,
    }
    told = outbox.outbox_page(ops)["items"]
    assert [(m["kind"], m["member_id"]) for m in told] == [("rsvp_promoted", c)]
    assert "精英班" in told[0]["body"]
    assert "2026-12-01 20:00" in told[0]["body"]


def test_attendance_by_code_awards_points_once(ops: Ctx, clock: ManualClock) -> None:
    event = _classes(ops, points=50)
    member = f.member(ops, "学员")
    clock.set(datetime(2026, 12, 1, 12, 10, tzinfo=UTC))
    with pytest.raises(InvalidInput) as wrong:
        community_rewards.record_attendance(
            ops, event_id=event["id"], member_id=member, code="XXXXXX"
        )
    assert wrong.value.code == "attendance_code_wrong"
    came = community_rewards.record_attendance(
        ops, event_id=event["id"], member_id=member, code=event["attendance_code"].lower()
    )
    again = community_rewards.record_attendance(
        ops, event_id=event["id"], member_id=member, code=event["attendance_code"]
    )
    assert (came["points_earned"], came["replayed"]) == (50, False)
    assert (again["points_earned"], again["replayed"]) == (0, True)
    assert member_points(ops, member_id=member)["balance"] == 50
    clock.set(datetime(2026, 12, 2, 12, tzinfo=UTC))
    with pytest.raises(Conflict) as closed:
        community_rewards.record_attendance(
            ops, event_id=event["id"], member_id=member, code=event["attendance_code"]
        )
    assert closed.value.code == "attendance_not_open"


def test_attending_raises_a_tier_that_counts_attendance(ops: Ctx, clock: ManualClock) -> None:
    regular = create_tier(
        ops,
        name="常来",
        rank=1,
        criteria={"kind": "fact", "event_type": "EventAttended", "min_count": 1},
    )
    event = _classes(ops, points=0)
    member = f.member(ops, "学员")
    assert get_member(ops, member_id=member)["tier_id"] is None
    clock.set(datetime(2026, 12, 1, 12, 10, tzinfo=UTC))
    community_rewards.record_attendance(
        ops, event_id=event["id"], member_id=member, code=event["attendance_code"]
    )
    assert get_member(ops, member_id=member)["tier_id"] == regular["id"]


def test_reminders_no_shows_and_attendance_from_check_in_activities(
    ops: Ctx, clock: ManualClock
) -> None:
    event = _classes(ops, remind_minutes=60, points=10)
    at = datetime(2026, 12, 1, 12, tzinfo=UTC)
    came, missed = f.member(ops, "来了"), f.member(ops, "没来")
    for m in (came, missed):
        gatherings.rsvp(ops, event_id=event["id"], member_id=m, occurrence_at=at)
    clock.set(at - timedelta(minutes=50))
    assert gatherings.queue_event_messages(ops) == {"reminders": 2, "no_show_follow_ups": 0}
    assert gatherings.queue_event_messages(ops) == {"reminders": 0, "no_show_follow_ups": 0}
    clock.set(at + timedelta(minutes=5))
    record_activities(
        ops,
        items=[
            ActivityIn(
                external_id="ci-1",
                kind=ActivityKind.CHECK_IN,
                occurred_at=at + timedelta(minutes=3),
                member_id=came,
                state=event["attendance_code"],
            )
        ],
    )
    assert community_rewards.attendance_from_activities(ops) == 1
    assert community_rewards.attendance_from_activities(ops) == 0
    assert member_points(ops, member_id=came)["balance"] == 10
    clock.set(at + timedelta(hours=2))
    assert gatherings.queue_event_messages(ops) == {"reminders": 0, "no_show_follow_ups": 1}
    kinds = [(m["kind"], m["member_id"]) for m in outbox.outbox_page(ops)["items"]]
    assert ("no_show_follow_up", missed) in kinds
    assert ("no_show_follow_up", came) not in kinds


# --- programs ------------------------------------------------------------------------------


def _camp(ctx: Ctx, **extra: Any) -> dict[str, Any]:
    return programs.create_program(
        ctx,
        title="21天文案训练营",
        days=21,
        makeup_limit=2,
        starts_on=date(2026, 12, 1),
        certificate_title="文案训练营结业证书",
        **extra,
    )


def _run_camp(
    ctx: Ctx, clock: ManualClock, program_id: str, member: str, missed: set[int]
) -> list[str]:
    """Check in on every day but `missed`, then try to make each missed day up."""
    refused: list[str] = []
    for day in range(1, 22):
        clock.set(datetime(2026, 11, 30, 14, tzinfo=UTC) + timedelta(days=day))  # 22:00 local
        if day not in missed:
            community_rewards.check_in(
                ctx, server_key=SECRET, program_id=program_id, member_id=member
            )
    for day in sorted(missed):
        try:
            community_rewards.check_in(
                ctx,
                server_key=SECRET,
                program_id=program_id,
                member_id=member,
                kind="makeup",
                day=day,
            )
        except Conflict as exc:
            refused.append(exc.code)
    return refused


def test_a_21_day_camp_completes_with_2_made_up_days_not_with_3_and_its_certificate_verifies(
    ops: Ctx, clock: ManualClock
) -> None:
    camp = _camp(ops, milestones=[{"day": 7, "points": 20}, {"day": 21, "points": 100}])
    two, three = f.member(ops, "缺两天"), f.member(ops, "缺三天")
    assert _run_camp(ops, clock, camp["id"], two, {4, 9}) == []
    assert _run_camp(ops, clock, camp["id"], three, {4, 9, 15}) == ["makeup_limit_reached"]
    board = programs.ranking(ops, program_id=camp["id"])["items"]
    assert [(i["member_id"], i["completed"], i["covered_days"]) for i in board] == [
        (two, True, 21),
        (three, False, 20),
    ]
    assert member_points(ops, member_id=two)["balance"] == 120
    assert member_points(ops, member_id=three)["balance"] == 20
    again = community_rewards.check_in(ops, server_key=SECRET, program_id=camp["id"], member_id=two)
    assert again["replayed"]
    assert again["completed"]
    assert again["certificate_id"] is not None
    issued = certificates.get_certificate(
        ops, server_key=SECRET, certificate_id=again["certificate_id"]
    )
    verified = certificates.verify_code(
        ops.db, server_key=SECRET, code=issued["code"], now=clock.now()
    )
    assert (verified["valid"], verified["title"], verified["citation"]) == (
        True,
        "文案训练营结业证书",
        "21天文案训练营",
    )
    with ops.db.read() as tx:
        completed = list_events(tx, tenant_id=ops.tenant_id, type="ProgramCompleted")
    assert [e["subject_id"] for e in completed] == [two]


def test_a_freeze_keeps_a_consecutive_streak(ops: Ctx, clock: ManualClock) -> None:
    program = programs.create_program(
        ops, title="5天", days=5, window_days=6, freeze_limit=1, starts_on=date(2026, 12, 1)
    )
    member = f.member(ops, "冻结")
    for day in (1, 2, 3, 5, 6):
        clock.set(datetime(2026, 11, 30, 14, tzinfo=UTC) + timedelta(days=day))
        if day == 5:
            community_rewards.check_in(
                ops,
                server_key=SECRET,
                program_id=program["id"],
                member_id=member,
                kind="freeze",
                day=4,
            )
        done = community_rewards.check_in(
            ops, server_key=SECRET, program_id=program["id"], member_id=member
        )
    assert (done["completed"], done["best_streak"], done["covered_days"], done["freezes_left"]) == (
        True,
        5,
        5,
        0,
    )


def test_a_course_and_a_competition_with_elimination(ops: Ctx) -> None:
    course = programs.create_program(
        ops,
        title="私域课",
        kind="course",
        lessons=["定位", "引流", "成交"],
        starts_on=date(2026, 11, 30),
    )
    member = f.member(ops, "学员")
    for lesson in (1, 2, 3):
        done = community_rewards.check_in(
            ops,
            server_key=SECRET,
            program_id=course["id"],
            member_id=member,
            kind="lesson",
            day=lesson,
        )
    assert done["completed"]
    assert done["certificate_id"] is not None
    lab = programs.create_program(
        ops, title="创业实验室", kind="competition", starts_on=date(2026, 12, 1)
    )
    teams = [
        programs.create_team(ops, program_id=lab["id"], name=n, member_ids=[f.member(ops, n)])
        for n in "ABC"
    ]
    a, b, c = (t["id"] for t in teams)
    first = programs.score_round(
        ops, program_id=lab["id"], round_no=1, scores={a: 10, b: 5, c: 7}, eliminate_count=1
    )
    assert first["eliminated"] == [b]
    with pytest.raises(Conflict):
        programs.score_round(
            ops, program_id=lab["id"], round_no=1, scores={a: 1}, eliminate_count=0
        )
    programs.score_round(
        ops, program_id=lab["id"], round_no=2, scores={a: 1, c: 9}, eliminate_count=1
    )
    ranking = programs.ranking(ops, program_id=lab["id"])["items"]
    assert [(i["name"], i["score"], i["eliminated_round"]) for i in ranking] == [
        ("C", 16, None),
        ("A", 11, 2),
        ("B", 5, 1),
    ]


# --- growth path and leaderboards ----------------------------------------------------------


def test_growth_stages_move_as_events_arrive_and_are_events(ops: Ctx, clock: ManualClock) -> None:
    community_id, _, (member,) = _community(ops, 1)
    before = path.member_growth_view(ops, member_id=member)
    assert (before["stage"], before["next"]["stage"]) == ("进入", "学习")
    event = _classes(ops, community_id=community_id, lecturer_id=f.member(ops, "讲师"))
    clock.set(datetime(2026, 12, 1, 12, 5, tzinfo=UTC))
    community_rewards.record_attendance(
        ops, event_id=event["id"], member_id=member, code=event["attendance_code"]
    )
    after = path.member_growth_view(ops, member_id=member)
    assert (after["position"], after["stage"]) == (2, "学习")
    assert after["next"]["missing"] == [
        {"fact": "challenges_completed", "op": ">=", "value": 1, "have": 0, "gap": 1}
    ]
    with ops.db.read() as tx:
        moved = list_events(
            tx, tenant_id=ops.tenant_id, type="GrowthStageChanged", subject_id=member
        )
    assert [e["payload"]["to"] for e in moved] == ["学习"]
    lecturer = leaders.lecturers(ops)
    assert [(x["name"], x["classes_given"]) for x in lecturer] == [("讲师", 1)]
    assert path.evaluate_members(ops) == {"evaluated": 2, "changed": 0}
    board = leaders.leaderboard(ops, kind="attendance", period="7d", community_id=community_id)
    assert [(i["rank"], i["member_id"], i["score"]) for i in board["items"]] == [(1, member, 1)]


def test_leaderboards_of_sales_and_points_over_windows(ops: Ctx, clock: ManualClock) -> None:
    f.product(ops)
    buyer, other = f.member(ops, "买家"), f.member(ops, "另一位")
    f.paid_order(ops, buyer, quantity=2)
    clock.advance(days=10)
    f.paid_order(ops, other)
    week = leaders.leaderboard(ops, kind="sales", period="7d")
    month = leaders.leaderboard(ops, kind="sales", period="30d")
    assert [(i["member_id"], i["score"]) for i in week["items"]] == [(other, 10_000)]
    assert [(i["member_id"], i["score"]) for i in month["items"]] == [
        (buyer, 20_000),
        (other, 10_000),
    ]
    with pytest.raises(InvalidInput):
        leaders.leaderboard(ops, kind="luck", period="7d")


# --- cadence -------------------------------------------------------------------------------


def test_an_sop_within_cadence_is_scheduled_and_queued_when_due(
    ops: Ctx, clock: ManualClock
) -> None:
    _, group_id, members = _community(ops, 3)
    sop = cadence.create_sop(
        ops,
        name="新群 SOP",
        target_kind="group",
        target_id=group_id,
        starts_on=date(2026, 12, 1),
        steps=[
            {"day": 0, "minute": 600, "body": "欢迎"},
            {"day": 1, "minute": 600, "body": "群规"},
            {"day": 3, "minute": 1200, "body": "第一课"},
        ],
    )
    assert [p["recipients"] for p in sop["posts"]] == [3, 3, 3]
    assert cadence.month_used(ops, member_id=members[0])["used"] == 0  # November still
    clock.set(datetime(2026, 12, 2, 3, tzinfo=UTC))
    assert cadence.month_used(ops, member_id=members[0]) | {} == {
        "member_id": members[0],
        "month": "2026-12",
        "used": 3,
        "budget": 30,
    }
    assert cadence.run_due_posts(ops) == {"posts": 2, "messages": 2}
    assert cadence.run_due_posts(ops) == {"posts": 0, "messages": 0}
    queued = [m for m in outbox.outbox_page(ops)["items"] if m["kind"] == "sop_post"]
    assert [(m["body"], m["group_id"]) for m in queued] == [("欢迎", group_id), ("群规", group_id)]


def test_over_budget_or_quiet_hours_are_refused_with_the_figure_and_nothing_is_queued(
    ops: Ctx,
) -> None:
    _, group_id, _ = _community(ops, 2)
    cadence.set_cadence(ops, fields={"monthly_budget": 3, "posts_per_day": 5, "min_gap_minutes": 0})
    steps = [{"day": d, "minute": 600, "body": f"第{d}天"} for d in range(3)]
    cadence.create_sop(
        ops,
        name="三条",
        target_kind="group",
        target_id=group_id,
        starts_on=date(2026, 12, 1),
        steps=steps,
    )
    posts, budgets = _count(ops, scheduled_posts), _count(ops, message_budgets)
    messages = _count(ops, outbox_messages)
    with pytest.raises(Conflict) as over:
        cadence.create_post(
            ops,
            target_kind="group",
            target_id=group_id,
            body="再来一条",
            send_at=datetime(2026, 12, 10, 2, tzinfo=UTC),
        )
    assert (over.value.code, over.value.params) == (
        "schedule_over_budget",
        {"month": "2026-12", "would_be": 4, "budget": 3, "members": 2},
    )
    with pytest.raises(Conflict) as quiet:
        cadence.create_post(
            ops,
            target_kind="group",
            target_id=group_id,
            body="深夜",
            send_at=datetime(2027, 1, 5, 15, tzinfo=UTC),
        )
    assert quiet.value.params == {"at": "2027-01-05 23:00", "start": "22:00", "end": "08:00"}
    assert (_count(ops, scheduled_posts), _count(ops, message_budgets)) == (posts, budgets)
    assert _count(ops, outbox_messages) == messages


def test_the_copy_library_finds_chinese_words(ops: Ctx) -> None:
    cadence.add_copy(
        ops, title="朋友圈早安文案", body="每天一条朋友圈，坚持打卡二十一天", tags=["朋友圈"]
    )
    cadence.add_copy(ops, title="社群欢迎语", body="欢迎新朋友加入我们的文案训练营")
    found = cadence.search_copy(ops, q="朋友圈打卡")
    assert [i["title"] for i in found["items"]] == ["朋友圈早安文案"]
    assert found["terms"] == ["朋友", "朋友圈", "打卡"]
    assert [i["title"] for i in cadence.search_copy(ops, q="训练营")["items"]] == ["社群欢迎语"]
    assert cadence.search_copy(ops, q="直播带货")["items"] == []


# --- group health --------------------------------------------------------------------------


def test_group_health_counts_active_silent_drifting_and_unanswered(
    ops: Ctx, clock: ManualClock
) -> None:
    _, group_id, members = _community(ops, 8)
    now = datetime(2026, 12, 4, 4, tzinfo=UTC)  # Friday 12:00 in Shanghai
    items = []
    for i in range(30):  # the first member was the busiest, silent for 10 days now
        items.append(
            ActivityIn(
                f"d-{i}",
                ActivityKind.MESSAGE,
                now - timedelta(days=10, minutes=i),
                members[0],
                group_id=group_id,
            )
        )
    for k, m in enumerate(members[1:4]):
        items.append(
            ActivityIn(
                f"a-{k}", ActivityKind.MESSAGE, now - timedelta(hours=2), m, group_id=group_id
            )
        )
    account = staff.create_account(ops, name="客服小美")["id"]
    items.append(
        ActivityIn(
            "r-1",
            ActivityKind.REPLY,
            now - timedelta(hours=1),
            None,
            target_member_id=members[1],
            group_id=group_id,
            staff_account_id=account,
        )
    )
    clock.set(now)
    record_activities(ops, items=items)
    shown = health.group_health(ops, group_id=group_id)
    assert {
        k: shown[k]
        for k in ("size", "active_7d", "silent_14d", "drifting", "messages_7d", "unanswered")
    } == {
        "size": 8,
        "active_7d": 3,
        "silent_14d": 4,
        "drifting": 1,
        "messages_7d": 3,
        "unanswered": 2,
    }
    assert shown["drifting_members"] == [members[0]]
    assert shown["top5_share_bp"] == 10_000
    assert shown["alerts"] == ["slow_replies"]
    assert health.scan_health(ops) == {"groups": 1, "alerts_raised": 1}
    assert health.scan_health(ops) == {"groups": 1, "alerts_raised": 0}  # still the one open
    slow = health.list_alerts(ops)["items"]
    assert [(a["kind"], a["subject_id"], a["details"]["unanswered"]) for a in slow] == [
        ("slow_replies", group_id, 2)
    ]


# --- complaints ----------------------------------------------------------------------------


def test_three_complaints_on_one_product_raise_one_crisis_listing_groups_and_members(
    ops: Ctx, clock: ManualClock
) -> None:
    f.product(ops, sku="MASK-1")
    community_id, group_id, members = _community(ops, 5)
    outsider = f.member(ops, "群外")
    first = complaints.create_complaint(
        ops, member_id=members[0], body="面膜用了脸红", sku="MASK-1", group_id=group_id
    )
    clock.advance(hours=3)
    second = complaints.create_complaint(ops, member_id=outsider, body="面膜有味道", sku="MASK-1")
    assert first["crisis_alert"] is None
    assert second["crisis_alert"] is None
    clock.advance(hours=3)
    third = complaints.create_complaint(ops, member_id=members[1], body="面膜质量差", sku="MASK-1")
    alert = third["crisis_alert"]
    assert alert["kind"] == "crisis"
    assert alert["subject_id"] == "MASK-1"
    assert alert["details"]["groups"] == [
        {"group_id": group_id, "name": alert["details"]["groups"][0]["name"], "size": 5}
    ]
    assert alert["details"]["members_reached"] == 5
    assert sorted(alert["details"]["complaints"]) == sorted(
        [first["id"], second["id"], third["id"]]
    )
    fourth = complaints.create_complaint(ops, member_id=members[2], body="同样的问题", sku="MASK-1")
    assert fourth["crisis_alert"]["id"] == alert["id"]
    open_crises = health.list_alerts(ops, kind="crisis")["items"]
    assert [a["id"] for a in open_crises] == [alert["id"]]
    for c in (first, second, third, fourth):
        resolved = complaints.resolve_complaint(
            ops, complaint_id=c["id"], resolution="已退款并致歉"
        )
    assert resolved["status"] == "resolved"
    assert health.list_alerts(ops, kind="crisis")["items"] == []
    entries = chronicle.chronicle(ops, community_id=community_id)
    assert [e["kind"] for e in entries].count("resolution") == 3  # the outsider is in no community
    assert all(e["body"] == "已退款并致歉" for e in entries if e["kind"] == "resolution")


def test_bad_input_changes_nothing(ops: Ctx) -> None:
    member = f.member(ops, "某人")
    before = (_count(ops, scheduled_posts), _count(ops, message_budgets))
    with pytest.raises(InvalidInput):
        gatherings.create_event(
            ops, title="x", kind="class", rrule="FREQ=SECONDLY", starts_at=START
        )
    with pytest.raises(InvalidInput):
        programs.create_program(
            ops, title="x", days=21, window_days=10, starts_on=date(2026, 12, 1)
        )
    with pytest.raises(InvalidInput):
        complaints.create_complaint(ops, member_id=member, body="  ")
    with pytest.raises(InvalidInput):
        cadence.create_post(
            ops, target_kind="segment", target_id="vip", body="x", send_at=START - timedelta(days=1)
        )
    assert (_count(ops, scheduled_posts), _count(ops, message_budgets)) == before
    with ops.db.read() as tx:
        assert list_events(tx, tenant_id=ops.tenant_id, type="CalendarEventCreated") == []


# --- races on PostgreSQL -------------------------------------------------------------------


def _race(n: int, call: Any) -> list[Any]:
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from shequn.errors import DomainError

    barrier = Barrier(n)

    def run(i: int) -> Any:
        barrier.wait()
        try:
            return call(i)
        except DomainError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


@pytest.mark.postgres
def test_parallel_rsvps_take_the_seats_once_and_parallel_schedules_keep_the_budget(
    db: Any, ops: Ctx
) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("parallel connections: PostgreSQL")
    event = _classes(ops, capacity=3)
    at = datetime(2026, 12, 1, 12, tzinfo=UTC)
    people = [f.member(ops, f"抢{i}") for i in range(8)]
    answers = _race(
        8,
        lambda i: gatherings.rsvp(ops, event_id=event["id"], member_id=people[i], occurrence_at=at)[
            0
        ],
    )
    assert sorted(a["status"] for a in answers) == ["confirmed"] * 3 + ["waitlisted"] * 5
    _, group_id, _ = _community(ops, 3)
    cadence.set_cadence(ops, fields={"monthly_budget": 2, "min_gap_minutes": 0, "posts_per_day": 9})
    sends = [datetime(2026, 12, 10, 2, tzinfo=UTC) + timedelta(hours=i) for i in range(4)]
    results = _race(
        4,
        lambda i: cadence.create_post(
            ops, target_kind="group", target_id=group_id, body="群发", send_at=sends[i]
        ),
    )
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(refused) == 2
    assert {r.code for r in refused} == {"schedule_over_budget"}
    with ops.db.read() as tx:
        used = tx.execute(
            select(func.max(message_budgets.c.used)).where(
                message_budgets.c.tenant_id == ops.tenant_id
            )
        ).scalar_one()
    assert used == 2


def test_sensitive_words_in_group_messages_raise_a_crisis_for_the_group(ops: Ctx) -> None:
    _, group_id, members = _community(ops, 3)
    scanned = complaints.scan_messages(
        ops,
        items=[
            {"group_id": group_id, "member_id": members[0], "text": "这是假货，我要去曝光"},
            {"group_id": group_id, "member_id": members[1], "text": "今天的课真好"},
        ],
    )
    assert (scanned["scanned"], scanned["matched"]) == (2, 1)
    (alert,) = scanned["alerts"]
    assert (alert["subject_type"], alert["subject_id"]) == ("group", group_id)
    assert alert["details"]["words"] == ["假货", "曝光"]
    assert (alert["details"]["members"], alert["details"]["members_reached"]) == ([members[0]], 3)
    with pytest.raises(NotFound):
        complaints.scan_messages(ops, items=[{"group_id": "grp_nope", "text": "曝光"}])
