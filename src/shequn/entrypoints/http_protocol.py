"""uvicorn's HTTP protocol, with each response sent in one piece and the two requests of a
paid order answered by the protocol itself.

uvicorn writes a response's status line and headers as soon as the application starts the
response, and the body when it arrives: two `send` system calls, and two segments the client
wakes up for, per response. On a loopback or a virtual machine every such call costs tens of
microseconds of kernel time, as much as a small route's own work. Here the writes made during
one turn of the event loop are joined and sent together at its end, so an ordinary response
(headers and body sent by the application back to back) leaves in one call. A streamed
response still goes out piece by piece, each piece at the end of the turn that produced it.

For every request uvicorn builds an ASGI scope, starts a task and passes messages through the
middleware of the application (proxy headers, error handling, body limit, language), and for
the two requests every sale makes that took a third of a worker's CPU. The protocol answers
those itself, with `FastAnswers` (`shequn.entrypoints.hot_routes`), as soon as the request's
last byte is in: the same use cases, the same answer byte for byte, the same language, without
the ASGI machinery. It takes a request only when nothing else is under way on the connection
(no earlier request still being answered) and the request is plain: `POST` to one of the two
paths, no percent-encoding, no `Expect: 100-continue`, no upgrade; and it hands the request,
as it came, to uvicorn and the application whenever `FastAnswers` declines it (no key that may
write, a body the route's model refuses, a body over 1 MiB), so those are answered by the
routes as before. With uvicorn's access log on, every request goes to the application, so
that each is logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from shequn.entrypoints.hot_routes import MAX_BODY, Answer, FastAnswers, Target, target_of

log = logging.getLogger("shequn.api")


class CoalescingTransport:
    """A transport whose writes in one turn of the event loop go out as one write.

    Everything but writing and closing is the wrapped transport's own."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        """Send what was written so far (called at the end of the turn, and before closing)."""
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(p) for p in self._pending)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def fast_answers_of(app: Any) -> FastAnswers | None:
    """The fast answers of the Shequn application inside `app` (under uvicorn's own wrappers),
    if it has them."""
    for _ in range(8):
        state = getattr(app, "state", None)
        found = getattr(state, "fast_answers", None) if state is not None else None
        if isinstance(found, FastAnswers):
            return found
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


class _Taken:
    """A request the protocol reads itself: where it goes, and its body so far."""

    __slots__ = ("body", "target")

    def __init__(self, target: Target) -> None:
        self.target = target
        self.body = bytearray()


class ShequnHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a `CoalescingTransport`, answering the two requests
    of a paid order itself."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing = CoalescingTransport(transport, self.loop)
        super().connection_made(coalescing)  # type: ignore[arg-type]
        plain = not self.access_log and self.limit_concurrency is None
        self._answers = fast_answers_of(self.app) if plain else None
        self._taken: _Taken | None = None

    def on_message_begin(self) -> None:
        # A request that follows in the same packet: the keep-alive timer armed after the
        # answer to the one before must not run while it is being answered.
        self._unset_keepalive_if_required()
        self._taken = None
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        target = self._target() if self._answers is not None else None
        if target is None:
            super().on_headers_complete()
            return
        self._taken = _Taken(target)

    def _target(self) -> Target | None:
        if self.expect_100_continue or self.parser.should_upgrade() or self.pipeline:
            return None
        if self.cycle is not None and not self.cycle.response_complete:
            return None  # an earlier request on this connection is still being answered
        if self.parser.get_method() != b"POST":
            return None
        url = self.url
        if not url.startswith(b"/") or b"%" in url or b"#" in url:
            return None
        path = url.split(b"?", 1)[0]
        try:
            return target_of(path.decode("ascii"))
        except UnicodeDecodeError:
            return None

    def on_body(self, body: bytes) -> None:
        taken = self._taken
        if taken is None:
            super().on_body(body)
            return
        taken.body += body
        if len(taken.body) > MAX_BODY:
            self._hand_over(taken, complete=False)

    def on_message_complete(self) -> None:
        taken = self._taken
        if taken is None:
            super().on_message_complete()
            return
        self._taken = None
        assert self._answers is not None
        try:
            answer = self._answers.answer(taken.target, self.headers, bytes(taken.body))
        except Exception:  # a parser callback must not raise: the request would be taken as bad
            log.exception("unhandled error")
            self._respond(self._answers.internal_error(self.headers), close=True)
            return
        if answer is None:
            self._hand_over(taken, complete=True)
            return
        self._respond(answer, close=False)

    def _hand_over(self, taken: _Taken, *, complete: bool) -> None:
        """Give the request to uvicorn and the application, as the parser gave it so far."""
        self._taken = None
        super().on_headers_complete()
        if taken.body:
            super().on_body(bytes(taken.body))
        if complete:
            super().on_message_complete()

    def _respond(self, answer: Answer, *, close: bool) -> None:
        keep_alive = (
            not close
            and self.parser.get_http_version() != "1.0"
            and self.parser.should_keep_alive()
        )
        content = [STATUS_LINE[answer.status]]
        for name, value in self.server_state.default_headers:
            content += (name, b": ", value, b"\r\n")
        for name, value in answer.headers:
            content += (name, b": ", value, b"\r\n")
        if not keep_alive:
            content.append(b"connection: close\r\n")
        content += (b"\r\n", answer.body)
        self.transport.write(b"".join(content))
        self.server_state.total_requests += 1
        if not keep_alive:
            self.transport.close()
        elif not self.transport.is_closing():
            self._unset_keepalive_if_required()
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )
