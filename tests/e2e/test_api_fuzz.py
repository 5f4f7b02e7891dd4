"""Fuzz every POST/PATCH route with JSON-ish values: whatever arrives, the answer is never a 500,
and every error is a well-formed `{"code", "message"}`.

Each route knows what a *valid* body looks like (real ids of a small community, sane amounts).
A fuzzed body is then: any JSON value at all; a valid body; a valid body with one field set to
null or to any JSON value (the way most bad requests look, and the way to get past the first
check to the code behind it); a valid subset; or a valid body plus an unknown field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from shequn.db import Database
from tests.e2e.conftest import API, TenantKeys, World, build_world, error_of, expect

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- JSON-ish values ------------------------------------------------------------------------

EDGE_INTS = st.one_of(
    st.sampled_from([0, 1, -1, 99, 100, 9_900, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63]),
    st.sampled_from([2**64, 10**13, 10**13 + 1, 10**30, -(10**30), 10**400]),
)
EDGE_TEXTS = st.one_of(
    st.sampled_from(["", " ", "\x00", "a\x00b", "😀", "中文名字", "null", "0", "-1", "1e309"]),
    st.sampled_from(["x" * 300, "\u202e", "'; DROP TABLE t; --", "%00", "../../etc", "\\"]),
)
TEXTS = st.one_of(st.text(max_size=30), EDGE_TEXTS)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), EDGE_INTS, st.floats(), TEXTS)
JSON: SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXTS, inner, max_size=4)),
    max_leaves=10,
)


def bodies(valid: SearchStrategy[dict[str, Any]], names: list[str]) -> SearchStrategy[Any]:
    """Any JSON; a valid body; one with a field nulled or replaced by any JSON; a valid
    subset; or a valid body with an unknown field."""
    one_off = st.tuples(valid, st.sampled_from(names), st.one_of(st.none(), JSON)).map(
        lambda t: {**t[0], t[1]: t[2]}
    )
    subset = st.tuples(valid, st.sets(st.sampled_from(names))).map(
        lambda t: {k: v for k, v in t[0].items() if k not in t[1]}
    )
    extra = st.tuples(valid, TEXTS, JSON).map(lambda t: {**t[0], t[1]: t[2]})
    return st.one_of(JSON, valid, one_off, one_off, one_off, subset, extra)


# --- the community the requests aim at ------------------------------------------------------


@dataclass(frozen=True)
class Targets:
    """The world, a tier, and two approved withdrawals of the parent's: one for the payout
    results, one to reject."""

    world: World
    tier: str
    withdrawal: str
    payout: str
    rejectable: str

    def members(self, *extra: str | None) -> SearchStrategy[Any]:
        w = self.world
        return st.sampled_from([w.root, w.parent, w.buyer, *extra])

    def fill(self, template: str) -> str:
        w = self.world
        return template.format(
            root=w.root,
            parent=w.parent,
            buyer=w.buyer,
            created=w.created,
            paid=w.paid,
            closed=w.closed,
            tier=self.tier,
            withdrawal=self.withdrawal,
            rejectable=self.rejectable,
        )


# One community per database serves every route of this module (building one per test would
# cost a third of the module's time). The routes run in the order below, each fuzzing the state
# the previous ones left; the settings route runs last, so that odd settings (a huge withdrawal
# minimum, say) do not narrow what the other routes can reach. The shared `world` of
# conftest is never touched here: this module builds its own.
_TARGETS: dict[int, Targets] = {}


@pytest.fixture
def targets(db: Database, client: TestClient, make_tenant: Callable[[str], TenantKeys]) -> Targets:
    if id(db) not in _TARGETS:
        world = build_world(client, make_tenant)
        h = world.keys.owner
        tier = expect(client.post(f"{API}/tiers", json={"name": "VIP", "rank": 1}, headers=h), 201)
        path = f"{API}/members/{world.parent}/withdrawals"
        paying, rejecting = (
            expect(client.post(path, json={"amount_fen": 100}, headers=h), 201) for _ in range(2)
        )
        _TARGETS[id(db)] = Targets(
            world, tier["id"], paying["id"], paying["payout_id"], rejecting["id"]
        )
    return _TARGETS[id(db)]


WORDS = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=12)
REASONS = st.one_of(WORDS, st.just("客户要求 customer asked"))
KEYS = st.sampled_from(["k1", "k2", " k1 ", "k3"])
PHONES = st.integers(13_800_000_000, 13_899_999_999).map(str)


def maybe(strategy: SearchStrategy[Any]) -> SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


# --- the routes, each with what a valid body looks like -------------------------------------

Valid = Callable[[Targets], SearchStrategy[dict[str, Any]]]


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    paths: tuple[str, ...]
    names: tuple[str, ...]  # the body's fields, for the one-field mutations
    valid: Valid


def settings_body(t: Targets) -> SearchStrategy[dict[str, Any]]:
    binding = st.fixed_dictionaries(
        {},
        optional={
            "mode": st.sampled_from(["first_touch", "last_touch"]),
            "window_days": st.integers(1, 365),
            "trigger": st.sampled_from(["registration", "first_paid_order"]),
            "protection_days": st.integers(0, 3650),
        },
    )
    stages = st.fixed_dictionaries(
        {},
        optional={
            "user_min_paid_orders": st.integers(1, 9),
            "fan_min_paid_orders": st.integers(1, 9),
        },
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "after_sales_days": st.integers(0, 365),
            "auto_complete_days": st.integers(1, 365),
            "compliance_profile": st.sampled_from(["direct", "wechat", "custom"]),
            "custom_commission_cap_bp": st.integers(0, 10_000),
            "binding_policy": binding,
            "withdrawal_min_fen": st.integers(0, 10**6),
            "withdrawal_fee_bp": st.integers(0, 5_000),
            "withdrawal_auto_approve_max_fen": st.integers(0, 10**6),
            "stage_criteria": stages,
            "locale": st.sampled_from(["zh_CN", "en"]),
        },
    )


def product_body(t: Targets, *, create: bool) -> SearchStrategy[dict[str, Any]]:
    tier_price = st.fixed_dictionaries(
        {"tier_id": st.just(t.tier)},
        optional={
            "member_price_fen": st.integers(0, 9_900),
            "wholesale_price_fen": st.integers(0, 9_900),
        },
    )
    fields = {
        "name": WORDS,
        "price_fen": st.integers(0, 10**7),
        "ladder_role": st.sampled_from(["bait", "core", "partner"]),
        "category": maybe(st.sampled_from(["护肤", "食品"])),
        "active": st.booleans(),
        "tier_prices": st.lists(tier_price, max_size=1),
    }
    if create:
        required = {"sku": st.from_regex(r"[A-Z][A-Z0-9-]{0,10}", fullmatch=True)}
        required |= {k: fields.pop(k) for k in ("name", "price_fen", "ladder_role")}
        return st.fixed_dictionaries(required, optional=fields)
    return st.fixed_dictionaries({}, optional=fields)


def member_body(t: Targets, *, create: bool) -> SearchStrategy[dict[str, Any]]:
    fields = {
        "phone": maybe(PHONES),
        "external_id": maybe(WORDS),
        "tags": st.lists(WORDS, max_size=3),
        "tier_id": maybe(st.just(t.tier)),
    }
    if not create:
        return st.fixed_dictionaries({}, optional={"name": WORDS, **fields})
    fields |= {
        "referrer_id": maybe(t.members()),
        "source": st.sampled_from(["share_link", "qr_scene", "staff", "import"]),
        "scene": maybe(WORDS),
    }
    return st.fixed_dictionaries({"name": WORDS}, optional=fields)


def rebind_body(t: Targets) -> SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"referrer_id": t.members(None), "reason": REASONS})


def touch_body(t: Targets) -> SearchStrategy[dict[str, Any]]:
    base = {"sharer_id": t.members()}
    optional = {"source": st.sampled_from(["share_link", "qr_scene"]), "scene": WORDS}
    return st.one_of(
        st.fixed_dictionaries({**base, "member_id": t.members()}, optional=optional),
        st.fixed_dictionaries({**base, "phone": PHONES}, optional=optional),
        st.fixed_dictionaries({**base, "external_id": WORDS}, optional=optional),
    )


def plan_body(t: Targets) -> SearchStrategy[dict[str, Any]]:
    scope = st.one_of(
        st.just({"kind": "all"}),
        st.sampled_from(["bait", "core", "partner"]).map(
            lambda r: {"kind": "ladder_role", "value": r}
        ),
        st.just({"kind": "category", "value": "护肤"}),
        st.just({"kind": "product", "value": "CORE-1"}),
    )
    level = st.fixed_dictionaries(
        {"level": st.integers(1, 3)},
        optional={
            "rate_bp": st.integers(0, 2_000),
            "fixed_fen": st.integers(0, 500),
            "scope": scope,
            "tiers": st.just([t.tier]),
        },
    )
    optional = {"name": WORDS, "peer_bonus_bp": st.integers(0, 500), "depth": st.integers(1, 3)}
    levels = st.fixed_dictionaries(
        {"mode": st.just("levels"), "levels": st.lists(level, min_size=1, max_size=3)},
        optional=optional,
    )
    differential = st.fixed_dictionaries(
        {
            "mode": st.just("differential"),
            "tier_rates": st.lists(
                st.fixed_dictionaries(
                    {"tier_id": st.just(t.tier), "rate_bp": st.integers(0, 3_000)}
                ),
                min_size=1,
                max_size=1,
            ),
        },
        optional=optional,
    )
    return st.one_of(levels, differential)


PLAN_FIELDS: tuple[str, ...] = ("mode", "name", "depth", "levels", "tier_rates", "peer_bonus_bp")
PLAN_FIELDS += ("signup_reward_fen", "qualification_sku", "team_volume_bonus_bp", "release")


def criteria_tree() -> SearchStrategy[dict[str, Any]]:
    window = maybe(st.integers(1, 3_650))
    leaf = st.one_of(
        st.fixed_dictionaries(
            {"kind": st.sampled_from(["spend", "single_order"]), "min_fen": st.integers(1, 10**6)},
            optional={"window_days": window},
        ),
        st.fixed_dictionaries(
            {"kind": st.just("bought"), "sku": st.sampled_from(["CORE-1", "NOPE"])},
            optional={"window_days": window},
        ),
        st.fixed_dictionaries(
            {
                "kind": st.sampled_from(["direct_customers", "team_size"]),
                "min_count": st.integers(1, 100),
            }
        ),
        st.fixed_dictionaries(
            {"kind": st.just("fact"), "event_type": st.just("ChallengeCompleted")},
            optional={"min_count": st.integers(1, 10), "window_days": window},
        ),
    )
    return st.recursive(
        leaf,
        lambda inner: st.fixed_dictionaries(
            {
                "kind": st.sampled_from(["all_of", "any_of"]),
                "of": st.lists(inner, min_size=1, max_size=3),
            }
        ),
        max_leaves=6,
    )


def tier_body(t: Targets, *, create: bool) -> SearchStrategy[dict[str, Any]]:
    privileges = st.fixed_dictionaries(
        {},
        optional={
            "discount_bp": st.integers(0, 9_000),
            "points_multiplier_bp": st.integers(0, 100_000),
            "may_distribute": st.booleans(),
            "service_tags": st.lists(WORDS, max_size=3),
        },
    )
    demotion = st.one_of(
        st.just({"mode": "never"}),
        st.fixed_dictionaries(
            {"mode": st.just("windowed")},
            optional={
                "buffer_bp": st.integers(5_000, 10_000),
                "hold_days": st.integers(0, 3_650),
            },
        ),
    )
    fields = {"criteria": maybe(criteria_tree()), "privileges": privileges, "demotion": demotion}
    name_rank = {"name": WORDS, "rank": st.integers(2, 1_000)}
    if create:
        return st.fixed_dictionaries(name_rank, optional=fields)
    return st.fixed_dictionaries({}, optional={**name_rank, **fields})


TIER_FIELDS: tuple[str, ...] = ("name", "rank", "criteria", "privileges", "demotion")


def order_body(t: Targets) -> SearchStrategy[dict[str, Any]]:
    line = st.fixed_dictionaries({"sku": st.just("CORE-1"), "quantity": st.integers(1, 5)})
    return st.fixed_dictionaries(
        {"buyer_id": t.members(), "lines": st.lists(line, min_size=1, max_size=1)},
        optional={"idempotency_key": KEYS, "attributed_sharer_id": t.members()},
    )


def pay_body(t: Targets) -> SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "provider_txn_id": st.sampled_from(["wx-paid", "wx-closed", "wx-1", "wx-2"]),
            "amount_fen": st.one_of(st.just(9_900), st.integers(0, 20_000)),
        }
    )


def refund_body(t: Targets) -> SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"amount_fen": st.integers(1, 9_900), "reason": REASONS}, optional={"idempotency_key": KEYS}
    )


def withdrawal_body(t: Targets) -> SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"amount_fen": st.integers(100, 990)}, optional={"idempotency_key": KEYS}
    )


def payout_body(t: Targets) -> SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"payout_id": st.just(t.payout), "status": st.sampled_from(["paid", "failed"])},
        optional={"provider_ref": WORDS, "reason": REASONS},
    )


ORDERS = ("/orders/{created}", "/orders/{paid}", "/orders/{closed}", "/orders/ord_nope")
MEMBERS = ("/members/{root}", "/members/{parent}", "/members/{buyer}", "/members/mem_nope")
PRODUCT_FIELDS = ("sku", "name", "price_fen", "ladder_role", "category", "active", "tier_prices")
MEMBER_FIELDS = (
    "name",
    "phone",
    "external_id",
    "referrer_id",
    "source",
    "scene",
    "tags",
    "tier_id",
)
SETTINGS_FIELDS: tuple[str, ...] = ("after_sales_days", "auto_complete_days", "compliance_profile")
SETTINGS_FIELDS += ("custom_commission_cap_bp", "binding_policy", "withdrawal_min_fen")
SETTINGS_FIELDS += ("withdrawal_fee_bp", "withdrawal_auto_approve_max_fen", "stage_criteria")
SETTINGS_FIELDS += ("locale",)

ROUTES = [
    Route(
        "create-product",
        "POST",
        ("/products",),
        PRODUCT_FIELDS,
        lambda t: product_body(t, create=True),
    ),
    Route(
        "patch-product",
        "PATCH",
        ("/products/CORE-1", "/products/NOPE"),
        PRODUCT_FIELDS[1:],
        lambda t: product_body(t, create=False),
    ),
    Route(
        "create-member", "POST", ("/members",), MEMBER_FIELDS, lambda t: member_body(t, create=True)
    ),
    Route(
        "patch-member",
        "PATCH",
        MEMBERS,
        ("name", "phone", "external_id", "tags", "tier_id"),
        lambda t: member_body(t, create=False),
    ),
    Route(
        "rebind-member",
        "POST",
        tuple(f"{m}/rebind" for m in MEMBERS),
        ("referrer_id", "reason"),
        rebind_body,
    ),
    Route(
        "record-touch",
        "POST",
        ("/referral-touches",),
        ("sharer_id", "member_id", "phone", "external_id", "source", "scene"),
        touch_body,
    ),
    Route("create-plan", "POST", ("/commission-plans",), PLAN_FIELDS, plan_body),
    Route("create-tier", "POST", ("/tiers",), TIER_FIELDS, lambda t: tier_body(t, create=True)),
    Route(
        "patch-tier",
        "PATCH",
        ("/tiers/{tier}", "/tiers/tier_nope"),
        TIER_FIELDS,
        lambda t: tier_body(t, create=False),
    ),
    Route(
        "create-order",
        "POST",
        ("/orders",),
        ("buyer_id", "lines", "idempotency_key", "attributed_sharer_id"),
        order_body,
    ),
    Route(
        "pay-order",
        "POST",
        tuple(f"{o}/pay" for o in ORDERS),
        ("provider_txn_id", "amount_fen"),
        pay_body,
    ),
    Route(
        "refund-order",
        "POST",
        tuple(f"{o}/refunds" for o in ORDERS),
        ("amount_fen", "reason", "idempotency_key"),
        refund_body,
    ),
    Route(
        "request-withdrawal",
        "POST",
        tuple(f"{m}/withdrawals" for m in MEMBERS),
        ("amount_fen", "idempotency_key"),
        withdrawal_body,
    ),
    Route(
        "reject-withdrawal",
        "POST",
        ("/withdrawals/{rejectable}/reject", "/withdrawals/wd_nope/reject"),
        ("reason",),
        lambda t: st.fixed_dictionaries({"reason": REASONS}),
    ),
    Route(
        "payout-result",
        "POST",
        ("/withdrawals/{withdrawal}/payout-result",),
        ("payout_id", "status", "provider_ref", "reason"),
        payout_body,
    ),
    Route(
        "create-api-key",
        "POST",
        ("/api-keys",),
        ("name", "role"),
        lambda t: st.fixed_dictionaries(
            {"name": WORDS, "role": st.sampled_from(["owner", "operator", "readonly"])}
        ),
    ),
    Route("patch-settings", "PATCH", ("/settings",), SETTINGS_FIELDS, settings_body),
]


def send(client: TestClient, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    # Serialised by hand so that NaN and infinities reach the server as Python's json sends them.
    content = json.dumps(body).encode()
    headers = {**headers, "Content-Type": "application/json"}
    return client.request(method, f"{API}{path}", content=content, headers=headers)


def check(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        error_of(response)  # exactly {"code", "message"} (plus errors/findings where documented)


@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
@FUZZ
@given(data=st.data())
def test_no_body_makes_a_route_answer_500(
    client: TestClient, db: Database, targets: Targets, route: Route, data: st.DataObject
) -> None:
    path = targets.fill(data.draw(st.sampled_from(route.paths), label="path"))
    body = data.draw(bodies(route.valid(targets), list(route.names)), label="body")

    response = send(client, route.method, path, body, targets.world.keys.owner)

    check(response)


BODYLESS = (
    ("POST", "/orders/{}/ship"),
    ("POST", "/orders/{}/complete"),
    ("POST", "/orders/{}/cancel"),
    ("POST", "/commission-plans/{}/activate"),
    ("POST", "/withdrawals/{}/approve"),
    ("GET", "/members/{}/team"),
    ("GET", "/members/{}/wallet"),
    ("GET", "/products/{}"),
)


@FUZZ
@given(data=st.data())
def test_no_path_segment_makes_a_route_answer_500(
    client: TestClient, targets: Targets, data: st.DataObject
) -> None:
    w = targets.world
    method, template = data.draw(st.sampled_from(BODYLESS), label="route")
    real = [w.created, w.paid, w.closed, w.plan, targets.withdrawal, w.buyer, "CORE-1"]
    segment = data.draw(st.one_of(st.sampled_from(real), TEXTS), label="segment")
    path = f"{API}{template.format(quote(segment, safe=''))}"

    response = client.request(method, path, headers=w.keys.owner)

    check(response)


# --- query parameters of the read routes ----------------------------------------------------

QUERIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/members", ("tag", "tier_id", "referrer_id", "phone", "external_id", "after", "limit")),
    ("/orders", ("buyer_id", "status", "idempotency_key", "after", "limit")),
    ("/events", ("subject_type", "subject_id", "type", "after", "limit")),
    ("/withdrawals", ("member_id", "status", "after", "limit")),
    ("/products", ("ladder_role", "category", "active")),
    ("/members/{buyer}/commissions", ("status", "after", "limit")),
    ("/members/{root}/team/members", ("max_depth", "after", "limit")),
)
QUERY_VALUES = st.one_of(
    TEXTS,
    st.integers().map(str),
    EDGE_INTS.map(str),
    st.sampled_from(["true", "false", "paid", "pending", "core", "0", "501", "1e3"]),
)


@FUZZ
@given(data=st.data())
def test_no_query_makes_a_read_route_answer_500(
    client: TestClient, targets: Targets, data: st.DataObject
) -> None:
    w = targets.world
    template, names = data.draw(st.sampled_from(QUERIES), label="route")
    path = template.format(buyer=w.buyer, root=w.root)
    query = data.draw(
        st.dictionaries(st.sampled_from(names), QUERY_VALUES, max_size=len(names)), label="query"
    )

    response = client.get(f"{API}{path}", params=query, headers=w.keys.readonly)

    check(response)
