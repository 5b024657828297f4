"""One client per key, shared by the callers that ask with default options.

The seeds' ``get_http_client()``, ``get_database_client()``,
``get_redis_client()`` and ``get_s3_client()`` are called per request; each
must hand back the same client (and so the same connection pool and breaker)
for the same target. :class:`SharedClients` keeps the ``limit`` most recently
used; an older one is forgotten here but stays with whoever holds it, so a
service that talks to many distinct targets can not grow this without bound.
The factory runs outside the lock (building a client can take milliseconds);
when two callers race, both get the one stored first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from buttress._core import forksafe

__all__ = ["SharedClients"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SharedClients(Generic[K, V]):
    """A bounded, thread- and fork-safe map from a key to its shared client."""

    __slots__ = ("_items", "_lock", "limit")

    def __init__(self, limit: int = 32) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit!r}")
        self.limit = limit
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = forksafe.lock()

    def get(self, key: K, make: Callable[[], V]) -> V:
        """The client for ``key``, made by ``make()`` the first time."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        made = make()
        with self._lock:
            client = self._items.setdefault(key, made)
            self._items.move_to_end(key)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
        return client

    def clear(self) -> list[V]:
        """Forget every client; return them (for the caller to close)."""
        with self._lock:
            clients = list(self._items.values())
            self._items.clear()
        return clients

    def __len__(self) -> int:
        return len(self._items)
