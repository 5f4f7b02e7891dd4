"""The API server under test, in a process group of its own so that it and its workers stop
together."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from .options import HOST, ROOT, Options


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_healthy(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API server exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError("the API server did not answer /healthz in time")


@contextmanager
def api_server(url: str, options: Options) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`shequn serve`, stopped (and killed if need be) when the block ends."""
    port = free_port()
    env = {
        **os.environ,
        "SHEQUN_DATABASE_URL": url,
        "SHEQUN_API_KEY_CACHE_SECONDS": "30",
        "SHEQUN_DB_POOL_SIZE": str(options.pool_size),
    }
    command = [
        sys.executable,
        "-m",
        "shequn",
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(options.workers),
        "--no-access-log",
    ]
    process = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
    try:
        wait_healthy(port, process)
        yield port, process
    finally:
        stop_process_group(process)


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass
