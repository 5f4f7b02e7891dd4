"""`shequn serve` as a shop runs it: worker processes answering over real sockets, keep-alive
and pipelined requests on one connection, a paid order through the fast lane, and a response
that closes the connection sent whole before it closes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shequn.entrypoints.cli import app as cli
from shequn.schema import upgrade_database

START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Server:
    port: int
    api_key: str


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder: Path = tmp_path_factory.mktemp("server")
    url = f"sqlite:///{folder / 'served.db'}"
    upgrade_database(url)
    created = CliRunner().invoke(
        cli, ["tenant", "create", "served", "--json", "--database-url", url], env={}
    )
    assert created.exit_code == 0, created.output
    api_key = json.loads(created.stdout)["api_key"]
    port = _free_port()
    env = {**os.environ, "SHEQUN_DATABASE_URL": url}
    process = subprocess.Popen(
        [sys.executable, "-m", "shequn", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    if _exchange(conn, [_request("GET", "/healthz")])[0].status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        yield Server(port, api_key)
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()


def _request(
    method: str, path: str, body: Any = None, *, key: str | None = None, close: bool = False
) -> bytes:
    data = b"" if body is None else json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(data)}"]
    if body is not None:
        lines.append("Content-Type: application/json")
    if key is not None:
        lines.append(f"Authorization: Bearer {key}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def _read_answer(conn: socket.socket, buffer: bytearray) -> Answer:
    while b"\r\n\r\n" not in buffer:
        chunk = conn.recv(65536)
        assert chunk, "connection closed before the headers"
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = conn.recv(65536)
        assert chunk, "connection closed before the body"
        rest += chunk
    buffer[:] = rest[length:]
    return Answer(int(status_line.split(" ")[1]), headers, rest[:length])


def _exchange(conn: socket.socket, requests: list[bytes]) -> list[Answer]:
    """Send the requests back to back (pipelined) and read one answer each."""
    conn.sendall(b"".join(requests))
    buffer = bytearray()
    answers = [_read_answer(conn, buffer) for _ in requests]
    assert buffer == b""
    return answers


@pytest.fixture
def conn(server: Server) -> Iterator[socket.socket]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as connection:
        yield connection


def test_keep_alive_and_pipelined_requests_get_their_own_answers(
    server: Server, conn: socket.socket
) -> None:
    first = _exchange(conn, [_request("GET", "/healthz")])
    second = _exchange(conn, [_request("GET", "/api/v1/settings", key=server.api_key)])
    pipelined = _exchange(
        conn,
        [
            _request("GET", "/healthz"),
            _request("GET", "/api/v1/products/none", key=server.api_key),
            _request("GET", "/api/v1/settings"),
        ],
    )
    assert first[0].status == 200
    assert first[0].json()["status"] == "ok"
    assert second[0].status == 200
    assert second[0].json()["compliance_profile"] == "wechat"
    assert [a.status for a in pipelined] == [200, 404, 401]
    assert pipelined[1].json()["code"] == "product_not_found"
    assert pipelined[2].json()["code"] == "api_key_missing"


def test_a_paid_order_over_the_served_api(server: Server, conn: socket.socket) -> None:
    key = server.api_key
    product, member = _exchange(
        conn,
        [
            _request(
                "POST",
                "/api/v1/products",
                {"sku": "served-1", "name": "Tea", "price_fen": 1990, "ladder_role": "core"},
                key=key,
            ),
            _request("POST", "/api/v1/members", {"name": "Buyer"}, key=key),
        ],
    )
    assert (product.status, member.status) == (201, 201)
    lines = [{"sku": "served-1", "quantity": 2}]
    order_body = {"buyer_id": member.json()["id"], "lines": lines, "idempotency_key": "k-1"}
    created, again = _exchange(
        conn,
        [
            _request("POST", "/api/v1/orders", order_body, key=key),
            _request("POST", "/api/v1/orders", order_body, key=key),
        ],
    )
    assert (created.status, again.status) == (201, 200)
    assert again.headers["idempotent-replayed"] == "true"
    order = created.json()
    assert (order["total_fen"], order["status"]) == (3980, "created")
    assert again.json() == order
    pay = {"provider_txn_id": "txn-served-1", "amount_fen": 3980}
    wrong = {"provider_txn_id": "txn-served-2", "amount_fen": 3981}
    refused, paid = _exchange(
        conn,
        [
            _request("POST", f"/api/v1/orders/{order['id']}/pay", wrong, key=key),
            _request("POST", f"/api/v1/orders/{order['id']}/pay", pay, key=key),
        ],
    )
    assert refused.status == 422, refused.body
    assert refused.json()["code"] == "payment_amount_mismatch"
    assert paid.status == 200, paid.body
    assert (paid.json()["status"], paid.json()["paid_fen"]) == ("paid", 3980)


def test_a_closing_answer_arrives_whole_before_the_connection_closes(
    server: Server, conn: socket.socket
) -> None:
    (answer,) = _exchange(conn, [_request("GET", "/healthz", close=True)])
    assert answer.status == 200
    assert answer.json()["status"] == "ok"
    assert answer.headers["connection"] == "close"
    assert conn.recv(1) == b""
