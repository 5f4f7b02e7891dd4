"""Growth's pure rules: reward caps and amounts, coupon terms and stacking, fraud checks,
points lots, days of cover and buybacks, share codes; with hypothesis properties for points
(never negative, spent and expired oldest first) and an order's discounts (never above its
subtotal, commissions computed on what each line paid)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shequn.errors import Conflict, InvalidInput
from shequn.growth.coupons.rules import (
    CouponKind,
    CouponScope,
    CouponTerms,
    OrderLine,
    UsableCoupon,
    check_usable,
    coupon_discount,
    price_order,
    validate_template,
    validity,
)
from shequn.growth.holds.rules import (
    Identity,
    Reason,
    clean_decision_reason,
    fingerprint,
    hold_reasons,
    pair_reasons,
    too_fast,
)
from shequn.growth.links.rules import clean_state, clean_target, is_code, new_code
from shequn.growth.points.rules import (
    Lot,
    allocate_spend,
    earned_points,
    points_for_fen,
    restore_target,
    spendable,
    take_back,
)
from shequn.growth.settings.rules import GrowthSettings, share_url, validate_patch
from shequn.growth.sharing.rules import (
    RewardKind,
    local_month_start,
    money_reward,
    still_due,
    validate_program,
    within_caps,
)
from shequn.growth.stock.rules import (
    StockLot,
    check_cover,
    cover_tenths,
    monthly_sales,
    quote_buyback,
    shown_days,
)
from shequn.money import apply_rate

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


# --- sharing rewards -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "month", "per_day", "per_month", "allowed"),
    [
        (0, 0, None, None, True),
        (2, 2, 3, None, True),
        (3, 3, 3, None, False),  # the day's cap reached
        (0, 9, 3, 10, True),
        (0, 10, 3, 10, False),  # the month's cap reached on a new day
        (5, 5, None, 6, True),
    ],
)
def test_reward_caps_per_day_and_month(
    today: int, month: int, per_day: int | None, per_month: int | None, allowed: bool
) -> None:
    assert (
        within_caps(today=today, this_month=month, cap_per_day=per_day, cap_per_month=per_month)
        is allowed
    )


def test_the_month_of_a_cap_is_the_tenants_local_month() -> None:
    # 2026-05-31 20:00 UTC is already June 1st in Shanghai
    at = datetime(2026, 5, 31, 20, tzinfo=UTC)
    assert local_month_start(at, "Asia/Shanghai") == datetime(2026, 5, 31, 16, tzinfo=UTC)
    assert local_month_start(at, "UTC") == datetime(2026, 5, 1, tzinfo=UTC)


def test_money_rewards_are_on_what_the_order_paid_and_shrink_with_a_refund() -> None:
    assert (
        money_reward(RewardKind.CASHBACK, paid_fen=9_900, cashback_bp=1_000, amount_fen=None) == 990
    )
    assert money_reward(RewardKind.FIXED, paid_fen=9_900, cashback_bp=None, amount_fen=500) == 500
    assert money_reward(RewardKind.POINTS, paid_fen=9_900, cashback_bp=None, amount_fen=None) == 0
    assert still_due(990, base_fen=9_900, remaining_fen=9_900) == 990
    assert still_due(990, base_fen=9_900, remaining_fen=4_950) == 495
    assert still_due(990, base_fen=9_900, remaining_fen=0) == 0


def test_a_program_names_exactly_what_its_reward_needs() -> None:
    ok = validate_program({"name": "返现", "sharer_reward": "cashback", "cashback_bp": 500})
    assert ok["cashback_bp"] == 500
    assert ok["first_order_only"] is True
    with pytest.raises(InvalidInput) as missing:
        validate_program({"name": "返现", "sharer_reward": "cashback"})
    assert missing.value.code == "program_field_required"
    with pytest.raises(InvalidInput) as extra:
        validate_program({"name": "x", "sharer_reward": "fixed", "amount_fen": 1, "points": 5})
    assert extra.value.code == "program_field_unexpected"
    with pytest.raises(InvalidInput) as window:
        validate_program(
            {
                "name": "x",
                "sharer_reward": "points",
                "points": 5,
                "starts_at": NOW,
                "ends_at": NOW,
            }
        )
    assert window.value.code == "program_window_invalid"


# --- coupons -------------------------------------------------------------------------------


def _line(
    sku: str = "A", quantity: int = 1, price: int = 10_000, tier: int | None = None
) -> OrderLine:
    return OrderLine(
        sku=sku,
        category="care",
        ladder_role="core",
        quantity=quantity,
        list_price_fen=price,
        tier_price_fen=price if tier is None else tier,
    )


def _coupon(cid: str = "c1", **terms: object) -> UsableCoupon:
    return UsableCoupon(cid, CouponTerms(**terms))  # type: ignore[arg-type]


def test_coupon_discounts_amount_percent_cap_and_minimum() -> None:
    amount = CouponTerms(kind=CouponKind.AMOUNT, amount_off_fen=1_000, min_spend_fen=5_000)
    assert coupon_discount(amount, 9_900) == 1_000
    assert coupon_discount(CouponTerms(kind=CouponKind.AMOUNT, amount_off_fen=1_000), 300) == 300
    with pytest.raises(Conflict) as short:
        coupon_discount(amount, 4_999)
    assert short.value.code == "coupon_min_spend"
    percent = CouponTerms(kind=CouponKind.PERCENT, percent_off_bp=2_000, max_discount_fen=1_500)
    assert coupon_discount(percent, 5_000) == 1_000
    assert coupon_discount(percent, 50_000) == 1_500


def test_a_coupon_that_does_not_stack_with_the_tier_price_takes_the_list_price() -> None:
    lines = [_line(price=10_000, tier=8_000)]
    stacked = price_order(lines, [_coupon(kind=CouponKind.AMOUNT, amount_off_fen=1_000)])
    assert stacked[0].total_fen == 7_000
    alone = price_order(
        lines,
        [_coupon(kind=CouponKind.AMOUNT, amount_off_fen=1_000, stack_with_tier_price=False)],
    )
    assert alone[0].unit_price_fen == 10_000
    assert alone[0].total_fen == 9_000


def test_a_coupon_that_does_not_stack_with_points_refuses_them() -> None:
    coupon = _coupon(kind=CouponKind.AMOUNT, amount_off_fen=100, stack_with_points=False)
    assert price_order([_line()], [coupon])[0].total_fen == 9_900
    with pytest.raises(Conflict) as refused:
        price_order([_line()], [coupon], points_fen=100)
    assert refused.value.code == "coupon_not_with_points"


def test_two_coupons_stack_and_each_takes_from_the_lines_in_its_scope() -> None:
    lines = [_line("A", 1, 6_000), _line("B", 2, 2_000)]
    everything = _coupon("c1", kind=CouponKind.AMOUNT, amount_off_fen=1_000)
    only_b = _coupon(
        "c2",
        kind=CouponKind.PERCENT,
        percent_off_bp=5_000,
        scope=CouponScope.PRODUCT,
        scope_values=frozenset({"B"}),
    )
    priced = price_order(lines, [everything, only_b])
    assert [p.coupon_fen.get("c1", 0) for p in priced] == [600, 400]
    assert [p.coupon_fen.get("c2", 0) for p in priced] == [0, 1_800]  # half of 3,600
    nowhere = _coupon(
        "c3",
        kind=CouponKind.AMOUNT,
        amount_off_fen=1,
        scope=CouponScope.PRODUCT,
        scope_values=frozenset({"Z"}),
    )
    with pytest.raises(Conflict) as refused:
        price_order(lines, [nowhere])
    assert refused.value.code == "coupon_not_applicable"


def test_points_are_capped_as_a_share_of_the_order() -> None:
    assert price_order([_line()], [], points_fen=5_000, points_cap_bp=5_000)[0].total_fen == 5_000
    with pytest.raises(Conflict) as over:
        price_order([_line()], [], points_fen=5_001, points_cap_bp=5_000)
    assert over.value.code == "points_over_cap"


def test_too_many_coupons_are_refused() -> None:
    coupons = [_coupon(f"c{i}", kind=CouponKind.AMOUNT, amount_off_fen=1) for i in range(6)]
    with pytest.raises(InvalidInput) as refused:
        price_order([_line()], coupons)
    assert refused.value.code == "coupons_too_many"


def test_a_coupon_is_usable_only_by_its_owner_while_available_and_valid() -> None:
    base: dict[str, Any] = {
        "coupon_id": "c",
        "owner_id": "m1",
        "buyer_id": "m1",
        "status": "available",
    }
    check_usable(**base, valid_from=NOW, valid_until=None, now=NOW)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"buyer_id": "m2"}, "coupon_not_owned"),
        ({"status": "used"}, "coupon_not_available"),
        ({"valid_from": NOW + timedelta(hours=1)}, "coupon_not_valid_now"),
        ({"valid_until": NOW}, "coupon_not_valid_now"),
    ]
    for change, code in cases:
        args = {**base, "valid_from": NOW, "valid_until": None, "now": NOW, **change}
        with pytest.raises(Conflict) as refused:
            check_usable(**args)
        assert refused.value.code == code


def test_validity_is_the_earlier_of_the_templates_end_and_the_days_after_issue() -> None:
    assert validity(issued_at=NOW, valid_from=None, valid_until=None, valid_days=7) == (
        NOW,
        NOW + timedelta(days=7),
    )
    end = NOW + timedelta(days=3)
    assert validity(issued_at=NOW, valid_from=None, valid_until=end, valid_days=7) == (NOW, end)


def test_a_template_is_validated() -> None:
    ok = validate_template({"name": "满减", "kind": "amount", "amount_off_fen": 100})
    assert ok["per_member_limit"] == 1
    assert ok["scope"] == "all"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "x", "kind": "amount"}, "coupon_field_invalid"),
        (
            {"name": "x", "kind": "percent", "percent_off_bp": 10, "amount_off_fen": 1},
            "coupon_field_invalid",
        ),
        (
            {"name": "x", "kind": "amount", "amount_off_fen": 1, "scope": "product"},
            "coupon_scope_values_mismatch",
        ),
        (
            {
                "name": "x",
                "kind": "amount",
                "amount_off_fen": 1,
                "scope": "ladder_role",
                "scope_values": ["vip"],
            },
            "coupon_field_invalid",
        ),
        (
            {
                "name": "x",
                "kind": "amount",
                "amount_off_fen": 1,
                "valid_from": NOW,
                "valid_until": NOW,
            },
            "coupon_validity_invalid",
        ),
    ]
    for fields, code in cases:
        with pytest.raises(InvalidInput) as refused:
            validate_template(fields)
        assert refused.value.code == code, fields


@settings(max_examples=200, deadline=None)
@given(
    prices=st.lists(
        st.tuples(st.integers(1, 50_000), st.integers(1, 50_000), st.integers(1, 5)),
        min_size=1,
        max_size=5,
    ),
    amount=st.integers(1, 200_000),
    percent=st.integers(1, 10_000),
    no_tier=st.booleans(),
    points_share=st.integers(0, 10_000),
    cap_bp=st.integers(0, 10_000),
    rate_bp=st.integers(0, 3_000),
)
def test_an_orders_discounts_never_exceed_its_subtotal_and_commissions_follow_what_was_paid(
    prices: list[tuple[int, int, int]],
    amount: int,
    percent: int,
    no_tier: bool,
    points_share: int,
    cap_bp: int,
    rate_bp: int,
) -> None:
    lines = [
        _line(f"S{i}", quantity, max(list_price, tier), min(list_price, tier))
        for i, (list_price, tier, quantity) in enumerate(prices)
    ]
    coupons = [
        _coupon(
            "a", kind=CouponKind.AMOUNT, amount_off_fen=amount, stack_with_tier_price=not no_tier
        ),
        _coupon("p", kind=CouponKind.PERCENT, percent_off_bp=percent),
    ]
    before_points = price_order(lines, coupons)
    left = sum(p.total_fen for p in before_points)
    points = min(apply_rate(left, points_share), apply_rate(left, cap_bp))
    priced = price_order(lines, coupons, points_fen=points, points_cap_bp=cap_bp)
    subtotal = sum(p.gross_fen for p in priced)
    discounts = sum(sum(p.coupon_fen.values()) + p.points_fen for p in priced)
    assert 0 <= discounts <= subtotal
    assert sum(p.points_fen for p in priced) == points
    for p in priced:
        assert p.total_fen >= 0
        assert p.total_fen == p.gross_fen - sum(p.coupon_fen.values()) - p.points_fen
        # a line's commission is on what its buyer pays, never on its price before discounts
        assert apply_rate(p.total_fen, rate_bp) <= apply_rate(p.gross_fen, rate_bp)
    paid = sum(p.total_fen for p in priced)
    assert paid == subtotal - discounts


# --- fraud checks --------------------------------------------------------------------------


def _who(member_id: str, **prints: set[str]) -> Identity:
    return Identity(member_id, {k: frozenset(v) for k, v in prints.items()})


def test_self_referral_by_phone_address_or_device_at_the_first_level() -> None:
    buyer = _who("b", device={"d1"})
    assert pair_reasons(buyer, _who("s", device={"d1"}), level=1) == [Reason.SELF_REFERRAL]
    assert pair_reasons(_who("b", phone={"p"}), _who("s", phone={"p"}), level=1) == [
        Reason.SELF_REFERRAL
    ]
    assert pair_reasons(_who("b", address={"a"}), _who("s", address={"a"}), level=1) == [
        Reason.SELF_REFERRAL
    ]
    assert pair_reasons(buyer, _who("b"), level=1) == [Reason.SELF_REFERRAL]  # the buyer itself
    assert pair_reasons(buyer, _who("s", device={"d2"}), level=1) == []


def test_linked_accounts_share_a_payment_account_or_deeper_a_device_or_address() -> None:
    assert pair_reasons(_who("b", payment={"x"}), _who("s", payment={"x"}), level=1) == [
        Reason.LINKED_ACCOUNTS
    ]
    assert pair_reasons(_who("b", device={"d"}), _who("u", device={"d"}), level=2) == [
        Reason.LINKED_ACCOUNTS
    ]
    assert pair_reasons(_who("b", phone={"p"}), _who("u", phone={"p"}), level=2) == []


def test_velocity_and_re_registration() -> None:
    assert not too_fast(4, 5)
    assert too_fast(5, 5)
    reasons = hold_reasons(
        _who("b"),
        _who("s"),
        level=1,
        velocity_count=9,
        velocity_limit=5,
        came_back=True,
        new_customer_reward=True,
    )
    assert reasons == [Reason.VELOCITY, Reason.RE_REGISTRATION]
    # coming back matters only for a new-customer reward
    assert (
        hold_reasons(
            _who("b"),
            _who("s"),
            level=1,
            velocity_count=0,
            velocity_limit=5,
            came_back=True,
            new_customer_reward=False,
        )
        == []
    )


def test_fingerprints_are_per_tenant_and_ignore_spacing_of_addresses() -> None:
    one = fingerprint("t1", "address", "上海市 浦东新区  世纪大道 1号")
    assert one == fingerprint("t1", "address", "上海市浦东新区世纪大道1号")
    assert one != fingerprint("t2", "address", "上海市浦东新区世纪大道1号")
    with pytest.raises(InvalidInput):
        clean_decision_reason("   ")


# --- points --------------------------------------------------------------------------------


def _lot(lot_id: str, remaining: int, days_ago: int, expiry_days: int = 365) -> Lot:
    earned = NOW - timedelta(days=days_ago)
    return Lot(lot_id, remaining, earned, earned + timedelta(days=expiry_days))


def test_points_are_earned_per_fen_times_the_tier_multiplier() -> None:
    assert earned_points(9_900, earn_bp=100, multiplier_bp=10_000) == 99
    assert earned_points(9_900, earn_bp=100, multiplier_bp=15_000) == 148
    assert points_for_fen(500, 5) == 100
    with pytest.raises(InvalidInput):
        points_for_fen(501, 5)


def test_points_are_spent_oldest_lot_first_and_expired_lots_are_not_spendable() -> None:
    lots = [_lot("l3", 50, 10), _lot("l1", 30, 400), _lot("l2", 40, 100)]
    assert [lot.id for lot in spendable(lots, NOW)] == ["l2", "l3"]  # l1 is past its date
    assert allocate_spend(lots, 60, NOW) == [("l2", 40), ("l3", 20)]
    with pytest.raises(Conflict) as short:
        allocate_spend(lots, 91, NOW)
    assert short.value.code == "insufficient_points"


def test_taking_back_and_restoring_points() -> None:
    lots = [_lot("a", 10, 50), _lot("b", 5, 10)]
    assert take_back(lots, 12, first="b") == [("b", 5), ("a", 7)]
    assert take_back(lots, 100) == [("a", 10), ("b", 5)]  # never below zero
    assert restore_target(100, refunded_fen=2_500, paid_fen=10_000, cancelled=False) == 25
    assert restore_target(100, refunded_fen=0, paid_fen=0, cancelled=True) == 100


@settings(max_examples=200, deadline=None)
@given(
    lots=st.lists(
        st.tuples(st.integers(0, 1_000), st.integers(0, 800), st.integers(1, 400)),
        min_size=1,
        max_size=8,
    ),
    wants=st.lists(st.integers(1, 2_000), max_size=6),
)
def test_points_never_go_negative_and_are_spent_oldest_first(
    lots: list[tuple[int, int, int]], wants: list[int]
) -> None:
    held = {
        f"l{i}": _lot(f"l{i}", remaining, days, expiry)
        for i, (remaining, days, expiry) in enumerate(lots)
    }
    for want in wants:
        usable = spendable(list(held.values()), NOW)
        balance = sum(lot.remaining for lot in usable)
        if want > balance:
            with pytest.raises(Conflict):
                allocate_spend(list(held.values()), want, NOW)
            continue
        taken = allocate_spend(list(held.values()), want, NOW)
        assert sum(part for _, part in taken) == want
        # oldest first: every lot before the last one touched is emptied
        order = [lot.id for lot in usable]
        touched = [lot_id for lot_id, _ in taken]
        assert touched == order[: len(touched)]
        for lot_id, part in taken[:-1]:
            assert part == held[lot_id].remaining
        for lot_id, part in taken:
            lot = held[lot_id]
            held[lot_id] = Lot(lot.id, lot.remaining - part, lot.earned_at, lot.expires_at)
        assert all(lot.remaining >= 0 for lot in held.values())
    # what expires is every lot past its date, and only those
    expired = [lot.id for lot in held.values() if lot.expires_at <= NOW and lot.remaining > 0]
    assert not set(expired) & {lot.id for lot in spendable(list(held.values()), NOW)}


# --- cloud stock ---------------------------------------------------------------------------


def test_days_of_cover_are_stock_over_average_daily_sales() -> None:
    assert cover_tenths(60, 30) == 600
    assert shown_days(cover_tenths(90, 30)) == "90.0"
    assert cover_tenths(10, 7) == 428  # 42.8 days
    assert cover_tenths(0, 0) == 0
    assert cover_tenths(5, 0) is None
    assert shown_days(None) == "∞"


def test_a_new_agent_is_measured_by_the_tenants_default() -> None:
    long_ago = NOW - timedelta(days=45)
    assert monthly_sales(12, first_purchase_at=long_ago, now=NOW, default=30) == 12
    recent = NOW - timedelta(days=5)
    assert monthly_sales(2, first_purchase_at=recent, now=NOW, default=30) == 30
    assert monthly_sales(0, first_purchase_at=None, now=NOW, default=30) == 30


def test_a_stock_order_beyond_the_cover_limit_is_refused_with_the_figure() -> None:
    assert check_cover(sku="A", units_after=60, monthly=30, limit_days=60) == 600
    with pytest.raises(Conflict) as refused:
        check_cover(sku="A", units_after=90, monthly=30, limit_days=60)
    assert refused.value.code == "stock_cover_exceeded"
    assert refused.value.params["cover_days"] == "90.0"
    assert refused.value.params["limit_days"] == 60
    with pytest.raises(Conflict):
        check_cover(sku="A", units_after=1, monthly=0, limit_days=60)  # nothing sells


def test_a_buyback_takes_only_units_bought_within_the_window_at_the_policy_price() -> None:
    lots = [
        StockLot(NOW - timedelta(days=60), 10, 5_000),
        StockLot(NOW - timedelta(days=5), 10, 4_000),
    ]
    quote = quote_buyback(lots, balance=15, quantity=8, now=NOW, window_days=30, price_bp=9_000)
    assert (quote.eligible_units, quote.amount_fen) == (10, 8 * 3_600)
    with pytest.raises(Conflict) as refused:
        quote_buyback(lots, balance=15, quantity=11, now=NOW, window_days=30, price_bp=9_000)
    assert refused.value.code == "stock_buyback_exceeds"


# --- share links and settings --------------------------------------------------------------


def test_share_codes_targets_and_channel_states() -> None:
    code = new_code()
    assert is_code(code)
    assert not is_code(code.upper() + "0")
    assert clean_target("community", None) == ("community", "")
    with pytest.raises(InvalidInput):
        clean_target("product", None)
    with pytest.raises(InvalidInput):
        clean_target("shop", "x")
    assert clean_state("poster-03") == "poster-03"
    with pytest.raises(InvalidInput):
        clean_state("x" * 31)


def test_a_share_url_is_filled_from_the_tenants_template() -> None:
    settings_ = GrowthSettings(
        share_url_templates={"product": "https://s.cn/p/{target_id}?c={code}"}
    )
    assert share_url(settings_, target_type="product", target_id="A 1", code="abc") == (
        "https://s.cn/p/A%201?c=abc"
    )
    assert share_url(settings_, target_type="event", target_id="e", code="abc") == ""
    with pytest.raises(InvalidInput) as refused:
        validate_patch(settings_, {"share_url_templates": {"page": "https://x/{nope}"}})
    assert refused.value.code == "share_url_template_invalid"
