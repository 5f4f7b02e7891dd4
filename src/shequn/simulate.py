"""A synthetic community: heavy-tailed referral forest, ladder purchases, repurchase,
refunds, settlement and withdrawals, all driven through the services with a manual clock."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from shequn.catalog.service import create_product
from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.db import Database
from shequn.distribution.plans import build_plan_spec
from shequn.errors import DomainError
from shequn.flows.plans import activate_plan, create_plan
from shequn.flows.registration import create_member
from shequn.flows.settings import update_settings
from shequn.flows.tiers import create_tier
from shequn.orders.creation import create_order
from shequn.orders.payment import pay_order
from shequn.orders.refunds import refund_order
from shequn.orders.transitions import complete_order, ship_order
from shequn.settlement.service import run_settlement
from shequn.tenancy.service import create_tenant
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


def simulate(
    *,
    db: Database,
    clock: ManualClock,
    members: int = 300,
    days: int = 60,
    seed: int = 7,
    tenant_name: str = "示例品牌 Demo Brand",
    progress: Callable[[str, int, int], None] | None = None,
) -> SimulationResult:
    """Build a tenant and play `days` of community life ending at the clock's start + days."""
    rng = random.Random(seed)
    tenant_id, api_key = create_tenant(db=db, clock=clock, name=tenant_name, actor="simulator")
    ctx = Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="simulator")
    result = SimulationResult(tenant_id=tenant_id, api_key=api_key)
    update_settings(ctx, patch={"withdrawal_min_fen": 1_000, "withdrawal_fee_bp": 60})

    create_product(
        ctx,
        sku="TRIAL-01",
        name="体验装 Trial pack",
        price_fen=990,
        ladder_role="bait",
        category="skincare",
    )
    create_product(
        ctx,
        sku="CORE-CREAM",
        name="修护面霜 Repair cream",
        price_fen=19_900,
        ladder_role="core",
        category="skincare",
    )
    create_product(
        ctx,
        sku="CORE-SERUM",
        name="精华液 Serum",
        price_fen=29_900,
        ladder_role="core",
        category="skincare",
    )
    create_product(
        ctx,
        sku="CORE-TEA",
        name="花草茶 Herbal tea",
        price_fen=8_800,
        ladder_role="core",
        category="food",
    )
    create_product(
        ctx,
        sku="PARTNER-KIT",
        name="合伙人礼包 Partner kit",
        price_fen=199_900,
        ladder_role="partner",
        category="package",
    )
    vip = create_tier(
        ctx, name="VIP", rank=1, discount_bp=500, may_distribute=True, upgrade_spend_fen=50_000
    )
    partner = create_tier(
        ctx,
        name="合伙人",
        rank=2,
        discount_bp=1_000,
        may_distribute=True,
        upgrade_spend_fen=300_000,
        upgrade_product_sku="PARTNER-KIT",
    )
    plan = create_plan(
        ctx,
        spec=build_plan_spec(
            mode="levels",
            levels=[{"level": 1, "rate_bp": 1_000}, {"level": 2, "rate_bp": 500}],
            peer_bonus_bp=100,
        ),
        name="两级分销 Two-level",
    )
    activate_plan(ctx, plan_id=plan["id"])
    _ = (vip, partner)

    # Heavy-tailed forest: a few seeds, then preferential attachment by team size.
    weights: list[int] = []
    position: dict[str, int] = {}
    start = clock.now()
    step = timedelta(days=days) / max(members, 1) * 0.6
    for index in range(members):
        referrer = None
        if result.members and rng.random() > 0.08:
            referrer = rng.choices(result.members, weights=weights, k=1)[0]
        member = create_member(
            ctx,
            name=_name(rng),
            phone=f"+86138{index:08d}",
            referrer_id=referrer,
            source=rng.choice(["share_link", "share_link", "qr_scene", "staff"]),
        )
        position[member["id"]] = len(result.members)
        result.members.append(member["id"])
        weights.append(1)
        if referrer is not None:
            weights[position[referrer]] += 3
        clock.set(start + step * (index + 1))
        if progress:
            progress("members", index + 1, members)

    skus = ["TRIAL-01", "CORE-CREAM", "CORE-SERUM", "CORE-TEA", "PARTNER-KIT"]
    sku_weights = [30, 25, 15, 25, 2]
    open_orders: list[tuple[str, Any]] = []
    for day in range(days):
        clock.set(start + timedelta(days=day, hours=9))
        active = list(result.members[: int(len(result.members) * min(1.0, (day + 10) / days))])
        for _ in range(rng.randint(6, 14)):
            buyer = rng.choice(active)
            sku = rng.choices(skus, weights=sku_weights, k=1)[0]
            quantity = 1 if sku == "PARTNER-KIT" else rng.choice([1, 1, 1, 2, 3])
            try:
                order, _ = create_order(
                    ctx, buyer_id=buyer, lines=[{"sku": sku, "quantity": quantity}]
                )
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
                continue
        clock.advance(hours=6)
        for order_id, total in list(open_orders):
            roll = rng.random()
            try:
                if roll < 0.04:
                    refund_order(
                        ctx,
                        order_id=order_id,
                        amount_fen=max(1, total // rng.choice([1, 2])),
                        reason="质量问题 quality issue",
                    )
                    result.refunds += 1
                    open_orders.remove((order_id, total))
                elif roll < 0.6:
                    ship_order(ctx, order_id=order_id)
                    clock.advance(minutes=1)
                    complete_order(ctx, order_id=order_id)
                    open_orders.remove((order_id, total))
            except DomainError:
                open_orders.remove((order_id, total))
        if day % 7 == 6:
            settled = run_settlement(ctx)
            for key, value in settled.items():
                if isinstance(value, int):
                    result.settlement[key] = result.settlement.get(key, 0) + value
            result.withdrawals += _withdraw_some(ctx, result.members, rng)
        if progress:
            progress("days", day + 1, days)
    return result


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
