"""The console's pages over HTTP: every route checks the role and the tenant (walked with a
user of another tenant and with a read-only user), forms refuse bad input beside the field and
change nothing, CSRF tokens are required, and every text of the templates is translated."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Route

from shequn.catalog.service import create_product
from shequn.clock import ManualClock
from shequn.config import Settings
from shequn.context import Ctx
from shequn.db import Database
from shequn.entrypoints.app import create_app
from shequn.i18n import catalog
from tests.browser.world import PASSWORD, PORTAL_PASSWORD, Brand, build_brand
from tests.e2e.conftest import contents

TEMPLATES = Path(__file__).resolve().parents[2] / "src/shequn/entrypoints/web/templates"
ACTIONS = {
    "/console/orders/{order_id}/{action}": ("ship", "complete", "cancel", "refund"),
    "/console/money/withdrawals/{withdrawal_id}/{action}": ("approve", "reject", "paid", "failed"),
    "/console/users/{user_id}/{action}": ("role", "disable", "enable", "unlock", "password"),
    "/console/tasks/{message_id}/{action}": ("done", "skip"),
    "/console/growth/holds/{hold_id}/{action}": ("release", "cancel"),
    "/console/events/{event_id}/{action}": ("rsvp", "cancel", "attend"),
}
# What the read-only role may still post: its own language, logging out, checking the ledger.
READER_POSTS = {"/lang", "/console/logout", "/console/money/verify"}


_SITES: dict[int, tuple[TestClient, Brand, Brand, ManualClock]] = {}


@pytest.fixture(scope="module")
def _started() -> Iterator[list[TestClient]]:
    clients: list[TestClient] = []
    yield clients
    for client in clients:
        client.__exit__(None, None, None)
    _SITES.clear()


@pytest.fixture
def site(db: Database, _started: list[TestClient]) -> tuple[TestClient, Brand, Brand, ManualClock]:
    """Two brands and the app over the database under test, one per database for the module:
    every test here only sends requests that must change nothing (and checks it)."""
    if id(db) not in _SITES:
        clock = ManualClock()
        brand = build_brand(db, clock, "主品牌")
        other = build_brand(db, clock, "别家")
        ctx = Ctx(db=db, clock=clock, tenant_id=brand.tenant_id, actor="test")
        create_product(ctx, sku="ONLY-HERE", name="独有", price_fen=100, ladder_role="bait")
        app = create_app(
            Settings(environment="test", database_url="sqlite://", api_key_cache_seconds=0),
            clock=clock,
            db=db,
        )
        client = TestClient(app, base_url="https://testserver", raise_server_exceptions=True)
        _started.append(client.__enter__())
        _SITES[id(db)] = (client, brand, other, clock)
    return _SITES[id(db)]


def csrf(client: TestClient, path: str = "/console/login") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)


def log_in(client: TestClient, login: str) -> str:
    client.cookies.clear()
    response = client.post(
        "/console/login",
        data={"csrf_token": csrf(client), "login": login, "password": PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf(client, "/console/")


def console_routes(client: TestClient) -> list[tuple[str, str]]:
    routes = []
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route) and route.path.startswith("/console"):
            for method in sorted(route.methods or ()):
                if method in ("GET", "POST") and route.path != "/console/login":
                    routes.append((method, route.path))
    # Logging out ends the walk.
    return sorted(routes, key=lambda r: r[1] == "/console/logout")


def concrete(path: str, brand: Brand) -> list[str]:
    values = {
        "member_id": brand.members["张伟"],
        "order_id": brand.orders[1],
        "plan_id": brand.plan_id,
        "sku": "ONLY-HERE",
        "tier_id": brand.tier_id,
        "withdrawal_id": brand.withdrawal_id,
        "user_id": brand.user_ids["operator"],
        "message_id": brand.message_id,
        "community_id": brand.community_id,
        "group_id": brand.group_id,
        "badge_id": brand.badge_id,
        "certificate_id": brand.certificate_id,
        "template_id": brand.coupon_template_id,
        "hold_id": "hld_0000000000000000000000000",
        "account_id": brand.staff_account_id,
        "event_id": brand.event_id,
        "program_id": brand.program_id,
        "complaint_id": brand.complaint_id,
        "request_id": brand.stock_request_id,
    }
    filled = path
    for name, value in values.items():
        filled = filled.replace("{" + name + "}", value)
    if "{action}" in filled:
        return [filled.replace("{action}", a) for a in ACTIONS[path]]
    return [filled]


def test_a_user_of_another_tenant_reaches_nothing_of_this_one(site, db: Database) -> None:  # type: ignore[no-untyped-def]
    client, brand, other, _ = site
    token = log_in(client, other.logins["owner"])
    before = contents(db, brand.tenant_id)
    theirs = set(brand.members.values()) | set(brand.orders) | {brand.plan_id}
    walked = set()
    for method, path in console_routes(client):
        walked.add(path)
        for url in concrete(path, brand):
            if method == "GET":
                response = client.get(url, follow_redirects=False)
            else:
                response = client.post(url, data={"csrf_token": token}, follow_redirects=False)
            named = "{" in path
            if named:
                assert response.status_code == 404, (method, url, response.status_code)
            else:
                assert response.status_code in (200, 303), (method, url, response.status_code)
            if response.status_code == 200:
                assert not any(v in response.text for v in theirs), (method, url)
    assert contents(db, brand.tenant_id) == before
    assert "/console/members/{member_id}" in walked


def test_a_read_only_user_reads_and_changes_nothing(site, db: Database) -> None:  # type: ignore[no-untyped-def]
    client, brand, _, _ = site
    token = log_in(client, brand.logins["readonly"])
    before = contents(db, brand.tenant_id)
    writes = {
        "/console/members/new",
        "/console/catalog/new",
        "/console/tiers/new",
        "/console/plans/new",
        "/console/users",
        "/console/tiers/{tier_id}",
        "/console/communities/new",
        "/console/import",
    }
    for method, path in console_routes(client):
        for url in concrete(path, brand):
            if method == "GET":
                response = client.get(url, follow_redirects=False)
                expected = 403 if path in writes else 200
            else:
                response = client.post(url, data={"csrf_token": token}, follow_redirects=False)
                expected = 303 if path in READER_POSTS else 403
                if path == "/console/money/verify":
                    expected = 200
            assert response.status_code == expected, (method, url, response.status_code)
            if expected == 403:
                assert "role (read-only) cannot do this" in response.text or (
                    "（只读）" in response.text
                ), url
    after = contents(db, brand.tenant_id)
    # Logging out (the walk's last step) is the one change a reader makes: its own session.
    assert {k: v for k, v in after.items() if k != "console_sessions"} == {
        k: v for k, v in before.items() if k != "console_sessions"
    }


def test_a_form_without_its_csrf_token_is_refused(site, db: Database) -> None:  # type: ignore[no-untyped-def]
    client, brand, _, _ = site
    log_in(client, brand.logins["owner"])
    before = contents(db, brand.tenant_id)
    for data in ({}, {"csrf_token": "forged"}):
        response = client.post(
            f"/console/money/withdrawals/{brand.withdrawal_id}/approve", data=data
        )
        assert response.status_code == 403
    response = client.post(
        "/console/settlement",
        data={"csrf_token": csrf(client, "/console/")},
        headers={"Origin": "https://elsewhere.example"},
    )
    assert response.status_code == 403
    assert contents(db, brand.tenant_id) == before


@pytest.mark.parametrize(
    ("path", "fields", "field"),
    [
        (
            "/console/catalog/new",
            {"sku": "X-1", "name": "货", "price": "1.234", "ladder_role": "core"},
            "price",
        ),
        (
            "/console/catalog/new",
            {"sku": "ONLY-HERE", "name": "重复", "price": "1.00", "ladder_role": "core"},
            "_form",
        ),
        ("/console/members/new", {"name": "", "phone": "13800000000"}, "name"),
        ("/console/members/new", {"name": "新人", "referrer": "13700000000"}, "referrer"),
        ("/console/orders/{order}/refund", {"amount": "999999.00", "reason": "太多"}, "_form"),
        ("/console/orders/{order}/refund", {"amount": "1.00", "reason": ""}, "reason"),
        ("/console/money/withdrawals/{withdrawal}/reject", {}, "reason_{withdrawal}"),
        (
            "/console/plans/new",
            {
                "mode": "levels",
                "depth": "2",
                "rate_1": "abc",
                "release": "on_close",
                "intent": "save",
            },
            "rate_1",
        ),
        (
            "/console/users",
            {"login": "new.user@b.test", "password": "short", "role": "operator"},
            "password",
        ),
        ("/console/tiers/new", {"name": "VIP", "rank": "1"}, "_form"),
        (
            "/console/tiers/new",
            {"name": "金卡", "rank": "5", "c1_kind": "spend", "c1_value": "abc"},
            "c1_value",
        ),
        (
            "/console/communities/new",
            {"name": "", "mission": "一起成长", "size_class": "15"},
            "name",
        ),
        ("/console/communities/new", {"name": "新社群", "size_class": "16"}, "size_class"),
        (
            "/console/communities/{community}/join",
            {"member": "13700000000", "policy": "fill", "role": "member"},
            "member",
        ),
        (
            "/console/communities/{community}/join",
            {"tag": "nobody-has-it", "policy": "fill", "role": "member"},
            "tag",
        ),
        (
            "/console/communities/{community}/venues",
            {
                "venue_name": "主群",
                "kind": "wechat_group",
                "venue_role": "sales",
                "platform_limit": "x",
            },
            "platform_limit",
        ),
        ("/console/communities/{community}/chronicle", {"title": "", "body": "开营"}, "title"),
        (
            "/console/communities/{community}/welcome",
            {"trigger": "group_joined", "welcome_body": "欢迎 {nobody}"},
            "welcome_body",
        ),
        (
            "/console/badges",
            {"badge_name": "", "description": "每天签到", "kind": "badge"},
            "badge_name",
        ),
        ("/console/badges/{badge}/award", {"member_{badge}": "13700000000"}, "member_{badge}"),
        ("/console/certificates", {"holder": "13700000000", "cert_kind": "honour"}, "holder"),
        (
            "/console/growth/coupons",
            {"coupon_name": "立减", "kind": "amount", "amount_off": "1.234"},
            "amount_off",
        ),
        ("/console/growth/coupons/{template}/issue", {"tag_{template}": ""}, "tag_{template}"),
        ("/console/growth/points", {"item_name": "小样", "points": "abc"}, "points"),
        (
            "/console/growth/sharing",
            {"program_name": "分享返现", "sharer_reward": "cashback", "cashback": "abc"},
            "cashback",
        ),
        ("/console/staff", {"account_name": "", "persona": "宝妈 IP"}, "account_name"),
        (
            "/console/events",
            {
                "title": "读书会",
                "kind": "meetup",
                "repeat": "weekly",
                "day": "2026-13-40",
                "time": "20:00",
            },
            "day",
        ),
        (
            "/console/events/{event}/rsvp",
            {"member": "13700000000", "at": "2030-01-01T12:00:00+00:00"},
            "member",
        ),
        ("/console/programs", {"title": "早起", "days": "abc", "mode": "consecutive"}, "days"),
        ("/console/complaints", {"member": "13700000000", "body": "太慢"}, "member"),
        (
            "/console/content/sops",
            {
                "sop_name": "入群 SOP",
                "sop_target_kind": "segment",
                "sop_target": "新人",
                "starts_on": "2026-02-01",
                "steps": "第一天 欢迎",
            },
            "steps",
        ),
        (
            "/console/content/posts",
            {
                "target_kind": "group",
                "target": "grp_x",
                "kind": "post",
                "post_body": "早安",
                "post_day": "2026-02-30",
                "post_time": "08:00",
            },
            "post_day",
        ),
        ("/console/content/copies", {"copy_title": "", "copy_body": "好物推荐"}, "copy_title"),
        ("/console/path", {"stages": "进入: communities>=1\n学习: nonsense"}, "stages"),
        ("/console/path", {"stages": "进入: unknown_fact>=1"}, "stages"),
        ("/console/role-models", {"member": "13700000000", "model_title": "带货王"}, "member"),
        (
            "/console/growth/settings",
            {
                "points_earn_bp": "100",
                "fen_per_point": "0",
                "points_cap": "50",
                "points_expiry_days": "365",
                "stock_cover_limit_days": "60",
                "new_agent_monthly_sales": "30",
                "buyback_window_days": "30",
                "buyback_price": "90",
                "velocity_limit_per_hour": "5",
            },
            "fen_per_point",
        ),
        ("/console/complaints/{complaint}/resolve", {}, "resolution_{complaint}"),
        ("/console/growth/stock/{member}/buyback", {"sku": "STOCK-1", "quantity": "0"}, "quantity"),
        ("/console/growth/stock/{member}/buyback", {"sku": "STOCK-1", "quantity": "99"}, "_form"),
        (
            "/console/growth/stock-requests/{request}/confirm",
            {"reference_{request}": "", "amount_{request}": "100.00"},
            "reference_{request}",
        ),
        (
            "/console/growth/stock-requests/{request}/confirm",
            {"reference_{request}": "BANK-1", "amount_{request}": "99.99"},
            "amount_{request}",
        ),
        (
            "/console/programs",
            {"title": "入门课", "kind": "course", "mode": "consecutive", "starts_on": "2026-02-01"},
            "lessons",
        ),
        ("/console/programs/{course}/lessons", {"lesson_title": ""}, "lesson_title"),
        ("/console/programs/{course}/progress", {"member": "13700000000", "lesson": "1"}, "member"),
        ("/console/programs/{course}/progress", {"member": "13700000000", "lesson": "9"}, "lesson"),
        (
            "/console/programs/{contest}/teams",
            {"team_name": "蓝队", "team_members": "13700000000"},
            "team_members",
        ),
        ("/console/programs/{contest}/teams", {"team_name": ""}, "team_name"),
        ("/console/programs/{contest}/rounds", {"round": "7", "eliminate": "0"}, "_form"),
    ],
)
def test_bad_input_is_refused_beside_its_field_and_changes_nothing(  # type: ignore[no-untyped-def]
    site, db: Database, path: str, fields: dict[str, str], field: str
) -> None:
    client, brand, _, _ = site
    token = log_in(client, brand.logins["owner"])
    names = {
        "{order}": brand.orders[1],
        "{withdrawal}": brand.withdrawal_id,
        "{community}": brand.community_id,
        "{badge}": brand.badge_id,
        "{template}": brand.coupon_template_id,
        "{member}": brand.members["王芳"],
        "{event}": brand.event_id,
        "{complaint}": brand.complaint_id,
        "{request}": brand.stock_request_id,
        "{course}": brand.course_id,
        "{contest}": brand.contest_id,
        "{program}": brand.program_id,
    }
    url = path
    for name, value in names.items():
        url = url.replace(name, value)
        field = field.replace(name, value)
        fields = {k.replace(name, value): v for k, v in fields.items()}
    before = contents(db, brand.tenant_id)
    response = client.post(url, data={"csrf_token": token, **fields}, follow_redirects=False)
    assert response.status_code == 200, response.text
    assert response.headers["X-Refused"] in ("409", "422", "404")
    if field == "_form":
        assert 'class="form-error"' in response.text
    else:
        assert f'id="e-{field}"' in response.text or f'id="e-reason-{brand.withdrawal_id}"' in (
            response.text
        )
    for name, value in fields.items():
        if value and name not in (
            "password",
            "intent",
            "ladder_role",
            "mode",
            "depth",
            "release",
            "size_class",
            "policy",
            "role",
            "kind",
            "venue_role",
            "cert_kind",
            "sharer_reward",
            "repeat",
            "at",
            "steps",
            "target_kind",
            "sop_target_kind",
            "post_body",
            "copy_body",
            "stages",
            "lesson",
            "team_members",
            "round",
        ):
            assert f'value="{value}"' in response.text, name
    assert contents(db, brand.tenant_id) == before


def _template_keys() -> tuple[set[str], set[str]]:
    fixed, families = set(), set()
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        fixed |= set(re.findall(r"\bt\(\s*[\"']([a-z0-9_.]+)[\"']\s*[,)]", text))
        families |= set(re.findall(r"\bt\(\s*[\"']([a-z0-9_.]+\.)[\"']\s*~", text))
    return fixed, families


# The values each family of keys built in a template takes.
FAMILIES = {
    "order.status.": ("created", "paid", "shipped", "completed", "closed", "cancelled", "refunded"),
    "withdrawal.status.": ("requested", "approved", "paid", "rejected", "failed"),
    "console.role.": ("owner", "operator", "staff", "readonly"),
    "console.stage.": ("customer", "user", "fan", "friend"),
    "console.source.": ("share_link", "qr_scene", "staff", "import", "admin"),
    "console.binding.kind.": ("bind", "auto_rebind", "rebind"),
    "console.ladder.": ("bait", "core", "partner"),
    "console.commission.status.": ("pending", "available", "withdrawn", "cancelled", "reversed"),
    "portal.commissions.when.": ("pending", "available", "withdrawn", "cancelled", "reversed"),
    "console.commission.kind.": ("level", "differential", "peer_bonus"),
    "console.commission.explain.": ("level", "differential", "peer_bonus"),
    "console.members.filter.": ("buyers", "repeat", "bound", "unbound", "agents"),
    "console.orders.": ("paid_at", "shipped_at", "completed_at", "closed_at", "cancelled_at"),
    "console.orders.phase.": ("before_close", "after_close"),
    "console.plans.mode.": ("levels", "differential"),
    "console.plans.release.": ("on_close", "on_payment"),
    "console.plans.scope.": ("all", "ladder_role", "category", "product"),
    "console.plans.severity.": ("block", "warn"),
    "console.plans.status.": ("draft", "active", "retired"),
    "console.compliance.profile.": ("direct", "wechat", "custom"),
    "console.dash.funnel.": ("came", "bought", "bought_again", "referred_buyer"),
    "console.dash.mix.": ("ads", "repurchase", "referral"),
    "cli.live.": (
        "deepest_earning_level",
        "deepest_referral_levels",
        "member_income_fen",
        "members_in_chains_of_3_plus",
        "recruitment_income_fen",
        "recruitment_income_share_bp",
    ),
    "console.orders.done.": ("ship", "complete", "cancel"),
    "console.money.done.": ("approve", "reject", "paid", "failed"),
    "console.users.done.": ("role", "disable", "enable", "unlock", "password"),
    "console.badges.kind.": ("badge", "title"),
    "console.badges.fact.": (
        "check_ins",
        "messages",
        "likes",
        "visits",
        "replies",
        "feedback",
        "paid_order_count",
        "direct_count",
        "team_count",
        "communities",
    ),
    "console.certificates.kind.": ("authorization", "honour"),
    "console.community.kind.": (
        "wechat_group",
        "wecom_group",
        "qq_group",
        "forum",
        "weibo",
        "live_room",
        "offline_club",
        "store",
        "other",
    ),
    "console.community.policy.": (
        "fill",
        "region",
        "interest",
        "referrer",
        "staff_account",
        "lifecycle",
    ),
    "console.community.role.": ("member", "leader", "lecturer", "ambassador"),
    "console.community.venue_role.": (
        "rnd_feedback",
        "marketing",
        "customer_service",
        "sales",
        "emotional",
        "experience",
    ),
    "console.coupons.kind.": ("amount", "percent"),
    "console.community.trigger.": ("group_joined", "staff_added"),
    "console.alerts.kind.": ("low_activity", "oversize", "slow_replies", "crisis"),
    "console.boards.kind.": ("sales", "referrals", "streaks", "points", "attendance"),
    "console.boards.period.": ("7d", "30d", "all"),
    "console.complaints.status.": ("open", "in_progress", "resolved"),
    "console.events.kind.": ("class", "meetup", "festival", "lab", "live"),
    "console.events.repeat.": ("once", "daily", "weekly"),
    "console.events.rsvp.": ("confirmed", "waitlisted", "cancelled"),
    "console.events.via.": ("code", "activity", "staff"),
    "console.programs.mode.": ("consecutive", "cumulative"),
    "console.content.kind.": ("post", "task"),
    "console.import.kind.": ("members", "orders", "referrals"),
    "console.content.target.": ("staff_account", "group", "segment"),
    "console.path.fact.": (
        "paid_order_count",
        "paid_total_fen",
        "first_sale",
        "referred_buyers",
        "direct_count",
        "events_attended",
        "challenges_completed",
        "lessons_done",
        "check_ins",
        "messages",
        "talks_given",
        "communities",
    ),
    "console.sim.why.": ("level", "differential", "peer_bonus"),
    "console.tiers.kind.": (
        "spend",
        "single_order",
        "bought",
        "direct_customers",
        "team_size",
        "fact",
    ),
    "console.holds.done.": ("release", "cancel"),
    "console.holds.reason.": ("self_referral", "linked_accounts", "velocity", "re_registration"),
    "console.holds.status.": ("held", "released", "cancelled"),
    "console.sharing.reward.": ("cashback", "fixed", "coupon", "points", "tier_upgrade"),
    "console.sharing.status.": ("granted", "held", "capped", "cancelled", "reversed"),
    "portal.coupons.status.": ("available", "used", "void", "expired"),
    "portal.stock.order.status.": ("awaiting_payment", "paid", "cancelled", "expired"),
    "console.programs.kind.": ("challenge", "course", "competition"),
}


def test_every_text_of_the_templates_is_in_both_catalogs() -> None:
    fixed, families = _template_keys()
    assert families <= set(FAMILIES), families - set(FAMILIES)
    wanted = fixed | {prefix + value for prefix, values in FAMILIES.items() for value in values}
    for locale in ("zh_CN", "en"):
        assert sorted(wanted - set(catalog(locale))) == [], locale


def portal_log_in(client: TestClient, brand: Brand) -> str:
    client.cookies.clear()
    path = f"/portal/{brand.tenant_id}/login"
    response = client.post(
        path,
        data={
            "csrf_token": csrf(client, path),
            "phone": brand.phones["李娜"],
            "password": PORTAL_PASSWORD,
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf(client, "/portal/me")


@pytest.mark.parametrize(
    ("path", "fields", "field"),
    [
        ("/portal/wallet/withdraw", {"amount": "12.345"}, "amount"),
        ("/portal/wallet/withdraw", {"amount": "99999.00"}, "amount"),
        ("/portal/account/password", {"password": "short", "password_again": "short"}, "_form"),
        (
            "/portal/account/password",
            {"password": "long-enough-1", "password_again": "long-enough-2"},
            "password_again",
        ),
        ("/portal/coupons/claim", {"code": "NOPE1234"}, "code"),
        ("/portal/points/redeem", {"item": "rit_nothing"}, "_form"),
        ("/portal/events/{event}/attend", {"code": "WRONG1"}, "code"),
    ],
)
def test_the_portal_refuses_bad_input_beside_its_field_and_changes_nothing(  # type: ignore[no-untyped-def]
    site, db: Database, path: str, fields: dict[str, str], field: str
) -> None:
    client, brand, _, _ = site
    token = portal_log_in(client, brand)
    before = contents(db, brand.tenant_id)
    url = path.replace("{event}", brand.event_id)
    response = client.post(url, data={"csrf_token": token, **fields}, follow_redirects=False)
    assert response.status_code == 200, response.text
    assert response.headers["X-Refused"] in ("400", "404", "409", "422")
    if field == "_form":
        assert 'class="form-error"' in response.text or 'id="e-password"' in response.text
    else:
        assert f'id="e-{field}"' in response.text, response.text[-2000:]
    after = contents(db, brand.tenant_id)
    # Logging in is the one change: the member's session and its login attempt.
    skip = {"console_sessions", "login_attempts", "portal_credentials"}
    assert {k: v for k, v in after.items() if k not in skip} == {
        k: v for k, v in before.items() if k not in skip
    }


def test_a_staff_account_operator_reaches_only_groups_of_their_members(site) -> None:  # type: ignore[no-untyped-def]
    client, brand, _, _ = site
    log_in(client, brand.logins["staff"])
    assert brand.community_id not in client.get("/console/communities").text
    assert client.get(f"/console/communities/{brand.community_id}").status_code == 404
    assert client.get(f"/console/groups/{brand.group_id}").status_code == 404
    # Complaints: of their own members only (张伟 is assigned to their staff account).
    page = client.get("/console/complaints").text
    assert "快递太慢了" in page
    assert "赠品没收到" not in page
    log_in(client, brand.logins["operator"])
    assert "赠品没收到" in client.get("/console/complaints").text
    assert client.get(f"/console/groups/{brand.group_id}").status_code == 200


def test_an_agents_stock_shows_cover_orders_and_what_may_be_bought_back(site) -> None:  # type: ignore[no-untyped-def]
    client, brand, _, _ = site
    log_in(client, brand.logins["owner"])
    page = client.get("/console/growth/stock", params={"agent": brand.phones["王芳"]}).text
    assert "STOCK-1" in page
    assert 'id="stock-orders"' in page
    assert "¥200.00" in page  # the stock order: 4 units at the tier's ¥50.00
    refused = client.get("/console/growth/stock", params={"agent": "13700000000"}).text
    assert 'id="e-agent"' in refused


def test_an_import_is_checked_row_by_row_and_a_bad_file_changes_nothing(site, db: Database) -> None:  # type: ignore[no-untyped-def]
    client, brand, _, _ = site
    token = log_in(client, brand.logins["owner"])
    before = contents(db, brand.tenant_id)
    bad = "external_id,name,phone\nCRM-1,新会员,13900000001\nCRM-2,,not-a-phone\n".encode()
    response = client.post(
        "/console/import",
        data={"csrf_token": token, "kind": "members"},
        files={"file": ("members.csv", bad, "text/csv")},
    )
    assert response.status_code == 200
    assert response.headers["X-Refused"] == "422"
    assert 'id="import-errors"' in response.text
    missing = client.post("/console/import", data={"csrf_token": token, "kind": "members"})
    assert 'id="e-file"' in missing.text
    assert contents(db, brand.tenant_id) == before
    checked = client.post(
        "/console/import",
        data={"csrf_token": token, "kind": "members", "dry_run": "on"},
        files={
            "file": (
                "members.csv",
                "external_id,name,phone\nCRM-1,新会员,13900000001\n".encode(),
                "text/csv",
            )
        },
    )
    assert checked.status_code == 200
    assert "X-Refused" not in checked.headers
    assert 'id="report"' in checked.text
    assert contents(db, brand.tenant_id) == before


def test_a_settlement_run_from_the_console_grants_the_sharing_rewards(
    site,  # type: ignore[no-untyped-def]
    db: Database,
) -> None:
    client, _, _, clock = site
    brand = build_brand(db, clock, "分享结算")  # a tenant of its own: this test changes it
    key = {"Authorization": f"Bearer {brand.api_key}"}

    def api(path: str, body: dict[str, object] | None = None) -> dict[str, Any]:
        response = client.post(f"/api/v1{path}", json=body or {}, headers=key)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    ctx = Ctx(db=db, clock=clock, tenant_id=brand.tenant_id, actor="test")
    create_product(ctx, sku="SHARE-1", name="分享款", price_fen=10_000, ladder_role="core")
    api(
        "/sharing-programs", {"name": "分享返现", "sharer_reward": "cashback", "cashback_bp": 1_000}
    )
    sharer = api("/members", {"name": "分享人"})["id"]
    link = {"member_id": sharer, "target_type": "product", "target_id": "SHARE-1"}
    code = api("/share-links", link)["code"]
    friend = api(f"/share-links/{code}/members", {"name": "朋友"})["id"]
    order = api(
        "/orders",
        {"buyer_id": friend, "lines": [{"sku": "SHARE-1", "quantity": 1}], "share_code": code},
    )
    api(
        f"/orders/{order['id']}/pay", {"provider_txn_id": "wx-s1", "amount_fen": order["total_fen"]}
    )
    api(f"/orders/{order['id']}/ship")
    api(f"/orders/{order['id']}/complete")
    clock.advance(days=1)
    log_in(client, brand.logins["operator"])
    response = client.post("/console/settlement", data={"csrf_token": csrf(client, "/console/")})
    assert response.status_code in (200, 303), response.text
    client.cookies.clear()
    rewards = client.get(f"/api/v1/sharing-rewards?member_id={sharer}", headers=key).json()
    assert [(r["status"], r["amount_fen"]) for r in rewards["items"]] == [("granted", 1_000)]
