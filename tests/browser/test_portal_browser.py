"""The H5 portal on a phone-sized screen: an agent logs in, sees a friend's order in the team,
and the wallet shows the commission pending, then available once settlement has run; a member
logs in with a one-time code."""

from __future__ import annotations

import re
from typing import Any

import httpx2 as httpx
import pytest

from shequn.context import Ctx
from shequn.insights.console_gatherings import get_event
from tests.browser.conftest import Site, shot
from tests.browser.world import PORTAL_PASSWORD


def figure(page: Any, name: str) -> str:
    return str(page.locator(f"[data-figure-name={name}]").first.inner_text())


def test_an_agent_follows_a_friends_order_from_team_to_wallet(
    phone: Any, site: Site, request: pytest.FixtureRequest
) -> None:
    brand = site.brand
    agent = "李娜"
    phone.goto(f"{site.url}/portal/{brand.tenant_id}/login")
    phone.get_by_label("手机号").fill(brand.phones[agent])
    phone.get_by_label("密码").fill(PORTAL_PASSWORD)
    phone.get_by_role("button", name="登录").click()
    phone.wait_for_url(f"{site.url}/portal/home")
    assert phone.locator("h1").inner_text() == f"你好，{agent}"
    # The agent's share link, with its QR code, to send to friends.
    phone.locator("nav.tabs").get_by_role("link", name="分享").click()
    assert phone.locator("#share-url").inner_text().startswith(f"{site.url}/s/")
    # the QR code is drawn when the page asks for it: wait until the image has loaded
    phone.wait_for_function(
        "() => { const img = document.querySelector('.pshare img');"
        " return img !== null && img.complete; }"
    )
    assert phone.locator(".pshare img").evaluate("img => img.naturalWidth") > 0
    phone.locator("nav.tabs").get_by_role("link", name="首页").click()
    before_pending = figure(phone, "pending")
    before_available = figure(phone, "available")
    # A friend the agent shared with registers and buys (the shop tells the API).
    api = httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {brand.api_key}"})
    request.addfinalizer(api.close)
    friend = api.post(
        "/api/v1/members",
        json={"name": "赵敏", "phone": "13912345678", "referrer_id": brand.members[agent]},
    ).json()
    order = api.post(
        "/api/v1/orders",
        json={"buyer_id": friend["id"], "lines": [{"sku": "CORE-1", "quantity": 1}]},
    ).json()
    paid = api.post(
        f"/api/v1/orders/{order['id']}/pay",
        json={"provider_txn_id": f"wx-{order['id']}", "amount_fen": order["total_fen"]},
    )
    assert paid.status_code == 200, paid.text
    phone.locator("nav.tabs").get_by_role("link", name="团队").click()
    team_orders = phone.locator("#team-orders li")
    assert team_orders.first.inner_text().startswith("赵*")
    assert "¥99.00" in team_orders.first.inner_text()
    phone.locator("nav.tabs").get_by_role("link", name="钱包").click()
    assert figure(phone, "pending") != before_pending
    pending_now = figure(phone, "pending")
    assert pending_now == _plus(before_pending, 990)
    # The order is delivered and settled: the commission becomes available.
    api.post(f"/api/v1/orders/{order['id']}/ship")
    api.post(f"/api/v1/orders/{order['id']}/complete")
    assert api.post("/api/v1/settlement/run").status_code == 200
    phone.reload()
    assert figure(phone, "available") == _plus(before_available, 990)
    assert figure(phone, "pending") == before_pending
    phone.locator("nav.tabs").get_by_role("link", name="佣金").click()
    assert (
        "第 1 级佣金：赵* 购买 修护面霜 ×1，实付 ¥99.00 的 10.0%"
        in phone.locator(".plines").inner_text()
    )
    phone.locator("nav.tabs").get_by_role("link", name="首页").click()
    shot(phone, "portal-home-zh")
    phone.get_by_role("button", name="English").click()
    assert phone.locator("h1").inner_text() == f"Hello, {agent}"
    shot(phone, "portal-home-en")
    phone.get_by_role("button", name="中文").click()


def _plus(shown: str, fen: int) -> str:
    digits = int(re.sub(r"[^\d]", "", shown))
    total = digits + fen
    return f"¥{total // 100:,}.{total % 100:02d}"


def test_a_member_logs_in_with_a_one_time_code(phone: Any, site: Site) -> None:
    brand = site.brand
    phone.goto(f"{site.url}/portal/{brand.tenant_id}/login?with=code")
    phone.get_by_label("手机号").fill(brand.phones["张伟"])
    phone.get_by_role("button", name="发送验证码").click()
    assert phone.locator(".notice").count() == 1
    sent = [c for c in site.codes if c.member_id == brand.members["张伟"]]
    assert len(sent) == 1
    phone.get_by_label("验证码").fill("000000" if sent[0].code != "000000" else "111111")
    phone.get_by_role("button", name="登录").click()
    assert phone.locator(".form-error").inner_text() == "验证码不对或已过期，请重新获取。"
    phone.get_by_label("验证码").fill(sent[0].code)
    phone.get_by_role("button", name="登录").click()
    phone.wait_for_url(f"{site.url}/portal/home")
    assert phone.locator("h1").inner_text() == "你好，张伟"


def test_a_member_checks_in_day_after_day_and_takes_a_seat_at_an_event(
    phone: Any, site: Site
) -> None:
    brand = site.brand
    phone.goto(f"{site.url}/portal/{brand.tenant_id}/login")
    phone.get_by_label("手机号").fill(brand.phones["李娜"])
    phone.get_by_label("密码").fill(PORTAL_PASSWORD)
    phone.get_by_role("button", name="登录").click()
    phone.wait_for_url(f"{site.url}/portal/home")
    phone.locator("nav.tabs").get_by_role("link", name="我的").click()
    program = phone.locator(f"#prog-{brand.program_id}")
    assert "21 天早起打卡" in program.inner_text()
    assert program.locator("[data-figure-name=streak]").inner_text() == "0"
    program.get_by_role("button", name="打卡").click()
    assert phone.locator(".flash").inner_text() == "打卡成功：已连续 1 天。"
    site.clock.advance(days=1)
    phone.locator(f"#prog-{brand.program_id}").get_by_role("button", name="打卡").click()
    assert phone.locator(".flash").inner_text() == "打卡成功：已连续 2 天。"
    program = phone.locator(f"#prog-{brand.program_id}")
    assert program.locator("[data-figure-name=streak]").inner_text() == "2"
    assert "宝妈成长营" in phone.locator("section[aria-labelledby=h-groups]").inner_text()
    assert phone.locator("ol.ppath li.here").count() == 1
    # The event of the day: a seat, then attendance with the code shown there.
    phone.locator("nav.tabs").get_by_role("link", name="活动").click()
    first = phone.locator("#upcoming li", has_text="护肤小课堂").first
    first.get_by_role("button", name="报名").click()
    assert phone.locator(".flash").inner_text() == "报名成功。"
    assert "已报名" in phone.locator("#upcoming li", has_text="护肤小课堂").first.inner_text()
    ctx = Ctx(db=site.db, clock=site.clock, tenant_id=brand.tenant_id, actor="test")
    code = get_event(ctx, event_id=brand.event_id)["attendance_code"]
    phone.get_by_label("签到码").fill("WRONG1")
    phone.get_by_role("button", name="签到").click()
    assert phone.locator("#e-code").count() == 1
    assert phone.get_by_label("签到码").input_value() == "WRONG1"
    phone.get_by_label("签到码").fill(code)
    phone.get_by_role("button", name="签到").click()
    assert phone.locator(".flash").inner_text() == "签到成功，欢迎！"
    # Badges, certificates, points and stock, one tap away.
    phone.locator("nav.tabs").get_by_role("link", name="我的").click()
    phone.get_by_role("link", name="徽章证书").click()
    assert "早起之星" in phone.locator("ul.pbadges").inner_text()
    assert "优秀团长" in phone.locator(".plines").inner_text()
    phone.go_back()
    phone.get_by_role("link", name="积分").click()
    assert phone.locator("h1").inner_text() == "我的积分"
    assert "体验装小样" in phone.locator(".plines").first.inner_text()
    phone.go_back()
    phone.get_by_role("link", name="我的库存").click()
    assert phone.locator("h1").inner_text() == "我的库存"
