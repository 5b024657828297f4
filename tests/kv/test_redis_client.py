"""The Redis client against a real redis-server: the S1 surface (sync and async,
one case table), what reaches Redis, and its settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from buttress import ConfigurationError
from buttress.fault_proxy import FaultProxy
from buttress.stores.redis_client import RedisClient, get_redis_client
from buttress.testing import VirtualClock


@pytest.fixture(params=["sync", "async"])
def face(request: pytest.FixtureRequest) -> str:
    """Every case runs on the sync methods (``client.sync``) and the async ones."""
    return str(request.param)


async def do(client: RedisClient, face: str, method: str, *args: Any, **kwargs: Any) -> Any:
    if face == "sync":
        return getattr(client.sync, method)(*args, **kwargs)
    return await getattr(client, method)(*args, **kwargs)


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain redis-py client, to see what really is in Redis."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def client(redis_url: str) -> Iterator[RedisClient]:
    made = get_redis_client(redis_url, clock=VirtualClock(), socket_timeout=2.0, jitter=False)
    yield made
    made.close()


async def test_set_get_delete_reach_redis(client: RedisClient, face: str,
                                          raw: redis.Redis) -> None:
    assert await do(client, face, "set", "user:1", "John") is True
    assert raw.get("user:1") == "John"
    assert await do(client, face, "get", "user:1") == "John"
    assert await do(client, face, "delete", "user:1", "nobody") == 1
    assert raw.exists("user:1") == 0
    assert await do(client, face, "get", "user:1") is None


async def test_set_with_ttl_gives_the_key_that_ttl_in_redis(client: RedisClient, face: str,
                                                             raw: redis.Redis) -> None:
    await do(client, face, "set", "session", "abc", ttl=3600)
    assert 3_599_000 < raw.pttl("session") <= 3_600_000


async def test_hset_and_hget_work_on_redis_hashes(client: RedisClient, face: str,
                                                  raw: redis.Redis) -> None:
    assert await do(client, face, "hset", "user:1", "name", "John") == 1
    assert await do(client, face, "hset", "user:1", mapping={"name": "Jo", "age": 7}) == 1
    assert raw.hgetall("user:1") == {"name": "Jo", "age": "7"}
    assert await do(client, face, "hget", "user:1", "name") == "Jo"
    assert await do(client, face, "hget", "user:1", "missing") is None


async def test_an_answer_from_redis_is_raised_not_retried_nor_a_breaker_failure(
        client: RedisClient, face: str, raw: redis.Redis) -> None:
    raw.hset("h", "f", "v")
    for _ in range(5):
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            await do(client, face, "get", "h")
    stats = client.breaker.stats
    assert (stats.state.value, stats.failed_calls, stats.successful_calls) == ("closed", 0, 5)
    health = await do(client, face, "health_check")
    assert health["status"] == "healthy"
    assert health["fallback"]["pending_writes"] == 0


async def test_values_redis_py_refuses_are_refused_before_any_call(
        client: RedisClient, face: str) -> None:
    with pytest.raises(redis.DataError):
        await do(client, face, "set", "k", {"a": 1})
    assert client.breaker.stats.total_calls == 0


@pytest.mark.parametrize("max_attempts", [1, 2, 3])
async def test_each_attempt_is_one_connection_redis_py_does_not_retry_on_its_own(
        redis_url: str, face: str, max_attempts: int) -> None:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    with FaultProxy("127.0.0.1", port) as proxy:
        proxy.reset()  # every connection is reset at once
        clock = VirtualClock()
        client = get_redis_client(f"redis://127.0.0.1:{proxy.port}/0", clock=clock,
                                  max_attempts=max_attempts, failure_threshold=10, jitter=False)
        await do(client, face, "get", "k")
        assert proxy.connections_accepted == max_attempts
        assert clock.sleeps == [0.1, 0.2][:max_attempts - 1]
        client.close()


async def test_health_check_reports_redis_healthy_with_the_breaker_and_fallback(
        client: RedisClient, face: str, redis_url: str) -> None:
    health = await do(client, face, "health_check")
    assert health["status"] == "healthy"
    assert health["backend"] == "redis"
    assert health["url"] == redis_url
    assert health["circuit_breaker"] == "closed"
    assert health["fallback"] == {"keys": 0, "max_keys": 1024, "pending_writes": 0,
                                  "dropped_writes": 0}


def test_credentials_never_reach_the_breaker_name_or_health(redis_url: str) -> None:
    url = redis_url.replace("redis://", "redis://admin:s3cret@")
    client = get_redis_client(url, clock=VirtualClock(), max_attempts=1)
    assert "s3cret" not in client.name
    assert "s3cret" not in repr(client.sync.health_check())


def test_no_keyword_returns_one_shared_client_per_url(
        monkeypatch: pytest.MonkeyPatch, redis_url: str) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert get_redis_client() is get_redis_client() is get_redis_client(redis_url)
    assert get_redis_client(redis_url, max_attempts=3) is not get_redis_client(redis_url)


@pytest.mark.parametrize(("keyword", "value"), [
    ("max_attempts", 0), ("failure_threshold", 0), ("recovery_timeout", -1.0),
    ("socket_timeout", 0.0), ("fallback_max_keys", 0), ("decode_responses", "yes"),
])
def test_a_bad_setting_is_refused_naming_it(keyword: str, value: object) -> None:
    with pytest.raises(ConfigurationError) as caught:
        get_redis_client("redis://127.0.0.1:1/0", **{keyword: value})
    assert caught.value.field == f"get_redis_client.{keyword}"
