"""The HTTP protocol of `shequn serve` answers the two requests of a paid order itself: byte for
byte as the routes answer them, in order with whatever else the connection carries, and it
hands everything it does not take to the application as it came."""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from shequn.clock import ManualClock
from shequn.config import Settings
from shequn.db import Database
from shequn.entrypoints import hot_routes
from shequn.entrypoints.app import create_app
from shequn.entrypoints.http_protocol import ShequnHttpProtocol
from tests.e2e.conftest import API, TenantKeys, World, build_world
from tests.e2e.paid_order_script import CountingService, Names, paid_order_script

DATE = b"Tue, 01 Dec 2026 08:00:00 GMT"


class _Wire(asyncio.Transport):
    """The server's end of a connection: what it wrote, whether it closed."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = bytearray()
        self.closed = False

    def write(self, data: Any) -> None:
        assert not self.closed, "written after close"
        self.sent += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50_000), "sockname": ("127.0.0.1", 8_000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


class _Reply:
    """One response as a client reads it."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        head, _, self.content = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status_code = int(lines[0].split(" ")[1])
        self.headers = {name: value for name, _, value in (h.partition(": ") for h in lines[1:])}
        self.text = self.content.decode()

    def json(self) -> Any:
        return jsonlib.loads(self.content)


def _replies(data: bytes) -> tuple[list[_Reply], bytes]:
    """The complete responses at the start of `data` (each has a Content-Length), and the rest."""
    out: list[_Reply] = []
    while b"\r\n\r\n" in data:
        head, _, rest = data.partition(b"\r\n\r\n")
        if head.startswith(b"HTTP/1.1 100 "):
            out.append(_Reply(head + b"\r\n\r\n"))
            data = rest
            continue
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b": ")
            if name.lower() == b"content-length":
                length = int(value)
        if len(rest) < length:
            break
        out.append(_Reply(head + b"\r\n\r\n" + rest[:length]))
        data = rest[length:]
    return out, data


def request(
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    *,
    json: Any = None,
    content: bytes | None = None,
    version: str = "1.1",
) -> bytes:
    """A request as a client writes it."""
    given = {k.lower(): v for k, v in (headers or {}).items()}
    if json is not None:
        content = jsonlib.dumps(json, ensure_ascii=False).encode()
        given.setdefault("content-type", "application/json")
    lines = [f"{method} {path} HTTP/{version}", "host: shop.example"]
    lines += [f"{k}: {v}" for k, v in given.items()]
    if content is not None:
        lines.append(f"content-length: {len(content)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (content or b"")


class WireClient:
    """A connection to a server made of `protocol` and `app`, on an event loop of its own; it
    speaks raw HTTP/1.1 and keeps every response's bytes."""

    def __init__(self, protocol: type[HttpToolsProtocol], app: Any, **config: Any) -> None:
        self.loop = asyncio.new_event_loop()
        config.setdefault("access_log", False)
        self.config = uvicorn.Config(app, http=protocol, lifespan="off", log_config=None, **config)
        self.config.load()
        self.state = ServerState()
        self.state.default_headers = [(b"date", DATE), (b"server", b"uvicorn")]
        self.protocol_class = protocol
        self.raw: list[bytes] = []
        self.connect()

    def connect(self) -> None:
        self.wire = _Wire()
        self.protocol = self.protocol_class(
            config=self.config, server_state=self.state, app_state={}, _loop=self.loop
        )
        self.protocol.connection_made(self.wire)
        self.read = 0

    def close(self) -> None:
        self.protocol.connection_lost(None)
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()

    def exchange(self, *pieces: bytes, replies: int = 1) -> list[_Reply]:
        """Write `pieces` one after the other (a turn of the loop between them) and read
        `replies` responses."""

        async def run() -> list[_Reply]:
            for piece in pieces:
                self.protocol.data_received(piece)
                await asyncio.sleep(0)
            for _ in range(5_000):  # the routes answer on worker threads
                got, _ = _replies(bytes(self.wire.sent[self.read :]))
                if len(got) >= replies or (self.wire.closed and not self.wire.sent[self.read :]):
                    break
                await asyncio.sleep(0.002)
            got, rest = _replies(bytes(self.wire.sent[self.read :]))
            self.read = len(self.wire.sent) - len(rest)
            return got

        got = self.loop.run_until_complete(run())
        assert len(got) == replies, (got, bytes(self.wire.sent))
        self.raw += [r.raw for r in got]
        return got

    def send(self, method: str, path: str, **kw: Any) -> _Reply:
        if self.wire.closed:
            self.connect()
        return self.exchange(request(method, path, **kw))[0]

    # enough of TestClient's interface for build_world and the script
    def post(self, path: str, **kw: Any) -> _Reply:
        return self.send("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> _Reply:
        return self.send("PATCH", path, **kw)


class _Reached:
    """The application, counting the HTTP requests that reach it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.count = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.count += 1
        await self.app(scope, receive, send)


SETTINGS = Settings(environment="test", api_key_cache_seconds=30, database_url="sqlite://")


@pytest.fixture
def lane(db: Database, clock: ManualClock) -> Iterator[tuple[WireClient, _Reached]]:
    app = _Reached(create_app(SETTINGS, clock=clock, db=db))
    client = WireClient(ShequnHttpProtocol, app)
    yield client, app
    client.close()


@pytest.fixture
def plain(db: Database, clock: ManualClock) -> Iterator[WireClient]:
    """uvicorn's own protocol and the application without fast answers: the routes."""
    client = WireClient(
        HttpToolsProtocol, create_app(SETTINGS, clock=clock, db=db, hot_routes=False)
    )
    yield client
    client.close()


def _named(raw: list[bytes], known: dict[str, str]) -> list[str]:
    names = Names(known)
    return [names(r.decode()) for r in raw]


def _known(world: World) -> dict[str, str]:
    return {world.buyer: "<buyer>", world.parent: "<parent>", world.root: "<root>"}


def test_the_protocol_answers_byte_for_byte_as_the_routes(
    lane: tuple[WireClient, _Reached],
    plain: WireClient,
    make_tenant: Callable[[str], TenantKeys],
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given the protocol with its fast answers, counting the use cases they call
    client, app = lane
    counting = CountingService()
    monkeypatch.setattr(hot_routes, "service", counting)
    start = clock.now()
    world = build_world(client, make_tenant)
    before_script = len(client.raw)
    fast = paid_order_script(client, world)
    fast_raw = _named(client.raw, _known(world))

    # when the same requests go to uvicorn's own protocol and the routes, at the same moments
    clock.set(start)
    routed_world = build_world(plain, make_tenant)
    routed = paid_order_script(plain, routed_world)

    # then every response is the same to the byte, and the protocol answered the ordinary
    # requests itself: those never reached the application
    assert fast == routed
    routed_raw = _named(plain.raw, _known(routed_world))
    assert len(fast_raw) == len(routed_raw)
    for mine, theirs in zip(fast_raw, routed_raw, strict=True):
        assert mine == theirs
    answered = sum(counting.calls.values())
    assert counting.calls == {"create": 4 + 6, "pay": 2 + 11}
    assert app.count == len(client.raw) - answered
    assert len(client.raw) - before_script == len(fast)


def _order_body(world: World, key: str) -> dict[str, Any]:
    return {
        "buyer_id": world.buyer,
        "lines": [{"sku": "CORE-1", "quantity": 1}],
        "idempotency_key": key,
    }


@pytest.fixture
def served(
    lane: tuple[WireClient, _Reached], make_tenant: Callable[[str], TenantKeys]
) -> tuple[WireClient, _Reached, World]:
    client, app = lane
    world = build_world(client, make_tenant)
    app.count = 0
    return client, app, world


def test_pipelined_requests_are_answered_in_order(
    served: tuple[WireClient, _Reached, World],
) -> None:
    client, app, world = served
    owner = world.keys.owner

    # when a create, a read of another order and a payment come in one packet
    first = request("POST", f"{API}/orders", owner, json=_order_body(world, "pipe-1"))
    read = request("GET", f"{API}/orders/{world.paid}", owner)
    pay = request(
        "POST",
        f"{API}/orders/{world.created}/pay",
        owner,
        json={"provider_txn_id": "wx-pipe", "amount_fen": 9_900},
    )
    created, got, paid = client.exchange(first + read + pay, replies=3)

    # then they are answered in that order: the create by the protocol, the read by the
    # routes, and the payment (which came while the read was being answered) by the routes too
    assert (created.status_code, got.status_code, paid.status_code) == (201, 200, 200)
    assert got.json()["id"] == world.paid
    assert paid.json()["id"] == world.created
    assert paid.json()["status"] == "paid"
    assert app.count == 2

    # and a read followed by a create: the create waits for the read
    again = request("POST", f"{API}/orders", owner, json=_order_body(world, "pipe-2"))
    got, created_again = client.exchange(read + again, replies=2)
    assert (got.status_code, created_again.status_code) == (200, 201)
    assert got.json()["id"] == world.paid
    assert created_again.json()["id"] != created.json()["id"]


def test_a_request_in_pieces_is_answered_once_whole(
    served: tuple[WireClient, _Reached, World],
) -> None:
    client, app, world = served
    whole = request("POST", f"{API}/orders", world.keys.owner, json=_order_body(world, "bits"))
    head, _, body = whole.partition(b"\r\n\r\n")
    pieces = [head[:10], head[10:] + b"\r\n\r\n", body[:5], body[5:20], body[20:]]

    (reply,) = client.exchange(*pieces)
    (replayed,) = client.exchange(whole)

    assert reply.status_code == 201
    assert replayed.status_code == 200
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json() == reply.json()
    assert app.count == 0


@pytest.mark.parametrize(
    ("version", "connection"), [("1.1", "close"), ("1.0", None), ("1.0", "close")]
)
def test_a_connection_that_is_not_kept_is_closed_after_the_answer(
    served: tuple[WireClient, _Reached, World], version: str, connection: str | None
) -> None:
    client, app, world = served
    headers = dict(world.keys.owner)
    if connection is not None:
        headers["Connection"] = connection
    body = _order_body(world, f"close-{version}-{connection}")

    (reply,) = client.exchange(
        request("POST", f"{API}/orders", headers, json=body, version=version)
    )

    assert reply.status_code == 201
    assert reply.headers["connection"] == "close"
    assert client.wire.closed
    assert app.count == 0


def test_a_kept_connection_waits_for_the_next_request(
    served: tuple[WireClient, _Reached, World],
) -> None:
    client, _, world = served
    counted = client.state.total_requests
    (reply,) = client.exchange(
        request("POST", f"{API}/orders", world.keys.owner, json=_order_body(world, "kept"))
    )
    assert "connection" not in reply.headers
    assert not client.wire.closed
    assert client.protocol.timeout_keep_alive_task is not None
    assert client.state.total_requests == counted + 1


@pytest.mark.parametrize(
    ("case", "statuses"),
    [
        ("expect-100-continue", [100, 201]),
        ("percent-encoded path", [201]),
        ("body over 1 MiB", [422]),  # the route's model refuses the padding
    ],
)
def test_what_the_protocol_does_not_take_reaches_the_application(
    served: tuple[WireClient, _Reached, World], case: str, statuses: list[int]
) -> None:
    client, app, world = served
    headers = {**world.keys.owner, "Content-Type": "application/json"}
    path = f"{API}/orders"
    body = jsonlib.dumps(_order_body(world, f"handed-{case}")).encode()
    if case == "expect-100-continue":
        headers["Expect"] = "100-continue"
    elif case == "percent-encoded path":
        path = f"{API}/%6Frders"
    else:
        body = body[:-1] + b',"pad": "' + b"x" * (1 << 20) + b'"}'

    got = client.exchange(request("POST", path, headers, content=body), replies=len(statuses))

    assert [r.status_code for r in got] == statuses, got[-1].text
    assert app.count == 1


def test_with_the_access_log_on_every_request_reaches_the_application(
    served: tuple[WireClient, _Reached, World],
) -> None:
    _, app, world = served
    # a server that logs each request (the protocol looks for a handler when it is built)
    access = logging.getLogger("uvicorn.access")
    handler = logging.NullHandler()
    access.addHandler(handler)
    try:
        logged = WireClient(ShequnHttpProtocol, app, access_log=True)
    finally:
        access.removeHandler(handler)
    try:
        body = _order_body(world, "logged")
        (reply,) = logged.exchange(request("POST", f"{API}/orders", world.keys.owner, json=body))
    finally:
        logged.close()

    assert reply.status_code == 201
    assert app.count == 1


def test_an_unforeseen_failure_is_a_500_in_the_callers_language(
    served: tuple[WireClient, _Reached, World],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, app, world = served

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(hot_routes.service, "create_order", broken)
    headers = {**world.keys.owner, "Accept-Language": "en"}

    with caplog.at_level(logging.ERROR, logger="shequn.api"):
        (reply,) = client.exchange(
            request("POST", f"{API}/orders", headers, json=_order_body(world, "fire"))
        )

    assert reply.status_code == 500
    assert reply.json() == {"code": "internal_error", "message": reply.json()["message"]}
    assert reply.json()["message"].isascii()
    assert reply.headers["connection"] == "close"
    assert client.wire.closed
    assert app.count == 0
    assert any("disk on fire" in (r.exc_text or "") for r in caplog.records)
