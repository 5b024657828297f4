"""The Redis client's in-memory fallback: a bounded LRU of keys with TTLs, and the
journal of writes Redis has not seen yet.

Standard library only; keys, fields and values are the bytes redis-py would send.

Invariants (all under ``_lock``):

* At most ``maxsize`` entries (values, hashes and tombstones). Adding one more
  evicts the least recently used entry.
* ``_pending`` (the journal) holds only keys that have an entry: evicting a
  journaled key drops its write and counts it in ``dropped``. So the journal is
  bounded by ``maxsize`` too.
* Time is read from the injected clock; an entry past its ``expires_at`` reads
  as absent (and is written back as a delete).
* An entry's replay is built from its state at flush time, not from a log of
  operations: writing a key five times while Redis is down sends one command.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from typing import Final, NamedTuple

from buttress._core import forksafe
from buttress._core.clock import Clock

__all__ = ["LocalStore", "Replay", "WrongTypeError"]

logger: Final = logging.getLogger("buttress.stores.redis")

Hash = dict[bytes, bytes]


class WrongTypeError(Exception):
    """A string command on a hash or the reverse (Redis's ``WRONGTYPE``)."""


class Replay(NamedTuple):
    """One key's write-back: ``kind`` is ``"delete"``, ``"set"`` (``value`` bytes),
    ``"hash"`` (``value`` replaces the whole key) or ``"merge"`` (``value``'s fields
    are set, others left alone); ``ttl_ms`` is the remaining time to live, if any."""

    kind: str
    key: bytes
    value: bytes | Hash | None
    ttl_ms: int | None


class _Entry:
    """A value (bytes), a hash (dict), or a tombstone (``None``: deleted locally)."""

    __slots__ = ("expires_at", "value", "whole")

    def __init__(self, value: bytes | Hash | None, expires_at: float | None,
                 whole: bool = True) -> None:
        self.value = value
        self.expires_at = expires_at
        # False for a hash known only in part: the fields written here, on top of
        # whatever Redis holds for the key.
        self.whole = whole


class LocalStore:
    """Bounded key-value store with TTLs on the injected clock, plus the journal.

    ``pending=True`` on a write journals it: Redis did not get it and should on
    recovery. ``pending=False`` mirrors a write Redis already has.
    """

    def __init__(self, maxsize: int, clock: Clock) -> None:
        self.maxsize = maxsize
        self.clock = clock
        self.dropped = 0
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._pending: dict[bytes, None] = {}
        self._flushing = 0
        self._lock = forksafe.lock()

    # reading

    def _live_locked(self, key: bytes) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at is not None and self.clock.monotonic() >= entry.expires_at:
            if key in self._pending:  # keep it: it replays as a delete
                return None
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry if entry.value is not None else None

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or None (absent, expired or deleted)."""
        with self._lock:
            entry = self._live_locked(key)
            if entry is None:
                return None
            if isinstance(entry.value, dict):
                raise WrongTypeError(key)
            return entry.value

    def hget(self, key: bytes, field: bytes) -> bytes | None:
        """Field ``field`` of the hash at ``key``, or None."""
        with self._lock:
            entry = self._live_locked(key)
            if entry is None:
                return None
            if not isinstance(entry.value, dict):
                raise WrongTypeError(key)
            return entry.value.get(field)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def pending(self) -> int:
        """Writes waiting for Redis (including those being written back now)."""
        return len(self._pending) + self._flushing

    # writing

    def _put_locked(self, key: bytes, entry: _Entry, pending: bool) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        if pending:
            self._pending[key] = None
        while len(self._entries) > self.maxsize:
            old, _ = self._entries.popitem(last=False)
            if old in self._pending:
                del self._pending[old]
                self.dropped += 1
                logger.warning("redis fallback full (%d keys): dropped the write of %r that "
                               "Redis has not seen", self.maxsize, old)

    def set(self, key: bytes, value: bytes, ttl: float | None, *, pending: bool) -> None:
        """Store ``value`` for ``ttl`` seconds (None: until evicted)."""
        expires = None if ttl is None else self.clock.monotonic() + ttl
        with self._lock:
            self._put_locked(key, _Entry(value, expires), pending)

    def delete(self, keys: tuple[bytes, ...], *, pending: bool) -> int:
        """Delete ``keys``; the number that existed here. Journaled deletes leave
        a tombstone, so the delete reaches Redis."""
        with self._lock:
            found = 0
            for key in keys:
                found += self._live_locked(key) is not None
                if pending:
                    self._put_locked(key, _Entry(None, None), True)
                else:
                    self._entries.pop(key, None)
                    self._pending.pop(key, None)
            return found

    def hset(self, key: bytes, mapping: Hash, *, pending: bool) -> int:
        """Set fields of the hash at ``key``; the number of new fields."""
        with self._lock:
            entry = self._entries.get(key)
            live = self._live_locked(key)
            if live is None:
                # Deleted here (a tombstone, or expired while journaled): the hash
                # is exactly these fields. Never seen: these fields on top of Redis's.
                whole = entry is not None and key in self._pending
                live = _Entry({}, None, whole=whole)
            elif not isinstance(live.value, dict):
                raise WrongTypeError(key)
            fields = live.value
            assert isinstance(fields, dict)
            added = sum(1 for field in mapping if field not in fields)
            fields.update(mapping)
            self._put_locked(key, live, pending)
            return added

    # the journal

    def take_pending(self) -> list[Replay] | None:
        """The journaled writes as replays, taken out of the journal; None when
        another flush is running (its caller treats Redis as not yet back)."""
        with self._lock:
            if self._flushing:
                return None
            now = self.clock.monotonic()
            replays = [self._replay_locked(key, now) for key in self._pending]
            self._pending.clear()
            self._flushing = len(replays)
            return replays

    def _replay_locked(self, key: bytes, now: float) -> Replay:
        entry = self._entries[key]
        ttl_ms = None
        if entry.expires_at is not None:
            ttl_ms = math.ceil((entry.expires_at - now) * 1000.0)
            if ttl_ms <= 0:
                return Replay("delete", key, None, None)
        if entry.value is None:
            return Replay("delete", key, None, None)
        if isinstance(entry.value, dict):
            return Replay("hash" if entry.whole else "merge", key, dict(entry.value), ttl_ms)
        return Replay("set", key, entry.value, ttl_ms)

    def finish_flush(self, failed: list[Replay]) -> None:
        """End a flush; ``failed`` replays go back into the journal (their keys'
        current state is what a later flush sends)."""
        with self._lock:
            self._flushing = 0
            for replay in failed:
                if replay.key in self._entries:
                    self._pending[replay.key] = None
                else:
                    self.dropped += 1

    def clear(self) -> None:
        """Forget every entry and journaled write."""
        with self._lock:
            self._entries.clear()
            self._pending.clear()
