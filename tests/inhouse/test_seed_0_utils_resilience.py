"""Seed S0 — ``utils.resilience`` (``seeds/000_bd9eb1b9a1dab812.txt``) on buttress.

Each test is one example of the seed with its import line changed to
``from buttress import ...`` (kept inside the test, next to the example). Where
an example waits (``base_delay=1.0``, recovery timeouts), ``clock=clock`` (a
``VirtualClock``) is added as the one extra keyword, so no test sleeps. The
reader's own code (``api_call()``, ``requests.get(...)``, ``get_db_connection()``,
``payment_api``, ``httpx``) is a minimal stand-in that calls the real loopback
``FlakyServer`` with urllib, or a real sqlite3 database.

Ported:

* Key Components §1 — the four retry strategies and their delay schedules
* Quick Start — Basic Retry Decorator (``retry_with_backoff`` + ``RetryStrategy``)
* Quick Start — HTTP Requests with Resilience (``retry_http_request``)
* Quick Start — Database Operations (``retry_database_operation``)
* Quick Start — Async Operations (``async_retry_with_backoff`` and its result object)
* Configuration — Retry Configuration (``RetryConfig``)
* Configuration — Circuit Breaker Configuration (``CircuitBreakerConfig``,
  ``get_circuit_breaker``)
* Advanced Usage — Custom Callbacks (``on_retry``, ``on_failure``, ``on_success``)
* Best Practices §2 (reasonable timeouts), §3 (specific exceptions), §4 (circuit
  breakers for external dependencies, ``retry_http_request(circuit_breaker=...)``)
* Example Configuration File — each entry of the JSON is accepted as is by
  ``RetryConfig(**entry)`` / ``CircuitBreakerConfig(**entry)`` (only the entries;
  the loader is not portable yet, see below)
* Integration Examples — GitHub API Client (async method), Database Layer
* Migration Guide — From Basic Requests, From Manual Retry Logic

Not portable yet (they use names buttress does not have today):

* Advanced Usage — Metrics Collection: ``with_metrics``, ``resilience_metrics``
  (``get_metrics``, ``get_success_rate``, ``export_metrics``)
* Advanced Usage — Health Checks with Circuit Breakers: ``health_check_with_circuit_breaker``
* Best Practices §5 — Monitor and Alert on Circuit Breaker States: ``get_resilience_status``
* Configuration Files — Loading Configuration from JSON: ``resilience_config``
  (``load_from_file``, ``save_to_file``)
* Monitoring and Observability — Real-time Status: ``get_resilience_status``
  (``status['success_rate']``, ``status['metrics']['total_operations']``,
  ``status['circuit_breakers']``)
* Monitoring and Observability — Metrics Export: ``resilience_metrics``
  (``export_metrics``, ``operation_history``)

Nothing to port:

* Troubleshooting — Debugging: ``logging.getLogger('utils.resilience')`` names no
  buttress API; buttress logs under the ``buttress`` logger.
* Migration Guide "Before" snippets and ``pytest`` command lines (no buttress code).

Documented difference: with no ``jitter`` given, every strategy gets buttress's
default jitter factor 0.1 (the ``svc_infra`` seed's default), so the plain
EXPONENTIAL_BACKOFF schedule "1s, 2s, 4s" of this seed comes out as waits in
``[0.9 d, d]``; ``jitter=False`` gives the exact schedule (see the strategies test).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from buttress import CircuitBreakerError, CircuitState, RetryExhaustedError
from buttress.flaky_server import FlakyServer
from buttress.testing import VirtualClock

from ._documents import EXAMPLE_CONFIGURATION_FILE
from ._standins import fetch_json, httpx, requests

logger = logging.getLogger("seed0.app")


def _between(value: float, low: float, high: float) -> bool:
    return low - 1e-9 <= value <= high + 1e-9


def _within_jitter(sleeps: list[float], schedule: list[float], jitter: float) -> bool:
    """Each wait lies in [d * (1 - jitter), d] for its scheduled d."""
    return len(sleeps) == len(schedule) and all(
        _between(s, d * (1 - jitter), d) for s, d in zip(sleeps, schedule, strict=True)
    )


# --- Key Components §1: retry strategies --------------------------------------------------


@pytest.mark.parametrize(
    ("strategy_name", "schedule"),
    [
        ("EXPONENTIAL_BACKOFF", [1.0, 2.0, 4.0, 8.0]),  # "1s, 2s, 4s, 8s..."
        ("LINEAR_BACKOFF", [1.0, 2.0, 3.0, 4.0]),  # "1s, 2s, 3s, 4s..."
        ("FIXED_DELAY", [1.0, 1.0, 1.0, 1.0]),  # "Constant delay between retries"
    ],
)
def test_retry_strategies_delay_schedules(
    strategy_name: str, schedule: list[float], clock: VirtualClock
) -> None:
    from buttress import RetryStrategy, retry_with_backoff

    strategy = RetryStrategy[strategy_name]
    calls = 0

    # jitter=False: the seed's schedules are the un-randomised ones.
    @retry_with_backoff(max_attempts=5, base_delay=1.0, strategy=strategy, jitter=False,
                        clock=clock)
    def always_fails() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("down")

    with pytest.raises(RetryExhaustedError):
        always_fails()
    assert calls == 5
    assert clock.sleeps == schedule


def test_jittered_exponential_randomises_below_the_exponential_schedule(
    clock: VirtualClock,
) -> None:
    from buttress import RetryStrategy, retry_with_backoff

    @retry_with_backoff(max_attempts=5, base_delay=1.0,
                        strategy=RetryStrategy.JITTERED_EXPONENTIAL, jitter=True, clock=clock)
    def always_fails() -> None:
        raise ConnectionError("down")

    with pytest.raises(RetryExhaustedError):
        always_fails()
    # "Exponential backoff with randomization": jitter=True is a factor of 0.5.
    assert _within_jitter(clock.sleeps, [1.0, 2.0, 4.0, 8.0], 0.5)


# --- Quick Start ----------------------------------------------------------------------


def test_basic_retry_decorator(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import RetryStrategy, retry_with_backoff

    def api_call() -> Any:  # stand-in for the reader's call: a real HTTP GET
        return fetch_json(f"{server.url}/data")

    @retry_with_backoff(
        max_attempts=3,
        base_delay=1.0,
        strategy=RetryStrategy.EXPONENTIAL_BACKOFF,
        clock=clock,  # the one extra keyword: virtual time instead of 3 s of sleeping
    )
    def unreliable_operation():
        # Your operation here
        return api_call()

    server.script(503, 503, 200)
    assert unreliable_operation() == {"ok": True, "path": "/data"}
    assert server.hits == 3
    # Exponential 1s, 2s (with buttress's default jitter 0.1, see module docstring).
    assert _within_jitter(clock.sleeps, [1.0, 2.0], 0.1)


def test_basic_retry_decorator_gives_up_after_max_attempts(
    server: FlakyServer, clock: VirtualClock
) -> None:
    from buttress import RetryStrategy, retry_with_backoff

    def api_call() -> Any:
        return fetch_json(f"{server.url}/data")

    @retry_with_backoff(
        max_attempts=3,
        base_delay=1.0,
        strategy=RetryStrategy.EXPONENTIAL_BACKOFF,
        clock=clock,
    )
    def unreliable_operation():
        return api_call()

    server.script(503, 503, 503, 200)
    with pytest.raises(RetryExhaustedError) as caught:
        unreliable_operation()
    assert server.hits == 3  # max_attempts counts every call, the first included
    assert caught.value.attempts == 3
    assert getattr(caught.value.last_exception, "code", None) == 503
    assert caught.value.__cause__ is caught.value.last_exception


def test_http_requests_with_resilience(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import retry_http_request

    @retry_http_request(max_attempts=3, base_delay=1.0, clock=clock)
    def fetch_data():
        response = requests.get(f"{server.url}/data")
        response.raise_for_status()
        return response.json()

    server.script(503, 502, 200)
    assert fetch_data() == {"ok": True, "path": "/data"}
    assert server.hits == 3
    assert len(clock.sleeps) == 2
    assert all(0.0 < s <= cap for s, cap in zip(clock.sleeps, [1.0, 2.0], strict=True))


def _users_db(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO users VALUES (1, 'ada'), (2, 'grace')")
    db.close()


class LockedDatabase:
    """Stand-in for the reader's ``get_db_connection()``: real sqlite3 connections to a
    file that another connection holds an EXCLUSIVE lock on, so reads fail with the
    real ``sqlite3.OperationalError: database is locked`` until the lock is released
    (here: once ``failures`` connections have been handed out)."""

    def __init__(self, path: Path, failures: int) -> None:
        self.path = path
        self.failures = failures
        self.opened = 0
        self.locker = sqlite3.connect(path, isolation_level=None)
        self.locker.execute("BEGIN EXCLUSIVE")

    def __call__(self) -> sqlite3.Connection:
        self.opened += 1
        if self.opened > self.failures and self.locker.in_transaction:
            self.locker.execute("COMMIT")
        return sqlite3.connect(self.path, timeout=0)

    def close(self) -> None:
        if self.locker.in_transaction:
            self.locker.execute("COMMIT")
        self.locker.close()


def test_database_operations(tmp_path: Path, clock: VirtualClock) -> None:
    from buttress import retry_database_operation

    _users_db(tmp_path / "app.db")
    get_db_connection = LockedDatabase(tmp_path / "app.db", failures=2)

    @retry_database_operation(max_attempts=3, base_delay=0.5, clock=clock)
    def get_user(user_id):
        with get_db_connection() as conn:
            cursor = conn.cursor()
            cursor.execute("SELECT * FROM users WHERE id = ?", (user_id,))
            return cursor.fetchone()

    try:
        assert get_user(2) == (2, "grace")
    finally:
        get_db_connection.close()
    assert get_db_connection.opened == 3
    assert _within_jitter(clock.sleeps, [0.5, 1.0], 0.1)


def test_database_operations_give_up_while_locked(tmp_path: Path, clock: VirtualClock) -> None:
    from buttress import retry_database_operation

    _users_db(tmp_path / "app.db")
    get_db_connection = LockedDatabase(tmp_path / "app.db", failures=10)

    @retry_database_operation(max_attempts=3, base_delay=0.5, clock=clock)
    def get_user(user_id):
        with get_db_connection() as conn:
            cursor = conn.cursor()
            cursor.execute("SELECT * FROM users WHERE id = ?", (user_id,))
            return cursor.fetchone()

    try:
        with pytest.raises(RetryExhaustedError) as caught:
            get_user(1)
    finally:
        get_db_connection.close()
    assert caught.value.attempts == 3
    assert isinstance(caught.value.last_exception, sqlite3.OperationalError)
    assert "locked" in str(caught.value.last_exception)


async def test_async_operations_success(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import async_retry_with_backoff

    async def make_async_request():  # stand-in: an httpx-style GET of the loopback server
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{server.url}/data")
            response.raise_for_status()
            return response.json()

    results = []

    async def fetch_async_data():
        result = await async_retry_with_backoff(
            make_async_request,
            max_attempts=3,
            base_delay=1.0,
            exceptions=(httpx.RequestError, httpx.TimeoutException),
            clock=clock,  # the one extra keyword
        )
        results.append(result)

        if not result.success:
            raise result.last_exception

        return await make_async_request()

    assert await fetch_async_data() == {"ok": True, "path": "/data"}
    (result,) = results
    assert result.success is True
    assert result.value == {"ok": True, "path": "/data"}
    assert result.attempts == 1
    assert result.last_exception is None
    assert server.hits == 2  # the example calls make_async_request() once more


async def test_async_operations_exhausted(closed_url: str, clock: VirtualClock) -> None:
    from buttress import async_retry_with_backoff

    async def make_async_request():  # nothing listens: httpx.ConnectError every time
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{closed_url}/data")
            response.raise_for_status()
            return response.json()

    results = []

    async def fetch_async_data():
        result = await async_retry_with_backoff(
            make_async_request,
            max_attempts=3,
            base_delay=1.0,
            exceptions=(httpx.RequestError, httpx.TimeoutException),
            clock=clock,
        )
        results.append(result)

        if not result.success:
            raise result.last_exception

        return await make_async_request()

    with pytest.raises(httpx.ConnectError):
        await fetch_async_data()
    (result,) = results
    assert result.success is False
    assert result.value is None
    assert result.attempts == 3
    assert isinstance(result.last_exception, httpx.ConnectError)
    assert len(clock.sleeps) == 2


async def test_async_operations_do_not_retry_unlisted_exceptions(
    server: FlakyServer, clock: VirtualClock
) -> None:
    from buttress import async_retry_with_backoff

    async def make_async_request():
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{server.url}/data")
            response.raise_for_status()  # HTTPStatusError: not a RequestError
            return response.json()

    server.script(503)
    result = await async_retry_with_backoff(
        make_async_request,
        max_attempts=3,
        base_delay=1.0,
        exceptions=(httpx.RequestError, httpx.TimeoutException),
        clock=clock,
    )
    assert result.success is False
    assert result.attempts == 1
    assert isinstance(result.last_exception, httpx.HTTPStatusError)
    assert server.hits == 1
    assert clock.sleeps == []


# --- Configuration -------------------------------------------------------------------


def test_retry_configuration(clock: VirtualClock) -> None:
    from buttress import RetryConfig, RetryStrategy

    config = RetryConfig(
        max_attempts=5,           # Maximum retry attempts
        base_delay=1.0,          # Base delay in seconds
        max_delay=60.0,          # Maximum delay cap
        exponential_base=2.0,    # Exponential multiplier
        strategy=RetryStrategy.JITTERED_EXPONENTIAL,
        jitter=True,             # Add randomization
        exceptions=(Exception,)   # Exceptions to retry on
    )

    assert config.max_attempts == 5
    assert config.base_delay == 1.0
    assert config.max_delay == 60.0
    assert config.exponential_base == 2.0
    assert config.strategy is RetryStrategy.JITTERED_EXPONENTIAL
    assert config.exceptions == (Exception,)

    from buttress import retry_with_backoff

    calls = 0

    @retry_with_backoff(config, clock=clock)
    def always_fails() -> None:
        nonlocal calls
        calls += 1
        raise OSError("flaky")

    with pytest.raises(RetryExhaustedError) as caught:
        always_fails()
    assert calls == caught.value.attempts == 5
    assert _within_jitter(clock.sleeps, [1.0, 2.0, 4.0, 8.0], 0.5)


def test_retry_configuration_caps_delays_at_max_delay(clock: VirtualClock) -> None:
    from buttress import RetryConfig, RetryStrategy, retry_with_backoff

    config = RetryConfig(max_attempts=10, base_delay=1.0, max_delay=60.0, exponential_base=2.0,
                         strategy=RetryStrategy.EXPONENTIAL_BACKOFF, jitter=False)

    @retry_with_backoff(config, clock=clock)
    def always_fails() -> None:
        raise OSError("flaky")

    with pytest.raises(RetryExhaustedError):
        always_fails()
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]


def test_circuit_breaker_configuration(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import CircuitBreakerConfig, get_circuit_breaker

    config = CircuitBreakerConfig(
        failure_threshold=5,      # Failures before opening
        recovery_timeout=60.0,    # Seconds before attempting recovery
        name="external_api"       # Circuit breaker name
    )

    circuit_breaker = get_circuit_breaker("external_api", config, clock=clock)

    def api_call() -> Any:
        return fetch_json(f"{server.url}/data")

    assert get_circuit_breaker("external_api") is circuit_breaker
    assert get_circuit_breaker("external_api", config) is circuit_breaker

    # "Opening circuit after failure threshold"
    server.script(*[503] * 5)
    for _ in range(5):
        with pytest.raises(urllib.error.HTTPError):
            circuit_breaker.call(api_call)
    assert circuit_breaker.state is CircuitState.OPEN

    # "Providing fail-fast behavior when services are down"
    with pytest.raises(CircuitBreakerError) as caught:
        circuit_breaker.call(api_call)
    assert server.hits == 5
    assert caught.value.name == "external_api"
    assert caught.value.state is CircuitState.OPEN
    assert caught.value.remaining_timeout == 60.0

    # "Allowing recovery after timeout period"
    clock.advance(59.0)
    with pytest.raises(CircuitBreakerError):
        circuit_breaker.call(api_call)
    clock.advance(1.0)
    assert circuit_breaker.call(api_call) == {"ok": True, "path": "/data"}
    assert circuit_breaker.state is CircuitState.HALF_OPEN
    assert circuit_breaker.call(api_call) == {"ok": True, "path": "/data"}
    assert circuit_breaker.state is CircuitState.CLOSED
    assert server.hits == 7


def test_circuit_breaker_configuration_rejects_a_conflicting_second_config() -> None:
    from buttress import CircuitBreakerConfig, ConfigurationError, get_circuit_breaker

    get_circuit_breaker("external_api", CircuitBreakerConfig(
        failure_threshold=5, recovery_timeout=60.0, name="external_api"))
    with pytest.raises(ConfigurationError, match="failure_threshold"):
        get_circuit_breaker("external_api", CircuitBreakerConfig(
            failure_threshold=3, recovery_timeout=60.0, name="external_api"))


# --- Advanced Usage: Custom Callbacks --------------------------------------------------


def test_custom_callbacks_on_success(caplog: pytest.LogCaptureFixture,
                                     clock: VirtualClock) -> None:
    from buttress import retry_with_backoff

    def on_retry(attempt, exception):
        logger.warning(f"Retry attempt {attempt}: {exception}")

    def on_failure(attempts, exception):
        logger.error(f"Operation failed after {attempts} attempts: {exception}")

    def on_success(attempts, duration):
        logger.info(f"Operation succeeded after {attempts} attempts in {duration}s")

    outcomes = iter([ConnectionError("blip"), "done"])

    def risky_operation():  # stand-in: fails once, then answers
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    @retry_with_backoff(
        max_attempts=3,
        on_retry=on_retry,
        on_failure=on_failure,
        on_success=on_success,
        clock=clock,  # the default base_delay (0.1 s) would otherwise really sleep
    )
    def monitored_operation():
        return risky_operation()

    with caplog.at_level(logging.INFO, logger="seed0.app"):
        assert monitored_operation() == "done"
    messages = [r.getMessage() for r in caplog.records if r.name == "seed0.app"]
    (waited,) = clock.sleeps
    assert messages == [
        "Retry attempt 1: blip",
        f"Operation succeeded after 2 attempts in {waited}s",
    ]


def test_custom_callbacks_on_failure(caplog: pytest.LogCaptureFixture,
                                     clock: VirtualClock) -> None:
    from buttress import retry_with_backoff

    def on_retry(attempt, exception):
        logger.warning(f"Retry attempt {attempt}: {exception}")

    def on_failure(attempts, exception):
        logger.error(f"Operation failed after {attempts} attempts: {exception}")

    def on_success(attempts, duration):
        logger.info(f"Operation succeeded after {attempts} attempts in {duration}s")

    failures = iter(range(1, 10))

    def risky_operation():
        raise ConnectionError(f"down #{next(failures)}")

    @retry_with_backoff(
        max_attempts=3,
        on_retry=on_retry,
        on_failure=on_failure,
        on_success=on_success,
        clock=clock,
    )
    def monitored_operation():
        return risky_operation()

    with caplog.at_level(logging.INFO, logger="seed0.app"), \
            pytest.raises(RetryExhaustedError) as caught:
        monitored_operation()
    messages = [r.getMessage() for r in caplog.records if r.name == "seed0.app"]
    assert messages == [
        "Retry attempt 1: down #1",
        "Retry attempt 2: down #2",
        "Operation failed after 3 attempts: down #3",
    ]
    assert caught.value.attempts == 3
    assert str(caught.value.last_exception) == "down #3"


# --- Best Practices ------------------------------------------------------------------


def test_best_practice_reasonable_timeouts(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import retry_http_request, retry_with_backoff

    # Good: Reasonable timeouts
    @retry_http_request(max_attempts=3, base_delay=1.0, max_delay=30.0, clock=clock)
    def fetch_data():
        response = requests.get(f"{server.url}/data")
        response.raise_for_status()
        return response.json()

    server.script(503, 503, 503)
    with pytest.raises(RetryExhaustedError):
        fetch_data()
    assert server.hits == 3
    assert len(clock.sleeps) == 2
    assert all(s <= 30.0 for s in clock.sleeps)

    # Avoid: Too many attempts or too long delays (it works, it is just too much)
    long_clock = VirtualClock()
    calls = 0

    @retry_with_backoff(max_attempts=20, max_delay=300.0, clock=long_clock)  # Don't do this
    def stubborn():
        nonlocal calls
        calls += 1
        raise ConnectionError("down")

    with pytest.raises(RetryExhaustedError):
        stubborn()
    assert calls == 20
    assert all(s <= 300.0 for s in long_clock.sleeps)
    assert long_clock.sleeps[-1] >= 300.0 * 0.9  # capped, minus the default jitter
    assert long_clock.now > 300.0 * 5  # minutes of waiting for one call


def test_best_practice_handle_specific_exceptions(clock: VirtualClock) -> None:
    from buttress import retry_with_backoff

    calls: list[str] = []
    failures = iter([requests.ConnectionError("refused"), requests.Timeout("slow"),
                     requests.ConnectionError("refused again")])

    # Good: Specific exceptions
    @retry_with_backoff(
        exceptions=(requests.ConnectionError, requests.Timeout),
        clock=clock,
    )
    def fetch():
        error = next(failures)
        calls.append(type(error).__name__)
        raise error

    with pytest.raises(RetryExhaustedError) as caught:
        fetch()
    assert calls == ["RequestsConnectionError", "RequestsTimeout", "RequestsConnectionError"]
    assert caught.value.attempts == 3
    assert str(caught.value.last_exception) == "refused again"

    validation_calls = 0

    @retry_with_backoff(exceptions=(requests.ConnectionError, requests.Timeout), clock=clock)
    def validate():
        nonlocal validation_calls
        validation_calls += 1
        raise ValueError("bad input")

    # An exception outside the list is raised as is, at once.
    with pytest.raises(ValueError, match="bad input"):
        validate()
    assert validation_calls == 1


def test_best_practice_circuit_breakers_for_external_dependencies(
    server: FlakyServer, clock: VirtualClock
) -> None:
    from buttress import get_circuit_breaker_stats, retry_http_request

    class PaymentAPI:  # stand-in for the reader's payment client: a real POST
        def charge(self, amount):
            response = requests.post(f"{server.url}/charge", json={"amount": amount})
            response.raise_for_status()
            return response.json()

    payment_api = PaymentAPI()

    @retry_http_request(circuit_breaker="payment_api", clock=clock)
    def process_payment(amount):
        return payment_api.charge(amount)

    server.script(503, 200)
    assert process_payment(10) == {"ok": True, "path": "/charge"}
    assert server.hits == 2

    # The dependency goes down: retries feed the shared "payment_api" breaker
    # (default failure_threshold 5) until it opens and then fails fast.
    server.script(*[503] * 10)
    with pytest.raises(RetryExhaustedError):
        process_payment(10)  # 3 attempts: 3 consecutive failures
    with pytest.raises(CircuitBreakerError) as caught:
        process_payment(10)  # attempt 2 is the 5th failure: open; attempt 3 rejected
    assert caught.value.name == "payment_api"
    assert caught.value.state is CircuitState.OPEN
    assert 0.0 < caught.value.remaining_timeout <= 30.0
    assert server.hits == 2 + 3 + 2

    with pytest.raises(CircuitBreakerError):
        process_payment(10)  # no request reaches the server, and no retries
    assert server.hits == 7
    stats = get_circuit_breaker_stats("payment_api")
    assert stats is not None
    assert stats["state"] == "open"
    assert stats["failed_calls"] == 1 + 5
    assert stats["rejected_calls"] == 2


# --- Example Configuration File (entries only) --------------------------------------------



def test_example_configuration_file_entries_are_valid_configs() -> None:
    from buttress import CircuitBreakerConfig, RetryConfig, RetryStrategy

    document = json.loads(EXAMPLE_CONFIGURATION_FILE)
    http = RetryConfig(**document["retry_configs"]["http_requests"])
    database = RetryConfig(**document["retry_configs"]["database"])
    assert http.strategy is RetryStrategy.JITTERED_EXPONENTIAL
    assert (http.max_attempts, http.base_delay, http.max_delay) == (3, 1.0, 30.0)
    assert database.strategy is RetryStrategy.EXPONENTIAL_BACKOFF
    assert (database.base_delay, database.max_delay) == (0.5, 10.0)

    breakers = {name: CircuitBreakerConfig(**entry)
                for name, entry in document["circuit_breaker_configs"].items()}
    assert breakers["external_apis"].failure_threshold == 5
    assert breakers["external_apis"].recovery_timeout == 60.0
    assert breakers["database"].name == "database"
    assert breakers["database"].failure_threshold == 3


# --- Integration Examples ------------------------------------------------------------


async def test_github_api_client(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import get_circuit_breaker_stats, retry_http_request

    class GitHubClient:
        @retry_http_request(circuit_breaker="github_api", clock=clock)
        async def get_repository(self, owner, repo):
            async with httpx.AsyncClient() as client:
                response = await client.get(f"{server.url}/repos/{owner}/{repo}")
                response.raise_for_status()
                return response.json()

    server.script(503, 200)
    repository = await GitHubClient().get_repository("python", "cpython")
    assert repository == {"ok": True, "path": "/repos/python/cpython"}
    assert server.hits == 2
    stats = get_circuit_breaker_stats("github_api")
    assert stats is not None
    assert (stats["total_calls"], stats["failed_calls"], stats["state"]) == (2, 1, "closed")


def test_database_layer(tmp_path: Path, clock: VirtualClock) -> None:
    from buttress import retry_database_operation

    _users_db(tmp_path / "app.db")
    connections = LockedDatabase(tmp_path / "app.db", failures=1)

    class DatabaseLayer:
        def get_connection(self):  # stand-in: the reader's connection factory
            return connections()

        @retry_database_operation(clock=clock)
        def execute_query(self, query, params=None):
            with self.get_connection() as conn:
                cursor = conn.cursor()
                cursor.execute(query, params or ())
                return cursor.fetchall()

    try:
        rows = DatabaseLayer().execute_query("SELECT name FROM users ORDER BY id")
    finally:
        connections.close()
    assert rows == [("ada",), ("grace",)]
    assert connections.opened == 2
    assert _within_jitter(clock.sleeps, [0.5], 0.1)  # the database defaults: 0.5 s base


# --- Migration Guide -----------------------------------------------------------------


def test_migration_from_basic_requests(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import retry_http_request

    @retry_http_request(clock=clock)
    def fetch_data():
        response = requests.get(server.url)
        response.raise_for_status()
        return response

    server.script(503)
    result = fetch_data()
    assert result.status_code == 200
    assert server.hits == 2


def test_migration_from_manual_retry_logic(clock: VirtualClock) -> None:
    from buttress import retry_with_backoff

    attempts = 0
    succeeds_on = 3

    def risky_operation():  # stand-in: fails until attempt ``succeeds_on``
        nonlocal attempts
        attempts += 1
        if attempts < succeeds_on:
            raise OSError(f"attempt {attempts} failed")
        return "ok"

    @retry_with_backoff(max_attempts=3, clock=clock)
    def safe_operation():
        return risky_operation()

    result = safe_operation()
    assert result == "ok"
    assert attempts == 3

    attempts, succeeds_on = 0, 99
    with pytest.raises(RetryExhaustedError) as caught:
        safe_operation()
    assert attempts == caught.value.attempts == 3
    assert str(caught.value.last_exception) == "attempt 3 failed"
