"""A bounded, thread-safe map of what a process read lately."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """At most `size` values, the one put longest ago forgotten first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: dict[K, V] = {}
        self._lock = threading.Lock()

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._insert(key, value)

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._items.get(key)

    def take(self, key: K) -> V | None:
        """The value, forgotten."""
        with self._lock:
            return self._items.pop(key, None)

    def put_unless_newer(self, key: K, value: V, *, newer: Callable[[V, V], bool]) -> None:
        """Put `value` unless the one held is `newer(held, value)` (a read that finished late
        does not replace a later one)."""
        with self._lock:
            held = self._items.get(key)
            if held is not None and newer(held, value):
                return
            self._insert(key, value)

    def _insert(self, key: K, value: V) -> None:
        self._items.pop(key, None)
        if len(self._items) >= self._size:
            del self._items[next(iter(self._items))]
        self._items[key] = value
