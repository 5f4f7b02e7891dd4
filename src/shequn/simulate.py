"""A synthetic community: heavy-tailed referral forest, ladder purchases, repurchase,
refunds, settlement and withdrawals, all driven through the services with a manual clock."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shequn.catalog.service import create_product
from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.db import Database
from shequn.distribution.plans import build_plan_spec
from shequn.errors import DomainError
from shequn.flows.growth_settlement import settle_with_growth
from shequn.flows.plans import activate_plan, create_plan
from shequn.flows.registration import create_member
from shequn.flows.settings import update_settings
from shequn.flows.tiers import create_tier
from shequn.orders.creation import create_order
from shequn.orders.payment import pay_order
from shequn.orders.refunds import refund_order
from shequn.orders.transitions import complete_order, ship_order
from shequn.tenancy.service import create_tenant, get_settings
from shequn.wallet.service import (
    approve_withdrawal,
    record_payout_result,
    request_withdrawal,
    wallet,
)

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蔡蒋余"
    "杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙"
    "史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玲红梅兰凤洁琳素云莲真环雪荣爱妹"
    "香月莺媛瑞凡佳嘉琼勤珍贞莉桂娣叶璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁"
    "蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希宁欣飘"
    "育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔枝丽阳妮宝贝初程梵罡恒鸿桦骅剑娇纪"
    "宽苛灵玛媚琪晴容睿烁堂唯威韦雯苇萱阅彦宇雨洋忠宗曼紫逸贤蝶菡绿蓝儿翠烟"
)


# What the demo shop sells and says, in the demo's language.
PRODUCTS = {
    "zh_CN": {
        "TRIAL-01": "体验装",
        "CORE-CREAM": "修护面霜",
        "CORE-SERUM": "精华液",
        "CORE-TEA": "花草茶",
        "PARTNER-KIT": "合伙人礼包",
    },
    "en": {
        "TRIAL-01": "Trial pack",
        "CORE-CREAM": "Repair cream",
        "CORE-SERUM": "Serum",
        "CORE-TEA": "Herbal tea",
        "PARTNER-KIT": "Partner kit",
    },
}
WORDS = {
    "zh_CN": {
        "tenant": "示例品牌",
        "plan": "两级分销",
        "partner_tier": "合伙人",
        "partner_service": "专属客服",
        "reasons": ("质量问题", "不喜欢", "发错货", "物流太慢", "买多了"),
        "tags": ("宝妈", "上班族", "学生", "敏感肌", "回头客", "北京", "上海", "广州", "成都"),
    },
    "en": {
        "tenant": "Demo Brand",
        "plan": "Two levels",
        "partner_tier": "Partner",
        "partner_service": "Personal service",
        "reasons": ("Quality issue", "Did not like it", "Wrong item", "Late delivery", "Too many"),
        "tags": ("parent", "office", "student", "sensitive skin", "regular", "north", "south"),
    },
}
# Mainland mobile prefixes, for phone numbers that look like real ones.
MOBILE_PREFIXES = (
    "130",
    "131",
    "132",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "157",
    "158",
    "159",
    "176",
    "177",
    "180",
    "181",
    "182",
    "186",
    "187",
    "188",
    "189",
    "198",
    "199",
)
# When people register and buy, hour by hour (a lunch peak and an evening peak), and how much
# busier each weekday is (Monday first; the weekend is busier).
HOUR_WEIGHTS = (1, 1, 0, 0, 0, 0, 1, 2, 4, 5, 5, 6, 9, 8, 5, 5, 5, 6, 7, 9, 12, 13, 10, 4)
WEEKDAY_WEIGHTS = (0.85, 0.8, 0.85, 0.9, 1.05, 1.3, 1.25)


@dataclass
class SimulationResult:
    tenant_id: str
    api_key: str
    members: list[str] = field(default_factory=list)
    orders: int = 0
    refunds: int = 0
    withdrawals: int = 0
    settlement: dict[str, int] = field(default_factory=dict)


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))


def _phone(rng: random.Random, taken: set[str]) -> str:
    while True:
        phone = "+86" + rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        if phone not in taken:
            taken.add(phone)
            return phone


def _moment(rng: random.Random, day_start: datetime) -> datetime:
    """A moment of the day as the community lives it (more at lunch and in the evening)."""
    hour = rng.choices(range(24), weights=HOUR_WEIGHTS, k=1)[0]
    return day_start + timedelta(hours=hour, minutes=rng.randrange(60), seconds=rng.randrange(60))


def simulate(
    *,
    db: Database,
    clock: ManualClock,
    members: int = 300,
    days: int = 60,
    seed: int = 7,
    locale: str = "zh_CN",
    progress: Callable[[str, int, int], None] | None = None,
) -> SimulationResult:
    """Build a tenant and play `days` of community life from the clock's time on: members
    arrive through the period (more at the weekend and in the evening), join under whoever
    shared with them (a heavy-tailed forest in which no one holds most of the community),
    buy up the product ladder, come back, refund now and then, and withdraw what they earn;
    everything through the use cases, in the demo's language."""
    rng = random.Random(seed)
    words = WORDS.get(locale, WORDS["zh_CN"])
    names = PRODUCTS.get(locale, PRODUCTS["zh_CN"])
    tenant_id, api_key = create_tenant(
        db=db, clock=clock, name=str(words["tenant"]), actor="simulator"
    )
    ctx = Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="simulator")
    result = SimulationResult(tenant_id=tenant_id, api_key=api_key)
    update_settings(
        ctx,
        patch={
            "withdrawal_min_fen": 1_000,
            "withdrawal_fee_bp": 60,
            "locale": "en" if locale == "en" else "zh_CN",
            # The simulated day runs in big steps: leave unpaid orders to the end of it.
            "unpaid_cancel_minutes": 24 * 60,
        },
    )
    catalog = (
        ("TRIAL-01", 990, "bait", "skincare"),
        ("CORE-CREAM", 19_900, "core", "skincare"),
        ("CORE-SERUM", 29_900, "core", "skincare"),
        ("CORE-TEA", 8_800, "core", "food"),
        ("PARTNER-KIT", 199_900, "partner", "package"),
    )
    for sku, price, role, category in catalog:
        create_product(
            ctx, sku=sku, name=names[sku], price_fen=price, ladder_role=role, category=category
        )
    # A member after the core purchases (¥500 in a year); a partner after the package, or
    # ¥3000 in a year; partners keep their tier while a year's spend stays within 90 %.
    create_tier(
        ctx,
        name="VIP",
        rank=1,
        discount_bp=500,
        points_multiplier_bp=15_000,
        may_distribute=True,
        criteria={"kind": "spend", "min_fen": 50_000, "window_days": 365},
    )
    create_tier(
        ctx,
        name=str(words["partner_tier"]),
        rank=2,
        discount_bp=1_000,
        points_multiplier_bp=20_000,
        may_distribute=True,
        service_tags=[str(words["partner_service"])],
        criteria={
            "kind": "any_of",
            "of": [
                {"kind": "spend", "min_fen": 300_000, "window_days": 365},
                {"kind": "bought", "sku": "PARTNER-KIT"},
            ],
        },
    )
    plan = create_plan(
        ctx,
        spec=build_plan_spec(
            mode="levels",
            levels=[{"level": 1, "rate_bp": 1_000}, {"level": 2, "rate_bp": 500}],
            peer_bonus_bp=100,
        ),
        name=str(words["plan"]),
    )
    activate_plan(ctx, plan_id=plan["id"])

    # Days, weekdays and hours are the tenant's own (its time zone), as its members live them.
    zone = ZoneInfo(str(get_settings(ctx)["time_zone"]))
    local_start = clock.now().astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)

    def midnight(day: int) -> datetime:
        local = datetime.combine(local_start.date() + timedelta(days=day), time(), tzinfo=zone)
        return local.astimezone(UTC)

    per_day = [
        WEEKDAY_WEIGHTS[(local_start.date() + timedelta(days=d)).weekday()] for d in range(days)
    ]
    # Arrivals grow through the period (word of mouth), shaped by the day of the week.
    shares = [w * (0.5 + d / max(days, 1)) for d, w in enumerate(per_day)]
    arrivals = _spread(members, shares, rng)
    phones: set[str] = set()
    team = Teams()
    skus = [c[0] for c in catalog]
    sku_weights = [30, 25, 15, 25, 2]
    open_orders: list[tuple[str, Any]] = []
    tags = list(words["tags"])
    reasons = list(words["reasons"])
    for day in range(days):
        day_start = midnight(day)
        plan_of_day: list[tuple[datetime, str]] = [
            (_moment(rng, day_start), "join") for _ in range(arrivals[day])
        ]
        buyers_today = int(len(result.members) * 0.04 * per_day[day]) + rng.randint(0, 3)
        plan_of_day += [(_moment(rng, day_start), "buy") for _ in range(buyers_today)]
        for at, what in sorted(plan_of_day):
            clock.set(at)
            if what == "join":
                _join(ctx, rng, result, team, phones, tags)
                if progress:
                    progress("members", len(result.members), members)
            elif result.members:
                _buy(ctx, rng, result, skus, sku_weights, open_orders)
        clock.set(midnight(day + 1) - timedelta(minutes=30))
        for order_id, total in list(open_orders):
            roll = rng.random()
            try:
                if roll < 0.03:
                    refund_order(
                        ctx,
                        order_id=order_id,
                        amount_fen=max(1, total // rng.choice([1, 2])),
                        reason=rng.choice(reasons),
                    )
                    result.refunds += 1
                    open_orders.remove((order_id, total))
                elif roll < 0.55:
                    ship_order(ctx, order_id=order_id)
                    clock.advance(minutes=1)
                    complete_order(ctx, order_id=order_id)
                    open_orders.remove((order_id, total))
            except DomainError:
                open_orders.remove((order_id, total))
        if day % 7 == 6 or day == days - 1:
            settled = settle_with_growth(ctx)
            for key, value in settled.items():
                if isinstance(value, int):
                    result.settlement[key] = result.settlement.get(key, 0) + value
            result.withdrawals += _withdraw_some(ctx, result.members, rng)
        if progress:
            progress("days", day + 1, days)
    return result


def _spread(total: int, shares: list[float], rng: random.Random) -> list[int]:
    """`total` split over the days in proportion to `shares` (each day at least 0)."""
    if not shares:
        return []
    days = rng.choices(range(len(shares)), weights=shares, k=total)
    counts = [0] * len(shares)
    for day in days:
        counts[day] += 1
    return counts


FOUNDERS = 5  # the first members come on their own: the brand's first sharers


@dataclass
class Teams:
    """Who shared with whom so far: each member's direct team and the founder of its tree."""

    direct: dict[str, int] = field(default_factory=dict)
    founder: dict[str, str] = field(default_factory=dict)
    trees: dict[str, list[str]] = field(default_factory=dict)

    def referrer(self, rng: random.Random) -> str:
        """A sharer: first a tree, by its size to the power 0.9 (a big circle draws more
        people, a little less than in proportion, so that no tree swallows the community),
        then a member of it, by the square root of its direct team."""
        founders = list(self.trees)
        tree = self.trees[
            rng.choices(founders, weights=[len(self.trees[f]) ** 0.9 for f in founders])[0]
        ]
        return rng.choices(tree, weights=[1 + math.sqrt(self.direct.get(m, 0)) for m in tree])[0]

    def add(self, member: str, referrer: str | None) -> None:
        founder = member if referrer is None else self.founder[referrer]
        self.founder[member] = founder
        self.trees.setdefault(founder, []).append(member)
        if referrer is not None:
            self.direct[referrer] = self.direct.get(referrer, 0) + 1


def _join(
    ctx: Ctx,
    rng: random.Random,
    result: SimulationResult,
    team: Teams,
    phones: set[str],
    tags: list[str],
) -> None:
    """One member registers, most under someone who shared with them (`Teams.referrer`), so
    that the forest is heavy-tailed and yet no single member's team is most of the community;
    a fifth of the members come on their own."""
    referrer = None
    if len(result.members) >= FOUNDERS and rng.random() > 0.2:
        referrer = team.referrer(rng)
    member = create_member(
        ctx,
        name=_name(rng),
        phone=_phone(rng, phones),
        external_id=f"wx_{rng.getrandbits(64):016x}" if rng.random() < 0.7 else None,
        referrer_id=referrer,
        source=rng.choice(["share_link", "share_link", "qr_scene", "staff"]),
        tags=rng.sample(tags, k=rng.choice([0, 1, 1, 2])),
    )
    result.members.append(member["id"])
    team.add(member["id"], referrer)


def _buy(
    ctx: Ctx,
    rng: random.Random,
    result: SimulationResult,
    skus: list[str],
    sku_weights: list[int],
    open_orders: list[tuple[str, Any]],
) -> None:
    buyer = rng.choice(result.members)
    sku = rng.choices(skus, weights=sku_weights, k=1)[0]
    quantity = 1 if sku == "PARTNER-KIT" else rng.choice([1, 1, 1, 2, 3])
    try:
        order, _ = create_order(ctx, buyer_id=buyer, lines=[{"sku": sku, "quantity": quantity}])
        if rng.random() < 0.93:
            pay_order(
                ctx,
                order_id=order["id"],
                provider_txn_id=f"wx{order['id'][-16:]}",
                amount_fen=order["total_fen"],
            )
            open_orders.append((order["id"], order["total_fen"]))
            result.orders += 1
    except DomainError:
        return


def _withdraw_some(ctx: Ctx, member_ids: list[str], rng: random.Random) -> int:
    count = 0
    for member_id in rng.sample(member_ids, k=min(40, len(member_ids))):
        available = wallet(ctx, member_id=member_id)["available_fen"]
        if available < 2_000:
            continue
        try:
            withdrawal, _ = request_withdrawal(ctx, member_id=member_id, amount_fen=available // 2)
        except DomainError:
            continue
        count += 1
        if withdrawal["status"] == "requested":
            withdrawal = approve_withdrawal(ctx, withdrawal_id=withdrawal["id"])
        record_payout_result(
            ctx,
            withdrawal_id=withdrawal["id"],
            payout_id=withdrawal["payout_id"],
            status="failed" if rng.random() < 0.05 else "paid",
            provider_ref=f"bank-{withdrawal['payout_id'][-8:]}",
        )
    return count
