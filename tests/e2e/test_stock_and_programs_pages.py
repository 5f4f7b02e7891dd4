"""Over HTTP: the API of stock orders awaiting payment (ask, quote, pay, replay, cancel), the
portal's stock order pages (the quote, a refusal beside its field, the order awaiting payment
and its cancellation), the console's confirmation of an offline payment, and the console's
course and competition forms with what the portal then shows the member."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from shequn.clock import ManualClock
from shequn.config import Settings
from shequn.console.service import set_portal_password
from shequn.context import Ctx
from shequn.db import Database
from shequn.entrypoints.app import create_app
from shequn.growth.stock.requests import get_stock_order_request, list_stock_order_requests
from shequn.growth.stock.service import agent_stock
from shequn.insights.console_gatherings import list_programs
from shequn.insights.console_programs import competition_view, course_progress
from tests.browser.world import PASSWORD, PORTAL_PASSWORD, Brand, build_brand
from tests.e2e.conftest import API, bearer, contents, error_of, expect

Site = tuple[TestClient, Brand, Ctx]


@pytest.fixture
def site(db: Database) -> Iterator[Site]:
    clock = ManualClock()
    brand = build_brand(db, clock, "进货品牌")
    ctx = Ctx(db=db, clock=clock, tenant_id=brand.tenant_id, actor="test")
    set_portal_password(ctx, member_id=brand.members["王芳"], password=PORTAL_PASSWORD)
    app = create_app(
        Settings(environment="test", database_url="sqlite://", api_key_cache_seconds=0),
        clock=clock,
        db=db,
    )
    with TestClient(app, base_url="https://testserver") as client:
        yield client, brand, ctx


def _csrf(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found is not None, path
    return found.group(1)


def _portal(client: TestClient, brand: Brand, who: str) -> str:
    client.cookies.clear()
    path = f"/portal/{brand.tenant_id}/login"
    answer = client.post(
        path,
        data={
            "csrf_token": _csrf(client, path),
            "phone": brand.phones[who],
            "password": PORTAL_PASSWORD,
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return _csrf(client, "/portal/me")


def _console(client: TestClient, brand: Brand) -> str:
    client.cookies.clear()
    answer = client.post(
        "/console/login",
        data={
            "csrf_token": _csrf(client, "/console/login"),
            "login": brand.logins["owner"],
            "password": PASSWORD,
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return _csrf(client, "/console/")


def _units(ctx: Ctx, member_id: str) -> int:
    return sum(p["units"] for p in agent_stock(ctx, member_id=member_id)["products"])


def test_the_api_asks_pays_once_and_refuses_what_changes_nothing(site: Site) -> None:
    client, brand, ctx = site
    owner = bearer(brand.api_key)
    agent = brand.members["王芳"]
    body = {"member_id": agent, "lines": [{"sku": "STOCK-1", "quantity": 2}]}
    quote = expect(client.post(f"{API}/stock-order-quotes", json=body, headers=owner), 200)
    assert (quote["amount_fen"], quote["lines"][0]["cover_days_after"]) == (10_000, "6.0")
    asked = expect(client.post(f"{API}/stock-order-requests", json=body, headers=owner), 201)
    assert (asked["status"], asked["amount_fen"]) == ("awaiting_payment", 10_000)
    assert expect(client.get(f"{API}/stock-order-requests/{asked['id']}", headers=owner), 200) == (
        asked
    )
    listed = expect(
        client.get(
            f"{API}/stock-order-requests",
            params={"member_id": agent, "status": "awaiting_payment"},
            headers=owner,
        ),
        200,
    )
    assert [r["id"] for r in listed["items"]] == [brand.stock_request_id, asked["id"]]
    pay = f"{API}/stock-order-requests/{asked['id']}/payment"
    before = contents(ctx.db, brand.tenant_id)
    wrong = client.post(pay, json={"provider_txn_id": "wx-9", "amount_fen": 9_999}, headers=owner)
    assert error_of(wrong) == (422, "stock_amount_mismatch")
    assert contents(ctx.db, brand.tenant_id) == before
    paid = client.post(pay, json={"provider_txn_id": "wx-9", "amount_fen": 10_000}, headers=owner)
    assert paid.status_code == 200
    assert "Idempotent-Replayed" not in paid.headers
    assert paid.json()["status"] == "paid"
    assert _units(ctx, agent) == 6
    after = contents(ctx.db, brand.tenant_id)
    again = client.post(pay, json={"provider_txn_id": "wx-9", "amount_fen": 10_000}, headers=owner)
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (200, "true")
    assert again.json() == paid.json()
    assert contents(ctx.db, brand.tenant_id) == after
    cancel = client.post(f"{API}/stock-order-requests/{asked['id']}/cancel", headers=owner)
    assert error_of(cancel) == (409, "stock_request_already_paid")
    reader = client.post(pay, json={"provider_txn_id": "wx-9", "amount_fen": 10_000})
    assert reader.status_code == 401


def test_the_api_refuses_a_request_over_the_cover_limit_and_creates_nothing(site: Site) -> None:
    client, brand, ctx = site
    owner = bearer(brand.api_key)
    body = {"member_id": brand.members["王芳"], "lines": [{"sku": "STOCK-1", "quantity": 57}]}
    before = contents(ctx.db, brand.tenant_id)
    for path in ("/stock-order-quotes", "/stock-order-requests"):
        refused = client.post(f"{API}{path}", json=body, headers=owner)
        assert error_of(refused) == (409, "stock_cover_exceeded")
        assert "61.0" in refused.json()["message"]
    cancelled = client.post(
        f"{API}/stock-order-requests/{brand.stock_request_id}/cancel", headers=owner
    )
    assert expect(cancelled, 200)["status"] == "cancelled"
    late = client.post(
        f"{API}/stock-order-requests/{brand.stock_request_id}/payment",
        json={"provider_txn_id": "wx-late", "amount_fen": 10_000},
        headers=owner,
    )
    assert error_of(late) == (409, "stock_request_cancelled")
    after = contents(ctx.db, brand.tenant_id)
    assert {k: v for k, v in after.items() if k not in ("stock_order_requests", "events")} == {
        k: v for k, v in before.items() if k not in ("stock_order_requests", "events")
    }


def test_an_agent_composes_a_stock_order_on_the_portal(site: Site) -> None:
    client, brand, ctx = site
    token = _portal(client, brand, "王芳")
    page = client.get("/portal/stock/order").text
    assert 'name="qty_STOCK-1"' in page
    assert "¥50.00" in page
    quoted = client.post(
        "/portal/stock/order", data={"csrf_token": token, "qty_STOCK-1": "2", "intent": "quote"}
    )
    assert quoted.status_code == 200
    assert 'data-figure-name="total">¥100.00<' in quoted.text
    assert 'id="submit-order"' in quoted.text
    before = contents(ctx.db, brand.tenant_id)
    for quantity, intent in (("57", "quote"), ("57", "submit"), ("x", "submit"), ("0", "quote")):
        refused = client.post(
            "/portal/stock/order",
            data={"csrf_token": token, "qty_STOCK-1": quantity, "intent": intent},
        )
        assert refused.headers["X-Refused"] in ("409", "422"), quantity
        field = "total" if quantity == "0" else "qty_STOCK-1"
        assert f'id="e-{field}"' in refused.text, quantity
        assert f'value="{quantity}"' in refused.text
        if quantity == "57":
            assert "61.0" in refused.text
    assert contents(ctx.db, brand.tenant_id) == before
    submitted = client.post(
        "/portal/stock/order",
        data={"csrf_token": token, "qty_STOCK-1": "2", "intent": "submit"},
        follow_redirects=False,
    )
    assert submitted.status_code == 303
    path = submitted.headers["location"]
    request_id = path.rsplit("/", 1)[1]
    asked = get_stock_order_request(ctx, request_id=request_id)
    assert (asked["amount_fen"], asked["status"], asked["member_id"]) == (
        10_000,
        "awaiting_payment",
        brand.members["王芳"],
    )
    shown = client.get(path).text
    assert 'data-figure-name="to_pay">¥100.00<' in shown
    assert asked["payment_reference"] in shown
    assert request_id in client.get("/portal/stock").text
    cancel = client.post(f"{path}/cancel", data={"csrf_token": token}, follow_redirects=False)
    assert cancel.status_code == 303
    assert get_stock_order_request(ctx, request_id=request_id)["status"] == "cancelled"
    # another member reaches none of it
    token = _portal(client, brand, "李娜")
    assert client.get(path).status_code == 404
    assert client.post(f"{path}/cancel", data={"csrf_token": token}).status_code == 404
    assert "qty_STOCK-1" not in client.get("/portal/stock/order").text


def test_an_operator_confirms_a_bank_transfer_into_the_agents_stock(site: Site) -> None:
    client, brand, ctx = site
    token = _console(client, brand)
    page = client.get("/console/growth/stock-requests").text
    assert f'id="sr-{brand.stock_request_id}"' in page
    assert "¥100.00" in page
    answer = client.post(
        f"/console/growth/stock-requests/{brand.stock_request_id}/confirm",
        data={
            "csrf_token": token,
            f"reference_{brand.stock_request_id}": "ICBC-20260301",
            f"amount_{brand.stock_request_id}": "100.00",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    paid = get_stock_order_request(ctx, request_id=brand.stock_request_id)
    assert (paid["status"], paid["provider_txn_id"]) == ("paid", "offline:ICBC-20260301")
    assert _units(ctx, brand.members["王芳"]) == 6
    assert list_stock_order_requests(ctx, status="awaiting_payment")["items"] == []
    assert "ICBC-20260301" in client.get("/console/growth/stock-requests?status=paid").text


def test_a_course_and_a_competition_are_run_from_the_console(site: Site) -> None:
    client, brand, ctx = site
    token = _console(client, brand)
    course = f"/console/programs/{brand.course_id}"
    added = client.post(
        f"{course}/lessons",
        data={"csrf_token": token, "lesson_title": "保湿"},
        follow_redirects=False,
    )
    assert added.status_code == 303
    recorded = client.post(
        f"{course}/progress",
        data={"csrf_token": token, "member": brand.phones["李娜"], "lesson": "3"},
        follow_redirects=False,
    )
    assert recorded.status_code == 303, recorded.text
    page = client.get(course).text
    assert "<li>保湿</li>" in page
    assert 'data-figure-name="done">1 / 3<' in page
    assert [(r["name"], r["done"]) for r in course_progress(ctx, program_id=brand.course_id)] == [
        ("李娜", [3])
    ]
    contest = f"/console/programs/{brand.contest_id}"
    team = client.post(
        f"{contest}/teams",
        data={"csrf_token": token, "team_name": "绿队", "team_members": brand.phones["张伟"]},
        follow_redirects=False,
    )
    assert team.status_code == 303
    teams = {
        t["name"]: t["team_id"] for t in competition_view(ctx, program_id=brand.contest_id)["teams"]
    }
    assert set(teams) == {"红队", "蓝队", "绿队"}
    scores = {
        f"score_{teams['红队']}": "30",
        f"score_{teams['蓝队']}": "10",
        f"score_{teams['绿队']}": "20",
    }
    closed = client.post(
        f"{contest}/rounds",
        data={"csrf_token": token, "round": "1", "eliminate": "1", **scores},
        follow_redirects=False,
    )
    assert closed.status_code == 303, closed.text
    view = competition_view(ctx, program_id=brand.contest_id)
    assert [(t["name"], t["score"], t["eliminated_round"]) for t in view["teams"]] == [
        ("红队", 30, None),
        ("绿队", 20, None),
        ("蓝队", 10, 1),
    ]
    assert (view["rounds"], view["next_round"]) == (
        [{"round": 1, "scores": {teams["红队"]: 30, teams["蓝队"]: 10, teams["绿队"]: 20}}],
        2,
    )
    before = contents(ctx.db, brand.tenant_id)
    again = client.post(f"{contest}/rounds", data={"csrf_token": token, "round": "1", **scores})
    assert again.headers["X-Refused"] == "422"
    assert contents(ctx.db, brand.tenant_id) == before
    assert "第 2 轮进行中" in again.text or "Round 2 is open" in again.text
    # the member sees the course and its team's standing in the portal
    token = _portal(client, brand, "李娜")
    me = client.get("/portal/me").text
    assert "护肤入门课" in me
    assert f'action="/portal/programs/{brand.course_id}/lessons/1"' in me
    assert f'action="/portal/programs/{brand.course_id}/lessons/3"' not in me
    assert "红队" in me
    done = client.post(
        f"/portal/programs/{brand.course_id}/lessons/1",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert done.status_code == 303
    kinds = {p["id"]: p["kind"] for p in list_programs(ctx)}
    assert kinds[brand.course_id] == "course"
    assert [r["done"] for r in course_progress(ctx, program_id=brand.course_id)] == [[1, 3]]
