"""The transport under the API's HTTP protocol sends what one turn of the event loop wrote as
one write, in order, and loses nothing when the connection closes."""

from __future__ import annotations

import asyncio
from typing import Any

from shequn.entrypoints.http_protocol import CoalescingTransport


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def write_eof(self) -> None:
        self.calls.append(("eof", None))

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close", None))

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def _turn() -> None:
    """Let the callbacks scheduled so far run."""
    await asyncio.sleep(0)


def test_writes_of_one_turn_leave_as_one() -> None:
    async def scenario() -> list[tuple[str, Any]]:
        inner = _Recorder()
        transport = CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(memoryview(b"{}"))
        transport.write(b"")
        assert inner.calls == []
        assert transport.get_write_buffer_size() == 7 + 21
        await _turn()
        transport.writelines([b"a", bytearray(b"b")])
        await _turn()
        await _turn()
        return inner.calls

    calls = asyncio.run(scenario())
    assert calls == [("write", b"HTTP/1.1 200 OK\r\n\r\n{}"), ("write", b"ab")]


def test_close_and_eof_send_what_is_pending_first() -> None:
    async def scenario() -> list[tuple[str, Any]]:
        inner = _Recorder()
        transport = CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"head")
        transport.write_eof()
        transport.write(b"tail")
        transport.close()
        await _turn()
        return inner.calls

    calls = asyncio.run(scenario())
    assert calls == [("write", b"head"), ("eof", None), ("write", b"tail"), ("close", None)]


def test_nothing_is_written_to_a_closing_transport() -> None:
    async def scenario() -> list[tuple[str, Any]]:
        inner = _Recorder()
        transport = CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"late")
        inner.closing = True
        await _turn()
        return inner.calls

    assert asyncio.run(scenario()) == []


def test_everything_else_is_the_wrapped_transports() -> None:
    async def scenario() -> tuple[str, bool]:
        inner = _Recorder()
        transport = CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        return transport.get_extra_info("socket"), transport.is_closing()

    assert asyncio.run(scenario()) == ("info:socket", False)
