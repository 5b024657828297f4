"""The Redis client under real faults: redis-server stopped and restarted on the
same port, frozen with SIGSTOP, and cut by the TCP fault proxy. Checked: the
fallback answers, the breaker opens and then fails fast (no connection made),
writes made meanwhile are written back on recovery, and what is lost is counted.

Breaker and backoff time is virtual; only socket timeouts (SIGSTOP, blackhole)
take wall time, bounded by ``socket_timeout``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from buttress.fault_proxy import FaultProxy
from buttress.stores.redis_client import RedisClient, get_redis_client
from buttress.testing import VirtualClock
from servers.redis import RedisServer

RECOVERY = 15.0


@pytest.fixture(params=["sync", "async"])
def face(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def do(client: RedisClient, face: str, method: str, *args: Any, **kwargs: Any) -> Any:
    if face == "sync":
        return getattr(client.sync, method)(*args, **kwargs)
    return await getattr(client, method)(*args, **kwargs)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def proxy(redis_server: RedisServer, redis_url: str) -> Iterator[FaultProxy]:
    """The fault proxy in front of the session's redis-server."""
    with FaultProxy("127.0.0.1", redis_server.port) as made:
        yield made


@pytest.fixture
def raw(redis_server: RedisServer, redis_url: str) -> Iterator[redis.Redis]:
    """A plain client straight to the server (not through the proxy)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=2.0)
    yield client
    client.close()


def through(proxy: FaultProxy, clock: VirtualClock, **options: Any) -> RedisClient:
    options.setdefault("socket_timeout", 0.25)
    return get_redis_client(f"redis://127.0.0.1:{proxy.port}/0", clock=clock, jitter=False,
                            **options)


async def test_stopped_server_fallback_serves_breaker_fails_fast_and_writes_come_back(
        redis_server: RedisServer, proxy: FaultProxy, clock: VirtualClock, face: str) -> None:
    client = through(proxy, clock)
    await do(client, face, "set", "before", "1")
    redis_server.stop()

    # Each attempt is one breaker call: the get fails twice, the set's first
    # attempt is the third failure and opens the breaker.
    assert await do(client, face, "get", "before") == "1"  # mirrored when written
    assert client.breaker.stats.failed_calls == 2
    await do(client, face, "set", "during", "2", ttl=60)
    assert client.breaker.state.value == "open"
    assert client.breaker.stats.failed_calls == 3
    accepted = proxy.connections_accepted

    # Open: answered at once from memory, no connection attempted.
    await do(client, face, "hset", "user:1", "name", "John")
    assert await do(client, face, "get", "during") == "2"
    assert await do(client, face, "hget", "user:1", "name") == "John"
    assert await do(client, face, "delete", "before") == 1
    assert proxy.connections_accepted == accepted
    health = await do(client, face, "health_check")
    assert (health["status"], health["backend"], health["circuit_breaker"]) == (
        "degraded", "memory", "open")
    assert health["fallback"]["pending_writes"] == 3

    redis_server.start()  # same port, empty (no persistence)
    clock.advance(RECOVERY)
    assert await do(client, face, "get", "during") == "2"  # now from Redis
    assert client.breaker.state.value == "closed"
    direct = redis.Redis(port=redis_server.port, decode_responses=True)
    assert direct.get("during") == "2"
    # 60 s TTL, 15 s (virtual) spent down: the remaining 45 s went along
    assert 44_000 < direct.pttl("during") <= 45_000
    assert direct.hgetall("user:1") == {"name": "John"}
    assert direct.exists("before") == 0
    direct.close()
    assert (await do(client, face, "health_check"))["status"] == "healthy"
    client.close()


async def test_sigstop_is_bounded_by_the_socket_timeout_then_served_from_memory(
        redis_server: RedisServer, proxy: FaultProxy, clock: VirtualClock, face: str,
        raw: redis.Redis) -> None:
    client = through(proxy, clock, socket_timeout=0.25)
    await do(client, face, "set", "k", "v")
    redis_server.pause()
    try:
        started = time.monotonic()
        assert await do(client, face, "get", "k") == "v"
        elapsed = time.monotonic() - started
        assert 0.45 < elapsed < 1.5  # two attempts of 0.25 s each, no more
        await do(client, face, "set", "k", "w")
        await do(client, face, "set", "k", "x")
        assert client.breaker.state.value == "open"
        started = time.monotonic()
        assert await do(client, face, "get", "k") == "x"
        assert time.monotonic() - started < 0.05  # fails fast: no socket wait
    finally:
        redis_server.resume()
    clock.advance(RECOVERY)
    assert (await do(client, face, "health_check"))["status"] == "healthy"
    assert raw.get("k") == "x"  # the latest write, written back
    client.close()


async def test_a_blackholed_connection_times_out_and_the_fallback_answers(
        proxy: FaultProxy, clock: VirtualClock, face: str, raw: redis.Redis) -> None:
    client = through(proxy, clock, socket_timeout=0.2, failure_threshold=1)
    await do(client, face, "set", "k", "v")
    proxy.blackhole()
    started = time.monotonic()
    await do(client, face, "set", "k", "during")
    assert time.monotonic() - started < 1.0
    assert client.breaker.state.value == "open"
    proxy.restore()
    clock.advance(RECOVERY)
    assert await do(client, face, "get", "k") == "during"
    assert raw.get("k") == "during"
    client.close()


async def test_a_probe_that_fails_reopens_the_breaker_and_keeps_the_writes(
        proxy: FaultProxy, clock: VirtualClock, face: str, raw: redis.Redis) -> None:
    client = through(proxy, clock, failure_threshold=1)
    proxy.refuse()
    await do(client, face, "set", "k", "v")
    clock.advance(RECOVERY)
    accepted = proxy.connections_accepted
    assert await do(client, face, "get", "k") == "v"  # the probe (the write-back) fails
    assert client.breaker.state.value == "open"
    assert (await do(client, face, "health_check"))["fallback"]["pending_writes"] == 1
    assert proxy.connections_accepted == accepted  # refused: never accepted
    proxy.restore()
    clock.advance(RECOVERY)
    assert await do(client, face, "get", "k") == "v"
    assert raw.get("k") == "v"
    client.close()


async def test_the_write_back_wins_over_a_change_made_in_redis_meanwhile(
        proxy: FaultProxy, clock: VirtualClock, face: str, raw: redis.Redis) -> None:
    client = through(proxy, clock, failure_threshold=1)
    await do(client, face, "set", "k", "1")
    raw.set("gone", "x")
    proxy.reset()
    await do(client, face, "set", "k", "2")
    await do(client, face, "delete", "gone")
    raw.set("k", "3")  # another writer, straight to Redis, during our outage
    proxy.restore()
    clock.advance(RECOVERY)
    assert await do(client, face, "get", "k") == "2"  # last writer (us, at recovery) wins
    assert raw.get("k") == "2"
    assert raw.exists("gone") == 0
    client.close()


async def test_writes_evicted_from_the_full_fallback_are_lost_and_counted(
        proxy: FaultProxy, clock: VirtualClock, face: str, raw: redis.Redis) -> None:
    client = through(proxy, clock, failure_threshold=1, fallback_max_keys=2)
    proxy.refuse()
    for key in ("a", "b", "c"):
        await do(client, face, "set", key, key.upper())
    health = await do(client, face, "health_check")
    assert health["fallback"] == {"keys": 2, "max_keys": 2, "pending_writes": 2,
                                  "dropped_writes": 1}
    assert await do(client, face, "get", "a") is None
    proxy.restore()
    clock.advance(RECOVERY)
    assert (await do(client, face, "health_check"))["status"] == "healthy"
    assert (raw.get("a"), raw.get("b"), raw.get("c")) == (None, "B", "C")
    client.close()


async def test_a_ttl_that_ran_out_during_the_outage_deletes_the_key_on_recovery(
        proxy: FaultProxy, clock: VirtualClock, face: str, raw: redis.Redis) -> None:
    client = through(proxy, clock, failure_threshold=1)
    await do(client, face, "set", "k", "old")
    proxy.reset()
    await do(client, face, "set", "k", "new", ttl=5)
    clock.advance(RECOVERY)  # longer than the ttl
    assert await do(client, face, "get", "k") is None  # still down: expired in memory
    proxy.restore()
    clock.advance(RECOVERY)
    assert await do(client, face, "get", "k") is None
    assert raw.exists("k") == 0  # not the stale "old"
    client.close()


def test_an_outage_logs_one_warning_and_one_recovery_not_one_per_call(
        proxy: FaultProxy, clock: VirtualClock, caplog: pytest.LogCaptureFixture) -> None:
    client = through(proxy, clock, failure_threshold=1)
    proxy.refuse()
    with caplog.at_level("INFO", logger="buttress.stores.redis"):
        for n in range(5):
            client.sync.set(f"k{n}", "v")
        proxy.restore()
        clock.advance(RECOVERY)
        assert client.sync.get("k4") == "v"
    messages = [r.getMessage() for r in caplog.records if r.name == "buttress.stores.redis"]
    assert [m.split(" (")[0] for m in messages] == [
        f"redis {client.name} unreachable",
        f"redis {client.name}: wrote back 5 key(s) written while it was unreachable",
        f"redis {client.name} answers again",
    ]
    client.close()


async def test_a_hash_deleted_and_rewritten_meanwhile_replaces_the_one_in_redis(
        proxy: FaultProxy, clock: VirtualClock, face: str, raw: redis.Redis) -> None:
    client = through(proxy, clock, failure_threshold=1)
    raw.hset("user:1", mapping={"name": "Ann", "plan": "free"})
    raw.hset("user:2", mapping={"name": "Bob", "plan": "free"})
    proxy.refuse()
    await do(client, face, "delete", "user:1")
    await do(client, face, "hset", "user:1", "name", "Cy")    # a new hash: exactly this
    await do(client, face, "hset", "user:2", "plan", "pro")   # a field on top of Redis's
    assert await do(client, face, "hget", "user:2", "name") is None  # unknown here
    proxy.restore()
    clock.advance(RECOVERY)
    assert await do(client, face, "hget", "user:2", "name") == "Bob"
    assert raw.hgetall("user:1") == {"name": "Cy"}
    assert raw.hgetall("user:2") == {"name": "Bob", "plan": "pro"}
    client.close()


async def test_concurrent_tasks_during_an_outage_lose_no_write(
        proxy: FaultProxy, clock: VirtualClock, raw: redis.Redis) -> None:
    client = through(proxy, clock, failure_threshold=1)
    proxy.refuse()
    await asyncio.gather(*(client.set(f"k{n}", str(n)) for n in range(50)))
    assert (await client.health_check())["fallback"]["pending_writes"] == 50
    proxy.restore()
    clock.advance(RECOVERY)
    # 50 tasks find Redis back at once: one writes the journal back, the others
    # are answered from memory meanwhile; every value is right either way.
    values = await asyncio.gather(*(client.get(f"k{n}") for n in range(50)))
    assert values == [str(n) for n in range(50)]
    assert (await client.health_check())["status"] == "healthy"
    assert raw.mget([f"k{n}" for n in range(50)]) == [str(n) for n in range(50)]
    await client.aclose()


def test_concurrent_threads_during_an_outage_lose_no_write(
        proxy: FaultProxy, clock: VirtualClock, raw: redis.Redis) -> None:
    client = through(proxy, clock, failure_threshold=1)
    proxy.refuse()

    def write(n: int) -> None:
        for m in range(20):
            client.sync.set(f"t{n}:{m}", str(m))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(8)))
    proxy.restore()
    clock.advance(RECOVERY)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: client.sync.get(f"t{n}:0"), range(8)))
    assert client.sync.health_check()["status"] == "healthy"
    keys = [f"t{n}:{m}" for n in range(8) for m in range(20)]
    assert raw.mget(keys) == [str(m) for n in range(8) for m in range(20)]
    client.close()


def test_a_wrong_password_is_raised_not_hidden_by_the_fallback(clock: VirtualClock) -> None:
    with RedisServer(None, "--requirepass", "right") as secured:
        url = f"redis://:wrong@127.0.0.1:{secured.port}/0"
        client = get_redis_client(url, clock=clock, failure_threshold=1)
        for _ in range(3):
            with pytest.raises(redis.AuthenticationError):
                client.sync.get("k")
        assert client.breaker.state.value == "closed"  # not an outage: ignored
        health = client.sync.health_check()
        assert health["status"] == "unhealthy"
        assert "wrong" not in repr(health)
        client.close()


def test_without_any_server_the_client_still_answers_from_memory(clock: VirtualClock) -> None:
    with FaultProxy("127.0.0.1", 9) as proxy:  # nothing behind it
        proxy.refuse()
        client = through(proxy, clock)
        assert client.sync.set("k", "v", ttl=60) is True
        assert client.sync.get("k") == "v"
        clock.advance(61)
        assert client.sync.get("k") is None
        assert client.sync.health_check()["status"] == "degraded"
