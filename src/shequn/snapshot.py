"""One process's copies of rows it read or wrote lately, for writes that need not read first.

A use case that would read a row only to learn what it holds (a tenant's settings, a product's
price, the buyer of an order just created) may take the copy from the snapshot instead, and
then its write must check, in the same statement, that the row is still at the version the
copy has (a compare-and-set): if it moved, the write changes nothing and the use case reads the
row afresh. Versions are kept by the database itself (triggers add one on every update, see
`shequn.migrations.triggers`), so no writer can forget to move them; rows that never change
(a commission plan once written) are refused any update by the database.

One `Snapshot` is made per process (the API's application state) and handed to every use case
through its context; each kind of copy is a bounded map that forgets the entry put longest ago.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_SIZE = 20_000


class Recent(Generic[K, V]):
    """At most `size` values; the one put longest ago is forgotten first. Thread-safe."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: dict[K, V] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._items.get(key)

    def take(self, key: K) -> V | None:
        """The value, forgotten."""
        with self._lock:
            return self._items.pop(key, None)

    def put(self, key: K, value: V, *, unless: Callable[[V, V], bool] | None = None) -> None:
        """Keep `value`, unless `unless(held, value)` says the one held is to stay (a copy
        read late must not replace a newer one)."""
        if self._size <= 0:
            return
        with self._lock:
            held = self._items.pop(key, None)
            if held is not None and unless is not None and unless(held, value):
                self._items[key] = held
                return
            if len(self._items) >= self._size:
                del self._items[next(iter(self._items))]
            self._items[key] = value

    def forget(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class Snapshot:
    """Named maps of copies, one per kind of row (`kind("settings")`)."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._size = size
        self._kinds: dict[str, Recent[Any, Any]] = {}
        self._lock = threading.Lock()

    def kind(self, name: str) -> Recent[Any, Any]:
        found = self._kinds.get(name)
        if found is None:
            with self._lock:
                found = self._kinds.setdefault(name, Recent(self._size))
        return found

    def clear(self) -> None:
        """Forget every copy (nothing is lost: each is read again when next needed)."""
        with self._lock:
            kinds = list(self._kinds.values())
        for recent in kinds:
            recent.clear()
