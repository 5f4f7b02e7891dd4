"""Webhooks on both databases: the outbox is written with the events, the worker delivers
signed requests to a local receiver, retries with backoff, gives up, replays, keeps each
subject's order, and two workers never send one delivery twice (PostgreSQL)."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import pytest
from sqlalchemy import select

from shequn.batch import WriteBatch
from shequn.clock import ManualClock
from shequn.context import Ctx
from shequn.errors import InvalidInput, NotFound
from shequn.events import service as event_service
from shequn.events.service import Event, record_event, record_events, stage_events
from shequn.events.tables import events
from shequn.schema import all_metadata
from shequn.settlement.service import run_settlement
from shequn.tenancy.service import create_tenant
from shequn.tenancy.tables import tenants
from shequn.webhooks import rules, service
from shequn.webhooks.rules import RetryPolicy
from shequn.webhooks.tables import webhook_attempts, webhook_deliveries
from shequn.webhooks.worker import DeliveryWorker, Totals, WorkerOptions
from tests import factories as f

KEY = "test-server-key"


# --- a local receiver ----------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.body)
        return decoded


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that answers each path with the status codes it was told
    (200 once they run out) and keeps every request."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, *codes: int) -> None:
        with self.lock:
            self.answers[path] = list(codes)

    def next_code(self, path: str) -> int:
        with self.lock:
            waiting = self.answers.get(path)
            return waiting.pop(0) if waiting else 200

    def keep(self, request: Received) -> None:
        with self.lock:
            self.received.append(request)


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    """A `Receiver` serving on a thread until the block ends."""
    kept = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            kept.keep(Received(self.path, dict(self.headers.items()), body))
            code = kept.next_code(self.path)
            answer = b"ok" if code < 300 else b"receiver says no"
            self.send_response(code)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    kept.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield kept
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as kept:
        yield kept


def worker_for(
    ctx: Ctx, clock: ManualClock, *, policy: RetryPolicy | None = None, **options: Any
) -> DeliveryWorker:
    return DeliveryWorker(
        ctx.db,
        server_key=KEY,
        clock=clock,
        options=WorkerOptions(
            tenant_id=ctx.tenant_id,
            policy=policy or RetryPolicy(),
            timeout=5.0,
            **{"allow_private_hosts": True, **options},
        ),
        rng=random.Random(7),
    )


def endpoint(ctx: Ctx, url: str, *types: str) -> dict[str, Any]:
    return service.create_endpoint(
        ctx, server_key=KEY, url=url, event_types=list(types), allow_private=True
    )


def deliveries(ctx: Ctx) -> list[dict[str, Any]]:
    d = webhook_deliveries
    with ctx.db.read() as tx:
        rows = tx.execute(select(d).where(d.c.tenant_id == ctx.tenant_id).order_by(d.c.event_id))
        return [dict(r._mapping) for r in rows]


def attempts(ctx: Ctx, delivery_id: str) -> list[tuple[int, int | None, bool]]:
    a = webhook_attempts
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(a.c.attempt, a.c.status_code, a.c.succeeded)
            .where(a.c.tenant_id == ctx.tenant_id, a.c.delivery_id == delivery_id)
            .order_by(a.c.attempt)
        )
        return [(r.attempt, r.status_code, r.succeeded) for r in rows]


def tenant_events(ctx: Ctx) -> list[dict[str, Any]]:
    with ctx.db.read() as tx:
        rows = tx.execute(
            select(events).where(events.c.tenant_id == ctx.tenant_id).order_by(events.c.id)
        )
        return [dict(r._mapping) for r in rows]


def totals(delivered: int = 0, retrying: int = 0, dead: int = 0, lost: int = 0) -> Totals:
    return Totals(delivered=delivered, retrying=retrying, dead=dead, lost=lost)


# --- the outbox ------------------------------------------------------------------------------


def test_the_outbox_insert_names_the_declared_tables_and_columns() -> None:
    declared = all_metadata().tables
    for light in (
        event_service.webhook_subscriptions,
        event_service.webhook_endpoints,
        event_service.webhook_deliveries,
    ):
        assert light.name in declared
        assert {c.name for c in light.c} <= set(declared[light.name].c.keys())
    assert set(event_service.OUTBOX.reads) <= set(events.c.keys())


def test_each_event_gets_one_pending_delivery_per_matching_active_endpoint(
    ctx: Ctx, clock: ManualClock
) -> None:
    # given four endpoints: paid orders, everything, registrations, and a paused one for all
    paid = endpoint(ctx, "https://a.example/hook", "OrderPaid")
    every = endpoint(ctx, "https://b.example/hook", "*")
    joins = endpoint(ctx, "https://c.example/hook", "MemberRegistered", "OrderPaid")
    paused = endpoint(ctx, "https://d.example/hook", "*")
    service.update_endpoint(ctx, endpoint_id=paused["id"], active=False)
    before = {e["id"] for e in tenant_events(ctx)}

    # when a member registers and pays an order (the optimistic, one-statement payment)
    f.product(ctx)
    buyer = f.member(ctx)
    f.paid_order(ctx, buyer)

    # then exactly the subscribed active endpoints have one pending delivery of each event
    recorded = [e for e in tenant_events(ctx) if e["id"] not in before]
    assert {e["type"] for e in recorded} >= {"MemberRegistered", "OrderCreated", "OrderPaid"}
    subscribed = {
        paid["id"]: {"OrderPaid"},
        every["id"]: {e["type"] for e in recorded},
        joins["id"]: {"MemberRegistered", "OrderPaid"},
    }
    expected = sorted(
        (e["id"], endpoint_id)
        for e in recorded
        for endpoint_id, types in subscribed.items()
        if e["type"] in types
    )
    found = deliveries(ctx)
    assert sorted((d["event_id"], d["endpoint_id"]) for d in found) == expected
    by_event = {e["id"]: e for e in recorded}
    for d in found:
        event = by_event[d["event_id"]]
        assert (d["event_type"], d["subject_type"], d["subject_id"]) == (
            event["type"],
            event["subject_type"],
            event["subject_id"],
        )
        assert (d["status"], d["attempts"], d["failures"]) == ("pending", 0, 0)
        assert d["next_attempt_at"] == d["created_at"] == clock.now()
        # a delivery sorts with its event
        assert d["id"].startswith("whd_" + event["id"][4:14])
        assert len(d["id"]) == 30


def test_a_tenant_without_endpoints_gets_no_delivery(ctx: Ctx) -> None:
    f.product(ctx)
    f.paid_order(ctx, f.member(ctx))
    assert len(tenant_events(ctx)) > 3
    assert deliveries(ctx) == []


def test_a_rolled_back_use_case_leaves_no_delivery(ctx: Ctx, clock: ManualClock) -> None:
    endpoint(ctx, "https://a.example/hook", "*")
    subject = f.member(ctx)
    before = deliveries(ctx)

    class Abort(Exception):
        pass

    def record_then_fail() -> None:
        with ctx.db.transaction() as tx:
            record_event(
                tx,
                tenant_id=ctx.tenant_id,
                actor="test",
                at=clock.now(),
                type="MemberUpdated",
                subject_type="member",
                subject_id=subject,
            )
            raise Abort

    # a transaction that records an event and then fails
    with pytest.raises(Abort):
        record_then_fail()

    # an optimistic batch whose condition does not hold writes neither events nor deliveries
    batch = WriteBatch()
    batch.require(tenants, {"tenant_id": "tn_missing"}, equal={"name": "nobody"})
    stage_events(
        batch,
        tenant_id=ctx.tenant_id,
        actor="test",
        at=clock.now(),
        items=[Event("MemberUpdated", "member", subject)],
    )
    with ctx.db.autocommit() as tx:
        assert batch.flush(tx).applied is False

    assert deliveries(ctx) == before
    assert [e["type"] for e in tenant_events(ctx)].count("MemberUpdated") == 0


def test_settlement_fans_out_the_orders_it_closes(ctx: Ctx, clock: ManualClock) -> None:
    closed = endpoint(ctx, "https://a.example/hook", "OrderClosed")
    f.product(ctx)
    order = f.completed_order(ctx, f.member(ctx))
    clock.advance(days=8)

    run_settlement(ctx)

    found = [(d["endpoint_id"], d["event_type"], d["subject_id"]) for d in deliveries(ctx)]
    assert found == [(closed["id"], "OrderClosed", order["id"])]


# --- the worker --------------------------------------------------------------------------------


def test_the_worker_delivers_the_event_signed(
    ctx: Ctx, clock: ManualClock, receiver: Receiver
) -> None:
    hook = endpoint(ctx, receiver.url(), "MemberRegistered")
    member = f.member(ctx, "签名")
    (event,) = [e for e in tenant_events(ctx) if e["type"] == "MemberRegistered"]

    with worker_for(ctx, clock) as worker:
        assert worker.drain() == totals(delivered=1)

    (request,) = receiver.received
    header = request.headers["Shequn-Signature"]
    assert header.startswith(f"t={int(clock.now().timestamp())},v1=")
    now = int(clock.now().timestamp())
    assert rules.verify_signature(hook["secret"], header, request.body, now=now) is True
    assert rules.verify_signature(hook["secret"] + "x", header, request.body, now=now) is False
    assert request.event == {
        "id": event["id"],
        "type": "MemberRegistered",
        "tenant_id": ctx.tenant_id,
        "subject_type": "member",
        "subject_id": member,
        "actor": "test",
        "occurred_at": event["occurred_at"].isoformat().replace("+00:00", "Z"),
        "payload": event["payload"],
    }
    (delivery,) = deliveries(ctx)
    assert request.headers["Shequn-Delivery-Id"] == delivery["id"]
    assert request.headers["Shequn-Event-Id"] == event["id"]
    assert request.headers["Shequn-Event-Type"] == "MemberRegistered"
    assert request.headers["Content-Type"] == "application/json"
    assert (delivery["status"], delivery["attempts"], delivery["delivered_at"]) == (
        "delivered",
        1,
        clock.now(),
    )
    assert attempts(ctx, delivery["id"]) == [(1, 200, True)]


def test_a_rotated_secret_signs_beside_the_old_one_until_the_grace_ends(
    ctx: Ctx, clock: ManualClock, receiver: Receiver
) -> None:
    hook = endpoint(ctx, receiver.url(), "MemberRegistered")
    rotated = service.rotate_secret(ctx, server_key=KEY, endpoint_id=hook["id"], grace_hours=1)
    assert rotated["secret"] != hook["secret"]
    assert rotated["previous_secret_expires_at"] == clock.now() + timedelta(hours=1)
    f.member(ctx)
    sent_at = [int(clock.now().timestamp())]
    with worker_for(ctx, clock) as worker:
        worker.drain()
        clock.advance(hours=1)
        sent_at.append(int(clock.now().timestamp()))
        f.member(ctx)
        worker.drain()

    first, second = receiver.received
    for request, now, old_valid in ((first, sent_at[0], True), (second, sent_at[1], False)):
        header = request.headers["Shequn-Signature"]
        assert rules.verify_signature(rotated["secret"], header, request.body, now=now) is True
        assert rules.verify_signature(hook["secret"], header, request.body, now=now) is old_valid
    assert first.headers["Shequn-Signature"].count("v1=") == 2
    assert second.headers["Shequn-Signature"].count("v1=") == 1


def test_a_failed_delivery_is_retried_after_the_backoff(
    ctx: Ctx, clock: ManualClock, receiver: Receiver
) -> None:
    endpoint(ctx, receiver.url(), "MemberRegistered")
    receiver.answer("/hook", 500)
    f.member(ctx)
    started = clock.now()

    with worker_for(ctx, clock) as worker:
        # the first attempt gets a 500: the delivery waits 10 s less a jitter of up to half
        assert worker.run_once() == totals(retrying=1)
        (waiting,) = deliveries(ctx)
        wait = RetryPolicy().delay(1, random.Random(7).random())
        assert (waiting["status"], waiting["failures"], waiting["attempts"]) == ("pending", 1, 1)
        assert waiting["next_attempt_at"] == started + wait
        assert waiting["last_status_code"] == 500
        assert waiting["last_error"] == "HTTP 500 receiver says no"

        # not before its time (the shortest possible wait is 5 s)
        clock.advance(seconds=4.9)
        assert worker.run_once() == totals()

        # then it goes again and succeeds
        clock.set(started + wait)
        assert worker.run_once() == totals(delivered=1)

    (done,) = deliveries(ctx)
    assert (done["status"], done["failures"], done["attempts"]) == ("delivered", 0, 2)
    assert attempts(ctx, done["id"]) == [(1, 500, False), (2, 200, True)]
    assert len(receiver.received) == 2
    assert receiver.received[0].body == receiver.received[1].body


def test_an_unreachable_endpoint_counts_as_a_failure(ctx: Ctx, clock: ManualClock) -> None:
    # a port nobody listens on (the receiver of no test)
    endpoint(ctx, "http://127.0.0.1:9/hook", "MemberRegistered")
    f.member(ctx)
    with worker_for(ctx, clock) as worker:
        assert worker.run_once() == totals(retrying=1)
    (waiting,) = deliveries(ctx)
    assert waiting["last_status_code"] is None
    assert waiting["last_error"].startswith("ConnectError")
    assert attempts(ctx, waiting["id"]) == [(1, None, False)]


def test_a_dead_delivery_can_be_replayed(ctx: Ctx, clock: ManualClock, receiver: Receiver) -> None:
    endpoint(ctx, receiver.url(), "MemberRegistered")
    receiver.answer("/hook", 500, 503)
    f.member(ctx)
    policy = RetryPolicy(max_attempts=2)

    with worker_for(ctx, clock, policy=policy) as worker:
        assert worker.run_once() == totals(retrying=1)
        clock.advance(seconds=10)
        assert worker.run_once() == totals(dead=1)
        clock.advance(days=2)
        assert worker.run_once() == totals()
        (dead,) = deliveries(ctx)
        assert (dead["status"], dead["failures"]) == ("dead", 2)

        replayed = service.replay_delivery(ctx, delivery_id=dead["id"])
        assert (replayed["status"], replayed["next_attempt_at"]) == ("pending", clock.now())
        assert [a["status_code"] for a in replayed["attempts"]] == [500, 503]
        assert worker.run_once() == totals(delivered=1)

    (done,) = deliveries(ctx)
    assert (done["status"], done["attempts"], done["failures"]) == ("delivered", 3, 0)
    assert attempts(ctx, done["id"]) == [(1, 500, False), (2, 503, False), (3, 200, True)]


def _subject_events(ctx: Ctx, clock: ManualClock, subject: str, types: list[str]) -> list[str]:
    """Record one event per type about `subject`, a second apart; their ids in order."""
    ids = []
    for event_type in types:
        with ctx.db.transaction() as tx:
            record_events(
                tx,
                tenant_id=ctx.tenant_id,
                actor="test",
                at=clock.now(),
                items=[Event(event_type, "order", subject, {"step": event_type})],
            )
        clock.advance(seconds=1)
    for e in tenant_events(ctx):
        if e["subject_id"] == subject:
            ids.append(e["id"])
    return ids


def test_one_subjects_deliveries_arrive_in_event_order_even_after_a_failure(
    ctx: Ctx, clock: ManualClock, receiver: Receiver
) -> None:
    endpoint(ctx, receiver.url(), "*")
    ours = _subject_events(ctx, clock, "ord_a", ["OrderCreated", "OrderPaid", "OrderShipped"])
    other = _subject_events(ctx, clock, "ord_b", ["OrderCreated"])
    receiver.answer("/hook", 500)  # the first request fails: the oldest of ord_a

    with worker_for(ctx, clock, concurrency=1) as worker:
        # only the oldest of each subject goes out; ord_a's younger ones wait for the retry
        assert worker.drain() == totals(delivered=1, retrying=1)
        assert [r.event["id"] for r in receiver.received] == [ours[0], other[0]]
        clock.advance(seconds=10)
        assert worker.drain() == totals(delivered=3)

    sent = [r.event["id"] for r in receiver.received if r.event["subject_id"] == "ord_a"]
    assert sent == [ours[0], ours[0], ours[1], ours[2]]


def test_a_dead_delivery_holds_its_subject_back_until_skipped(
    ctx: Ctx, clock: ManualClock, receiver: Receiver
) -> None:
    endpoint(ctx, receiver.url(), "*")
    ours = _subject_events(ctx, clock, "ord_c", ["OrderCreated", "OrderPaid"])
    receiver.answer("/hook", 500)
    with worker_for(ctx, clock, policy=RetryPolicy(max_attempts=1)) as worker:
        assert worker.drain() == totals(dead=1)
        clock.advance(hours=1)
        assert worker.drain() == totals()  # the younger one waits behind the dead one

        dead = next(d for d in deliveries(ctx) if d["event_id"] == ours[0])
        assert service.skip_delivery(ctx, delivery_id=dead["id"])["status"] == "skipped"
        assert worker.drain() == totals(delivered=1)

    assert [r.event["id"] for r in receiver.received] == ours
    assert [d["status"] for d in deliveries(ctx)] == ["skipped", "delivered"]


def test_a_paused_endpoints_deliveries_wait_for_it(
    ctx: Ctx, clock: ManualClock, receiver: Receiver
) -> None:
    hook = endpoint(ctx, receiver.url(), "MemberRegistered")
    f.member(ctx)
    service.update_endpoint(ctx, endpoint_id=hook["id"], active=False)
    with worker_for(ctx, clock) as worker:
        assert worker.drain() == totals()
        service.update_endpoint(ctx, endpoint_id=hook["id"], active=True)
        assert worker.drain() == totals(delivered=1)


def test_two_workers_never_send_one_delivery_twice(
    ctx: Ctx, clock: ManualClock, receiver: Receiver
) -> None:
    if not ctx.db.is_postgres:
        pytest.skip("several workers run on PostgreSQL only")
    endpoint(ctx, receiver.url(), "*")
    with ctx.db.transaction() as tx:
        record_events(
            tx,
            tenant_id=ctx.tenant_id,
            actor="test",
            at=clock.now(),
            items=[Event("MemberUpdated", "member", f"mem_{n:03d}") for n in range(60)],
        )
    start = threading.Barrier(2)
    done: list[Totals] = []

    def work(worker: DeliveryWorker) -> None:
        start.wait()
        done.append(worker.drain())

    workers = [worker_for(ctx, clock, batch_size=4, concurrency=3) for _ in range(2)]
    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for worker in workers:
        worker.close()

    sent = [r.headers["Shequn-Delivery-Id"] for r in receiver.received]
    assert len(sent) == 60
    assert len(set(sent)) == 60
    assert sum(t.delivered for t in done) == 60
    assert sum(t.lost for t in done) == 0
    assert {d["status"] for d in deliveries(ctx)} == {"delivered"}
    assert {d["attempts"] for d in deliveries(ctx)} == {1}


# --- reach: only public addresses, unless the deployment allows private ones -------------------


def test_registration_refuses_a_private_host_unless_allowed(ctx: Ctx) -> None:
    for url in ("http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.0.0.7/hook"):
        with pytest.raises(InvalidInput) as refused:
            service.create_endpoint(ctx, server_key=KEY, url=url, event_types=["*"])
        assert refused.value.code == "webhook_url_private"
    hook = endpoint(ctx, "https://hooks.example.com/in", "*")
    with pytest.raises(InvalidInput) as refused:
        service.update_endpoint(ctx, endpoint_id=hook["id"], url="http://169.254.169.254/")
    assert refused.value.code == "webhook_url_private"
    assert [e["url"] for e in service.list_endpoints(ctx)] == ["https://hooks.example.com/in"]


def test_a_name_that_resolves_inward_is_not_sent_to(
    ctx: Ctx, clock: ManualClock, receiver: Receiver
) -> None:
    # registered by name (as a public name would be), the host resolves to the receiver on
    # this machine when the worker sends: the attempt fails without a connection
    hook = endpoint(ctx, f"http://rebind.example:{receiver.port}/hook", "MemberRegistered")
    f.member(ctx)
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return ["127.0.0.1"]

    worker = DeliveryWorker(
        ctx.db,
        server_key=KEY,
        clock=clock,
        options=WorkerOptions(tenant_id=ctx.tenant_id, timeout=5.0),
        rng=random.Random(7),
        resolve=resolve,
    )
    with worker:
        assert worker.run_once() == totals(retrying=1)
    assert asked == [("rebind.example", receiver.port)]
    assert receiver.received == []
    (waiting,) = deliveries(ctx)
    assert waiting["endpoint_id"] == hook["id"]
    assert waiting["last_error"] == (
        "refused: rebind.example resolves to 127.0.0.1, not a public address"
    )
    assert attempts(ctx, waiting["id"]) == [(1, None, False)]


def test_a_public_name_is_sent_to_the_address_checked_with_its_own_host_name(
    ctx: Ctx, clock: ManualClock
) -> None:
    endpoint(ctx, "https://hooks.example.com:8443/in?x=1", "MemberRegistered")
    f.member(ctx)
    seen: list[httpx2.Request] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(204)

    with (
        httpx2.Client(transport=httpx2.MockTransport(answer)) as http,
        DeliveryWorker(
            ctx.db,
            server_key=KEY,
            clock=clock,
            options=WorkerOptions(tenant_id=ctx.tenant_id),
            http=http,
            resolve=lambda host, port: ["93.184.216.34", "10.0.0.1"][:1],
        ) as worker,
    ):
        assert worker.run_once() == totals(delivered=1)
    (request,) = seen
    assert str(request.url) == "https://93.184.216.34:8443/in?x=1"
    assert request.headers["Host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"


def test_one_inward_address_among_public_ones_refuses_the_attempt(
    ctx: Ctx, clock: ManualClock
) -> None:
    endpoint(ctx, "https://hooks.example.com/in", "MemberRegistered")
    f.member(ctx)
    with DeliveryWorker(
        ctx.db,
        server_key=KEY,
        clock=clock,
        options=WorkerOptions(tenant_id=ctx.tenant_id),
        resolve=lambda host, port: ["93.184.216.34", "10.0.0.1"],
    ) as worker:
        assert worker.run_once() == totals(retrying=1)
    (waiting,) = deliveries(ctx)
    assert "10.0.0.1" in waiting["last_error"]


# --- deleting endpoints and pruning deliveries ---------------------------------------------------


def test_deleting_an_endpoint_removes_its_deliveries_and_attempts_only(
    ctx: Ctx, clock: ManualClock, receiver: Receiver
) -> None:
    gone = endpoint(ctx, receiver.url("/gone"), "MemberRegistered")
    kept = endpoint(ctx, receiver.url("/kept"), "MemberRegistered")
    f.member(ctx)
    with worker_for(ctx, clock) as worker:
        assert worker.drain() == totals(delivered=2)
    f.member(ctx)  # a pending delivery to each

    service.delete_endpoint(ctx, endpoint_id=gone["id"])

    assert [e["id"] for e in service.list_endpoints(ctx)] == [kept["id"]]
    left = deliveries(ctx)
    assert {d["endpoint_id"] for d in left} == {kept["id"]}
    assert len(left) == 2
    with ctx.db.read() as tx:
        attempt_of = tx.execute(
            select(webhook_attempts.c.delivery_id).where(
                webhook_attempts.c.tenant_id == ctx.tenant_id
            )
        ).all()
    assert {a.delivery_id for a in attempt_of} <= {d["id"] for d in left}
    with pytest.raises(NotFound):
        service.delete_endpoint(ctx, endpoint_id=gone["id"])
    # a new event reaches the remaining endpoint only
    f.member(ctx)
    assert {d["endpoint_id"] for d in deliveries(ctx)} == {kept["id"]}


def test_pruning_deletes_finished_deliveries_past_the_retention_and_keeps_the_rest(
    ctx: Ctx, clock: ManualClock, receiver: Receiver
) -> None:
    endpoint(ctx, receiver.url(), "MemberRegistered")
    f.member(ctx, "旧")
    f.member(ctx, "旧失败")
    receiver.answer("/hook", 200, 500)
    with worker_for(ctx, clock, policy=RetryPolicy(max_attempts=1)) as worker:
        assert worker.drain() == totals(delivered=1, dead=1)
    old_dead = next(d for d in deliveries(ctx) if d["status"] == "dead")
    f.member(ctx, "旧跳过")
    skipped = max(deliveries(ctx), key=lambda d: d["event_id"])
    service.skip_delivery(ctx, delivery_id=skipped["id"])
    clock.advance(days=31)
    f.member(ctx, "新")  # pending, and young
    with worker_for(ctx, clock) as worker:
        worker.drain()

    deleted = service.prune_deliveries(
        ctx.db, now=clock.now(), keep=timedelta(days=30), tenant_id=ctx.tenant_id, rows=1
    )

    assert deleted == 2  # the old delivered one and the old skipped one
    left = deliveries(ctx)
    assert sorted(d["status"] for d in left) == ["dead", "delivered"]
    assert old_dead["id"] in {d["id"] for d in left}
    with ctx.db.read() as tx:
        attempted = {
            r.delivery_id
            for r in tx.execute(
                select(webhook_attempts.c.delivery_id).where(
                    webhook_attempts.c.tenant_id == ctx.tenant_id
                )
            )
        }
    assert attempted == {d["id"] for d in left}
    # pruning again finds nothing
    assert service.prune_deliveries(ctx.db, now=clock.now(), tenant_id=ctx.tenant_id) == 0


def test_the_running_worker_prunes_once_an_hour(
    ctx: Ctx, clock: ManualClock, receiver: Receiver
) -> None:
    endpoint(ctx, receiver.url(), "MemberRegistered")
    f.member(ctx)
    with worker_for(ctx, clock, retention=timedelta(minutes=10)) as worker:
        worker.drain()
        clock.advance(minutes=20)
        assert worker.prune_if_due() == 1  # the first round prunes
        f.member(ctx)
        worker.drain()
        clock.advance(minutes=20)
        assert worker.prune_if_due() == 0  # not an hour since: not looked at
        assert len(deliveries(ctx)) == 1
        clock.advance(minutes=40)
        assert worker.prune_if_due() == 1
        assert deliveries(ctx) == []


def test_an_endpoint_at_a_private_address_registered_while_allowed_is_refused_later(
    ctx: Ctx, clock: ManualClock, receiver: Receiver
) -> None:
    # registered while the deployment allowed private hosts, sent by a worker that does not
    endpoint(ctx, receiver.url(), "MemberRegistered")
    f.member(ctx)
    with worker_for(ctx, clock, allow_private_hosts=False) as worker:
        assert worker.run_once() == totals(retrying=1)
    assert receiver.received == []
    (waiting,) = deliveries(ctx)
    assert waiting["last_error"] == "refused: 127.0.0.1, not a public address"


def test_pruning_every_tenant_at_once(ctx: Ctx, clock: ManualClock, receiver: Receiver) -> None:
    tenant_id, _ = create_tenant(db=ctx.db, clock=clock, name="另一家 other")
    other = Ctx(db=ctx.db, clock=clock, tenant_id=tenant_id, actor="test")
    for who in (ctx, other):
        endpoint(who, receiver.url(), "MemberRegistered")
        f.member(who)
        with worker_for(who, clock) as worker:
            assert worker.drain() == totals(delivered=1)
    clock.advance(days=31)

    deleted = service.prune_deliveries(ctx.db, now=clock.now(), rows=1)

    assert deleted >= 2  # these two, and any other tenant's of the shared database
    assert deliveries(ctx) == deliveries(other) == []
