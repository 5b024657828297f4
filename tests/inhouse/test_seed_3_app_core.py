"""Seed S3 — ``app.core.resilience`` (``seeds/003_bc5dbe59515df014.txt``) on buttress.

Each test is one example of the seed with its import line changed to
``from buttress import ...`` (kept inside the test). Where an example waits or
times out, ``clock=clock`` (a ``VirtualClock``) is added as the one extra
keyword, and the reader's slow operations "take" their time on that clock
(``time.sleep(10)`` / ``asyncio.sleep(10)`` become ``clock.sleep(10)`` /
``clock.async_sleep(10)``). The reader's own code (``requests.get``, ``aiohttp``, ``jira_client``,
``database``, ``self.llm`` ...) is a minimal stand-in calling the real loopback
``FlakyServer``, a real sqlite3 database, or raising the exceptions the example
is about.

Ported (every example of this seed uses only names buttress has today):

* Retry Pattern — Basic Usage (``retry``, ``RetryConfig``, ``RetryStrategy``; the seed
  forgets to import ``RetryStrategy``, the port imports it), Async Usage (``async_retry``),
  Configuration Options (``retryable_exceptions``/``non_retryable_exceptions`` as sets,
  ``retry_condition``)
* Circuit Breaker Pattern — Basic Usage (``circuit_breaker``, ``CircuitBreakerConfig``),
  With Fallback (``fallback(exc, url)``), Configuration Options (``failure_window``,
  ``failure_exceptions``, ``ignored_exceptions``), Circuit States (CLOSED → OPEN →
  HALF_OPEN → CLOSED / OPEN), Monitoring (``get_circuit_breaker_stats``,
  ``get_all_circuit_breaker_stats``)
* Timeout Pattern — Sync Timeout (``timeout``), Async Timeout (``async_timeout``),
  With Custom Configuration (``TimeoutConfig`` with ``exception_class``,
  ``error_message``, ``operation_name``)
* Usage Examples 1-5 — Retry + Circuit Breaker for an external API; async API call with
  all three patterns (``async_retry``, ``async_circuit_breaker``, ``async_timeout``);
  database operations with retry; circuit breaker with monitoring; custom retry condition
* Recommended Applications 1-4 — Jira, MongoDB, LLM and vector-DB methods

Not portable yet: none (no missing names in this seed).

Documented differences (SPEC §1 decision table):

* ``max_attempts`` — this seed says "Number of retries (not including first attempt)";
  buttress counts every call including the first (four seeds agree), so
  ``RetryConfig(max_attempts=3)`` makes 3 calls here, not 4. The tests assert buttress's
  meaning and say so.
* Sync timeout — this seed's ``@timeout`` interrupts with ``SIGALRM``; buttress's default
  runs the call in a worker thread (works off the main thread too) and
  ``TimeoutConfig(use_signal=True)`` gives the seed's signal behaviour (both tested).
* Usage Example 2 returns ``data["choices"][0]["message"]["content"]`` (OpenAI's
  schema); the loopback server answers ``{"ok": true, "path": ...}``, so the port
  returns ``data["path"]``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from buttress import (
    CircuitBreakerError,
    CircuitState,
    OperationTimeoutError,
    RetryExhaustedError,
    get_circuit_breaker,
)
from buttress.flaky_server import FlakyServer
from buttress.testing import VirtualClock

from ._standins import aiohttp, requests, send

# --- the reader's own code, as stand-ins ---------------------------------------------------


class ThirdPartyAPIError(Exception):
    """app.core.exceptions.ThirdPartyAPIError."""


class ServiceUnavailableError(Exception):
    """app.core.exceptions.ServiceUnavailableError."""


class DatabaseError(Exception):
    """app.core.exceptions.DatabaseError."""


class AppTimeoutError(Exception):
    """app.core.exceptions.TimeoutError (imported as AppTimeoutError in the seed)."""


def get_logger(name: str) -> logging.Logger:
    """app.core.utils.logger.get_logger."""
    return logging.getLogger(name)


# --- 1. Retry Pattern ----------------------------------------------------------------


def test_retry_basic_usage(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import RetryConfig, RetryStrategy, retry

    @retry(RetryConfig(
        max_attempts=3,
        base_delay=1.0,
        strategy=RetryStrategy.EXPONENTIAL
    ), clock=clock)
    def fetch_data(url: str) -> dict:
        response = requests.get(url)
        response.raise_for_status()
        return response.json()

    server.script(503, 503, 200)
    assert fetch_data(f"{server.url}/data") == {"ok": True, "path": "/data"}
    assert server.hits == 3
    assert RetryStrategy.EXPONENTIAL is RetryStrategy.EXPONENTIAL_BACKOFF
    assert len(clock.sleeps) == 2
    assert 0.9 <= clock.sleeps[0] <= 1.0
    assert 1.8 <= clock.sleeps[1] <= 2.0


def test_retry_max_attempts_counts_the_first_call(server: FlakyServer,
                                                  clock: VirtualClock) -> None:
    from buttress import RetryConfig, RetryStrategy, retry

    @retry(RetryConfig(
        max_attempts=3,
        base_delay=1.0,
        strategy=RetryStrategy.EXPONENTIAL
    ), clock=clock)
    def fetch_data(url: str) -> dict:
        response = requests.get(url)
        response.raise_for_status()
        return response.json()

    # This seed documents max_attempts as "retries, not including the first attempt"
    # (3 retries = 4 calls). SPEC decision: buttress counts every call, so 3 calls.
    server.script(503, 503, 503, 200)
    with pytest.raises(RetryExhaustedError) as caught:
        fetch_data(f"{server.url}/data")
    assert server.hits == 3
    assert caught.value.attempts == 3
    assert caught.value.last_exception.response.status_code == 503


async def test_retry_async_usage(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import RetryConfig, async_retry

    @async_retry(RetryConfig(
        max_attempts=3,
        base_delay=1.0,
        max_delay=30.0,
        jitter=True
    ), clock=clock)
    async def fetch_data_async(url: str) -> dict:
        async with aiohttp.ClientSession() as session:  # noqa: SIM117 (seed text)
            async with session.get(url) as response:
                response.raise_for_status()
                return await response.json()

    server.script(503, 200)
    assert await fetch_data_async(f"{server.url}/data") == {"ok": True, "path": "/data"}
    assert server.hits == 2
    assert 0.5 <= clock.sleeps[0] <= 1.0

    with pytest.raises(TypeError, match="coroutine function"):
        @async_retry(RetryConfig(max_attempts=3))
        def not_async() -> None: ...


def test_retry_configuration_options(clock: VirtualClock) -> None:
    from buttress import RetryConfig, RetryStrategy, retry

    config = RetryConfig(
        max_attempts=3,           # Number of retries (not including first attempt)
        base_delay=1.0,          # Base delay between retries (seconds)
        max_delay=60.0,          # Maximum delay cap (seconds)
        strategy=RetryStrategy.EXPONENTIAL,  # or LINEAR, CONSTANT
        jitter=True,             # Add randomness to delays
        retryable_exceptions={   # Exceptions that trigger retry
            ConnectionError,
            TimeoutError,
            ThirdPartyAPIError
        },
        non_retryable_exceptions={  # Exceptions that should NOT retry
            ValueError,
            TypeError
        },
        retry_condition=None     # Custom function: (exc) -> bool
    )

    assert set(config.retryable_exceptions) == {ConnectionError, TimeoutError,
                                                ThirdPartyAPIError}
    assert set(config.non_retryable_exceptions) == {ValueError, TypeError}
    assert {RetryStrategy.LINEAR, RetryStrategy.CONSTANT} == {
        RetryStrategy.LINEAR_BACKOFF, RetryStrategy.FIXED_DELAY}

    raised: list[type[Exception]] = []

    def make(errors: list[Exception]) -> Any:
        pending = iter(errors)

        @retry(config, clock=clock)
        def operation() -> str:
            error = next(pending, None)
            if error is None:
                return "ok"
            raised.append(type(error))
            raise error

        return operation

    assert make([ConnectionError(), TimeoutError()])() == "ok"
    assert make([ThirdPartyAPIError()])() == "ok"
    with pytest.raises(ValueError):
        make([ValueError("not retryable")])()
    with pytest.raises(TypeError):
        make([TypeError("not retryable")])()
    with pytest.raises(KeyError):  # not listed as retryable either
        make([KeyError("unlisted")])()
    assert raised == [ConnectionError, TimeoutError, ThirdPartyAPIError, ValueError,
                      TypeError, KeyError]


# --- 2. Circuit Breaker Pattern ---------------------------------------------------------


def test_circuit_breaker_basic_usage_and_states(server: FlakyServer,
                                                clock: VirtualClock) -> None:
    from buttress import CircuitBreakerConfig, circuit_breaker

    @circuit_breaker(CircuitBreakerConfig(
        name="external_api",
        failure_threshold=5,
        recovery_timeout=30.0
    ), clock=clock)
    def call_external_api(url: str) -> dict:
        response = requests.get(url)
        response.raise_for_status()
        return response.json()

    url = f"{server.url}/data"
    breaker = get_circuit_breaker("external_api")  # the registered breaker it uses
    # CLOSED: all requests pass through, failures are tracked
    assert call_external_api(url) == {"ok": True, "path": "/data"}
    server.script(*[503] * 5)
    for _ in range(5):
        with pytest.raises(requests.HTTPError):
            call_external_api(url)
    # OPEN: requests fail immediately (fast-fail)
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitBreakerError) as caught:
        call_external_api(url)
    assert caught.value.name == "external_api"
    assert server.hits == 6

    # After recovery_timeout, HALF_OPEN; success_threshold (2) successes -> CLOSED
    clock.advance(30.0)
    assert call_external_api(url) == {"ok": True, "path": "/data"}
    assert breaker.state is CircuitState.HALF_OPEN
    call_external_api(url)
    assert breaker.state is CircuitState.CLOSED

    # HALF_OPEN failure -> OPEN (service still broken)
    server.script(*[503] * 6)
    for _ in range(5):
        with pytest.raises(requests.HTTPError):
            call_external_api(url)
    clock.advance(30.0)
    with pytest.raises(requests.HTTPError):
        call_external_api(url)  # the probe fails
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitBreakerError):
        call_external_api(url)


def test_circuit_breaker_with_fallback(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import CircuitBreakerConfig, circuit_breaker

    seen: list[tuple[type, str]] = []

    def fallback_data(exc, url: str) -> dict:
        """Fallback when circuit is open."""
        seen.append((type(exc), url))
        return {"status": "unavailable", "cached": True}

    @circuit_breaker(CircuitBreakerConfig(
        name="external_api",
        failure_threshold=5,
        recovery_timeout=30.0,
        fallback=fallback_data
    ), clock=clock)
    def call_external_api(url: str) -> dict:
        response = requests.get(url)
        response.raise_for_status()
        return response.json()

    url = f"{server.url}/data"
    server.script(*[503] * 5)
    for _ in range(5):  # while closed, failures are raised, not answered by the fallback
        with pytest.raises(requests.HTTPError):
            call_external_api(url)
    assert call_external_api(url) == {"status": "unavailable", "cached": True}
    assert seen == [(CircuitBreakerError, url)]
    assert server.hits == 5


def test_circuit_breaker_configuration_options(clock: VirtualClock) -> None:
    from buttress import CircuitBreakerConfig, circuit_breaker

    config = CircuitBreakerConfig(
        name="service_name",     # Unique circuit name
        failure_threshold=5,     # Failures before opening circuit
        failure_window=60.0,     # Time window for counting failures (seconds)
        recovery_timeout=30.0,   # Time before testing recovery (seconds)
        success_threshold=2,     # Successes in HALF_OPEN to close circuit
        failure_exceptions={     # Exceptions that count as failures
            ConnectionError,
            TimeoutError,
            ServiceUnavailableError
        },
        ignored_exceptions={     # Exceptions to ignore
            ValueError,
            TypeError
        },
        fallback=None            # Optional fallback function
    )

    @circuit_breaker(config, clock=clock)
    def call(error: Exception | None) -> str:
        if error is not None:
            raise error
        return "ok"

    breaker = get_circuit_breaker("service_name")

    # Ignored and non-failure exceptions never open it.
    for error in (ValueError("v"), TypeError("t"), KeyError("k")) * 3:
        with pytest.raises(type(error)):
            call(error)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.stats.ignored_calls == 6

    # Five failures spread over more than the 60 s window: still closed.
    for error in (ConnectionError(), TimeoutError(), ServiceUnavailableError()) * 2:
        with pytest.raises(type(error)):
            call(error)
        clock.advance(20.0)
    assert breaker.state is CircuitState.CLOSED

    # Five failures within 60 s: open.
    breaker.reset()
    for _ in range(5):
        with pytest.raises(ConnectionError):
            call(ConnectionError())
        clock.advance(10.0)
    assert breaker.state is CircuitState.OPEN


def test_circuit_breaker_monitoring(server: FlakyServer, clock: VirtualClock,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from buttress import (
        CircuitBreakerConfig,
        circuit_breaker,
        get_all_circuit_breaker_stats,
        get_circuit_breaker_stats,
    )

    @circuit_breaker(CircuitBreakerConfig(name="external_api", failure_threshold=5,
                                          recovery_timeout=30.0), clock=clock)
    def call_external_api(url: str) -> dict:
        response = requests.get(url)
        response.raise_for_status()
        return response.json()

    @circuit_breaker(CircuitBreakerConfig(name="jira", failure_threshold=3), clock=clock)
    def call_jira() -> None:
        raise ConnectionError("jira down")

    server.script(503, 503)
    for _ in range(2):
        with pytest.raises(requests.HTTPError):
            call_external_api(f"{server.url}/data")
    for _ in range(3):
        with pytest.raises(ConnectionError):
            call_jira()

    # Get stats for specific circuit
    stats = get_circuit_breaker_stats("external_api")
    print(f"State: {stats['state']}")
    print(f"Failures: {stats['failure_count']}/{stats['failure_threshold']}")

    # Get stats for all circuits
    all_stats = get_all_circuit_breaker_stats()
    for name, stats in all_stats.items():
        print(f"{name}: {stats['state']} ({stats['failure_count']} failures)")

    assert capsys.readouterr().out.splitlines() == [
        "State: closed",
        "Failures: 2/5",
        "external_api: closed (2 failures)",
        "jira: open (0 failures)",
    ]
    assert get_circuit_breaker_stats("no_such_circuit") is None


# --- 3. Timeout Pattern ----------------------------------------------------------------


def test_sync_timeout(clock: VirtualClock) -> None:
    from buttress import timeout

    @timeout(timeout_seconds=5.0, clock=clock)
    def slow_operation():
        clock.sleep(10)  # was: time.sleep(10). Will raise TimeoutError after 5 seconds
        return "completed"

    @timeout(timeout_seconds=5.0, clock=clock)
    def quick_operation():
        clock.sleep(1)
        return "completed"

    with pytest.raises(TimeoutError) as caught:
        slow_operation()
    assert isinstance(caught.value, OperationTimeoutError)
    assert caught.value.timeout == 5.0
    assert "slow_operation" in str(caught.value)
    assert quick_operation() == "completed"


def test_sync_timeout_with_sigalrm_like_the_seed() -> None:
    from buttress import TimeoutConfig, timeout

    # The seed's sync timeout interrupts the call with SIGALRM (main thread, Unix);
    # buttress does that with use_signal=True. 10 ms of real time instead of 5 s.
    @timeout(TimeoutConfig(timeout_seconds=0.01, use_signal=True))
    def slow_operation():
        time.sleep(10)  # Will raise TimeoutError after 0.01 seconds
        return "completed"

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        slow_operation()
    assert time.monotonic() - started < 1.0


async def test_async_timeout(clock: VirtualClock) -> None:
    from buttress import async_timeout

    @async_timeout(timeout_seconds=5.0, clock=clock)
    async def slow_operation_async():
        await clock.async_sleep(10)  # was: asyncio.sleep(10). Will raise TimeoutError after 5 s
        return "completed"

    with pytest.raises(TimeoutError) as caught:
        await slow_operation_async()
    assert isinstance(caught.value, OperationTimeoutError)
    assert caught.value.timeout == 5.0

    with pytest.raises(TypeError, match="coroutine function"):
        @async_timeout(timeout_seconds=5.0)
        def not_async() -> None: ...


async def test_async_timeout_with_custom_configuration(server: FlakyServer,
                                                       clock: VirtualClock) -> None:
    from buttress import TimeoutConfig, async_timeout

    config = TimeoutConfig(
        timeout_seconds=10.0,
        exception_class=AppTimeoutError,
        error_message="Database query took too long",
        operation_name="database_query"
    )
    query_seconds = {"q": 0.0}

    @async_timeout(config, clock=clock)
    async def query_database(query: str):
        # Long-running query (stand-in: takes query_seconds of virtual time, then a request)
        await clock.async_sleep(query_seconds["q"])
        results = (await asyncio.to_thread(send, "GET", f"{server.url}/query")).json()
        return results

    assert await query_database("SELECT 1") == {"ok": True, "path": "/query"}
    query_seconds["q"] = 11.0
    with pytest.raises(AppTimeoutError, match=r"^Database query took too long$"):
        await query_database("SELECT pg_sleep(11)")


# --- Usage Examples ------------------------------------------------------------------


def test_example_1_retry_and_circuit_breaker(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import (
        CircuitBreakerConfig,
        RetryConfig,
        RetryStrategy,
        circuit_breaker,
        get_circuit_breaker_stats,
        retry,
    )

    class JiraClient:  # stand-in: a real request per search
        def search_issues(self, jql: str) -> dict:
            response = requests.get(f"{server.url}/search?jql={jql}")
            response.raise_for_status()
            return response.json()

    jira_client = JiraClient()

    # Configure resilience patterns
    retry_config = RetryConfig(
        max_attempts=3,
        base_delay=1.0,
        strategy=RetryStrategy.EXPONENTIAL
    )

    circuit_config = CircuitBreakerConfig(
        name="jira_api",
        failure_threshold=5,
        recovery_timeout=60.0
    )

    @retry(retry_config, clock=clock)
    @circuit_breaker(circuit_config, clock=clock)
    def search_jira_issues(jql: str):
        """Search Jira with retry and circuit breaker protection."""
        return jira_client.search_issues(jql)

    server.script(503, 200)
    assert search_jira_issues("project=X") == {"ok": True, "path": "/search?jql=project=X"}
    assert search_jira_issues.__doc__ == "Search Jira with retry and circuit breaker protection."

    server.script(*[503] * 10)
    with pytest.raises(RetryExhaustedError) as exhausted:
        search_jira_issues("project=X")  # 3 attempts, 3 consecutive failures
    assert exhausted.value.attempts == 3
    with pytest.raises(CircuitBreakerError):
        search_jira_issues("project=X")  # 2 more failures open it; attempt 3 rejected
    assert server.hits == 2 + 3 + 2
    with pytest.raises(CircuitBreakerError):
        search_jira_issues("project=X")  # fast-fail, no wasted retries
    assert server.hits == 7
    stats = get_circuit_breaker_stats("jira_api")
    assert stats is not None
    assert stats["state"] == "open"


async def test_example_2_async_api_call_with_all_three_patterns(
    server: FlakyServer, clock: VirtualClock
) -> None:
    from buttress import (
        CircuitBreakerConfig,
        RetryConfig,
        async_circuit_breaker,
        async_retry,
        async_timeout,
        get_circuit_breaker_stats,
    )

    api_key = "sk-test"
    url = f"{server.url}/v1/chat/completions"  # was: https://api.openai.com/...

    @async_retry(RetryConfig(max_attempts=3, base_delay=1.0), clock=clock)
    @async_circuit_breaker(CircuitBreakerConfig(
        name="llm_api",
        failure_threshold=5,
        recovery_timeout=30.0
    ), clock=clock)
    @async_timeout(timeout_seconds=30.0, clock=clock)
    async def call_llm(prompt: str) -> str:
        """Call LLM with full resilience protection."""
        async with aiohttp.ClientSession() as session:  # noqa: SIM117 (seed text)
            async with session.post(
                url,
                json={"model": "gpt-4", "messages": [{"role": "user", "content": prompt}]},
                headers={"Authorization": f"Bearer {api_key}"}
            ) as response:
                response.raise_for_status()
                data = await response.json()
                return data["path"]  # was: data["choices"][0]["message"]["content"]

    server.script(503, 429, 200)
    assert await call_llm("hello") == "/v1/chat/completions"
    assert server.hits == 3
    stats = get_circuit_breaker_stats("llm_api")
    assert stats is not None
    assert (stats["failed_calls"], stats["successful_calls"], stats["state"]) == (2, 1, "closed")


async def test_example_3_database_operations_with_retry(clock: VirtualClock) -> None:
    from buttress import RetryConfig, async_retry

    class Database:  # stand-in: real sqlite3; the first insert hits a lock
        def __init__(self) -> None:
            self.conn = sqlite3.connect(":memory:", isolation_level=None)
            self.conn.execute("CREATE TABLE table_name (payload TEXT)")
            self.locked_inserts = 1

        @asynccontextmanager
        async def transaction(self) -> AsyncIterator[None]:
            self.conn.execute("BEGIN")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

        async def insert(self, table: str, data: dict) -> None:
            if data.get("bad"):
                raise ValueError("invalid payload")
            if self.locked_inserts:
                self.locked_inserts -= 1
                raise DatabaseError("database is locked")
            self.conn.execute(f"INSERT INTO {table} VALUES (?)", (repr(data),))

    database = Database()

    @async_retry(RetryConfig(
        max_attempts=3,
        base_delay=0.5,
        retryable_exceptions={DatabaseError, ConnectionError}
    ), clock=clock)
    async def save_to_database(data: dict):
        """Save data with automatic retry on transient failures."""
        async with database.transaction():
            await database.insert("table_name", data)

    await save_to_database({"id": 1})
    assert database.conn.execute("SELECT COUNT(*) FROM table_name").fetchone() == (1,)
    assert len(clock.sleeps) == 1
    assert 0.45 <= clock.sleeps[0] <= 0.5

    with pytest.raises(ValueError, match="invalid payload"):  # not retryable: at once
        await save_to_database({"bad": True})
    assert len(clock.sleeps) == 1


def test_example_4_circuit_breaker_with_monitoring(server: FlakyServer, clock: VirtualClock,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    from buttress import CircuitBreakerConfig, circuit_breaker, get_circuit_breaker_stats

    logger = get_logger("seed3.app")

    def log_circuit_stats():
        """Log circuit breaker statistics."""
        stats = get_circuit_breaker_stats("external_service")
        if stats:
            logger.info(
                f"Circuit '{stats['name']}' status",
                extra={
                    "circuit_name": stats['name'],
                    "state": stats['state'],
                    "failure_count": stats['failure_count'],
                    "failure_threshold": stats['failure_threshold']
                }
            )

    with caplog.at_level(logging.INFO, logger="seed3.app"):
        log_circuit_stats()  # no such circuit yet: nothing logged
        assert caplog.records == []

        @circuit_breaker(CircuitBreakerConfig(
            name="external_service",
            failure_threshold=5,
            recovery_timeout=30.0
        ), clock=clock)
        def call_service():
            # Service call (stand-in: a real request)
            response = requests.get(f"{server.url}/service")
            response.raise_for_status()

        server.script(503, 503, 503)
        for _ in range(3):
            with pytest.raises(requests.HTTPError):
                call_service()
        log_circuit_stats()

    (record,) = caplog.records
    assert record.getMessage() == "Circuit 'external_service' status"
    assert (record.circuit_name, record.state, record.failure_count,
            record.failure_threshold) == ("external_service", "closed", 3, 5)


def test_example_5_custom_retry_condition(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import RetryConfig, retry

    def should_retry_on_status(exc: Exception) -> bool:
        """Only retry on specific HTTP status codes."""
        if hasattr(exc, 'response') and hasattr(exc.response, 'status_code'):
            # Retry on 429 (rate limit), 503 (unavailable), 504 (gateway timeout)
            return exc.response.status_code in [429, 503, 504]
        return False

    @retry(RetryConfig(
        max_attempts=5,
        base_delay=2.0,
        retry_condition=should_retry_on_status
    ), clock=clock)
    def api_call_with_smart_retry(url: str):
        response = requests.get(url)
        response.raise_for_status()
        return response.json()

    url = f"{server.url}/data"
    server.script(429, 503, 504, 200)
    assert api_call_with_smart_retry(url) == {"ok": True, "path": "/data"}
    assert server.hits == 4
    assert len(clock.sleeps) == 3

    server.script(500)
    with pytest.raises(requests.HTTPError) as caught:
        api_call_with_smart_retry(url)  # 500 is not in the list: raised at once
    assert caught.value.response.status_code == 500
    assert server.hits == 5


def test_example_5_custom_retry_condition_ignores_errors_without_response(
    closed_url: str, clock: VirtualClock
) -> None:
    from buttress import RetryConfig, retry

    def should_retry_on_status(exc: Exception) -> bool:
        if hasattr(exc, 'response') and hasattr(exc.response, 'status_code'):
            return exc.response.status_code in [429, 503, 504]
        return False

    @retry(RetryConfig(max_attempts=5, base_delay=2.0, retry_condition=should_retry_on_status),
           clock=clock)
    def api_call_with_smart_retry(url: str):
        response = requests.get(url)
        response.raise_for_status()
        return response.json()

    with pytest.raises(requests.ConnectionError):  # no response: the condition says no
        api_call_with_smart_retry(closed_url)
    assert clock.sleeps == []


# --- Recommended Applications --------------------------------------------------------------


def test_recommended_external_api_calls_jira(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import CircuitBreakerConfig, RetryConfig, circuit_breaker, retry

    class JiraSDK:  # stand-in for the reader's Jira SDK object
        def search_issues(self, jql: str) -> dict:
            response = requests.get(f"{server.url}/jira/search")
            response.raise_for_status()
            return {"jql": jql, **response.json()}

    class JiraClient:
        def __init__(self) -> None:
            self._jira_client = JiraSDK()

        @retry(RetryConfig(max_attempts=3), clock=clock)
        @circuit_breaker(CircuitBreakerConfig(name="jira", failure_threshold=5), clock=clock)
        def search_issues(self, jql: str):
            return self._jira_client.search_issues(jql)

    server.script(503, 503, 200)
    assert JiraClient().search_issues("a") == {"jql": "a", "ok": True, "path": "/jira/search"}
    assert server.hits == 3


async def test_recommended_database_operations_mongodb(clock: VirtualClock) -> None:
    from buttress import RetryConfig, async_retry

    class Collection:  # stand-in for a Motor collection: one transient failure
        def __init__(self) -> None:
            self.documents: list[dict] = []
            self.failures = 1

        async def insert_one(self, document: dict) -> None:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("primary stepped down")
            self.documents.append(document)

    class SessionRepository:
        def __init__(self) -> None:
            self.collection = Collection()

        @async_retry(RetryConfig(max_attempts=3, base_delay=0.5), clock=clock)
        async def save_message(self, message: dict):
            await self.collection.insert_one(message)

    repository = SessionRepository()
    await repository.save_message({"text": "hi"})
    assert repository.collection.documents == [{"text": "hi"}]
    assert len(clock.sleeps) == 1


async def test_recommended_llm_api_calls(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import (
        CircuitBreakerConfig,
        RetryConfig,
        async_circuit_breaker,
        async_retry,
        async_timeout,
        get_circuit_breaker_stats,
    )

    class LLM:  # stand-in: the first answer takes 31 s (virtual), then a real request
        def __init__(self) -> None:
            self.slow_answers = 1

        async def generate(self, prompt: str) -> str:
            if self.slow_answers:
                self.slow_answers -= 1
                await clock.async_sleep(31.0)
            return (await asyncio.to_thread(send, "POST", f"{server.url}/generate",
                                            {"prompt": prompt})).json()["path"]

    class LLMFactory:
        def __init__(self) -> None:
            self.llm = LLM()

        @async_retry(RetryConfig(max_attempts=3, base_delay=2.0), clock=clock)
        @async_circuit_breaker(CircuitBreakerConfig(name="openai", failure_threshold=5),
                               clock=clock)
        @async_timeout(timeout_seconds=30.0, clock=clock)
        async def generate(self, prompt: str):
            return await self.llm.generate(prompt)

    # Timeout + retry: the 31 s attempt times out at 30 s, counts as a breaker failure,
    # and the retry's second attempt answers.
    assert await LLMFactory().generate("hi") == "/generate"
    assert server.hits == 1
    stats = get_circuit_breaker_stats("openai")
    assert stats is not None
    assert (stats["failed_calls"], stats["successful_calls"]) == (1, 1)


def test_recommended_vector_database(clock: VirtualClock) -> None:
    from buttress import CircuitBreakerConfig, RetryConfig, circuit_breaker, retry

    class VectorStore:  # stand-in: in memory, one transient failure
        def __init__(self) -> None:
            self.documents: list[str] = []
            self.failures = 2

        def add_documents(self, documents: list[str]) -> list[int]:
            if self.failures:
                self.failures -= 1
                raise TimeoutError("vector db busy")
            self.documents.extend(documents)
            return list(range(len(documents)))

    class VectorDB:
        def __init__(self) -> None:
            self.vector_store = VectorStore()

        @retry(RetryConfig(max_attempts=3), clock=clock)
        @circuit_breaker(CircuitBreakerConfig(name="vectordb", failure_threshold=5),
                         clock=clock)
        def add_documents(self, documents: list[str]):
            return self.vector_store.add_documents(documents)

    db = VectorDB()
    assert db.add_documents(["a", "b"]) == [0, 1]
    assert db.vector_store.documents == ["a", "b"]
