"""On SQLite and PostgreSQL: the copy library's ranked Chinese full-text search, the texts of
ingested messages read for sensitive words, and milestone badges awarded through the badges
service."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from shequn.clock import ManualClock
from shequn.community.activities.rules import ActivityIn, ActivityKind
from shequn.community.cadence import service as cadence
from shequn.community.founding import create_community
from shequn.community.groups import placement
from shequn.community.health import service as health
from shequn.community.health.tables import community_alerts
from shequn.community.programs import service as programs
from shequn.community.rituals import badges
from shequn.community.tables import activities, member_activity_facts
from shequn.context import Ctx
from shequn.errors import InvalidInput
from shequn.events.service import list_events
from shequn.flows import activity_ingestion, community_rewards
from tests import factories as f

SECRET = "test-deployment-secret"
START = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


@pytest.fixture
def ops(ctx: Ctx, clock: ManualClock) -> Ctx:
    clock.set(START)
    return ctx


def _count(ctx: Ctx, table: Any) -> int:
    with ctx.db.read() as tx:
        return int(
            tx.execute(
                select(func.count()).select_from(table).where(table.c.tenant_id == ctx.tenant_id)
            ).scalar_one()
        )


# --- the copy library ------------------------------------------------------------------------


def _titles(ctx: Ctx, q: str) -> list[str]:
    return [i["title"] for i in cadence.search_copy(ctx, q=q)["items"]]


def test_more_matches_rank_first(ops: Ctx) -> None:
    cadence.add_copy(ops, title="早安", body="朋友圈文案：今天的直播晒单，社群里的互动")
    cadence.add_copy(ops, title="晚安", body="朋友圈文案：朋友圈晒单，朋友圈里的互动")
    cadence.add_copy(ops, title="午安", body="直播带货的开场白")
    assert _titles(ops, "朋友圈") == ["晚安", "早安"]
    assert _titles(ops, "直播") == ["午安", "早安"]


def test_a_chinese_query_finds_its_words_wherever_they_are(ops: Ctx) -> None:
    cadence.add_copy(ops, title="三条分享", body="发朋友圈之前，先想好三条文案")
    cadence.add_copy(ops, title="只有朋友圈", body="每天一条朋友圈")
    found = cadence.search_copy(ops, q="朋友圈文案")
    assert found["terms"] == ["朋友", "朋友圈", "文案"]
    assert [i["title"] for i in found["items"]] == ["三条分享"]
    assert _titles(ops, "训练营") == []


def test_the_search_stays_within_the_tenant(ops: Ctx, tenant: tuple[Ctx, str]) -> None:
    from shequn.tenancy.service import create_tenant

    other_id, _ = create_tenant(db=ops.db, clock=ops.clock, name="另一个品牌")
    other = Ctx(db=ops.db, clock=ops.clock, tenant_id=other_id, actor="test")
    cadence.add_copy(other, title="别家", body="朋友圈文案")
    cadence.add_copy(ops, title="自家", body="朋友圈文案")
    assert _titles(ops, "朋友圈文案") == ["自家"]
    assert _titles(other, "朋友圈文案") == ["别家"]


def test_the_search_index_follows_the_copies(ops: Ctx) -> None:
    """SQLite: the FTS5 table holds one entry per copy, kept by the triggers; PostgreSQL: the
    GIN index serves the search."""
    added = cadence.add_copy(ops, title="索引", body="朋友圈文案")
    with ops.db.transaction() as tx:
        if tx.dialect.name == "sqlite":
            entries = tx.execute(
                text("SELECT copy_id FROM copy_entries_fts WHERE tenant_id = :t"),
                {"t": ops.tenant_id},
            ).scalars()
            assert list(entries) == [added["id"]]
            tx.execute(
                text("UPDATE copy_entries SET tokens = 'changed' WHERE tenant_id = :t"),
                {"t": ops.tenant_id},
            )
            assert _rows_matching(tx, ops.tenant_id, '"changed"') == 1
            assert _rows_matching(tx, ops.tenant_id, '"朋友圈"') == 0
            tx.execute(text("DELETE FROM copy_entries WHERE tenant_id = :t"), {"t": ops.tenant_id})
            assert _rows_matching(tx, ops.tenant_id, '"changed"') == 0
        else:
            tx.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(
                tx.execute(
                    text(
                        "EXPLAIN SELECT id FROM copy_entries WHERE "
                        "to_tsvector('simple'::regconfig, tokens) @@ "
                        "plainto_tsquery('simple'::regconfig, '朋友圈')"
                    )
                ).scalars()
            )
            assert "ix_copy_entries_tokens_tsv" in plan


def _rows_matching(tx: Any, tenant_id: str, match: str) -> int:
    return int(
        tx.execute(
            text(
                "SELECT count(*) FROM copy_entries_fts "
                "WHERE copy_entries_fts MATCH :m AND tenant_id = :t"
            ),
            {"m": match, "t": tenant_id},
        ).scalar_one()
    )


# --- sensitive words in ingested messages ---------------------------------------------------


def _group(ctx: Ctx, n: int) -> tuple[str, list[str]]:
    community = create_community(ctx, name=f"社群 {ctx.tenant_id[-6:]}", size_class=150)
    members = [f.member(ctx, f"群友{i}") for i in range(n)]
    group_id = ""
    for m in members:
        placed, _ = placement.join_community(ctx, community_id=community["id"], member_id=m)
        group_id = placed["group_id"]
    return group_id, members


def _message(external_id: str, group_id: str, member_id: str, words: str) -> ActivityIn:
    return ActivityIn(
        external_id,
        ActivityKind.MESSAGE,
        START - timedelta(minutes=5),
        member_id=member_id,
        group_id=group_id,
        text=words,
    )


def _crisis(ctx: Ctx) -> list[dict[str, Any]]:
    return health.list_alerts(ctx, kind="crisis")["items"]


def test_a_sensitive_message_raises_one_crisis_alert_with_its_reach(ops: Ctx) -> None:
    group_id, members = _group(ops, 4)
    message = _message("m-1", group_id, members[1], "这家卖的是假货，我要去曝光他们，大家别买了")
    done = activity_ingestion.record_and_scan(ops, items=[message])
    assert (done["recorded"], done["scanned"]) == (1, 1)
    [alert] = _crisis(ops)
    assert [a["id"] for a in done["crisis_alerts"]] == [alert["id"]]
    assert (alert["subject_type"], alert["subject_id"]) == ("group", group_id)
    details = alert["details"]
    assert details["triggers"] == ["sensitive_words"]
    assert details["words"] == ["假货", "曝光"]
    assert details["members"] == [members[1]]
    assert details["members_reached"] == 4
    assert [g["group_id"] for g in details["groups"]] == [group_id]
    assert len(details["activities"]) == 1
    assert details["excerpts"] == ["这家卖的是假货，我要去曝光他们，大家别…"]
    # The text itself is kept nowhere else.
    with ops.db.read() as tx:
        stored = tx.execute(select(activities).where(activities.c.tenant_id == ops.tenant_id)).one()
        recorded = list_events(tx, tenant_id=ops.tenant_id, type="ActivityRecorded")
    assert "假货" not in repr(dict(stored._mapping))
    assert "假货" not in repr(recorded)

    # The same delivery again is a duplicate: nothing is scanned, the alert stays as it was.
    again = activity_ingestion.record_and_scan(ops, items=[message])
    assert (again["recorded"], again["duplicates"], again["scanned"]) == (0, 1, 0)
    assert again["crisis_alerts"] == []
    assert _crisis(ops) == [alert]
    with ops.db.read() as tx:
        raised = list_events(tx, tenant_id=ops.tenant_id, type="CommunityAlertRaised")
    assert len(raised) == 1


def test_a_long_message_is_kept_as_a_short_excerpt(ops: Ctx) -> None:
    group_id, members = _group(ops, 2)
    long = "今天天气很好，" * 40 + "我要举报这个团长" + "，大家早点休息" * 40
    activity_ingestion.record_and_scan(ops, items=[_message("m-1", group_id, members[0], long)])
    [alert] = _crisis(ops)
    [shown] = alert["details"]["excerpts"]
    assert shown == "…很好，今天天气很好，我要举报这个团长，大家早点休息，…"


def test_a_second_message_adds_to_the_open_alert(ops: Ctx) -> None:
    group_id, members = _group(ops, 3)
    activity_ingestion.record_and_scan(
        ops, items=[_message("m-1", group_id, members[0], "感觉是假货")]
    )
    activity_ingestion.record_and_scan(
        ops, items=[_message("m-2", group_id, members[2], "吃了过敏了")]
    )
    [alert] = _crisis(ops)
    assert alert["details"]["words"] == ["假货", "过敏"]
    assert alert["details"]["members"] == sorted([members[0], members[2]])
    assert len(alert["details"]["activities"]) == 2


def test_messages_without_sensitive_words_raise_nothing(ops: Ctx) -> None:
    group_id, members = _group(ops, 2)
    done = activity_ingestion.record_and_scan(
        ops, items=[_message("m-1", group_id, members[0], "今天的文案课太有用了，谢谢老师")]
    )
    assert (done["recorded"], done["scanned"], done["crisis_alerts"]) == (1, 1, [])
    assert _crisis(ops) == []


def test_a_text_too_long_or_on_another_kind_is_refused_and_nothing_is_stored(ops: Ctx) -> None:
    group_id, members = _group(ops, 2)
    before = (_count(ops, activities), _count(ops, member_activity_facts))
    with pytest.raises(InvalidInput) as too_long:
        activity_ingestion.record_and_scan(
            ops, items=[_message("m-1", group_id, members[0], "曝光" * 1_001)]
        )
    assert too_long.value.code == "activity_text_too_long"
    assert too_long.value.params == {"external_id": "m-1", "max": 2_000}
    like = ActivityIn(
        "l-1", ActivityKind.LIKE, START, member_id=members[0], group_id=group_id, text="曝光"
    )
    with pytest.raises(InvalidInput) as wrong_kind:
        activity_ingestion.record_and_scan(ops, items=[like])
    assert wrong_kind.value.code == "activity_text_not_allowed"
    assert (_count(ops, activities), _count(ops, member_activity_facts)) == before
    assert _count(ops, community_alerts) == 0


# --- milestone badges -----------------------------------------------------------------------


def test_a_milestone_badge_is_awarded_once_through_the_badges_service(
    ops: Ctx, clock: ManualClock
) -> None:
    badge = badges.create_badge(ops, name="七日之星")
    camp = programs.create_program(
        ops,
        title="7天打卡",
        days=7,
        starts_on=date(2026, 12, 1),
        milestones=[{"day": 3, "badge_id": badge["id"], "tag": "坚持三天"}],
    )
    member = f.member(ops, "学员")
    for day in range(1, 6):
        clock.set(datetime(2026, 11, 30, 14, tzinfo=UTC) + timedelta(days=day))
        community_rewards.check_in(ops, server_key=SECRET, program_id=camp["id"], member_id=member)
    shown = badges.member_badges(ops, member_id=member)["items"]
    assert [(b["badge_id"], b["awarded_by"], b["reason"]) for b in shown] == [
        (badge["id"], "program", f"{camp['id']}:3")
    ]
    with ops.db.read() as tx:
        awarded = list_events(tx, tenant_id=ops.tenant_id, type="BadgeAwarded")
    assert [(e["subject_id"], e["payload"]) for e in awarded] == [
        (member, {"badge_id": badge["id"], "by": "program"})
    ]
