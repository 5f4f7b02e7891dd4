"""What a brand or an integrator meets in its first hour over the API: honest compliance
answers, messages a person understands in either language, filters that refuse what they do
not know, a state machine that tells one story for refunds, unpaid orders that do not linger,
late payments that are never lost, daily withdrawal limits, the tenant's time zone, and a
member's right to be forgotten. Every refusal changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from shequn.clock import ManualClock
from shequn.db import Database
from tests.e2e.conftest import API, TenantKeys, World, contents, error_of, expect

ZH = {"Accept-Language": "zh-CN"}


def post(api: TestClient, path: str, body: Any = None, **kw: Any) -> Any:
    response = api.post(f"{API}{path}", json=body, **kw)
    assert response.status_code in (200, 201), response.text
    return response.json()


def refused(api: TestClient, method: str, path: str, body: Any = None, **kw: Any) -> Any:
    response = api.request(method, f"{API}{path}", json=body, **kw)
    assert 400 <= response.status_code < 500, response.text
    error_of(response)
    return response.json()


# --- 1, 2: compliance answers --------------------------------------------------------------


def test_the_plan_list_shows_each_plans_findings_as_its_read_does(api: TestClient) -> None:
    blocked = post(
        api,
        "/commission-plans",
        {
            "mode": "levels",
            "levels": [{"level": 1, "rate_bp": 2_000}, {"level": 2, "rate_bp": 1_500}],
        },
    )
    assert [f["rule"] for f in blocked["findings"]] == ["total_commission"]
    listed = expect(api.get(f"{API}/commission-plans"), 200)
    read = expect(api.get(f"{API}/commission-plans/{blocked['id']}"), 200)
    assert [p["findings"] for p in listed if p["id"] == blocked["id"]] == [read["findings"]]
    assert read["findings"][0]["severity"] == "block"


def test_three_levels_under_custom_warn_with_the_criminal_law_and_the_real_cap(
    api: TestClient,
) -> None:
    expect(
        api.patch(
            f"{API}/settings",
            json={"compliance_profile": "custom", "custom_commission_cap_bp": 9_000},
        ),
        200,
    )
    levels = [
        {"level": 1, "rate_bp": 4_000},
        {"level": 2, "rate_bp": 2_000},
        {"level": 3, "rate_bp": 1_000},
    ]
    plan = post(api, "/commission-plans", {"mode": "levels", "levels": levels})
    found = {f["rule"]: f for f in plan["findings"]}
    assert {r: f["severity"] for r, f in found.items()} == {
        "three_levels": "warn",
        "total_commission": "warn",
    }
    assert found["three_levels"]["citation"].startswith("Criminal Law Art. 224-1")
    assert "30 or more participants" in found["three_levels"]["message"]
    assert "70.0%" in found["total_commission"]["message"]
    assert "the cap configured is 90.0%" in found["total_commission"]["message"]
    assert "above the" not in found["total_commission"]["message"]


def test_level_zero_is_named_as_such(api: TestClient) -> None:
    body = refused(
        api, "POST", "/commission-plans", {"mode": "levels", "levels": [{"level": 0, "rate_bp": 1}]}
    )
    assert body["code"] == "rule_level_invalid"
    assert "level 0" in body["message"]
    assert "hard limit" not in body["message"]


# --- 6, 7: messages ----------------------------------------------------------------------------


def test_a_permission_error_names_the_real_roles(client: TestClient, keys: TenantKeys) -> None:
    body = refused(client, "PATCH", "/settings", {"after_sales_days": 3}, headers=keys.readonly)
    assert body["code"] == "permission_denied"
    assert body["message"] == "This key's role is 'readonly'; this needs the 'owner' role."
    body = refused(
        client,
        "POST",
        "/products",
        {"sku": "X", "name": "x", "price_fen": 1, "ladder_role": "core"},
        headers=keys.readonly,
    )
    assert body["message"] == (
        "This key's role is 'readonly'; this needs the 'operator' or the 'owner' role."
    )
    zh = refused(
        client, "PATCH", "/settings", {"after_sales_days": 3}, headers={**keys.readonly, **ZH}
    )
    assert zh["message"] == "当前密钥的角色是“readonly”，此操作需要“owner”角色。"
    for text in (body["message"], zh["message"]):
        assert "'admin'" not in text
        assert "'write'" not in text


def test_transition_errors_speak_in_words_in_both_languages(
    api: TestClient, world: World, db: Database
) -> None:
    before = contents(db, world.keys.tenant_id)
    headers = world.keys.owner
    en = refused(api, "POST", f"/orders/{world.closed}/cancel", headers=headers)
    zh = refused(api, "POST", f"/orders/{world.closed}/cancel", headers={**headers, **ZH})
    assert en["message"] == "An order that is closed cannot be cancelled."
    assert zh["message"] == "已结单的订单不能取消。"
    ship = refused(api, "POST", f"/orders/{world.created}/ship", headers={**headers, **ZH})
    assert ship["message"] == "待支付的订单不能发货。"
    assert contents(db, world.keys.tenant_id) == before


def test_amounts_read_as_yuan_and_insufficient_funds_says_what_is_available(
    api: TestClient, world: World, db: Database
) -> None:
    before = contents(db, world.keys.tenant_id)
    headers = world.keys.owner
    short = refused(
        api,
        "POST",
        f"/members/{world.parent}/withdrawals",
        {"amount_fen": 100_000},
        headers=headers,
    )
    assert short["code"] == "insufficient_funds"
    assert short["message"] == "The available balance is ¥9.90; it does not cover ¥1,000.00."
    expect(api.patch(f"{API}/settings", json={"withdrawal_min_fen": 1_000}, headers=headers), 200)
    small = refused(
        api,
        "POST",
        f"/members/{world.parent}/withdrawals",
        {"amount_fen": 500},
        headers={**headers, **ZH},
    )
    assert small["message"] == "最低提现金额为 ¥10.00。"
    expect(api.patch(f"{API}/settings", json={"withdrawal_min_fen": 100}, headers=headers), 200)
    wrong = refused(
        api,
        "POST",
        f"/orders/{world.created}/pay",
        {"provider_txn_id": "wx-wrong", "amount_fen": 1},
        headers=headers,
    )
    assert wrong["message"] == "Payment amount ¥0.01 does not equal the amount due, ¥99.00."
    after = contents(db, world.keys.tenant_id)
    for changed in ("tenant_settings", "events"):  # the two settings changes above, and back
        after.pop(changed)
        before.pop(changed)
    assert after == before


def test_validation_errors_name_the_field_and_the_rule_and_echo_little(
    api: TestClient, world: World
) -> None:
    long_key = "k" * 500
    body = refused(
        api,
        "POST",
        "/orders",
        {"buyer_id": world.buyer, "lines": [{"sku": "CORE-1", "quantity": "2"}], long_key: 1},
        headers=world.keys.owner,
    )
    assert body["code"] == "validation_error"
    assert [e["message"] for e in body["errors"]] == [
        "lines[0].quantity must be a whole number",
        "k" * 63 + "… is not a known field",
    ]
    assert body["message"].startswith("The request is not valid: lines[0].quantity must be a")
    assert long_key not in str(body)
    assert "body." not in body["message"]
    assert "extra_forbidden" not in body["message"]
    missing = refused(api, "POST", "/orders", {"lines": []}, headers={**world.keys.owner, **ZH})
    assert missing["message"] == "请求参数无效：buyer_id 为必填项。"
    named = refused(
        api, "POST", "/members", {"name": "x" * 300, "phone": "1" * 300}, headers=world.keys.owner
    )
    assert all(len(part) <= 200 for part in named["message"].split())
    choice = "/exports/orders?format=xml"
    chinese = refused(api, "GET", choice, None, headers={**world.keys.owner, **ZH})
    assert chinese["message"] == "请求参数无效：format 必须是 'csv'或'parquet' 之一。"
    english = refused(api, "GET", choice, None, headers=world.keys.owner)
    assert english["message"] == (
        "The request is not valid: format must be one of 'csv' or 'parquet'."
    )


# --- 8: filters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/orders?status=bogus", "order_status_invalid"),
        ("/events?type=Bogus", "event_type_invalid"),
        ("/events?subject_type=planet", "subject_type_invalid"),
        ("/withdrawals?status=bogus", "withdrawal_status_invalid"),
        ("/orders?after=garbage", "cursor_invalid"),
        ("/members?after=mem_short", "cursor_invalid"),
        ("/events?after=ord_01m8y1e85y3n8cpfpnsw1z20q0", "cursor_invalid"),
        ("/withdrawals?after=x", "cursor_invalid"),
    ],
)
def test_unknown_filters_and_bad_cursors_are_refused(api: TestClient, path: str, code: str) -> None:
    response = api.get(f"{API}{path}")
    assert error_of(response) == (422, code)


def test_a_cursor_a_list_gave_is_accepted(api: TestClient, world: World) -> None:
    page = expect(api.get(f"{API}/events?limit=1", headers=world.keys.owner), 200)
    assert page["next_after"].startswith("evt_")
    expect(
        api.get(f"{API}/events?limit=1&after={page['next_after']}", headers=world.keys.owner), 200
    )


# --- 9: one story for refunds, unpaid orders, late payments --------------------------------


def test_a_closed_order_refunded_in_full_is_refunded_as_an_open_one_is(
    api: TestClient, fresh_world: World
) -> None:
    headers = fresh_world.keys.owner
    after = post(
        api,
        f"/orders/{fresh_world.closed}/refunds",
        {"amount_fen": 9_900, "reason": "退货"},
        headers=headers,
    )
    before = post(
        api,
        f"/orders/{fresh_world.paid}/refunds",
        {"amount_fen": 9_900, "reason": "退货"},
        headers=headers,
    )
    assert (after["phase"], before["phase"]) == ("after_close", "before_close")
    statuses = [
        expect(api.get(f"{API}/orders/{o}", headers=headers), 200)["status"]
        for o in (fresh_world.closed, fresh_world.paid)
    ]
    assert statuses == ["refunded", "refunded"]


def test_unpaid_orders_are_cancelled_and_a_late_payment_is_refunded(
    api: TestClient, fresh_world: World, clock: ManualClock
) -> None:
    headers = fresh_world.keys.owner
    fresh = post(
        api,
        "/orders",
        {"buyer_id": fresh_world.buyer, "lines": [{"sku": "CORE-1", "quantity": 1}]},
        headers=headers,
    )
    clock.advance(minutes=31)  # the world's unpaid order is older still
    young = post(
        api,
        "/orders",
        {"buyer_id": fresh_world.buyer, "lines": [{"sku": "CORE-1", "quantity": 1}]},
        headers=headers,
    )
    settled = post(api, "/settlement/run", headers=headers)
    assert settled["orders_cancelled"] == 2
    status = {
        o: expect(api.get(f"{API}/orders/{o}", headers=headers), 200)["status"]
        for o in (fresh["id"], fresh_world.created, young["id"])
    }
    assert status == {
        fresh["id"]: "cancelled",
        fresh_world.created: "cancelled",
        young["id"]: "created",
    }
    assert post(api, "/settlement/run", headers=headers)["orders_cancelled"] == 0

    # when the provider's callback for a cancelled order comes after all
    late = post(
        api,
        f"/orders/{fresh['id']}/pay",
        {"provider_txn_id": "wx-late", "amount_fen": fresh["total_fen"]},
        headers=headers,
    )
    # then it is recorded and refunded in full: the buyer gets the money back
    assert (late["status"], late["paid_fen"], late["refunded_fen"]) == (
        "cancelled",
        fresh["total_fen"],
        fresh["total_fen"],
    )
    assert late["commissions"] == []
    refunded = expect(api.get(f"{API}/orders/{fresh['id']}", headers=headers), 200)["refunds"]
    assert [r["amount_fen"] for r in refunded] == [fresh["total_fen"]]
    events = expect(api.get(f"{API}/events?type=LatePaymentRefunded", headers=headers), 200)[
        "items"
    ]
    assert [e["subject_id"] for e in events] == [fresh["id"]]
    assert expect(api.get(f"{API}/ledger/verify", headers=headers), 200)["ok"] is True


# --- 10: daily withdrawal limits --------------------------------------------------------------


def test_withdrawals_past_the_daily_limits_wait_for_an_operator(
    api: TestClient, fresh_world: World, clock: ManualClock
) -> None:
    headers = fresh_world.keys.owner
    # given an upline with ¥19.80 available and the limits of 3 a day, ¥10 a day
    order = post(
        api,
        "/orders",
        {"buyer_id": fresh_world.buyer, "lines": [{"sku": "CORE-1", "quantity": 1}]},
        headers=headers,
    )
    post(
        api,
        f"/orders/{order['id']}/pay",
        {"provider_txn_id": "wx-more", "amount_fen": 9_900},
        headers=headers,
    )
    post(api, f"/orders/{order['id']}/ship", headers=headers)
    post(api, f"/orders/{order['id']}/complete", headers=headers)
    post(api, "/settlement/run", headers=headers)
    expect(
        api.patch(
            f"{API}/settings",
            json={"withdrawal_min_fen": 100, "withdrawal_daily_amount_max_fen": 1_000},
            headers=headers,
        ),
        200,
    )
    # when seven withdrawals of ¥2.00 come in the same second
    made = [
        post(
            api, f"/members/{fresh_world.parent}/withdrawals", {"amount_fen": 200}, headers=headers
        )
        for _ in range(7)
    ]
    # then three are approved at once and the rest wait; the ¥10 a day would allow five
    assert [w["status"] for w in made] == ["approved"] * 3 + ["requested"] * 4
    # and the next (local) day the count starts again
    clock.advance(days=1)
    again = post(
        api, f"/members/{fresh_world.parent}/withdrawals", {"amount_fen": 200}, headers=headers
    )
    assert again["status"] == "approved"


# --- 17: time zone and personal data -------------------------------------------------------


def test_the_time_zone_is_a_setting_refused_when_unknown(
    api: TestClient, keys: TenantKeys, db: Database
) -> None:
    assert expect(api.get(f"{API}/settings"), 200)["time_zone"] == "Asia/Shanghai"
    before = contents(db, keys.tenant_id)
    body = refused(api, "PATCH", "/settings", {"time_zone": "Mars/Olympus"})
    assert body["code"] == "time_zone_invalid"
    assert contents(db, keys.tenant_id) == before
    assert (
        expect(api.patch(f"{API}/settings", json={"time_zone": "America/New_York"}), 200)[
            "time_zone"
        ]
        == "America/New_York"
    )


def test_a_member_is_anonymised_and_the_books_and_tree_stay(
    api: TestClient, fresh_world: World
) -> None:
    headers = fresh_world.keys.owner
    member = post(
        api,
        "/members",
        {
            "name": "待注销",
            "phone": "13700001111",
            "external_id": "wx-abc",
            "tags": ["vip"],
            "referrer_id": fresh_world.parent,
        },
        headers=headers,
    )
    before = expect(api.get(f"{API}/members/{fresh_world.parent}/team", headers=headers), 200)
    gone = post(api, f"/members/{member['id']}/anonymise", headers=headers)
    assert (gone["name"], gone["phone"], gone["external_id"], gone["tags"]) == ("—", None, None, [])
    assert gone["anonymised_at"] is not None
    assert gone["referrer_id"] == fresh_world.parent
    assert (
        expect(api.get(f"{API}/members/{fresh_world.parent}/team", headers=headers), 200) == before
    )
    assert post(api, f"/members/{member['id']}/anonymise", headers=headers) == gone
    found = expect(api.get(f"{API}/members?phone=13700001111", headers=headers), 200)["items"]
    assert found == []
    assert expect(api.get(f"{API}/ledger/verify", headers=headers), 200)["ok"] is True
    events = expect(api.get(f"{API}/events?type=MemberAnonymised", headers=headers), 200)["items"]
    assert [(e["subject_id"], e["payload"]) for e in events] == [(member["id"], {})]


def test_anonymising_needs_the_owner(client: TestClient, world: World, db: Database) -> None:
    before = contents(db, world.keys.tenant_id)
    body = refused(client, "POST", f"/members/{world.buyer}/anonymise", headers=world.keys.operator)
    assert body["code"] == "permission_denied"
    assert contents(db, world.keys.tenant_id) == before
