"""A small brand to run the console and the portal against, built through the services: a
referral chain, products on the ladder, an active two-level plan, paid and settled orders, a
withdrawal waiting for approval, and console users of every role (with another brand beside
it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from itertools import count
from zoneinfo import ZoneInfo

from shequn.catalog.service import create_product
from shequn.clock import ManualClock
from shequn.community.complaints.service import create_complaint
from shequn.community.founding import create_community
from shequn.community.gatherings.service import create_event
from shequn.community.groups.placement import join_community
from shequn.community.outbox.service import outbox_page
from shequn.community.programs.service import create_program, create_team
from shequn.community.rituals.badges import award_badge, create_badge
from shequn.community.rituals.certificates import issue_certificate
from shequn.community.staff.service import assign_member, create_account
from shequn.config import Settings
from shequn.console.delivery import set_code_delivery
from shequn.console.service import create_console_user, send_portal_code, set_portal_password
from shequn.context import Ctx
from shequn.db import Database
from shequn.distribution.plans import build_plan_spec
from shequn.flows.plans import activate_plan, create_plan
from shequn.flows.registration import create_member
from shequn.flows.settings import update_settings
from shequn.flows.tiers import create_tier
from shequn.growth.coupons.service import create_template as create_coupon_template
from shequn.growth.points.service import create_redemption_item
from shequn.growth.stock.requests import create_stock_order_request
from shequn.growth.stock.service import place_stock_order
from shequn.members.service import update_member
from shequn.orders.creation import create_order
from shequn.orders.payment import pay_order
from shequn.orders.transitions import complete_order, ship_order
from shequn.settlement.service import run_settlement
from shequn.tenancy.service import create_tenant
from shequn.wallet.service import request_withdrawal

PASSWORD = "correct-horse-battery"
PORTAL_PASSWORD = "portal-pass-2026"
# The settings' secret key in the tests (certificates are signed with it).
SERVER_KEY = Settings().secret_key
_numbers = count(1)


@dataclass
class Brand:
    tenant_id: str
    api_key: str
    logins: dict[str, str] = field(default_factory=dict)  # role → login
    members: dict[str, str] = field(default_factory=dict)  # name → id
    phones: dict[str, str] = field(default_factory=dict)  # name → phone
    orders: list[str] = field(default_factory=list)
    user_ids: dict[str, str] = field(default_factory=dict)  # role → console user id
    plan_id: str = ""
    tier_id: str = ""
    withdrawal_id: str = ""
    message_id: str = ""
    community_id: str = ""
    group_id: str = ""
    badge_id: str = ""
    certificate_id: str = ""
    coupon_template_id: str = ""
    staff_account_id: str = ""
    event_id: str = ""
    program_id: str = ""
    complaint_id: str = ""
    stock_request_id: str = ""
    course_id: str = ""
    contest_id: str = ""


def _phone() -> str:
    return f"+86138{next(_numbers) + 40_000_000:08d}"


def paid(ctx: Ctx, buyer: str, sku: str, quantity: int = 1) -> str:
    order, _ = create_order(ctx, buyer_id=buyer, lines=[{"sku": sku, "quantity": quantity}])
    pay_order(
        ctx,
        order_id=order["id"],
        provider_txn_id=f"wx-{order['id']}",
        amount_fen=order["total_fen"],
    )
    return str(order["id"])


def build_brand(db: Database, clock: ManualClock, name: str = "示例品牌") -> Brand:
    tenant_id, api_key = create_tenant(db=db, clock=clock, name=name)
    ctx = Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="test")
    brand = Brand(tenant_id=tenant_id, api_key=api_key)
    update_settings(ctx, patch={"after_sales_days": 0, "withdrawal_auto_approve_max_fen": 0})
    for role in ("owner", "operator", "staff", "readonly"):
        login = f"{role}.{next(_numbers)}@brand.test"
        user = create_console_user(ctx, login=login, password=PASSWORD, role=role)
        brand.logins[role] = login
        brand.user_ids[role] = str(user["id"])
    create_product(ctx, sku="TRIAL-1", name="体验装", price_fen=1_990, ladder_role="bait")
    create_product(ctx, sku="CORE-1", name="修护面霜", price_fen=9_900, ladder_role="core")
    brand.tier_id = str(
        create_tier(ctx, name="VIP", rank=1, discount_bp=500, may_distribute=True)["id"]
    )
    create_product(
        ctx,
        sku="STOCK-1",
        name="代理装",
        price_fen=9_900,
        ladder_role="partner",
        tier_prices=[{"tier_id": brand.tier_id, "wholesale_price_fen": 5_000}],
    )
    spec = build_plan_spec(
        mode="levels", levels=[{"level": 1, "rate_bp": 1_000}, {"level": 2, "rate_bp": 500}]
    )
    brand.plan_id = str(create_plan(ctx, spec=spec, name="两级分销")["id"])
    activate_plan(ctx, plan_id=brand.plan_id)
    referrer = None
    for who in ("王芳", "李娜", "张伟"):
        phone = _phone()
        created = create_member(ctx, name=who, phone=phone, referrer_id=referrer)
        brand.members[who] = str(created["id"])
        brand.phones[who] = phone
        referrer = brand.members[who]
    set_portal_password(ctx, member_id=brand.members["李娜"], password=PORTAL_PASSWORD)
    update_member(ctx, member_id=brand.members["王芳"], tier_id=brand.tier_id, set_tier=True)
    place_stock_order(
        ctx,
        member_id=brand.members["王芳"],
        lines=[{"sku": "STOCK-1", "quantity": 4}],
        provider_txn_id=f"wx-stock-{tenant_id}",
        amount_fen=20_000,
    )
    first = paid(ctx, brand.members["张伟"], "CORE-1")
    ship_order(ctx, order_id=first)
    complete_order(ctx, order_id=first)
    run_settlement(ctx)
    brand.orders.append(first)
    brand.orders.append(paid(ctx, brand.members["张伟"], "TRIAL-1", 2))
    withdrawal, _ = request_withdrawal(ctx, member_id=brand.members["李娜"], amount_fen=500)
    brand.withdrawal_id = str(withdrawal["id"])
    brand.staff_account_id = str(
        create_account(
            ctx, name="小美", operator=brand.logins["staff"], working_hours="00:00-24:00"
        )["id"]
    )
    assign_member(ctx, member_id=brand.members["张伟"])
    community = create_community(ctx, name="宝妈成长营", target_segment="新手妈妈", size_class=15)
    brand.community_id = str(community["id"])
    for who in ("王芳", "李娜"):
        placed, _ = join_community(
            ctx, community_id=brand.community_id, member_id=brand.members[who]
        )
        brand.group_id = str(placed["group_id"])
    brand.badge_id = str(
        create_badge(
            ctx,
            name="早起之星",
            description="签到满 30 次",
            criteria={"all": [{"fact": "check_ins", "op": ">=", "value": 30}]},
        )["id"]
    )
    award_badge(ctx, badge_id=brand.badge_id, member_id=brand.members["李娜"])
    brand.certificate_id = str(
        issue_certificate(
            ctx,
            server_key=SERVER_KEY,
            member_id=brand.members["李娜"],
            kind="honour",
            title="优秀团长",
        )["id"]
    )
    brand.coupon_template_id = str(
        create_coupon_template(ctx, name="新人立减", kind="amount", amount_off_fen=500)["id"]
    )
    create_redemption_item(ctx, name="体验装小样", points=100, stock=50)
    starts = clock.now().replace(microsecond=0) + timedelta(days=1)
    brand.event_id = str(
        create_event(
            ctx,
            title="护肤小课堂",
            kind="class",
            rrule="FREQ=WEEKLY",
            starts_at=starts,
            capacity=2,
            points=20,
            community_id=brand.community_id,
        )["id"]
    )
    today = clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date()
    brand.program_id = str(
        create_program(ctx, title="21 天早起打卡", days=21, starts_on=today)["id"]
    )
    brand.stock_request_id = str(
        create_stock_order_request(
            ctx, member_id=brand.members["王芳"], lines=[{"sku": "STOCK-1", "quantity": 2}]
        )["id"]
    )
    brand.course_id = str(
        create_program(
            ctx, title="护肤入门课", kind="course", lessons=["认识肤质", "清洁"], starts_on=today
        )["id"]
    )
    brand.contest_id = str(
        create_program(ctx, title="团队销售赛", kind="competition", starts_on=today)["id"]
    )
    for team, who in (("红队", "李娜"), ("蓝队", "王芳")):
        create_team(ctx, program_id=brand.contest_id, name=team, member_ids=[brand.members[who]])
    brand.complaint_id = str(
        create_complaint(ctx, member_id=brand.members["张伟"], body="快递太慢了")["id"]
    )
    create_complaint(ctx, member_id=brand.members["李娜"], body="赠品没收到")
    before = set_code_delivery(lambda _: None)
    try:
        send_portal_code(db=db, clock=clock, tenant_id=tenant_id, phone=brand.phones["张伟"])
    finally:
        set_code_delivery(before)
    queued = outbox_page(ctx, adapter="operator_task")["items"]
    brand.message_id = str(next(m["id"] for m in queued if m["kind"] == "portal_login_code"))
    clock.advance(minutes=1)  # the member may ask for another code
    return brand
