"""Community operations over HTTP and the command line: every route of the issue in the
OpenAPI document with a typed answer, a community's life through the API, the public
certificate check, the signed activity webhook, the CLI's import, placement and handover, and
bad input that is refused with a code and changes nothing."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pypdf
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from shequn.db import Database
from shequn.entrypoints.cli import app as cli
from shequn.webhooks.rules import signature_header
from tests.e2e.conftest import API, TenantKeys, contents, error_of, expect

ISSUE_ROUTES = [
    ("post", "/communities"),
    ("post", "/communities/{community_id}/members"),
    ("get", "/communities/{community_id}/join-code"),
    ("get", "/groups/{group_id}"),
    ("post", "/groups/{group_id}/split"),
    ("post", "/staff-accounts"),
    ("post", "/staff-accounts/{account_id}/handover"),
    ("post", "/badges"),
    ("get", "/members/{member_id}/badges"),
    ("post", "/certificates"),
    ("get", "/certificates/verify/{code}"),
    ("post", "/activities"),
    ("get", "/outbox"),
]


def test_every_route_of_the_issue_is_documented_with_a_typed_answer(api: TestClient) -> None:
    paths = expect(api.get("/openapi.json"), 200)["paths"]
    for method, path in ISSUE_ROUTES:
        operation = paths[API + path][method]
        assert operation["summary"], path
        answer = next(iter(operation["responses"].values()))
        schema = answer["content"]["application/json"]["schema"]
        assert "$ref" in schema or schema.get("type") == "array", path
    assert "/verify/{code}" in paths
    assert API + "/hooks/activities/{tenant_id}/{source_id}" in paths


def member(api: TestClient, name: str, **extra: Any) -> str:
    return str(expect(api.post(f"{API}/members", json={"name": name, **extra}), 201)["id"])


def test_a_community_through_the_api(api: TestClient, client: TestClient, keys: TenantKeys) -> None:
    # a community of 5-member groups, and seven members joining it
    body = {"name": "米粉社群", "member_title": "米粉", "mission": "为发烧而生", "size_class": 5}
    community = expect(api.post(f"{API}/communities", json=body), 201)
    assert (community["group_count"], community["member_count"]) == (1, 0)
    people = [member(api, f"米粉{i}") for i in range(7)]
    placed = [
        expect(api.post(f"{API}/communities/{community['id']}/members", json={"member_id": m}), 201)
        for m in people[:6]
    ]
    assert [p["group"]["number"] for p in placed] == [1, 1, 1, 1, 1, 2]
    again = api.post(f"{API}/communities/{community['id']}/members", json={"member_id": people[0]})
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (200, "true")
    group = expect(api.get(f"{API}/groups/{placed[0]['group_id']}"), 200)
    assert {k: group[k] for k in ("size", "cap", "size_class", "room", "oversize")} == {
        "size": 5,
        "cap": 5,
        "size_class": 5,
        "room": 0,
        "oversize": False,
    }
    code = expect(api.get(f"{API}/communities/{community['id']}/join-code"), 200)
    assert (code["code"], code["group"]["number"]) == (community["join_code"], 2)
    by_code = expect(
        api.post(f"{API}/join-codes/{code['code']}/members", json={"member_id": people[6]}), 201
    )
    assert by_code["group"]["size"] == 2
    split = api.post(f"{API}/groups/{placed[0]['group_id']}/split", json={})
    assert error_of(split) == (409, "group_not_oversize")

    # staff accounts: assignment and a handover
    first = expect(
        api.post(
            f"{API}/staff-accounts",
            json={"name": "宝妈小美", "persona": "宝妈 IP", "working_hours": "00:00-24:00"},
        ),
        201,
    )
    second = expect(
        api.post(
            f"{API}/staff-accounts", json={"name": "客服小王", "working_hours": "00:00-24:00"}
        ),
        201,
    )
    assert (first["friend_cap"], first["near_full"]) == (5_000, False)
    for m in people[:4]:
        expect(
            api.post(
                f"{API}/staff-accounts/{first['id']}/members",
                json={"member_id": m, "state": "spring"},
            ),
            201,
        )
    run = expect(
        api.post(
            f"{API}/staff-accounts/{first['id']}/handover",
            json={"fallback_account_id": second["id"]},
        ),
        200,
    )
    assert (run["requested_now"], run["calls_now"], run["members"]["pending"]) == (4, 1, 4)
    assert expect(api.get(f"{API}/handovers/{run['id']}"), 200)["members"]["pending"] == 4
    kpis = expect(api.get(f"{API}/staff-kpis"), 200)
    assert [(k["name"], k["members"]) for k in kpis] == [("宝妈小美", 4), ("客服小王", 4)]

    # badges by criteria over activities that arrive twice and out of order
    criteria = {"all": [{"fact": "check_ins", "op": ">=", "value": 2}]}
    badge = expect(api.post(f"{API}/badges", json={"name": "打卡达人", "criteria": criteria}), 201)
    day = [
        {
            "external_id": f"ck-{d}",
            "kind": "check_in",
            "occurred_at": f"2026-01-0{d}T12:00:00Z",
            "member_id": people[0],
        }
        for d in (3, 1)
    ]
    assert expect(api.post(f"{API}/activities", json={"items": day}), 200)["badges_awarded"] == 1
    twice = expect(api.post(f"{API}/activities", json={"items": day[::-1]}), 200)
    assert (twice["recorded"], twice["duplicates"]) == (0, 2)
    earned = expect(api.get(f"{API}/members/{people[0]}/badges"), 200)
    assert [i["badge_id"] for i in earned["items"]] == [badge["id"]]
    activity = expect(api.get(f"{API}/members/{people[0]}/activities"), 200)
    assert [i["external_id"] for i in activity["items"]] == ["ck-1", "ck-3"]
    assert activity["facts"][0]["count"] == 2

    # a certificate, its PDF and the public check
    cert = expect(
        api.post(
            f"{API}/certificates",
            json={"member_id": people[0], "kind": "honour", "citation": "年度米粉"},
        ),
        201,
    )
    pdf = api.get(cert["pdf_url"])
    assert pdf.headers["content-type"] == "application/pdf"
    assert "米粉0" in pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    public = {"Accept-Language": "zh-CN"}
    shown = expect(client.get(f"{API}/certificates/verify/{cert['code']}", headers=public), 200)
    assert (shown["holder_name"], shown["valid"], shown["citation"]) == ("米粉0", True, "年度米粉")
    page = client.get(f"/verify/{cert['code']}", headers=public)
    assert page.status_code == 200
    assert "米粉0" in page.text
    assert "证书真实有效" in page.text
    tampered = cert["code"][:-2] + ("AA" if not cert["code"].endswith("AA") else "BB")
    assert error_of(client.get(f"{API}/certificates/verify/{tampered}")) == (
        404,
        "certificate_code_invalid",
    )
    refused_page = client.get(f"/verify/{tampered}")
    assert (refused_page.status_code, refused_page.headers["content-type"][:9]) == (
        404,
        "text/html",
    )
    as_json = client.get(f"/verify/{tampered}", headers={"Accept": "application/json"})
    assert error_of(as_json) == (404, "certificate_code_invalid")
    expect(api.post(f"{API}/certificates/{cert['id']}/revoke", json={"reason": "违规"}), 200)
    assert error_of(client.get(f"{API}/certificates/verify/{cert['code']}")) == (
        409,
        "certificate_revoked",
    )
    revoked_page = client.get(f"/verify/{cert['code']}", headers=public)
    assert revoked_page.status_code == 409
    assert "米粉0" not in revoked_page.text

    # the operator's task list
    tasks = expect(
        api.get(
            f"{API}/outbox", params={"adapter": "operator_task", "status": "pending", "limit": 200}
        ),
        200,
    )
    kinds = {t["kind"] for t in tasks["items"]}
    assert {"welcome_group_joined", "welcome_staff_added", "transfer_call"} <= kinds
    done = expect(api.post(f"{API}/outbox/{tasks['items'][0]['id']}/done"), 200)
    assert done["status"] == "done"
    assert error_of(api.post(f"{API}/outbox/{done['id']}/done")) == (
        409,
        "outbox_transition_invalid",
    )


def test_the_signed_activity_webhook(api: TestClient, client: TestClient, keys: TenantKeys) -> None:
    source = expect(api.post(f"{API}/activity-sources", json={"name": "企微回调"}), 201)
    someone = member(api, "回调会员")
    body = json.dumps(
        {
            "items": [
                {
                    "external_id": "wx-1",
                    "kind": "like",
                    "occurred_at": "2026-01-05T08:00:00Z",
                    "member_id": someone,
                }
            ]
        }
    ).encode()
    path = f"{API}/hooks/activities/{keys.tenant_id}/{source['id']}"
    now = int(datetime(2026, 1, 5, 9, 0, tzinfo=UTC).timestamp())  # the test clock's time

    def send(signed_at: int, secret: str = source["secret"], content: bytes = body) -> Any:
        header = signature_header([secret], signed_at, content)
        return client.post(
            path,
            content=content,
            headers={"Content-Type": "application/json", "Shequn-Signature": header},
        )

    assert expect(send(now), 200)["recorded"] == 1
    assert expect(send(now + 60), 200)["duplicates"] == 1
    for refused in (
        send(now - 3_600),
        send(now, secret="acsec_wrong"),
        client.post(path, content=body),
    ):
        assert error_of(refused) == (403, "activity_signature_invalid")
    other = f"{API}/hooks/activities/{keys.tenant_id}/asrc_nope"
    header = signature_header([source["secret"]], now, body)
    assert (
        error_of(client.post(other, content=body, headers={"Shequn-Signature": header}))[0] == 404
    )


BAD = [
    ("post", "/communities", {"name": "x", "size_class": 100}, 422, "size_class_invalid"),
    (
        "post",
        "/communities",
        {"name": "x", "group_name_pattern": "{community}"},
        422,
        "group_pattern_needs_number",
    ),
    ("post", "/communities", {"name": " "}, 422, "field_required"),
    ("post", "/communities/cmty_nope/members", {"member_id": "mem_x"}, 404, "community_not_found"),
    ("get", "/groups/grp_nope", None, 404, "group_not_found"),
    (
        "post",
        "/staff-accounts",
        {"name": "x", "working_hours": "9-5"},
        422,
        "working_hours_invalid",
    ),
    ("post", "/staff-accounts/stf_nope/handover", {}, 404, "staff_account_not_found"),
    (
        "post",
        "/badges",
        {"name": "x", "criteria": {"all": [{"fact": "height", "op": ">", "value": 1}]}},
        422,
        "badge_fact_unknown",
    ),
    ("get", "/members/mem_nope/badges", None, 404, "member_not_found"),
    (
        "post",
        "/certificates",
        {"member_id": "mem_nope", "kind": "honour", "citation": "x"},
        404,
        "member_not_found",
    ),
    (
        "post",
        "/activities",
        {
            "items": [
                {
                    "external_id": "a",
                    "kind": "like",
                    "occurred_at": "2026-01-05T08:00:00Z",
                    "member_id": "mem_nope",
                }
            ]
        },
        422,
        "activity_member_unknown",
    ),
    (
        "post",
        "/activities",
        {"items": [{"external_id": "a", "kind": "like", "occurred_at": "2026-01-05T08:00:00"}]},
        422,
        "validation_error",
    ),
    ("post", "/activities", {"items": []}, 422, "validation_error"),
    ("get", "/outbox?status=lost", None, 422, "validation_error"),
    (
        "post",
        "/welcome-templates",
        {"trigger": "group_joined", "body": "{nom}"},
        422,
        "template_variable_unknown",
    ),
    ("post", "/communities", {"name": "x", "leaders": ["mem_nope"]}, 404, "member_not_found"),
    (
        "post",
        "/communities/cmty_nope/venues",
        {"name": "x", "kind": "wecom_group", "role": "sales"},
        404,
        "community_not_found",
    ),
    ("post", "/join-codes/NOPE/members", {"member_id": "mem_x"}, 404, "join_code_not_found"),
    ("post", "/staff-assignments", {"member_id": "mem_nope"}, 404, "member_not_found"),
    (
        "post",
        "/handovers/hov_nope/outcomes",
        {"items": [{"member_id": "mem_x", "outcome": "refused"}]},
        404,
        "handover_not_found",
    ),
    ("post", "/badges/bdg_nope/awards", {"member_id": "mem_x"}, 404, "badge_not_found"),
    ("get", "/certificates/verify/AAAAAAAA", None, 404, "certificate_code_invalid"),
    ("post", "/certificates/cert_nope/revoke", {"reason": "x"}, 404, "certificate_not_found"),
    ("post", "/outbox/msg_nope/done", None, 404, "outbox_message_not_found"),
    ("post", "/groups/grp_nope/split", {}, 404, "group_not_found"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"), BAD, ids=[f"{b[0]} {b[1]} {b[4]}" for b in BAD]
)
def test_bad_input_is_refused_with_a_code_and_changes_nothing(
    api: TestClient,
    db: Database,
    keys: TenantKeys,
    method: str,
    path: str,
    body: Any,
    status: int,
    code: str,
) -> None:
    before = contents(db, keys.tenant_id)
    response = api.request(method, API + path, json=body)
    assert error_of(response) == (status, code)
    assert contents(db, keys.tenant_id) == before


def test_a_full_batch_is_refused_whole_if_one_activity_is_bad(
    api: TestClient, db: Database, keys: TenantKeys
) -> None:
    someone = member(api, "会员")
    good = {
        "external_id": "ok",
        "kind": "visit",
        "occurred_at": "2026-01-05T08:00:00Z",
        "member_id": someone,
    }
    bad = {**good, "external_id": "bad", "group_id": "grp_nope"}
    before = contents(db, keys.tenant_id)
    assert error_of(api.post(f"{API}/activities", json={"items": [good, bad]})) == (
        422,
        "activity_group_unknown",
    )
    assert contents(db, keys.tenant_id) == before


# --- the command line -----------------------------------------------------------------------


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env={"SHEQUN_LOCALE": "en"}, catch_exceptions=False)


def test_an_operator_scripts_import_placement_and_handover(
    api: TestClient, db: Database, keys: TenantKeys, tmp_path: Path
) -> None:
    url = db.engine.url.render_as_string(hide_password=False)
    community = expect(
        api.post(f"{API}/communities", json={"name": "导入社群", "size_class": 5}), 201
    )
    people = [member(api, f"导{i}", external_id=f"crm-{i}") for i in range(14)]
    groups_csv = tmp_path / "groups.csv"
    groups_csv.write_text(
        "group,name,member\n"
        + "".join(f"wx-1,老群,crm-{i}\n" for i in range(7))
        + "wx-2,小群,crm-7\nwx-2,小群,nobody\n",
        encoding="utf-8",
    )
    imported = run(
        "community",
        "import-groups",
        str(groups_csv),
        "-t",
        keys.tenant_id,
        "-c",
        community["id"],
        "--database-url",
        url,
        "--json",
    )
    assert imported.exit_code == 0, imported.output
    result = json.loads(imported.stdout)
    assert (result["groups"], result["members"], len(result["oversize"]), result["unknown"]) == (
        2,
        8,
        1,
        ["nobody"],
    )

    members_csv = tmp_path / "members.csv"
    members_csv.write_text(
        "member_id\n" + "".join(f"{m}\n" for m in people[8:]) + "mem_nobody\n", encoding="utf-8"
    )
    placed = run(
        "community",
        "place",
        str(members_csv),
        "-t",
        keys.tenant_id,
        "-c",
        community["id"],
        "--database-url",
        url,
    )
    assert placed.exit_code == 0, placed.output
    assert "Placed 6; 0 already placed, 1 unknown" in placed.stdout

    account = expect(
        api.post(f"{API}/staff-accounts", json={"name": "离职号", "working_hours": "00:00-24:00"}),
        201,
    )
    expect(
        api.post(
            f"{API}/staff-accounts",
            json={"name": "接手号", "working_hours": "00:00-24:00", "friend_cap": 2},
        ),
        201,
    )
    for m in people[:3]:
        expect(
            api.post(f"{API}/staff-accounts/{account['id']}/members", json={"member_id": m}), 201
        )
    handed = run(
        "community", "handover", account["id"], "-t", keys.tenant_id, "--database-url", url
    )
    assert handed.exit_code == 0, handed.output
    assert "2 pending, 0 accepted, 1 waiting" in handed.stdout
    assert "no receiver has room" in handed.stdout

    refused = run("community", "handover", "stf_nope", "-t", keys.tenant_id, "--database-url", url)
    assert refused.exit_code == 2
    missing = run(
        "community",
        "place",
        str(tmp_path / "none.csv"),
        "-t",
        keys.tenant_id,
        "-c",
        community["id"],
        "--database-url",
        url,
    )
    assert missing.exit_code == 2
