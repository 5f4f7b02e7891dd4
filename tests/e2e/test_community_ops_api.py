"""Community operations II over HTTP and the command line: every route of the issue in the
OpenAPI document, a Tue/Thu class series with RSVPs and attendance by code, a 21-day camp
whose certificate verifies through the public endpoint, schedules refused with the figure,
a crisis from three complaints, bad input refused with a code and nothing changed, and the
operator's commands (schedules, growth stages, health, ranking export)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from shequn.clock import ManualClock
from shequn.db import Database
from shequn.entrypoints.cli import app as cli
from tests.e2e.conftest import API, TenantKeys, contents, error_of, expect

ISSUE_ROUTES = [
    ("post", "/calendar-events"),
    ("get", "/calendar-events/{event_id}/occurrences"),
    ("post", "/calendar-events/{event_id}/rsvps"),
    ("post", "/calendar-events/{event_id}/attendance"),
    ("post", "/programs"),
    ("post", "/programs/{program_id}/checkins"),
    ("get", "/programs/{program_id}/ranking"),
    ("get", "/members/{member_id}/growth"),
    ("get", "/leaderboards/{kind}"),
    ("post", "/sops"),
    ("post", "/posts"),
    ("get", "/copy-library"),
    ("get", "/groups/{group_id}/health"),
    ("post", "/complaints"),
    ("get", "/alerts"),
]
START = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
FIRST_CLASS = "2026-12-01T12:00:00Z"  # Tuesday 20:00 in Shanghai


@pytest.fixture
def ops(api: TestClient, clock: ManualClock) -> TestClient:
    clock.set(START)
    return api


def member(api: TestClient, name: str) -> str:
    return str(expect(api.post(f"{API}/members", json={"name": name}), 201)["id"])


def test_every_route_of_the_issue_is_documented_with_a_typed_answer(api: TestClient) -> None:
    paths = expect(api.get("/openapi.json"), 200)["paths"]
    for method, path in ISSUE_ROUTES:
        operation = paths[API + path][method]
        assert operation["summary"], path
        assert operation["description"], path
        answer = next(iter(operation["responses"].values()))
        assert "$ref" in answer["content"]["application/json"]["schema"], path
    occurrences = paths[API + "/calendar-events/{event_id}/occurrences"]["get"]
    assert {p["name"] for p in occurrences["parameters"]} >= {"from", "to"}
    assert "/api/v1/events" in paths  # the business event feed stays where it was


def test_a_class_series_with_rsvps_and_attendance_by_code(
    ops: TestClient, clock: ManualClock
) -> None:
    body = {
        "title": "精英班",
        "kind": "class",
        "rrule": "FREQ=WEEKLY;BYDAY=TU,TH",
        "starts_at": FIRST_CLASS,
        "capacity": 1,
        "points": 30,
    }
    event = expect(ops.post(f"{API}/calendar-events", json=body), 201)
    month = expect(
        ops.get(
            f"{API}/calendar-events/{event['id']}/occurrences",
            params={"from": "2026-12-01T00:00:00+08:00", "to": "2027-01-01T00:00:00+08:00"},
        ),
        200,
    )
    assert [i["starts_at"][:16] for i in month["items"]] == [
        f"2026-12-{d:02d}T12:00" for d in (1, 3, 8, 10, 15, 17, 22, 24, 29, 31)
    ]
    a, b = member(ops, "甲"), member(ops, "乙")
    url = f"{API}/calendar-events/{event['id']}/rsvps"
    seat = expect(ops.post(url, json={"member_id": a, "occurrence_at": FIRST_CLASS}), 201)
    wait = expect(ops.post(url, json={"member_id": b, "occurrence_at": FIRST_CLASS}), 201)
    assert (seat["status"], wait["status"], wait["waitlist_position"]) == (
        "confirmed",
        "waitlisted",
        1,
    )
    freed = expect(
        ops.post(url, json={"member_id": a, "occurrence_at": FIRST_CLASS, "cancel": True}), 200
    )
    assert freed["promoted"] == [b]

    clock.set(datetime(2026, 12, 1, 12, 15, tzinfo=UTC))
    attend = f"{API}/calendar-events/{event['id']}/attendance"
    came = expect(ops.post(attend, json={"member_id": b, "code": event["attendance_code"]}), 201)
    again = ops.post(attend, json={"member_id": b, "code": event["attendance_code"]})
    assert (came["points_earned"], expect(again, 200)["points_earned"]) == (30, 0)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert expect(ops.get(f"{API}/members/{b}/points"), 200)["balance"] == 30
    growth = expect(ops.get(f"{API}/members/{b}/growth"), 200)
    assert [f["value"] for f in growth["facts"] if f["fact"] == "events_attended"] == [1]
    board = expect(ops.get(f"{API}/leaderboards/attendance", params={"period": "7d"}), 200)
    assert [(i["member_id"], i["score"]) for i in board["items"]] == [(b, 1)]


def test_a_21_day_camp_completes_and_its_certificate_verifies_publicly(
    ops: TestClient, client: TestClient, clock: ManualClock
) -> None:
    camp = expect(
        ops.post(
            f"{API}/programs",
            json={
                "title": "21天文案训练营",
                "days": 21,
                "makeup_limit": 2,
                "starts_on": "2026-12-01",
            },
        ),
        201,
    )
    who = member(ops, "学员")
    url = f"{API}/programs/{camp['id']}/checkins"
    for day in range(1, 22):
        clock.set(datetime(2026, 11, 30, 14, tzinfo=UTC) + timedelta(days=day))
        if day not in (6, 13):
            last = expect(ops.post(url, json={"member_id": who}), 201)
    assert (last["completed"], last["missed_days"]) == (False, [6, 13])
    expect(ops.post(url, json={"member_id": who, "kind": "makeup", "day": 6}), 201)
    done = expect(ops.post(url, json={"member_id": who, "kind": "makeup", "day": 13}), 201)
    assert done["completed"]
    assert done["certificate_id"]
    assert error_of(ops.post(url, json={"member_id": who, "kind": "makeup", "day": 14})) == (
        409,
        "checkin_day_taken",
    )
    certificate = expect(ops.get(f"{API}/certificates/{done['certificate_id']}"), 200)
    public = client.get(
        f"{API}/certificates/verify/{certificate['code']}", headers={"Authorization": ""}
    )
    assert (expect(public, 200)["valid"], public.json()["holder_name"]) == (True, "学员")
    ranking = expect(ops.get(f"{API}/programs/{camp['id']}/ranking"), 200)
    assert [(i["member_id"], i["completed"]) for i in ranking["items"]] == [(who, True)]


def _group(api: TestClient, size: int) -> tuple[str, str, list[str]]:
    community = expect(
        api.post(f"{API}/communities", json={"name": "运营群", "size_class": 150}), 201
    )
    people = [member(api, f"群友{i}") for i in range(size)]
    group_id = ""
    for p in people:
        placed = expect(
            api.post(f"{API}/communities/{community['id']}/members", json={"member_id": p}), 201
        )
        group_id = placed["group_id"]
    return community["id"], group_id, people


def test_a_carpet_bombing_schedule_is_refused_with_the_figure_and_nothing_queued(
    ops: TestClient, db: Database, keys: TenantKeys
) -> None:
    _, group_id, _ = _group(ops, 2)
    expect(ops.patch(f"{API}/cadence", json={"monthly_budget": 2, "min_gap_minutes": 0}), 200)
    steps = [{"day": d, "minute": 600, "body": f"第{d}天"} for d in range(3)]
    sop = {
        "name": "新群",
        "target_kind": "group",
        "target_id": group_id,
        "starts_on": "2026-12-01",
        "steps": steps,
    }
    before = contents(db, keys.tenant_id)
    refused = ops.post(f"{API}/sops", json=sop)
    assert error_of(refused) == (409, "schedule_over_budget")
    assert "3" in refused.json()["message"]
    assert "2" in refused.json()["message"]
    night = {
        "target_kind": "group",
        "target_id": group_id,
        "body": "晚安",
        "send_at": "2026-12-02T23:30:00+08:00",
    }
    quiet = ops.post(f"{API}/posts", json=night)
    assert error_of(quiet) == (409, "schedule_in_quiet_hours")
    assert "23:30" in quiet.json()["message"]
    assert contents(db, keys.tenant_id) == before
    ok = expect(ops.post(f"{API}/sops", json={**sop, "steps": steps[:2]}), 201)
    assert [p["recipients"] for p in ok["posts"]] == [2, 2]


def test_three_complaints_raise_one_crisis_alert(ops: TestClient) -> None:
    expect(
        ops.post(
            f"{API}/products",
            json={"sku": "MASK-1", "name": "面膜", "price_fen": 9900, "ladder_role": "core"},
        ),
        201,
    )
    _, group_id, people = _group(ops, 4)
    for who in people[:3]:
        last = expect(
            ops.post(
                f"{API}/complaints", json={"member_id": who, "body": "面膜过期了", "sku": "MASK-1"}
            ),
            201,
        )
    alert = last["crisis_alert"]
    assert alert["details"]["members_reached"] == 4
    assert [g["group_id"] for g in alert["details"]["groups"]] == [group_id]
    alerts = expect(ops.get(f"{API}/alerts", params={"kind": "crisis"}), 200)["items"]
    assert [a["id"] for a in alerts] == [alert["id"]]
    scan = {"items": [{"group_id": group_id, "member_id": people[3], "text": "再不退款我就去维权"}]}
    scanned = expect(ops.post(f"{API}/message-scans", json=scan), 200)
    assert scanned["alerts"][0]["details"]["words"] == ["维权"]
    health = expect(ops.get(f"{API}/groups/{group_id}/health"), 200)
    assert (health["size"], health["active_7d"]) == (4, 0)
    copy = {"title": "道歉文案", "body": "关于面膜问题的致歉与退款说明"}
    expect(ops.post(f"{API}/copy-library", json=copy), 201)
    found = expect(ops.get(f"{API}/copy-library", params={"q": "面膜退款"}), 200)
    assert [i["title"] for i in found["items"]] == ["道歉文案"]


BAD = [
    (
        "post",
        "/calendar-events",
        {"title": "x", "kind": "class", "rrule": "FREQ=SECONDLY", "starts_at": FIRST_CLASS},
        422,
        "rrule_invalid",
    ),
    (
        "post",
        "/calendar-events",
        {"title": "x", "kind": "party", "rrule": "FREQ=DAILY", "starts_at": FIRST_CLASS},
        422,
        "validation_error",
    ),
    (
        "get",
        "/calendar-events/cal_nope/occurrences?from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z",
        None,
        404,
        "calendar_event_not_found",
    ),
    (
        "post",
        "/programs",
        {"title": "x", "days": 21, "window_days": 7, "starts_on": "2026-12-01"},
        422,
        "program_days_invalid",
    ),
    ("post", "/programs/prog_nope/checkins", {"member_id": "mem_nope"}, 404, "program_not_found"),
    ("get", "/leaderboards/luck", None, 422, "validation_error"),
    (
        "post",
        "/posts",
        {
            "target_kind": "group",
            "target_id": "grp_nope",
            "body": "x",
            "send_at": "2026-12-02T10:00:00+08:00",
        },
        404,
        "group_not_found",
    ),
    ("post", "/complaints", {"member_id": "mem_nope", "body": "坏了"}, 404, "member_not_found"),
    ("get", "/groups/grp_nope/health", None, 404, "group_not_found"),
    ("get", "/members/mem_nope/growth", None, 404, "member_not_found"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    BAD,
    ids=[f"{b[0]} {b[1][:30]} {b[4]}" for b in BAD],
)
def test_bad_input_is_refused_with_a_code_and_changes_nothing(
    ops: TestClient,
    db: Database,
    keys: TenantKeys,
    method: str,
    path: str,
    body: Any,
    status: int,
    code: str,
) -> None:
    before = contents(db, keys.tenant_id)
    response = ops.request(method, API + path, json=body)
    assert error_of(response) == (status, code)
    assert contents(db, keys.tenant_id) == before


# --- the command line -----------------------------------------------------------------------


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env={"SHEQUN_LOCALE": "en"}, catch_exceptions=False)


def test_an_operator_runs_schedules_evaluates_growth_scans_health_and_exports_a_ranking(
    ops: TestClient, db: Database, keys: TenantKeys, clock: ManualClock
) -> None:
    url = db.engine.url.render_as_string(hide_password=False)
    _, group_id, people = _group(ops, 2)
    post = {
        "target_kind": "group",
        "target_id": group_id,
        "body": "今晚八点上课",
        "send_at": "2026-12-01T10:00:00+08:00",
    }
    expect(ops.post(f"{API}/posts", json=post), 201)
    camp = expect(
        ops.post(f"{API}/programs", json={"title": "打卡", "days": 3, "starts_on": "2026-11-30"}),
        201,
    )
    expect(ops.post(f"{API}/programs/{camp['id']}/checkins", json={"member_id": people[0]}), 201)

    common = ("-t", keys.tenant_id, "--database-url", url)
    schedules = run("community-ops", "run-schedules", *common, "--json")
    assert schedules.exit_code == 0, schedules.output
    assert json.loads(schedules.stdout)["posts"] == 1  # the machine's clock is past 1 December
    growth = run("community-ops", "evaluate-growth", *common, "--json")
    # the member who checked in was read then; the other one reaches 进入 now
    assert json.loads(growth.stdout) == {"evaluated": 2, "changed": 1}
    scan = run("community-ops", "health-scan", *common)
    assert scan.exit_code == 0
    assert "groups=1" in scan.stdout
    exported = run("community-ops", "export-ranking", camp["id"], *common)
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(r["member_id"], r["covered_days"]) for r in rows] == [(people[0], "1")]
    unknown = run("community-ops", "export-ranking", "prog_nope", *common)
    assert unknown.exit_code == 2
