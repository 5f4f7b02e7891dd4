"""At the door: input no database can store is refused on both backends; the docs need no CDN."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from shequn.config import Settings
from shequn.db import Database
from shequn.entrypoints.app import create_app


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


def test_interactive_docs_are_served_without_a_cdn(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "cdn." not in page.text
    assert "https://" not in page.text.split("<body>")[0]
    script = client.get("/docs/assets/swagger-ui-bundle.js")
    assert (script.status_code, script.headers["content-type"].split(";")[0]) == (
        200,
        "text/javascript",
    )
    assert len(script.content) > 100_000
    assert client.get("/redoc").status_code == 404


def test_readiness_says_whether_the_database_answers(client: TestClient, tmp_path: Path) -> None:
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")

    gone = Database.from_url(f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}", pool_size=1)
    settings = Settings(environment="test", database_url="sqlite://")
    try:
        with TestClient(create_app(settings, db=gone), raise_server_exceptions=False) as down:
            answer = down.get("/readyz", headers={"Accept-Language": "en"})
            alive = down.get("/healthz")
    finally:
        gone.dispose()
    assert (answer.status_code, answer.json()) == (
        503,
        {"code": "database_unavailable", "message": "The database does not answer."},
    )
    assert alive.status_code == 200
