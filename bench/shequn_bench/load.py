"""The HTTP load: keep-alive clients that drive paid orders (create, then pay) in order
segments, parked while pgbench runs. The clients share the cores with the server and
PostgreSQL, so they are kept cheap: a prebuilt request template, responses parsed from the
bytes, JSON decoded only for errors."""

from __future__ import annotations

import asyncio
import json
import random
import re
import uuid
from collections import Counter
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import quote

from .accounting import CpuProbe, ServerTally, db_counters
from .options import HOST, SKUS, Options, order_seconds
from .pgbench import PgbenchLoad, pgbench_segment

# --- the HTTP client --------------------------------------------------------------------------


class HttpError(Exception):
    pass


STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})")
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
TRANSFER_ENCODING = re.compile(rb"\r\ntransfer-encoding:", re.IGNORECASE)
# The id as the first key and the total as a key of the top-level object: `,"` or `{"` cannot
# occur inside a JSON string, and no `{` or `[` before it means no nesting. Else json.loads.
ORDER_ID = re.compile(rb'\{"id":"([A-Za-z0-9_-]+)"')
TOTAL_FEN = re.compile(rb'[{,]"total_fen":(\d+)[,}]')
CREATE_PATH = b"/api/v1/orders"
CREATE_BODY = b'{"buyer_id":%s,"lines":[{"sku":%s,"quantity":1}],"idempotency_key":"%s"}'
PAY_PATH = b"/api/v1/orders/%s/pay"
PAY_BODY = b'{"provider_txn_id":"wx-%s","amount_fen":%d}'


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request in flight: `send` returns a future
    resolved with (status, body) once the body is in by Content-Length, or failed with the
    error (`IncompleteReadError` on a clean close) if the connection is lost."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.pending = b""
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, request: bytes) -> asyncio.Future[tuple[int, bytes]]:
        if self.waiter is not None or self.transport is None:
            raise HttpError("a request is already in flight on this connection")
        waiter = self.waiter = self.loop.create_future()
        self.transport.write(request)
        return waiter

    def data_received(self, data: bytes) -> None:
        if self.pending:
            data = self.pending + data
        end = data.find(b"\r\n\r\n")
        if end < 0:
            self.pending = data
            return
        status = STATUS_LINE.match(data)
        length = CONTENT_LENGTH.search(data, 0, end)
        if self.waiter is None:
            self.fail(HttpError("a response without a request"))
        elif status is None:
            self.fail(HttpError("malformed status line"))
        elif TRANSFER_ENCODING.search(data, 0, end):
            self.fail(HttpError("chunked responses are not supported"))
        elif length is None:
            self.fail(HttpError("response without Content-Length"))
        else:
            start = end + 4
            stop = start + int(length.group(1))
            if len(data) < stop:
                self.pending = data
            elif len(data) > stop:
                self.fail(HttpError("more bytes than the response"))
            else:
                waiter, self.waiter, self.pending = self.waiter, None, b""
                if not waiter.done():
                    waiter.set_result((int(status.group(1)), data[start:stop]))

    def fail(self, exc: BaseException) -> None:
        """Fail the request in flight; the connection is not used again."""
        self.lost = True
        waiter, self.waiter, self.pending = self.waiter, None, b""
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(exc if exc is not None else asyncio.IncompleteReadError(self.pending, None))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Client:
    """A keep-alive client whose request is one %-format of a prebuilt template (only the
    path, the Content-Length and the body vary), so that the CPU goes to the server."""

    def __init__(self, port: int, api_key: str) -> None:
        self.port = port
        headers = (
            f"Host: {HOST}:{port}\r\nAuthorization: Bearer {api_key}\r\n"
            "Content-Type: application/json\r\nAccept: application/json\r\n"
        ).encode()
        self.template = (
            b"POST %s HTTP/1.1\r\n" + headers.replace(b"%", b"%%") + b"Content-Length: %d\r\n\r\n%s"
        )
        self.connection: HttpConnection | None = None

    async def post(self, path: bytes, body: bytes) -> tuple[int, bytes]:
        connection = self.connection
        if connection is None or connection.lost:
            _, connection = await asyncio.get_running_loop().create_connection(
                HttpConnection, HOST, self.port
            )
            self.connection = connection
        return await connection.send(self.template % (path, len(body), body))

    async def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def created_order(body: bytes) -> tuple[bytes, int]:
    """The id (ready for the pay path) and the total of a created order."""
    found = ORDER_ID.match(body)
    total = TOTAL_FEN.search(body)
    if found is not None and total is not None:
        at = total.start()
        if body.find(b"{", 1, at) < 0 and body.find(b"[", 1, at) < 0:
            return found.group(1), int(total.group(1))
    order = json.loads(body)
    if isinstance(order, dict):
        order_id, total_fen = order.get("id"), order.get("total_fen")
        if isinstance(order_id, str) and isinstance(total_fen, int):
            return quote(order_id, safe="").encode(), total_fen
    raise HttpError("a created order without id or total_fen")


def error_code(body: bytes) -> Any:
    """The `code` of an error body (rare, so it is decoded)."""
    parsed = json.loads(body) if body else {}
    return parsed.get("code") if isinstance(parsed, dict) else None


# --- segments and loads -----------------------------------------------------------------------


@dataclass
class Segment:
    """One order segment: new paid orders may start from `opened_at` to `closed_at` (event-loop
    time)."""

    index: int  # its round, from 1
    offset: float  # measured seconds of its load's segments before it
    opened_at: float = 0.0
    closed_at: float = 0.0
    measured: int = 0  # paid orders that began and ended inside it
    paid: int = 0  # paid orders that began inside it, measured or not

    @property
    def seconds(self) -> float:
        return self.closed_at - self.opened_at

    @property
    def orders_per_s(self) -> float:
        return self.measured / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Load:
    """The buyers one load draws its orders from, and what the clients measured of it."""

    buyer_ids: Sequence[str]
    probe: CpuProbe  # CPU over its order segments
    hot: bool = False  # every buyer under the same two uplines
    buyers: list[bytes] = field(init=False)  # JSON strings, ready for the request body
    latencies_ms: list[float] = field(default_factory=list)
    # measured seconds from the opening of the first segment, the pauses between them left out
    finished_at: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    paid_total: int = 0  # every successful paid order, warm-up included
    segments: list[Segment] = field(default_factory=list)
    server: ServerTally = field(default_factory=ServerTally)  # over its order segments

    def __post_init__(self) -> None:
        self.buyers = [json.dumps(b).encode() for b in self.buyer_ids]

    @property
    def orders(self) -> str:
        """What its orders are called in the report."""
        return "hot orders" if self.hot else "orders"

    @property
    def paid_orders(self) -> str:
        return "hot paid orders" if self.hot else "paid orders"

    @property
    def window(self) -> float:
        """Measured seconds: those of its order segments."""
        return sum(segment.seconds for segment in self.segments)

    @property
    def segment_paid(self) -> int:
        """Paid orders begun in its order segments, measured or not: those whose work lies
        between the segments' readings of the CPU and of the server-wide counters."""
        return sum(segment.paid for segment in self.segments)


class Gate:
    """Lets the clients start paid orders of one load while a segment is open and parks them
    otherwise. `wait_parked` returns once every client has finished its order in flight, so
    that no order runs beside pgbench, beside the other load or beside a reading."""

    def __init__(self, clients: int, load: Load) -> None:
        self.loop = asyncio.get_running_loop()
        self.clients = clients
        self.parked = 0
        self.is_open = False
        self.over = False
        self.load = load  # the load of the segment open or last opened
        self.segment: Segment | None = None  # the one open or last opened; None: a warm-up
        self._opened = asyncio.Event()
        self._closed = asyncio.Event()
        self._all_parked = asyncio.Event()

    def open(self, load: Load, segment: Segment | None) -> None:
        self.load = load
        self.segment = segment
        if segment is not None:
            segment.opened_at = self.loop.time()
        self.is_open = True
        self._closed.clear()
        self._opened.set()

    def shut(self) -> None:
        if not self.is_open:
            return
        if self.segment is not None:
            self.segment.closed_at = self.loop.time()
        self.is_open = False
        self._opened.clear()
        self._closed.set()

    async def shut_after(self, seconds: float) -> None:
        """Shut the segment after `seconds`, or as soon as a client has shut it (the measured
        order `--orders` asked for is in)."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), seconds)
        self.shut()

    async def wait_parked(self) -> None:
        while self.parked < self.clients:
            self._all_parked.clear()
            await self._all_parked.wait()

    async def park(self) -> bool:
        """Wait until a segment opens: True then, False once the run is over."""
        self.parked += 1
        if self.parked == self.clients:
            self._all_parked.set()
        try:
            # A segment may open and shut again before this client runs: it stays parked.
            while not (self.is_open or self.over):
                await self._opened.wait()
        finally:
            self.parked -= 1
        return not self.over

    def finish(self) -> None:
        """No more segments: the parked clients go home."""
        self.over = True
        self._opened.set()


# --- the run ----------------------------------------------------------------------------------


async def drive(
    port: int, api_key: str, loads: Sequence[Load], options: Options, bench: PgbenchLoad
) -> None:
    """The clients and the schedule of the run: the warm-up, then the rounds."""
    gate = Gate(options.clients, loads[0])
    rng = random.Random(options.seed)
    run_id = uuid.uuid4().hex[:8]
    sku_json = [json.dumps(s).encode() for s in SKUS]
    loop = asyncio.get_running_loop()

    async def client_loop(index: int) -> None:
        client = Client(port, api_key)
        key_prefix = f"{run_id}-{index}-".encode()
        n = 0
        try:
            while True:
                if not gate.is_open:
                    # A parked client drops its connection: each segment draws afresh how the
                    # kernel spreads connections over the workers, and none idles into the
                    # server's keep-alive timeout.
                    await client.close()
                    if not await gate.park():
                        return
                load, segment = gate.load, gate.segment
                key = b"%s%d" % (key_prefix, n)
                n += 1
                buyer = load.buyers[rng.randrange(len(load.buyers))]
                sku = sku_json[rng.randrange(len(sku_json))]
                began = loop.time()
                try:
                    status, body = await client.post(CREATE_PATH, CREATE_BODY % (buyer, sku, key))
                    if not 200 <= status < 300:
                        load.errors[f"create {status} {error_code(body)}"] += 1
                        continue
                    order_id, total_fen = created_order(body)
                    status, body = await client.post(
                        PAY_PATH % order_id, PAY_BODY % (key, total_fen)
                    )
                    if not 200 <= status < 300:
                        load.errors[f"pay {status} {error_code(body)}"] += 1
                        continue
                except (OSError, asyncio.IncompleteReadError, HttpError, ValueError) as exc:
                    load.errors[f"transport {type(exc).__name__}"] += 1
                    await client.close()
                    continue
                ended = loop.time()
                load.paid_total += 1
                if segment is None:  # a warm-up
                    continue
                segment.paid += 1
                if gate.is_open and gate.segment is segment:  # began and ended inside it
                    segment.measured += 1
                    load.latencies_ms.append((ended - began) * 1000.0)
                    load.finished_at.append(segment.offset + ended - segment.opened_at)
                    if options.orders and len(load.latencies_ms) >= options.orders:
                        gate.shut()
        finally:
            await client.close()

    tasks = [asyncio.create_task(run_rounds(gate, loads, options, bench))]
    tasks += [asyncio.create_task(client_loop(i)) for i in range(options.clients)]
    try:
        await asyncio.gather(*tasks)
    finally:
        # One failed or the run is interrupted: stop and await the others (a pgbench segment
        # stops pgbench). Cancel once only: a second cancellation would cut the cleanup short.
        for task in tasks:
            if not task.done() and not task.cancelling():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_rounds(
    gate: Gate, loads: Sequence[Load], options: Options, bench: PgbenchLoad
) -> None:
    """The warm-up (shared out over the loads), unmeasured, then each round: an order segment
    of each load, then a pgbench segment with the clients parked."""
    if options.warmup > 0:
        for load in loads:
            gate.open(load, None)
            await asyncio.sleep(options.warmup / len(loads))
            gate.shut()
            await gate.wait_parked()
    each = ", ".join(f"{order_seconds(options):.1f} s of {load.orders}" for load in loads)
    print(
        f"warm-up done; {options.rounds} round(s) of {each} then {bench.seconds} s of pgbench …",
        flush=True,
    )
    for index in range(1, options.rounds + 1):
        segments = [await order_segment(gate, load, options, index) for load in loads]
        done = await pgbench_segment(options.admin_url, bench)
        speeds = ", ".join(
            f"{segment.orders_per_s:.0f} {load.paid_orders}/s"
            for load, segment in zip(loads, segments, strict=True)
        )
        print(f"round {index}/{options.rounds}: {speeds}, {done.tps:.0f} tps", flush=True)
        if options.orders and any(len(load.latencies_ms) >= options.orders for load in loads):
            # The rest of this round is run (each segment stops at its load's N-th measured
            # order), the remaining rounds are skipped: no load opens a segment past its N.
            break
    gate.finish()


async def order_segment(gate: Gate, load: Load, options: Options, index: int) -> Segment:
    """One order segment, read with the clients parked and outside its timed part; the
    closing readings once the orders in flight at the close are done, so that all the work
    of the orders begun in it lies between them."""
    before = db_counters(options.admin_url, options.database)
    load.probe.start()
    segment = Segment(index, offset=load.window)
    gate.open(load, segment)
    await gate.shut_after(order_seconds(options))
    await gate.wait_parked()
    load.probe.stop()
    load.server.add(before, db_counters(options.admin_url, options.database))
    load.segments.append(segment)
    return segment
