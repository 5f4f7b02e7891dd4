"""The fast answers to the two requests of a paid order are byte for byte the routes' answers,
for requests that succeed, replay or fail, and fall back to the routes for anything else."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from shequn.clock import ManualClock
from shequn.config import Settings
from shequn.db import Database
from shequn.entrypoints import hot_routes
from shequn.entrypoints.app import create_app
from tests.e2e.conftest import TenantKeys, build_world
from tests.e2e.paid_order_script import CountingService, paid_order_script


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


def test_fast_answers_are_the_routes_answers(
    apps: dict[bool, TestClient],
    make_tenant: Callable[[str], TenantKeys],
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given the fast answers, counting the use cases they called themselves
    counting = CountingService()
    monkeypatch.setattr(hot_routes, "service", counting)
    start = clock.now()
    fast = paid_order_script(apps[True], build_world(apps[True], make_tenant))

    # when the same requests go to an app without them, at the same moments
    clock.set(start)
    routed = paid_order_script(apps[False], build_world(apps[False], make_tenant))

    # then every answer is the same, and the fast way answered the ordinary requests itself
    assert len(fast) == len(routed)
    for mine, theirs in zip(fast, routed, strict=True):
        assert mine == theirs
    # (the world's own 4 orders and 2 payments; of the script's requests, those with a body the
    # routes' models accept and a key that may write: 6 creates and 11 payments)
    assert counting.calls == {"create": 4 + 6, "pay": 2 + 11}
