"""Tiers, the plan simulator, repurchase and the compliance report over HTTP and the command
line: the seed ladder (a bait buyer becomes a member, then a partner, each step with its
privileges and its recorded cause), the nightly batch, what a draft plan would pay, who is due
to buy again, and every refused request changing nothing."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from shequn.clock import ManualClock
from shequn.db import Database
from shequn.entrypoints.cli import app as cli
from shequn.schema import upgrade_database
from tests.e2e.conftest import API, World, contents, error_of, expect


def post(api: TestClient, path: str, body: Any = None, status: int = 201) -> Any:
    return expect(api.post(f"{API}{path}", json=body), status)


def pay(api: TestClient, buyer: str, sku: str, txn: str) -> dict[str, Any]:
    order = post(api, "/orders", {"buyer_id": buyer, "lines": [{"sku": sku, "quantity": 1}]})
    body = {"provider_txn_id": txn, "amount_fen": order["total_fen"]}
    paid: dict[str, Any] = post(api, f"/orders/{order['id']}/pay", body, 200)
    return paid


def products(api: TestClient) -> None:
    for sku, name, price, role in (
        ("TRIAL", "试用装", 990, "bait"),
        ("CORE-1", "面霜", 19_900, "core"),
        ("KIT", "合伙人礼包", 99_900, "partner"),
    ):
        post(api, "/products", {"sku": sku, "name": name, "price_fen": price, "ladder_role": role})


def history(api: TestClient, member: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = expect(api.get(f"{API}/members/{member}/tier-history"), 200)[
        "items"
    ]
    return items


# --- seed 001 / 003: the ladder --------------------------------------------------------------


def test_a_bait_buyer_becomes_a_member_then_a_partner_each_step_with_its_cause(
    api: TestClient,
) -> None:
    products(api)
    member_tier = post(
        api,
        "/tiers",
        {
            "name": "会员",
            "rank": 1,
            "criteria": {"kind": "bought", "sku": "CORE-1"},
            "privileges": {
                "discount_bp": 500,
                "points_multiplier_bp": 12_000,
                "service_tags": ["会员价"],
            },
        },
    )
    partner_tier = post(
        api,
        "/tiers",
        {
            "name": "合伙人",
            "rank": 2,
            "criteria": {
                "kind": "any_of",
                "of": [
                    {"kind": "bought", "sku": "KIT"},
                    {"kind": "spend", "min_fen": 1_000_000, "window_days": 365},
                ],
            },
            "privileges": {
                "discount_bp": 1_500,
                "may_distribute": True,
                "service_tags": ["专属客服", "优先发货"],
            },
        },
    )
    assert member_tier["privileges"] == {
        "discount_bp": 500,
        "points_multiplier_bp": 12_000,
        "may_distribute": False,
        "service_tags": ["会员价"],
    }
    buyer = post(api, "/members", {"name": "小红"})["id"]

    # the bait product: still a customer
    pay(api, buyer, "TRIAL", "wx-trial")
    assert expect(api.get(f"{API}/members/{buyer}"), 200)["tier_id"] is None
    assert history(api, buyer) == []

    # the core purchase: a member, at the member price from then on
    pay(api, buyer, "CORE-1", "wx-core")
    assert expect(api.get(f"{API}/members/{buyer}"), 200)["tier_id"] == member_tier["id"]
    (first,) = history(api, buyer)
    assert (first["from_tier_id"], first["to_tier"], first["reason"], first["source"]) == (
        None,
        "会员",
        "upgrade",
        "payment",
    )
    assert first["cause"]["tier_id"] == member_tier["id"]
    assert first["cause"]["criteria"] == {
        "kind": "bought",
        "sku": "CORE-1",
        "window_days": None,
        "value": 1,
        "threshold": 1,
        "met": True,
        "of": None,
        "min_fen": None,
        "min_count": None,
        "event_type": None,
    }
    again = post(api, "/orders", {"buyer_id": buyer, "lines": [{"sku": "CORE-1", "quantity": 1}]})
    assert again["total_fen"] == 19_900 - 995  # 5 % off
    expect(api.post(f"{API}/orders/{again['id']}/cancel"), 200)

    # the partner package: a partner, who may distribute
    pay(api, buyer, "KIT", "wx-kit")
    assert expect(api.get(f"{API}/members/{buyer}"), 200)["tier_id"] == partner_tier["id"]
    steps = history(api, buyer)
    assert [(s["from_tier"], s["to_tier"], s["source"]) for s in steps] == [
        (None, "会员", "payment"),
        ("会员", "合伙人", "payment"),
    ]
    reached = steps[1]["cause"]["criteria"]
    assert (reached["kind"], reached["met"]) == ("any_of", True)
    assert [(c["kind"], c["met"], c["value"]) for c in reached["of"]] == [
        ("bought", True, 1),
        ("spend", False, 990 + 19_900 + 99_900 * 95 // 100),
    ]
    tiers = {t["name"]: t for t in expect(api.get(f"{API}/tiers"), 200)}
    assert tiers["合伙人"]["privileges"]["may_distribute"] is True
    assert tiers["合伙人"]["privileges"]["service_tags"] == ["专属客服", "优先发货"]
    assert (tiers["会员"]["member_count"], tiers["合伙人"]["member_count"]) == (0, 1)
    # the evaluation agrees and changes nothing more
    evaluation = post(api, f"/members/{buyer}/tier-evaluation", None, 200)
    assert (evaluation["changed"], evaluation["tier_id"]) == (False, partner_tier["id"])
    assert [t["met"] for t in evaluation["tiers"]] == [True, True]


def test_a_participation_fact_lifts_a_member_as_it_arrives(api: TestClient) -> None:
    star = post(
        api,
        "/tiers",
        {
            "name": "学员",
            "rank": 1,
            "criteria": {
                "kind": "fact",
                "event_type": "WorkshopFinished",
                "min_count": 2,
                "window_days": 90,
            },
            "privileges": {"points_multiplier_bp": 15_000},
        },
    )
    member = post(api, "/members", {"name": "打卡达人"})["id"]
    first = post(
        api, f"/members/{member}/facts", {"event_type": "WorkshopFinished", "note": "21 天打卡"}
    )
    assert (first["changed"], first["tier_id"]) == (False, None)
    second = post(api, f"/members/{member}/facts", {"event_type": "WorkshopFinished"})
    assert (second["changed"], second["tier_id"]) == (True, star["id"])
    assert second["change"]["source"] == "fact"
    assert second["change"]["cause"]["criteria"]["value"] == 2
    (item,) = history(api, member)
    assert (item["to_tier"], item["source"]) == ("学员", "fact")


# --- demotion, the member evaluation and the nightly batch ------------------------------------


def test_a_windowed_tier_is_lost_after_its_hold_below_the_buffer(
    api: TestClient, clock: ManualClock
) -> None:
    products(api)
    vip = post(
        api,
        "/tiers",
        {
            "name": "VIP",
            "rank": 1,
            "criteria": {"kind": "spend", "min_fen": 19_900, "window_days": 30},
            "demotion": {"mode": "windowed", "buffer_bp": 9_000, "hold_days": 40},
        },
    )
    assert vip["demotion"] == {"mode": "windowed", "buffer_bp": 9_000, "hold_days": 40}
    member = post(api, "/members", {"name": "老客"})["id"]
    pay(api, member, "CORE-1", "wx-1")
    assert expect(api.get(f"{API}/members/{member}"), 200)["tier_id"] == vip["id"]

    clock.advance(days=35)  # the spend has left the window, but the hold is not over
    kept = post(api, f"/members/{member}/tier-evaluation", None, 200)
    assert (kept["changed"], kept["tier_id"]) == (False, vip["id"])

    clock.advance(days=6)
    lost = post(api, f"/members/{member}/tier-evaluation", None, 200)
    assert (lost["changed"], lost["tier_id"]) == (True, None)
    change = lost["change"]
    assert (change["reason"], change["source"]) == ("demotion", "evaluation")
    assert change["cause"]["buffer_bp"] == 9_000
    assert change["cause"]["criteria"]["threshold"] == 17_910  # 90 % of 19 900
    assert change["cause"]["criteria"]["value"] == 0
    assert [h["reason"] for h in history(api, member)] == ["upgrade", "demotion"]


def test_never_demoted_tiers_are_kept(api: TestClient, clock: ManualClock) -> None:
    products(api)
    vip = post(
        api,
        "/tiers",
        {"name": "VIP", "rank": 1, "criteria": {"kind": "spend", "min_fen": 990, "window_days": 7}},
    )
    member = post(api, "/members", {"name": "常客"})["id"]
    pay(api, member, "TRIAL", "wx-1")
    clock.advance(days=400)
    kept = post(api, f"/members/{member}/tier-evaluation", None, 200)
    assert (kept["changed"], kept["tier_id"], vip["demotion"]["mode"]) == (
        False,
        vip["id"],
        "never",
    )


# --- the simulator --------------------------------------------------------------------------


def test_a_draft_plan_is_simulated_over_a_period_against_the_active_one(
    api: TestClient, fresh_world: World, clock: ManualClock
) -> None:
    w = fresh_world
    api.headers.update(w.keys.owner)
    draft = post(
        api,
        "/commission-plans",
        {
            "mode": "levels",
            "levels": [{"level": 1, "rate_bp": 1_500}, {"level": 2, "rate_bp": 500}],
        },
    )
    day = clock.now().date()
    answer = post(
        api,
        f"/commission-plans/{draft['id']}/simulate",
        {"from": (day - timedelta(days=1)).isoformat(), "to": day.isoformat()},
        200,
    )
    assert set(answer) >= {"total_fen", "cost_bp_of_gmv", "lines", "findings", "against_active"}
    assert answer["orders"] == 2  # the closed and the paid order of the world
    assert answer["gmv_fen"] == 2 * 9_900
    # 15 % and 5 % of 9 900 on each order; the active plan pays 10 % and 5 %
    assert answer["total_fen"] == 2 * (1_485 + 495)
    assert answer["cost_bp_of_gmv"] == 2_000
    assert answer["against_active"]["plan_id"] == w.plan
    assert answer["against_active"]["total_fen"] == 2 * (990 + 495)
    assert answer["against_active"]["difference_fen"] == 2 * 495
    line = answer["lines"][0]
    assert (line["level"], line["rate_bp"], line["base_fen"], line["rule"]["kind"]) == (
        1,
        1_500,
        9_900,
        "level",
    )
    assert answer["findings"] == []


def test_the_simulation_of_a_plan_paying_four_levels_shows_its_findings(
    api: TestClient, fresh_world: World, clock: ManualClock
) -> None:
    api.headers.update(fresh_world.keys.owner)
    expect(api.patch(f"{API}/settings", json={"compliance_profile": "custom"}), 200)
    draft = post(
        api,
        "/commission-plans",
        {"mode": "levels", "depth": 3, "levels": [{"level": n, "rate_bp": 500} for n in (1, 2, 3)]},
    )
    day = clock.now().date().isoformat()
    answer = post(api, f"/commission-plans/{draft['id']}/simulate", {"from": day, "to": day}, 200)
    assert "three_levels" in {f["rule"] for f in answer["findings"]}
    assert all(f["citation"] for f in answer["findings"])


# --- repurchase -----------------------------------------------------------------------------


def test_members_due_to_buy_again_are_listed_reminded_and_counted(
    api: TestClient, clock: ManualClock
) -> None:
    products(api)
    interval = expect(
        api.put(f"{API}/repurchase-intervals/CORE-1", json={"interval_days": 30}), 200
    )
    assert (interval["interval_days"], interval["source"]) == (30, "set")
    member = post(api, "/members", {"name": "回头客"})["id"]
    start = clock.now()
    pay(api, member, "CORE-1", "wx-1")
    clock.advance(days=33)
    page = expect(api.get(f"{API}/repurchase-due"), 200)
    (due,) = page["items"]
    assert (due["member_id"], due["sku"], due["days_overdue"]) == (member, "CORE-1", 3)
    sent = post(api, "/repurchase-reminders", {}, 200)
    assert sent["reminded"] == 1
    assert post(api, "/repurchase-reminders", {}, 200)["reminded"] == 0  # once per purchase
    clock.advance(days=2)
    pay(api, member, "CORE-1", "wx-2")
    assert expect(api.get(f"{API}/repurchase-due"), 200)["items"] == []
    frm = start.date().isoformat()
    to = clock.now().date().isoformat()
    mix = expect(api.get(f"{API}/insights/revenue-mix", params={"from": frm, "to": to}), 200)
    channels = {c["channel"]: c["orders"] for c in mix["channels"]}
    assert channels["reminded_repurchase"] == 1
    assert channels["other"] == 1


# --- the compliance report's live rows --------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_the_compliance_report_has_its_live_rows_with_citations(
    api: TestClient, world: World, language: str
) -> None:
    headers = {**world.keys.owner, "Accept-Language": language}
    report = expect(api.get(f"{API}/compliance/report", headers=headers), 200)
    rows = {r["figure"]: r for r in report["live_rows"]}
    assert list(rows) == [
        "deepest_earning_chain",
        "members_in_chains_of_3_plus",
        "recruitment_income_share",
        "stock_entry_condition",
    ]
    assert rows["deepest_earning_chain"]["value"] == 2  # the world's plan pays two levels
    assert rows["members_in_chains_of_3_plus"]["value"] == 3
    assert all(r["state"] == "ok" for r in rows.values())
    law = "《刑法》" if language == "zh-CN" else "Criminal Law"
    assert rows["deepest_earning_chain"]["citation"].startswith(law)
    assert all(r["message"] and r["citation"] for r in rows.values())


# --- refused requests change nothing ---------------------------------------------------------

BAD = [
    ("post", "/tiers", {"name": "X", "rank": 5, "criteria": {"kind": "spend"}}, 422),
    (
        "post",
        "/tiers",
        {"name": "X", "rank": 5, "criteria": {"kind": "bought", "sku": "NOPE"}},
        404,
    ),
    (
        "post",
        "/tiers",
        {
            "name": "X",
            "rank": 5,
            "criteria": {"kind": "bought", "sku": "CORE-1"},
            "demotion": {"mode": "windowed"},
        },
        422,
    ),
    ("post", "/tiers", {"name": "X", "rank": 5, "privileges": {"discount_bp": 9_500}}, 422),
    ("post", "/tiers", {"name": "X", "rank": 5, "privileges": {"service_tags": ["x" * 21]}}, 422),
    ("patch", "/tiers/tier_nope", {"name": "Y"}, 404),
    ("patch", "/tiers/tier_nope", {"criteria": {"kind": "all_of", "of": []}}, 422),
    ("patch", "/tiers/tier_nope", {"privileges": {"discount_bp": None}}, 422),
    ("post", "/members/mem_00000000000000000000000000/tier-evaluation", None, 404),
    ("post", "/members/{buyer}/facts", {"event_type": "OrderPaid"}, 422),
    ("post", "/members/{buyer}/facts", {"event_type": "challenge done"}, 422),
    ("post", "/members/{buyer}/facts", {"event_type": "WorkshopFinished", "note": " "}, 422),
    (
        "post",
        "/members/mem_00000000000000000000000000/facts",
        {"event_type": "WorkshopFinished"},
        404,
    ),
    ("get", "/members/{buyer}/tier-history?limit=0", None, 422),
    ("get", "/members/{buyer}/tier-history?after=nope", None, 422),
    ("get", "/members/mem_00000000000000000000000000/tier-history", None, 404),
    ("post", "/commission-plans/{plan}/simulate", {"from": "2026-02-01", "to": "2026-01-01"}, 422),
    ("post", "/commission-plans/{plan}/simulate", {"from": "soon", "to": "later"}, 422),
    ("post", "/commission-plans/{plan}/simulate", {"from": "2025-01-01", "to": "2026-06-01"}, 422),
    (
        "post",
        "/commission-plans/plan_nope/simulate",
        {"from": "2026-01-01", "to": "2026-01-02"},
        404,
    ),
    (
        "post",
        "/commission-plans/{plan}/simulate",
        {"orders": [{"buyer_id": "{buyer}", "lines": [{"sku": "NOPE", "quantity": 1}]}]},
        404,
    ),
    ("put", "/repurchase-intervals/CORE-1", {"interval_days": 0}, 422),
    ("put", "/repurchase-intervals/CORE-1", {"interval_days": 30, "window_days": 400}, 422),
    ("put", "/repurchase-intervals/NOPE", {"interval_days": 30}, 404),
    ("get", "/repurchase-due?limit=0", None, 422),
    ("post", "/repurchase-reminders", {"limit": 0}, 422),
    ("get", "/insights/revenue-mix?from=2026-02-01&to=2026-01-01", None, 422),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), BAD)
def test_bad_input_is_refused_with_a_code_and_changes_nothing(
    db: Database, api: TestClient, world: World, method: str, path: str, body: Any, status: int
) -> None:
    api.headers.update(world.keys.owner)
    names = {"buyer": world.buyer, "plan": world.plan}
    path = path.format(**names)
    if body is not None:
        body = json.loads(json.dumps(body).replace("{buyer}", world.buyer))
    before = contents(db, world.keys.tenant_id, world.other.tenant_id)
    response = api.request(method.upper(), f"{API}{path}", json=body)
    got, code = error_of(response)
    assert got == status, response.text
    assert code
    assert contents(db, world.keys.tenant_id, world.other.tenant_id) == before


# --- the command line -----------------------------------------------------------------------

PAST = datetime(2020, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def cli_db(db: Database, tmp_path: Path) -> Iterator[tuple[str, Database]]:
    if db.is_postgres:
        yield db.engine.url.render_as_string(hide_password=False), db
        return
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade_database(url)
    own = Database.from_url(url, pool_size=2)
    yield url, own
    own.dispose()


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env={"SHEQUN_LOCALE": "en", "COLUMNS": "200"})


def test_the_nightly_batch_and_the_plan_simulator_from_the_command_line(
    cli_db: tuple[str, Database], tmp_path: Path
) -> None:
    from shequn.context import Ctx
    from shequn.distribution.plans import build_plan_spec
    from shequn.flows.plans import activate_plan, create_plan
    from shequn.flows.tiers import create_tier
    from shequn.tenancy.service import create_tenant
    from tests import factories as f

    url, db = cli_db
    clock = ManualClock(PAST)
    tenant_id, _ = create_tenant(db=db, clock=clock, name="命令行 tiers")
    ctx = Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="test")
    f.product(ctx, sku="CORE-1", price_fen=10_000)
    root, buyer = f.chain(ctx, 2)
    f.paid_order(ctx, buyer)
    active = create_plan(
        ctx, spec=build_plan_spec(mode="levels", levels=[{"level": 1, "rate_bp": 1_000}])
    )
    activate_plan(ctx, plan_id=active["id"])
    f.paid_order(ctx, buyer)
    # a tier made after the orders: the nightly batch is what lifts the buyer
    vip = create_tier(ctx, name="VIP", rank=1, criteria={"kind": "spend", "min_fen": 20_000})
    draft = create_plan(
        ctx, spec=build_plan_spec(mode="levels", levels=[{"level": 1, "rate_bp": 2_000}])
    )

    result = run("tiers", "evaluate", "--tenant", tenant_id, "--database-url", url, "--json")
    assert result.exit_code == 0, result.output
    totals = json.loads(result.stdout)
    assert (totals["members"], totals["upgraded"], totals["demoted"]) == (2, 1, 0)
    with db.read() as tx:
        from sqlalchemy import select

        from shequn.members.tables import members

        tier = tx.execute(select(members.c.tier_id).where(members.c.id == buyer)).scalar_one()
    assert tier == vip["id"]
    again = run("tiers", "evaluate", "--tenant", tenant_id, "--database-url", url, "--json")
    assert json.loads(again.stdout)["upgraded"] == 0
    refused = run("tiers", "evaluate", "--database-url", url)
    assert refused.exit_code == 2
    every = run("tiers", "evaluate", "--tenant", tenant_id, "--database-url", url)
    assert every.exit_code == 0, every.output
    assert f"{tenant_id}: 2 members, 0 whose tier may change, 0 upgraded, 0 demoted" in every.stdout

    out = tmp_path / "lines.csv"
    day = PAST.date().isoformat()
    shown = run(
        "simulate-plan", draft["id"], "--tenant", tenant_id, "--from", day, "--to", day,
        "--csv", str(out), "--database-url", url,
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert "2,000" in shown.stdout or "20.0%" in shown.stdout
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["beneficiary_id"], r["amount_fen"], r["rate_bp"]) for r in rows] == [
        (root, "2000", "2000"),
        (root, "2000", "2000"),
    ]
    as_json = run(
        "simulate-plan", draft["id"], "--tenant", tenant_id, "--from", day, "--to", day,
        "--database-url", url, "--json",
    )  # fmt: skip
    answer = json.loads(as_json.stdout)
    assert (answer["total_fen"], answer["against_active"]["total_fen"]) == (4_000, 2_000)
    bad = run(
        "simulate-plan", draft["id"], "--tenant", tenant_id, "--from", "later", "--to", day,
        "--database-url", url,
    )  # fmt: skip
    assert bad.exit_code == 2
    assert "period_unreadable" in bad.output


def test_a_bad_change_of_an_existing_tier_changes_nothing(
    db: Database, api: TestClient, keys: Any
) -> None:
    products(api)
    tier = post(
        api, "/tiers", {"name": "VIP", "rank": 1, "criteria": {"kind": "bought", "sku": "CORE-1"}}
    )
    before = contents(db, keys.tenant_id)
    for body, status, code in (
        ({"demotion": {"mode": "windowed"}}, 422, "tier_demotion_needs_window"),
        ({"criteria": {"kind": "bought", "sku": "NOPE"}}, 404, "product_not_found"),
        (
            {"criteria": {"kind": "fact", "event_type": "X", "window_days": 0}},
            422,
            "tier_criterion_invalid",
        ),
        ({"privileges": {"points_multiplier_bp": 100_001}}, 422, "tier_points_multiplier_invalid"),
        ({"rank": 1_001}, 422, "tier_rank_invalid"),
    ):
        response = api.patch(f"{API}/tiers/{tier['id']}", json=body)
        assert error_of(response) == (status, code), body
    assert contents(db, keys.tenant_id) == before
