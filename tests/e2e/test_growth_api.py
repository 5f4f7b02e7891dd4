"""Growth over HTTP: share links with their QR codes, poster and public redirect; the seed
scenarios (a sharer rewarded only once the friend's order closes, and losing it on a refund
after close; an agent refused a stock order that would give 90 days of cover); coupons and
points on an order; fraud holds decided by an operator; `shequn points expire`; and every
growth endpoint refusing bad input with a code and changing nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from shequn.clock import ManualClock
from shequn.db import Database
from tests.e2e.conftest import API, TenantKeys, contents, error_of, expect

SHOP = "https://shop.example.com"


def _post(client: TestClient, keys: TenantKeys, path: str, body: Any = None) -> Any:
    response = client.post(f"{API}{path}", json=body, headers=keys.owner)
    assert response.status_code in (200, 201), (path, response.text)
    return response.json()


def _get(client: TestClient, keys: TenantKeys, path: str) -> Any:
    return expect(client.get(f"{API}{path}", headers=keys.owner), 200)


def _shop(client: TestClient, keys: TenantKeys, *, after_sales_days: int = 7) -> None:
    expect(
        client.patch(
            f"{API}/settings", json={"after_sales_days": after_sales_days}, headers=keys.owner
        ),
        200,
    )
    templates = {
        "product": SHOP + "/p/{target_id}?sc={code}",
        "community": SHOP + "/join?sc={code}",
    }
    expect(
        client.patch(
            f"{API}/growth-settings", json={"share_url_templates": templates}, headers=keys.owner
        ),
        200,
    )
    product = {"sku": "CORE-1", "name": "精华会员装", "price_fen": 9_900, "ladder_role": "core"}
    _post(client, keys, "/products", product)


def _wallet(client: TestClient, keys: TenantKeys, member_id: str) -> dict[str, Any]:
    found: dict[str, Any] = _get(client, keys, f"/members/{member_id}/wallet")
    return found


def _pay_and_complete(client: TestClient, keys: TenantKeys, order: dict[str, Any]) -> None:
    payment = {"provider_txn_id": f"wx-{order['id']}", "amount_fen": order["total_fen"]}
    _post(client, keys, f"/orders/{order['id']}/pay", payment)
    _post(client, keys, f"/orders/{order['id']}/ship")
    _post(client, keys, f"/orders/{order['id']}/complete")


# --- share links ---------------------------------------------------------------------------


def test_a_share_link_has_a_qr_code_a_poster_and_a_public_redirect(
    client: TestClient, make_tenant: Callable[[str], TenantKeys]
) -> None:
    keys = make_tenant("分享品牌")
    _shop(client, keys)
    sharer = _post(client, keys, "/members", {"name": "王小美"})["id"]
    body = {"member_id": sharer, "target_type": "product", "target_id": "CORE-1"}
    made = client.post(f"{API}/share-links", json=body, headers=keys.owner)
    link = expect(made, 201)
    assert set(link) >= {"code", "url", "qr_png_url", "qr_svg_url", "poster_url"}
    assert link["url"].endswith(f"/s/{link['code']}")
    assert link["target_url"] == f"{SHOP}/p/CORE-1?sc={link['code']}"
    # the same member, target and state: the same link
    assert expect(client.post(f"{API}/share-links", json=body, headers=keys.owner), 200) == link

    path = link["qr_png_url"].split("testserver", 1)[1]
    png = client.get(path, headers=keys.owner)
    assert png.status_code == 200
    assert png.content.startswith(b"\x89PNG")
    svg = client.get(link["qr_svg_url"].split("testserver", 1)[1], headers=keys.owner)
    assert svg.status_code == 200
    assert b"<svg" in svg.content
    poster = client.get(link["poster_url"].split("testserver", 1)[1], headers=keys.owner)
    assert poster.status_code == 200
    assert poster.content.startswith(b"\x89PNG")

    # public: no key; each visitor's click is counted once (the shared client's cookies are
    # its own, so the visitors are clients of their own, the same application behind them)
    with TestClient(client.app) as visitor, TestClient(client.app) as another:
        first = visitor.get(f"/s/{link['code']}", follow_redirects=False)
        assert first.status_code == 302
        assert first.headers["location"] == link["target_url"]
        assert visitor.get(f"/s/{link['code']}", follow_redirects=False).status_code == 302
        another.get(f"/s/{link['code']}", follow_redirects=False)
        assert error_of(visitor.get("/s/zzzzzzzz", follow_redirects=False)) == (
            404,
            "share_link_not_found",
        )
    assert _get(client, keys, f"/share-links/{link['code']}")["unique_visitors"] == 2


def test_a_channel_code_records_the_channel_of_every_member_it_brings(
    client: TestClient, make_tenant: Callable[[str], TenantKeys]
) -> None:
    keys = make_tenant("渠道品牌")
    _shop(client, keys)
    staff = _post(client, keys, "/members", {"name": "导购小李"})["id"]
    code = _post(
        client,
        keys,
        "/share-links",
        {"member_id": staff, "target_type": "community", "state": "poster-mall-03"},
    )["code"]
    new = _post(client, keys, f"/share-links/{code}/members", {"name": "新客"})
    assert new["referrer_id"] == staff
    channel = _get(client, keys, f"/members/{new['id']}/channel")["channel"]
    assert (channel["code"], channel["state"], channel["sharer_id"]) == (
        code,
        "poster-mall-03",
        staff,
    )
    assert {"state": "poster-mall-03", "members": 1} in _get(client, keys, "/channels")


# --- seed scenario: sharing rewards --------------------------------------------------------


def test_a_sharer_is_rewarded_only_after_the_friends_order_closes_and_loses_it_on_a_refund(
    client: TestClient, make_tenant: Callable[[str], TenantKeys], clock: ManualClock
) -> None:
    keys = make_tenant("分享有礼")
    _shop(client, keys, after_sales_days=7)
    sharer = _post(client, keys, "/members", {"name": "普通会员"})["id"]  # no agent tier
    program = {"name": "分享返现", "sharer_reward": "cashback", "cashback_bp": 1_000}
    _post(client, keys, "/sharing-programs", program)
    code = _post(
        client,
        keys,
        "/share-links",
        {"member_id": sharer, "target_type": "product", "target_id": "CORE-1"},
    )["code"]
    friend = _post(client, keys, f"/share-links/{code}/members", {"name": "朋友"})["id"]
    order = _post(
        client,
        keys,
        "/orders",
        {"buyer_id": friend, "lines": [{"sku": "CORE-1", "quantity": 1}], "share_code": code},
    )
    assert order["attributed_sharer_id"] == sharer
    _pay_and_complete(client, keys, order)

    # the after-sales window is still open: nothing yet
    settled = _post(client, keys, "/settlement/run")
    assert settled["orders_closed"] == 0
    assert _get(client, keys, f"/sharing-rewards?member_id={sharer}")["items"] == []
    assert _wallet(client, keys, sharer)["available_fen"] == 0

    clock.advance(days=8)
    settled = _post(client, keys, "/settlement/run")
    assert settled["orders_closed"] == 1
    assert settled["growth"]["rewards"] == 1
    (reward,) = _get(client, keys, f"/sharing-rewards?member_id={sharer}")["items"]
    assert (reward["status"], reward["amount_fen"], reward["base_fen"]) == ("granted", 990, 9_900)
    assert _wallet(client, keys, sharer)["available_fen"] == 990
    # the settlement again: nothing paid twice
    _post(client, keys, "/settlement/run")
    assert _wallet(client, keys, sharer)["available_fen"] == 990

    refund = {"amount_fen": 9_900, "reason": "质量问题"}
    _post(client, keys, f"/orders/{order['id']}/refunds", refund)
    _post(client, keys, "/settlement/run")
    (reward,) = _get(client, keys, f"/sharing-rewards?member_id={sharer}")["items"]
    assert (reward["status"], reward["reversed_fen"]) == ("reversed", 990)
    assert _wallet(client, keys, sharer)["available_fen"] == 0


# --- seed scenario: cloud stock ------------------------------------------------------------


def test_an_agent_is_refused_a_stock_order_that_would_give_90_days_of_cover(
    client: TestClient, make_tenant: Callable[[str], TenantKeys]
) -> None:
    keys = make_tenant("云仓品牌")
    _shop(client, keys)
    tier = _post(client, keys, "/tiers", {"name": "代理", "rank": 1})["id"]
    expect(
        client.patch(
            f"{API}/products/CORE-1",
            json={"tier_prices": [{"tier_id": tier, "wholesale_price_fen": 5_000}]},
            headers=keys.owner,
        ),
        200,
    )
    expect(
        client.patch(
            f"{API}/growth-settings", json={"new_agent_monthly_sales": 30}, headers=keys.owner
        ),
        200,
    )
    agent = _post(client, keys, "/members", {"name": "代理商", "tier_id": tier})["id"]
    # 30 units a month: 60 units are 60 days of cover (the limit), 90 units are 90 days
    ok = {
        "lines": [{"sku": "CORE-1", "quantity": 60}],
        "provider_txn_id": "stock-1",
        "amount_fen": 300_000,
    }
    made = client.post(f"{API}/members/{agent}/stock-orders", json=ok, headers=keys.owner)
    assert expect(made, 201)["amount_fen"] == 300_000
    replay = client.post(f"{API}/members/{agent}/stock-orders", json=ok, headers=keys.owner)
    assert expect(replay, 200)["id"] == made.json()["id"]
    before = _get(client, keys, f"/members/{agent}/stock")
    assert before["products"][0]["units"] == 60
    assert before["products"][0]["cover_days"] == "60.0"

    more = {
        "lines": [{"sku": "CORE-1", "quantity": 30}],
        "provider_txn_id": "stock-2",
        "amount_fen": 150_000,
    }
    refused = client.post(f"{API}/members/{agent}/stock-orders", json=more, headers=keys.owner)
    assert error_of(refused) == (409, "stock_cover_exceeded")
    assert "90.0" in refused.json()["message"]
    assert "60" in refused.json()["message"]
    zh = {**keys.owner, "Accept-Language": "zh-CN"}
    refused = client.post(f"{API}/members/{agent}/stock-orders", json=more, headers=zh)
    assert "90.0" in refused.json()["message"]
    assert "天" in refused.json()["message"]
    assert _get(client, keys, f"/members/{agent}/stock") == before

    # a retail order the agent brought draws from its stock; a buyback takes unsold units
    buyer = _post(client, keys, "/members", {"name": "顾客"})["id"]
    order = _post(
        client,
        keys,
        "/orders",
        {
            "buyer_id": buyer,
            "lines": [{"sku": "CORE-1", "quantity": 2}],
            "attributed_sharer_id": agent,
        },
    )
    _post(
        client, keys, f"/orders/{order['id']}/pay", {"provider_txn_id": "r-1", "amount_fen": 19_800}
    )
    assert _get(client, keys, f"/members/{agent}/stock")["products"][0]["units"] == 58
    back = _post(client, keys, f"/members/{agent}/stock-buybacks", {"sku": "CORE-1", "quantity": 8})
    assert (back["stock_after"], back["amount_fen"]) == (50, 8 * 5_000 * 9_000 // 10_000)


# --- coupons and points --------------------------------------------------------------------


def test_an_order_with_a_coupon_and_points_pays_commissions_on_what_was_paid(
    client: TestClient, make_tenant: Callable[[str], TenantKeys]
) -> None:
    keys = make_tenant("优惠品牌")
    _shop(client, keys, after_sales_days=0)
    parent = _post(client, keys, "/members", {"name": "上级"})["id"]
    buyer = _post(client, keys, "/members", {"name": "买家", "referrer_id": parent})["id"]
    plan = _post(
        client,
        keys,
        "/commission-plans",
        {"mode": "levels", "levels": [{"level": 1, "rate_bp": 1_000}]},
    )["id"]
    _post(client, keys, f"/commission-plans/{plan}/activate")
    template = _post(
        client,
        keys,
        "/coupon-templates",
        {"name": "满50减10", "kind": "amount", "amount_off_fen": 1_000, "min_spend_fen": 5_000},
    )
    issued = _post(
        client, keys, "/coupons/issue", {"template_id": template["id"], "member_ids": [buyer]}
    )
    assert (issued["issued"], issued["skipped"]) == (1, 0)
    again = _post(
        client, keys, "/coupons/issue", {"template_id": template["id"], "member_ids": [buyer]}
    )
    assert (again["issued"], again["skipped"]) == (0, 1)  # per-member limit 1
    (coupon,) = _get(client, keys, f"/members/{buyer}/coupons")
    _post(
        client,
        keys,
        f"/members/{buyer}/points",
        {"rule": "manual", "ref": "welcome", "points": 500},
    )
    assert _get(client, keys, f"/members/{buyer}/points")["balance"] == 500

    order = _post(
        client,
        keys,
        "/orders",
        {
            "buyer_id": buyer,
            "lines": [{"sku": "CORE-1", "quantity": 1}],
            "coupon_ids": [coupon["id"]],
            "points_fen": 400,
        },
    )
    assert order["subtotal_fen"] == 9_900
    assert order["total_fen"] == 9_900 - 1_000 - 400
    assert sorted(d["kind"] for d in order["discounts"]) == ["coupon", "points"]
    assert _get(client, keys, f"/members/{buyer}/points")["balance"] == 100
    assert _get(client, keys, f"/members/{buyer}/coupons?status=used")[0]["order_id"] == order["id"]
    paid = _post(
        client,
        keys,
        f"/orders/{order['id']}/pay",
        {"provider_txn_id": "wx-c", "amount_fen": order["total_fen"]},
    )
    assert [c["amount_fen"] for c in paid["commissions"]] == [850]  # 10 % of 8,500

    # the same coupon again is refused and changes nothing
    again_order = client.post(
        f"{API}/orders",
        json={
            "buyer_id": buyer,
            "lines": [{"sku": "CORE-1", "quantity": 1}],
            "coupon_ids": [coupon["id"]],
        },
        headers=keys.owner,
    )
    assert error_of(again_order) == (409, "coupon_not_available")

    # the redemption list spends the rest, oldest lot first
    item = _post(
        client, keys, "/redemption-items", {"name": "定制帆布袋", "points": 100, "stock": 1}
    )
    _post(client, keys, "/redemptions", {"member_id": buyer, "item_id": item["id"]})
    assert _get(client, keys, f"/members/{buyer}/points")["balance"] == 0
    broke = client.post(
        f"{API}/redemptions", json={"member_id": buyer, "item_id": item["id"]}, headers=keys.owner
    )
    assert error_of(broke)[0] == 409


# --- fraud holds ---------------------------------------------------------------------------


def test_a_self_referral_is_held_and_an_operator_releases_it_once(
    client: TestClient, make_tenant: Callable[[str], TenantKeys]
) -> None:
    keys = make_tenant("风控品牌")
    _shop(client, keys, after_sales_days=0)
    parent = _post(client, keys, "/members", {"name": "上级"})["id"]
    buyer = _post(client, keys, "/members", {"name": "小号", "referrer_id": parent})["id"]
    for member in (parent, buyer):
        _post(client, keys, f"/members/{member}/signals", {"kind": "login", "device_id": "dev-1"})
    plan = _post(
        client,
        keys,
        "/commission-plans",
        {"mode": "levels", "levels": [{"level": 1, "rate_bp": 1_000}]},
    )["id"]
    _post(client, keys, f"/commission-plans/{plan}/activate")
    order = _post(
        client, keys, "/orders", {"buyer_id": buyer, "lines": [{"sku": "CORE-1", "quantity": 1}]}
    )
    _pay_and_complete(client, keys, order)
    settled = _post(client, keys, "/settlement/run")
    assert settled["growth"]["commissions_held"] == 1
    assert settled["released_fen"] == 0
    (hold,) = _get(client, keys, "/holds?status=held")["items"]
    assert hold["reasons"] == ["self_referral"]
    assert hold["amount_fen"] == 990
    assert _wallet(client, keys, parent)["available_fen"] == 0

    no_reason = client.post(
        f"{API}/holds/{hold['id']}/release", json={"reason": " "}, headers=keys.owner
    )
    assert error_of(no_reason)[0] == 422
    released = _post(client, keys, f"/holds/{hold['id']}/release", {"reason": "核实为家人"})
    assert (released["status"], released["released_fen"]) == ("released", 990)
    assert _wallet(client, keys, parent)["available_fen"] == 990
    twice = client.post(
        f"{API}/holds/{hold['id']}/cancel", json={"reason": "再次"}, headers=keys.owner
    )
    assert error_of(twice) == (409, "hold_already_decided")
    assert _wallet(client, keys, parent)["available_fen"] == 990


# --- the command line ----------------------------------------------------------------------


def test_a_click_on_a_share_link_binds_the_visitor_who_registers_later(
    client: TestClient, make_tenant: Callable[[str], TenantKeys], db: Database
) -> None:
    keys = make_tenant("点击绑定")
    _shop(client, keys)
    templates = {"product": SHOP + "/p/{target_id}?v={visitor}"}
    _patch = client.patch(
        f"{API}/growth-settings", json={"share_url_templates": templates}, headers=keys.owner
    )
    expect(_patch, 200)
    sharer = _post(client, keys, "/members", {"name": "分享人"})["id"]
    link = {"member_id": sharer, "target_type": "product", "target_id": "CORE-1"}
    code = _post(client, keys, "/share-links", link)["code"]
    with TestClient(client.app) as browser:
        followed = browser.get(f"/s/{code}", follow_redirects=False)
    visitor = followed.headers["location"].rsplit("v=", 1)[1]
    # a malformed visitor id is refused and changes nothing
    before = contents(db, keys.tenant_id)
    bad = client.post(
        f"{API}/members", json={"name": "朋友", "visitor": "x" * 15}, headers=keys.owner
    )
    assert error_of(bad) == (422, "visitor_invalid")
    assert contents(db, keys.tenant_id) == before
    # the shop registers the friend naming the visitor id its page received: the click binds
    friend = _post(client, keys, "/members", {"name": "朋友", "visitor": visitor})
    assert friend["referrer_id"] == sharer
    assert _get(client, keys, f"/members/{friend['id']}/channel")["channel"]["code"] == code
    # a registration without it is bound to nobody
    assert _post(client, keys, "/members", {"name": "路人"})["referrer_id"] is None


def test_points_expire_from_the_command_line(
    client: TestClient, make_tenant: Callable[[str], TenantKeys], db: Database, clock: ManualClock
) -> None:
    from shequn.context import Ctx
    from shequn.entrypoints.cli import app
    from shequn.growth.points.service import award_points

    keys = make_tenant("积分品牌")
    member = _post(client, keys, "/members", {"name": "会员"})["id"]
    ctx = Ctx(db=db, clock=clock, tenant_id=keys.tenant_id, actor="test")
    clock.advance(days=-400)
    award_points(ctx, member_id=member, rule="manual", ref="old", points=70)
    clock.advance(days=400)
    award_points(ctx, member_id=member, rule="manual", ref="new", points=30)
    url = db.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        app,
        ["points", "expire", "--tenant", keys.tenant_id, "--database-url", url, "--json"],
        env={"SHEQUN_LOCALE": "en"},
    )
    assert result.exit_code == 0, result.output
    assert '"points_expired": 70' in result.output
    points = _get(client, keys, f"/members/{member}/points")
    assert points["balance"] == 30
    # from cron, for every tenant at once; one of the two options is needed
    other = make_tenant("另一品牌")
    theirs = _post(client, other, "/members", {"name": "会员"})["id"]
    clock.advance(days=-400)
    award_points(
        Ctx(db=db, clock=clock, tenant_id=other.tenant_id, actor="test"),
        member_id=theirs,
        rule="manual",
        ref="old",
        points=40,
    )
    clock.advance(days=400)
    every = CliRunner().invoke(
        app, ["points", "expire", "--all-tenants", "--database-url", url, "--json"]
    )
    assert every.exit_code == 0, every.output
    by_tenant = {item["tenant_id"]: item for item in json.loads(every.stdout)}
    assert by_tenant[other.tenant_id]["points_expired"] == 40
    assert by_tenant[keys.tenant_id]["points_expired"] == 0
    assert _get(client, other, f"/members/{theirs}/points")["balance"] == 0
    neither = CliRunner().invoke(app, ["points", "expire", "--database-url", url])
    assert neither.exit_code == 2


# --- bad input changes nothing -------------------------------------------------------------

BAD: list[tuple[str, str, Any, int, str]] = [
    (
        "POST",
        "/share-links",
        {"member_id": "{m}", "target_type": "product"},
        422,
        "share_target_id_required",
    ),
    (
        "POST",
        "/share-links",
        {"member_id": "mem_nobody", "target_type": "community"},
        404,
        "member_not_found",
    ),
    (
        "POST",
        "/share-links",
        {"member_id": "{m}", "target_type": "community", "state": "x" * 31},
        422,
        "share_state_invalid",
    ),
    ("GET", "/share-links/zzzzzzzz", None, 404, "share_link_not_found"),
    ("GET", "/share-links/zzzzzzzz/qr.png", None, 404, "share_link_not_found"),
    ("GET", "/share-links/zzzzzzzz/qr.svg", None, 404, "share_link_not_found"),
    ("GET", "/share-links/zzzzzzzz/poster.png", None, 404, "share_link_not_found"),
    (
        "POST",
        "/share-links/zzzzzzzz/touches",
        {"phone": "+8613900000009"},
        404,
        "share_link_not_found",
    ),
    ("GET", "/members/mem_nobody/share-links", None, 404, "member_not_found"),
    ("GET", "/members/mem_nobody/channel", None, 404, "member_not_found"),
    ("GET", "/sharing-rewards?after=nope", None, 422, "cursor_invalid"),
    ("GET", "/s/zzzzzzzz", None, 404, "share_link_not_found"),
    ("POST", "/share-links/zzzzzzzz/members", {"name": "x"}, 404, "share_link_not_found"),
    ("PATCH", "/growth-settings", {"points_cap_bp": 10_001}, 422, "setting_out_of_range"),
    (
        "PATCH",
        "/growth-settings",
        {"share_url_templates": {"product": "ftp://x/{target_id}"}},
        422,
        "share_url_template_invalid",
    ),
    (
        "POST",
        "/sharing-programs",
        {"name": "p", "sharer_reward": "cashback"},
        422,
        "program_field_required",
    ),
    (
        "POST",
        "/sharing-programs",
        {"name": "p", "sharer_reward": "fixed", "amount_fen": 1, "cashback_bp": 5},
        422,
        "program_field_unexpected",
    ),
    ("POST", "/coupon-templates", {"name": "c", "kind": "amount"}, 422, "coupon_field_invalid"),
    (
        "POST",
        "/coupon-templates",
        {"name": "c", "kind": "percent", "percent_off_bp": 10, "scope": "product"},
        422,
        "coupon_scope_values_mismatch",
    ),
    ("POST", "/coupons/issue", {"template_id": "cpt_nothing"}, 422, "coupon_issue_target_required"),
    (
        "POST",
        "/coupons/issue",
        {"template_id": "cpt_nothing", "tag": "vip"},
        404,
        "coupon_template_not_found",
    ),
    ("POST", "/coupons/claim", {"member_id": "{m}", "code": "NOPE"}, 404, "coupon_code_not_found"),
    ("GET", "/members/mem_nobody/coupons", None, 404, "member_not_found"),
    (
        "POST",
        "/orders",
        {
            "buyer_id": "{m}",
            "lines": [{"sku": "CORE-1", "quantity": 1}],
            "coupon_ids": ["cpn_none"],
        },
        404,
        "coupon_not_found",
    ),
    (
        "POST",
        "/orders",
        {"buyer_id": "{m}", "lines": [{"sku": "CORE-1", "quantity": 1}], "points_fen": 100},
        409,
        "insufficient_points",
    ),
    (
        "POST",
        "/orders",
        {"buyer_id": "{m}", "lines": [{"sku": "CORE-1", "quantity": 1}], "points_fen": 9_000},
        409,
        "points_over_cap",
    ),
    (
        "POST",
        "/orders",
        {"buyer_id": "{m}", "lines": [{"sku": "CORE-1", "quantity": 1}], "share_code": "zzzzzzzz"},
        404,
        "share_link_not_found",
    ),
    ("GET", "/members/mem_nobody/points", None, 404, "member_not_found"),
    ("POST", "/members/{m}/points", {"rule": "checkin", "ref": "d1"}, 404, "points_rule_not_found"),
    ("POST", "/redemption-items", {"name": " ", "points": 10}, 422, "redemption_item_name_invalid"),
    (
        "POST",
        "/redemptions",
        {"member_id": "{m}", "item_id": "rit_nothing"},
        404,
        "redemption_item_not_found",
    ),
    (
        "POST",
        "/members/{m}/signals",
        {"kind": "login", "device_id": "x" * 201},
        422,
        "signal_value_invalid",
    ),
    ("GET", "/holds?status=open", None, 422, "validation_error"),
    ("POST", "/holds/hld_nothing/release", {"reason": "ok"}, 404, "hold_not_found"),
    ("POST", "/holds/hld_nothing/cancel", {"reason": "ok"}, 404, "hold_not_found"),
    ("GET", "/members/mem_nobody/stock", None, 404, "member_not_found"),
    (
        "POST",
        "/members/{m}/stock-orders",
        {"lines": [{"sku": "CORE-1", "quantity": 1}], "provider_txn_id": "t", "amount_fen": 1},
        409,
        "stock_requires_tier",
    ),
    (
        "POST",
        "/members/{m}/stock-buybacks",
        {"sku": "CORE-1", "quantity": 1},
        409,
        "stock_buyback_exceeds",
    ),
]


# Refused requests change nothing, so one shop per database serves every bad request (each
# still proves, row by row, that nothing changed).
_SHOPS: dict[int, tuple[TenantKeys, str]] = {}


@pytest.fixture
def quiet_shop(
    client: TestClient, db: Database, make_tenant: Callable[[str], TenantKeys]
) -> tuple[TenantKeys, str]:
    if id(db) not in _SHOPS:
        keys = make_tenant("坏输入品牌")
        _shop(client, keys)
        member = _post(client, keys, "/members", {"name": "会员"})["id"]
        _SHOPS[id(db)] = (keys, member)
    return _SHOPS[id(db)]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), BAD)
def test_bad_input_is_refused_with_a_code_and_changes_nothing(
    client: TestClient,
    db: Database,
    quiet_shop: tuple[TenantKeys, str],
    method: str,
    path: str,
    body: Any,
    status: int,
    code: str,
) -> None:
    keys, member = quiet_shop

    def filled(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("{m}", member)
        if isinstance(value, dict):
            return {k: filled(v) for k, v in value.items()}
        if isinstance(value, list):
            return [filled(v) for v in value]
        return value

    before = contents(db, keys.tenant_id)
    url = path if path.startswith("/s/") else f"{API}{filled(path)}"  # the public redirect
    response = client.request(method, url, json=filled(body), headers=keys.owner)
    assert error_of(response) == (status, code)
    assert contents(db, keys.tenant_id) == before


def test_roles_growth_settings_are_the_owners_and_reading_needs_no_write(
    client: TestClient, make_tenant: Callable[[str], TenantKeys]
) -> None:
    keys = make_tenant("权限品牌")
    member = _post(client, keys, "/members", {"name": "会员"})["id"]
    body = {"member_id": member, "target_type": "community"}
    refused = client.post(f"{API}/share-links", json=body, headers=keys.readonly)
    assert error_of(refused) == (403, "permission_denied")
    patch = {"points_cap_bp": 1_000}
    refused = client.patch(f"{API}/growth-settings", json=patch, headers=keys.operator)
    assert error_of(refused) == (403, "permission_denied")
    assert expect(client.get(f"{API}/holds", headers=keys.readonly), 200)["items"] == []
    assert expect(client.post(f"{API}/share-links", json=body, headers=keys.operator), 201)


def test_a_minimum_first_stock_order_is_a_compliance_finding(
    client: TestClient, make_tenant: Callable[[str], TenantKeys]
) -> None:
    keys = make_tenant("入门费品牌")
    patch = {"min_first_stock_order_fen": 100_000}
    expect(client.patch(f"{API}/growth-settings", json=patch, headers=keys.owner), 200)
    report = _get(client, keys, "/compliance/report")
    (finding,) = [x for x in report["findings"] if x["rule"] == "entry_fee"]
    assert finding["params"] == {"amount_fen": 100_000}
    assert "¥1,000.00" in finding["message"] or "¥1000.00" in finding["message"]
