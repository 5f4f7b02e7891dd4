"""Tier criteria on both databases: trees over spend in a window, a single order, a product,
direct paying customers, team size and participation facts; upgrades as payments and facts
arrive, in their own transaction, only when a payment could meet a criterion; the nightly
batch with demotion (buffer, hold); the tier history with its causes; the peer bonus that
keeps an upline's income when its downline reaches its tier."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import literal, select

from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.db import Database
from shequn.distribution.plans import build_plan_spec
from shequn.errors import InvalidInput, NotFound
from shequn.events.service import record_event
from shequn.flows.plans import activate_plan, create_plan
from shequn.flows.tiers import create_tier, list_tiers, update_tier
from shequn.flows.tiers_evaluation import evaluate_all, evaluate_member, tier_history
from shequn.members.service import get_member, update_member
from shequn.orders import payment
from shequn.orders.refunds import refund_order
from shequn.schema import all_metadata
from shequn.tiers import evaluation
from shequn.tiers import facts as tier_facts
from shequn.tiers.evaluation import upgrade_after_facts
from shequn.tiers.facts import sql_met
from shequn.tiers.rules import FactKey, Kind, is_met, parse_criteria
from tests import factories as f

SPEND_365 = {"kind": "spend", "min_fen": 25_000, "window_days": 365}


def tier_of(ctx: Ctx, member: str) -> str | None:
    found: str | None = get_member(ctx, member_id=member)["tier_id"]
    return found


def history(ctx: Ctx, member: str) -> list[tuple[Any, ...]]:
    items = tier_history(ctx, member_id=member)["items"]
    return [(i["from_tier_id"], i["to_tier_id"], i["reason"], i["source"]) for i in items]


def watch_payments(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count payments written the optimistic way, the locking way, and the reads of facts."""
    seen: Counter[str] = Counter()
    for module, name in (
        (payment, "_pay_with_locks"),
        (payment, "evaluate_members"),
    ):
        real = getattr(module, name)

        def spied(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            seen[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, spied)
    return seen


# --- tiers as data ---------------------------------------------------------------------------


def test_a_tier_keeps_its_tree_privileges_and_demotion(ctx: Ctx) -> None:
    f.product(ctx, sku="PKG-1", price_fen=99_900, ladder_role="partner")
    tree = {
        "kind": "any_of",
        "of": [
            {"kind": "bought", "sku": "PKG-1", "window_days": None},
            {"kind": "all_of", "of": [SPEND_365, {"kind": "fact", "event_type": "EventAttended"}]},
        ],
    }
    partner = create_tier(
        ctx,
        name="合伙人",
        rank=2,
        criteria=tree,
        discount_bp=2_000,
        points_multiplier_bp=20_000,
        may_distribute=True,
        service_tags=["专属客服", "优先发货"],
        demotion={"mode": "windowed", "hold_days": 90},
    )
    expected_tree = {
        "kind": "any_of",
        "of": [
            tree["of"][0],
            {
                "kind": "all_of",
                "of": [
                    SPEND_365,
                    {
                        "kind": "fact",
                        "event_type": "EventAttended",
                        "min_count": 1,
                        "window_days": None,
                    },
                ],
            },
        ],
    }
    assert {k: v for k, v in partner.items() if k not in ("id", "created_at")} == {
        "name": "合伙人",
        "rank": 2,
        "criteria": expected_tree,
        "privileges": {
            "discount_bp": 2_000,
            "points_multiplier_bp": 20_000,
            "may_distribute": True,
            "service_tags": ["专属客服", "优先发货"],
        },
        "demotion": {"mode": "windowed", "buffer_bp": 9_000, "hold_days": 90},
        "member_count": 0,
    }
    assert list_tiers(ctx) == [partner]
    # clearing the tree of a tier that demotes is refused, and changes nothing
    with pytest.raises(InvalidInput) as refused:
        update_tier(ctx, tier_id=partner["id"], criteria=None)
    assert refused.value.code == "tier_demotion_needs_window"
    assert list_tiers(ctx) == [partner]
    cleared = update_tier(ctx, tier_id=partner["id"], criteria=None, demotion={"mode": "never"})
    assert (cleared["criteria"], cleared["demotion"]["mode"]) == (None, "never")


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        (
            {"criteria": {"kind": "spend", "min_fen": 1, "window_days": 9_999}},
            "tier_criterion_invalid",
        ),
        ({"criteria": {"kind": "bought", "sku": "NOPE"}}, "product_not_found"),
        ({"points_multiplier_bp": 100_001}, "tier_points_multiplier_invalid"),
        ({"service_tags": ["x" * 21]}, "tier_service_tags_invalid"),
        ({"demotion": {"mode": "windowed"}}, "tier_demotion_needs_window"),
        (
            {"demotion": {"mode": "windowed", "buffer_bp": 100}, "criteria": SPEND_365},
            "tier_demotion_invalid",
        ),
        ({"service_tags": None}, "field_required"),
    ],
)
def test_bad_tier_fields_are_refused_and_change_nothing(
    ctx: Ctx, fields: dict[str, Any], code: str
) -> None:
    vip = create_tier(ctx, name="VIP", rank=1)
    before = list_tiers(ctx)
    with pytest.raises((InvalidInput, NotFound)) as refused:
        create_tier(ctx, name="X", rank=2, **fields)
    assert refused.value.code == code
    with pytest.raises((InvalidInput, NotFound)) as refused_change:
        update_tier(ctx, tier_id=vip["id"], **fields)
    assert refused_change.value.code == code
    assert list_tiers(ctx) == before


# --- upgrades as payments arrive ---------------------------------------------------------------


def test_only_spend_within_the_window_counts_and_refunds_come_off(
    ctx: Ctx, clock: ManualClock
) -> None:
    vip = create_tier(ctx, name="VIP", rank=1, criteria=SPEND_365)
    f.product(ctx, price_fen=10_000)
    buyer = f.member(ctx)
    f.paid_order(ctx, buyer)
    clock.advance(days=366)  # that order falls out of the window
    second = f.paid_order(ctx, buyer, quantity=2)
    assert tier_of(ctx, buyer) is None
    refund_order(ctx, order_id=second["id"], amount_fen=5_000, reason="部分退款")
    f.paid_order(ctx, buyer)  # 20 000 − 5 000 + 10 000 = 25 000 in the window
    assert tier_of(ctx, buyer) == vip["id"]
    (change,) = tier_history(ctx, member_id=buyer)["items"]
    assert change["cause"]["criteria"]["value"] == 25_000


def test_a_single_order_and_a_product_within_their_windows(ctx: Ctx, clock: ManualClock) -> None:
    f.product(ctx, sku="CORE-1", price_fen=10_000)
    f.product(ctx, sku="PKG-1", price_fen=99_900, ladder_role="partner")
    big = create_tier(
        ctx, name="大单", rank=1, criteria={"kind": "single_order", "min_fen": 30_000}
    )
    partner = create_tier(
        ctx,
        name="合伙人",
        rank=2,
        criteria={
            "kind": "all_of",
            "of": [
                {"kind": "bought", "sku": "PKG-1", "window_days": 30},
                {"kind": "bought", "sku": "CORE-1", "window_days": 30},
            ],
        },
    )
    buyer = f.member(ctx)
    f.paid_order(ctx, buyer, sku="CORE-1", quantity=3)
    assert tier_of(ctx, buyer) == big["id"]
    clock.advance(days=31)
    f.paid_order(ctx, buyer, sku="PKG-1")  # the core product was bought too long ago
    assert tier_of(ctx, buyer) == big["id"]
    f.paid_order(ctx, buyer, sku="CORE-1")
    assert tier_of(ctx, buyer) == partner["id"]
    assert [h[1] for h in history(ctx, buyer)] == [big["id"], partner["id"]]


def test_a_fully_refunded_package_does_not_count(ctx: Ctx) -> None:
    f.product(ctx, sku="CORE-1", price_fen=10_000)
    f.product(ctx, sku="PKG-1", price_fen=99_900, ladder_role="partner")
    create_tier(
        ctx,
        name="合伙人",
        rank=2,
        criteria={
            "kind": "all_of",
            "of": [{"kind": "bought", "sku": "PKG-1"}, {"kind": "spend", "min_fen": 110_000}],
        },
    )
    buyer = f.member(ctx)
    kit = f.paid_order(ctx, buyer, sku="PKG-1")
    refund_order(ctx, order_id=kit["id"], amount_fen=99_900, reason="退货")
    f.paid_order(ctx, buyer, sku="CORE-1", quantity=12)
    assert tier_of(ctx, buyer) is None


def test_a_payment_that_cannot_meet_a_criterion_reads_no_facts(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    vip = create_tier(ctx, name="VIP", rank=1, criteria=SPEND_365)
    f.product(ctx, price_fen=10_000)
    buyer = f.member(ctx)
    seen = watch_payments(monkeypatch)
    f.paid_order(ctx, buyer)
    f.paid_order(ctx, buyer)
    # 20 000 in all: no tree above the buyer's tier can hold, so both were optimistic writes
    assert seen == Counter()
    f.paid_order(ctx, buyer)
    assert seen == Counter({"_pay_with_locks": 1, "evaluate_members": 1})
    assert tier_of(ctx, buyer) == vip["id"]
    f.paid_order(ctx, buyer)  # at the top tier: nothing above to reach
    assert seen == Counter({"_pay_with_locks": 1, "evaluate_members": 1})


def test_the_nth_direct_paying_customer_lifts_its_referrer_in_its_payment(ctx: Ctx) -> None:
    lead = create_tier(
        ctx, name="团长", rank=1, criteria={"kind": "direct_customers", "min_count": 2}
    )
    f.product(ctx, price_fen=10_000)
    referrer = f.member(ctx, "推荐人")
    first, second, third = (f.member(ctx, f"客户{i}", referrer) for i in range(3))
    f.paid_order(ctx, first)
    f.paid_order(ctx, first)  # the same customer twice counts once
    assert tier_of(ctx, referrer) is None
    order = f.paid_order(ctx, second)
    assert tier_of(ctx, referrer) == lead["id"]
    (change,) = tier_history(ctx, member_id=referrer)["items"]
    assert (change["source"], change["cause"]["criteria"]["value"]) == ("payment", 2)
    # the buyer itself moved nowhere, and its order says so
    assert tier_of(ctx, second) is None
    assert order["status"] == "paid"
    f.paid_order(ctx, third)
    assert len(tier_history(ctx, member_id=referrer)["items"]) == 1


def test_a_team_large_enough_is_evaluated_when_its_member_pays(ctx: Ctx) -> None:
    lead = create_tier(ctx, name="团长", rank=1, criteria={"kind": "team_size", "min_count": 3})
    f.product(ctx, price_fen=100)
    ids = f.chain(ctx, 4)  # the root has a team of 3
    f.paid_order(ctx, ids[1])
    assert tier_of(ctx, ids[1]) is None  # a team of 2
    f.paid_order(ctx, ids[0])
    assert tier_of(ctx, ids[0]) == lead["id"]


def test_a_participation_fact_upgrades_when_it_is_recorded(ctx: Ctx) -> None:
    star = create_tier(
        ctx,
        name="学员",
        rank=1,
        criteria={
            "kind": "all_of",
            "of": [
                {"kind": "fact", "event_type": "ChallengeCompleted", "min_count": 2},
                {"kind": "spend", "min_fen": 1},
            ],
        },
    )
    f.product(ctx, price_fen=100)
    member = f.member(ctx)
    f.paid_order(ctx, member)
    for day in range(2):
        with ctx.db.transaction() as tx:
            record_event(
                tx,
                tenant_id=ctx.tenant_id,
                actor="community",
                at=ctx.clock.now(),
                type="ChallengeCompleted",
                subject_type="member",
                subject_id=member,
                payload={"challenge": "21-day", "day": day},
            )
            made = upgrade_after_facts(
                tx,
                tenant_id=ctx.tenant_id,
                actor="community",
                at=ctx.clock.now(),
                member_ids=[member],
            )
        assert [c.to_tier for c in made] == ([] if day == 0 else [star["id"]])
    assert history(ctx, member) == [(None, star["id"], "upgrade", "fact")]


def test_an_upgrade_never_detaches_a_downline(ctx: Ctx) -> None:
    partner = create_tier(ctx, name="合伙人", rank=2, criteria={"kind": "spend", "min_fen": 10_000})
    f.product(ctx, price_fen=10_000)
    upline, downline = f.chain(ctx, 2)
    update_member(ctx, member_id=upline, tier_id=partner["id"], set_tier=True)
    f.paid_order(ctx, downline)
    after = get_member(ctx, member_id=downline)
    assert (after["tier_id"], after["referrer_id"]) == (partner["id"], upline)


# --- seed 003: 下级客户升级不影响上级客户利益 ------------------------------------------------


@pytest.mark.parametrize("mode", ["levels", "differential"])
def test_a_downline_reaching_its_uplines_tier_never_earns_the_upline_less(
    ctx: Ctx, mode: str
) -> None:
    """The upline earns on its downline's next order at least what it earned before the
    downline's upgrade, though the downline now pays the partner price: the peer bonus."""
    f.product(ctx, sku="CORE-1", price_fen=10_000)
    f.product(ctx, sku="PKG-1", price_fen=99_900, ladder_role="partner")
    vip = create_tier(ctx, name="VIP", rank=1, discount_bp=500, may_distribute=True)
    partner = create_tier(
        ctx,
        name="合伙人",
        rank=2,
        discount_bp=1_000,
        may_distribute=True,
        criteria={"kind": "bought", "sku": "PKG-1"},
    )
    if mode == "levels":
        spec = build_plan_spec(
            mode="levels", levels=[{"level": 1, "rate_bp": 1_000}], peer_bonus_bp=300
        )
    else:
        spec = build_plan_spec(
            mode="differential",
            tier_rates=[
                {"tier_id": vip["id"], "rate_bp": 800},
                {"tier_id": partner["id"], "rate_bp": 1_500},
            ],
            depth=1,
            peer_bonus_bp=300,
        )
    plan = create_plan(ctx, spec=spec)
    assert [x.rule for x in plan["findings"]] == []
    activate_plan(ctx, plan_id=plan["id"])
    upline = f.member(ctx, "上级", tier_id=partner["id"])
    downline = f.member(ctx, "下级", upline, tier_id=vip["id"])

    def upline_income(order: dict[str, Any]) -> int:
        return sum(c["amount_fen"] for c in order["commissions"] if c["beneficiary_id"] == upline)

    before = upline_income(f.paid_order(ctx, downline, sku="CORE-1"))
    f.paid_order(ctx, downline, sku="PKG-1")  # reaches the upline's tier
    assert tier_of(ctx, downline) == partner["id"]
    after_order = f.paid_order(ctx, downline, sku="CORE-1")
    after = upline_income(after_order)
    assert after >= before
    assert get_member(ctx, member_id=downline)["referrer_id"] == upline
    kinds = sorted(c["kind"] for c in after_order["commissions"])
    assert kinds == sorted([mode if mode == "differential" else "level", "peer_bonus"])
    # 10 000 at 95 % and then at 90 %: levels, 10 % of 9 500 before and 10 % + 3 % of 9 000
    # after; differential, the partner's 15 % of 9 500 before and 15 % + 3 % of 9 000 after
    expected = {"levels": (950, 1_170), "differential": (1_425, 1_620)}
    assert (before, after) == expected[mode]


# --- the nightly batch ------------------------------------------------------------------------


def _windowed_vip(ctx: Ctx, hold_days: int = 30) -> dict[str, Any]:
    return create_tier(
        ctx,
        name="VIP",
        rank=1,
        discount_bp=500,
        criteria=SPEND_365,
        demotion={"mode": "windowed", "buffer_bp": 9_000, "hold_days": hold_days},
    )


def test_the_batch_demotes_after_the_hold_within_the_buffer(ctx: Ctx, clock: ManualClock) -> None:
    vip = _windowed_vip(ctx)
    f.product(ctx, price_fen=12_500)
    f.product(ctx, sku="CORE-2", price_fen=24_000)
    keeps, loses, fresh = (f.member(ctx, name) for name in ("留", "降", "新"))
    for member in (keeps, loses):
        f.paid_order(ctx, member, quantity=2)  # 25 000: VIP
    clock.advance(days=200)
    # 22 800 at the VIP price: above 90 % of the threshold, enough to keep the tier
    f.paid_order(ctx, keeps, sku="CORE-2")
    clock.advance(days=170)  # the first orders fell out of the window 365 days on
    refund_order(
        ctx,
        order_id=f.paid_order(ctx, fresh, quantity=2)["id"],
        amount_fen=1,
        reason="差一分",
    )
    totals = evaluate_all(ctx, chunk=2)
    assert {k: totals[k] for k in ("members", "upgraded", "demoted")} == {
        "members": 3,
        "upgraded": 0,
        "demoted": 1,
    }
    # the fresh member reached VIP with its payment, and a refund never demotes by itself
    assert [tier_of(ctx, m) for m in (keeps, loses, fresh)] == [vip["id"], None, vip["id"]]
    (_, down) = tier_history(ctx, member_id=loses)["items"]
    assert (down["reason"], down["source"], down["cause"]["criteria"]["threshold"]) == (
        "demotion",
        "batch",
        22_500,
    )
    # held for 0 days since its upgrade by the fresh payment: kept whatever its facts
    assert evaluate_all(ctx, chunk=10)["demoted"] == 0


def test_the_batch_upgrades_members_a_changed_tree_now_reaches(ctx: Ctx) -> None:
    vip = create_tier(ctx, name="VIP", rank=1, criteria={"kind": "spend", "min_fen": 10**9})
    f.product(ctx, price_fen=10_000)
    buyers = [f.member(ctx, f"买家{i}") for i in range(5)]
    for count, buyer in enumerate(buyers, start=1):
        for _ in range(count):
            f.paid_order(ctx, buyer)
    update_tier(ctx, tier_id=vip["id"], criteria={"kind": "spend", "min_fen": 30_000})
    progress: list[tuple[int, int]] = []
    totals = evaluate_all(ctx, chunk=2, progress=lambda done, total: progress.append((done, total)))
    assert (totals["upgraded"], totals["candidates"]) == (3, 3)
    assert [tier_of(ctx, b) for b in buyers] == [None, None, vip["id"], vip["id"], vip["id"]]
    assert progress == [(0, 5), (2, 5), (4, 5), (5, 5)]
    assert [history(ctx, b) for b in buyers[2:]] == [[(None, vip["id"], "upgrade", "batch")]] * 3
    assert evaluate_all(ctx)["upgraded"] == 0


def test_the_batch_and_a_member_evaluation_agree(ctx: Ctx, clock: ManualClock) -> None:
    vip = _windowed_vip(ctx, hold_days=0)
    f.product(ctx, price_fen=10_000)
    members = [f.member(ctx, f"m{i}") for i in range(6)]
    for count, member in enumerate(members):
        for _ in range(count):
            f.paid_order(ctx, member)
    update_tier(
        ctx,
        tier_id=vip["id"],
        criteria={"kind": "spend", "min_fen": 40_000, "window_days": 365},
    )
    asked = [evaluate_member(ctx, member_id=m)["changed"] for m in members]
    # the others, as the batch sees them, are already where the evaluations put them
    assert evaluate_all(ctx)["candidates"] == 0
    assert asked == [False, False, False, True, False, False]
    assert [tier_of(ctx, m) for m in members] == [None, None, None, None, vip["id"], vip["id"]]


def test_a_member_evaluation_shows_every_tier_and_records_a_change(ctx: Ctx) -> None:
    vip = create_tier(ctx, name="VIP", rank=1, criteria={"kind": "spend", "min_fen": 10**9})
    f.product(ctx, price_fen=10_000)
    buyer = f.member(ctx)
    f.paid_order(ctx, buyer)
    update_tier(ctx, tier_id=vip["id"], criteria={"kind": "spend", "min_fen": 10_000})
    result = evaluate_member(ctx, member_id=buyer)
    assert {k: result[k] for k in ("previous_tier_id", "tier_id", "changed")} == {
        "previous_tier_id": None,
        "tier_id": vip["id"],
        "changed": True,
    }
    assert result["change"]["source"] == "evaluation"
    assert result["tiers"] == [
        {
            "tier_id": vip["id"],
            "name": "VIP",
            "rank": 1,
            "met": True,
            "criteria": {
                "kind": "spend",
                "min_fen": 10_000,
                "window_days": None,
                "value": 10_000,
                "threshold": 10_000,
                "met": True,
            },
        }
    ]
    again = evaluate_member(ctx, member_id=buyer)
    assert (again["changed"], again["change"]) == (False, None)
    with pytest.raises(NotFound):
        evaluate_member(ctx, member_id="mem_nope")


def test_the_history_pages_and_shows_changes_by_hand(ctx: Ctx) -> None:
    vip = create_tier(ctx, name="VIP", rank=1, criteria={"kind": "spend", "min_fen": 100})
    top = create_tier(ctx, name="总代", rank=5)
    f.product(ctx, price_fen=100)
    member = f.member(ctx)
    f.paid_order(ctx, member)
    update_member(ctx, member_id=member, tier_id=top["id"], set_tier=True)
    first = tier_history(ctx, member_id=member, limit=1)
    assert [(i["to_tier"], i["source"]) for i in first["items"]] == [("VIP", "payment")]
    rest = tier_history(ctx, member_id=member, after=first["next_after"], limit=1)
    assert [
        (i["from_tier"], i["to_tier"], i["reason"], i["source"], i["cause"]) for i in rest["items"]
    ] == [("VIP", "总代", "manual", "manual", None)]
    assert rest["next_after"] is None
    with pytest.raises(InvalidInput) as bad_limit:
        tier_history(ctx, member_id=member, limit=0)
    assert bad_limit.value.code == "limit_out_of_range"
    assert vip["id"] != top["id"]


# --- the SQL form of the criteria is the rule's own ------------------------------------------

SQL_KEYS = [
    FactKey(Kind.SPEND, 365),
    FactKey(Kind.SINGLE_ORDER, None),
    FactKey(Kind.BOUGHT, None, "A"),
    FactKey(Kind.FACT, 30, "EventAttended"),
]
sql_atoms = st.one_of(
    st.builds(lambda m: {"kind": "spend", "min_fen": m, "window_days": 365}, st.integers(1, 100)),
    st.builds(lambda m: {"kind": "single_order", "min_fen": m}, st.integers(1, 100)),
    st.just({"kind": "bought", "sku": "A"}),
    st.builds(
        lambda m: {
            "kind": "fact",
            "event_type": "EventAttended",
            "min_count": m,
            "window_days": 30,
        },
        st.integers(1, 5),
    ),
)
sql_trees = st.recursive(
    sql_atoms,
    lambda inner: st.builds(
        lambda k, items: {"kind": k, "of": items},
        st.sampled_from(["all_of", "any_of"]),
        st.lists(inner, min_size=1, max_size=3),
    ),
    max_leaves=6,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    tree=sql_trees,
    values=st.lists(st.integers(0, 120), min_size=4, max_size=4),
    buffer_bp=st.sampled_from([10_000, 9_000, 5_000]),
)
def test_the_sql_condition_of_a_tree_is_its_rule(
    db: Database, tree: dict[str, Any], values: list[int], buffer_bp: int
) -> None:
    parsed = parse_criteria(tree)
    facts = dict(zip(SQL_KEYS, values, strict=True))
    columns = {k: literal(v) for k, v in facts.items()}
    with db.read() as tx:
        found = tx.execute(select(sql_met(parsed, columns, buffer_bp))).scalar_one()
    assert bool(found) is is_met(parsed, facts, buffer_bp)


def test_the_tables_the_tier_engine_names_are_the_declared_ones() -> None:
    declared = all_metadata().tables
    for named in (
        tier_facts.members,
        tier_facts.orders,
        tier_facts.order_lines,
        evaluation.members,
    ):
        assert set(named.c.keys()) <= set(declared[named.name].c.keys()), named.name


# --- many payments at once ----------------------------------------------------------------------


@pytest.mark.postgres
def test_parallel_first_payments_lift_their_referrer_once(postgres_db: Database) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from shequn.tenancy.service import create_tenant

    clock = ManualClock()
    tenant_id, _ = create_tenant(db=postgres_db, clock=clock, name="并发")
    ctx = Ctx(db=postgres_db, clock=clock, tenant_id=tenant_id, actor="test")
    lead = create_tier(
        ctx, name="团长", rank=1, criteria={"kind": "direct_customers", "min_count": 3}
    )
    f.product(ctx, price_fen=10_000)
    referrer = f.member(ctx, "推荐人")
    customers = [f.member(ctx, f"客户{i}", referrer) for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        orders = list(pool.map(lambda m: f.paid_order(ctx, m), customers))
    assert all(o["status"] == "paid" for o in orders)
    assert tier_of(ctx, referrer) == lead["id"]
    assert [h[1] for h in history(ctx, referrer)] == [lead["id"]]
