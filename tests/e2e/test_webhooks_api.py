"""Webhooks over HTTP and the command line: the owner manages endpoints, anyone reads the
deliveries, an operator replays them; bad input is refused with its code and changes nothing;
`shequn webhooks deliver --once` drains what is due."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.db import Database
from shequn.entrypoints.cli import app as cli
from shequn.schema import upgrade_database
from shequn.tenancy.service import create_tenant
from shequn.webhooks import rules
from shequn.webhooks import service as webhooks
from shequn.webhooks.service import MAX_ENDPOINTS
from shequn.webhooks.worker import DeliveryWorker, WorkerOptions
from tests import factories as f
from tests.e2e.conftest import API, TenantKeys, contents, error_of, expect
from tests.integration.test_webhooks import Receiver, running_receiver

HOOKS = f"{API}/webhook-endpoints"
DELIVERIES = f"{API}/webhook-deliveries"


@pytest.fixture
def receiver(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """A receiver on this machine, which the application is told to allow."""
    settings = client.app.state.shequn.settings  # type: ignore[attr-defined]
    monkeypatch.setattr(settings, "webhook_allow_private_hosts", True)
    with running_receiver() as kept:
        yield kept


def server_key(client: TestClient) -> str:
    key: str = client.app.state.shequn.settings.secret_key  # type: ignore[attr-defined]
    return key


def register(client: TestClient, keys: TenantKeys, url: str, *types: str) -> dict[str, Any]:
    body = {"url": url, "event_types": list(types), "description": "订单 orders"}
    created: dict[str, Any] = expect(client.post(HOOKS, json=body, headers=keys.owner), 201)
    return created


def deliver(client: TestClient, db: Database, clock: ManualClock, tenant_id: str) -> None:
    options = WorkerOptions(tenant_id=tenant_id, concurrency=1, allow_private_hosts=True)
    with DeliveryWorker(
        db, server_key=server_key(client), clock=clock, options=options, rng=random.Random(1)
    ) as worker:
        worker.drain()


# --- endpoints ---------------------------------------------------------------------------------


def test_the_owner_registers_lists_changes_and_rotates_an_endpoint(
    client: TestClient, keys: TenantKeys, clock: ManualClock
) -> None:
    created = register(
        client, keys, "https://hooks.example.com/in", "OrderPaid", "MemberRegistered"
    )
    secret = created.pop("secret")
    assert secret.startswith("whsec_")
    assert len(secret) == 49
    when = clock.now().isoformat().replace("+00:00", "Z")
    assert created == {
        "id": created["id"],
        "url": "https://hooks.example.com/in",
        "description": "订单 orders",
        "event_types": ["MemberRegistered", "OrderPaid"],
        "active": True,
        "previous_secret_expires_at": None,
        "created_at": when,
        "updated_at": when,
    }
    assert created["id"].startswith("whe_")
    # the secret is never shown again
    assert expect(client.get(HOOKS, headers=keys.owner), 200) == [created]

    clock.advance(minutes=5)
    patched = expect(
        client.patch(
            f"{HOOKS}/{created['id']}",
            json={"url": "https://hooks.example.com/v2", "event_types": ["*"], "active": False},
            headers=keys.owner,
        ),
        200,
    )
    later = clock.now().isoformat().replace("+00:00", "Z")
    assert patched == {
        **created,
        "url": "https://hooks.example.com/v2",
        "event_types": ["*"],
        "active": False,
        "updated_at": later,
    }

    rotated = expect(client.post(f"{HOOKS}/{created['id']}/rotate-secret", headers=keys.owner), 200)
    expires = (clock.now() + timedelta(hours=24)).isoformat().replace("+00:00", "Z")
    assert rotated["id"] == created["id"]
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != secret
    assert rotated["previous_secret_expires_at"] == expires
    (listed,) = expect(client.get(HOOKS, headers=keys.owner), 200)
    assert listed["previous_secret_expires_at"] == expires
    ended = expect(
        client.post(
            f"{HOOKS}/{created['id']}/rotate-secret", json={"grace_hours": 0}, headers=keys.owner
        ),
        200,
    )
    assert ended["previous_secret_expires_at"] is None


def test_the_secret_shown_signs_the_deliveries(
    client: TestClient, keys: TenantKeys, clock: ManualClock, receiver: Receiver, db: Database
) -> None:
    created = register(client, keys, receiver.url(), "MemberRegistered")
    expect(client.post(f"{API}/members", json={"name": "收"}, headers=keys.operator), 201)
    deliver(client, db, clock, keys.tenant_id)
    (request,) = receiver.received
    now = int(clock.now().timestamp())
    header = request.headers["Shequn-Signature"]
    assert rules.verify_signature(created["secret"], header, request.body, now=now) is True


# --- permissions ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["operator", "readonly"])
def test_only_the_owner_manages_endpoints(
    client: TestClient, keys: TenantKeys, db: Database, role: str
) -> None:
    hook = register(client, keys, "https://hooks.example.com/in", "OrderPaid")
    headers = getattr(keys, role)
    before = contents(db, keys.tenant_id)
    body = {"url": "https://x.example/h", "event_types": ["*"]}
    for response in (
        client.post(HOOKS, json=body, headers=headers),
        client.get(HOOKS, headers=headers),
        client.patch(f"{HOOKS}/{hook['id']}", json={"active": False}, headers=headers),
        client.post(f"{HOOKS}/{hook['id']}/rotate-secret", headers=headers),
        client.delete(f"{HOOKS}/{hook['id']}", headers=headers),
    ):
        assert error_of(response) == (403, "permission_denied")
    assert contents(db, keys.tenant_id) == before


def test_readers_list_deliveries_and_operators_replay_them(
    client: TestClient, keys: TenantKeys, clock: ManualClock, receiver: Receiver, db: Database
) -> None:
    hook = register(client, keys, receiver.url(), "MemberRegistered")
    for name in ("甲", "乙", "丙"):
        expect(client.post(f"{API}/members", json={"name": name}, headers=keys.owner), 201)

    # pending, without attempts, to a reader
    page = expect(client.get(DELIVERIES, headers=keys.readonly), 200)
    assert [d["status"] for d in page["items"]] == ["pending"] * 3
    assert page["next_after"] is None
    first = page["items"][0]
    assert set(first) == {
        "id",
        "endpoint_id",
        "event_id",
        "event_type",
        "subject_type",
        "subject_id",
        "status",
        "attempt_count",
        "next_attempt_at",
        "created_at",
        "delivered_at",
        "last_status_code",
        "last_error",
        "attempts",
    }
    assert (first["endpoint_id"], first["event_type"], first["attempts"]) == (
        hook["id"],
        "MemberRegistered",
        [],
    )

    receiver.answer("/hook", 500)
    deliver(client, db, clock, keys.tenant_id)

    # the attempts, keyset paged one by one
    seen: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        query = {"limit": 1, "endpoint_id": hook["id"], **({"after": after} if after else {})}
        page = expect(client.get(DELIVERIES, params=query, headers=keys.readonly), 200)
        seen += page["items"]
        after = page["next_after"]
        if after is None:
            break
    assert [d["id"] for d in seen] == [d["id"] for d in sorted(seen, key=lambda d: d["id"])]
    statuses = sorted(d["status"] for d in seen)
    assert statuses == ["delivered", "delivered", "pending"]
    failed = next(d for d in seen if d["status"] == "pending")
    (attempt,) = failed["attempts"]
    assert (attempt["attempt"], attempt["status_code"], attempt["succeeded"]) == (1, 500, False)
    assert attempt["error"] == "HTTP 500 receiver says no"
    assert isinstance(attempt["duration_ms"], int)
    assert attempt["duration_ms"] >= 0
    assert failed["attempt_count"] == 1
    assert failed["last_status_code"] == 500
    delivered = expect(
        client.get(DELIVERIES, params={"status": "delivered"}, headers=keys.readonly), 200
    )
    assert [d["attempts"][0]["status_code"] for d in delivered["items"]] == [200, 200]

    # a reader may not replay, an operator may
    done = delivered["items"][0]
    before = contents(db, keys.tenant_id)
    assert error_of(client.post(f"{DELIVERIES}/{done['id']}/replay", headers=keys.readonly)) == (
        403,
        "permission_denied",
    )
    assert contents(db, keys.tenant_id) == before
    replayed = expect(client.post(f"{DELIVERIES}/{done['id']}/replay", headers=keys.operator), 200)
    assert (replayed["status"], replayed["attempt_count"]) == ("pending", 1)
    assert replayed["next_attempt_at"] == clock.now().isoformat().replace("+00:00", "Z")
    skipped = expect(client.post(f"{DELIVERIES}/{done['id']}/skip", headers=keys.operator), 200)
    assert skipped["status"] == "skipped"


# --- bad input changes nothing ---------------------------------------------------------------

GOOD = {"url": "https://hooks.example.com/in", "event_types": ["OrderPaid"]}


def _refusals() -> list[Any]:
    P, G = "POST", "GET"
    return [
        pytest.param(P, HOOKS, {**GOOD, "url": "ftp://x.example/h"}, 422, "webhook_url_invalid"),
        pytest.param(P, HOOKS, {**GOOD, "url": "not a url"}, 422, "webhook_url_invalid"),
        pytest.param(P, HOOKS, {**GOOD, "event_types": []}, 422, "webhook_event_types_empty"),
        pytest.param(
            P, HOOKS, {**GOOD, "event_types": ["OrderPayed"]}, 422, "webhook_event_type_unknown"
        ),
        pytest.param(
            P,
            HOOKS,
            {**GOOD, "event_types": ["*", "OrderPaid"]},
            422,
            "webhook_event_types_wildcard_alone",
        ),
        pytest.param(P, HOOKS, {"event_types": ["*"]}, 422, "validation_error", id="no-url"),
        pytest.param(P, HOOKS, {**GOOD, "event_types": "OrderPaid"}, 422, "validation_error"),
        pytest.param(P, HOOKS, {**GOOD, "description": "长" * 201}, 422, "validation_error"),
        pytest.param(P, HOOKS, {**GOOD, "secret": "whsec_mine"}, 422, "validation_error"),
        pytest.param(
            P, HOOKS, {**GOOD, "url": "https://x.example/\u0000"}, 422, "validation_error"
        ),
        pytest.param(
            "PATCH", f"{HOOKS}/whe_missing", {"active": False}, 404, "webhook_endpoint_not_found"
        ),
        pytest.param(
            "PATCH", f"{HOOKS}/{{hook}}", {}, 422, "webhook_endpoint_patch_empty", id="patch-empty"
        ),
        pytest.param(
            "PATCH", f"{HOOKS}/{{hook}}", {"url": "http://"}, 422, "webhook_url_invalid", id="p-url"
        ),
        pytest.param(
            "PATCH",
            f"{HOOKS}/{{hook}}",
            {"active": "no"},
            422,
            "validation_error",
            id="patch-active-string",
        ),
        pytest.param(
            "PATCH",
            f"{HOOKS}/{{theirs}}",
            {"active": False},
            404,
            "webhook_endpoint_not_found",
            id="patch-other-tenant",
        ),
        pytest.param(
            P, f"{HOOKS}/whe_missing/rotate-secret", None, 404, "webhook_endpoint_not_found"
        ),
        pytest.param(
            P,
            f"{HOOKS}/{{hook}}/rotate-secret",
            {"grace_hours": 169},
            422,
            "webhook_rotation_grace_invalid",
            id="rotate-grace",
        ),
        pytest.param(G, f"{DELIVERIES}?status=lost", None, 422, "validation_error"),
        pytest.param(G, f"{DELIVERIES}?after=evt_x", None, 422, "cursor_invalid"),
        pytest.param(G, f"{DELIVERIES}?limit=0", None, 422, "validation_error"),
        pytest.param(G, f"{DELIVERIES}?limit=101", None, 422, "validation_error"),
        pytest.param(
            G, f"{DELIVERIES}?endpoint_id=whe_missing", None, 404, "webhook_endpoint_not_found"
        ),
        pytest.param(
            P, f"{DELIVERIES}/whd_missing/replay", None, 404, "webhook_delivery_not_found"
        ),
        pytest.param(
            P,
            f"{DELIVERIES}/{{pending}}/replay",
            None,
            409,
            "webhook_delivery_not_replayable",
            id="replay-pending",
        ),
        pytest.param(
            P,
            f"{DELIVERIES}/{{theirs_delivery}}/replay",
            None,
            404,
            "webhook_delivery_not_found",
            id="replay-other-tenant",
        ),
        pytest.param(P, f"{DELIVERIES}/whd_missing/skip", None, 404, "webhook_delivery_not_found"),
        pytest.param(
            P, HOOKS, {**GOOD, "url": "http://127.0.0.1:8000/h"}, 422, "webhook_url_private"
        ),
        pytest.param(
            P, HOOKS, {**GOOD, "url": "http://169.254.169.254/latest"}, 422, "webhook_url_private"
        ),
        pytest.param(P, HOOKS, {**GOOD, "url": "http://localhost/h"}, 422, "webhook_url_private"),
        pytest.param(
            "PATCH",
            f"{HOOKS}/{{hook}}",
            {"url": "http://[::1]/h"},
            422,
            "webhook_url_private",
            id="patch-private",
        ),
        pytest.param("DELETE", f"{HOOKS}/whe_missing", None, 404, "webhook_endpoint_not_found"),
        pytest.param(
            "DELETE",
            f"{HOOKS}/{{theirs}}",
            None,
            404,
            "webhook_endpoint_not_found",
            id="delete-other-tenant",
        ),
    ]


@pytest.fixture
def two_tenants(
    client: TestClient, make_tenant: Callable[[str], TenantKeys]
) -> tuple[TenantKeys, TenantKeys, dict[str, str]]:
    ours, theirs = make_tenant("钩子 ours"), make_tenant("别家 theirs")
    names = {
        "hook": register(client, ours, "https://a.example/h", "MemberRegistered")["id"],
        "theirs": register(client, theirs, "https://b.example/h", "MemberRegistered")["id"],
    }
    for keys, name in ((ours, "pending"), (theirs, "theirs_delivery")):
        expect(client.post(f"{API}/members", json={"name": "成员"}, headers=keys.owner), 201)
        page = expect(client.get(DELIVERIES, headers=keys.owner), 200)
        names[name] = page["items"][0]["id"]
    return ours, theirs, names


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), _refusals())
def test_bad_input_is_refused_with_its_code_and_changes_nothing(
    client: TestClient,
    db: Database,
    two_tenants: tuple[TenantKeys, TenantKeys, dict[str, str]],
    method: str,
    path: str,
    body: Any,
    status: int,
    code: str,
) -> None:
    ours, theirs, names = two_tenants
    before = contents(db, ours.tenant_id, theirs.tenant_id)
    response = client.request(method, path.format(**names), json=body, headers=ours.owner)
    assert error_of(response) == (status, code)
    assert contents(db, ours.tenant_id, theirs.tenant_id) == before


def test_a_delivered_delivery_cannot_be_skipped(
    client: TestClient, keys: TenantKeys, clock: ManualClock, receiver: Receiver, db: Database
) -> None:
    register(client, keys, receiver.url(), "MemberRegistered")
    expect(client.post(f"{API}/members", json={"name": "送达"}, headers=keys.owner), 201)
    deliver(client, db, clock, keys.tenant_id)
    (done,) = expect(client.get(DELIVERIES, headers=keys.owner), 200)["items"]
    before = contents(db, keys.tenant_id)
    refused = client.post(f"{DELIVERIES}/{done['id']}/skip", headers=keys.owner)
    assert error_of(refused) == (409, "webhook_delivery_not_skippable")
    assert refused.json()["message"] == (
        "This delivery is delivered: only a pending or dead delivery can be skipped."
    )
    assert contents(db, keys.tenant_id) == before


def test_the_owner_deletes_an_endpoint_with_its_deliveries(
    client: TestClient, keys: TenantKeys, db: Database
) -> None:
    gone = register(client, keys, "https://hooks.example.com/gone", "MemberRegistered")
    kept = register(client, keys, "https://hooks.example.com/kept", "MemberRegistered")
    expect(client.post(f"{API}/members", json={"name": "删"}, headers=keys.owner), 201)
    page = expect(client.get(DELIVERIES, headers=keys.owner), 200)
    assert {d["endpoint_id"] for d in page["items"]} == {gone["id"], kept["id"]}

    answer = client.delete(f"{HOOKS}/{gone['id']}", headers=keys.owner)

    assert (answer.status_code, answer.content) == (204, b"")
    assert [e["id"] for e in expect(client.get(HOOKS, headers=keys.owner), 200)] == [kept["id"]]
    page = expect(client.get(DELIVERIES, headers=keys.owner), 200)
    assert {d["endpoint_id"] for d in page["items"]} == {kept["id"]}
    refused = client.get(DELIVERIES, params={"endpoint_id": gone["id"]}, headers=keys.owner)
    assert error_of(refused) == (404, "webhook_endpoint_not_found")
    # and a tenant that deleted its endpoints may register new ones up to the limit again
    for n in range(MAX_ENDPOINTS - 1):
        register(client, keys, f"https://hooks.example.com/{n}", "*")


def test_a_private_address_is_refused_in_the_readers_language(
    client: TestClient, keys: TenantKeys
) -> None:
    body = {"url": "http://192.168.1.20/hook", "event_types": ["*"]}
    zh = client.post(HOOKS, json=body, headers={**keys.owner, "Accept-Language": "zh-CN"})
    assert zh.status_code == 422
    assert zh.json()["message"].startswith("主机 192.168.1.20 是内网、回环或本机地址")
    en = client.post(HOOKS, json=body, headers={**keys.owner, "Accept-Language": "en"})
    assert "SHEQUN_WEBHOOK_ALLOW_PRIVATE_HOSTS" in en.json()["message"]


def test_a_tenant_has_at_most_sixteen_endpoints(
    client: TestClient, keys: TenantKeys, db: Database
) -> None:
    for n in range(MAX_ENDPOINTS):
        register(client, keys, f"https://hooks.example.com/{n}", "*")
    before = contents(db, keys.tenant_id)
    refused = client.post(HOOKS, json=GOOD, headers=keys.owner)
    assert error_of(refused) == (409, "webhook_endpoints_limit")
    assert contents(db, keys.tenant_id) == before


# --- the command line ----------------------------------------------------------------------

PAST = datetime(2020, 3, 2, 9, 0, tzinfo=UTC)
CLI_KEY = "cli-webhook-key"


def run(*args: str, locale: str = "en") -> Result:
    env = {
        "SHEQUN_LOCALE": locale,
        "COLUMNS": "200",
        "SHEQUN_SECRET_KEY": CLI_KEY,
        "SHEQUN_WEBHOOK_ALLOW_PRIVATE_HOSTS": "true",
    }
    return CliRunner().invoke(cli, list(args), env=env)


@pytest.fixture
def target(db: Database, tmp_path: Path) -> Iterator[tuple[str, Database]]:
    """The database the CLI is pointed at: a fresh SQLite file, or the PostgreSQL test one."""
    if db.is_postgres:
        yield db.engine.url.render_as_string(hide_password=False), db
        return
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade_database(url)
    own = Database.from_url(url, pool_size=2)
    yield url, own
    own.dispose()


def test_deliver_once_drains_what_is_due(target: tuple[str, Database], receiver: Receiver) -> None:
    url, db = target
    clock = ManualClock(PAST)
    tenant_id, _ = create_tenant(db=db, clock=clock, name="命令行 CLI")
    ctx = Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="test")
    hook = webhooks.create_endpoint(
        ctx,
        server_key=CLI_KEY,
        url=receiver.url(),
        event_types=["MemberRegistered"],
        allow_private=True,
    )
    f.member(ctx, "一")
    f.member(ctx, "二")
    receiver.answer("/hook", 500)

    result = run("webhooks", "deliver", "--once", "--json", "-t", tenant_id, "--database-url", url)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"delivered": 1, "retrying": 1, "dead": 0, "lost": 0}
    assert len(receiver.received) == 2
    for request in receiver.received:
        header = request.headers["Shequn-Signature"]
        t = int(header.split(",")[0].removeprefix("t="))
        assert rules.verify_signature(hook["secret"], header, request.body, now=t) is True

    # the failed one waits for its retry: nothing is due now
    again = run("webhooks", "deliver", "--once", "-t", tenant_id, "--database-url", url)
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == "Delivered 0, to retry 0, dead 0, taken over 0."
    zh = run("webhooks", "deliver", "--once", "-t", tenant_id, "--database-url", url, locale="zh")
    assert zh.stdout.strip() == "已送达 0，待重试 0，已失效 0，被接管 0。"
    assert len(receiver.received) == 2


def test_deliver_lists_its_options() -> None:
    shown = run("webhooks", "deliver", "--help")
    assert shown.exit_code == 0, shown.output
    for option in ("--once", "--batch-size", "--concurrency", "--timeout", "--idle", "--tenant"):
        assert option in shown.stdout


def test_prune_deletes_old_finished_deliveries(
    target: tuple[str, Database], receiver: Receiver
) -> None:
    url, db = target
    clock = ManualClock(PAST)
    tenant_id, _ = create_tenant(db=db, clock=clock, name="清理 prune")
    ctx = Ctx(db=db, clock=clock, tenant_id=tenant_id, actor="test")
    webhooks.create_endpoint(
        ctx,
        server_key=CLI_KEY,
        url=receiver.url(),
        event_types=["MemberRegistered"],
        allow_private=True,
    )
    f.member(ctx, "旧")
    f.member(ctx, "也旧")
    options = WorkerOptions(tenant_id=tenant_id, allow_private_hosts=True)
    with DeliveryWorker(db, server_key=CLI_KEY, clock=clock, options=options) as worker:
        worker.drain()
    clock.set(datetime.now(UTC))
    f.member(ctx, "新")  # pending: stays

    result = run("webhooks", "prune", "--json", "-t", tenant_id, "--database-url", url)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"deleted": 2}
    again = run("webhooks", "prune", "--keep-days", "7", "-t", tenant_id, "--database-url", url)
    assert again.stdout.strip() == "Deleted 0 finished deliveries older than 7 days."
    assert [d["status"] for d in webhooks.delivery_page(ctx)["items"]] == ["pending"]
