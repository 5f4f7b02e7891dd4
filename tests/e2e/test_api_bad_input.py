"""Bad input over HTTP: a 4xx with the exact code and a `{"code", "message"}` body, and not a
single row of either tenant changed (compared row by row, not only counted)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shequn.db import Database
from tests.e2e.conftest import (
    API,
    OTHER_SKU,
    TenantKeys,
    World,
    contents,
    error_of,
    expect,
    snapshot,
)


def both_tenants(db: Database, w: World) -> dict[str, list[tuple[Any, ...]]]:
    return contents(db, w.keys.tenant_id, w.other.tenant_id)


# --- the table of refusals ------------------------------------------------------------------
# Paths and bodies name the world's ids as `{root}`, `{paid}`, `{other_member}` …

Who = Callable[[World], dict[str, str]]


def owner(w: World) -> dict[str, str]:
    return w.keys.owner


def operator(w: World) -> dict[str, str]:
    return w.keys.operator


def readonly(w: World) -> dict[str, str]:
    return w.keys.readonly


def no_key(w: World) -> dict[str, str]:
    return {"Accept-Language": "en"}


def unknown_key(w: World) -> dict[str, str]:
    return {"Authorization": "Bearer sk_not-a-real-key", "Accept-Language": "en"}


def malformed_key(w: World) -> dict[str, str]:
    return {"Authorization": "Bearer hunter2", "Accept-Language": "en"}


def basic_auth(w: World) -> dict[str, str]:
    return {"Authorization": "Basic dXNlcjpwYXNz", "Accept-Language": "en"}


def fill(template: Any, w: World) -> Any:
    """The template with every `{name}` replaced by the world's id of that name."""
    if isinstance(template, str):
        return template.format(**{f.name: getattr(w, f.name) for f in fields(w)})
    if isinstance(template, dict):
        return {k: fill(v, w) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, w) for v in template]
    return template


def case(
    name: str, status: int, code: str, method: str, path: str, body: Any = None, who: Who = owner
) -> Any:
    return pytest.param(method, path, body, who, status, code, id=name)


def product(**changes: Any) -> dict[str, Any]:
    return {"sku": "NEW-1", "name": "新品", "price_fen": 100, "ladder_role": "core", **changes}


def order(quantity: Any = 1, **changes: Any) -> dict[str, Any]:
    return {"buyer_id": "{buyer}", "lines": [{"sku": "CORE-1", "quantity": quantity}], **changes}


def plan_with(*levels: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {"mode": "levels", "levels": list(levels), **changes}


def pay(amount: Any, txn: str = "wx-new") -> dict[str, Any]:
    return {"provider_txn_id": txn, "amount_fen": amount}


def refund(amount: Any, reason: str = "质量问题") -> dict[str, Any]:
    return {"amount_fen": amount, "reason": reason}


def rebind(referrer: Any, reason: str = "客服核实") -> dict[str, Any]:
    return {"referrer_id": referrer, "reason": reason}


L1 = {"level": 1, "rate_bp": 1_000}
P, G = "POST", "GET"
PAY_CREATED, REFUND_PAID = "/orders/{created}/pay", "/orders/{paid}/refunds"
WITHDRAW = "/members/{parent}/withdrawals"

UNKNOWN_IDS = [
    case("get-unknown-member", 404, "member_not_found", G, "/members/mem_nope"),
    case("team-of-unknown-member", 404, "member_not_found", G, "/members/mem_nope/team"),
    case("wallet-of-unknown-member", 404, "member_not_found", G, "/members/mem_nope/wallet"),
    case("lines-of-unknown-member", 404, "member_not_found", G, "/members/mem_nope/commissions"),
    case(
        "member-with-unknown-referrer",
        404,
        "referrer_not_found",
        P,
        "/members",
        {"name": "新人", "referrer_id": "mem_nope"},
    ),
    case(
        "rebind-unknown-member",
        404,
        "member_not_found",
        P,
        "/members/mem_nope/rebind",
        rebind("{root}"),
    ),
    case(
        "rebind-under-unknown",
        404,
        "referrer_not_found",
        P,
        "/members/{buyer}/rebind",
        rebind("mem_nope"),
    ),
    case(
        "order-for-unknown-buyer", 404, "member_not_found", P, "/orders", order(buyer_id="mem_nope")
    ),
    case(
        "order-of-unknown-sku",
        404,
        "product_not_found",
        P,
        "/orders",
        order(lines=[{"sku": "NOPE", "quantity": 1}]),
    ),
    case(
        "order-for-unknown-sharer",
        404,
        "member_not_found",
        P,
        "/orders",
        order(attributed_sharer_id="mem_nope"),
    ),
    case("get-unknown-product", 404, "product_not_found", G, "/products/NOPE"),
    case("get-unknown-order", 404, "order_not_found", G, "/orders/ord_nope"),
    case("pay-unknown-order", 404, "order_not_found", P, "/orders/ord_nope/pay", pay(1)),
    case("ship-unknown-order", 404, "order_not_found", P, "/orders/ord_nope/ship"),
    case("complete-unknown-order", 404, "order_not_found", P, "/orders/ord_nope/complete"),
    case("refund-unknown-order", 404, "order_not_found", P, "/orders/ord_nope/refunds", refund(1)),
    case("activate-unknown-plan", 404, "plan_not_found", P, "/commission-plans/plan_nope/activate"),
    case(
        "withdraw-for-unknown-member",
        404,
        "member_not_found",
        P,
        "/members/mem_nope/withdrawals",
        {"amount_fen": 100},
    ),
    case(
        "plan-for-unknown-tier",
        404,
        "tier_not_found",
        P,
        "/commission-plans",
        plan_with({**L1, "tiers": ["tier_nope"]}),
    ),
    case(
        "plan-scoped-to-unknown-sku",
        404,
        "product_not_found",
        P,
        "/commission-plans",
        plan_with({**L1, "scope": {"kind": "product", "value": "NOPE"}}),
    ),
]

AMOUNTS = [
    case("price-negative", 422, "amount_invalid", P, "/products", product(price_fen=-1)),
    case("price-float", 422, "validation_error", P, "/products", product(price_fen=99.5)),
    case("price-whole-float", 422, "validation_error", P, "/products", product(price_fen=100.0)),
    case("price-string", 422, "validation_error", P, "/products", product(price_fen="100")),
    case("price-bool", 422, "validation_error", P, "/products", product(price_fen=True)),
    case("price-null", 422, "validation_error", P, "/products", product(price_fen=None)),
    case("price-above-max", 422, "amount_invalid", P, "/products", product(price_fen=10**13 + 1)),
    case("price-beyond-int64", 422, "amount_invalid", P, "/products", product(price_fen=2**63)),
    case("price-huge", 422, "amount_invalid", P, "/products", product(price_fen=10**40)),
    case(
        "member-price-float",
        422,
        "validation_error",
        P,
        "/products",
        product(tier_prices=[{"tier_id": "t", "member_price_fen": 1.5}]),
    ),
    case("pay-negative", 422, "amount_invalid", P, PAY_CREATED, pay(-9_900)),
    case("pay-float", 422, "validation_error", P, PAY_CREATED, pay(9_900.0)),
    case("pay-string", 422, "validation_error", P, PAY_CREATED, pay("9900")),
    case("pay-huge", 422, "amount_invalid", P, PAY_CREATED, pay(10**30)),
    case("pay-less-than-due", 422, "payment_amount_mismatch", P, PAY_CREATED, pay(9_899)),
    case("pay-more-than-due", 422, "payment_amount_mismatch", P, PAY_CREATED, pay(9_901)),
    case("pay-zero", 422, "payment_amount_mismatch", P, PAY_CREATED, pay(0)),
    case("refund-negative", 422, "amount_invalid", P, REFUND_PAID, refund(-1)),
    case("refund-zero", 422, "amount_invalid", P, REFUND_PAID, refund(0)),
    case("refund-float", 422, "validation_error", P, REFUND_PAID, refund(0.5)),
    case("refund-huge", 422, "amount_invalid", P, REFUND_PAID, refund(10**30)),
    case("withdraw-negative", 422, "amount_invalid", P, WITHDRAW, {"amount_fen": -100}),
    case("withdraw-zero", 422, "amount_invalid", P, WITHDRAW, {"amount_fen": 0}),
    case("withdraw-float", 422, "validation_error", P, WITHDRAW, {"amount_fen": 100.5}),
    case("withdraw-string", 422, "validation_error", P, WITHDRAW, {"amount_fen": "100"}),
    case("withdraw-huge", 422, "amount_invalid", P, WITHDRAW, {"amount_fen": 10**30}),
    case("quantity-zero", 422, "quantity_invalid", P, "/orders", order(0)),
    case("quantity-negative", 422, "quantity_invalid", P, "/orders", order(-1)),
    case("quantity-above-max", 422, "quantity_invalid", P, "/orders", order(10_001)),
    case("quantity-huge", 422, "quantity_invalid", P, "/orders", order(10**30)),
    case("quantity-float", 422, "validation_error", P, "/orders", order(1.5)),
    case("quantity-string", 422, "validation_error", P, "/orders", order("1")),
    case(
        "days-negative", 422, "setting_out_of_range", "PATCH", "/settings", {"after_sales_days": -1}
    ),
    case(
        "days-huge", 422, "setting_out_of_range", "PATCH", "/settings", {"after_sales_days": 10**30}
    ),
    case("days-float", 422, "validation_error", "PATCH", "/settings", {"after_sales_days": 1.5}),
    case(
        "withdrawal-minimum-negative",
        422,
        "setting_out_of_range",
        "PATCH",
        "/settings",
        {"withdrawal_min_fen": -1},
    ),
    case(
        "withdrawal-fee-above-half",
        422,
        "setting_out_of_range",
        "PATCH",
        "/settings",
        {"withdrawal_fee_bp": 5_001},
    ),
    case(
        "unknown-profile",
        422,
        "validation_error",
        "PATCH",
        "/settings",
        {"compliance_profile": "anything-goes"},
    ),
    case(
        "plan-negative-rate",
        422,
        "rate_invalid",
        P,
        "/commission-plans",
        plan_with({"level": 1, "rate_bp": -1}),
    ),
    case(
        "plan-rate-above-all",
        422,
        "rate_invalid",
        P,
        "/commission-plans",
        plan_with({"level": 1, "rate_bp": 10_001}),
    ),
    case(
        "plan-float-rate",
        422,
        "validation_error",
        P,
        "/commission-plans",
        plan_with({"level": 1, "rate_bp": 10.5}),
    ),
    case(
        "plan-negative-fixed",
        422,
        "amount_invalid",
        P,
        "/commission-plans",
        plan_with({"level": 1, "fixed_fen": -1}),
    ),
    case(
        "plan-negative-peer-bonus",
        422,
        "rate_invalid",
        P,
        "/commission-plans",
        plan_with(L1, peer_bonus_bp=-1),
    ),
]

REFERRALS = [
    case("rebind-to-self", 422, "self_referral", P, "/members/{parent}/rebind", rebind("{parent}")),
    case(
        "rebind-root-under-grandchild",
        422,
        "referral_cycle",
        P,
        "/members/{root}/rebind",
        rebind("{buyer}"),
    ),
    case(
        "rebind-root-under-child",
        422,
        "referral_cycle",
        P,
        "/members/{root}/rebind",
        rebind("{parent}"),
    ),
    case(
        "rebind-to-same-referrer",
        409,
        "rebind_same_referrer",
        P,
        "/members/{buyer}/rebind",
        rebind("{parent}"),
    ),
    case(
        "rebind-without-reason",
        422,
        "rebind_reason_required",
        P,
        "/members/{buyer}/rebind",
        rebind("{root}", "   "),
    ),
    case(
        "order-attributed-to-buyer",
        422,
        "self_referral",
        P,
        "/orders",
        order(attributed_sharer_id="{buyer}"),
    ),
    case(
        "share-touch-by-oneself",
        422,
        "self_referral",
        P,
        "/referral-touches",
        {"sharer_id": "{buyer}", "member_id": "{buyer}"},
    ),
    case(
        "new-member-with-referrers-phone",
        422,
        "self_referral",
        P,
        "/members",
        {"name": "马甲", "phone": "+86 139 0000 0001", "referrer_id": "{root}"},
    ),
]

DEPTH = [
    case(
        "plan-level-4",
        422,
        "plan_depth_exceeded",
        P,
        "/commission-plans",
        plan_with(L1, {"level": 4, "rate_bp": 100}),
    ),
    case(
        "plan-depth-4", 422, "plan_depth_exceeded", P, "/commission-plans", plan_with(L1, depth=4)
    ),
    case("plan-depth-0", 422, "plan_depth_invalid", P, "/commission-plans", plan_with(L1, depth=0)),
    case(
        "plan-level-0",
        422,
        "rule_level_invalid",
        P,
        "/commission-plans",
        plan_with({"level": 0, "rate_bp": 100}),
    ),
    case(
        "plan-level-beyond-depth",
        422,
        "rule_level_beyond_depth",
        P,
        "/commission-plans",
        plan_with(L1, {"level": 3, "rate_bp": 100}, depth=2),
    ),
    case(
        "differential-depth-4",
        422,
        "plan_depth_exceeded",
        P,
        "/commission-plans",
        {"mode": "differential", "depth": 4, "tier_rates": [{"tier_id": "t", "rate_bp": 100}]},
    ),
]

OTHER_TENANT = [
    case("get-their-member", 404, "member_not_found", G, "/members/{other_member}"),
    case(
        "their-member-as-referrer",
        404,
        "referrer_not_found",
        P,
        "/members",
        {"name": "新人", "referrer_id": "{other_member}"},
    ),
    case(
        "rebind-under-their-member",
        404,
        "referrer_not_found",
        P,
        "/members/{buyer}/rebind",
        rebind("{other_member}"),
    ),
    case(
        "rebind-their-member",
        404,
        "member_not_found",
        P,
        "/members/{other_member}/rebind",
        rebind("{root}"),
    ),
    case(
        "order-for-their-member",
        404,
        "member_not_found",
        P,
        "/orders",
        order(buyer_id="{other_member}"),
    ),
    case(
        "order-of-their-product",
        404,
        "product_not_found",
        P,
        "/orders",
        order(lines=[{"sku": OTHER_SKU, "quantity": 1}]),
    ),
    case("get-their-product", 404, "product_not_found", G, f"/products/{OTHER_SKU}"),
    case("get-their-order", 404, "order_not_found", G, "/orders/{other_order}"),
    case("pay-their-order", 404, "order_not_found", P, "/orders/{other_order}/pay", pay(100)),
    case("ship-their-order", 404, "order_not_found", P, "/orders/{other_order}/ship"),
    case(
        "refund-their-order", 404, "order_not_found", P, "/orders/{other_order}/refunds", refund(1)
    ),
    case(
        "activate-their-plan", 404, "plan_not_found", P, "/commission-plans/{other_plan}/activate"
    ),
    case("their-member-wallet", 404, "member_not_found", G, "/members/{other_member}/wallet"),
    case(
        "withdraw-for-their-member",
        404,
        "member_not_found",
        P,
        "/members/{other_member}/withdrawals",
        {"amount_fen": 100},
    ),
]

AUTH = [
    case("no-key", 401, "api_key_missing", P, "/members", {"name": "x"}, no_key),
    case("no-key-on-a-read", 401, "api_key_missing", G, "/members/{root}", None, no_key),
    case("unknown-key", 401, "api_key_invalid", P, "/members", {"name": "x"}, unknown_key),
    case("malformed-key", 401, "api_key_invalid", G, "/members", None, malformed_key),
    case("basic-auth", 401, "api_key_missing", G, "/members", None, basic_auth),
    case("readonly-creates", 403, "permission_denied", P, "/members", {"name": "x"}, readonly),
    case("readonly-pays", 403, "permission_denied", P, PAY_CREATED, pay(9_900), readonly),
    case("readonly-ships", 403, "permission_denied", P, "/orders/{paid}/ship", None, readonly),
    case("readonly-settles", 403, "permission_denied", P, "/settlement/run", None, readonly),
    case(
        "readonly-withdraws", 403, "permission_denied", P, WITHDRAW, {"amount_fen": 100}, readonly
    ),
    case(
        "readonly-rebinds",
        403,
        "permission_denied",
        P,
        "/members/{buyer}/rebind",
        rebind("{root}"),
        readonly,
    ),
    case(
        "operator-rebinds",
        403,
        "permission_denied",
        P,
        "/members/{buyer}/rebind",
        rebind("{root}"),
        operator,
    ),
    case(
        "operator-patches-settings",
        403,
        "permission_denied",
        "PATCH",
        "/settings",
        {"after_sales_days": 3},
        operator,
    ),
    case(
        "operator-creates-plan",
        403,
        "permission_denied",
        P,
        "/commission-plans",
        plan_with(L1),
        operator,
    ),
    case(
        "operator-activates-plan",
        403,
        "permission_denied",
        P,
        "/commission-plans/{plan}/activate",
        None,
        operator,
    ),
]

TRANSITIONS = [
    case("ship-unpaid", 409, "order_transition_invalid", P, "/orders/{created}/ship"),
    case("complete-unpaid", 409, "order_transition_invalid", P, "/orders/{created}/complete"),
    case("complete-before-ship", 409, "order_transition_invalid", P, "/orders/{paid}/complete"),
    case(
        "refund-unpaid", 409, "order_transition_invalid", P, "/orders/{created}/refunds", refund(1)
    ),
    case("ship-closed", 409, "order_transition_invalid", P, "/orders/{closed}/ship"),
    case("pay-twice-another-txn", 409, "order_already_paid", P, "/orders/{paid}/pay", pay(9_900)),
    case(
        "pay-closed-another-txn", 409, "order_already_paid", P, "/orders/{closed}/pay", pay(9_900)
    ),
    case(
        "pay-with-another-orders-txn",
        409,
        "payment_txn_reused",
        P,
        PAY_CREATED,
        pay(9_900, "wx-paid"),
    ),
    case("refund-more-than-paid", 409, "refund_exceeds_paid", P, REFUND_PAID, refund(9_901)),
    case("refund-without-reason", 422, "refund_reason_required", P, REFUND_PAID, refund(1, " ")),
]

EXTRA_OR_MISSING_FIELDS = [
    case("member-extra", 422, "validation_error", P, "/members", {"name": "x", "is_admin": True}),
    case("member-no-name", 422, "validation_error", P, "/members", {"phone": "13900000009"}),
    case("product-extra", 422, "validation_error", P, "/products", product(stock=5)),
    case("order-extra", 422, "validation_error", P, "/orders", order(discount_fen=9_000)),
    case(
        "order-line-extra",
        422,
        "validation_error",
        P,
        "/orders",
        order(lines=[{"sku": "CORE-1", "quantity": 1, "price_fen": 1}]),
    ),
    case("order-no-lines-field", 422, "validation_error", P, "/orders", {"buyer_id": "{buyer}"}),
    case("order-empty-lines", 422, "order_lines_invalid", P, "/orders", order(lines=[])),
    case("pay-extra", 422, "validation_error", P, PAY_CREATED, {**pay(9_900), "currency": "USD"}),
    case("refund-extra", 422, "validation_error", P, REFUND_PAID, {**refund(1), "to": "me"}),
    case("settings-extra", 422, "validation_error", "PATCH", "/settings", {"currency": "USD"}),
    case(
        "settings-nested-extra",
        422,
        "validation_error",
        "PATCH",
        "/settings",
        {"binding_policy": {"mode": "last_touch", "colour": "red"}},
    ),
    case("plan-extra", 422, "validation_error", P, "/commission-plans", plan_with(L1, bonus=1)),
    case(
        "plan-level-extra",
        422,
        "validation_error",
        P,
        "/commission-plans",
        plan_with({**L1, "cap_fen": 1}),
    ),
    case(
        "rebind-extra",
        422,
        "validation_error",
        P,
        "/members/{buyer}/rebind",
        {**rebind("{root}"), "force": True},
    ),
    case(
        "withdrawal-extra", 422, "validation_error", P, WITHDRAW, {"amount_fen": 100, "fee_fen": 0}
    ),
]

# An explicit null for a field that cannot be empty is refused, not read as "no change" or as
# False.
NULLS = [
    case("product-null-name", 422, "field_required", "PATCH", "/products/CORE-1", {"name": None}),
    case(
        "product-null-price",
        422,
        "field_required",
        "PATCH",
        "/products/CORE-1",
        {"price_fen": None},
    ),
    case(
        "product-null-role",
        422,
        "field_required",
        "PATCH",
        "/products/CORE-1",
        {"ladder_role": None},
    ),
    case(
        "product-null-active", 422, "field_required", "PATCH", "/products/CORE-1", {"active": None}
    ),
]

WITHDRAWALS = [
    case(
        "withdraw-below-minimum", 422, "withdrawal_below_minimum", P, WITHDRAW, {"amount_fen": 99}
    ),
    case("withdraw-fen-above-balance", 409, "insufficient_funds", P, WITHDRAW, {"amount_fen": 991}),
    case(
        "withdraw-pending-money",
        409,
        "insufficient_funds",
        P,
        "/members/{buyer}/withdrawals",
        {"amount_fen": 100},
    ),
]

REFUSALS = (
    UNKNOWN_IDS
    + AMOUNTS
    + REFERRALS
    + DEPTH
    + OTHER_TENANT
    + AUTH
    + TRANSITIONS
    + EXTRA_OR_MISSING_FIELDS
    + NULLS
    + WITHDRAWALS
)


@pytest.mark.parametrize(("method", "path", "body", "who", "status", "code"), REFUSALS)
def test_bad_input_is_refused_and_changes_nothing(
    client: TestClient,
    db: Database,
    world: World,
    method: str,
    path: str,
    body: Any,
    who: Who,
    status: int,
    code: str,
) -> None:
    before = both_tenants(db, world)

    response = client.request(
        method, f"{API}{fill(path, world)}", json=fill(body, world), headers=who(world)
    )

    assert error_of(response) == (status, code)
    assert both_tenants(db, world) == before


def test_world_is_what_the_table_assumes(client: TestClient, world: World) -> None:
    """The refusals above rely on these balances and states."""
    h = world.keys.owner
    wallets = {
        m: client.get(f"{API}/members/{m}/wallet", headers=h).json()
        for m in (world.parent, world.buyer)
    }
    assert (wallets[world.parent]["available_fen"], wallets[world.buyer]["available_fen"]) == (
        990,
        0,
    )
    statuses = [
        client.get(f"{API}/orders/{o}", headers=h).json()["status"]
        for o in (world.closed, world.paid, world.created)
    ]
    assert statuses == ["closed", "paid", "created"]


# --- refusals that need a setting-up of their own -------------------------------------------


def test_a_blocked_plan_is_refused_with_its_findings(
    client: TestClient, db: Database, fresh_world: World
) -> None:
    # given a three-level plan under the default wechat profile (two levels at most)
    world = fresh_world
    levels = [L1, {"level": 2, "rate_bp": 500}, {"level": 3, "rate_bp": 200}]
    plan = expect(
        client.post(f"{API}/commission-plans", json=plan_with(*levels), headers=world.keys.owner),
        201,
    )
    assert [(f["rule"], f["severity"]) for f in plan["findings"]] == [("commission_depth", "block")]
    before = both_tenants(db, world)

    # when it is activated
    response = client.post(
        f"{API}/commission-plans/{plan['id']}/activate", headers=world.keys.owner
    )

    # then it is refused with the blocking finding, and the old plan stays active
    assert error_of(response) == (409, "plan_blocked")
    findings = response.json()["findings"]
    assert [(f["rule"], f["severity"], f["params"]) for f in findings] == [
        ("commission_depth", "block", {"depth": 3, "max": 2})
    ]
    assert findings[0]["citation"] != ""
    assert both_tenants(db, world) == before
    settings = expect(client.get(f"{API}/settings", headers=world.keys.owner), 200)
    assert settings["active_plan_id"] == world.plan


def test_a_stricter_profile_is_refused_while_the_active_plan_breaks_it(
    client: TestClient, db: Database, world: World
) -> None:
    before = both_tenants(db, world)
    response = client.patch(
        f"{API}/settings", json={"compliance_profile": "direct"}, headers=world.keys.owner
    )
    assert error_of(response) == (409, "settings_break_active_plan")
    assert [(f["rule"], f["params"]) for f in response.json()["findings"]] == [
        ("commission_depth", {"depth": 2, "max": 1})
    ]
    assert both_tenants(db, world) == before


def test_a_revoked_key_is_refused(
    client: TestClient, make_tenant: Callable[[str], TenantKeys]
) -> None:
    keys = make_tenant("吊销 revoke")
    issued = expect(
        client.post(
            f"{API}/api-keys", json={"name": "temp", "role": "operator"}, headers=keys.owner
        ),
        201,
    )
    temp = {"Authorization": f"Bearer {issued['api_key']}", "Accept-Language": "en"}
    assert client.get(f"{API}/members", headers=temp).status_code == 200

    assert client.delete(f"{API}/api-keys/{issued['id']}", headers=keys.owner).status_code == 204

    response = client.get(f"{API}/members", headers=temp)
    assert error_of(response) == (401, "api_key_invalid")
    assert response.headers["www-authenticate"] == "Bearer"


def test_the_last_owner_key_cannot_be_revoked(
    client: TestClient, db: Database, keys: TenantKeys
) -> None:
    owners = [
        k
        for k in expect(client.get(f"{API}/api-keys", headers=keys.owner), 200)
        if k["role"] == "owner"
    ]
    assert len(owners) == 1
    before = contents(db, keys.tenant_id)
    response = client.delete(f"{API}/api-keys/{owners[0]['id']}", headers=keys.owner)
    assert error_of(response) == (409, "last_owner_key")
    assert contents(db, keys.tenant_id) == before
    assert client.get(f"{API}/members", headers=keys.owner).status_code == 200


def test_a_missing_key_is_answered_with_a_bearer_challenge(client: TestClient) -> None:
    response = client.get(f"{API}/members")
    assert error_of(response) == (401, "api_key_missing")
    assert response.headers["www-authenticate"] == "Bearer"


def test_error_messages_follow_accept_language(client: TestClient, keys: TenantKeys) -> None:
    chinese = client.get(
        f"{API}/members/mem_nope", headers={**keys.owner, "Accept-Language": "zh-CN,zh;q=0.9"}
    )
    english = client.get(
        f"{API}/members/mem_nope", headers={**keys.owner, "Accept-Language": "en-GB"}
    )
    assert chinese.json() == {"code": "member_not_found", "message": "会员 mem_nope 不存在。"}
    assert english.json() == {
        "code": "member_not_found",
        "message": "Member mem_nope does not exist.",
    }


# --- idempotency keys reused for another request, and other refusals with their own setup ----


def test_order_idempotency_key_reused_for_another_request(
    client: TestClient, db: Database, fresh_world: World
) -> None:
    world, h, key = fresh_world, fresh_world.keys.owner, "cart-1"
    expect(
        client.post(f"{API}/orders", json=fill(order(1, idempotency_key=key), world), headers=h),
        201,
    )
    before = both_tenants(db, world)
    response = client.post(
        f"{API}/orders", json=fill(order(2, idempotency_key=key), world), headers=h
    )
    assert both_tenants(db, world) == before
    assert error_of(response) == (409, "idempotency_key_reused")


def test_withdrawal_idempotency_key_reused_for_another_amount(
    client: TestClient, db: Database, fresh_world: World
) -> None:
    w, h = fresh_world, fresh_world.keys.owner
    path = f"{API}/members/{w.parent}/withdrawals"
    expect(client.post(path, json={"amount_fen": 100, "idempotency_key": "wd-1"}, headers=h), 201)
    before = both_tenants(db, w)
    response = client.post(path, json={"amount_fen": 200, "idempotency_key": "wd-1"}, headers=h)
    assert both_tenants(db, w) == before
    assert error_of(response) == (409, "idempotency_key_reused")


def test_refund_idempotency_key_reused_for_another_amount(
    client: TestClient, db: Database, fresh_world: World
) -> None:
    w, h = fresh_world, fresh_world.keys.owner
    path = f"{API}/orders/{w.paid}/refunds"
    expect(
        client.post(
            path, json={"amount_fen": 1, "reason": "r", "idempotency_key": "rf-1"}, headers=h
        ),
        201,
    )
    before = both_tenants(db, w)
    response = client.post(
        path, json={"amount_fen": 2, "reason": "r", "idempotency_key": "rf-1"}, headers=h
    )
    assert both_tenants(db, w) == before
    assert error_of(response) == (409, "idempotency_key_reused")


@pytest.mark.parametrize(
    "body",
    [
        {"name": None},
        {"rank": None},
        {"privileges": {"discount_bp": None}},
        {"privileges": {"may_distribute": None}},
    ],
)
def test_tier_patch_with_null_is_refused(
    api: TestClient, db: Database, keys: TenantKeys, body: dict[str, Any]
) -> None:
    tier = expect(api.post(f"{API}/tiers", json={"name": "VIP", "rank": 1}), 201)
    before = contents(db, keys.tenant_id)
    response = api.patch(f"{API}/tiers/{tier['id']}", json=body)
    assert error_of(response) == (422, "field_required")
    assert contents(db, keys.tenant_id) == before


def test_touch_with_overlong_external_id_is_refused(
    api: TestClient, db: Database, keys: TenantKeys
) -> None:
    sharer = expect(api.post(f"{API}/members", json={"name": "分享者"}), 201)["id"]
    before = contents(db, keys.tenant_id)
    response = api.post(
        f"{API}/referral-touches", json={"sharer_id": sharer, "external_id": "e" * 200}
    )
    assert contents(db, keys.tenant_id) == before
    assert error_of(response) == (422, "external_id_invalid")


def test_plan_with_overlong_scope_value_is_refused(
    api: TestClient, db: Database, keys: TenantKeys
) -> None:
    before = contents(db, keys.tenant_id)
    body = plan_with({**L1, "scope": {"kind": "category", "value": "c" * 200}})
    response = api.post(f"{API}/commission-plans", json=body)
    assert contents(db, keys.tenant_id) == before
    assert error_of(response) == (422, "rule_scope_invalid")


def test_replayed_callback_with_another_amount_is_refused(
    client: TestClient, db: Database, world: World
) -> None:
    before = both_tenants(db, world)
    response = client.post(
        f"{API}/orders/{world.paid}/pay",
        json={"provider_txn_id": "wx-paid", "amount_fen": 1},
        headers=world.keys.owner,
    )
    assert both_tenants(db, world) == before
    assert error_of(response) == (409, "payment_replay_amount_mismatch")


def test_snapshot_counts_every_table_of_the_world(db: Database, world: World) -> None:
    """The snapshot helper sees the world's rows (and would see a stray insert)."""
    counts = snapshot(db, world.keys.tenant_id)
    assert (
        counts["members"],
        counts["orders"],
        counts["payments"],
        counts["commission_lines"],
    ) == (3, 3, 2, 4)
    assert (counts["products"], counts["commission_plans"], counts["api_keys"]) == (1, 1, 3)
    assert snapshot(db, world.other.tenant_id)["members"] == 1
