"""Members, catalog and tiers on both databases: CRUD, paging and filters, identity
uniqueness, tags, the relationship stage, member prices and upgrades through paid orders."""

from __future__ import annotations

from typing import Any

import pytest

from shequn.catalog.service import create_product, get_product, list_products, update_product
from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.errors import Conflict, DomainError, InvalidInput, NotFound
from shequn.events.service import list_events
from shequn.flows.registration import create_member
from shequn.flows.settings import update_settings
from shequn.flows.tiers import create_tier, list_tiers, update_tier
from shequn.members.service import get_member, list_members, update_member
from shequn.orders.creation import create_order
from shequn.orders.refunds import refund_order
from tests import factories as f


def events_of(ctx: Ctx, type_: str, subject_id: str | None = None) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        return [
            {"subject_id": e["subject_id"], "actor": e["actor"], "payload": e["payload"]}
            for e in list_events(tx, tenant_id=ctx.tenant_id, type=type_, subject_id=subject_id)
        ]


def all_members(ctx: Ctx) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = list_members(ctx, limit=500)["items"]
    return items


def quote(ctx: Ctx, buyer: str, sku: str = "CORE-1", quantity: int = 1) -> tuple[int, int, int]:
    order, _ = create_order(ctx, buyer_id=buyer, lines=[{"sku": sku, "quantity": quantity}])
    return order["subtotal_fen"], order["discount_fen"], order["total_fen"]


# --- members ---------------------------------------------------------------------------------


def test_create_and_get_a_member(ctx: Ctx) -> None:
    created = create_member(
        ctx,
        name="  王  小美 ",
        phone="+86 138-1234-5678",
        external_id="  wx-openid-9 ",
        tags=["高净值", "  宝妈 ", "高净值", "skin  care"],
    )
    assert created["id"].startswith("mem_")
    fetched = get_member(ctx, member_id=created["id"])
    assert fetched == created
    assert {k: v for k, v in fetched.items() if k not in ("id",)} == {
        "name": "王 小美",
        "phone": "+8613812345678",
        "external_id": "wx-openid-9",
        "tier_id": None,
        "referrer_id": None,
        "ancestors": [],
        "binding_source": None,
        "bound_at": None,
        "direct_count": 0,
        "team_count": 0,
        "paid_order_count": 0,
        "paid_total_fen": 0,
        "referred_buyer_count": 0,
        "stage": "customer",
        "tags": sorted(["高净值", "宝妈", "skin care"]),
        "anonymised_at": None,
        "created_at": ctx.clock.now(),
    }
    assert events_of(ctx, "MemberRegistered", created["id"]) == [
        {
            "subject_id": created["id"],
            "actor": "test",
            "payload": {"named_referrer_id": None, "source": "share_link"},
        }
    ]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"name": "   "}, "member_name_invalid"),
        ({"name": "名" * 81}, "member_name_invalid"),
        ({"phone": "12345"}, "phone_invalid"),
        ({"external_id": "   "}, "external_id_invalid"),
        ({"external_id": "e" * 81}, "external_id_invalid"),
        ({"tags": ["ok", " "]}, "tag_invalid"),
        ({"tags": [f"t{i}" for i in range(51)]}, "too_many_tags"),
        ({"tier_id": "tier_missing"}, "tier_not_found"),
    ],
)
def test_bad_member_input_is_refused_and_nothing_is_created(
    ctx: Ctx, fields: dict[str, Any], code: str
) -> None:
    with pytest.raises(DomainError) as caught:
        create_member(ctx, **{"name": "会员", **fields})
    assert caught.value.code == code
    assert all_members(ctx) == []
    assert events_of(ctx, "MemberRegistered") == []


def test_fifty_distinct_tags_are_allowed_after_deduplication(ctx: Ctx) -> None:
    tags = [f"t{i:02d}" for i in range(50)]
    member = create_member(ctx, name="会员", tags=[*tags, " t00 ", "t01"])
    assert member["tags"] == tags


def test_duplicate_phone_or_external_id_is_a_conflict(ctx: Ctx) -> None:
    first = create_member(ctx, name="甲", phone="13812345678", external_id="ext-1")
    before = all_members(ctx)
    with pytest.raises(Conflict) as caught:
        create_member(ctx, name="乙", phone="+86 138 1234 5678")
    assert (caught.value.code, caught.value.params) == ("phone_taken", {"phone": "+8613812345678"})
    with pytest.raises(Conflict) as caught:
        create_member(ctx, name="丙", external_id=" ext-1 ")
    assert (caught.value.code, caught.value.params) == (
        "external_id_taken",
        {"external_id": "ext-1"},
    )
    # registering oneself under one's own link (the referrer has this phone) says so
    with pytest.raises(InvalidInput) as refused:
        create_member(ctx, name="自己", phone="138-1234-5678", referrer_id=first["id"])
    assert refused.value.code == "self_referral"
    assert all_members(ctx) == before


def test_the_same_phone_may_exist_in_another_tenant(ctx: Ctx) -> None:
    from shequn.tenancy.service import create_tenant

    create_member(ctx, name="甲", phone="13812345678")
    other_id, _ = create_tenant(db=ctx.db, clock=ctx.clock, name="别家")
    other = Ctx(db=ctx.db, clock=ctx.clock, tenant_id=other_id, actor="test")
    assert create_member(other, name="甲", phone="13812345678")["phone"] == "+8613812345678"
    with pytest.raises(NotFound):
        get_member(other, member_id=all_members(ctx)[0]["id"])


def test_list_pages_by_id_oldest_first(ctx: Ctx) -> None:
    ids = [f.member(ctx, f"会员{i}") for i in range(5)]
    first = list_members(ctx, limit=2)
    second = list_members(ctx, limit=2, after=first["next_after"])
    third = list_members(ctx, limit=2, after=second["next_after"])
    assert [[m["id"] for m in page["items"]] for page in (first, second, third)] == [
        ids[0:2],
        ids[2:4],
        ids[4:5],
    ]
    assert (first["next_after"], second["next_after"], third["next_after"]) == (
        ids[1],
        ids[3],
        None,
    )
    exact = list_members(ctx, limit=5)
    assert (len(exact["items"]), exact["next_after"]) == (5, None)
    for limit in (0, 501):
        with pytest.raises(InvalidInput) as caught:
            list_members(ctx, limit=limit)
        assert (caught.value.code, caught.value.params) == (
            "limit_out_of_range",
            {"low": 1, "high": 500},
        )


def test_list_filters_by_tag_tier_and_referrer(ctx: Ctx) -> None:
    vip = create_tier(ctx, name="VIP", rank=1)
    boss = f.member(ctx, "老大", tags=["团长"])
    a = f.member(ctx, "A", referrer=boss, tags=["宝妈", "活跃"], tier_id=vip["id"])
    b = f.member(ctx, "B", referrer=boss, tags=["宝妈"])
    c = f.member(ctx, "C", referrer=a, tier_id=vip["id"])

    def ids(**filters: Any) -> list[str]:
        return [m["id"] for m in list_members(ctx, **filters)["items"]]

    assert ids(tag="宝妈") == [a, b]
    assert ids(tag="活跃") == [a]
    assert ids(tag="无此标签") == []
    assert ids(tier_id=vip["id"]) == [a, c]
    assert ids(referrer_id=boss) == [a, b]
    assert ids(referrer_id=a) == [c]
    assert ids(tag="宝妈", tier_id=vip["id"], referrer_id=boss) == [a]
    page = list_members(ctx, tag="宝妈", limit=1)
    assert ([m["id"] for m in page["items"]], page["next_after"]) == ([a], a)


def test_a_member_is_found_by_phone_or_by_the_id_of_another_system(ctx: Ctx) -> None:
    wanted = f.member(ctx, "要找的人", phone="+86 138 1234 5678", external_id="wx-openid-1")
    f.member(ctx, "别人", phone="139 0000 0009", external_id="wx-openid-2")

    def ids(**filters: Any) -> list[str]:
        return [m["id"] for m in list_members(ctx, **filters)["items"]]

    # any spelling the registration accepts finds the same member
    assert ids(phone="138-1234-5678") == [wanted]
    assert ids(phone="008613812345678") == [wanted]
    assert ids(external_id=" wx-openid-1 ") == [wanted]
    assert ids(phone="13812345678", external_id="wx-openid-2") == []
    assert ids(phone="13700000000") == []
    with pytest.raises(InvalidInput) as refused:
        list_members(ctx, phone="not a phone")
    assert refused.value.code == "phone_invalid"


def test_update_profile_and_tags(ctx: Ctx, clock: ManualClock) -> None:
    member = f.member(ctx, "旧名", tags=["a", "b"])
    clock.advance(hours=1)
    updated = update_member(
        ctx,
        member_id=member,
        name=" 新名 ",
        phone="139 0000 0001",
        external_id="crm-77",
        tags=["c", " c ", "d"],
    )
    assert {k: updated[k] for k in ("name", "phone", "external_id", "tags")} == {
        "name": "新名",
        "phone": "+8613900000001",
        "external_id": "crm-77",
        "tags": ["c", "d"],
    }
    assert get_member(ctx, member_id=member) == updated
    assert events_of(ctx, "MemberUpdated", member) == [
        {
            "subject_id": member,
            "actor": "test",
            "payload": {"fields": ["external_id", "name", "phone", "tags"]},
        }
    ]
    # an empty list clears the tags; omitting tags keeps them
    assert update_member(ctx, member_id=member, tags=[])["tags"] == []
    update_member(ctx, member_id=member, tags=["e"])
    assert update_member(ctx, member_id=member, name="又改")["tags"] == ["e"]
    # keeping one's own phone is not a duplicate
    assert update_member(ctx, member_id=member, phone="+8613900000001")["phone"] == "+8613900000001"


def test_update_refuses_another_members_identity_and_changes_nothing(ctx: Ctx) -> None:
    f.member(ctx, "甲", phone="13900000001", external_id="crm-1")
    other = f.member(ctx, "乙", phone="13900000002", tags=["x"])
    before = get_member(ctx, member_id=other)
    with pytest.raises(Conflict) as caught:
        update_member(ctx, member_id=other, name="改名", phone="139-0000-0001", tags=["y"])
    assert (caught.value.code, caught.value.params) == ("phone_taken", {"phone": "+8613900000001"})
    with pytest.raises(Conflict) as caught:
        update_member(ctx, member_id=other, external_id="crm-1")
    assert caught.value.code == "external_id_taken"
    with pytest.raises(InvalidInput) as invalid:
        update_member(ctx, member_id=other, phone="not a phone")
    assert invalid.value.code == "phone_invalid"
    with pytest.raises(NotFound) as missing:
        update_member(ctx, member_id="mem_missing", name="x")
    assert (missing.value.code, missing.value.params) == ("member_not_found", {"id": "mem_missing"})
    assert get_member(ctx, member_id=other) == before
    assert events_of(ctx, "MemberUpdated") == []


def test_manual_tier_change_is_audited(ctx: Ctx) -> None:
    vip = create_tier(ctx, name="VIP", rank=1)
    member = f.member(ctx)
    # without set_tier the tier argument is ignored
    assert update_member(ctx, member_id=member, tier_id=vip["id"])["tier_id"] is None
    assert (
        update_member(ctx, member_id=member, tier_id=vip["id"], set_tier=True)["tier_id"]
        == (vip["id"])
    )
    assert update_member(ctx, member_id=member, tier_id=None, set_tier=True)["tier_id"] is None
    assert [e["payload"] for e in events_of(ctx, "MemberTierChanged", member)] == [
        {"from": None, "to": vip["id"], "reason": "manual"},
        {"from": vip["id"], "to": None, "reason": "manual"},
    ]
    with pytest.raises(NotFound) as caught:
        update_member(ctx, member_id=member, tier_id="tier_missing", set_tier=True)
    assert caught.value.code == "tier_not_found"


def test_relationship_stage_follows_paid_orders_and_referred_buyers(ctx: Ctx) -> None:
    f.product(ctx, price_fen=1_000)
    referrer = f.member(ctx, "推荐人")
    buyer = f.member(ctx, "买家", referrer=referrer)

    def stage(member: str) -> str:
        found: str = get_member(ctx, member_id=member)["stage"]
        return found

    stages = [stage(buyer)]
    for _ in range(3):
        f.paid_order(ctx, buyer)
        stages.append(stage(buyer))
    assert stages == ["customer", "customer", "user", "fan"]
    referrer_view = get_member(ctx, member_id=referrer)
    assert (referrer_view["referred_buyer_count"], referrer_view["stage"]) == (1, "friend")
    # an unpaid order is not a fact yet
    other = f.member(ctx, "未付款", referrer=referrer)
    create_order(ctx, buyer_id=other, lines=[{"sku": "CORE-1", "quantity": 1}])
    assert get_member(ctx, member_id=referrer)["referred_buyer_count"] == 1


def test_stage_criteria_are_configurable_per_tenant(ctx: Ctx) -> None:
    f.product(ctx, price_fen=1_000)
    buyer = f.member(ctx)
    f.paid_order(ctx, buyer)
    assert get_member(ctx, member_id=buyer)["stage"] == "customer"
    update_settings(ctx, patch={"stage_criteria": {"user_min_paid_orders": 1}})
    assert get_member(ctx, member_id=buyer)["stage"] == "user"
    update_settings(ctx, patch={"stage_criteria": {"fan_min_paid_orders": 1}})
    assert [m["stage"] for m in all_members(ctx)] == ["fan"]


def test_a_referred_buyer_is_counted_once_after_refund_and_rebuy(ctx: Ctx) -> None:
    f.product(ctx, price_fen=1_000)
    referrer = f.member(ctx, "推荐人")
    buyer = f.member(ctx, "买家", referrer=referrer)
    order = f.paid_order(ctx, buyer)
    refund_order(ctx, order_id=order["id"], amount_fen=order["total_fen"], reason="退货")
    f.paid_order(ctx, buyer)
    assert get_member(ctx, member_id=referrer)["referred_buyer_count"] == 1


# --- catalog ---------------------------------------------------------------------------------


def test_create_get_and_list_products(ctx: Ctx) -> None:
    vip = create_tier(ctx, name="VIP", rank=1)
    created = create_product(
        ctx,
        sku="CORE-1",
        name=" 精华液  30ml ",
        price_fen=29_900,
        ladder_role="core",
        category="护肤",
        tier_prices=[{"tier_id": vip["id"], "member_price_fen": 25_900}],
    )
    assert get_product(ctx, sku="CORE-1") == created
    assert {k: v for k, v in created.items() if k != "id"} == {
        "sku": "CORE-1",
        "name": "精华液 30ml",
        "price_fen": 29_900,
        "ladder_role": "core",
        "category": "护肤",
        "active": True,
        "tier_prices": [
            {"tier_id": vip["id"], "member_price_fen": 25_900, "wholesale_price_fen": None}
        ],
        "created_at": ctx.clock.now(),
    }
    f.product(ctx, sku="BAIT-1", price_fen=990, ladder_role="bait", category="试用")
    f.product(ctx, sku="PKG-1", price_fen=99_900, ladder_role="partner", active=False)

    def skus(**filters: Any) -> list[str]:
        return [p["sku"] for p in list_products(ctx, **filters)]

    assert skus() == ["BAIT-1", "CORE-1", "PKG-1"]
    assert skus(ladder_role="bait") == ["BAIT-1"]
    assert skus(category="护肤") == ["CORE-1"]
    assert skus(active=True) == ["BAIT-1", "CORE-1"]
    assert skus(active=False) == ["PKG-1"]
    with pytest.raises(InvalidInput) as caught:
        list_products(ctx, ladder_role="agent")
    assert caught.value.code == "ladder_role_invalid"
    assert [e["payload"] for e in events_of(ctx, "ProductCreated", created["id"])] == [
        {"sku": "CORE-1", "price_fen": 29_900}
    ]


def test_duplicate_sku_is_a_conflict(ctx: Ctx) -> None:
    f.product(ctx, sku="CORE-1", price_fen=100)
    with pytest.raises(Conflict) as caught:
        f.product(ctx, sku="CORE-1", price_fen=200)
    assert (caught.value.code, caught.value.params) == ("sku_taken", {"sku": "CORE-1"})
    assert [(p["sku"], p["price_fen"]) for p in list_products(ctx)] == [("CORE-1", 100)]
    # skus are case-sensitive identifiers
    assert f.product(ctx, sku="core-1")["sku"] == "core-1"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"sku": "bad sku"}, "sku_invalid"),
        ({"name": "  "}, "product_name_invalid"),
        ({"price_fen": -1}, "amount_invalid"),
        ({"price_fen": 9.9}, "amount_invalid"),
        ({"ladder_role": "vip"}, "ladder_role_invalid"),
        ({"category": " "}, "category_invalid"),
        ({"tier_prices": [{"tier_id": "tier_missing", "member_price_fen": 1}]}, "tier_not_found"),
        ({"tier_prices": "VIP-TWICE"}, "tier_price_duplicate"),
        ({"tier_prices": "VIP-NEGATIVE"}, "amount_invalid"),
    ],
)
def test_bad_products_are_refused_and_nothing_is_created(
    ctx: Ctx, fields: dict[str, Any], code: str
) -> None:
    vip = create_tier(ctx, name="VIP", rank=1)
    if fields.get("tier_prices") == "VIP-TWICE":
        fields = {"tier_prices": [{"tier_id": vip["id"]}, {"tier_id": vip["id"]}]}
    elif fields.get("tier_prices") == "VIP-NEGATIVE":
        fields = {"tier_prices": [{"tier_id": vip["id"], "member_price_fen": -5}]}
    values: dict[str, Any] = {
        "sku": "CORE-1",
        "name": "商品",
        "price_fen": 1_000,
        "ladder_role": "core",
        **fields,
    }
    with pytest.raises(DomainError) as caught:
        create_product(ctx, **values)
    assert caught.value.code == code
    assert list_products(ctx) == []
    assert events_of(ctx, "ProductCreated") == []


def test_sku_with_a_trailing_newline_is_refused(ctx: Ctx) -> None:
    f.product(ctx, sku="CORE-1")
    with pytest.raises(InvalidInput) as refused:
        f.product(ctx, sku="CORE-1\n")
    assert refused.value.code == "sku_invalid"
    assert [p["sku"] for p in list_products(ctx)] == ["CORE-1"]


def test_member_price_above_list_price_is_refused(ctx: Ctx) -> None:
    vip = create_tier(ctx, name="VIP", rank=1)
    with pytest.raises(DomainError) as refused:
        f.product(
            ctx,
            sku="EXP",
            price_fen=100,
            tier_prices=[{"tier_id": vip["id"], "member_price_fen": 150}],
        )
    assert refused.value.code == "tier_price_above_list"
    assert list_products(ctx) == []


def test_lowering_the_list_price_below_a_tier_price_is_refused(ctx: Ctx) -> None:
    vip = create_tier(ctx, name="VIP", rank=1)
    before = f.product(
        ctx, sku="EXP", price_fen=100, tier_prices=[{"tier_id": vip["id"], "member_price_fen": 90}]
    )
    with pytest.raises(InvalidInput) as refused:
        update_product(ctx, sku="EXP", price_fen=80)
    assert refused.value.code == "tier_price_above_list"
    with pytest.raises(InvalidInput):
        update_product(
            ctx, sku="EXP", tier_prices=[{"tier_id": vip["id"], "wholesale_price_fen": 101}]
        )
    assert list_products(ctx) == [before]


def test_update_product_and_its_tier_prices(ctx: Ctx) -> None:
    vip = create_tier(ctx, name="VIP", rank=1)
    svip = create_tier(ctx, name="SVIP", rank=2)
    f.product(ctx, sku="CORE-1", price_fen=10_000)
    updated = update_product(
        ctx,
        sku="CORE-1",
        name="新名字",
        price_fen=12_000,
        ladder_role="partner",
        category="套装",
        tier_prices=[
            {"tier_id": vip["id"], "member_price_fen": 11_000},
            {"tier_id": svip["id"], "member_price_fen": 10_000, "wholesale_price_fen": 6_000},
        ],
    )
    assert {k: updated[k] for k in ("name", "price_fen", "ladder_role", "category", "active")} == {
        "name": "新名字",
        "price_fen": 12_000,
        "ladder_role": "partner",
        "category": "套装",
        "active": True,
    }
    assert sorted(
        (tp["tier_id"], tp["member_price_fen"], tp["wholesale_price_fen"])
        for tp in updated["tier_prices"]
    ) == sorted([(vip["id"], 11_000, None), (svip["id"], 10_000, 6_000)])
    assert [e["payload"] for e in events_of(ctx, "ProductChanged")] == [
        {"fields": ["category", "ladder_role", "name", "price_fen", "tier_prices"]}
    ]
    # tier prices are replaced as a set
    replaced = update_product(
        ctx, sku="CORE-1", tier_prices=[{"tier_id": svip["id"], "member_price_fen": 9_000}]
    )
    assert replaced["tier_prices"] == [
        {"tier_id": svip["id"], "member_price_fen": 9_000, "wholesale_price_fen": None}
    ]
    assert update_product(ctx, sku="CORE-1", active=False)["active"] is False
    assert get_product(ctx, sku="CORE-1")["tier_prices"] == replaced["tier_prices"]

    before = get_product(ctx, sku="CORE-1")
    for fields, code in (
        ({"colour": "red"}, "field_unknown"),
        ({"price_fen": -1}, "amount_invalid"),
        ({"tier_prices": [{"tier_id": "tier_missing"}]}, "tier_not_found"),
    ):
        with pytest.raises(DomainError) as caught:
            update_product(ctx, sku="CORE-1", **fields)
        assert caught.value.code == code
    with pytest.raises(NotFound) as missing:
        update_product(ctx, sku="NOPE", name="x")
    assert (missing.value.code, missing.value.params) == ("product_not_found", {"sku": "NOPE"})
    assert get_product(ctx, sku="CORE-1") == before


def test_an_inactive_product_cannot_be_ordered(ctx: Ctx) -> None:
    buyer = f.member(ctx)
    f.product(ctx, active=False)
    with pytest.raises(Conflict) as caught:
        create_order(ctx, buyer_id=buyer, lines=[{"sku": "CORE-1", "quantity": 1}])
    assert (caught.value.code, caught.value.params) == ("product_inactive", {"sku": "CORE-1"})


# --- tiers -----------------------------------------------------------------------------------


def test_tiers_are_listed_by_rank_with_member_counts(ctx: Ctx) -> None:
    partner = create_tier(ctx, name="合伙人", rank=3, discount_bp=2_000, may_distribute=True)
    member_tier = create_tier(ctx, name="会员", rank=1)
    vip = create_tier(
        ctx,
        name=" V I P ",
        rank=2,
        discount_bp=1_000,
        criteria={"kind": "spend", "min_fen": 50_000},
    )
    f.member(ctx, tier_id=vip["id"])
    f.member(ctx, tier_id=vip["id"])
    f.member(ctx, tier_id=partner["id"])
    f.member(ctx)
    listed = list_tiers(ctx)
    assert [(t["id"], t["name"], t["rank"], t["member_count"]) for t in listed] == [
        (member_tier["id"], "会员", 1, 0),
        (vip["id"], "V I P", 2, 2),
        (partner["id"], "合伙人", 3, 1),
    ]
    assert {k: v for k, v in vip.items() if k not in ("id",)} == {
        "name": "V I P",
        "rank": 2,
        "criteria": {"kind": "spend", "min_fen": 50_000, "window_days": None},
        "privileges": {
            "discount_bp": 1_000,
            "points_multiplier_bp": 10_000,
            "may_distribute": False,
            "service_tags": [],
        },
        "demotion": {"mode": "never", "buffer_bp": None, "hold_days": None},
        "created_at": ctx.clock.now(),
        "member_count": 0,
    }
    assert [e["payload"] for e in events_of(ctx, "TierCreated", vip["id"])] == [
        {"name": "V I P", "rank": 2}
    ]


@pytest.mark.parametrize(
    ("fields", "code", "error"),
    [
        ({"name": "VIP", "rank": 5}, "tier_exists", Conflict),  # same name
        ({"name": "其他", "rank": 1}, "tier_exists", Conflict),  # same rank
        ({"name": " ", "rank": 5}, "tier_name_invalid", InvalidInput),
        ({"name": "X", "rank": -1}, "tier_rank_invalid", InvalidInput),
        ({"name": "X", "rank": 1_001}, "tier_rank_invalid", InvalidInput),
        ({"name": "X", "rank": 5, "discount_bp": 9_001}, "tier_discount_invalid", InvalidInput),
        (
            {"name": "X", "rank": 5, "criteria": {"kind": "spend", "min_fen": 0}},
            "tier_criterion_invalid",
            InvalidInput,
        ),
        (
            {"name": "X", "rank": 5, "criteria": {"kind": "bought", "sku": "NOPE"}},
            "product_not_found",
            NotFound,
        ),
        ({"name": "X", "rank": 5, "colour": "gold"}, "field_unknown", InvalidInput),
    ],
)
def test_bad_tiers_are_refused(
    ctx: Ctx, fields: dict[str, Any], code: str, error: type[DomainError]
) -> None:
    create_tier(ctx, name="VIP", rank=1)
    with pytest.raises(error) as caught:
        create_tier(ctx, **fields)
    assert caught.value.code == code
    assert [t["name"] for t in list_tiers(ctx)] == ["VIP"]


def test_update_tier(ctx: Ctx) -> None:
    vip = create_tier(ctx, name="VIP", rank=1)
    create_tier(ctx, name="SVIP", rank=2)
    single = {"kind": "single_order", "min_fen": 9_900, "window_days": None}
    updated = update_tier(ctx, tier_id=vip["id"], discount_bp=500, criteria=single)
    assert (updated["privileges"]["discount_bp"], updated["criteria"]) == (500, single)
    with pytest.raises(Conflict) as conflict:
        update_tier(ctx, tier_id=vip["id"], rank=2)
    assert conflict.value.code == "tier_exists"
    with pytest.raises(NotFound) as missing:
        update_tier(ctx, tier_id="tier_missing", discount_bp=1)
    assert missing.value.code == "tier_not_found"
    assert [(t["name"], t["rank"], t["privileges"]["discount_bp"]) for t in list_tiers(ctx)] == [
        ("VIP", 1, 500),
        ("SVIP", 2, 0),
    ]


def test_upgrade_on_cumulative_paid_spend(ctx: Ctx) -> None:
    spend = {"kind": "spend", "min_fen": 25_000}
    vip = create_tier(ctx, name="VIP", rank=1, discount_bp=1_000, criteria=spend)
    f.product(ctx, price_fen=10_000)
    buyer = f.member(ctx)

    first = f.paid_order(ctx, buyer)
    second = f.paid_order(ctx, buyer)
    assert get_member(ctx, member_id=buyer)["tier_id"] is None
    # an unpaid order counts for nothing
    create_order(ctx, buyer_id=buyer, lines=[{"sku": "CORE-1", "quantity": 1}])
    assert get_member(ctx, member_id=buyer)["tier_id"] is None

    third = f.paid_order(ctx, buyer)  # 30 000 ≥ 25 000

    assert get_member(ctx, member_id=buyer)["tier_id"] == vip["id"]
    assert [o["total_fen"] for o in (first, second, third)] == [10_000, 10_000, 10_000]
    assert [e["payload"] for e in events_of(ctx, "MemberTierChanged", buyer)] == [
        {
            "from": None,
            "to": vip["id"],
            "reason": "upgrade",
            "source": "payment",
            "cause": {
                "tier_id": vip["id"],
                "criteria": {
                    **spend,
                    "window_days": None,
                    "value": 30_000,
                    "threshold": 25_000,
                    "met": True,
                },
            },
        }
    ]
    paid_events = events_of(ctx, "OrderPaid")
    assert [e["payload"]["tier_upgraded_to"] for e in paid_events] == [None, None, vip["id"]]
    # from now on the member sees the tier price
    assert quote(ctx, buyer) == (10_000, 1_000, 9_000)


def test_upgrade_on_a_single_order_amount(ctx: Ctx) -> None:
    big = create_tier(
        ctx, name="大客户", rank=1, criteria={"kind": "single_order", "min_fen": 30_000}
    )
    f.product(ctx, price_fen=10_000)
    buyer = f.member(ctx)
    for _ in range(4):
        f.paid_order(ctx, buyer)  # 40 000 in total, but never 30 000 at once
    assert get_member(ctx, member_id=buyer)["tier_id"] is None
    f.paid_order(ctx, buyer, quantity=3)
    assert get_member(ctx, member_id=buyer)["tier_id"] == big["id"]


def test_upgrade_on_buying_the_partner_package_skips_tiers(ctx: Ctx) -> None:
    f.product(ctx, sku="CORE-1", price_fen=10_000)
    f.product(ctx, sku="PKG-1", price_fen=99_900, ladder_role="partner")
    create_tier(ctx, name="VIP", rank=1, criteria={"kind": "spend", "min_fen": 50_000})
    partner = create_tier(ctx, name="合伙人", rank=2, criteria={"kind": "bought", "sku": "PKG-1"})
    buyer = f.member(ctx)
    f.paid_order(ctx, buyer, sku="CORE-1")
    assert get_member(ctx, member_id=buyer)["tier_id"] is None
    f.paid_order(ctx, buyer, sku="PKG-1")  # also passes VIP's 50 000; the higher tier wins
    assert get_member(ctx, member_id=buyer)["tier_id"] == partner["id"]
    assert [e["payload"]["to"] for e in events_of(ctx, "MemberTierChanged", buyer)] == [
        partner["id"]
    ]


def test_upgrades_never_move_a_member_down(ctx: Ctx) -> None:
    create_tier(ctx, name="VIP", rank=1, criteria={"kind": "spend", "min_fen": 1_000})
    top = create_tier(ctx, name="总代", rank=5)  # assigned by hand only
    f.product(ctx, price_fen=10_000)
    buyer = f.member(ctx, tier_id=top["id"])
    f.paid_order(ctx, buyer)
    assert get_member(ctx, member_id=buyer)["tier_id"] == top["id"]
    assert events_of(ctx, "MemberTierChanged", buyer) == []


def test_changed_criteria_apply_to_the_next_payment(ctx: Ctx) -> None:
    vip = create_tier(ctx, name="VIP", rank=1, criteria={"kind": "spend", "min_fen": 1_000_000})
    f.product(ctx, price_fen=10_000)
    buyer = f.member(ctx)
    f.paid_order(ctx, buyer)
    assert get_member(ctx, member_id=buyer)["tier_id"] is None
    update_tier(ctx, tier_id=vip["id"], criteria={"kind": "spend", "min_fen": 20_000})
    f.paid_order(ctx, buyer)
    assert get_member(ctx, member_id=buyer)["tier_id"] == vip["id"]


def test_price_seen_by_each_tier(ctx: Ctx) -> None:
    vip = create_tier(ctx, name="VIP", rank=1, discount_bp=1_500)
    partner = create_tier(ctx, name="合伙人", rank=2, discount_bp=3_000)
    f.product(
        ctx,
        sku="CORE-1",
        price_fen=19_990,
        tier_prices=[{"tier_id": partner["id"], "member_price_fen": 12_000}],
    )
    f.product(ctx, sku="BAIT-1", price_fen=999, ladder_role="bait")
    plain = f.member(ctx, "普通")
    vip_member = f.member(ctx, "VIP", tier_id=vip["id"])
    partner_member = f.member(ctx, "合伙人", tier_id=partner["id"])

    assert quote(ctx, plain, quantity=2) == (39_980, 0, 39_980)
    # 19 990 × 15 % = 2 998.5 → the discount is floored to 2 998 per unit
    assert quote(ctx, vip_member, quantity=2) == (39_980, 5_996, 33_984)
    # an explicit member price wins over the tier discount
    assert quote(ctx, partner_member, quantity=2) == (39_980, 15_980, 24_000)
    # without an explicit price the partner gets the tier discount: 999 × 30 % = 299.7 → 299
    assert quote(ctx, partner_member, sku="BAIT-1") == (999, 299, 700)

    # a changed discount is seen by the next order
    update_tier(ctx, tier_id=vip["id"], discount_bp=500)
    assert quote(ctx, vip_member) == (19_990, 999, 18_991)


def test_clearing_tier_prices_is_named_in_the_event(ctx: Ctx) -> None:
    vip = create_tier(ctx, name="VIP", rank=1)
    product = f.product(ctx, tier_prices=[{"tier_id": vip["id"], "member_price_fen": 1}])
    assert update_product(ctx, sku="CORE-1", tier_prices=[])["tier_prices"] == []
    assert [e["payload"] for e in events_of(ctx, "ProductChanged", product["id"])] == [
        {"fields": ["tier_prices"]}
    ]
