"""Input no database can store is refused at the door, on both backends."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_nul_in_a_body_is_refused_and_nothing_is_created(api: TestClient) -> None:
    response = api.post("/api/v1/members", json={"name": "a\x00b"})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert api.get("/api/v1/members").json()["items"] == []


def test_nul_in_path_or_query_is_refused(api: TestClient) -> None:
    for url in (
        "/api/v1/members/abc%00def",
        "/api/v1/members?after=%00",
        "/api/v1/orders?status=a%00",
    ):
        response = api.get(url)
        assert (response.status_code, response.json()["code"]) == (400, "bad_request")


def test_huge_integers_in_queries_are_refused(api: TestClient) -> None:
    member = api.post("/api/v1/members", json={"name": "m"}).json()
    response = api.get(
        f"/api/v1/members/{member['id']}/team/members?max_depth=99999999999999999999999"
    )
    assert (response.status_code, response.json()["code"]) == (422, "validation_error")
    response = api.get("/api/v1/members?limit=99999999999999999999999")
    assert (response.status_code, response.json()["code"]) == (422, "limit_out_of_range")
