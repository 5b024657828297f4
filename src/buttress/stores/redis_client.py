"""Redis that keeps answering when Redis does not: a retry, a circuit breaker and
an in-memory fallback around redis-py, sync and async.

::

    from buttress import get_redis_client

    client = get_redis_client("redis://127.0.0.1:6379/0")
    await client.set("user:1", "John", ttl=3600)     # async, as the S1 seed writes it
    await client.get("user:1")                       # 'John'
    client.sync.get("user:1")                        # the same, from sync code

What happens when Redis is unreachable (refused, reset, timed out):

* each command is tried ``max_attempts`` times in all (transient errors only;
  ``WRONGTYPE`` and other answers from Redis are raised at once, never retried);
  then it is answered by the **fallback**, a bounded in-memory LRU of at most
  ``fallback_max_keys`` keys with TTLs read on the injected clock. Reads see the
  writes this client made (while Redis was up, too: every successful write is
  mirrored there), writes land there, and ``health_check()`` reports
  ``"degraded"``;
* after ``failure_threshold`` failed attempts (each attempt is one breaker call)
  the breaker opens: commands go straight to the fallback, without touching the
  network, for ``recovery_timeout`` seconds; then one command probes Redis;
* **values written meanwhile are written back** when Redis answers again, before
  the command that found it back reaches Redis: one ``MULTI``/``EXEC`` with each
  key's latest state (its value and remaining TTL, the hash fields written, or a
  delete). The write-back wins over whatever Redis holds for those keys (last
  writer wins, as if the writes had happened at recovery). A write is **lost** only
  when the fallback evicts its key before Redis returns (LRU, counted in
  ``health_check()["fallback"]["dropped_writes"]`` and logged), when Redis refuses
  the write-back (``WRONGTYPE``, counted and logged the same way), or when the
  process ends first.

redis-py's own retry is switched off (``Retry(NoBackoff(), 0)``, no retry on
timeout, no health-check pings), so each of buttress's attempts is exactly one
command on the wire. A sync method runs in the caller's thread; an async method
on redis-py's asyncio client of the running event loop.

.. versionadded:: 0.2
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry as RedisRetry

from buttress._core import validate
from buttress._core.clock import SYSTEM_CLOCK, Clock
from buttress._core.errors import CircuitBreakerError
from buttress._core.logs import describe, redact
from buttress._core.shared import SharedClients
from buttress.breaker import CircuitBreaker
from buttress.pipeline import Pipeline
from buttress.retry import Retry, RetryConfig
from buttress.stores._local import LocalStore, Replay, WrongTypeError
from buttress.transient import is_transient

__all__ = ["RedisClient", "SyncRedisClient", "get_redis_client"]

_T = TypeVar("_T")
_Encoder: Any = redis.connection.Encoder  # type: ignore[attr-defined]
DEFAULT_URL: Final = "redis://localhost:6379/0"
logger: Final = logging.getLogger("buttress.stores.redis")

KeyT = str | bytes
ValueT = str | bytes | int | float


def _unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means "Redis is not there" (answer from the fallback), as
    opposed to an answer from Redis (raise it)."""
    return isinstance(exc, CircuitBreakerError) or is_transient(exc)


class NotWrittenBack(ConnectionError):
    """Why the writes made while Redis was down were not written back on this call
    (so Redis still counts as down for it). Internal: never raised to callers."""


_FLUSHING: Final = NotWrittenBack(
    "another call is writing back the writes made while Redis was down")
_OPEN: Final = NotWrittenBack(
    "the circuit breaker is open: Redis is not tried before its recovery timeout ends")


def _wrong_type(key: bytes) -> redis.ResponseError:
    return redis.ResponseError(
        f"WRONGTYPE Operation against a key holding the wrong kind of value ({key!r})")


def _ttl_ms(ttl: float | None) -> int | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl > 0:
        raise redis.DataError(f"ttl must be a positive number of seconds or None, got {ttl!r}")
    return max(1, round(ttl * 1000.0))


def _queue(pipe: Any, replays: list[Replay]) -> None:
    """Queue each replay's commands on a (sync or async) redis-py pipeline."""
    for replay in replays:
        key = replay.key
        if replay.kind == "delete":
            pipe.delete(key)
        elif replay.kind == "set":
            pipe.set(key, replay.value, px=replay.ttl_ms)
        else:
            if replay.kind == "hash":
                pipe.delete(key)
            pipe.hset(key, mapping=replay.value)
            if replay.ttl_ms is not None:
                pipe.pexpire(key, replay.ttl_ms)


class _Core:
    """What the sync and async faces share: the breaker, the retry, the fallback,
    the journal and the redis-py clients. Decisions live here; the faces only run
    them."""

    def __init__(self, url: str, *, name: str | None, max_attempts: int, base_delay: float,
                 max_delay: float, jitter: bool | float, failure_threshold: int,
                 recovery_timeout: float, socket_timeout: float, fallback_max_keys: int,
                 decode_responses: bool, clock: Clock | None,
                 redis_options: dict[str, Any]) -> None:
        o = "get_redis_client"
        self.url = validate.text(o, "url", url)
        validate.integer(o, "max_attempts", max_attempts, minimum=1)
        validate.integer(o, "failure_threshold", failure_threshold, minimum=1)
        validate.number(o, "recovery_timeout", recovery_timeout, minimum=0.0)
        self.socket_timeout = validate.number(o, "socket_timeout", socket_timeout,
                                              minimum=0.0, strict_minimum=True)
        maxsize = validate.integer(o, "fallback_max_keys", fallback_max_keys, minimum=1)
        validate.boolean(o, "decode_responses", decode_responses)
        self.clock = SYSTEM_CLOCK if clock is None else clock
        self.name = redact(url) if name is None else validate.text(o, "name", name)
        self.breaker = CircuitBreaker(
            self.name, failure_threshold=failure_threshold, recovery_timeout=recovery_timeout,
            failure_exceptions=(redis.ConnectionError, redis.TimeoutError, ConnectionError,
                                TimeoutError),
            # A wrong password is not an outage: raise it on every call, loudly.
            ignored_exceptions=(redis.AuthenticationError,), clock=self.clock)
        self.retry_config = RetryConfig(
            max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay,
            jitter=jitter, retry_condition=is_transient, reraise=True, name=self.name)
        self.protect = Pipeline(Retry(self.retry_config, clock=self.clock), self.breaker)
        self.local = LocalStore(maxsize, self.clock)
        # redis-py's own value encoding, so the fallback stores and returns exactly
        # what Redis would (and refuses what redis-py refuses: dicts, bools, None).
        self.encoder: Any = _Encoder("utf-8", "strict", decode_responses)
        self.options: dict[str, Any] = {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_timeout,
            # Ours is the one retry layer: redis-py sends each command once.
            "retry": RedisRetry(NoBackoff(), 0),
            "retry_on_timeout": False,
            "retry_on_error": [],
            "health_check_interval": 0,
            "decode_responses": decode_responses,
            **redis_options,
        }
        self.write_back_failed = 0
        self._lock = threading.Lock()
        self._sync: redis.Redis | None = None
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] \
            = weakref.WeakKeyDictionary()
        self.last_error: str | None = None

    # the redis-py clients

    def sync_client(self) -> redis.Redis:
        client = self._sync
        if client is None:
            with self._lock:
                if self._sync is None:
                    self._sync = redis.Redis.from_url(self.url, **self.options)
                client = self._sync
        return client

    def async_client(self) -> redis.asyncio.Redis:
        # redis-py's asyncio connections belong to the loop that made them.
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async.get(loop)
            if client is None:
                client = self._async[loop] = redis.asyncio.Redis.from_url(
                    self.url, **self.options)
        return client

    # bookkeeping shared by both faces

    def key(self, key: KeyT) -> bytes:
        encoded = self.encoder.encode(key)
        return bytes(encoded)

    def value(self, value: ValueT) -> bytes:
        return bytes(self.encoder.encode(value))

    def decode(self, raw: bytes | None) -> Any:
        return None if raw is None else self.encoder.decode(raw)

    def went_down(self, exc: BaseException) -> None:
        # One warning per outage, not one per call answered from memory.
        if self.last_error is None:
            logger.warning("redis %s unreachable (%s): answering from the in-memory fallback",
                           self.name, describe(exc))
        self.last_error = describe(exc)

    def came_back(self) -> None:
        if self.last_error is not None:
            self.last_error = None
            logger.info("redis %s answers again", self.name)

    def flushed(self, replays: list[Replay], results: list[Any]) -> None:
        refused = [(error, replay) for error, replay
                   in zip(_results_by_replay(replays, results), replays, strict=True)
                   if error is not None]
        for error, replay in refused:
            self.write_back_failed += 1
            logger.warning("redis %s refused the write-back of %r: %s", self.name, replay.key,
                           describe(error))
        self.local.finish_flush([])
        if replays:
            logger.info("redis %s: wrote back %d key(s) written while it was unreachable",
                        self.name, len(replays) - len(refused))
        self.came_back()

    def health(self, ok: bool, error: BaseException | None, latency: float | None) -> dict[
            str, Any]:
        pending = self.local.pending
        if error is not None and not _unreachable(error):
            status = "unhealthy"  # Redis answered, but not as it should (a wrong password)
        elif ok and not pending:
            status = "healthy"
        else:
            status = "degraded"
        return {
            "status": status,
            "backend": "redis" if ok else "memory",
            "url": redact(self.url),
            "circuit_breaker": self.breaker.state.value,
            "latency_ms": None if latency is None else round(latency * 1000.0, 3),
            "error": None if error is None else describe(error),
            "fallback": {
                "keys": len(self.local),
                "max_keys": self.local.maxsize,
                "pending_writes": pending,
                "dropped_writes": self.local.dropped + self.write_back_failed,
            },
        }


def _results_by_replay(replays: list[Replay], results: list[Any]) -> list[BaseException | None]:
    """The first error among each replay's pipeline results (None: all went through)."""
    errors: list[BaseException | None] = []
    position = 0
    for replay in replays:
        count = 1
        if replay.kind in ("hash", "merge"):
            count = (2 if replay.kind == "hash" else 1) + (replay.ttl_ms is not None)
        chunk = results[position:position + count]
        position += count
        errors.append(next((r for r in chunk if isinstance(r, BaseException)), None))
    return errors


class SyncRedisClient:
    """The sync face of a :class:`RedisClient` (``client.sync``): the same methods,
    plain calls, run in the caller's thread; the same breaker, fallback and journal.
    """

    def __init__(self, core: _Core) -> None:
        self._core = core

    def _run(self, command: Callable[[redis.Redis], _T], local: Callable[[], _T]) -> _T:
        core = self._core
        if core.local.pending and self._flush() is not None:
            return local()
        try:
            result: _T = core.protect.call(command, core.sync_client())
        except Exception as exc:
            if not _unreachable(exc):
                raise
            core.went_down(exc)
            return local()
        if core.last_error is not None:
            core.came_back()
        return result

    def _flush(self) -> Exception | None:
        """Write back the journal: None once Redis took it, else why not (Redis
        still down, or another flush under way)."""
        core = self._core
        if core.breaker.is_open:  # not even the journal's replays are built
            return _OPEN
        replays = core.local.take_pending()
        if replays is None:
            return _FLUSHING

        def write_back(client: redis.Redis) -> list[Any]:
            pipe = client.pipeline(transaction=True)
            _queue(pipe, replays)
            return list(pipe.execute(raise_on_error=False))

        try:
            results = core.protect.call(write_back, core.sync_client())
        except BaseException as exc:
            core.local.finish_flush(replays)
            if isinstance(exc, Exception) and _unreachable(exc):
                return exc
            raise
        core.flushed(replays, results)
        return None

    def get(self, key: KeyT) -> Any:
        """The value at ``key`` (str with ``decode_responses``, else bytes), or None."""
        core = self._core
        k = core.key(key)
        return self._run(lambda r: r.get(k), lambda: _local(core, core.local.get, k))

    def set(self, key: KeyT, value: ValueT, ttl: float | None = None) -> bool:
        """Store ``value`` at ``key``, expiring after ``ttl`` seconds (None: never)."""
        core = self._core
        k, v, px = core.key(key), core.value(value), _ttl_ms(ttl)

        def remote(r: redis.Redis) -> bool:
            r.set(k, v, px=px)
            core.local.set(k, v, ttl, pending=False)
            return True

        def local() -> bool:
            core.local.set(k, v, ttl, pending=True)
            return True

        return self._run(remote, local)

    def delete(self, *keys: KeyT) -> int:
        """Delete ``keys``; how many existed."""
        core = self._core
        ks = tuple(core.key(key) for key in keys)

        def remote(r: redis.Redis) -> int:
            count = int(r.delete(*ks))
            core.local.delete(ks, pending=False)
            return count

        return self._run(remote, lambda: core.local.delete(ks, pending=True))

    def hget(self, key: KeyT, field: KeyT) -> Any:
        """Field ``field`` of the hash at ``key``, or None."""
        core = self._core
        k, f = core.key(key), core.key(field)
        return self._run(lambda r: r.hget(k, f),
                         lambda: _local(core, lambda: core.local.hget(k, f)))

    def hset(self, key: KeyT, field: KeyT | None = None, value: ValueT | None = None, *,
             mapping: dict[Any, Any] | None = None) -> int:
        """Set ``field`` (and/or every field of ``mapping``) of the hash at ``key``;
        how many fields were new."""
        core = self._core
        k, fields = core.key(key), _fields(core, field, value, mapping)

        def remote(r: redis.Redis) -> int:
            added = int(r.hset(k, mapping=fields))  # type: ignore[arg-type]
            _local_write(core, lambda: core.local.hset(k, fields, pending=False))
            return added

        return self._run(remote, lambda: int(_local(core, lambda: core.local.hset(
            k, fields, pending=True))))

    def health_check(self) -> dict[str, Any]:
        """Ping Redis through the breaker (no retry): ``status`` is ``"healthy"``,
        ``"degraded"`` (served from the fallback, or writes still to write back) or
        ``"unhealthy"`` (Redis refused us: a wrong password, say), with the breaker
        state, the ping's latency and the fallback's counts."""
        core = self._core
        start = core.clock.monotonic()
        try:
            down = self._flush() if core.local.pending else None
            if down is not None and down is not _OPEN:
                return core.health(False, down, None)
            # An open breaker rejects the ping, with its own message.
            core.breaker.call(core.sync_client().ping)
        except Exception as exc:
            return core.health(False, exc, None)
        return core.health(True, None, core.clock.monotonic() - start)

    def close(self) -> None:
        """Close the sync connection pool (the client reconnects if used again)."""
        client, self._core._sync = self._core._sync, None
        if client is not None:
            client.close()


def _local(core: _Core, read: Callable[..., _T], *args: Any) -> Any:
    """Run a fallback read or write, mapping its type error to redis-py's."""
    try:
        result = read(*args)
    except WrongTypeError as exc:
        raise _wrong_type(exc.args[0]) from None
    return core.decode(result) if isinstance(result, bytes) else result


def _local_write(core: _Core, write: Callable[[], object]) -> None:
    """Mirror a write Redis accepted; a type clash only drops the stale local copy."""
    try:
        write()
    except WrongTypeError as exc:
        core.local.delete((exc.args[0],), pending=False)
        write()


def _fields(core: _Core, field: KeyT | None, value: ValueT | None,
            mapping: dict[Any, Any] | None) -> dict[bytes, bytes]:
    fields: dict[bytes, bytes] = {}
    if field is not None:
        if value is None:
            raise redis.DataError("hset needs a value for the field")
        fields[core.key(field)] = core.value(value)
    for name, item in (mapping or {}).items():
        fields[core.key(name)] = core.value(item)
    if not fields:
        raise redis.DataError("'hset' with no key value pairs")
    return fields


class RedisClient:
    """A resilient Redis client: the S1 seed's async methods, and their sync twins
    on :attr:`sync`. See the module docstring for what happens during an outage.

    Build it with :func:`get_redis_client`.
    """

    def __init__(self, core: _Core) -> None:
        self._core = core
        #: The same client for sync code: ``client.sync.get("key")``.
        self.sync = SyncRedisClient(core)

    @property
    def breaker(self) -> CircuitBreaker:
        """The circuit breaker guarding this Redis server (named after its URL,
        without credentials)."""
        return self._core.breaker

    @property
    def name(self) -> str:
        """The breaker's and the logs' name for this server."""
        return self._core.name

    async def _run(self, command: Callable[[redis.asyncio.Redis], Awaitable[_T]],
                   local: Callable[[], _T]) -> _T:
        core = self._core
        if core.local.pending and await self._flush() is not None:
            return local()
        try:
            result: _T = await core.protect.acall(command, core.async_client())
        except Exception as exc:
            if not _unreachable(exc):
                raise
            core.went_down(exc)
            return local()
        if core.last_error is not None:
            core.came_back()
        return result

    async def _flush(self) -> Exception | None:
        core = self._core
        if core.breaker.is_open:  # not even the journal's replays are built
            return _OPEN
        replays = core.local.take_pending()
        if replays is None:
            return _FLUSHING

        async def write_back(client: redis.asyncio.Redis) -> list[Any]:
            pipe = client.pipeline(transaction=True)
            _queue(pipe, replays)
            return list(await pipe.execute(raise_on_error=False))

        try:
            results = await core.protect.acall(write_back, core.async_client())
        except BaseException as exc:
            core.local.finish_flush(replays)
            if isinstance(exc, Exception) and _unreachable(exc):
                return exc
            raise
        core.flushed(replays, results)
        return None

    async def get(self, key: KeyT) -> Any:
        """The value at ``key`` (str with ``decode_responses``, else bytes), or None."""
        core = self._core
        k = core.key(key)

        async def remote(r: redis.asyncio.Redis) -> Any:
            return await r.get(k)

        return await self._run(remote, lambda: _local(core, core.local.get, k))

    async def set(self, key: KeyT, value: ValueT, ttl: float | None = None) -> bool:
        """Store ``value`` at ``key``, expiring after ``ttl`` seconds (None: never)."""
        core = self._core
        k, v, px = core.key(key), core.value(value), _ttl_ms(ttl)

        async def remote(r: redis.asyncio.Redis) -> bool:
            await r.set(k, v, px=px)
            core.local.set(k, v, ttl, pending=False)
            return True

        def local() -> bool:
            core.local.set(k, v, ttl, pending=True)
            return True

        return await self._run(remote, local)

    async def delete(self, *keys: KeyT) -> int:
        """Delete ``keys``; how many existed."""
        core = self._core
        ks = tuple(core.key(key) for key in keys)

        async def remote(r: redis.asyncio.Redis) -> int:
            count = int(await r.delete(*ks))
            core.local.delete(ks, pending=False)
            return count

        return await self._run(remote, lambda: core.local.delete(ks, pending=True))

    async def hget(self, key: KeyT, field: KeyT) -> Any:
        """Field ``field`` of the hash at ``key``, or None."""
        core = self._core
        k, f = core.key(key), core.key(field)

        async def remote(r: redis.asyncio.Redis) -> Any:
            return await r.hget(k, f)

        return await self._run(remote, lambda: _local(core, lambda: core.local.hget(k, f)))

    async def hset(self, key: KeyT, field: KeyT | None = None, value: ValueT | None = None, *,
                   mapping: dict[Any, Any] | None = None) -> int:
        """Set ``field`` (and/or every field of ``mapping``) of the hash at ``key``;
        how many fields were new."""
        core = self._core
        k, fields = core.key(key), _fields(core, field, value, mapping)

        async def remote(r: redis.asyncio.Redis) -> int:
            added = int(await r.hset(k, mapping=fields))  # type: ignore[arg-type]
            _local_write(core, lambda: core.local.hset(k, fields, pending=False))
            return added

        return await self._run(remote, lambda: int(_local(core, lambda: core.local.hset(
            k, fields, pending=True))))

    async def health_check(self) -> dict[str, Any]:
        """The async twin of :meth:`SyncRedisClient.health_check`."""
        core = self._core
        start = core.clock.monotonic()
        try:
            down = await self._flush() if core.local.pending else None
            if down is not None and down is not _OPEN:
                return core.health(False, down, None)
            await core.breaker.acall(core.async_client().ping)
        except Exception as exc:
            return core.health(False, exc, None)
        return core.health(True, None, core.clock.monotonic() - start)

    async def aclose(self) -> None:
        """Close this event loop's connection pool."""
        with self._core._lock:
            client = self._core._async.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def close(self) -> None:
        """Close the sync connection pool (see :meth:`aclose` for the async one)."""
        self.sync.close()

    def __repr__(self) -> str:
        return f"RedisClient({self.name!r}, breaker={self.breaker.state.value})"


_SHARED: SharedClients[str, RedisClient] = SharedClients(32)


def get_redis_client(
    url: str | None = None,
    *,
    name: str | None = None,
    max_attempts: int = 2,
    base_delay: float = 0.1,
    max_delay: float = 1.0,
    jitter: bool | float = 0.1,
    failure_threshold: int = 3,
    recovery_timeout: float = 15.0,
    socket_timeout: float = 5.0,
    fallback_max_keys: int = 1024,
    decode_responses: bool = True,
    clock: Clock | None = None,
    **redis_options: Any,
) -> RedisClient:
    """A Redis client that retries, trips a breaker and falls back to memory.

    ``url`` defaults to the ``REDIS_URL`` environment variable, else
    ``redis://localhost:6379/0``. The defaults are those of ``cache_resilient``
    (2 attempts, 0.1 s then up to 1 s between them, ``jitter`` a fraction of each
    wait (or False), the breaker opening after 3 failures for 15 s);
    ``socket_timeout`` (seconds) bounds each attempt, connecting included.
    ``fallback_max_keys`` bounds the in-memory fallback. Other keywords go to
    ``redis.Redis.from_url`` (``password=``, ``ssl=``...). ``clock`` (a
    ``VirtualClock`` in tests) drives backoff, the breaker and the fallback's TTLs.

    Called with no keyword, it returns one shared client per URL (the seeds call
    ``get_redis_client()`` per request); with keywords, a new client::

        client = get_redis_client()
        await client.set("key", "value", ttl=3600)
        assert await client.get("key") == "value"    # from memory if Redis is down

    Invalid values raise :class:`~buttress.ConfigurationError` naming the argument.
    """
    if url is None:
        url = os.environ.get("REDIS_URL", DEFAULT_URL)
    shared = (name is None and clock is None and not redis_options
              and (max_attempts, base_delay, max_delay, failure_threshold, recovery_timeout,
                   socket_timeout, fallback_max_keys, decode_responses, jitter)
              == (2, 0.1, 1.0, 3, 15.0, 5.0, 1024, True, 0.1))
    target = url

    def make() -> RedisClient:
        return RedisClient(_Core(
            target, name=name, max_attempts=max_attempts, base_delay=base_delay,
            max_delay=max_delay, jitter=jitter, failure_threshold=failure_threshold,
            recovery_timeout=recovery_timeout, socket_timeout=socket_timeout,
            fallback_max_keys=fallback_max_keys, decode_responses=decode_responses,
            clock=clock, redis_options=redis_options))

    return _SHARED.get(url, make) if shared else make()
