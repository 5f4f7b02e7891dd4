"""Every request passes the same application: the two lean routes of a paid order answer as the
plain FastAPI definitions of the same endpoints would, are documented as they would be, go
through the same middleware as every other route (also under the server `shequn serve`
runs), and every route refuses a body over 1 MiB with 413 and changes nothing."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
import uvicorn
from fastapi import APIRouter, FastAPI, Path, Response, status
from fastapi.testclient import TestClient
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from shequn.clock import ManualClock
from shequn.config import Settings
from shequn.db import Database
from shequn.entrypoints.api import orders as orders_api
from shequn.entrypoints.api.http import API_PREFIX, LeanRoute, Writer, blocking
from shequn.entrypoints.api.orders import OfferedOrderOut, OrderCreate, PaidOrderOut, PaymentIn
from shequn.entrypoints.api.shapes import replay_responses
from shequn.entrypoints.app import MAX_BODY_BYTES, create_app
from shequn.entrypoints.server import ServerOptions, uvicorn_config
from shequn.flows.growth_orders import create_order_with_offers
from shequn.orders import creation, payment
from tests.e2e.conftest import API, TenantKeys, World, build_world, contents, expect
from tests.e2e.paid_order_script import paid_order_script

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def _documented_as(lean: Callable[..., Any]) -> Callable[[Endpoint], Endpoint]:
    """Give a conventional endpoint the docstring of the lean one it stands for."""

    def copy(endpoint: Endpoint) -> Endpoint:
        endpoint.__doc__ = lean.__doc__
        return endpoint

    return copy


def _conventional_routes() -> list[Any]:
    """The two endpoints as plain FastAPI definitions (dependencies, a body model, a returned
    dict validated by the answer's model), calling the same use cases: what the lean routes
    must be indistinguishable from."""
    router = APIRouter(prefix=API_PREFIX, tags=["orders"])

    @router.post(
        "/orders",
        status_code=status.HTTP_201_CREATED,
        response_model=OfferedOrderOut,
        responses=replay_responses(OfferedOrderOut, "order"),
        response_model_exclude_unset=True,  # `discounts` only where coupons or points paid
    )
    @blocking
    @_documented_as(orders_api.create_order)
    def create_order(ctx: Writer, body: OrderCreate, response: Response) -> dict[str, Any]:
        offers = body.coupon_ids or body.points_fen or body.share_code is not None
        order, replayed = (
            create_order_with_offers(
                ctx,
                buyer_id=body.buyer_id,
                lines=[line.model_dump() for line in body.lines],
                idempotency_key=body.idempotency_key,
                attributed_sharer_id=body.attributed_sharer_id,
                share_code=body.share_code,
                coupon_ids=body.coupon_ids or (),
                points_fen=body.points_fen,
            )
            if offers
            else creation.create_order(
                ctx,
                buyer_id=body.buyer_id,
                lines=[line.model_dump() for line in body.lines],
                idempotency_key=body.idempotency_key,
                attributed_sharer_id=body.attributed_sharer_id,
            )
        )
        if replayed:
            response.status_code = status.HTTP_200_OK
            response.headers["Idempotent-Replayed"] = "true"
        return order

    @router.post("/orders/{order_id}/pay", response_model=PaidOrderOut)
    @blocking
    @_documented_as(orders_api.pay_order)
    def pay_order(
        ctx: Writer,
        body: PaymentIn,
        response: Response,
        order_id: str = Path(description=orders_api.ORDER_ID),
    ) -> dict[str, Any]:
        order, replayed = payment.pay_order(
            ctx, order_id=order_id, provider_txn_id=body.provider_txn_id, amount_fen=body.amount_fen
        )
        if replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return order

    return list(router.routes)


def _with_conventional_routes(app: FastAPI) -> FastAPI:
    conventional = iter(_conventional_routes())
    app.router.routes[:] = [
        next(conventional) if isinstance(r, LeanRoute) else r for r in app.router.routes
    ]
    return app


SETTINGS = Settings(environment="test", api_key_cache_seconds=30, database_url="sqlite://")


@pytest.fixture
def both(db: Database, clock: ManualClock) -> Iterator[dict[str, TestClient]]:
    apps = {
        "lean": create_app(SETTINGS, clock=clock, db=db),
        "conventional": _with_conventional_routes(create_app(SETTINGS, clock=clock, db=db)),
    }
    clients = {name: TestClient(app, raise_server_exceptions=False) for name, app in apps.items()}
    for client in clients.values():
        client.__enter__()
    yield clients
    for client in clients.values():
        client.__exit__(None, None, None)


def test_the_lean_routes_are_the_plain_definitions(
    both: dict[str, TestClient],
    make_tenant: Callable[[str], TenantKeys],
    clock: ManualClock,
) -> None:
    # given the same world, at the same moments, behind each app
    start = clock.now()
    answers = {}
    for name, client in both.items():
        clock.set(start)
        answers[name] = paid_order_script(client, build_world(client, make_tenant))

    # then every answer (status, headers, body) is the same, good and bad alike
    assert len(answers["lean"]) == len(answers["conventional"]) == 28
    for lean, conventional in zip(answers["lean"], answers["conventional"], strict=True):
        assert lean == conventional
    statuses = {answer[1] for answer in answers["lean"]}
    assert statuses == {200, 201, 401, 403, 404, 409, 422}


def test_the_lean_routes_are_documented_as_the_plain_definitions(
    both: dict[str, TestClient],
) -> None:
    lean = both["lean"].get("/openapi.json").json()
    conventional = both["conventional"].get("/openapi.json").json()
    for path in (f"{API}/orders", f"{API}/orders/{{order_id}}/pay"):
        assert lean["paths"][path] == conventional["paths"][path]
    assert lean == conventional
    body = lean["paths"][f"{API}/orders"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OrderCreate"
    }
    assert set(lean["components"]["schemas"]["OrderCreate"]["properties"]) == {
        "buyer_id",
        "lines",
        "idempotency_key",
        "attributed_sharer_id",
        "share_code",
        "coupon_ids",
        "points_fen",
    }


class Counting:
    """A middleware that counts the requests it sees, by path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_hot_and_plain_routes_pass_the_same_middleware_under_the_server(
    db: Database, clock: ManualClock, make_tenant: Callable[[str], TenantKeys]
) -> None:
    # given the application behind a counting middleware, served as `shequn serve` serves it
    app = create_app(SETTINGS, clock=clock, db=db)
    counters: list[Counting] = []

    def counted(inner: ASGIApp) -> Counting:
        counters.append(Counting(inner))
        return counters[-1]

    app.add_middleware(counted)  # type: ignore[arg-type]
    with TestClient(app) as setup:
        world: World = build_world(setup, make_tenant)
    (counter,) = counters
    counter.seen.clear()
    port = _free_port()
    config = uvicorn_config(ServerOptions("127.0.0.1", port, 1, access_log=False), app=app)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive()
            threading.Event().wait(0.05)
        import httpx2

        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", headers=world.keys.owner) as http:
            order = expect(
                http.post(
                    f"{API}/orders",
                    json={"buyer_id": world.buyer, "lines": [{"sku": "CORE-1", "quantity": 1}]},
                ),
                201,
            )
            paid = http.post(
                f"{API}/orders/{order['id']}/pay",
                json={"provider_txn_id": "served-1", "amount_fen": order["total_fen"]},
            )
            expect(paid, 200)
            expect(http.get(f"{API}/orders/{order['id']}"), 200)
            expect(http.get("/healthz"), 200)
    finally:
        server.should_exit = True
        thread.join(timeout=30)

    # then every request, hot or not, reached the application's middleware
    assert counters == [counter]
    assert counter.seen == [
        f"POST {API}/orders",
        f"POST {API}/orders/{order['id']}/pay",
        f"GET {API}/orders/{order['id']}",
        "GET /healthz",
    ]


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    out = []
    for route in app.routes:
        if isinstance(route, Route):
            path = route.path.replace("{", "").replace("}", "")
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    out.append((method, path))
    return out


def test_every_route_refuses_a_body_over_one_mebibyte(
    client: TestClient, fresh_world: World, db: Database
) -> None:
    # given every route of the application, and the rows of the world's tenants
    app = client.app
    assert isinstance(app, FastAPI)
    routes = _routes(app)
    assert ("POST", f"{API}/orders") in routes
    assert len(routes) >= 40
    before = contents(db, fresh_world.keys.tenant_id, fresh_world.other.tenant_id)
    too_big = b"{" + b" " * MAX_BODY_BYTES + b"}"

    for method, path in routes:
        # when a body one byte over the limit comes with its length
        response = client.request(
            method,
            path,
            content=too_big[: MAX_BODY_BYTES + 1],
            headers={**fresh_world.keys.owner, "Content-Type": "application/json"},
        )
        # then it is refused before anything reads it
        assert (response.status_code, response.json()["code"]) == (413, "body_too_large"), path

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(too_big), 64 * 1024):
            yield too_big[start : start + 64 * 1024]

    for method, path in routes:
        # when it comes without a length, in pieces
        response = client.request(
            method,
            path,
            content=pieces(),
            headers={**fresh_world.keys.owner, "Content-Type": "application/json"},
        )
        # then it is refused once it passes the limit, whether the route reads it or not
        assert (response.status_code, response.json()["code"]) == (413, "body_too_large"), path

    # and nothing changed anywhere
    assert contents(db, fresh_world.keys.tenant_id, fresh_world.other.tenant_id) == before


def test_a_body_just_under_the_limit_is_read(api: TestClient, keys: TenantKeys) -> None:
    padded = b'{"name": "' + b"x" * 10 + b'"' + b" " * (MAX_BODY_BYTES - 40) + b"}"
    assert len(padded) < MAX_BODY_BYTES
    created = api.post(
        f"{API}/members", content=padded, headers={"Content-Type": "application/json"}
    )
    assert expect(created, 201)["name"] == "x" * 10
