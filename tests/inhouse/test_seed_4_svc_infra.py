"""Seed S4 — ``svc_infra.resilience`` (``seeds/004_d7a5ce66df1df477.txt``) on buttress.

Each test is one example of the seed with its import line changed to
``from buttress import ...`` (kept inside the test). Where an example waits
(the default ``base_delay`` of 0.1 s, recovery timeouts), ``clock=clock`` (a
``VirtualClock``) is added as the one extra keyword. The reader's own code
(``external_api``, ``api``, ``payment_service``, ``socket.connect()``,
``requests.get``, ``metrics``, ``logger`` ...) is a minimal stand-in calling the real
loopback ``FlakyServer`` (or a loopback port nobody listens on), or raising the
exceptions the example is about.

Ported (every example of this seed uses only names buttress has today):

* Quick Start (``with_retry``, ``CircuitBreaker``, ``async with breaker``)
* Retry — Basic Usage; Configuration Options (the defaults table); Retry Only on
  Specific Exceptions (``retry_on``); Retry Callback for Logging/Metrics (``on_retry``);
  Sync Function Retry (``retry_sync``); Using RetryConfig (read back ``retry_on``);
  RetryExhaustedError (``.attempts``, ``.last_exception``)
* Circuit Breaker — States (the diagram's transitions); Basic Usage; Configuration
  Options (the defaults table); Using as Decorator (``@breaker.protect``); Checking
  Circuit State (``CircuitState``); Handling CircuitBreakerError (``e.name``,
  ``e.state.value``, ``e.remaining_timeout``); Circuit Breaker Statistics
  (``breaker.stats``); Manual Reset (``breaker.reset()``)
* Combining Retry and Circuit Breaker
* Best Practices §1-§5 (thresholds, specific exception types, observability,
  non-idempotent operations, fallbacks)
* API Reference — every export listed exists (``CircuitBreakerStats`` is the type of
  ``breaker.stats``)

Not portable yet: none (no missing names in this seed).

Nothing to port: "See Also" links to other documents.
"""

from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from buttress import CircuitState, RetryExhaustedError
from buttress.flaky_server import FlakyServer
from buttress.testing import VirtualClock

from ._standins import requests, send

logger = logging.getLogger("seed4.app")


class ExternalAPI:
    """Stand-in for the reader's async API client (``external_api``, ``api``,
    ``payment_api`` ...): real requests to the loopback server; a 5xx answer or a
    refused connection is raised as the transient ``ConnectionError`` the seed's
    examples retry on."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.calls = 0

    async def _send(self, method: str, path: str, body: Any = None) -> Any:
        self.calls += 1
        try:
            answer = await asyncio.to_thread(send, method, self.base_url + path, body)
        except requests.ConnectionError as exc:
            raise ConnectionError(f"{self.base_url}: {exc}") from exc
        if answer.status_code >= 500:
            raise ConnectionError(f"{path} answered {answer.status_code}")
        return answer.json()

    async def get(self, path: str) -> Any:
        return await self._send("GET", path)

    async def charge(self, amount: int) -> Any:
        return await self._send("POST", "/charge", {"amount": amount})

    async def call(self) -> Any:
        return await self._send("GET", "/call")


class Metrics:
    """Stand-in for the reader's metrics client."""

    def __init__(self) -> None:
        self.increments: list[tuple[str, dict[str, Any]]] = []

    def increment(self, name: str, tags: dict[str, Any]) -> None:
        self.increments.append((name, tags))


# --- Quick Start ---------------------------------------------------------------------


async def test_quick_start(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import CircuitBreaker, RetryConfig, with_retry

    external_api = payment_service = ExternalAPI(server.url)
    amount = 42

    # Retry with exponential backoff
    @with_retry(max_attempts=3, base_delay=0.1, clock=clock)
    async def fetch_data():
        return await external_api.get("/data")

    # Circuit breaker for failing dependencies
    breaker = CircuitBreaker("payment-service", failure_threshold=5)

    async with breaker:
        result = await payment_service.charge(amount)

    assert result == {"ok": True, "path": "/charge"}
    server.script(503, 503)
    assert await fetch_data() == {"ok": True, "path": "/data"}
    assert server.hits == 4
    assert 0.09 <= clock.sleeps[0] <= 0.1
    assert 0.18 <= clock.sleeps[1] <= 0.2
    assert RetryConfig(base_delay=0.1).max_attempts == 3


# --- Retry with Exponential Backoff -------------------------------------------------------


async def test_retry_basic_usage(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import with_retry

    api = ExternalAPI(server.url)

    @with_retry(max_attempts=3, clock=clock)
    async def fetch_user(user_id: str):
        return await api.get(f"/users/{user_id}")

    server.script(503, 200)
    assert await fetch_user("u1") == {"ok": True, "path": "/users/u1"}
    assert api.calls == 2

    server.script(503, 503, 503)
    with pytest.raises(RetryExhaustedError) as caught:
        await fetch_user("u1")
    assert caught.value.attempts == 3  # "Total attempts including first try"
    assert api.calls == 5


def test_retry_configuration_options_defaults() -> None:
    from buttress import RetryConfig

    config = RetryConfig()
    assert config.max_attempts == 3
    assert config.base_delay == 0.1
    assert config.max_delay == 60.0
    assert config.exponential_base == 2.0
    assert config.jitter == 0.1
    assert config.retry_on == (Exception,)
    assert config.on_retry is None


async def test_retry_only_on_specific_exceptions(server: FlakyServer, closed_url: str,
                                                 clock: VirtualClock) -> None:
    from buttress import with_retry

    attempts = 0
    target = {"host": closed_url}

    class Socket:  # stand-in for the reader's socket: a real TCP connect on loopback
        async def connect(self) -> bool:
            nonlocal attempts
            attempts += 1
            host, port = target["host"].removeprefix("http://").split(":")
            _, writer = await asyncio.open_connection(host, int(port))
            writer.close()
            await writer.wait_closed()
            return True

    socket = Socket()

    @with_retry(
        max_attempts=5,
        retry_on=(TimeoutError, ConnectionError),
        clock=clock,
    )
    async def connect_to_service():
        return await socket.connect()

    with pytest.raises(RetryExhaustedError) as caught:
        await connect_to_service()  # nothing listens: ConnectionRefusedError each time
    assert attempts == caught.value.attempts == 5
    assert isinstance(caught.value.last_exception, ConnectionRefusedError)

    target["host"] = server.url
    assert await connect_to_service() is True

    @with_retry(max_attempts=5, retry_on=(TimeoutError, ConnectionError), clock=clock)
    async def misconfigured():
        nonlocal attempts
        attempts += 1
        raise ValueError("bad port")

    attempts = 0
    with pytest.raises(ValueError):
        await misconfigured()
    assert attempts == 1  # not in retry_on: not retried


async def test_retry_callback_for_logging_and_metrics(server: FlakyServer, clock: VirtualClock,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    from buttress import with_retry

    api = ExternalAPI(server.url)
    metrics = Metrics()

    def on_retry(attempt: int, exc: Exception) -> None:
        logger.warning(f"Attempt {attempt} failed: {exc}")
        metrics.increment("api.retry", tags={"attempt": attempt})

    @with_retry(max_attempts=3, on_retry=on_retry, clock=clock)
    async def fetch_data():
        return await api.get("/data")

    server.script(503, 502)
    with caplog.at_level(logging.WARNING, logger="seed4.app"):
        assert await fetch_data() == {"ok": True, "path": "/data"}
    assert [r.getMessage() for r in caplog.records if r.name == "seed4.app"] == [
        "Attempt 1 failed: /data answered 503",
        "Attempt 2 failed: /data answered 502",
    ]
    assert metrics.increments == [("api.retry", {"attempt": 1}), ("api.retry", {"attempt": 2})]


def test_sync_function_retry(server: FlakyServer, closed_url: str, clock: VirtualClock) -> None:
    from buttress import retry_sync

    base = {"url": server.url}

    @retry_sync(max_attempts=3, base_delay=0.5, clock=clock)
    def fetch_config():
        return requests.get(f"{base['url']}/config").json()

    assert fetch_config() == {"ok": True, "path": "/config"}

    base["url"] = closed_url  # the config service is down
    with pytest.raises(RetryExhaustedError) as caught:
        fetch_config()
    assert caught.value.attempts == 3
    assert isinstance(caught.value.last_exception, requests.ConnectionError)
    assert 0.45 <= clock.sleeps[0] <= 0.5
    assert 0.9 <= clock.sleeps[1] <= 1.0

    with pytest.raises(TypeError, match="retry_sync"):  # "For synchronous functions"
        @retry_sync(max_attempts=3)
        async def not_sync() -> None: ...


async def test_using_retry_config(clock: VirtualClock) -> None:
    from buttress import RetryConfig, with_retry

    api_retry = RetryConfig(
        max_attempts=5,
        base_delay=0.2,
        max_delay=30.0,
        retry_on=(TimeoutError, ConnectionError),
    )

    failures = [TimeoutError("slow"), ConnectionError("reset"), TimeoutError("slow")]

    # Use config values in decorator
    @with_retry(
        max_attempts=api_retry.max_attempts,
        base_delay=api_retry.base_delay,
        max_delay=api_retry.max_delay,
        retry_on=api_retry.retry_on,
        clock=clock,
    )
    async def fetch():
        if failures:
            raise failures.pop(0)
        return "fetched"

    assert api_retry.retry_on == (TimeoutError, ConnectionError)
    assert await fetch() == "fetched"
    assert len(clock.sleeps) == 3
    for delay, scheduled in zip(clock.sleeps, [0.2, 0.4, 0.8], strict=True):
        assert scheduled * 0.9 <= delay <= scheduled


async def test_retry_exhausted_error(clock: VirtualClock,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from buttress import RetryExhaustedError, with_retry

    @with_retry(max_attempts=3, clock=clock)
    async def flaky_operation():
        raise ValueError("Always fails")

    try:
        await flaky_operation()
    except RetryExhaustedError as e:
        print(f"Failed after {e.attempts} attempts")
        print(f"Last error: {e.last_exception}")

    assert capsys.readouterr().out.splitlines() == [
        "Failed after 3 attempts",
        "Last error: Always fails",
    ]


# --- Circuit Breaker -------------------------------------------------------------------


async def test_circuit_breaker_basic_usage_and_states(server: FlakyServer,
                                                      clock: VirtualClock) -> None:
    from buttress import CircuitBreaker, CircuitBreakerError

    payment_api = ExternalAPI(server.url)
    amount = 10

    breaker = CircuitBreaker(
        name="payment-api",
        failure_threshold=5,      # Open after 5 failures
        recovery_timeout=30.0,    # Wait 30s before trying again
        clock=clock,
    )

    async def charge() -> Any:
        async with breaker:
            result = await payment_api.charge(amount)
        return result

    # CLOSED (normal): calls pass through
    assert await charge() == {"ok": True, "path": "/charge"}

    # CLOSED -> OPEN at the failure threshold
    server.script(*[503] * 5)
    for _ in range(5):
        with pytest.raises(ConnectionError):
            await charge()
    assert breaker.state is CircuitState.OPEN

    # OPEN: calls blocked, CircuitBreakerError raised immediately
    with pytest.raises(CircuitBreakerError):
        await charge()
    assert payment_api.calls == 6

    # OPEN -> HALF_OPEN after the recovery timeout; a failure sends it back to OPEN
    clock.advance(30.0)
    server.script(503)
    with pytest.raises(ConnectionError):
        await charge()
    assert breaker.state is CircuitState.OPEN

    # HALF_OPEN -> CLOSED after the success threshold (2)
    clock.advance(30.0)
    await charge()
    assert breaker.state is CircuitState.HALF_OPEN
    await charge()
    assert breaker.state is CircuitState.CLOSED
    assert payment_api.calls == 9


async def test_circuit_breaker_half_open_max_calls(clock: VirtualClock) -> None:
    from buttress import CircuitBreaker, CircuitBreakerError

    breaker = CircuitBreaker("payment-api", failure_threshold=1, recovery_timeout=30.0,
                             clock=clock)
    with pytest.raises(ConnectionError):
        async with breaker:
            raise ConnectionError("down")
    clock.advance(30.0)

    # HALF_OPEN: limited calls allowed to test if service recovered (3 by default)
    release = asyncio.Event()
    admitted = 0

    async def probe() -> None:
        nonlocal admitted
        async with breaker:
            admitted += 1
            await release.wait()

    probes = [asyncio.create_task(probe()) for _ in range(3)]
    await asyncio.sleep(0)
    assert admitted == 3
    with pytest.raises(CircuitBreakerError) as caught:
        async with breaker:
            pass
    assert caught.value.state is CircuitState.HALF_OPEN
    release.set()
    await asyncio.gather(*probes)
    assert breaker.state is CircuitState.CLOSED


def test_circuit_breaker_configuration_options_defaults() -> None:
    from buttress import CircuitBreaker

    breaker = CircuitBreaker()
    config = breaker.config
    assert breaker.name == config.name == "default"
    assert config.failure_threshold == 5
    assert config.recovery_timeout == 30.0
    assert config.half_open_max_calls == 3
    assert config.success_threshold == 2
    assert config.failure_exceptions == (Exception,)


async def test_circuit_breaker_as_decorator(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import CircuitBreaker, CircuitBreakerError

    external_api = ExternalAPI(server.url)

    breaker = CircuitBreaker("external-api", failure_threshold=5, clock=clock)

    @breaker.protect
    async def call_external():
        return await external_api.get("/data")

    assert await call_external() == {"ok": True, "path": "/data"}
    assert call_external.__name__ == "call_external"
    server.script(*[503] * 5)
    for _ in range(5):
        with pytest.raises(ConnectionError):
            await call_external()
    with pytest.raises(CircuitBreakerError):
        await call_external()
    assert server.hits == 6
    assert breaker.stats.rejected_calls == 1


async def test_checking_circuit_state(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import CircuitBreaker, CircuitState

    api = ExternalAPI(server.url)
    cached_value = {"cached": True}

    breaker = CircuitBreaker("api", clock=clock)

    async def get_data() -> Any:
        if breaker.state == CircuitState.OPEN:
            # Fall back to cache or default
            return cached_value

        # Normal path
        async with breaker:
            return await api.get("/data")

    assert await get_data() == {"ok": True, "path": "/data"}
    breaker.force_open()
    assert await get_data() == cached_value
    assert server.hits == 1


async def test_checking_circuit_state_recovers_after_the_recovery_timeout(
    server: FlakyServer, clock: VirtualClock
) -> None:
    from buttress import CircuitBreaker, CircuitState

    api = ExternalAPI(server.url)
    cached_value = {"cached": True}

    breaker = CircuitBreaker("api", recovery_timeout=30.0, clock=clock)

    async def get_data() -> Any:
        if breaker.state == CircuitState.OPEN:
            # Fall back to cache or default
            return cached_value

        # Normal path
        async with breaker:
            return await api.get("/data")

    server.script(*[503] * 5)
    for _ in range(5):
        with pytest.raises(ConnectionError):
            await get_data()
    assert await get_data() == cached_value  # open: served from the cache

    clock.advance(30.0)  # the service has had its recovery time
    assert not breaker.is_open
    # Once a probe is allowed the state reads HALF_OPEN, so the probe goes through
    # and the fresh answer comes back instead of the cache.
    assert await get_data() == {"ok": True, "path": "/data"}
    assert server.hits == 6


async def test_handling_circuit_breaker_error(server: FlakyServer, clock: VirtualClock,
                                              caplog: pytest.LogCaptureFixture) -> None:
    from buttress import CircuitBreaker, CircuitBreakerError

    api = ExternalAPI(server.url)
    fallback_value = {"fallback": True}

    breaker = CircuitBreaker("api", clock=clock)

    async def call_api() -> Any:
        try:
            async with breaker:
                return await api.call()
        except CircuitBreakerError as e:
            logger.warning(f"Circuit {e.name} is {e.state.value}")
            if e.remaining_timeout:
                logger.info(f"Retry in {e.remaining_timeout:.1f}s")
            return fallback_value

    server.script(*[503] * 5)
    for _ in range(5):
        with pytest.raises(ConnectionError):
            await call_api()
    clock.advance(12.5)
    with caplog.at_level(logging.INFO, logger="seed4.app"):
        assert await call_api() == fallback_value
    assert [r.getMessage() for r in caplog.records if r.name == "seed4.app"] == [
        "Circuit api is open",
        "Retry in 17.5s",
    ]
    assert server.hits == 5


async def test_circuit_breaker_statistics(server: FlakyServer, clock: VirtualClock,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from buttress import CircuitBreaker, CircuitBreakerError

    api = ExternalAPI(server.url)
    breaker = CircuitBreaker("api", clock=clock)

    # After some operations...
    server.script(200, 200, *[503] * 5)
    for _ in range(2):
        async with breaker:
            await api.get("/data")
    for _ in range(5):
        with pytest.raises(ConnectionError):
            async with breaker:
                await api.get("/data")
    for _ in range(3):
        with pytest.raises(CircuitBreakerError):
            async with breaker:
                await api.get("/data")

    stats = breaker.stats

    print(f"Total calls: {stats.total_calls}")
    print(f"Successful: {stats.successful_calls}")
    print(f"Failed: {stats.failed_calls}")
    print(f"Rejected: {stats.rejected_calls}")
    print(f"State changes: {stats.state_changes}")

    assert capsys.readouterr().out.splitlines() == [
        "Total calls: 10",
        "Successful: 2",
        "Failed: 5",
        "Rejected: 3",
        "State changes: 1",
    ]


async def test_manual_reset(clock: VirtualClock) -> None:
    from buttress import CircuitBreaker

    breaker = CircuitBreaker("api", clock=clock)
    for _ in range(5):
        with pytest.raises(ConnectionError):
            async with breaker:
                raise ConnectionError("down")
    assert breaker.state is CircuitState.OPEN

    breaker.reset()  # Force circuit to CLOSED state, clear counters

    assert breaker.state is CircuitState.CLOSED
    stats = breaker.stats
    assert (stats.total_calls, stats.failed_calls, stats.failure_count) == (0, 0, 0)
    async with breaker:  # calls pass again at once
        pass


# --- Combining Retry and Circuit Breaker ---------------------------------------------------


async def test_combining_retry_and_circuit_breaker(server: FlakyServer,
                                                   clock: VirtualClock) -> None:
    from buttress import CircuitBreaker, CircuitBreakerError, with_retry

    external_api = ExternalAPI(server.url)
    cached = {"cached": True}

    def get_cached_data() -> dict:
        return cached

    # Circuit breaker at the service level
    api_breaker = CircuitBreaker("external-api", failure_threshold=5, clock=clock)

    # Retry for transient failures, but not when circuit is open
    @with_retry(
        max_attempts=3,
        retry_on=(TimeoutError, ConnectionError),  # NOT CircuitBreakerError
        clock=clock,
    )
    async def fetch_with_retry():
        async with api_breaker:
            return await external_api.get("/data")

    async def fetch_data():
        try:
            return await fetch_with_retry()
        except CircuitBreakerError:
            # Circuit is open - use fallback
            return get_cached_data()

    server.script(503, 200)
    assert await fetch_data() == {"ok": True, "path": "/data"}  # retried once

    server.script(*[503] * 10)
    with pytest.raises(RetryExhaustedError):
        await fetch_data()  # 3 attempts, 3 consecutive failures
    assert await fetch_data() == cached  # 2 more failures open it; then the fallback
    assert server.hits == 2 + 3 + 2
    assert await fetch_data() == cached  # open: no request, no retries
    assert server.hits == 7
    assert len(clock.sleeps) == 1 + 2 + 2  # the open breaker ends the third call at once


# --- Best Practices ------------------------------------------------------------------


def test_best_practice_thresholds(clock: VirtualClock) -> None:
    from buttress import CircuitBreaker

    def fail(breaker: CircuitBreaker, times: int) -> None:
        for _ in range(times):
            with pytest.raises(ConnectionError), breaker:
                raise ConnectionError("down")

    # High-traffic, latency-sensitive
    breaker = CircuitBreaker(
        failure_threshold=10,     # Need more data points
        recovery_timeout=10.0,    # Recover faster
        clock=clock,
    )
    fail(breaker, 9)
    assert breaker.state is CircuitState.CLOSED
    fail(breaker, 1)
    assert breaker.state is CircuitState.OPEN
    clock.advance(10.0)
    with breaker:
        pass
    assert breaker.state is CircuitState.HALF_OPEN

    # Low-traffic, can wait
    breaker = CircuitBreaker(
        failure_threshold=3,      # Open quickly
        recovery_timeout=60.0,    # Longer recovery
        clock=clock,
    )
    fail(breaker, 3)
    assert breaker.state is CircuitState.OPEN
    assert breaker.stats.remaining_timeout == 60.0


async def test_best_practice_specific_exception_types(clock: VirtualClock) -> None:
    from buttress import with_retry

    calls = {"broad": 0, "narrow": 0}

    #  Retries on ALL exceptions (including validation errors)
    @with_retry(max_attempts=3, clock=clock)
    async def fetch():
        calls["broad"] += 1
        raise ValueError("invalid user id")

    with pytest.raises(RetryExhaustedError):
        await fetch()

    #  Only retry on transient failures
    @with_retry(max_attempts=3, retry_on=(TimeoutError, ConnectionError), clock=clock)
    async def fetch_narrow():
        calls["narrow"] += 1
        raise ValueError("invalid user id")

    with pytest.raises(ValueError):
        await fetch_narrow()
    assert calls == {"broad": 3, "narrow": 1}


async def test_best_practice_add_observability(clock: VirtualClock,
                                               caplog: pytest.LogCaptureFixture) -> None:
    from buttress import with_retry

    metrics = Metrics()
    outcomes: list[Any] = [TimeoutError("slow"), "data"]

    def on_retry(attempt: int, exc: Exception) -> None:
        metrics.increment("retry", tags={"attempt": str(attempt)})
        logger.warning(f"Retry {attempt}: {exc}")

    @with_retry(max_attempts=3, on_retry=on_retry, clock=clock)
    async def fetch():
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with caplog.at_level(logging.WARNING, logger="seed4.app"):
        assert await fetch() == "data"
    assert metrics.increments == [("retry", {"attempt": "1"})]
    assert [r.getMessage() for r in caplog.records if r.name == "seed4.app"] == [
        "Retry 1: slow"]


async def test_best_practice_non_idempotent_operations(server: FlakyServer,
                                                       clock: VirtualClock) -> None:
    from buttress import with_retry

    payment_api = ExternalAPI(server.url)

    #  Dangerous - may charge multiple times
    @with_retry(max_attempts=3, clock=clock)
    async def charge_card(amount):
        return await payment_api.charge(amount)

    # The server may well have charged before answering 503: each retry is a new POST.
    server.script(503, 503, 200)
    assert await charge_card(10) == {"ok": True, "path": "/charge"}
    assert server.hits == 3

    #  Use idempotency keys instead (the reader's API; no retry decorator)
    async def charge_card_idempotent(amount, idempotency_key: str):
        return await payment_api.charge(amount)

    assert await charge_card_idempotent(10, idempotency_key="k-1") == {
        "ok": True, "path": "/charge"}


async def test_best_practice_implement_fallbacks(server: FlakyServer,
                                                 clock: VirtualClock) -> None:
    from buttress import CircuitBreaker, CircuitBreakerError

    recommendation_service = SimpleNamespace(
        get=lambda user_id: ExternalAPI(server.url).get(f"/recommendations/{user_id}"))

    def get_default_recommendations() -> list[str]:
        return ["bestsellers"]

    breaker = CircuitBreaker("recommendations", clock=clock)

    async def get_recommendations(user_id: str):
        try:
            async with breaker:
                return await recommendation_service.get(user_id)
        except CircuitBreakerError:
            # Graceful degradation
            return get_default_recommendations()

    assert await get_recommendations("u1") == {"ok": True, "path": "/recommendations/u1"}
    server.script(*[503] * 5)
    for _ in range(5):
        with pytest.raises(ConnectionError):
            await get_recommendations("u1")
    assert await get_recommendations("u1") == ["bestsellers"]
    assert server.hits == 6


# --- API Reference ---------------------------------------------------------------------


def test_api_reference_exports() -> None:
    import dataclasses
    import enum

    from buttress import (
        CircuitBreaker,
        CircuitBreakerError,
        CircuitBreakerStats,
        CircuitState,
        RetryConfig,
        RetryExhaustedError,
        retry_sync,
        with_retry,
    )

    assert callable(with_retry)
    assert callable(retry_sync)
    assert dataclasses.is_dataclass(RetryConfig)
    assert issubclass(RetryExhaustedError, Exception)
    assert issubclass(CircuitBreakerError, Exception)
    assert isinstance(CircuitBreaker("api").stats, CircuitBreakerStats)
    assert dataclasses.is_dataclass(CircuitBreakerStats)
    assert issubclass(CircuitState, enum.Enum)
    assert {s.name for s in CircuitState} == {"CLOSED", "OPEN", "HALF_OPEN"}
    assert json.dumps(CircuitBreaker("api").stats.as_dict())  # plain, serialisable
