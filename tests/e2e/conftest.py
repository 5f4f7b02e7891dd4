"""End-to-end fixtures: the HTTP app over the `db` fixture's database, tenants with one key per
role, and a snapshot of everything a tenant owns (to prove a refused request changed nothing)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Headers
from sqlalchemy import func, select

from shequn.clock import Clock, ManualClock
from shequn.config import Settings
from shequn.context import Ctx
from shequn.db import Database
from shequn.entrypoints.app import create_app
from shequn.schema import all_metadata
from shequn.tenancy.service import create_api_key, create_tenant

API = "/api/v1"


def bearer(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}", "Accept-Language": "en"}


def expect(response: Any, status: int) -> Any:
    """The decoded body of a response that must have `status` (the body is shown if not)."""
    assert response.status_code == status, (response.status_code, response.text)
    return response.json() if response.content else None


def error_of(response: Any) -> tuple[int, str]:
    """(status, code) of an error response, after checking its body: exactly `code` and a
    non-empty `message`, plus `errors` on a validation error and `findings` where a compliance
    check refused the change."""
    body = response.json()
    extra = {"validation_error": {"errors"}, "plan_blocked": {"findings"}}
    extra["settings_break_active_plan"] = {"findings"}
    assert set(body) == {"code", "message"} | extra.get(body.get("code"), set()), body
    assert isinstance(body["message"], str)
    assert body["message"].strip() != ""
    return response.status_code, body["code"]


@dataclass(frozen=True)
class TenantKeys:
    """A tenant and the request headers for one key of each role."""

    tenant_id: str
    owner: dict[str, str]
    operator: dict[str, str]
    readonly: dict[str, str]


def snapshot(db: Database, tenant_id: str) -> dict[str, int]:
    """{table name: number of rows the tenant owns} over every table in the schema."""
    with db.read() as tx:
        return {
            name: tx.execute(
                select(func.count()).select_from(table).where(table.c.tenant_id == tenant_id)
            ).scalar_one()
            for name, table in sorted(all_metadata().tables.items())
        }


def contents(db: Database, *tenant_ids: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the tenants own, table by table in a stable order: equal contents mean that
    not even an UPDATE happened (row counts alone would miss one)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with db.read() as tx:
        for name, table in sorted(all_metadata().tables.items()):
            rows = tx.execute(select(table).where(table.c.tenant_id.in_(tenant_ids))).all()
            out[name] = sorted((tuple(r) for r in rows), key=repr)
    return out


class _CurrentClock:
    """The shared app's clock: it reads the running test's clock."""

    def __init__(self) -> None:
        self.target: Clock = ManualClock()

    def now(self) -> datetime:
        return self.target.now()


_Shared = tuple[TestClient, Headers, _CurrentClock]


@pytest.fixture(scope="session")
def _shared_apps() -> Iterator[dict[int, _Shared]]:
    apps: dict[int, _Shared] = {}
    yield apps
    for shared, _, _ in apps.values():
        shared.__exit__(None, None, None)


@pytest.fixture
def client(db: Database, clock: ManualClock, _shared_apps: dict[int, _Shared]) -> TestClient:
    """The real app (routing, auth, error handlers) on the database under test. One app per
    database serves the session (starting a TestClient costs more than most requests); each
    test gets it with pristine headers and its own clock."""
    if id(db) not in _shared_apps:
        settings = Settings(environment="test", api_key_cache_seconds=0, database_url="sqlite://")
        current = _CurrentClock()
        app = create_app(settings, clock=current, db=db)
        started = TestClient(app, raise_server_exceptions=False).__enter__()
        _shared_apps[id(db)] = (started, Headers(started.headers), current)
    shared, pristine, current = _shared_apps[id(db)]
    shared.headers = Headers(pristine)
    current.target = clock
    return shared


@pytest.fixture
def make_tenant(db: Database, clock: ManualClock) -> Callable[[str], TenantKeys]:
    """Create a tenant with its owner key plus an operator and a read-only key."""

    def make(name: str = "端到端品牌 E2E brand") -> TenantKeys:
        tenant_id, owner_key = create_tenant(db=db, clock=clock, name=name)
        ctx = Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="test")
        operator = create_api_key(ctx, name="ops", role="operator")["api_key"]
        readonly = create_api_key(ctx, name="viewer", role="readonly")["api_key"]
        return TenantKeys(tenant_id, bearer(owner_key), bearer(operator), bearer(readonly))

    return make


@pytest.fixture
def keys(make_tenant: Callable[[str], TenantKeys]) -> TenantKeys:
    return make_tenant("端到端品牌 E2E brand")


@pytest.fixture
def api(client: TestClient, keys: TenantKeys) -> TestClient:
    """The client acting as the tenant's owner, asking for English messages."""
    client.headers.update(keys.owner)
    return client


# --- a small community to aim requests at, with another tenant beside it --------------------

OTHER_SKU = "ONLY-THERE"


@dataclass(frozen=True)
class World:
    """root ← parent ← buyer, CORE-1 at 9900 fen, an active 10 %/5 % plan, a 0-day window;
    one order closed and settled (parent holds 990 fen available, root 495), one paid with
    `wx-paid`, one created. `other` is a second tenant with its own member, product (OTHER_SKU),
    order and plan."""

    keys: TenantKeys
    root: str
    parent: str
    buyer: str
    plan: str
    closed: str
    paid: str
    created: str
    other: TenantKeys
    other_member: str
    other_order: str
    other_plan: str


def build_world(client: TestClient, make_tenant: Callable[[str], TenantKeys]) -> World:
    keys = make_tenant("主品牌 main")

    def post(path: str, body: Any = None, headers: dict[str, str] = keys.owner) -> Any:
        response = client.post(f"{API}{path}", json=body, headers=headers)
        assert response.status_code in (200, 201), response.text
        return response.json()

    expect(client.patch(f"{API}/settings", json={"after_sales_days": 0}, headers=keys.owner), 200)
    post(
        "/products", {"sku": "CORE-1", "name": "会员装", "price_fen": 9_900, "ladder_role": "core"}
    )
    root = post("/members", {"name": "根", "phone": "13900000001"})["id"]
    parent = post("/members", {"name": "父", "referrer_id": root})["id"]
    buyer = post("/members", {"name": "买家", "referrer_id": parent})["id"]
    levels = [{"level": 1, "rate_bp": 1_000}, {"level": 2, "rate_bp": 500}]
    plan = post("/commission-plans", {"mode": "levels", "levels": levels})["id"]
    post(f"/commission-plans/{plan}/activate")
    one = {"buyer_id": buyer, "lines": [{"sku": "CORE-1", "quantity": 1}]}
    closed = post("/orders", one)["id"]
    post(f"/orders/{closed}/pay", {"provider_txn_id": "wx-closed", "amount_fen": 9_900})
    post(f"/orders/{closed}/ship")
    post(f"/orders/{closed}/complete")
    assert post("/settlement/run")["released_fen"] == 1_485
    paid = post("/orders", one)["id"]
    post(f"/orders/{paid}/pay", {"provider_txn_id": "wx-paid", "amount_fen": 9_900})
    created = post("/orders", one)["id"]

    other = make_tenant("别的品牌 other")
    theirs = other.owner
    product = {"sku": OTHER_SKU, "name": "别家", "price_fen": 100, "ladder_role": "core"}
    post("/products", product, theirs)
    other_member = post("/members", {"name": "别人"}, theirs)["id"]
    their_order = {"buyer_id": other_member, "lines": [{"sku": OTHER_SKU, "quantity": 1}]}
    other_order = post("/orders", their_order, theirs)["id"]
    their_plan = {"mode": "levels", "levels": levels[:1]}
    other_plan = post("/commission-plans", their_plan, theirs)["id"]
    return World(
        keys=keys,
        root=root,
        parent=parent,
        buyer=buyer,
        plan=plan,
        closed=closed,
        paid=paid,
        created=created,
        other=other,
        other_member=other_member,
        other_order=other_order,
        other_plan=other_plan,
    )


# Requests that are refused change nothing, so one world per database can serve every test
# that only sends refused requests (each still proves, row by row, that nothing changed).
_WORLDS: dict[int, World] = {}


@pytest.fixture
def world(db: Database, client: TestClient, make_tenant: Callable[[str], TenantKeys]) -> World:
    """The shared world: only for requests that must be refused."""
    if id(db) not in _WORLDS:
        _WORLDS[id(db)] = build_world(client, make_tenant)
    return _WORLDS[id(db)]


@pytest.fixture
def fresh_world(client: TestClient, make_tenant: Callable[[str], TenantKeys]) -> World:
    """A world of its own, for tests whose requests change (or may wrongly change) it."""
    return build_world(client, make_tenant)
