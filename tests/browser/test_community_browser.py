"""Community operations in Chromium: an operator creates a community, members join and are
placed in groups (one by phone, many by tag), the group's page shows them, a badge is awarded
and the chronicle written."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx2 as httpx
import pytest

from tests.browser.conftest import Site, shot
from tests.browser.test_console_browser import flash, login


def test_an_operator_creates_a_community_and_members_are_placed(
    desk: Any, site: Site, request: pytest.FixtureRequest
) -> None:
    brand = site.brand
    api = httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {brand.api_key}"})
    request.addfinalizer(api.close)
    newcomers = []
    for number, name in enumerate(("陈静", "刘洋", "杨雪")):
        created = api.post(
            "/api/v1/members",
            json={"name": name, "phone": f"1361000000{number}", "tags": ["跑步营"]},
        )
        assert created.status_code == 201, created.text
        newcomers.append(created.json()["id"])
    login(desk, site, brand.logins["operator"])
    desk.wait_for_url(f"{site.url}/console/")
    desk.get_by_role("link", name="Communities").click()
    desk.get_by_role("link", name="New community").first.click()
    # A name left out is refused beside its field, and the rest of what was typed stays.
    desk.get_by_label("Mission").fill("每周一起跑 20 公里")
    desk.get_by_role("button", name="Save").click()
    assert desk.locator("#e-name").inner_text() == "Required."
    assert desk.get_by_label("Mission").input_value() == "每周一起跑 20 公里"
    desk.get_by_label("Name").fill("晨跑俱乐部")
    desk.get_by_label("For whom").fill("城市白领")
    desk.get_by_label("Members call themselves").fill("跑友")
    desk.get_by_label("Group size").select_option("5")
    desk.get_by_role("button", name="Save").click()
    assert flash(desk) == "Community 晨跑俱乐部 created, with its first group."
    assert desk.locator("h1").inner_text() == "晨跑俱乐部"
    community_url = desk.url
    # One member by phone, then everyone with the tag in bulk (with progress while it runs).
    desk.get_by_label("Member (phone or id)").fill(brand.phones["李娜"])
    desk.get_by_role("button", name="Join and place").click()
    assert flash(desk) == "Joined, in 晨跑俱乐部1群."
    desk.get_by_label("Or every member with the tag").fill("跑步营")
    desk.get_by_role("button", name="Join and place").click()
    assert flash(desk) == "Placed 3 members (0 already in, 0 new groups)."
    assert desk.locator("[data-figure-name=community_members]").inner_text() == "4"
    rows = desk.locator("#groups tbody tr")
    assert rows.count() == 1
    assert "4 / 5" in rows.first.inner_text()
    # The group's page lists its members by name.
    rows.first.get_by_role("link").click()
    names = desk.locator("#group-members tbody td:first-child").all_inner_texts()
    assert sorted(names) == sorted(["李娜", "陈静", "刘洋", "杨雪"])
    assert desk.locator("[data-figure-name=group_size]").inner_text() == "4 / 5"
    shot(desk, "group-en")
    desk.get_by_role("button", name="中文").click()
    assert desk.locator("#h-group-members").inner_text() == "成员"
    shot(desk, "group-zh")
    desk.get_by_role("button", name="English").click()
    # A fifth fills the group; the sixth opens the next one.
    for number in range(2):
        created = api.post(
            "/api/v1/members", json={"name": f"新跑友{number}", "phone": f"1362000000{number}"}
        ).json()
        desk.goto(community_url)
        desk.get_by_label("Member (phone or id)").fill(created["id"])
        desk.get_by_role("button", name="Join and place").click()
    assert desk.locator("#groups tbody tr").count() == 2
    # The chronicle keeps what happened.
    desk.get_by_text("Add to the chronicle").first.click()
    desk.get_by_label("Title").fill("第一次线下约跑")
    desk.get_by_role("button", name="Add to the chronicle").click()
    assert flash(desk) == "Written in the chronicle."
    assert "第一次线下约跑" in desk.locator("ol.timeline").inner_text()
    # An event of the community: one seat, a waitlist, and attendance.
    desk.get_by_role("link", name="Events", exact=True).click()
    desk.get_by_label("Title").fill("周末约跑")
    desk.get_by_label("Kind").select_option("meetup")
    desk.get_by_label("Communities").select_option(label="晨跑俱乐部")
    # Its first occurrence starts in a few minutes, so attendance is open now.
    soon = site.clock.now().astimezone(ZoneInfo("Asia/Shanghai")) + timedelta(minutes=10)
    desk.get_by_label("First day").fill(soon.date().isoformat())
    desk.locator("#f-time").fill(soon.strftime("%H:%M"))
    desk.get_by_label("Seats").fill("1")
    desk.get_by_role("button", name="Save").click()
    assert flash(desk) == "Event 周末约跑 created."
    desk.get_by_label("Member (phone or id)").fill(brand.phones["李娜"])
    desk.get_by_role("button", name="Take a seat").click()
    assert flash(desk) == "Seat taken."
    desk.get_by_label("Member (phone or id)").fill("13610000000")
    desk.get_by_role("button", name="Take a seat").click()
    assert flash(desk) == "Full: on the waitlist (1)."
    desk.get_by_label("Member (phone or id)").fill(brand.phones["李娜"])
    desk.get_by_role("button", name="Mark attended").click()
    assert flash(desk) == "Attendance recorded."
    assert desk.locator("#rsvps li").all_inner_texts() == ["李娜 confirmed", "陈静 waitlisted"]
    assert desk.locator("#attended li").first.inner_text().startswith("李娜")


def test_a_badge_is_awarded_and_shows_on_the_member_360(desk: Any, site: Site) -> None:
    brand = site.brand
    login(desk, site, brand.logins["owner"])
    desk.wait_for_url(f"{site.url}/console/")
    desk.goto(f"{site.url}/console/badges")
    desk.locator("#f-badge_name").fill("跑满百公里")
    desk.get_by_label("Earned automatically by").select_option("check_ins")
    desk.get_by_role("button", name="Save").click()
    assert desk.locator("#e-at_least").inner_text() == "Required."
    desk.get_by_label("At least").fill("100")
    desk.get_by_role("button", name="Save").click()
    assert flash(desk) == "Badge 跑满百公里 created."
    row = desk.locator("#badges tbody tr", has_text="跑满百公里")
    row.get_by_label("Member (phone or id)").fill("13700000000")
    row.get_by_role("button", name="Award").click()
    row = desk.locator("#badges tbody tr", has_text="跑满百公里")
    assert row.locator(".error").inner_text() == "No member with that phone or id."
    row.get_by_label("Member (phone or id)").fill(brand.phones["张伟"])
    row.get_by_role("button", name="Award").click()
    assert flash(desk) == "Badge awarded."
    desk.goto(f"{site.url}/console/members/{brand.members['张伟']}")
    assert "跑满百公里" in desk.locator("section[aria-labelledby=h-groups]").inner_text()


UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(el => el.type !== 'hidden')
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
  .map(el => el.name || el.id)"""


def test_every_field_of_the_forms_has_a_label_and_is_reached_by_keyboard(
    desk: Any, site: Site
) -> None:
    brand = site.brand
    login(desk, site, brand.logins["owner"])
    desk.wait_for_url(f"{site.url}/console/")
    pages = (
        "/console/catalog/new",
        "/console/members/new",
        "/console/plans/new",
        f"/console/communities/{brand.community_id}",
        "/console/badges",
        "/console/events",
        "/console/programs",
        "/console/content",
        "/console/growth/coupons",
        "/console/growth/settings",
        "/console/staff",
        "/console/users",
    )
    for path in pages:
        desk.goto(site.url + path)
        assert desk.evaluate(UNLABELLED) == [], path
    # The skip link comes first, then the navigation: all of it by the Tab key.
    desk.goto(f"{site.url}/console/members")
    desk.keyboard.press("Tab")
    assert desk.evaluate("document.activeElement.getAttribute('href')") == "#main"
