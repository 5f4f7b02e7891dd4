"""The community's pure rules: caps, placement, split, staff assignment and handover planning,
badge criteria, templates, certificate codes, activities and the outbox."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shequn.community.activities.rules import (
    ActivityIn,
    ActivityKind,
    distinct_in_batch,
    parse_activity,
)
from shequn.community.communities.rules import (
    VenueKind,
    VenueRole,
    check_group_pattern,
    group_name,
    platform_limit,
    routing_for,
)
from shequn.community.groups.rules import (
    GroupRoom,
    Joiner,
    Policy,
    hard_cap,
    plan_placements,
    split_members,
)
from shequn.community.outbox.rules import (
    Adapter,
    Message,
    MessageStatus,
    check_message,
    operator_transition,
    retry_delay,
)
from shequn.community.rituals.rules import (
    anniversaries,
    certificate_code,
    certificate_signature,
    check_template,
    meets,
    member_milestones_crossed,
    parse_certificate_code,
    parse_criteria,
    render_template,
)
from shequn.community.staff.rules import (
    Account,
    AssignPolicy,
    Receiver,
    Transferable,
    WaitReason,
    candidates,
    groups_to_hand_over_today,
    near_full,
    on_duty,
    parse_hours,
    plan_member_handover,
    unavailable,
)
from shequn.errors import Conflict, InvalidInput

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def ids(prefix: str = "g") -> object:
    numbers = count(1)
    return lambda: f"{prefix}{next(numbers)}"


# --- caps and names -------------------------------------------------------------------------


def test_the_hard_cap_is_the_size_class_or_the_platform_limit_if_lower() -> None:
    assert hard_cap(150, 500) == 150
    assert hard_cap(150, 100) == 100
    assert hard_cap(35, None) == 35
    with pytest.raises(InvalidInput) as refused:
        hard_cap(200, None)
    assert refused.value.code == "size_class_invalid"


def test_venue_limits_and_routings() -> None:
    assert platform_limit(VenueKind.WECOM_GROUP, None) == 500
    assert platform_limit(VenueKind.QQ_GROUP, 200) == 200
    assert platform_limit(VenueKind.FORUM, None) is None
    with pytest.raises(InvalidInput):
        platform_limit(VenueKind.WECHAT_GROUP, 501)
    assert routing_for(VenueRole.RND_FEEDBACK).feeds == "product_reviews"
    assert routing_for(VenueRole.EMOTIONAL).complaint_escalation_pct == 50


def test_group_names_follow_the_pattern() -> None:
    pattern = check_group_pattern("{title}{region}{number}群")
    assert (
        group_name(pattern, community="小米", title="米粉", number=3, region="上海")
        == "米粉上海3群"
    )
    for bad, code in (
        ("{community}群", "group_pattern_needs_number"),
        ("{x}{number}", "group_pattern_invalid"),
    ):
        with pytest.raises(InvalidInput) as refused:
            check_group_pattern(bad)
        assert refused.value.code == code


# --- placement ------------------------------------------------------------------------------


def full_groups(n: int, cap: int) -> list[GroupRoom]:
    return [GroupRoom(f"full{i}", i, None, cap, cap) for i in range(1, n + 1)]


def test_the_151st_member_lands_in_a_newly_opened_group() -> None:
    plan = plan_placements(
        [Joiner("m151")],
        full_groups(1, 150),
        policy=Policy.FILL,
        new_cap=150,
        next_number=2,
        new_group_id=ids(),  # type: ignore[arg-type]
    )
    assert plan.placements == [("m151", "g1")]
    assert [(g.id, g.number, g.cap) for g in plan.opened] == [("g1", 2, 150)]
    assert plan.sizes == {"g1": 1}
    assert plan.join_target == "g1"


def test_filling_the_last_seat_opens_the_next_group_for_the_join_code() -> None:
    plan = plan_placements(
        [Joiner("m")],
        [GroupRoom("a", 1, None, 4, 5)],
        policy=Policy.FILL,
        new_cap=5,
        next_number=2,
        new_group_id=ids(),  # type: ignore[arg-type]
    )
    assert plan.placements == [("m", "a")]
    assert [(g.id, g.number) for g in plan.opened] == [("g1", 2)]
    assert plan.sizes == {"a": 5}
    assert plan.join_target == "g1"


def test_groups_fill_in_the_order_they_were_opened() -> None:
    plan = plan_placements(
        [Joiner(f"m{i}") for i in range(4)],
        [GroupRoom("late", 7, None, 0, 5), GroupRoom("early", 2, None, 3, 5)],
        policy=Policy.FILL,
        new_cap=5,
        next_number=8,
        new_group_id=ids(),  # type: ignore[arg-type]
    )
    assert [g for _, g in plan.placements] == ["early", "early", "late", "late"]


def test_a_keyed_member_opens_a_group_of_its_key_and_one_without_a_key_takes_any_room() -> None:
    groups = [GroupRoom("sh", 1, "上海", 5, 5), GroupRoom("bj", 2, "北京", 1, 5)]
    plan = plan_placements(
        [Joiner("a", "上海"), Joiner("b", None), Joiner("c", "上海")],
        groups,
        policy=Policy.REGION,
        new_cap=5,
        next_number=3,
        new_group_id=ids(),  # type: ignore[arg-type]
    )
    assert plan.placements == [("a", "g1"), ("b", "bj"), ("c", "g1")]
    assert [(g.key, g.number) for g in plan.opened] == [("上海", 3)]


def test_the_referrer_policy_follows_the_referrer_while_its_group_has_room() -> None:
    groups = [GroupRoom("a", 1, None, 0, 2), GroupRoom("b", 2, None, 1, 2)]
    plan = plan_placements(
        [Joiner("x", referrer_id="r"), Joiner("y", referrer_id="r"), Joiner("z", referrer_id="x")],
        groups,
        policy=Policy.REFERRER,
        new_cap=2,
        next_number=3,
        new_group_id=ids(),  # type: ignore[arg-type]
        placed={"r": "b"},
    )
    # x joins r's group b (its last seat); y finds b full and goes to a; z follows x to b,
    # which is full, so it goes to a.
    assert plan.placements == [("x", "b"), ("y", "a"), ("z", "a")]


POLICIES = st.sampled_from(list(Policy))


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.tuples(st.integers(1, 8), st.integers(0, 8)), max_size=8),
    keys=st.lists(st.sampled_from([None, "k1", "k2", "k3"]), max_size=8),
    joiners=st.lists(st.sampled_from([None, "k1", "k2", "k4"]), max_size=40),
    policy=POLICIES,
    new_cap=st.integers(1, 6),
)
def test_placement_never_passes_a_cap_and_opens_a_group_only_on_overflow(
    sizes: list[tuple[int, int]],
    keys: list[str | None],
    joiners: list[str | None],
    policy: Policy,
    new_cap: int,
) -> None:
    groups = [
        GroupRoom(f"e{i}", i + 1, keys[i] if i < len(keys) else None, min(size, cap), cap)
        for i, (cap, size) in enumerate(sizes)
    ]
    before = {g.id: (g.size, g.cap, g.key) for g in groups}
    people = [Joiner(f"m{i}", key, f"m{i - 1}" if i else None) for i, key in enumerate(joiners)]
    plan = plan_placements(
        people,
        groups,
        policy=policy,
        new_cap=new_cap,
        next_number=len(groups) + 1,
        new_group_id=ids(),  # type: ignore[arg-type]
        placed={},
    )
    opened = {g.id: g for g in plan.opened}
    # every member is placed once, in the order given
    assert [m for m, _ in plan.placements] == [p.member_id for p in people]
    # no group ever passes its cap
    taken: dict[str, int] = {}
    for _, group in plan.placements:
        taken[group] = taken.get(group, 0) + 1
    for group, n in taken.items():
        size, cap, _ = before.get(group, (0, new_cap, None))
        assert size + n <= cap
        assert plan.sizes[group] == size + n
    # new groups are numbered on from the existing ones, and all but the join target filled
    assert [g.number for g in plan.opened] == list(
        range(len(groups) + 1, len(groups) + 1 + len(plan.opened))
    )
    # a group is opened only when no group that could take the member had room
    if policy in (Policy.FILL, Policy.REFERRER) or all(k is None for k in joiners):
        room = sum(cap - size for size, cap, _ in before.values())
        overflow = max(0, len(people) - room)
        assert len([g for g in plan.opened if g.id in taken]) == math.ceil(overflow / new_cap)
    # a group with room is left for the join code
    target = plan.join_target
    assert target is not None
    size, cap, _ = before.get(target, (0, opened[target].cap if target in opened else 0, None))
    assert plan.sizes.get(target, size) < cap


# --- split ----------------------------------------------------------------------------------


def test_a_split_keeps_cliques_together() -> None:
    members = [f"m{i}" for i in range(12)]
    pairs = [(a, b, 5) for a in members[:6] for b in members[:6] if a < b]
    pairs += [(a, b, 5) for a in members[6:] for b in members[6:] if a < b]
    parts = split_members(members, pairs, 6)
    assert sorted(sorted(p) for p in parts) == [sorted(members[:6]), sorted(members[6:])]


def test_a_split_cuts_a_large_component_where_links_are_weakest() -> None:
    # two tight threes joined by one weak link, into parts of three
    members = ["a", "b", "c", "x", "y", "z"]
    links = [("a", "b", 9), ("b", "c", 9), ("a", "c", 9), ("x", "y", 9), ("y", "z", 9)]
    links += [("x", "z", 9), ("c", "x", 1)]
    parts = split_members(members, links, 3)
    assert sorted(sorted(p) for p in parts) == [["a", "b", "c"], ["x", "y", "z"]]


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 60),
    cap=st.integers(1, 20),
    links=st.lists(st.tuples(st.integers(0, 59), st.integers(0, 59), st.integers(1, 5))),
)
def test_a_split_places_everyone_once_under_the_cap(
    n: int, cap: int, links: list[tuple[int, int, int]]
) -> None:
    members = [f"m{i}" for i in range(n)]
    edges = [(f"m{a}", f"m{b}", w) for a, b, w in links if a < n and b < n]
    parts = split_members(members, edges, cap)
    flat = [m for p in parts for m in p]
    assert sorted(flat) == sorted(members)
    assert all(1 <= len(p) <= cap for p in parts)
    # first fit leaves at most one part half empty or less
    assert len(parts) <= 2 * math.ceil(n / cap) + 1
    assert [len(p) for p in parts] == sorted((len(p) for p in parts), reverse=True)


# --- staff accounts -------------------------------------------------------------------------


def account(name: str, **extra: object) -> Account:
    fields: dict[str, object] = {
        "id": name,
        "member_count": 0,
        "friend_cap": 5_000,
        "adds_today": 0,
        "daily_add_limit": 300,
        "work_start": 9 * 60,
        "work_end": 21 * 60,
    }
    fields.update(extra)
    return Account(**fields)  # type: ignore[arg-type]


def test_working_hours_and_what_keeps_an_account_from_a_new_member() -> None:
    assert parse_hours("09:00-21:30") == (540, 1290)
    assert parse_hours("22:00-06:00") == (1320, 360)
    assert on_duty(1320, 360, 23 * 60)
    assert on_duty(1320, 360, 60)
    assert not on_duty(1320, 360, 600)
    assert parse_hours("00:00-24:00") == (0, 1440)
    for bad in ("9-21", "09:00-09:00", "25:00-26:00", "09:60-10:00"):
        with pytest.raises(InvalidInput):
            parse_hours(bad)
    noon = 12 * 60
    assert unavailable(account("a", member_count=5_000), noon) == "full"
    assert unavailable(account("a", adds_today=300), noon) == "daily_limit"
    assert unavailable(account("a"), 22 * 60) == "off_duty"
    assert unavailable(account("a", active=False), noon) == "inactive"
    assert unavailable(account("a"), noon) is None
    assert near_full(4_500, 5_000)
    assert not near_full(4_499, 5_000)


def test_policies_skip_full_off_duty_and_at_limit_accounts() -> None:
    accounts = [
        account("full", member_count=5_000),
        account("limit", adds_today=300),
        account("night", work_start=22 * 60, work_end=6 * 60),
        account("busy", member_count=3_000),
        account("quiet", member_count=10, region="上海", assign_seq=9),
        account("fresh", member_count=100, assign_seq=1),
    ]
    noon = 12 * 60
    assert candidates(accounts, AssignPolicy.LEAST_LOADED, minute=noon) == [
        "quiet",
        "fresh",
        "busy",
    ]
    assert candidates(accounts, AssignPolicy.ROUND_ROBIN, minute=noon) == ["busy", "fresh", "quiet"]
    assert candidates(accounts, AssignPolicy.REGION, minute=noon, region="上海")[0] == "quiet"


def test_the_referrers_account_or_its_backup_comes_first() -> None:
    accounts = [
        account("ref", member_count=5_000, backup_id="backup"),
        account("backup", member_count=4_000),
        account("other", member_count=1),
    ]
    ranked = candidates(accounts, AssignPolicy.REFERRER, minute=600, referrer_account_id="ref")
    assert ranked == ["backup", "other"]


def test_a_handover_respects_room_and_two_transfers_in_ninety_days() -> None:
    recent = (NOW - timedelta(days=80), NOW - timedelta(days=10))
    members = [
        Transferable("twice", recent),
        Transferable("old", (NOW - timedelta(days=95), NOW - timedelta(days=91))),
        *[Transferable(f"m{i}") for i in range(250)],
    ]
    plan = plan_member_handover(
        members, [Receiver("big", 150), Receiver("small", 50), Receiver("full", 0)], now=NOW
    )
    waiting = {m: (r, when) for m, r, when in plan.waiting}
    assert waiting["twice"] == (WaitReason.TRANSFER_LIMIT, recent[0] + timedelta(days=90))
    moved = {m: to for m, to, _ in plan.transfers}
    assert "old" in moved
    assert sum(1 for to in moved.values() if to == "big") == 150
    assert sum(1 for to in moved.values() if to == "small") == 50
    assert "full" not in moved.values()
    assert len([w for w in plan.waiting if w[1] is WaitReason.NO_RECEIVER_ROOM]) == 51
    # calls hold at most 100 members, each to one receiver
    calls: dict[int, set[str]] = {}
    sizes: dict[int, int] = {}
    for _, to, call in plan.transfers:
        calls.setdefault(call, set()).add(to)
        sizes[call] = sizes.get(call, 0) + 1
    assert all(len(r) == 1 for r in calls.values())
    assert sorted(sizes.values()) == [50, 50, 100]


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(0, 120),
    rooms=st.lists(st.integers(0, 60), max_size=4),
    history=st.lists(st.integers(0, 3), min_size=120, max_size=120),
)
def test_no_member_is_dropped_and_no_receiver_overfilled(
    n: int, rooms: list[int], history: list[int]
) -> None:
    members = [
        Transferable(f"m{i}", tuple(NOW - timedelta(days=5 * (k + 1)) for k in range(history[i])))
        for i in range(n)
    ]
    receivers = [Receiver(f"r{i}", room) for i, room in enumerate(rooms)]
    plan = plan_member_handover(members, receivers, now=NOW)
    placed = [m for m, _, _ in plan.transfers]
    waiting = [m for m, _, _ in plan.waiting]
    assert sorted(placed + waiting) == sorted(m.member_id for m in members)
    for receiver in receivers:
        assert sum(1 for _, to, _ in plan.transfers if to == receiver.id) <= receiver.room
    limited = {m.member_id for m in members if len(m.recent) >= 2}
    assert limited.isdisjoint(placed)


def test_groups_hand_over_three_hundred_a_day() -> None:
    assert groups_to_hand_over_today([str(i) for i in range(450)], handed_today=0) == 300
    assert groups_to_hand_over_today([str(i) for i in range(450)], handed_today=250) == 50
    assert groups_to_hand_over_today(["a"], handed_today=300) == 0


# --- rituals --------------------------------------------------------------------------------


def test_templates_render_their_variables_and_refuse_unknown_ones() -> None:
    text = check_template("欢迎{name}加入{group}！推荐人：{referrer}，{{不是变量}}")
    assert render_template(text, {"name": "小米", "group": "米粉1群"}) == (
        "欢迎小米加入米粉1群！推荐人：，{不是变量}"
    )
    for bad, code in (("{nom}", "template_variable_unknown"), ("{name!r}", "template_invalid")):
        with pytest.raises(InvalidInput) as refused:
            check_template(bad)
        assert refused.value.code == code


def test_badge_criteria_parse_and_hold() -> None:
    criteria = parse_criteria(
        {
            "all": [
                {"fact": "check_ins", "op": ">=", "value": 21},
                {"fact": "paid_order_count", "op": ">", "value": 0},
            ]
        }
    )
    assert meets(criteria, {"check_ins": 21, "paid_order_count": 1})
    assert not meets(criteria, {"check_ins": 21})
    for bad, code in (
        ({"any": []}, "badge_criteria_invalid"),
        ({"all": [{"fact": "height", "op": ">", "value": 1}]}, "badge_fact_unknown"),
        ({"all": [{"fact": "likes", "op": "!=", "value": 1}]}, "badge_operator_invalid"),
        ({"all": [{"fact": "likes", "op": ">", "value": -1}]}, "badge_value_invalid"),
        ({"all": [{"fact": "likes", "op": ">", "value": True}]}, "badge_value_invalid"),
    ):
        with pytest.raises(InvalidInput) as refused:
            parse_criteria(bad)
        assert refused.value.code == code


def test_a_certificate_code_carries_its_tenant_and_breaks_when_altered() -> None:
    fields = {
        "tenant_id": "tn_01abc",
        "serial": "ABCDEFGHJK",
        "certificate_id": "cert_1",
        "member_id": "mem_1",
        "kind": "honour",
        "valid_until": None,
    }
    signature = certificate_signature("secret", **fields)  # type: ignore[arg-type]
    code = certificate_code("tn_01abc", "ABCDEFGHJK", signature)
    assert parse_certificate_code(code) == ("tn_01abc", "ABCDEFGHJK", signature)
    assert certificate_signature("other", **fields) != signature  # type: ignore[arg-type]
    assert certificate_signature("secret", **{**fields, "member_id": "mem_2"}) != signature  # type: ignore[arg-type]
    for bad in ("", "x-y", "tn_01abc-SHORT-" + signature, "nope-ABCDEFGHJK-" + signature):
        assert parse_certificate_code(bad) is None


def test_milestones_and_anniversaries() -> None:
    assert member_milestones_crossed(9, 10) == [10]
    assert member_milestones_crossed(40, 160) == [50, 100, 150]
    assert member_milestones_crossed(10, 10) == []
    founded = datetime(2024, 3, 1, tzinfo=UTC)
    assert anniversaries(founded, datetime(2026, 2, 28, tzinfo=UTC)) == [1]
    assert anniversaries(founded, datetime(2026, 3, 1, tzinfo=UTC)) == [1, 2]


# --- activities and the outbox --------------------------------------------------------------


def test_an_activity_is_parsed_whole_or_refused() -> None:
    item = {
        "external_id": "wx-1",
        "kind": "check_in",
        "occurred_at": "2026-01-04T08:00:00Z",
        "member_id": "mem_1",
    }
    parsed = parse_activity(item, now=NOW)
    assert (parsed.kind, parsed.occurred_at) == (
        ActivityKind.CHECK_IN,
        datetime(2026, 1, 4, 8, tzinfo=UTC),
    )
    for bad, code in (
        ({**item, "kind": "dance"}, "activity_kind_invalid"),
        ({**item, "occurred_at": "2026-01-04T08:00:00"}, "activity_time_naive"),
        ({**item, "occurred_at": "2026-02-01T08:00:00Z"}, "activity_in_future"),
        ({**item, "member_id": None}, "activity_subject_missing"),
        ({**item, "kind": "add"}, "activity_add_incomplete"),
        ({**item, "state": "x" * 31}, "activity_field_invalid"),
        ({**item, "extra": 1}, "activity_invalid"),
    ):
        with pytest.raises(InvalidInput) as refused:
            parse_activity(bad, now=NOW)
        assert refused.value.code == code


def test_a_batch_keeps_each_external_id_once_in_event_time_order() -> None:
    def act(external_id: str, day: int) -> ActivityIn:
        return ActivityIn(external_id, ActivityKind.LIKE, datetime(2026, 1, day, tzinfo=UTC), "m")

    batch = [act("c", 3), act("a", 1), act("c", 4), act("b", 2)]
    assert [(a.external_id, a.occurred_at.day) for a in distinct_in_batch(batch)] == [
        ("a", 1),
        ("b", 2),
        ("c", 3),
    ]


def test_outbox_messages_and_their_states() -> None:
    ok = check_message(Message("k", "welcome", "你好"))
    assert ok.dedupe_key == "k"
    for bad in (Message("", "k", "b"), Message("k", "k", " "), Message("k" * 121, "k", "b")):
        with pytest.raises(InvalidInput):
            check_message(bad)
    assert operator_transition(MessageStatus.PENDING, "done", Adapter.OPERATOR_TASK) == "done"
    assert operator_transition(MessageStatus.FAILED, "skip", Adapter.SIGNED_WEBHOOK) == "skipped"
    with pytest.raises(Conflict):
        operator_transition(MessageStatus.DONE, "skip", Adapter.OPERATOR_TASK)
    with pytest.raises(Conflict):
        operator_transition(MessageStatus.PENDING, "done", Adapter.SIGNED_WEBHOOK)
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 20)] == [30, 60, 120, 3600]
