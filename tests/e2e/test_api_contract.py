"""The API contract of issue 2 over HTTP: every route, exact fields, exact fen amounts."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from shequn.clock import ManualClock
from shequn.db import Database
from tests.e2e.conftest import API, TenantKeys, contents, expect, snapshot

NOW = "2026-01-05T09:00:00Z"  # the ManualClock's start; every timestamp below is this instant


def create_member(api: TestClient, name: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = expect(api.post(f"{API}/members", json={"name": name, **fields}), 201)
    return body


def chain_with_plan(api: TestClient, *, price_fen: int = 9_900) -> tuple[str, str, str, str]:
    """grandparent ← parent ← buyer, product CORE-1, an active 10 %/5 % plan, and a window of
    0 days. Returns (grandparent, parent, buyer, plan id)."""
    expect(api.patch(f"{API}/settings", json={"after_sales_days": 0}), 200)
    product = {"sku": "CORE-1", "name": "会员装", "price_fen": price_fen, "ladder_role": "core"}
    expect(api.post(f"{API}/products", json=product), 201)
    grandparent = create_member(api, "祖")["id"]
    parent = create_member(api, "父", referrer_id=grandparent)["id"]
    buyer = create_member(api, "买家", referrer_id=parent)["id"]
    levels = [{"level": 1, "rate_bp": 1_000}, {"level": 2, "rate_bp": 500}]
    plan = expect(
        api.post(f"{API}/commission-plans", json={"mode": "levels", "levels": levels}), 201
    )
    expect(api.post(f"{API}/commission-plans/{plan['id']}/activate"), 200)
    return grandparent, parent, buyer, plan["id"]


def place_order(api: TestClient, buyer: str, quantity: int = 1, **extra: Any) -> dict[str, Any]:
    lines = [{"sku": "CORE-1", "quantity": quantity}]
    body: dict[str, Any] = expect(
        api.post(f"{API}/orders", json={"buyer_id": buyer, "lines": lines, **extra}), 201
    )
    return body


def pay(api: TestClient, order: dict[str, Any], txn: str) -> dict[str, Any]:
    body = {"provider_txn_id": txn, "amount_fen": order["total_fen"]}
    paid: dict[str, Any] = expect(api.post(f"{API}/orders/{order['id']}/pay", json=body), 200)
    return paid


def test_settings_patch_returns_every_setting(api: TestClient, keys: TenantKeys) -> None:
    # when the owner patches every contract setting
    patch = {
        "after_sales_days": 0,
        "compliance_profile": "custom",
        "binding_policy": {"mode": "last_touch", "window_days": 7, "protection_days": 3},
        "withdrawal_min_fen": 200,
        "withdrawal_fee_bp": 60,
        "withdrawal_auto_approve_max_fen": 5_000,
    }
    body = expect(api.patch(f"{API}/settings", json=patch), 200)

    # then the answer is the whole, merged settings object
    assert body == {
        "tenant_id": keys.tenant_id,
        "currency": "CNY",
        "locale": "zh_CN",
        "after_sales_days": 0,
        "auto_complete_days": 10,
        "compliance_profile": "custom",
        "custom_commission_cap_bp": 3_000,
        "binding_policy": {
            "mode": "last_touch",
            "window_days": 7,
            "trigger": "registration",
            "protection_days": 3,
        },
        "withdrawal_min_fen": 200,
        "withdrawal_fee_bp": 60,
        "withdrawal_auto_approve_max_fen": 5_000,
        "withdrawal_daily_count_max": 3,
        "withdrawal_daily_amount_max_fen": 500_000,
        "unpaid_cancel_minutes": 30,
        "time_zone": "Asia/Shanghai",
        "stage_criteria": {
            "user_min_paid_orders": 2,
            "fan_min_paid_orders": 3,
            "friend_min_referred_buyers": 1,
        },
        "active_plan_id": None,
    }
    assert expect(api.get(f"{API}/settings"), 200) == body


def test_products_create_and_get(api: TestClient) -> None:
    sent = {"sku": "BAIT-01", "name": "试用装 Trial", "price_fen": 990, "ladder_role": "bait"}
    created = expect(api.post(f"{API}/products", json=sent), 201)
    assert created["id"].startswith("prd_")
    assert created == {
        **sent,
        "id": created["id"],
        "category": None,
        "active": True,
        "tier_prices": [],
        "created_at": NOW,
    }
    assert expect(api.get(f"{API}/products/BAIT-01"), 200) == created


def test_members_create_get_team_and_rebind(api: TestClient) -> None:
    # given a root with a phone written the way people type it, and two levels below it
    root = create_member(api, "根", phone="138 0013 8000", external_id="crm-1")
    assert root["id"].startswith("mem_")
    assert {k: root[k] for k in ("phone", "external_id", "referrer_id", "ancestors")} == {
        "phone": "+8613800138000",
        "external_id": "crm-1",
        "referrer_id": None,
        "ancestors": [],
    }
    child = create_member(api, "子", referrer_id=root["id"])
    grandchild = create_member(api, "孙", referrer_id=child["id"])
    assert (child["referrer_id"], child["binding_source"], child["bound_at"]) == (
        root["id"],
        "share_link",
        NOW,
    )
    assert grandchild["ancestors"] == [child["id"], root["id"]]

    # then reads show the member and the precomputed team figures
    fetched = expect(api.get(f"{API}/members/{root['id']}"), 200)
    assert fetched == {**root, "direct_count": 1, "team_count": 2}
    assert expect(api.get(f"{API}/members/{root['id']}/team"), 200) == {
        "member_id": root["id"],
        "direct_count": 1,
        "team_count": 2,
        "by_depth": [{"depth": 1, "count": 1}, {"depth": 2, "count": 1}],
    }

    # when an admin moves the grandchild under a new root, with a reason
    other = create_member(api, "另一个根")
    moved = expect(
        api.post(
            f"{API}/members/{grandchild['id']}/rebind",
            json={"referrer_id": other["id"], "reason": "客服核实 dispute #12"},
        ),
        200,
    )

    # then the member, both teams and the audit trail follow
    assert (moved["id"], moved["referrer_id"], moved["ancestors"], moved["binding_source"]) == (
        grandchild["id"],
        other["id"],
        [other["id"]],
        "admin",
    )
    team = expect(api.get(f"{API}/members/{root['id']}/team"), 200)
    assert (team["direct_count"], team["team_count"]) == (1, 1)
    team = expect(api.get(f"{API}/members/{other['id']}/team"), 200)
    assert (team["direct_count"], team["team_count"]) == (1, 1)
    history = expect(api.get(f"{API}/members/{grandchild['id']}/bindings"), 200)
    assert [
        (h["kind"], h["referrer_id"], h["previous_referrer_id"], h["reason"]) for h in history
    ] == [
        ("bind", child["id"], None, None),
        ("rebind", other["id"], child["id"], "客服核实 dispute #12"),
    ]


def test_commission_plan_create_activate_and_compliance_report(api: TestClient) -> None:
    # when a 10 %/5 % plan is created
    body = {
        "mode": "levels",
        "levels": [{"level": 1, "rate_bp": 1_000}, {"level": 2, "rate_bp": 500}],
    }
    plan = expect(api.post(f"{API}/commission-plans", json=body), 201)

    # then it is a compliant draft, version 1
    assert plan["id"].startswith("plan_")
    assert {k: plan[k] for k in ("version", "mode", "depth", "status", "findings")} == {
        "version": 1,
        "mode": "levels",
        "depth": 2,
        "status": "draft",
        "findings": [],
    }
    assert (plan["peer_bonus_bp"], plan["nominal_total_bp"], plan["release"]) == (
        0,
        1_500,
        "on_close",
    )
    assert [(lv["level"], lv["rate_bp"]) for lv in plan["levels"]] == [(1, 1_000), (2, 500)]

    # when it is activated
    active = expect(api.post(f"{API}/commission-plans/{plan['id']}/activate"), 200)
    assert (active["id"], active["status"], active["activated_at"]) == (plan["id"], "active", NOW)

    # then the compliance report names it and finds nothing
    report = expect(api.get(f"{API}/compliance/report"), 200)
    rows = report.pop("live_rows")
    assert [(r["figure"], r["value"], r["state"]) for r in rows] == [
        ("deepest_earning_chain", 0, "ok"),
        ("members_in_chains_of_3_plus", 0, "ok"),
        ("recruitment_income_share", 0, "ok"),
        ("stock_entry_condition", 0, "ok"),
    ]
    assert report == {
        "profile": "wechat",
        "active_plan_id": plan["id"],
        "cap_bp": 3_000,
        "findings": [],
        "live": {
            "deepest_earning_level": 0,
            "deepest_referral_levels": 0,
            "members_in_chains_of_3_plus": 0,
            "member_income_fen": 0,
            "recruitment_income_fen": 0,
            "recruitment_income_share_bp": 0,
        },
    }


def test_commerce_loop_order_to_withdrawal(api: TestClient, db: Database, keys: TenantKeys) -> None:
    # given grandparent ← parent ← buyer under a 10 %/5 % plan and a 99-yuan product
    grandparent, parent, buyer, plan_id = chain_with_plan(api)
    expect(
        api.patch(
            f"{API}/settings",
            json={
                "withdrawal_min_fen": 100,
                "withdrawal_fee_bp": 100,
                "withdrawal_auto_approve_max_fen": 500,
            },
        ),
        200,
    )

    # when the buyer orders and pays
    order = place_order(api, buyer)
    assert order["id"].startswith("ord_")
    assert (order["status"], order["subtotal_fen"], order["total_fen"], order["paid_fen"]) == (
        "created",
        9_900,
        9_900,
        0,
    )
    assert [
        (ln["sku"], ln["quantity"], ln["unit_price_fen"], ln["line_total_fen"])
        for ln in order["lines"]
    ] == [("CORE-1", 1, 9_900, 9_900)]
    paid = pay(api, order, "wx-0001")

    # then the two uplines hold exactly 990 and 495 fen, pending
    assert (paid["status"], paid["paid_fen"], paid["paid_at"]) == ("paid", 9_900, NOW)
    assert paid["commissions"] == [
        {
            "beneficiary_id": parent,
            "level": 1,
            "kind": "level",
            "amount_fen": 990,
            "status": "pending",
        },
        {
            "beneficiary_id": grandparent,
            "level": 2,
            "kind": "level",
            "amount_fen": 495,
            "status": "pending",
        },
    ]
    lines = expect(api.get(f"{API}/members/{parent}/commissions"), 200)
    assert lines["next_after"] is None
    assert [
        {k: c[k] for k in ("order_id", "level", "amount_fen", "status", "plan_id", "base_fen")}
        for c in lines["items"]
    ] == [
        {
            "order_id": order["id"],
            "level": 1,
            "amount_fen": 990,
            "status": "pending",
            "plan_id": plan_id,
            "base_fen": 9_900,
        }
    ]
    assert expect(api.get(f"{API}/members/{parent}/wallet"), 200) == {
        "member_id": parent,
        "currency": "CNY",
        "available_fen": 0,
        "pending_fen": 990,
        "debt_fen": 0,
        "withdrawing_fen": 0,
        "points": 0,
    }

    # when it ships, completes and settlement runs (after-sales window of 0 days)
    shipped = expect(api.post(f"{API}/orders/{order['id']}/ship"), 200)
    assert (shipped["status"], shipped["shipped_at"]) == ("shipped", NOW)
    completed = expect(api.post(f"{API}/orders/{order['id']}/complete"), 200)
    assert (completed["status"], completed["completed_at"]) == ("completed", NOW)
    settled = expect(api.post(f"{API}/settlement/run"), 200)
    again = expect(api.post(f"{API}/settlement/run"), 200)

    # then the order closes once and exactly 990 + 495 = 1485 fen are released
    assert settled["run_id"].startswith("stl_")
    assert {k: v for k, v in settled.items() if k not in ("run_id", "growth")} == {
        "orders_cancelled": 0,
        "orders_completed": 0,
        "orders_closed": 1,
        "commissions_released": 2,
        "released_fen": 1_485,
    }
    assert {k: v for k, v in again.items() if k not in ("run_id", "growth")} == {
        "orders_cancelled": 0,
        "orders_completed": 0,
        "orders_closed": 0,
        "commissions_released": 0,
        "released_fen": 0,
    }
    assert expect(api.get(f"{API}/orders/{order['id']}"), 200)["status"] == "closed"
    wallets = {m: expect(api.get(f"{API}/members/{m}/wallet"), 200) for m in (parent, grandparent)}
    assert {
        m: (w["available_fen"], w["pending_fen"], w["debt_fen"]) for m, w in wallets.items()
    } == {
        parent: (990, 0, 0),
        grandparent: (495, 0, 0),
    }
    assert sum(w["available_fen"] for w in wallets.values()) == settled["released_fen"]
    statuses = expect(api.get(f"{API}/members/{parent}/commissions"), 200)["items"]
    assert [c["status"] for c in statuses] == ["available"]

    # when both withdraw everything (1 % fee, automatic approval up to 500 fen)
    big = expect(api.post(f"{API}/members/{parent}/withdrawals", json={"amount_fen": 990}), 201)
    small = expect(
        api.post(f"{API}/members/{grandparent}/withdrawals", json={"amount_fen": 495}), 201
    )

    # then the fee is floored, the big one waits for approval, and each has a payout id
    assert big["id"].startswith("wd_")
    assert big["payout_id"].startswith("po_")
    assert (big["status"], big["amount_fen"], big["fee_fen"], big["net_fen"]) == (
        "requested",
        990,
        9,
        981,
    )
    assert (small["status"], small["amount_fen"], small["fee_fen"], small["net_fen"]) == (
        "approved",
        495,
        4,
        491,
    )
    assert small["payout_id"] != big["payout_id"]
    assert expect(api.get(f"{API}/members/{parent}/wallet"), 200) | {"member_id": "-"} == {
        "member_id": "-",
        "currency": "CNY",
        "available_fen": 0,
        "pending_fen": 0,
        "debt_fen": 0,
        "withdrawing_fen": 990,
        "points": 0,
    }
    withdrawn = expect(api.get(f"{API}/members/{parent}/commissions"), 200)["items"]
    assert [(c["status"], c["withdrawn_fen"]) for c in withdrawn] == [("withdrawn", 990)]

    # and the ledger still balances
    assert expect(api.get(f"{API}/ledger/verify"), 200) == {
        "ok": True,
        "mismatches": [],
        "unbalanced": [],
        "negative_pending": [],
    }
    assert snapshot(db, keys.tenant_id)["withdrawals"] == 2


def test_refund_before_close_cancels_commission_in_proportion(api: TestClient) -> None:
    grandparent, parent, buyer, _ = chain_with_plan(api)
    order = place_order(api, buyer)
    pay(api, order, "wx-r1")

    # when 10 yuan of 99 are refunded before the order closes
    refund = expect(
        api.post(
            f"{API}/orders/{order['id']}/refunds", json={"amount_fen": 1_000, "reason": "破损"}
        ),
        201,
    )

    # then 990 → floor(990 × 8900 / 9900) = 890 and 495 → 445: 150 fen cancelled
    assert refund["id"].startswith("rfd_")
    assert {k: v for k, v in refund.items() if k != "id"} == {
        "order_id": order["id"],
        "amount_fen": 1_000,
        "reason": "破损",
        "phase": "before_close",
        "commission_cancelled_fen": 150,
        "commission_reversed_fen": 0,
        "created_at": NOW,
    }
    current = expect(api.get(f"{API}/orders/{order['id']}"), 200)
    assert (current["status"], current["paid_fen"], current["refunded_fen"]) == (
        "paid",
        9_900,
        1_000,
    )
    assert [(c["beneficiary_id"], c["net_fen"], c["status"]) for c in current["commissions"]] == [
        (parent, 890, "pending"),
        (grandparent, 445, "pending"),
    ]
    assert expect(api.get(f"{API}/members/{parent}/wallet"), 200)["pending_fen"] == 890

    # when the rest is refunded
    expect(
        api.post(
            f"{API}/orders/{order['id']}/refunds", json={"amount_fen": 8_900, "reason": "退货"}
        ),
        201,
    )

    # then the order is refunded and every commission is cancelled
    current = expect(api.get(f"{API}/orders/{order['id']}"), 200)
    assert (current["status"], current["refunded_fen"]) == ("refunded", 9_900)
    assert [(c["net_fen"], c["status"]) for c in current["commissions"]] == [
        (0, "cancelled"),
        (0, "cancelled"),
    ]
    for member in (parent, grandparent):
        wallet = expect(api.get(f"{API}/members/{member}/wallet"), 200)
        assert (wallet["available_fen"], wallet["pending_fen"], wallet["debt_fen"]) == (0, 0, 0)
    assert expect(api.get(f"{API}/ledger/verify"), 200)["ok"] is True


def test_refund_after_close_reverses_released_commission(api: TestClient) -> None:
    grandparent, parent, buyer, _ = chain_with_plan(api)
    order = place_order(api, buyer)
    pay(api, order, "wx-r2")
    expect(api.post(f"{API}/orders/{order['id']}/ship"), 200)
    expect(api.post(f"{API}/orders/{order['id']}/complete"), 200)
    expect(api.post(f"{API}/settlement/run"), 200)

    # when 1 yuan is refunded after the order closed
    refund = expect(
        api.post(f"{API}/orders/{order['id']}/refunds", json={"amount_fen": 100, "reason": "补偿"}),
        201,
    )

    # then 990 → 980 and 495 → 490: 15 fen reversed out of the available wallets
    assert (
        refund["phase"],
        refund["commission_cancelled_fen"],
        refund["commission_reversed_fen"],
    ) == (
        "after_close",
        0,
        15,
    )
    assert expect(api.get(f"{API}/orders/{order['id']}"), 200)["status"] == "closed"
    available = {
        m: expect(api.get(f"{API}/members/{m}/wallet"), 200)["available_fen"]
        for m in (parent, grandparent)
    }
    assert available == {parent: 980, grandparent: 490}


def test_order_creation_is_idempotent_on_the_client_key(
    api: TestClient, db: Database, keys: TenantKeys
) -> None:
    _, _, buyer, _ = chain_with_plan(api)
    first = api.post(
        f"{API}/orders",
        json={
            "buyer_id": buyer,
            "lines": [{"sku": "CORE-1", "quantity": 2}],
            "idempotency_key": "cart-7",
        },
    )
    before = contents(db, keys.tenant_id)

    # when the client sends the very same request again
    again = api.post(
        f"{API}/orders",
        json={
            "buyer_id": buyer,
            "lines": [{"sku": "CORE-1", "quantity": 2}],
            "idempotency_key": "cart-7",
        },
    )

    # then it gets the same order back, marked as a replay, and nothing new is stored
    assert (first.status_code, again.status_code) == (201, 200)
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["total_fen"] == first.json()["total_fen"] == 19_800
    assert contents(db, keys.tenant_id) == before
    orders = expect(api.get(f"{API}/orders"), 200)["items"]
    assert [o["id"] for o in orders] == [first.json()["id"]]
    # and the client finds its order by the key it sent
    found = expect(api.get(f"{API}/orders", params={"idempotency_key": " cart-7 "}), 200)
    missing = expect(api.get(f"{API}/orders", params={"idempotency_key": "cart-8"}), 200)
    assert ([o["id"] for o in found["items"]], missing["items"]) == ([first.json()["id"]], [])


def test_a_repeated_payment_callback_is_one_payment_with_one_set_of_lines(
    api: TestClient, db: Database, keys: TenantKeys
) -> None:
    grandparent, parent, buyer, _ = chain_with_plan(api)
    order = place_order(api, buyer)
    first = api.post(
        f"{API}/orders/{order['id']}/pay", json={"provider_txn_id": "wx-9", "amount_fen": 9_900}
    )
    before = contents(db, keys.tenant_id)

    # when the provider repeats the callback
    again = api.post(
        f"{API}/orders/{order['id']}/pay", json={"provider_txn_id": "wx-9", "amount_fen": 9_900}
    )

    # then the answer is the same paid order, in the same shape, and nothing at all was written
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.headers["idempotent-replayed"] == "true"
    assert (again.json()["id"], again.json()["status"], again.json()["paid_fen"]) == (
        order["id"],
        "paid",
        9_900,
    )
    assert again.json() == first.json()
    assert contents(db, keys.tenant_id) == before
    counts = snapshot(db, keys.tenant_id)
    assert (counts["payments"], counts["commission_lines"]) == (1, 2)
    read = expect(api.get(f"{API}/orders/{order['id']}"), 200)
    assert read["payment"]["provider_txn_id"] == "wx-9"
    lines = read["commissions"]
    assert [(c["beneficiary_id"], c["amount_fen"]) for c in lines] == [
        (parent, 990),
        (grandparent, 495),
    ]


def test_settlement_respects_the_after_sales_window(api: TestClient, clock: ManualClock) -> None:
    _, parent, buyer, _ = chain_with_plan(api)
    expect(api.patch(f"{API}/settings", json={"after_sales_days": 7}), 200)
    order = place_order(api, buyer)
    pay(api, order, "wx-w")
    expect(api.post(f"{API}/orders/{order['id']}/ship"), 200)
    expect(api.post(f"{API}/orders/{order['id']}/complete"), 200)

    clock.advance(days=6, hours=23)
    assert expect(api.post(f"{API}/settlement/run"), 200)["orders_closed"] == 0
    clock.advance(hours=1)
    assert expect(api.post(f"{API}/settlement/run"), 200)["released_fen"] == 1_485
    assert expect(api.get(f"{API}/members/{parent}/wallet"), 200)["available_fen"] == 990


CONTRACT = {
    "/api/v1/settings": {"patch"},
    "/api/v1/products": {"post"},
    "/api/v1/products/{sku}": {"get"},
    "/api/v1/members": {"post"},
    "/api/v1/members/{member_id}": {"get"},
    "/api/v1/members/{member_id}/team": {"get"},
    "/api/v1/members/{member_id}/rebind": {"post"},
    "/api/v1/commission-plans": {"post"},
    "/api/v1/commission-plans/{plan_id}/activate": {"post"},
    "/api/v1/compliance/report": {"get"},
    "/api/v1/orders": {"post"},
    "/api/v1/orders/{order_id}/pay": {"post"},
    "/api/v1/orders/{order_id}/ship": {"post"},
    "/api/v1/orders/{order_id}/complete": {"post"},
    "/api/v1/orders/{order_id}/refunds": {"post"},
    "/api/v1/settlement/run": {"post"},
    "/api/v1/members/{member_id}/commissions": {"get"},
    "/api/v1/members/{member_id}/wallet": {"get"},
    "/api/v1/members/{member_id}/withdrawals": {"post"},
}


def test_openapi_lists_every_contract_path(client: TestClient) -> None:
    spec = expect(client.get("/openapi.json"), 200)
    assert spec["info"]["title"] == "Shequn"
    missing = {
        path: sorted(methods - set(spec["paths"].get(path, {})))
        for path, methods in CONTRACT.items()
        if methods - set(spec["paths"].get(path, {}))
    }
    assert missing == {}
    schemes = spec["components"]["securitySchemes"]
    assert [s["scheme"] for s in schemes.values()] == ["bearer"]


def test_the_event_feed_records_each_change_in_order_and_pages(api: TestClient) -> None:
    # given a referred buyer's paid order
    buyer = chain_with_plan(api)[2]
    order = place_order(api, buyer)
    pay(api, order, "wx-feed")

    # when the feed is read two events at a time, filtered to the order
    pages, after = [], None
    while True:
        query = {"subject_type": "order", "subject_id": order["id"], "limit": 2}
        if after is not None:
            query["after"] = after
        page = expect(api.get(f"{API}/events", params=query), 200)
        pages.append([(e["type"], e["subject_id"]) for e in page["items"]])
        after = page["next_after"]
        if after is None:
            break

    # then the order's events come in the order they happened, on one page
    assert pages == [[("OrderCreated", order["id"]), ("OrderPaid", order["id"])]]
    paid = expect(api.get(f"{API}/events", params={"type": "OrderPaid"}), 200)["items"]
    assert [e["payload"]["commission_fen"] for e in paid] == [1_485]
    assert set(paid[0]) == {
        "id",
        "type",
        "subject_type",
        "subject_id",
        "actor",
        "payload",
        "occurred_at",
    }

    # and the whole feed pages without gaps or repeats
    everything = expect(api.get(f"{API}/events", params={"limit": 1000}), 200)["items"]
    seen: list[str] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if after is not None:
            params["after"] = after
        page = expect(api.get(f"{API}/events", params=params), 200)
        seen.extend(e["id"] for e in page["items"])
        after = page["next_after"]
        if after is None:
            break
    assert seen == [e["id"] for e in everything]
    assert len(seen) == len(set(seen))
    assert [e["type"] for e in everything] == [
        "TenantCreated",
        "ApiKeyCreated",  # the fixture's operator key
        "ApiKeyCreated",  # and its read-only key
        "SettingsChanged",
        "ProductCreated",
        "MemberRegistered",
        "MemberRegistered",
        "MemberBound",
        "MemberRegistered",
        "MemberBound",
        "CommissionPlanCreated",
        "CommissionPlanActivated",
        "OrderCreated",
        "OrderPaid",
    ]


def test_an_integrator_finds_a_member_by_its_own_id_or_phone(api: TestClient) -> None:
    member = create_member(api, "小程序用户", phone="13812345678", external_id="wx-openid-9")
    create_member(api, "别人", phone="13900000009")

    by_id = expect(api.get(f"{API}/members", params={"external_id": "wx-openid-9"}), 200)
    by_phone = expect(api.get(f"{API}/members", params={"phone": "+86 138 1234 5678"}), 200)
    assert [m["id"] for m in by_id["items"]] == [member["id"]]
    assert [m["id"] for m in by_phone["items"]] == [member["id"]]
    refused = api.get(f"{API}/members", params={"phone": "12"})
    assert (refused.status_code, refused.json()["code"]) == (422, "phone_invalid")
