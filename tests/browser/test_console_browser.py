"""The operator's console in Chromium: logging in, the lockout, logging out, a whole day of the
business (a product, an order paid through the API, its refund, a withdrawal approved, the
settlement), a plan that compliance blocks, and the language switch."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx2 as httpx
import pytest

from shequn.console.service import create_console_user
from shequn.context import Ctx
from tests.browser.conftest import Site, open_page, playwright_api, shot
from tests.browser.world import PASSWORD


def login(
    page: Any, site: Site, login_name: str, password: str = PASSWORD, *, go: bool = True
) -> None:
    if go:
        page.goto(f"{site.url}/console/login")
    page.get_by_label(re.compile("Login|登录名")).fill(login_name)
    page.get_by_label(re.compile("Password|密码")).fill(password)
    page.get_by_role("button", name=re.compile("^(Log in|登录)$")).click()


def flash(page: Any) -> str:
    return str(page.locator(".flash").inner_text())


def test_login_shows_the_dashboard_and_logout_ends_the_session(desk: Any, site: Site) -> None:
    desk.goto(f"{site.url}/console/members")
    assert desk.url.startswith(f"{site.url}/console/login?next=")
    login(desk, site, site.brand.logins["owner"], go=False)
    desk.wait_for_url(f"{site.url}/console/members")
    assert desk.locator("h1").inner_text() == "Members"
    desk.get_by_role("button", name="Log out").click()
    desk.wait_for_url(f"{site.url}/console/login")
    desk.goto(f"{site.url}/console/")
    assert "/console/login" in desk.url


def test_repeated_failures_lock_the_login_with_a_clear_message(desk: Any, site: Site) -> None:
    ctx = Ctx(db=site.db, clock=site.clock, tenant_id=site.brand.tenant_id, actor="test")
    create_console_user(ctx, login="locked.out@brand.test", password=PASSWORD, role="operator")
    for attempt in range(4):
        login(desk, site, "locked.out@brand.test", "wrong-password-1")
        assert desk.locator(".form-error").inner_text() == (
            f"Wrong login or password. {4 - attempt} more failures lock it for 15 minutes."
        )
    login(desk, site, "locked.out@brand.test", "wrong-password-1")
    locked = (
        "Locked after 5 failed attempts: try again in 15 minutes, or ask an owner to unlock it."
    )
    assert desk.locator(".form-error").inner_text() == locked
    # The right password does not open a locked login either, and what was typed stays.
    login(desk, site, "locked.out@brand.test", PASSWORD)
    assert desk.locator(".form-error").inner_text() == locked
    assert desk.get_by_label("Login").input_value() == "locked.out@brand.test"
    site.clock.advance(minutes=16)
    login(desk, site, "locked.out@brand.test", PASSWORD)
    desk.wait_for_url(f"{site.url}/console/")


def test_an_operator_runs_the_business_from_the_browser(
    desk: Any, site: Site, request: pytest.FixtureRequest
) -> None:
    brand = site.brand
    login(desk, site, brand.logins["owner"])
    desk.wait_for_url(f"{site.url}/console/")
    # A product: a wrong price is refused beside its field, and what was typed is kept.
    desk.goto(f"{site.url}/console/catalog/new")
    desk.get_by_label("SKU").fill("SERUM-9")
    desk.get_by_label("Name").fill("精华液")
    desk.locator("#f-price").fill("12.345")
    desk.get_by_role("button", name="Save").click()
    assert desk.locator("#e-price").inner_text().startswith("Enter an amount in yuan")
    assert desk.get_by_label("Name").input_value() == "精华液"
    desk.locator("#f-price").fill("128.00")
    desk.get_by_role("button", name="Save").click()
    assert flash(desk) == "Product SERUM-9 created."
    assert desk.locator("td", has_text="¥128.00").count() == 1
    # An order the shop sends and pays through the API.
    api = httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {brand.api_key}"})
    request.addfinalizer(api.close)
    order = api.post(
        "/api/v1/orders",
        json={
            "buyer_id": brand.members["张伟"],
            "lines": [{"sku": "SERUM-9", "quantity": 1}],
            "idempotency_key": "SHOP-1001",
        },
    ).json()
    paid = api.post(
        f"/api/v1/orders/{order['id']}/pay",
        json={"provider_txn_id": "wx-shop-1001", "amount_fen": 12_800},
    )
    assert paid.status_code == 200, paid.text
    desk.goto(f"{site.url}/console/orders?key=SHOP-1001")
    desk.get_by_role("link", name="SHOP-1001").click()
    assert "paid" in desk.locator("h1").inner_text()
    assert desk.locator("td", has_text="level 1 commission").count() == 1
    # Refunded in full, after a confirmation.
    desk.get_by_label("Reason").fill("不想要了")
    desk.get_by_role("button", name="Refund", exact=True).click()
    assert flash(desk) == "Refunded ¥128.00."
    assert "refunded" in desk.locator("h1").inner_text()
    # The withdrawal that waits for approval.
    desk.goto(f"{site.url}/console/money")
    row = desk.locator(f"#wd-{brand.withdrawal_id}")
    row.get_by_role("button", name="Approve").click()
    assert flash(desk) == "Withdrawal approved."
    assert desk.locator(f"#wd-{brand.withdrawal_id}").locator(".badge").inner_text() == "approved"
    # Settlement, with its progress shown while it runs.
    desk.goto(f"{site.url}/console/settlement")
    desk.get_by_role("button", name="Run settlement").click()
    assert flash(desk).startswith("Settled:")
    assert desk.locator("table.list tbody tr").count() >= 1
    # And the dashboard shows the day.
    desk.goto(f"{site.url}/console/?fresh=1")
    desk.wait_for_selector(".chart .main-svg")
    assert desk.locator("[data-figure-name=paid_orders]").inner_text() == "3"
    shot(desk, "dashboard-en")


def test_a_plan_that_compliance_blocks_cannot_be_activated(desk: Any, site: Site) -> None:
    login(desk, site, site.brand.logins["owner"])
    desk.wait_for_url(f"{site.url}/console/")
    desk.goto(f"{site.url}/console/plans/new")
    desk.get_by_label("Depth").select_option("3")
    desk.get_by_label("Level 3 rate (%)").fill("2")
    desk.get_by_role("button", name="Check").click()
    blocking = desk.locator(".finding.block[data-rule=commission_depth]")
    assert blocking.count() == 1
    citation = blocking.locator("cite").inner_text()
    assert "224" in citation
    assert desk.get_by_label("Level 3 rate (%)").input_value() == "2"
    shot(desk, "plan-editor-en")
    desk.get_by_role("button", name="Save as a new version").click()
    assert flash(desk).startswith("Saved as version")
    activate = desk.get_by_role("button", name="Activate")
    assert activate.get_attribute("aria-disabled") == "true"
    activate.click(force=True)  # sent anyway: the server refuses it too
    assert desk.locator(".form-error").first.inner_text() == (
        "The plan cannot be activated while a compliance finding blocks it."
    )
    assert "draft" in desk.locator("h1").inner_text()
    assert desk.locator(".finding.block cite").first.inner_text() == citation
    # The simulator replays the paid orders under the draft, each line with its reason.
    today = site.clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date()
    desk.get_by_label("From").fill((today - timedelta(days=30)).isoformat())
    desk.get_by_label("To").fill(today.isoformat())
    desk.get_by_role("button", name="Simulate").click()
    explained = desk.locator("#sim-lines td.explain").all_inner_texts()
    assert explained, "no simulated lines"
    assert any(text.startswith("Level 1: 10.0% of ¥") for text in explained), explained


def test_the_language_switch_speaks_chinese_from_then_on(
    desk: Any, browser: Any, site: Site
) -> None:
    login(desk, site, site.brand.logins["operator"])
    desk.wait_for_url(f"{site.url}/console/")
    assert desk.locator("h1").inner_text() == "Dashboard"
    desk.get_by_role("button", name="中文").click()
    assert desk.locator("h1").inner_text() == "经营概览"
    assert desk.get_by_role("link", name="会员").count() == 1
    desk.goto(f"{site.url}/console/members/{site.brand.members['李娜']}")
    assert desk.locator("#h-team").inner_text() == "团队"
    # The setting belongs to the user: another English browser logging in gets Chinese too.
    other = browser.new_context(locale="en-US")
    page = other.new_page()
    login(page, site, site.brand.logins["operator"])
    page.wait_for_url(f"{site.url}/console/")
    assert page.locator("h1").inner_text() == "经营概览"
    other.close()
    desk.get_by_role("button", name="English").click()
    assert desk.locator("#h-team").inner_text() == "Team"


def test_screenshots_of_the_member_360_and_the_chinese_pages(desk: Any, site: Site) -> None:
    login(desk, site, site.brand.logins["owner"])
    desk.wait_for_url(f"{site.url}/console/")
    desk.goto(f"{site.url}/console/members/{site.brand.members['李娜']}")
    assert desk.locator("ul.tree").count() == 1
    shot(desk, "member-360-en")
    desk.get_by_role("button", name="中文").click()
    assert desk.locator("#h-team").inner_text() == "团队"
    shot(desk, "member-360-zh")
    desk.goto(f"{site.url}/console/?fresh=1")
    desk.wait_for_selector(".chart .main-svg")
    shot(desk, "dashboard-zh")
    desk.goto(f"{site.url}/console/plans/new")
    desk.get_by_label("层级深度").select_option("3")
    desk.get_by_label("第 3 级比例（%）").fill("2")
    desk.get_by_role("button", name="检查").click()
    assert desk.locator(".finding.block").count() == 1
    shot(desk, "plan-editor-zh")
    desk.get_by_role("button", name="English").click()


def test_a_staff_account_operator_works_through_their_own_members_and_tasks(
    desk: Any, site: Site
) -> None:
    brand = site.brand
    login(desk, site, brand.logins["staff"])
    desk.wait_for_url(f"{site.url}/console/")
    assert desk.get_by_role("link", name="Money").count() == 0
    desk.goto(f"{site.url}/console/members")
    names = desk.locator("table.list tbody td:first-child").all_inner_texts()
    assert names == ["张伟"]
    desk.goto(f"{site.url}/console/tasks")
    task = desk.locator(f"#task-{brand.message_id}")
    assert re.search(r"\b\d{6}\b", task.inner_text()), task.inner_text()
    task.get_by_role("button", name="Sent").click()
    assert flash(desk) == "Marked as sent."
    assert desk.locator(f"#task-{brand.message_id}").count() == 0


playwright_error = playwright_api.Error


def test_a_request_elsewhere_and_a_console_error_are_caught(browser: Any, site: Site) -> None:
    """What every page fixture asserts on: a request to another address never leaves the
    browser, and an error in the page is recorded."""
    context, page, watch = open_page(browser, site)
    try:
        page.goto(f"{site.url}/console/login")
        # The page's own policy refuses a script's request elsewhere (a console error) ...
        page.evaluate("fetch('https://cdn.example.com/x.js').catch(() => null)")
        page.evaluate("console.error('boom')")
        # ... and what gets past it, a navigation, never leaves the browser.
        with pytest.raises(playwright_error):
            page.goto("https://cdn.example.com/page")
    finally:
        context.close()
    assert watch.foreign == ["https://cdn.example.com/page"]
    assert "boom" in watch.errors
    assert any("cdn.example.com/x.js" in e for e in watch.errors), watch.errors
