"""Stock orders and programs in Chromium: an agent composes a stock order on a phone (the
quote, a refusal over the cover limit beside its field), the operator confirms the bank
transfer in the console, and the agent's stock shows the units; an operator runs a course
(a lesson added, a member's lesson recorded) and a competition (teams, a round's scores, an
elimination)."""

from __future__ import annotations

import re
from typing import Any

from shequn.console.service import set_portal_password
from shequn.context import Ctx
from shequn.insights.console_programs import competition_view
from tests.browser.conftest import Site
from tests.browser.test_console_browser import flash, login
from tests.browser.world import PORTAL_PASSWORD


def figure(page: Any, name: str) -> str:
    return str(page.locator(f"[data-figure-name={name}]").first.inner_text())


def test_an_agent_orders_stock_and_the_operator_confirms_the_transfer(
    phone: Any, desk: Any, site: Site
) -> None:
    brand = site.brand
    agent = brand.members["王芳"]
    ctx = Ctx(db=site.db, clock=site.clock, tenant_id=brand.tenant_id, actor="test")
    set_portal_password(ctx, member_id=agent, password=PORTAL_PASSWORD)
    phone.goto(f"{site.url}/portal/{brand.tenant_id}/login")
    phone.get_by_label("手机号").fill(brand.phones["王芳"])
    phone.get_by_label("密码").fill(PORTAL_PASSWORD)
    phone.get_by_role("button", name="登录").click()
    phone.wait_for_url(f"{site.url}/portal/home")
    phone.locator("nav.tabs").get_by_role("link", name="我的").click()
    phone.get_by_role("link", name="我的库存").click()
    held = phone.locator(".plines li").first.inner_text()
    assert "4 件" in held
    phone.get_by_role("link", name="进货").click()
    quantity = phone.get_by_label("代理装")
    # Too many: refused beside the quantity with the figure, and nothing is ordered.
    quantity.fill("60")
    phone.get_by_role("button", name="查看报价").click()
    refused = phone.locator("#e-qty_STOCK-1").inner_text()
    assert "64 件" in refused
    assert "64.0 天" in refused
    assert "上限 60 天" in refused
    assert phone.get_by_label("代理装").input_value() == "60"
    phone.get_by_label("代理装").fill("3")
    phone.get_by_role("button", name="查看报价").click()
    assert figure(phone, "total") == "¥150.00"
    assert "进货后 7 件，可售 7.0 天" in phone.locator("#quote").inner_text()
    phone.get_by_role("button", name="提交进货单并支付 ¥150.00").click()
    phone.wait_for_url(f"{site.url}/portal/stock/requests/*")
    assert figure(phone, "to_pay") == "¥150.00"
    assert figure(phone, "status") == "待付款"
    reference = figure(phone, "reference")
    assert reference in phone.locator("#how-to-pay").inner_text()
    request_id = phone.url.rsplit("/", 1)[1]
    # The operator sees the bank transfer arrive and confirms it.
    login(desk, site, brand.logins["operator"])
    desk.wait_for_url(f"{site.url}/console/")
    desk.get_by_role("link", name="Stock orders to pay").click()
    row = desk.locator(f"#sr-{request_id}")
    assert "¥150.00" in row.inner_text()
    assert reference in row.inner_text()
    # An amount other than the order's is refused beside it.
    row.get_by_label("Bank transfer reference").fill("ICBC 0301-88")
    row.get_by_label("Amount received (¥)").fill("15.00")
    row.get_by_role("button", name="Confirm payment").click()
    row = desk.locator(f"#sr-{request_id}")
    assert "¥150.00" in desk.locator(f"#e-amount_{request_id}").inner_text()
    assert row.get_by_label("Bank transfer reference").input_value() == "ICBC 0301-88"
    row.get_by_label("Amount received (¥)").fill("150.00")
    row.get_by_role("button", name="Confirm payment").click()
    assert flash(desk) == "Payment of ¥150.00 confirmed: the units are in the agent's stock."
    assert desk.locator(f"#sr-{request_id}").count() == 0
    # The agent's stock now holds the units.
    phone.reload()
    assert figure(phone, "status") == "已付款"
    phone.get_by_role("link", name="我的库存").click()
    assert "7 件" in phone.locator(".plines li").first.inner_text()
    assert "¥150.00" in phone.locator("#stock-orders").inner_text()


def test_an_operator_runs_a_course_and_a_competition(desk: Any, site: Site) -> None:
    brand = site.brand
    ctx = Ctx(db=site.db, clock=site.clock, tenant_id=brand.tenant_id, actor="test")
    login(desk, site, brand.logins["operator"])
    desk.wait_for_url(f"{site.url}/console/")
    desk.goto(f"{site.url}/console/programs")
    desk.get_by_role("link", name="护肤入门课").click()
    # A lesson added at the end of the course.
    desk.get_by_role("button", name="Add the lesson").click()
    assert desk.locator("#e-lesson_title").inner_text() == "Required."
    desk.get_by_label("New lesson").fill("防晒")
    desk.get_by_role("button", name="Add the lesson").click()
    assert flash(desk) == "Lesson “防晒” added at the end of the course."
    assert desk.locator("#lessons li").all_inner_texts() == ["认识肤质", "清洁", "防晒"]
    # A member's lesson recorded as done.
    desk.get_by_label(re.compile(r"^Member\b(?!s)")).fill(brand.phones["张伟"])
    desk.get_by_label(re.compile(r"^Lesson\b")).select_option("2")
    desk.get_by_role("button", name="Record the lesson as done").click()
    assert flash(desk) == "Lesson 2 recorded: 1 lessons done."
    row = desk.locator(f"#cp-{brand.members['张伟']}")
    assert row.locator("[data-figure-name=done]").inner_text() == "1 / 3"
    # A competition: a team more, a round scored and the lowest team out.
    desk.goto(f"{site.url}/console/programs/{brand.contest_id}")
    desk.get_by_label("Team name").fill("紫队")
    desk.get_by_label("Members").fill("13700009999")
    desk.get_by_role("button", name="Create the team").click()
    assert "13700009999" in desk.locator("#e-team_members").inner_text()
    assert desk.get_by_label("Team name").input_value() == "紫队"
    desk.get_by_label("Members").fill(brand.phones["张伟"])
    desk.get_by_role("button", name="Create the team").click()
    assert flash(desk) == "Team created."
    round_no = competition_view(ctx, program_id=brand.contest_id)["next_round"]
    assert desk.locator("#h-round").inner_text() == f"Round {round_no} is open"
    desk.get_by_label("Score of 红队").fill("50")
    desk.get_by_label("Score of 蓝队").fill("20")
    desk.get_by_label("Score of 紫队").fill("35")
    desk.get_by_label("Teams eliminated").fill("1")
    desk.get_by_role("button", name="Save the scores and close the round").click()
    assert flash(desk) == f"Round {round_no} closed. Eliminated: 蓝队."
    standings = desk.locator("#standings tbody tr")
    assert [standings.nth(i).locator("td").nth(1).inner_text() for i in range(3)] == [
        "红队",
        "紫队",
        "蓝队",
    ]
    assert f"out in round {round_no}" in standings.nth(2).inner_text()
    assert desk.locator("#h-round").inner_text() == f"Round {round_no + 1} is open"
