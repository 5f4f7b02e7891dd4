"""The OpenAPI document is one an integrator can generate a client from: every operation has a
summary of its own, every parameter and body field a description, a typed answer and the
error every refused request gets; and the answers of the running application (the two lean
routes included, whose answers nothing else checks against their models) conform to it:
schemathesis sends generated requests to every operation, in process, as a tenant's owner,
and checks each answer's status, content type and body against the document."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import BaseRoute

from shequn.clock import ManualClock
from shequn.config import Settings
from shequn.context import Ctx
from shequn.db import Database
from shequn.entrypoints.api.http import documented_routes
from shequn.entrypoints.app import create_app
from shequn.tenancy.service import create_api_key, create_tenant
from tests.e2e.community_world import community_ids
from tests.e2e.conftest import API, TenantKeys, World, bearer, build_world, expect

# Operations of routes still being written whose answers are not typed yet (or whose refusals
# are not the error shape): left out of the checks of answers and of the schemathesis run.
# Each is named, so that the list shrinks as they land.
NOT_TYPED_YET: frozenset[str] = frozenset()
# Operations of routes still being written whose parameters or body fields are not all
# described yet.
NOT_DESCRIBED_YET: frozenset[str] = frozenset()
# Operations of routes still being written that answer what their document does not declare.
NOT_CONFORMING_YET: dict[str, str] = {}
ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
API_ERRORS = {"400", "401", "403", "404", "409", "413", "422", "503"}
EDGE_ERRORS = {"400", "413"}
SETTINGS = Settings(environment="test", api_key_cache_seconds=30, database_url="sqlite://")


@pytest.fixture(scope="module")
def document() -> tuple[dict[str, Any], list[BaseRoute]]:
    # Building the document touches no database.
    app = create_app(SETTINGS, db=Database.from_url("sqlite://"))
    return app.openapi(), documented_routes(app.routes)


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _walk(spec: dict[str, Any], schema: Any, seen: set[str] | None = None) -> Iterator[Any]:
    """Every schema node reachable from `schema`, each component once."""
    seen = set() if seen is None else seen
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            if ref in seen:
                return
            seen.add(ref)
            yield from _walk(spec, _resolve(spec, {"$ref": ref}), seen)
            return
        yield schema
        for key, value in schema.items():
            if key in ("properties", "$defs"):
                for item in value.values():
                    yield from _walk(spec, item, seen)
            elif key in ("items", "additionalProperties", "not"):
                yield from _walk(spec, value, seen)
            elif key in ("anyOf", "oneOf", "allOf", "prefixItems"):
                for item in value:
                    yield from _walk(spec, item, seen)


def _untyped(node: Any) -> str | None:
    """Why a node of an answer's schema leaves a client without a type, if it does."""
    if not isinstance(node, dict):
        return None
    if node == {} or node.get("additionalProperties") is True:
        return "any value"
    if (
        node.get("type") == "object"
        and "properties" not in node
        and not isinstance(node.get("additionalProperties"), dict)
    ):
        return "a bare object"
    if "properties" in node and node.get("additionalProperties") is not False:
        return f"an object that allows unknown fields ({node.get('title')})"
    return None


def test_every_operation_has_a_summary_of_its_own(
    document: tuple[dict[str, Any], list[BaseRoute]],
) -> None:
    spec, routes = document
    names = {
        f"{method} {route.path_format}": route.name
        for route in routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    poor = {
        label: operation.get("summary")
        for label, operation in _operations(spec)
        if not operation.get("summary")
        or operation["summary"] == names[label].replace("_", " ").title()
    }
    assert poor == {}


def test_every_parameter_and_body_field_is_described(
    document: tuple[dict[str, Any], list[BaseRoute]],
) -> None:
    spec, _ = document
    missing: list[str] = []
    for label, operation in _operations(spec):
        if label in NOT_DESCRIBED_YET:
            continue
        for parameter in operation.get("parameters", []):
            if not parameter.get("description"):
                missing.append(f"{label}: {parameter['in']} {parameter['name']}")
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is None:
            continue
        for node in _walk(spec, body["schema"]):
            for name, field in node.get("properties", {}).items():
                if not field.get("description"):
                    missing.append(f"{label}: {node.get('title')}.{name}")
    assert missing == []


def test_every_answer_is_typed_and_every_refusal_is_the_error_shape(
    document: tuple[dict[str, Any], list[BaseRoute]],
) -> None:
    spec, _ = document
    untyped: list[str] = []
    wrong_errors: list[str] = []
    for label, operation in _operations(spec):
        responses = operation["responses"]
        for status, response in responses.items():
            json_body = response.get("content", {}).get("application/json")
            if label in NOT_TYPED_YET:
                continue
            if status.startswith("2") and not response.get("content") and status != "204":
                untyped.append(f"{label} {status}: no answer declared")
            if status.startswith("2") and json_body is not None:
                for node in _walk(spec, json_body["schema"]):
                    why = _untyped(node)
                    if why is not None:
                        untyped.append(f"{label} {status}: {why}")
            errs = status.startswith(("4", "5"))
            if errs and (json_body is None or json_body["schema"] != ERROR_REF):
                wrong_errors.append(f"{label} {status}")
        expected = API_ERRORS if label.split(" ")[1].startswith(API + "/") else EDGE_ERRORS
        if not expected <= set(responses):
            wrong_errors.append(f"{label}: lacks {sorted(expected - set(responses))}")
    assert untyped == []
    assert wrong_errors == []
    # FastAPI's own validation error is nowhere: the API never answers it
    assert not {"HTTPValidationError", "ValidationError"} & set(spec["components"]["schemas"])
    assert '"detail"' not in json.dumps(spec)
    error = spec["components"]["schemas"]["ErrorOut"]
    assert (set(error["properties"]), error["required"]) == (
        {"code", "message", "errors", "findings", "report"},
        ["code", "message"],
    )


# --- the running application against its document ----------------------------------------


def _tenant_maker(db: Database, clock: ManualClock) -> Callable[[str], TenantKeys]:
    def make(name: str = "契约品牌 contract brand") -> TenantKeys:
        tenant_id, owner_key = create_tenant(db=db, clock=clock, name=name)
        ctx = Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="test")
        operator = create_api_key(ctx, name="ops", role="operator")["api_key"]
        readonly = create_api_key(ctx, name="viewer", role="readonly")["api_key"]
        return TenantKeys(tenant_id, bearer(owner_key), bearer(operator), bearer(readonly))

    return make


@pytest.fixture
def served(sqlite_db: Database) -> Iterator[tuple[TestClient, World, dict[str, list[str]]]]:
    """The application on SQLite with a small community in a tenant of its own (`World`), and
    for each path parameter the real ids of that tenant's things an operation may name."""
    clock = ManualClock()
    app = create_app(SETTINGS, clock=clock, db=sqlite_db)
    with TestClient(app, raise_server_exceptions=False) as client:
        world = build_world(client, _tenant_maker(sqlite_db, clock))
        owner = world.keys.owner
        withdrawal = expect(
            client.post(
                f"{API}/members/{world.parent}/withdrawals", json={"amount_fen": 500}, headers=owner
            ),
            201,
        )
        tier = expect(
            client.post(f"{API}/tiers", json={"name": "VIP", "rank": 1}, headers=owner), 201
        )
        keys = expect(client.get(f"{API}/api-keys", headers=owner), 200)
        hook = {"url": "https://hooks.example.com/contract", "event_types": ["*"]}
        endpoint = expect(client.post(f"{API}/webhook-endpoints", json=hook, headers=owner), 201)
        expect(client.post(f"{API}/members", json={"name": "契约"}, headers=owner), 201)
        deliveries = expect(client.get(f"{API}/webhook-deliveries", headers=owner), 200)
        ids = {
            "order_id": [world.closed, world.paid, world.created, world.other_order],
            "member_id": [world.root, world.parent, world.buyer, world.other_member],
            "plan_id": [world.plan, world.other_plan],
            "sku": ["CORE-1", "ONLY-THERE"],
            "withdrawal_id": [withdrawal["id"]],
            "tier_id": [tier["id"]],
            # never the owner's own key: revoking it would leave the run without one
            "key_id": [k["id"] for k in keys if k["role"] == "readonly"],
            "endpoint_id": [endpoint["id"]],
            "delivery_id": [d["id"] for d in deliveries["items"]],
        }
        members = [world.root, world.parent, world.buyer]
        ids.update(community_ids(client, owner, world.keys.tenant_id, members))
        ids["request_id"] = _stock_request_ids(client, owner, tier["id"])
        yield client, world, ids


def _stock_request_ids(client: TestClient, owner: dict[str, str], tier_id: str) -> list[str]:
    """An agent of `tier_id` buying CORE-1 at a wholesale price, with two stock orders
    awaiting payment (one for each of pay and cancel to find awaiting)."""
    prices = {"tier_prices": [{"tier_id": tier_id, "wholesale_price_fen": 5_000}]}
    expect(client.patch(f"{API}/products/CORE-1", json=prices, headers=owner), 200)
    agent = expect(
        client.post(f"{API}/members", json={"name": "代理", "tier_id": tier_id}, headers=owner),
        201,
    )
    body = {"member_id": agent["id"], "lines": [{"sku": "CORE-1", "quantity": 1}]}
    return [
        expect(client.post(f"{API}/stock-order-requests", json=body, headers=owner), 201)["id"]
        for _ in range(2)
    ]


CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 4}


def test_the_application_answers_as_its_document_says(
    served: tuple[TestClient, World, dict[str, list[str]]],
) -> None:
    client, world, ids = served
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    headers = {**world.keys.owner, "Accept-Language": "en"}
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {
        f"POST {API}/orders",
        f"POST {API}/orders/{{order_id}}/pay",
    }

    # the two lean routes, which nothing validates at run time: answers of every kind
    statuses = []
    for case in _lean_answers(schema, client, world):
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS)
        statuses.append((case.operation.label, response.status_code))
    assert statuses == [
        (f"POST {API}/orders", 201),
        (f"POST {API}/orders", 200),
        (f"POST {API}/orders/{{order_id}}/pay", 200),
        (f"POST {API}/orders/{{order_id}}/pay", 200),
        (f"POST {API}/orders/{{order_id}}/pay", 200),
        (f"POST {API}/orders/{{order_id}}/pay", 409),
    ]
    # (a body that is no UTF-8 at all is refused by the lean routes as by a plain one)
    garbled = {**headers, "Content-Type": "application/json"}
    for path in ("/orders", f"/orders/{world.created}/pay", "/members"):
        answer = client.post(f"{API}{path}", content=b'{"buyer_id": "\xff"}', headers=garbled)
        assert (answer.status_code, answer.json()["code"]) == (400, "bad_request")

    # and every operation, with generated requests
    for operation in operations:
        if operation.label in NOT_TYPED_YET or operation.label in NOT_CONFORMING_YET:
            continue
        for mode, count in EXAMPLES.items():
            error = _explore(operation, mode, count, ids, headers)
            if error is not None:
                failures[f"{operation.label} ({mode.value})"] = error
    assert not failures, "\n\n".join(f"{label}: {why}" for label, why in failures.items())


def _lean_answers(schema: Any, client: TestClient, world: World) -> list[Any]:
    """Cases for `POST /orders` and `POST /orders/{order_id}/pay`: a new order, its replay,
    a payment, its replay, a payment after the order was cancelled, and a refused one."""
    create = schema[f"{API}/orders"]["POST"]
    pay = schema[f"{API}/orders/{{order_id}}/pay"]["POST"]
    one = {"buyer_id": world.buyer, "lines": [{"sku": "CORE-1", "quantity": 1}]}
    owner = world.keys.owner
    fresh = expect(client.post(f"{API}/orders", json=one, headers=owner), 201)
    cancelled = expect(client.post(f"{API}/orders", json=one, headers=owner), 201)
    expect(client.post(f"{API}/orders/{cancelled['id']}/cancel", headers=owner), 200)
    json_body = {"media_type": "application/json"}
    paid = {"provider_txn_id": "contract-1", "amount_fen": fresh["total_fen"]}
    late = {"provider_txn_id": "contract-2", "amount_fen": cancelled["total_fen"]}
    return [
        create.Case(body={**one, "idempotency_key": "contract-k"}, **json_body),
        create.Case(body={**one, "idempotency_key": "contract-k"}, **json_body),
        pay.Case(path_parameters={"order_id": fresh["id"]}, body=paid, **json_body),
        pay.Case(path_parameters={"order_id": fresh["id"]}, body=paid, **json_body),
        pay.Case(path_parameters={"order_id": cancelled["id"]}, body=late, **json_body),
        pay.Case(path_parameters={"order_id": world.paid}, body=paid, **json_body),
    ]


def _explore(
    operation: Any,
    mode: GenerationMode,
    count: int,
    ids: dict[str, list[str]],
    headers: dict[str, str],
) -> str | None:
    """Send `count` generated requests to `operation`; the first failure, if any."""
    names = re.findall(r"{(\w+)}", operation.path)
    chosen = st.fixed_dictionaries({n: st.sampled_from(ids[n]) for n in names if n in ids})
    strategy = chosen.flatmap(
        lambda fixed: operation.as_strategy(generation_mode=mode, path_parameters=fixed)
    )

    @hypothesis.settings(
        max_examples=count,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        return None  # nothing to send wrong: no parameters and no body
    # One operation's failures must not hide another's (schemathesis groups them).
    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001
        return str(exc)[:2000]
    return None


# --- what the document declares, the use case refuses beyond -----------------------------


def test_the_declared_setting_ranges_are_the_ones_refused(
    document: tuple[dict[str, Any], list[BaseRoute]], api: TestClient
) -> None:
    spec, _ = document
    patch = spec["components"]["schemas"]["SettingsPatch"]
    probes: list[tuple[list[str], int, int]] = []
    for name, field in patch["properties"].items():
        target = _resolve(spec, next(iter(field.get("anyOf", [field]))))
        nested = target.get("properties")
        for key, item in (nested or {name: field}).items():
            kind = next(k for k in item.get("anyOf", [item]) if k.get("type") != "null")
            if kind.get("type") == "integer":
                path = [name, key] if nested else [name]
                probes.append((path, int(kind["minimum"]), int(kind["maximum"])))
    assert len(probes) == 14

    def body(path: list[str], value: int) -> dict[str, Any]:
        return {path[0]: {path[1]: value}} if len(path) == 2 else {path[0]: value}

    refused = []
    for path, low, high in probes:
        for value in (low - 1, high + 1):
            answer = api.patch(f"{API}/settings", json=body(path, value))
            refused.append((".".join(path), value, answer.status_code, answer.json()["code"]))
        for value in (low, high):
            expect(api.patch(f"{API}/settings", json=body(path, value)), 200)
    assert refused == [
        (name, value, 422, "setting_out_of_range")
        for name, low, high in ((".".join(p), lo, hi) for p, lo, hi in probes)
        for value in (low - 1, high + 1)
    ]
