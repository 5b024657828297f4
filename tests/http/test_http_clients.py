"""The ready-made clients of the seeds: get_http_client / HttpClient (S1) and
ResilientHttpClient (S2), against the real loopback server."""

from __future__ import annotations

import httpx
import pytest

import buttress
from buttress import CircuitBreakerConfig, CircuitBreakerError, CircuitState, RetryConfig
from buttress.flaky_server import FlakyServer, Reply
from buttress.http import HttpClient, ResilientHttpClient, get_http_client
from buttress.http.client import _forget_shared
from buttress.testing import VirtualClock


@pytest.fixture(autouse=True)
def _no_shared_clients() -> None:
    _forget_shared()


def test_get_http_client_is_exported_lazily_at_the_top_level() -> None:
    assert buttress.get_http_client is get_http_client
    assert buttress.ResilientHttpClient is ResilientHttpClient


def test_get_http_client_shares_one_client_per_base_url(server: FlakyServer) -> None:
    first = get_http_client(base_url=server.url)
    assert get_http_client(base_url=server.url) is first
    assert get_http_client(base_url=server.url, timeout=1.0) is not first


def test_sync_get_and_post_retry_by_the_rules(server: FlakyServer, clock: VirtualClock) -> None:
    server.route("/users", 503, 200)
    server.route("/orders", 503, then=201)
    with HttpClient(server.url, clock=clock) as client:
        assert client.get("/users").json()["ok"] is True
        assert client.post("/orders", json={"name": "John"}).status_code == 503
    assert server.requests("/users") == 2
    assert server.requests("/orders") == 1
    assert len(clock.sleeps) == 1
    assert 0.0 <= clock.sleeps[0] <= 1.0  # full jitter from the api preset's 1 s


async def test_async_get_and_post(server: FlakyServer, clock: VirtualClock) -> None:
    server.route("/users", 502, 200)
    async with HttpClient(server.url, clock=clock) as client:
        assert (await client.async_get("/users")).status_code == 200
        result = await client.async_post("/users", json={"name": "John"})
        assert result.status_code == 200
    assert server.requests("/users", "GET") == 2
    assert server.requests("/users", "POST") == 1


def test_the_api_preset_defaults(server: FlakyServer, clock: VirtualClock) -> None:
    server.route("/users", 503, then=503)
    client = HttpClient(server.url, clock=clock)
    assert client.get("/users").status_code == 503
    assert server.requests("/users") == 5  # max_attempts 5
    breaker = client.breakers.for_url(httpx.URL(server.url))
    assert breaker.config.failure_threshold == 5
    assert breaker.config.recovery_timeout == 60.0
    assert client.client.timeout.read == 60.0
    client.close()


def test_sync_and_async_calls_share_the_host_breaker(server: FlakyServer,
                                                     clock: VirtualClock) -> None:
    import asyncio

    server.route("/users", 500, then=500)
    client = HttpClient(server.url, clock=clock, retry=RetryConfig(max_attempts=1),
                        circuit_breaker=CircuitBreakerConfig(failure_threshold=2))
    client.get("/users")
    client.get("/users")

    async def call() -> None:
        with pytest.raises(CircuitBreakerError):
            await client.async_get("/users")
        await client.aclose()

    asyncio.run(call())
    assert server.requests("/users") == 2


def test_health_check_reports_healthy_and_unhealthy(server: FlakyServer) -> None:
    client = HttpClient(server.url)
    report = client.health_check("/health")
    assert report["status"] == "healthy"
    assert report["status_code"] == 200
    assert report["circuit_breaker"] == "closed"
    assert report["response_time"] >= 0.0
    server.route("/health", 503, 200)
    report = client.health_check("/health")
    assert report["status"] == "unhealthy"
    assert report["status_code"] == 503
    assert server.requests("/health") == 2  # a health check is never retried
    client.close()


def test_health_check_of_an_unreachable_host_does_not_raise() -> None:
    client = HttpClient("http://127.0.0.1:9")
    report = client.health_check("/health", timeout=1.0)
    assert report["status"] == "unhealthy"
    assert "ConnectError" in report["error"]
    client.close()


def test_health_check_without_a_base_url_names_the_problem() -> None:
    report = get_http_client().health_check("/health")
    assert report["status"] == "unhealthy"
    assert "base_url" in report["error"]


def test_health_check_masks_credentials_and_query() -> None:
    client = HttpClient("http://bob:secret@127.0.0.1:9")
    report = client.health_check("/health?token=abc", timeout=1.0)
    assert "secret" not in report["url"]
    assert "abc" not in report["url"]
    client.close()


async def test_async_health_check(server: FlakyServer) -> None:
    async with HttpClient(server.url) as client:
        assert (await client.async_health_check("/health"))["status"] == "healthy"


async def test_resilient_http_client_uses_its_configs(server: FlakyServer,
                                                      clock: VirtualClock) -> None:
    server.route("/data/7", Reply(503, retry_after="2"), 503, 503, then=200)
    client = ResilientHttpClient(
        base_url=server.url,
        circuit_breaker_config=CircuitBreakerConfig(failure_threshold=5, recovery_timeout=60),
        retry_config=RetryConfig(max_attempts=3, initial_delay=1.0, jitter=False),
        timeout=30.0,
        clock=clock,
    )
    async with client:
        response = await client.get("/data/7")
        assert response.status_code == 503  # three attempts, then the last answer
        assert clock.sleeps == [2.0, 2.0]   # Retry-After, then the 1 s * 2 backoff
        assert (await client.get("/data/7")).status_code == 200
        breaker = client.breakers.for_url(httpx.URL(server.url))
        assert breaker.state is CircuitState.CLOSED
        assert breaker.config.recovery_timeout == 60


async def test_resilient_http_client_opens_per_host(server: FlakyServer,
                                                    clock: VirtualClock) -> None:
    server.route("/data", 500, then=500)
    async with ResilientHttpClient(
            server.url, CircuitBreakerConfig(failure_threshold=2),
            RetryConfig(max_attempts=1), 5.0, clock=clock) as client:
        await client.get("/data")
        await client.get("/data")
        with pytest.raises(CircuitBreakerError):
            await client.get("/data")
