"""Real ids of a tenant's community things, for requests that name them: a community of
5-member groups with a venue, members placed, two staff accounts with a handover under way,
a badge, a certificate, an activity source and the operator's tasks in the outbox."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.e2e.conftest import API, expect


def community_ids(
    client: TestClient, owner: dict[str, str], tenant_id: str, members: list[str]
) -> dict[str, list[str]]:
    def post(path: str, body: Any, status: int = 201) -> Any:
        return expect(client.post(f"{API}{path}", json=body, headers=owner), status)

    community = post("/communities", {"name": "契约社群", "member_title": "米粉", "size_class": 5})
    cid = community["id"]
    post(f"/communities/{cid}/venues", {"name": "福利群", "kind": "wecom_group", "role": "sales"})
    groups = [post(f"/communities/{cid}/members", {"member_id": m})["group_id"] for m in members]
    first = post("/staff-accounts", {"name": "宝妈小美", "working_hours": "00:00-24:00"})
    second = post("/staff-accounts", {"name": "客服小王", "working_hours": "00:00-24:00"})
    for m in members:
        post(f"/staff-accounts/{first['id']}/members", {"member_id": m})
    handover = post(
        f"/staff-accounts/{first['id']}/handover", {"fallback_account_id": second["id"]}, 200
    )
    badge = post("/badges", {"name": "元老"})
    certificate = post(
        "/certificates", {"member_id": members[0], "kind": "honour", "citation": "年度米粉"}
    )
    source = post("/activity-sources", {"name": "企微回调"})
    tasks = expect(client.get(f"{API}/outbox", headers=owner), 200)["items"]
    return {
        "community_id": [cid],
        "group_id": sorted(set(groups)),
        "code": [community["join_code"], certificate["code"]],
        "account_id": [first["id"], second["id"]],
        "handover_id": [handover["id"]],
        "badge_id": [badge["id"]],
        "certificate_id": [certificate["id"]],
        "tenant_id": [tenant_id],
        "source_id": [source["id"]],
        "message_id": [t["id"] for t in tasks[:3]],
    }
