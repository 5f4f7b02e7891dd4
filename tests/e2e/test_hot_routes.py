"""The fast answers to the two requests of a paid order are byte for byte the routes' answers,
for requests that succeed, replay or fail, and fall back to the routes for anything else."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shequn.clock import ManualClock
from shequn.config import Settings
from shequn.db import Database
from shequn.entrypoints import hot_routes
from shequn.entrypoints.app import create_app
from shequn.orders import service as orders_service
from tests.e2e.conftest import API, TenantKeys, World, bearer, build_world

_GENERATED = re.compile(r"\b[a-z]{2,5}_[0-9a-hjkmnp-tv-z]{26}\b")


class _Names:
    """Replaces every generated id in a text by a label given in order of first sight."""

    def __init__(self, known: dict[str, str]) -> None:
        self.labels = dict(known)

    def __call__(self, text: str) -> str:
        def label(match: re.Match[str]) -> str:
            found = match.group(0)
            if found not in self.labels:
                self.labels[found] = f"<id {len(self.labels)}>"
            return self.labels[found]

        return _GENERATED.sub(label, text)


def _script(client: TestClient, world: World) -> list[tuple[Any, ...]]:
    """A run of create and pay requests, good and bad; each answer as (status, the headers
    that matter, the body with ids named)."""
    names = _Names(
        {
            world.buyer: "<buyer>",
            world.parent: "<parent>",
            world.root: "<root>",
            world.created: "<created order>",
            world.paid: "<paid order>",
        }
    )
    owner = world.keys.owner
    zh = {**owner, "Accept-Language": "zh-CN"}
    answers: list[tuple[Any, ...]] = []

    def send(path: str, headers: dict[str, str], **kw: Any) -> Any:
        response = client.post(f"{API}{path}", headers=headers, **kw)
        kept = {k: v for k, v in response.headers.items() if k.lower() != "date"}
        answers.append((names(path), response.status_code, kept, names(response.text)))
        return response

    one = {"buyer_id": world.buyer, "lines": [{"sku": "CORE-1", "quantity": 2}]}
    order = send("/orders", owner, json={**one, "idempotency_key": "k-1"}).json()
    send("/orders", owner, json={**one, "idempotency_key": "k-1"})
    send(
        "/orders",
        owner,
        json={**one, "idempotency_key": "k-1", "lines": [{"sku": "CORE-1", "quantity": 3}]},
    )
    send("/orders", owner, json={**one, "lines": [{"sku": "NOPE", "quantity": 1}]})
    send("/orders", zh, json={**one, "lines": [{"sku": "NOPE", "quantity": 1}]})
    send("/orders", owner, json={**one, "lines": [{"sku": "CORE-1", "quantity": 1.5}]})
    send("/orders", owner, json={"buyer_id": world.buyer})
    send("/orders", owner, json={**one, "extra": 1})
    send("/orders", owner, json={**one, "buyer_id": "mem\x00x"})
    send("/orders", {**owner, "Content-Type": "application/json"}, content=b'{"buyer_id": ')
    send("/orders", {**owner, "Content-Type": "text/plain"}, content=b"{}")
    send("/orders", {"Accept-Language": "en"}, json=one)
    send("/orders", bearer("sk_not-a-key"), json=one)
    send("/orders", world.keys.readonly, json=one)
    send("/orders", world.other.owner, json=one)
    pay = f"/orders/{order['id']}/pay"
    send(pay, owner, json={"provider_txn_id": "wx-1", "amount_fen": 1})
    send(pay, owner, json={"provider_txn_id": "wx-1", "amount_fen": order["total_fen"]})
    send(pay, owner, json={"provider_txn_id": "wx-1", "amount_fen": order["total_fen"]})
    send(pay, owner, json={"provider_txn_id": "wx-1", "amount_fen": 1})
    send(
        f"/orders/{world.created}/pay", owner, json={"provider_txn_id": "wx-1", "amount_fen": 9_900}
    )
    send(f"/orders/{world.created}/pay", owner, json={"provider_txn_id": " ", "amount_fen": 9_900})
    send(f"/orders/{world.created}/pay", owner, json={"provider_txn_id": "wx-2", "amount_fen": -1})
    send(
        f"/orders/{world.created}/pay",
        owner,
        json={"provider_txn_id": "wx-2", "amount_fen": "9900"},
    )
    send("/orders/ord_nope/pay", owner, json={"provider_txn_id": "wx-3", "amount_fen": 1})
    send("/orders/ord_nope/pay", zh, json={"provider_txn_id": "wx-3", "amount_fen": 1})
    send(
        f"/orders/{world.other_order}/pay",
        owner,
        json={"provider_txn_id": "wx-4", "amount_fen": 100},
    )
    send(
        f"/orders/{world.created}/pay",
        world.keys.readonly,
        json={"provider_txn_id": "wx-5", "amount_fen": 9_900},
    )
    send(
        f"/orders/{world.created}/pay", owner, json={"provider_txn_id": "wx-6", "amount_fen": 9_900}
    )
    return answers


@pytest.fixture
def apps(db: Database, clock: ManualClock) -> Iterator[dict[bool, TestClient]]:
    settings = Settings(environment="test", api_key_cache_seconds=30, database_url="sqlite://")
    clients = {
        hot: TestClient(create_app(settings, clock=clock, db=db, hot_routes=hot))
        for hot in (True, False)
    }
    for c in clients.values():
        c.__enter__()
    yield clients
    for c in clients.values():
        c.__exit__(None, None, None)


class _CountingService:
    """The orders use cases, counting the calls the fast answers make."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def create_order(self, *args: Any, **kwargs: Any) -> Any:
        self.calls["create"] += 1
        return orders_service.create_order(*args, **kwargs)

    def pay_order(self, *args: Any, **kwargs: Any) -> Any:
        self.calls["pay"] += 1
        return orders_service.pay_order(*args, **kwargs)


def test_fast_answers_are_the_routes_answers(
    apps: dict[bool, TestClient],
    make_tenant: Callable[[str], TenantKeys],
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given the fast answers, counting the use cases they called themselves
    counting = _CountingService()
    monkeypatch.setattr(hot_routes, "service", counting)
    start = clock.now()
    fast = _script(apps[True], build_world(apps[True], make_tenant))

    # when the same requests go to an app without them, at the same moments
    clock.set(start)
    routed = _script(apps[False], build_world(apps[False], make_tenant))

    # then every answer is the same, and the fast way answered the ordinary requests itself
    assert len(fast) == len(routed)
    for mine, theirs in zip(fast, routed, strict=True):
        assert mine == theirs
    # (the world's own 4 orders and 2 payments; of the script's requests, those with a body the
    # routes' models accept and a key that may write: 6 creates and 11 payments)
    assert counting.calls == {"create": 4 + 6, "pay": 2 + 11}
