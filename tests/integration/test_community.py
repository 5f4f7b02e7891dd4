"""Community operations on SQLite and PostgreSQL: placement, import and split, staff accounts
and their handover, activities, badges, certificates, the chronicle and the outbox."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pypdf
import pytest
from sqlalchemy import func, select

from shequn.clock import ManualClock
from shequn.community.activities import facts
from shequn.community.activities.rules import ActivityIn, ActivityKind
from shequn.community.activities.service import record_activities
from shequn.community.communities.report import venue_report
from shequn.community.founding import add_venue, create_community, get_community
from shequn.community.groups import imports, placement
from shequn.community.groups import service as groups
from shequn.community.kpis import staff_kpis
from shequn.community.outbox import Message, dispatcher, enqueue_messages
from shequn.community.outbox import service as outbox
from shequn.community.rituals import badges, certificates, chronicle, welcome
from shequn.community.rituals.rules import meets, parse_criteria
from shequn.community.staff import handover, transfers
from shequn.community.staff import service as staff
from shequn.community.tables import community_members
from shequn.community.tables import groups as group_table
from shequn.context import Ctx
from shequn.errors import Conflict, InvalidInput, NotFound
from shequn.events.service import list_events
from shequn.ids import new_id
from shequn.members.repo import insert_members
from shequn.webhooks.rules import verify_signature
from tests import factories as f

SECRET = "test-deployment-secret"


def many_members(ctx: Ctx, n: int, *, prefix: str = "成员", tags: Sequence[str] = ()) -> list[str]:
    """`n` members written in bulk (registering each through its use case costs a transaction
    apiece); `tags` are given to every one."""
    now = ctx.clock.now()
    ids = [new_id("mem") for _ in range(n)]
    rows = [
        {
            "tenant_id": ctx.tenant_id,
            "id": member_id,
            "name": f"{prefix}{i}",
            "phone": None,
            "external_id": f"{prefix}-ext-{i}",
            "tier_id": None,
            "referrer_id": None,
            "ancestor_2": None,
            "ancestor_3": None,
            "binding_source": None,
            "bound_at": None,
            "direct_count": 0,
            "team_count": 0,
            "created_at": now,
            "updated_at": now,
        }
        for i, member_id in enumerate(ids)
    ]
    tag_rows = [{"tenant_id": ctx.tenant_id, "member_id": m, "tag": t} for m in ids for t in tags]
    with ctx.db.transaction() as tx:
        insert_members(tx, rows, tag_rows)
    return ids


def sizes(ctx: Ctx, community_id: str) -> list[tuple[int, int, int]]:
    """(number, size, cap) of every group of the community, checked against its members."""
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(group_table.c.id, group_table.c.number, group_table.c.size, group_table.c.cap)
            .where(
                group_table.c.tenant_id == ctx.tenant_id,
                group_table.c.community_id == community_id,
            )
            .order_by(group_table.c.number)
        ).all()
        counted = dict(
            tx.execute(
                select(community_members.c.group_id, func.count())
                .where(community_members.c.tenant_id == ctx.tenant_id)
                .group_by(community_members.c.group_id)
            ).all()
        )
    for r in rows:
        assert counted.get(r.id, 0) == r.size, r
    return [(r.number, r.size, r.cap) for r in rows]


def community(ctx: Ctx, size_class: int = 5, **extra: Any) -> str:
    made = create_community(
        ctx, name=extra.pop("name", "米粉社群"), member_title="米粉", size_class=size_class, **extra
    )
    return str(made["id"])


# --- placement ------------------------------------------------------------------------------


def test_the_151st_member_lands_in_a_newly_opened_group(ctx: Ctx) -> None:
    # given a community whose only group holds 150
    cid = community(ctx, size_class=150)
    people = many_members(ctx, 151)
    placed = placement.place_members(
        ctx, community_id=cid, entries=[{"member_id": m} for m in people[:150]]
    )
    assert (placed["placed"], placed["opened_groups"]) == (150, 1)
    assert sizes(ctx, cid) == [(1, 150, 150), (2, 0, 150)]

    # when the 151st joins
    joined, replayed = placement.join_community(ctx, community_id=cid, member_id=people[150])

    # then it is in the group opened when the first one filled, and no group is over its cap
    assert not replayed
    assert (joined["group"]["number"], joined["group"]["size"]) == (2, 1)
    assert sizes(ctx, cid) == [(1, 150, 150), (2, 1, 150)]
    assert get_community(ctx, community_id=cid)["member_count"] == 151
    assert groups.join_code(ctx, community_id=cid)["group"]["number"] == 2


def test_a_join_is_answered_once_and_the_join_code_always_has_room(ctx: Ctx) -> None:
    cid = community(ctx, size_class=5)
    people = many_members(ctx, 6)
    for m in people[:5]:
        placement.join_community(ctx, community_id=cid, member_id=m)
    target = groups.join_code(ctx, community_id=cid)["group"]
    assert (target["number"], target["room"]) == (2, 5)
    again, replayed = placement.join_community(ctx, community_id=cid, member_id=people[0])
    assert replayed
    assert again["group"]["number"] == 1
    code = get_community(ctx, community_id=cid)["join_code"]
    by_code, _ = groups.join_by_code(ctx, code=code, member_id=people[5])
    assert by_code["group"]["number"] == 2
    assert sizes(ctx, cid) == [(1, 5, 5), (2, 1, 5)]
    with pytest.raises(NotFound):
        groups.join_by_code(ctx, code="NOPE", member_id=people[5])


def test_region_and_staff_policies_open_groups_of_their_key(ctx: Ctx) -> None:
    cid = community(ctx, size_class=5)
    shanghai = many_members(ctx, 6, prefix="沪", tags=["region:上海"])
    others = many_members(ctx, 2, prefix="京")
    for m in shanghai:
        placement.join_community(ctx, community_id=cid, member_id=m, policy="region")
    placement.join_community(
        ctx, community_id=cid, member_id=others[0], policy="region", region="北京"
    )
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(
                group_table.c.number, group_table.c.region, group_table.c.size, group_table.c.name
            )
            .where(group_table.c.tenant_id == ctx.tenant_id)
            .order_by(group_table.c.number)
        ).all()
    # group 1 (plain) is skipped by keyed members; 上海 fills one group and opens another
    assert [(r.number, r.region, r.size) for r in rows] == [
        (1, None, 0),
        (2, "上海", 5),
        (3, "上海", 1),
        (4, "北京", 1),
    ]
    # a member without a region takes any group with room, the oldest first
    placed, _ = placement.join_community(
        ctx, community_id=cid, member_id=others[1], policy="region"
    )
    assert placed["group"]["number"] == 1


def test_bulk_placement_lists_unknown_members_and_leaves_placed_ones(ctx: Ctx) -> None:
    cid = community(ctx, size_class=15)
    people = many_members(ctx, 40)
    placement.join_community(ctx, community_id=cid, member_id=people[0])
    seen: list[int] = []
    result = placement.place_members(
        ctx,
        community_id=cid,
        entries=[{"member_id": m} for m in [*people, "mem_unknown", people[3]]],
        chunk=16,
        progress=seen.append,
    )
    assert {
        k: result[k] for k in ("received", "placed", "already", "unknown", "opened_groups")
    } == {
        "received": 42,
        "placed": 39,
        "already": 1,
        "unknown": ["mem_unknown"],
        "opened_groups": 2,
    }
    assert seen == [16, 16, 9]
    assert sizes(ctx, cid) == [(1, 15, 15), (2, 15, 15), (3, 10, 15)]
    with ctx.db.read() as tx:
        placed_events = list_events(tx, tenant_id=ctx.tenant_id, type="MembersPlaced")
        tasks = outbox.outbox_page(ctx, adapter="operator_task")["items"]
    placed_ids = [m for e in placed_events for ms in e["payload"]["groups"].values() for m in ms]
    assert len(placed_ids) == len(set(placed_ids)) == 39
    assert sum(e["payload"]["members"] for e in placed_events) == 39
    assert {t["kind"] for t in tasks} == {"welcome_group_joined", "welcome_group_batch"}


def test_a_venue_limit_lowers_the_cap_of_new_groups(ctx: Ctx) -> None:
    cid = community(ctx, size_class=150)
    venue = add_venue(
        ctx,
        community_id=cid,
        name="小米论坛",
        kind="qq_group",
        role="rnd_feedback",
        platform_limit_declared=100,
        default=True,
    )
    assert venue["routing"] == {"feeds": "product_reviews", "complaint_escalation_pct": 100}
    assert sizes(ctx, cid) == [(1, 0, 100)]
    with pytest.raises(InvalidInput) as refused:
        add_venue(ctx, community_id=cid, name="x", kind="stadium", role="sales")
    assert refused.value.code == "venue_kind_invalid"


# --- import and split -----------------------------------------------------------------------


def test_imported_groups_over_the_cap_are_flagged_then_split_along_interactions(ctx: Ctx) -> None:
    # given a 12-member group imported into a community of 5-member groups
    cid = community(ctx, size_class=5)
    people = many_members(ctx, 12, prefix="老群")
    rows = [{"group": "wx-room-1", "name": "老粉丝群", "member": m} for m in people]
    rows.append({"group": "wx-room-1", "name": "老粉丝群", "member": "老群-ext-0"})  # again
    rows.append({"group": "wx-room-2", "name": "新群", "member": "nobody"})
    result = imports.import_groups(ctx, community_id=cid, rows=rows)
    assert {k: result[k] for k in ("groups", "members", "unknown", "duplicates", "cap")} == {
        "groups": 2,
        "members": 12,
        "unknown": ["nobody"],
        "duplicates": 1,
        "cap": 5,
    }
    assert len(result["oversize"]) == 1
    big = result["oversize"][0]
    flagged = groups.list_groups(ctx, community_id=cid, oversize=True)["items"]
    assert [(g["id"], g["size"], g["oversize"]) for g in flagged] == [(big, 12, True)]
    # and members who talk to each other: three cliques of four
    cliques = [people[0:4], people[4:8], people[8:12]]
    items = []
    for c, clique in enumerate(cliques):
        for a in clique:
            for b in clique:
                if a != b:
                    items.append(
                        ActivityIn(
                            f"msg-{a}-{b}",
                            ActivityKind.MESSAGE,
                            ctx.clock.now() - timedelta(hours=c + 1),
                            member_id=a,
                            target_member_id=b,
                            group_id=big,
                        )
                    )
    record_activities(ctx, items=items)

    # when it is split
    split = groups.split_group(ctx, group_id=big)

    # then each clique stays whole and every group is under its cap
    assert split["moved"] == 8
    parts = {p["group_id"]: p["size"] for p in split["parts"]}
    assert sorted(parts.values()) == [4, 4, 4]
    with ctx.db.read() as tx:
        placed = tx.execute(
            select(community_members.c.member_id, community_members.c.group_id).where(
                community_members.c.tenant_id == ctx.tenant_id
            )
        ).all()
    group_of = dict(placed)
    for clique in cliques:
        assert len({group_of[m] for m in clique}) == 1
    assert all(size <= cap for _, size, cap in sizes(ctx, cid))
    with pytest.raises(Conflict) as refused:
        groups.split_group(ctx, group_id=big)
    assert refused.value.code == "group_not_oversize"


# --- staff accounts -------------------------------------------------------------------------


def test_assignment_skips_full_off_duty_and_at_limit_accounts(ctx: Ctx) -> None:
    assert isinstance(ctx.clock, ManualClock)
    ctx.clock.set(datetime(2026, 1, 5, 4, 0, tzinfo=UTC))  # 12:00 in Shanghai
    full = staff.create_account(ctx, name="满员号", friend_cap=1, working_hours="00:00-24:00")
    night = staff.create_account(ctx, name="夜班号", working_hours="20:00-08:00")
    limited = staff.create_account(
        ctx, name="限额号", daily_add_limit=1, working_hours="00:00-24:00"
    )
    people = many_members(ctx, 3)
    first, _ = staff.assign_member(ctx, member_id=people[0])
    assert first["staff_account_id"] in (full["id"], limited["id"])
    second, _ = staff.assign_member(ctx, member_id=people[1])
    assert {first["staff_account_id"], second["staff_account_id"]} == {full["id"], limited["id"]}
    with pytest.raises(Conflict) as refused:
        staff.assign_member(ctx, member_id=people[2])
    assert refused.value.code == "no_staff_account_available"
    assert refused.value.params["reasons"] == "daily_limit, full, off_duty"
    # the next day the limited account takes members again
    ctx.clock.advance(days=1)
    third, replayed = staff.assign_member(ctx, member_id=people[2])
    assert (third["staff_account_id"], replayed) == (limited["id"], False)
    assert staff.get_account(ctx, account_id=night["id"])["member_count"] == 0
    tasks = outbox.outbox_page(ctx, adapter="operator_task", status="pending")["items"]
    welcomes = [t for t in tasks if t["kind"] == "welcome_staff_added"]
    assert len(welcomes) == 3
    assert all(t["due_at"] == t["created_at"] + timedelta(seconds=20) for t in welcomes)


def test_an_account_leaving_hands_its_members_over_within_the_limits(ctx: Ctx) -> None:
    assert isinstance(ctx.clock, ManualClock)
    leaving = staff.create_account(ctx, name="离职号", working_hours="00:00-24:00")
    small = staff.create_account(ctx, name="小号", friend_cap=3, working_hours="00:00-24:00")
    big = staff.create_account(ctx, name="大号", friend_cap=4, working_hours="00:00-24:00")
    fallback = staff.create_account(ctx, name="兜底号", working_hours="00:00-24:00")
    staff.update_account(ctx, account_id=fallback["id"], status="paused")
    people = many_members(ctx, 9)
    with ctx.db.transaction() as tx:
        staff.record_adds(
            tx, ctx, [(m, leaving["id"], "qr-1") for m in people], now=ctx.clock.now()
        )
    cid = community(ctx, size_class=5)
    with ctx.db.transaction() as tx:
        tx.execute(
            group_table.update()
            .where(group_table.c.tenant_id == ctx.tenant_id)
            .values(staff_account_id=leaving["id"])
        )

    # when the account leaves, with the other two as receivers
    run = handover.hand_over(
        ctx,
        account_id=leaving["id"],
        receivers=[small["id"], big["id"]],
        fallback_account_id=fallback["id"],
    )

    # then 7 members are asked for (3 + 4: never past a cap), 2 are listed, none dropped
    assert run["members"]["pending"] == 7
    assert [
        (w["subject_id"] in people, w["reason"]) for w in run["waiting"] if w["kind"] == "member"
    ] == [(True, "no_receiver_room")] * 2
    assert run["groups"]["accepted"] == 1  # its group went to the fallback receiver
    assert staff.get_account(ctx, account_id=small["id"])["member_count"] == 3
    assert staff.get_account(ctx, account_id=big["id"])["member_count"] == 4
    assert sizes(ctx, cid)  # the group still stands

    # when the platform says one was refused and one hit a full receiver
    items = transfers.handover_items_of(ctx, handover_id=run["id"])
    pending = [i for i in items if i["status"] == "pending"]
    refused, full = pending[0]["subject_id"], pending[1]["subject_id"]
    staff.update_account(ctx, account_id=fallback["id"], status="active")
    after = transfers.record_outcomes(
        ctx,
        handover_id=run["id"],
        outcomes=[
            {"member_id": refused, "outcome": "refused"},
            {"member_id": full, "outcome": "receiver_full"},
        ],
    )
    # then the full one is asked of the fallback receiver and the refused one is listed
    assert after["retried_now"] == 1
    reasons = {w["subject_id"]: w["reason"] for w in after["waiting"]}
    assert reasons[refused] == "refused"

    # when 24 hours pass without refusals, the next run accepts the pending transfers
    ctx.clock.advance(hours=25)
    again = handover.hand_over(ctx, account_id=leaving["id"])
    assert again["accepted_now"] == 6
    assert staff.get_account(ctx, account_id=leaving["id"])["member_count"] == 3
    history = transfers.handover_items_of(ctx, handover_id=run["id"])
    assert {i["status"] for i in history} >= {"accepted", "refused", "receiver_full"}


def test_a_member_transferred_twice_in_ninety_days_waits(ctx: Ctx) -> None:
    assert isinstance(ctx.clock, ManualClock)
    accounts = [
        staff.create_account(ctx, name=f"号{i}", working_hours="00:00-24:00") for i in range(4)
    ]
    (member,) = many_members(ctx, 1)
    with ctx.db.transaction() as tx:
        staff.record_adds(tx, ctx, [(member, accounts[0]["id"], None)], now=ctx.clock.now())
    for giver, receiver in ((0, 1), (1, 2)):
        handover.hand_over(
            ctx, account_id=accounts[giver]["id"], receivers=[accounts[receiver]["id"]]
        )
        ctx.clock.advance(hours=25)
        handover.hand_over(ctx, account_id=accounts[giver]["id"])
    third = handover.hand_over(ctx, account_id=accounts[2]["id"], receivers=[accounts[3]["id"]])
    assert third["members"]["pending"] == 0
    (waiting,) = third["waiting"]
    assert (waiting["subject_id"], waiting["reason"]) == (member, "transfer_limit")
    assert waiting["not_before"] is not None


def test_kpis_count_members_activity_gmv_and_reply_times(ctx: Ctx) -> None:
    account = staff.create_account(ctx, name="KPI号", working_hours="00:00-24:00")
    buyer = f.member(ctx, "买家")
    f.product(ctx, price_fen=9_900)
    staff.add_member(ctx, account_id=account["id"], member_id=buyer, state="spring-qr")
    f.paid_order(ctx, buyer)
    now = ctx.clock.now()
    record_activities(
        ctx,
        items=[
            ActivityIn(
                "r1",
                ActivityKind.REPLY,
                now - timedelta(hours=1),
                member_id=buyer,
                staff_account_id=account["id"],
                value=30,
            ),
            ActivityIn(
                "r2",
                ActivityKind.REPLY,
                now - timedelta(hours=2),
                member_id=buyer,
                staff_account_id=account["id"],
                value=90,
            ),
        ],
    )
    (row,) = staff_kpis(ctx, account_id=account["id"])
    assert {
        k: row[k]
        for k in (
            "members",
            "active_members",
            "attributed_gmv_fen",
            "replies",
            "avg_reply_seconds",
            "max_reply_seconds",
        )
    } == {
        "members": 1,
        "active_members": 1,
        "attributed_gmv_fen": 9_900,
        "replies": 2,
        "avg_reply_seconds": 60,
        "max_reply_seconds": 90,
    }


# --- activities and badges ------------------------------------------------------------------


def test_activities_delivered_twice_and_out_of_order_count_once_in_event_time(ctx: Ctx) -> None:
    (member,) = many_members(ctx, 1)
    base = ctx.clock.now() - timedelta(days=3)
    days = [
        ActivityIn(f"ck-{d}", ActivityKind.CHECK_IN, base + timedelta(days=d), member_id=member)
        for d in range(3)
    ]
    first = record_activities(ctx, items=[days[2], days[0]])
    late = record_activities(ctx, items=[days[1], days[2], days[1]])
    assert (first["recorded"], late["recorded"], late["duplicates"]) == (2, 1, 2)
    shown = facts.member_activity(ctx, member_id=member)
    assert shown["facts"] == [
        {"kind": "check_in", "count": 3, "first_at": base, "last_at": base + timedelta(days=2)}
    ]
    assert [i["external_id"] for i in shown["items"]] == ["ck-0", "ck-1", "ck-2"]
    with ctx.db.read() as tx:
        assert (
            facts.activity_facts(tx, tenant_id=ctx.tenant_id, member_ids=[member])[member][
                "check_ins"
            ]
            == 3
        )
        recorded = list_events(tx, tenant_id=ctx.tenant_id, type="ActivityRecorded")
    assert len(recorded) == 3


def test_a_batch_naming_an_unknown_member_changes_nothing(ctx: Ctx) -> None:
    (member,) = many_members(ctx, 1)
    good = ActivityIn("ok-1", ActivityKind.LIKE, ctx.clock.now(), member_id=member)
    bad = ActivityIn("bad-1", ActivityKind.LIKE, ctx.clock.now(), member_id="mem_nobody")
    with pytest.raises(InvalidInput) as refused:
        record_activities(ctx, items=[good, bad])
    assert refused.value.code == "activity_member_unknown"
    assert facts.member_activity(ctx, member_id=member)["items"] == []


def test_the_granter_awards_exactly_the_members_the_pure_rule_picks(ctx: Ctx) -> None:
    people = many_members(ctx, 6)
    now = ctx.clock.now()
    items = [
        ActivityIn(f"c-{i}-{k}", ActivityKind.CHECK_IN, now - timedelta(days=k), member_id=m)
        for i, m in enumerate(people)
        for k in range(i)
    ]
    record_activities(ctx, items=items)
    criteria = {
        "all": [
            {"fact": "check_ins", "op": ">=", "value": 3},
            {"fact": "check_ins", "op": "<", "value": 5},
        ]
    }
    badge = badges.create_badge(ctx, name="坚持打卡", criteria=criteria)
    granted = badges.grant_badges(ctx)
    with ctx.db.read() as tx:
        known = facts.activity_facts(tx, tenant_id=ctx.tenant_id, member_ids=people)
    expected = [m for m in people if meets(parse_criteria(criteria), known[m])]
    assert granted == {"awarded": [{"badge_id": badge["id"], "members": 2}], "total": 2}
    assert [m for m in people if badges.member_badges(ctx, member_id=m)["items"]] == expected
    assert badges.grant_badges(ctx)["total"] == 0  # set-based and idempotent
    title = badges.create_badge(ctx, name="首席米粉", kind="title")
    awarded, replayed = badges.award_badge(
        ctx, badge_id=title["id"], member_id=people[0], reason="创始会员"
    )
    assert not replayed
    assert awarded["awarded_by"] == "test"
    assert badges.award_badge(ctx, badge_id=title["id"], member_id=people[0])[1]
    assert badges.member_badges(ctx, member_id=people[0])["title"] == "首席米粉"
    with pytest.raises(Conflict):
        badges.grant_badges(ctx, badge_id=title["id"])
    # a badge awarded by hand is no criteria to check when activities come in
    later = ActivityIn("after-title", ActivityKind.CHECK_IN, now, member_id=people[1])
    assert record_activities(ctx, items=[later])["recorded"] == 1
    assert badges.grant_badges(ctx)["total"] == 0


# --- certificates ---------------------------------------------------------------------------


def test_a_certificate_pdf_names_the_member_and_its_code_verifies(ctx: Ctx) -> None:
    assert isinstance(ctx.clock, ManualClock)
    member = f.member(ctx, "王小米")
    until = ctx.clock.now() + timedelta(days=365)
    cert = certificates.issue_certificate(
        ctx,
        server_key=SECRET,
        member_id=member,
        kind="authorization",
        tier="省级代理",
        territory="浙江省",
        valid_until=until,
    )
    pdf = certificates.certificate_pdf(ctx, server_key=SECRET, certificate_id=cert["id"])
    text = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    for shown_text in ("王小米", "授权书", "浙江省", cert["code"]):
        assert shown_text in text
    shown = certificates.verify_code(
        ctx.db, server_key=SECRET, code=cert["code"], now=ctx.clock.now()
    )
    assert {
        k: shown[k]
        for k in ("valid", "status", "holder_name", "kind", "tier", "territory", "valid_until")
    } == {
        "valid": True,
        "status": "valid",
        "holder_name": "王小米",
        "kind": "authorization",
        "tier": "省级代理",
        "territory": "浙江省",
        "valid_until": until,
    }
    tampered = cert["code"][:-1] + ("A" if cert["code"][-1] != "A" else "B")
    for bad in (tampered, cert["code"].replace(cert["serial"], "ZZZZZZZZZZ"), "garbage"):
        with pytest.raises(NotFound):
            certificates.verify_code(ctx.db, server_key=SECRET, code=bad, now=ctx.clock.now())
    with pytest.raises(NotFound):
        certificates.verify_code(
            ctx.db, server_key="another-secret", code=cert["code"], now=ctx.clock.now()
        )
    later = certificates.verify_code(
        ctx.db, server_key=SECRET, code=cert["code"], now=until + timedelta(days=1)
    )
    assert (later["valid"], later["status"]) == (False, "expired")
    certificates.revoke_certificate(
        ctx, server_key=SECRET, certificate_id=cert["id"], reason="违规"
    )
    with pytest.raises(Conflict) as revoked:
        certificates.verify_code(ctx.db, server_key=SECRET, code=cert["code"], now=ctx.clock.now())
    assert revoked.value.code == "certificate_revoked"
    with pytest.raises(InvalidInput):
        certificates.issue_certificate(
            ctx, server_key=SECRET, member_id=member, kind="authorization"
        )


# --- chronicle, welcome and the outbox ------------------------------------------------------


def test_the_chronicle_notes_milestones_once_and_takes_manual_entries(ctx: Ctx) -> None:
    assert isinstance(ctx.clock, ManualClock)
    cid = community(ctx, size_class=15)
    people = many_members(ctx, 12)
    placement.place_members(ctx, community_id=cid, entries=[{"member_id": m} for m in people[:9]])
    placement.join_community(ctx, community_id=cid, member_id=people[9])
    placement.join_community(ctx, community_id=cid, member_id=people[10])
    chronicle.add_entry(ctx, community_id=cid, title="第一次线下见面会", body="杭州")
    groups_of = groups.list_groups(ctx, community_id=cid)["items"]
    record_activities(
        ctx,
        items=[
            ActivityIn(
                "first",
                ActivityKind.VISIT,
                ctx.clock.now() - timedelta(days=2),
                group_id=groups_of[0]["id"],
            )
        ],
    )
    ctx.clock.advance(days=366)
    refreshed = chronicle.refresh_milestones(ctx, community_id=cid)
    assert refreshed == {"community_id": cid, "noticed": 2, "written": 2}
    assert chronicle.refresh_milestones(ctx, community_id=cid)["written"] == 0
    entries = chronicle.chronicle(ctx, community_id=cid)
    assert [(e["kind"], e["milestone_key"]) for e in entries] == [
        ("milestone", "first_activity"),
        ("milestone", "members:10"),
        ("manual", None),
        ("milestone", "anniversary:1"),
    ]
    assert entries[1]["title"] == "社群成员达到 10 人"


def test_welcome_templates_render_and_the_outbox_keeps_each_message_once(ctx: Ctx) -> None:
    cid = community(ctx, size_class=5, name="小米之家")
    welcome.create_template(
        ctx,
        trigger="group_joined",
        body="欢迎{name}来到{group}，{referrer}推荐的{title}！",
        community_id=cid,
    )
    referrer = f.member(ctx, "老李")
    newcomer = f.member(ctx, "小张", referrer=referrer)
    placement.join_community(ctx, community_id=cid, member_id=newcomer)
    (task,) = outbox.outbox_page(ctx)["items"]
    assert task["body"] == "欢迎小张来到小米之家1群，老李推荐的米粉！"
    done = outbox.mark_done(ctx, message_id=task["id"])
    assert (done["status"], done["finished_by"]) == ("done", "test")
    with pytest.raises(Conflict):
        outbox.mark_skipped(ctx, message_id=task["id"])
    with ctx.db.transaction() as tx:
        first = enqueue_messages(
            tx,
            tenant_id=ctx.tenant_id,
            at=ctx.clock.now(),
            messages=[
                Message("repurchase:1", "repurchase_reminder", "该补货了"),
                Message("repurchase:1", "x", "y"),
            ],
        )
        again = enqueue_messages(
            tx,
            tenant_id=ctx.tenant_id,
            at=ctx.clock.now(),
            messages=[Message("repurchase:1", "x", "y")],
        )
    assert (len(first), again) == (1, [])


def PUBLIC(host: str, port: int) -> list[str]:
    return ["93.184.215.14"]


def test_a_channel_never_reaches_a_private_address(ctx: Ctx) -> None:
    def state() -> tuple[Any, ...]:
        with ctx.db.read() as tx:
            return (outbox.list_channels(ctx), list_events(tx, tenant_id=ctx.tenant_id))

    before = state()
    with pytest.raises(InvalidInput) as refused:
        outbox.create_channel(ctx, server_key=SECRET, name="内网", url="http://10.0.0.5/hook")
    assert refused.value.code == "webhook_url_private"
    assert state() == before
    # a public name that resolves inward is refused when a message would be sent
    channel = outbox.create_channel(
        ctx, server_key=SECRET, name="企微网关", url="https://hooks.example.test/wecom"
    )
    account = staff.create_account(
        ctx, name="企微号", channel="wecom", outbox_channel_id=channel["id"]
    )
    with ctx.db.transaction() as tx:
        enqueue_messages(
            tx,
            tenant_id=ctx.tenant_id,
            at=ctx.clock.now(),
            messages=[Message("hello:1", "greeting", "你好", staff_account_id=account["id"])],
        )
    received: list[httpx2.Request] = []
    client = httpx2.Client(
        transport=httpx2.MockTransport(lambda r: received.append(r) or httpx2.Response(200))
    )
    done = dispatcher.dispatch_all(
        ctx.db,
        server_key=SECRET,
        clock=ctx.clock,
        tenant_id=ctx.tenant_id,
        http=client,
        resolve=lambda host, port: ["127.0.0.1"],
    )
    assert (done.as_dict(), received) == ({"sent": 0, "failed": 1, "gave_up": 0}, [])
    (message,) = [m for m in outbox.outbox_page(ctx, limit=10)["items"] if m["kind"] == "greeting"]
    assert "not a public address" in message["last_error"]


def test_a_signed_webhook_channel_sends_and_retries(ctx: Ctx) -> None:
    channel = outbox.create_channel(
        ctx, server_key=SECRET, name="企微网关", url="https://hooks.example.test/wecom"
    )
    account = staff.create_account(
        ctx, name="企微号", channel="wecom", outbox_channel_id=channel["id"]
    )
    with ctx.db.transaction() as tx:
        enqueue_messages(
            tx,
            tenant_id=ctx.tenant_id,
            at=ctx.clock.now(),
            messages=[Message("hello:1", "greeting", "你好", staff_account_id=account["id"])],
        )
    received: list[httpx2.Request] = []
    answers = iter([500, 200])

    def reply(request: httpx2.Request) -> httpx2.Response:
        received.append(request)
        return httpx2.Response(next(answers))

    client = httpx2.Client(transport=httpx2.MockTransport(reply))
    first = dispatcher.dispatch_all(
        ctx.db,
        server_key=SECRET,
        clock=ctx.clock,
        tenant_id=ctx.tenant_id,
        http=client,
        resolve=PUBLIC,
    )
    assert first.as_dict() == {"sent": 0, "failed": 1, "gave_up": 0}
    assert isinstance(ctx.clock, ManualClock)
    ctx.clock.advance(minutes=1)
    second = dispatcher.dispatch_all(
        ctx.db,
        server_key=SECRET,
        clock=ctx.clock,
        tenant_id=ctx.tenant_id,
        http=client,
        resolve=PUBLIC,
    )
    assert second.as_dict() == {"sent": 1, "failed": 0, "gave_up": 0}
    last = received[-1]
    # sent to the address checked, under the channel's own host name
    assert (last.url.host, last.headers["Host"]) == ("93.184.215.14", "hooks.example.test")
    assert verify_signature(
        channel["secret"],
        last.headers["Shequn-Signature"],
        last.content,
        now=int(ctx.clock.now().timestamp()),
    )
    (message,) = outbox.outbox_page(ctx, adapter="signed_webhook")["items"]
    assert (message["status"], message["attempts"]) == ("sent", 2)


def test_the_venue_report_counts_activity_under_the_role_it_feeds(ctx: Ctx) -> None:
    cid = community(ctx, size_class=15)
    forum = add_venue(ctx, community_id=cid, name="论坛", kind="forum", role="rnd_feedback")
    club = add_venue(
        ctx, community_id=cid, name="爆米花", kind="wechat_group", role="emotional", default=True
    )
    (someone,) = many_members(ctx, 1)
    (group,) = groups.list_groups(ctx, community_id=cid)["items"]
    now = ctx.clock.now()
    record_activities(
        ctx,
        items=[
            ActivityIn("f1", ActivityKind.FEEDBACK, now, member_id=someone, venue_id=forum["id"]),
            ActivityIn("f2", ActivityKind.FEEDBACK, now, member_id=someone, venue_id=forum["id"]),
            ActivityIn("g1", ActivityKind.MESSAGE, now, member_id=someone, group_id=group["id"]),
            ActivityIn("old", ActivityKind.LIKE, now - timedelta(days=40), group_id=group["id"]),
        ],
    )
    shown = venue_report(ctx, community_id=cid, days=30)
    assert [(v["name"], v["feeds"], v["activities"]) for v in shown["venues"]] == [
        ("论坛", "product_reviews", {"feedback": 2}),
        ("爆米花", "community_care", {"message": 1}),
    ]
    assert shown["by_feed"] == {"community_care": 1, "product_reviews": 2}
    assert club["routing"]["complaint_escalation_pct"] == 50
