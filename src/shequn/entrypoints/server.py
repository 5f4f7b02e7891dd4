"""The API server: uvicorn in one process, or in several that each listen on a socket of their
own.

Worker processes that share one listening socket do not share its connections fairly: the
process that wakes first accepts every connection waiting, so keep-alive clients that connect
together (a load balancer's pool, a batch of integrations) all land on one process while the
others idle. Here every worker binds its own socket with SO_REUSEPORT, and the kernel spreads
new connections over them. The parent only starts the workers, restarts one that dies, and
stops them all on SIGINT or SIGTERM.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

log = logging.getLogger("shequn.server")

APP = "shequn.entrypoints.app:app_from_environment"
RESTART_PAUSE_S = 1.0
STOP_TIMEOUT_S = 20.0
# A worker that dies this soon after it started, this many times running, will not start at all
# (a broken configuration): the server stops instead of restarting it forever.
QUICK_DEATH_S = 5.0
QUICK_DEATHS_TO_GIVE_UP = 5


class WorkersKeepDying(RuntimeError):
    pass


@dataclass(frozen=True)
class ServerOptions:
    host: str
    port: int
    workers: int
    access_log: bool


def default_workers() -> int:
    """One worker process per core."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def uvicorn_config(options: ServerOptions, *, app: Any = APP) -> Any:
    """The configuration of one worker: the application (by default built from the
    environment by its factory) with uvicorn's own protocol."""
    import uvicorn

    return uvicorn.Config(
        app,
        factory=isinstance(app, str),
        host=options.host,
        port=options.port,
        log_level="info" if options.access_log else "warning",
        access_log=options.access_log,
    )


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) that other processes may bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _worker(options: ServerOptions) -> None:
    import uvicorn

    config = uvicorn_config(options)
    assert isinstance(config, uvicorn.Config)
    uvicorn.Server(config).run(sockets=[listening_socket(options.host, options.port)])


def serve(options: ServerOptions) -> None:
    """Serve the API until interrupted."""
    if options.workers <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        import uvicorn

        uvicorn.run(
            APP,
            factory=True,
            host=options.host,
            port=options.port,
            workers=options.workers,
            log_level="info" if options.access_log else "warning",
            access_log=options.access_log,
        )
        return
    # Bind once here first, so that a port already taken fails now and plainly.
    listening_socket(options.host, options.port).close()
    _Supervisor(options).run()


class _Supervisor:
    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[BaseProcess] = []
        self.started_at: dict[int, float] = {}
        self.quick_deaths = 0
        self.stopping = False

    def _start(self, index: int) -> BaseProcess:
        process = self.context.Process(target=_worker, args=(self.options,), daemon=False)
        process.start()
        self.started_at[index] = time.monotonic()
        return process

    def _restart(self, index: int, process: BaseProcess) -> None:
        lived = time.monotonic() - self.started_at[index]
        self.quick_deaths = self.quick_deaths + 1 if lived < QUICK_DEATH_S else 0
        if self.quick_deaths >= QUICK_DEATHS_TO_GIVE_UP:
            raise WorkersKeepDying(f"workers keep exiting (last exit code {process.exitcode})")
        log.warning("worker %s exited with %s; restarting", process.pid, process.exitcode)
        time.sleep(RESTART_PAUSE_S)
        self.workers[index] = self._start(index)

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> None:
        previous = {
            signum: signal.signal(signum, self._stop) for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self.workers = [self._start(i) for i in range(self.options.workers)]
            while not self.stopping:
                for index, process in enumerate(self.workers):
                    if not process.is_alive() and not self.stopping:
                        self._restart(index, process)
                time.sleep(0.2)
        finally:
            for process in self.workers:
                if process.is_alive() and process.pid is not None:
                    os.kill(process.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            for process in self.workers:
                process.join(max(0.0, deadline - time.monotonic()))
                if process.is_alive():
                    process.kill()
                    process.join()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
