"""Running use cases side by side on PostgreSQL, released at the same instant."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Any

from shequn.errors import DomainError


def race(n: int, call: Any) -> list[Any]:
    """Run `call(i)` in n threads released at the same instant; collect results or errors."""
    barrier = Barrier(n)

    def run(i: int) -> Any:
        barrier.wait()
        try:
            return call(i)
        except DomainError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))
