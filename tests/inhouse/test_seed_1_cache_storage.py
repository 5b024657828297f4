"""Seed S1 — ``pynomaly.infrastructure.resilience`` (``seeds/001_6f70dcf2bc98fc51.txt``):
its Redis and S3 client examples, and its cache and S3 presets driving those clients,
against a real ``redis-server`` and moto's real S3 server on loopback.

Each test is one example with its import line changed to ``from buttress import ...``.
``get_redis_client()`` and ``get_s3_client()`` take no argument in the seed: they find
the servers as an application would, through ``REDIS_URL`` and ``AWS_ENDPOINT_URL``
(set here to the test servers). Where an example would wait, ``clock=clock`` is the
one extra keyword. The reader's own ``cache_set``/``cache_get``/``s3_upload`` are
stand-ins doing the real thing with these clients.

Ported:

* Resilient Clients — Redis Client, S3 Client
* Client Health Checks — Redis health, S3 health
* Testing — Integration Testing (``test_redis_fallback``: works without a Redis server)
* Operation Types — Cache Operations, S3 File Operations, with the real clients underneath
* Error Handling — Fallback Patterns (``cache_resilient`` around a real cache read)

Not ported here: FastAPI Integration (its ``/health`` route lists these clients' health
checks, tested here one by one; the FastAPI integration is another module's).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from buttress.testing import VirtualClock
from servers.fixtures import _aws_credentials, moto_s3, redis_server, redis_url
from servers.s3 import MotoS3

from ._standins import closed_port_url

__all__ = ["_aws_credentials", "moto_s3", "redis_server", "redis_url"]


@pytest.fixture
def redis_env(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> str:
    """``REDIS_URL`` names the real, empty redis-server."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    return redis_url


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, moto_s3: MotoS3, tmp_path: Path) -> Iterator[Any]:
    """``AWS_ENDPOINT_URL`` names moto; the buckets the examples use exist; relative
    file names land in a temporary working directory."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_s3.url)
    monkeypatch.chdir(tmp_path)
    s3 = boto3.client("s3", endpoint_url=moto_s3.url)
    for bucket in ("bucket", "my-bucket", "models"):
        s3.create_bucket(Bucket=bucket)
    yield s3
    for bucket in ("bucket", "my-bucket", "models"):
        for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])
        s3.delete_bucket(Bucket=bucket)


# --- Resilient Clients --------------------------------------------------------------------


async def test_redis_client(redis_env: str) -> None:
    import redis

    from buttress import get_redis_client

    # Get resilient Redis client (with fallback)
    client = get_redis_client()

    # Cache operations
    await client.set("key", "value", ttl=3600)
    value = await client.get("key")

    # Hash operations
    await client.hset("user:1", "name", "John")
    name = await client.hget("user:1", "name")

    assert (value, name) == ("value", "John")
    direct = redis.Redis.from_url(redis_env, decode_responses=True)
    assert direct.get("key") == "value"  # really in Redis, with its TTL
    assert 3_590_000 < direct.pttl("key") <= 3_600_000
    assert direct.hget("user:1", "name") == "John"
    direct.close()


async def test_s3_client(s3_env: Any) -> None:
    from buttress import get_s3_client

    Path("local_file.txt").write_text("report")

    # Get resilient S3 client
    client = get_s3_client()

    # S3 operations
    client.upload_file("local_file.txt", "bucket", "key")
    Path("local_file.txt").unlink()
    await client.async_download_file("bucket", "key", "local_file.txt")

    assert Path("local_file.txt").read_text() == "report"
    assert s3_env.get_object(Bucket="bucket", Key="key")["Body"].read() == b"report"


# --- Client Health Checks -----------------------------------------------------------------


async def test_client_health_checks(redis_env: str, s3_env: Any) -> None:
    from buttress import get_redis_client, get_s3_client

    # Redis health
    redis_client = get_redis_client()
    redis_health = await redis_client.health_check()
    print(f"Redis status: {redis_health['status']}")

    # S3 health
    s3_client = get_s3_client()
    s3_health = s3_client.health_check("my-bucket")
    print(f"S3 status: {s3_health['status']}")

    assert (redis_health["status"], s3_health["status"]) == ("healthy", "healthy")
    assert s3_client.health_check("no-such-bucket")["status"] == "unhealthy"


# --- Testing: Integration Testing ---------------------------------------------------------


async def test_redis_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test Redis client with fallback cache."""
    from buttress import get_redis_client

    monkeypatch.setenv("REDIS_URL", closed_port_url().replace("http://", "redis://") + "/0")
    client = get_redis_client()

    # Should work even without Redis server
    await client.set("test_key", "test_value")
    value = await client.get("test_key")
    assert value == "test_value"

    health = await client.health_check()
    assert health["status"] == "degraded"
    assert health["fallback"]["pending_writes"] == 1  # written to Redis once it is back


# --- Operation Types, with the real clients -----------------------------------------------


async def test_cache_operations_on_the_redis_client(redis_env: str, clock: VirtualClock) -> None:
    from buttress import cache_resilient, get_redis_client

    async def cache_set(key: str, value: Any, ttl: int) -> bool:
        return await get_redis_client().set(key, json.dumps(value), ttl=ttl)

    @cache_resilient(operation_name="user_cache", clock=clock)
    async def cache_user(user_id: int, user_data: dict):
        # Fast fail for cache operations
        # Short timeout and minimal retries
        return await cache_set(f"user:{user_id}", user_data, ttl=3600)

    assert await cache_user(1, {"name": "Ann"}) is True
    assert json.loads(await get_redis_client().get("user:1")) == {"name": "Ann"}


def test_s3_file_operations_on_the_s3_client(s3_env: Any, tmp_path: Path,
                                            clock: VirtualClock) -> None:
    from buttress import file_resilient, get_s3_client

    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")

    def s3_upload(file_path: str, bucket: str, key: str) -> None:
        get_s3_client().upload_file(file_path, bucket, key)

    @file_resilient(operation_name="model_upload", clock=clock)
    def upload_model(file_path: str, bucket: str, key: str):
        # Optimized for file operations
        # Moderate timeout and retry settings
        return s3_upload(file_path, bucket, key)

    upload_model(str(model), "models", "v1.bin")
    assert s3_env.get_object(Bucket="models", Key="v1.bin")["Body"].read() == b"weights"


# --- Error Handling: Fallback Patterns ----------------------------------------------------


async def test_fallback_patterns_with_a_real_cache(redis_env: str, clock: VirtualClock) -> None:
    from buttress import cache_resilient, get_redis_client

    database = {7: {"id": 7, "name": "Ann"}}

    async def cache_get(key: str) -> Any:
        raw = await get_redis_client().get(key)
        if raw is None:
            raise KeyError(key)  # a cache miss
        return json.loads(raw)

    async def get_user_from_database(user_id: int) -> dict:
        return database[user_id]

    @cache_resilient(operation_name="user_cache", clock=clock)
    async def get_user_from_cache(user_id: int):
        try:
            return await cache_get(f"user:{user_id}")
        except Exception:
            # Cache miss or failure, fetch from database
            return await get_user_from_database(user_id)

    assert await get_user_from_cache(7) == {"id": 7, "name": "Ann"}  # miss: the database
    await get_redis_client().set("user:7", json.dumps({"id": 7, "name": "cached"}))
    assert await get_user_from_cache(7) == {"id": 7, "name": "cached"}
