"""Seed S1 — ``pynomaly.infrastructure.resilience`` (``seeds/001_6f70dcf2bc98fc51.txt``):
its presets, ``resilient``, ``resilient_context`` and environment examples; and the
``resilience_config`` file examples of seed S0 (``utils.resilience``,
``seeds/000_bd9eb1b9a1dab812.txt``).

Each test is one example with its import line changed to ``from buttress import ...``
(kept inside the test). Where an example would wait, ``clock=clock`` (a
``VirtualClock``) is the one extra keyword. The reader's own code is a small
stand-in doing the real thing: ``query`` runs SQL on a real sqlite3 database,
``http_post``/``async_http_post`` and the S3 upload talk to the loopback
``FlakyServer``, URLs point at that server instead of ``api.example.com``.

Ported (S1):

* Quick Start — Basic Usage, Async Operations (``database_resilient``, ``api_resilient``)
* Operation Types — Database, Cache, HTTP API, S3 File and ML Operations, each with its
  "Default Settings"
* Configuration — Environment Variables (the ``PYNOMALY_*`` block, through
  ``load_env(prefix="PYNOMALY_")``) and Custom Configuration (``resilient``)
* Context Managers (``resilient_context``, ``ctx.call``, ``ctx.acall``; sync and async)
* Best Practices §2 (timeouts), §3 (retry settings), §5 (handle exceptions gracefully;
  ``from tenacity import RetryError`` becomes ``from buttress import RetryError``)
* Error Handling — Fallback Patterns

Ported (S0, ``resilience_config``):

* Configuration Files — Loading Configuration from JSON (``load_from_file``,
  ``save_to_file``) with the seed's Example Configuration File, verbatim

Ported in other modules:

* Error Handling — Exception Types: ``test_seed_1_pynomaly.py``
* Testing — Unit Testing (``reset_resilience_state`` + ``database_resilient``), Health
  Monitoring, Best Practices §4: ``test_seed_1_observability.py``

Not ported here:

* FastAPI Integration — Endpoint Decoration: ported in ``test_seed_1_fastapi.py``
* Resilient Clients, Client Health Checks, Testing — Integration Testing:
  ``get_database_client`` (``test_seed_1_database.py``), ``get_redis_client`` and
  ``get_s3_client`` (``test_seed_1_cache_storage.py``), ``get_http_client``
  (``test_seed_1_http.py``)

Documented meaning: ``max_attempts`` counts every call, the first included; only
transient failures are retried by default (connection errors, timeouts, 5xx/429 for
``api``, driver ``OperationalError`` for ``database``/``cache``) unless
``retry_exceptions`` says otherwise; an open breaker is never retried, so with
``failure_threshold`` below ``max_attempts`` the breaker cuts a failing call short.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from buttress import CircuitBreakerError, OperationTimeoutError, RetryExhaustedError
from buttress.config import reset_settings
from buttress.flaky_server import FlakyServer
from buttress.testing import VirtualClock

from ._documents import EXAMPLE_CONFIGURATION_FILE
from ._standins import HTTPError, closed_port_url, httpx, requests, send

logger = logging.getLogger("seed1.app")


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    reset_settings()
    yield
    reset_settings()


@pytest.fixture
def users_db(tmp_path: Path) -> Path:
    """A real sqlite3 database with a ``users`` table."""
    path = tmp_path / "users.db"
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, status TEXT)")
        conn.executemany("INSERT INTO users VALUES (?, ?, ?)",
                         [(1, "Ann", "new"), (2, "Bob", "new")])
    return path


def _query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The reader's ``query``: one statement on a fresh connection (``%s`` placeholders,
    as with psycopg), no waiting for locks."""
    with closing(sqlite3.connect(db, timeout=0)) as conn, conn:
        return conn.execute(sql.replace("%s", "?"), params).fetchall()


def _http_post(url: str, json: Any = None) -> Any:
    """The reader's ``http_post``: POST, raise on an error status, decode the answer."""
    response = requests.post(url, json=json)
    response.raise_for_status()
    return response.json()


async def _async_http_post(url: str, json: Any = None) -> Any:
    async with httpx.AsyncClient() as client:
        response = await client.post(url, json=json)
        response.raise_for_status()
        return response.json()


def _settings(fn: Any) -> tuple[float, int, float, float, int, float]:
    """A decorated function's (timeout, max attempts, base delay, max delay,
    failure threshold, recovery timeout), as the seed's "Default Settings" list them."""
    protect = fn.resilience
    return (protect.timeout_config.timeout_seconds, protect.retry_config.max_attempts,
            protect.retry_config.base_delay, protect.retry_config.max_delay,
            protect.circuit_breaker_config.failure_threshold,
            protect.circuit_breaker_config.recovery_timeout)


def _within(waits: list[float], schedule: list[float]) -> bool:
    """Each wait lies in [d/2, d] (the presets' jitter factor is 0.5)."""
    return len(waits) == len(schedule) and all(
        d * 0.5 - 1e-9 <= w <= d + 1e-9 for w, d in zip(waits, schedule, strict=True))


# --- Quick Start --------------------------------------------------------------------------


def test_quick_start_basic_usage(server: FlakyServer, users_db: Path,
                                 clock: VirtualClock) -> None:
    from buttress import api_resilient, database_resilient

    def query(sql: str, params: tuple[Any, ...]) -> Any:
        return _query(users_db, sql, params)

    def http_post(url: str, json: Any) -> Any:
        return _http_post(url, json)

    # Database operation with default resilience
    @database_resilient(operation_name="get_user", clock=clock)
    def get_user(user_id: int):
        return query("SELECT * FROM users WHERE id = %s", (user_id,))

    # API operation with custom settings
    @api_resilient(
        operation_name="payment_api",
        timeout_seconds=30.0,
        max_attempts=3,
        clock=clock,
    )
    def process_payment(payment_data: dict):
        return http_post(f"{server.url}/charge", json=payment_data)

    assert get_user(1) == [(1, "Ann", "new")]
    server.script(503, 502, 200)
    assert process_payment({"amount": 100}) == {"ok": True, "path": "/charge"}
    assert server.hits == 3
    assert _settings(process_payment) == (30.0, 3, 1.0, 30.0, 5, 60.0)


async def test_quick_start_async_operations(server: FlakyServer, users_db: Path,
                                            clock: VirtualClock) -> None:
    from buttress import api_resilient, database_resilient

    async def async_query(sql: str, params: tuple[Any, ...]) -> Any:
        return await asyncio.to_thread(_query, users_db, sql, params)

    async def async_http_post(url: str, json: Any) -> Any:
        return await _async_http_post(url, json)

    @database_resilient(operation_name="async_get_user", clock=clock)
    async def async_get_user(user_id: int):
        return await async_query("SELECT * FROM users WHERE id = %s", (user_id,))

    @api_resilient(operation_name="async_payment", clock=clock)
    async def async_process_payment(payment_data: dict):
        return await async_http_post(f"{server.url}/charge", json=payment_data)

    assert await async_get_user(2) == [(2, "Bob", "new")]
    server.script(503, 200)
    assert await async_process_payment({"amount": 5}) == {"ok": True, "path": "/charge"}
    assert server.hits == 2
    assert _within(clock.sleeps, [1.0])


# --- Operation Types ----------------------------------------------------------------------


def test_database_operations(users_db: Path, clock: VirtualClock) -> None:
    from buttress import database_resilient

    def query(sql: str, params: tuple[Any, ...]) -> Any:
        return _query(users_db, sql, params)

    # Another connection holds the database for 0.1 s: a real, transient failure.
    holder = sqlite3.connect(users_db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    clock.call_later(0.1, lambda: holder.execute("COMMIT"))

    @database_resilient(operation_name="user_lookup", clock=clock)
    def get_user(user_id: int):
        # Automatic retry with exponential backoff
        # Circuit breaker protection
        # 30-second timeout
        return query("SELECT * FROM users WHERE id = %s", (user_id,))

    try:
        assert get_user(1) == [(1, "Ann", "new")]
    finally:
        holder.close()
    assert _within(clock.sleeps, [0.5])  # "database is locked" once, then retried
    assert _settings(get_user) == (30.0, 3, 0.5, 10.0, 3, 30.0)


async def test_cache_operations(clock: VirtualClock) -> None:
    from buttress import cache_resilient

    store: dict[str, tuple[Any, int]] = {}
    outages = [ConnectionError("cache connection reset")]  # the cache blips once

    async def cache_set(key: str, value: Any, ttl: int) -> bool:
        await asyncio.sleep(0)
        if outages:
            raise outages.pop()
        store[key] = (value, ttl)
        return True

    @cache_resilient(operation_name="user_cache", clock=clock)
    async def cache_user(user_id: int, user_data: dict):
        # Fast fail for cache operations
        # Short timeout and minimal retries
        return await cache_set(f"user:{user_id}", user_data, ttl=3600)

    assert await cache_user(1, {"name": "Ann"}) is True
    assert store == {"user:1": ({"name": "Ann"}, 3600)}
    assert _within(clock.sleeps, [0.1])
    assert _settings(cache_user) == (5.0, 2, 0.1, 1.0, 3, 15.0)

    outages.extend([ConnectionError("down"), ConnectionError("down")])
    with pytest.raises(RetryExhaustedError) as caught:  # two attempts, then give up
        await cache_user(2, {"name": "Bob"})
    assert caught.value.attempts == 2


def test_http_api_operations(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import api_resilient

    def http_post(url: str, json: Any) -> Any:
        return _http_post(url, json)

    @api_resilient(operation_name="external_api", clock=clock)
    def call_external_api(data: dict):
        # Longer timeout for external APIs
        # More retry attempts
        return http_post(f"{server.url}/endpoint", json=data)

    server.script(503, 503, 503, 200)
    assert call_external_api({"q": 1}) == {"ok": True, "path": "/endpoint"}
    assert server.hits == 4
    assert _within(clock.sleeps, [1.0, 2.0, 4.0])
    assert _settings(call_external_api) == (60.0, 5, 1.0, 30.0, 5, 60.0)

    server.script(404)  # a client error is not transient: raised at once, unchanged
    with pytest.raises(HTTPError) as caught:
        call_external_api({"q": 2})
    assert caught.value.response is not None
    assert caught.value.response.status_code == 404
    assert server.hits == 5


def test_s3_file_operations(server: FlakyServer, tmp_path: Path, clock: VirtualClock) -> None:
    from buttress import file_resilient

    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")

    def s3_upload(file_path: str, bucket: str, key: str) -> Any:
        body = {"size": Path(file_path).stat().st_size}
        response = send("POST", f"{server.url}/{bucket}/{key}", body)
        response.raise_for_status()
        return response.json()

    @file_resilient(operation_name="model_upload", clock=clock)
    def upload_model(file_path: str, bucket: str, key: str):
        # Optimized for file operations
        # Moderate timeout and retry settings
        return s3_upload(file_path, bucket, key)

    server.script(500, 503, 200)
    assert upload_model(str(model), "models", "v1.bin") == {"ok": True,
                                                            "path": "/models/v1.bin"}
    assert server.hits == 3
    assert _within(clock.sleeps, [0.2, 0.4])
    assert _settings(upload_model) == (10.0, 3, 0.2, 5.0, 3, 30.0)


def test_ml_operations(clock: VirtualClock) -> None:
    from buttress import ml_resilient

    def perform_training(dataset_path: str, config: dict) -> dict:
        clock.sleep(config["minutes"] * 60.0)  # training takes (virtual) time
        return {"dataset": dataset_path, "epochs": config["epochs"]}

    @ml_resilient(operation_name="model_training", clock=clock)
    def train_model(dataset_path: str, config: dict):
        # Long timeout for training
        # Minimal retries for expensive operations
        return perform_training(dataset_path, config)

    assert train_model("data.csv", {"minutes": 4, "epochs": 3}) == {"dataset": "data.csv",
                                                                     "epochs": 3}
    assert _settings(train_model) == (300.0, 2, 5.0, 30.0, 2, 120.0)

    # Our documented meaning differs from the seed's "Long timeout for training" on a
    # sync function: it runs in the caller's thread, to its end (Python can not stop
    # it; giving up from a worker thread would only start a second training beside
    # the first). The limit applies to async functions, and to sync ones that ask
    # for the worker thread with timeout_in_thread=True.
    clock.sleeps.clear()
    assert train_model("data.csv", {"minutes": 6, "epochs": 3}) == {"dataset": "data.csv",
                                                                     "epochs": 3}
    assert clock.sleeps == [360.0]

    @ml_resilient(operation_name="model_training", timeout_in_thread=True, clock=clock)
    def train_model_limited(dataset_path: str, config: dict):
        return perform_training(dataset_path, config)

    with pytest.raises(RetryExhaustedError) as caught:  # 6 minutes > the 5-minute limit
        train_model_limited("data.csv", {"minutes": 6, "epochs": 3})
    assert caught.value.attempts == 2
    assert isinstance(caught.value.last_exception, OperationTimeoutError)
    assert "'model_training' timed out after 300.0s" in str(caught.value.last_exception)


# --- Configuration ------------------------------------------------------------------------


# The seed's "Environment Variables" block, exactly.
SEED_ENVIRONMENT = """
# Global settings
PYNOMALY_RESILIENCE_ENABLED=true
PYNOMALY_DEFAULT_TIMEOUT=5.0
PYNOMALY_DEFAULT_MAX_ATTEMPTS=3

# Database settings
PYNOMALY_DATABASE_TIMEOUT=30.0
PYNOMALY_DATABASE_MAX_ATTEMPTS=3
PYNOMALY_DATABASE_BASE_DELAY=0.5
PYNOMALY_DATABASE_FAILURE_THRESHOLD=3

# API settings
PYNOMALY_API_TIMEOUT=60.0
PYNOMALY_API_MAX_ATTEMPTS=5
PYNOMALY_API_BASE_DELAY=1.0
PYNOMALY_API_FAILURE_THRESHOLD=5

# Cache settings
PYNOMALY_CACHE_TIMEOUT=5.0
PYNOMALY_CACHE_MAX_ATTEMPTS=2
PYNOMALY_CACHE_BASE_DELAY=0.1
PYNOMALY_CACHE_FAILURE_THRESHOLD=3

# File settings
PYNOMALY_FILE_TIMEOUT=10.0
PYNOMALY_FILE_MAX_ATTEMPTS=3
PYNOMALY_FILE_BASE_DELAY=0.2
PYNOMALY_FILE_FAILURE_THRESHOLD=3

# ML settings
PYNOMALY_ML_TIMEOUT=300.0
PYNOMALY_ML_MAX_ATTEMPTS=2
PYNOMALY_ML_BASE_DELAY=5.0
PYNOMALY_ML_FAILURE_THRESHOLD=2
"""


def _export(monkeypatch: pytest.MonkeyPatch, block: str) -> dict[str, str]:
    """Set the variables of a ``NAME=value`` block, as the shell would."""
    exported = {}
    for line in block.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            monkeypatch.setenv(name, value)
            exported[name] = value
    return exported


def test_environment_variables(monkeypatch: pytest.MonkeyPatch, clock: VirtualClock) -> None:
    from buttress import database_resilient, explain, get_settings, load_env

    exported = _export(monkeypatch, SEED_ENVIRONMENT)
    assert len(exported) == 23
    settings = load_env(prefix="PYNOMALY_")
    assert settings.resilience_enabled is True
    assert (settings.default.timeout_seconds, settings.default.max_attempts) == (5.0, 3)
    assert (settings.database.timeout_seconds, settings.database.max_attempts,
            settings.database.base_delay, settings.database.failure_threshold) == (30.0, 3, 0.5, 3)
    assert (settings.api.timeout_seconds, settings.api.max_attempts,
            settings.api.base_delay, settings.api.failure_threshold) == (60.0, 5, 1.0, 5)
    assert (settings.cache.timeout_seconds, settings.cache.max_attempts,
            settings.cache.base_delay, settings.cache.failure_threshold) == (5.0, 2, 0.1, 3)
    assert (settings.file.timeout_seconds, settings.file.max_attempts,
            settings.file.base_delay, settings.file.failure_threshold) == (10.0, 3, 0.2, 3)
    assert (settings.ml.timeout_seconds, settings.ml.max_attempts,
            settings.ml.base_delay, settings.ml.failure_threshold) == (300.0, 2, 5.0, 2)
    assert explain()["ml.timeout_seconds"].origin == "PYNOMALY_ML_TIMEOUT"

    # Changing a variable changes what the decorators do.
    attempts = 0

    @database_resilient(operation_name="env_db", clock=clock)
    def flaky() -> str:
        nonlocal attempts
        attempts += 1
        raise ConnectionError("down")

    monkeypatch.setenv("PYNOMALY_DATABASE_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("PYNOMALY_DATABASE_FAILURE_THRESHOLD", "10")
    load_env(prefix="PYNOMALY_")
    assert get_settings().database.max_attempts == 2
    with pytest.raises(RetryExhaustedError):
        flaky()
    assert attempts == 2

    monkeypatch.setenv("PYNOMALY_RESILIENCE_ENABLED", "false")
    load_env(prefix="PYNOMALY_")
    with pytest.raises(ConnectionError):  # resilience off: one plain call
        flaky()
    assert attempts == 3


def test_custom_configuration(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import resilient

    def perform_critical_operation(data: dict) -> Any:
        host, port = target[7:].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5.0)
        try:
            conn.request("POST", "/critical", body=json.dumps(data))
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    @resilient(
        operation_type="custom",
        operation_name="critical_operation",
        timeout_seconds=15.0,
        max_attempts=5,
        base_delay=2.0,
        max_delay=30.0,
        exponential_base=1.5,
        jitter=True,
        failure_threshold=3,
        recovery_timeout=45.0,
        retry_exceptions=(ConnectionError, TimeoutError),
        enable_timeout=True,
        enable_retry=True,
        enable_circuit_breaker=True,
        clock=clock,
    )
    def critical_operation(data: dict):
        return perform_critical_operation(data)

    target = server.url
    assert critical_operation({"id": 1}) == {"ok": True, "path": "/critical"}

    # Nothing listens: ConnectionRefusedError is retried (waits 2.0, 3.0 with jitter),
    # until the third failure opens the breaker, which ends the call at once.
    target = closed_port_url()
    with pytest.raises(CircuitBreakerError) as caught:
        critical_operation({"id": 2})
    assert _within(clock.sleeps, [2.0, 3.0, 4.5])
    assert caught.value.name == "critical_operation"
    assert caught.value.remaining_timeout == pytest.approx(45.0 - sum(clock.sleeps[2:]))


# --- Context Managers ---------------------------------------------------------------------


def test_context_managers_sync(users_db: Path, clock: VirtualClock) -> None:
    from buttress import resilient_context

    def get_users() -> Any:
        return _query(users_db, "SELECT id, name FROM users ORDER BY id")

    def update_user_status(user_id: int, status: str) -> int:
        _query(users_db, "UPDATE users SET status = %s WHERE id = %s", (status, user_id))
        return user_id

    # Sync context
    with resilient_context(
        operation_type="database",
        operation_name="bulk_operations",
        timeout_seconds=30.0,
        max_attempts=2,
        clock=clock,
    ) as ctx:
        result1 = ctx.call(get_users)
        result2 = ctx.call(update_user_status, user_id=1, status="active")

    assert result1 == [(1, "Ann"), (2, "Bob")]
    assert result2 == 1
    assert _query(users_db, "SELECT status FROM users WHERE id = 1") == [("active",)]
    assert ctx.retry_config is not None
    assert ctx.retry_config.max_attempts == 2
    assert ctx.timeout_config is not None
    assert ctx.timeout_config.timeout_seconds == 30.0


async def test_context_managers_async(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import resilient_context

    async def fetch_user_data(user_id: int) -> Any:
        async with httpx.AsyncClient(base_url=server.url) as client:
            response = await client.get(f"/users/{user_id}")
            response.raise_for_status()
            return response.json()

    async def update_user_profile(user_id: int, data: dict) -> Any:
        return await _async_http_post(f"{server.url}/users/{user_id}", json=data)

    server.script(503, 200, 200)
    # Async context
    async with resilient_context(
        operation_type="api",
        operation_name="bulk_api_calls",
        clock=clock,
    ) as ctx:
        result1 = await ctx.acall(fetch_user_data, user_id=1)
        result2 = await ctx.acall(update_user_profile, user_id=1, data={"name": "John"})

    assert result1 == {"ok": True, "path": "/users/1"}
    assert result2 == {"ok": True, "path": "/users/1"}
    assert server.hits == 3
    assert _within(clock.sleeps, [1.0])


# --- Best Practices -----------------------------------------------------------------------


async def test_best_practices_configure_timeouts_appropriately(clock: VirtualClock) -> None:
    from buttress import cache_resilient, ml_resilient

    async def cache_get(key: str) -> Any:
        await clock.async_sleep(3.0)  # a cache that has become slow
        return "cached"

    def perform_training(data: Any) -> str:
        clock.sleep(500.0)  # longer than the ml default of 300 s
        return f"model({data})"

    # Short timeout for cache operations
    @cache_resilient(timeout_seconds=2.0, clock=clock)
    async def get_cached_data(key: str):
        return await cache_get(key)

    # Long timeout for ML operations
    @ml_resilient(timeout_seconds=600.0, clock=clock)  # 10 minutes
    def train_model(data):
        return perform_training(data)

    with pytest.raises(RetryExhaustedError) as caught:
        await get_cached_data("k")
    assert isinstance(caught.value.last_exception, OperationTimeoutError)
    assert caught.value.last_exception.timeout == 2.0
    assert train_model("d") == "model(d)"


def test_best_practices_use_appropriate_retry_settings(server: FlakyServer,
                                                       clock: VirtualClock) -> None:
    from buttress import api_resilient, ml_resilient

    computations = 0

    def perform_expensive_computation() -> str:
        nonlocal computations
        computations += 1
        raise TimeoutError("GPU node did not answer")

    def call_critical_api() -> Any:
        return _http_post(f"{server.url}/critical")

    # Fewer retries for expensive operations
    @ml_resilient(max_attempts=1, clock=clock)
    def expensive_operation():
        return perform_expensive_computation()

    # More retries for critical operations
    @api_resilient(max_attempts=5, clock=clock)
    def critical_api_call():
        return call_critical_api()

    with pytest.raises(RetryExhaustedError) as caught:
        expensive_operation()
    assert (computations, caught.value.attempts, clock.sleeps) == (1, 1, [])

    server.script(503, 503, 503, 503, 200)
    assert critical_api_call() == {"ok": True, "path": "/critical"}
    assert server.hits == 5


def test_best_practices_handle_exceptions_gracefully(server: FlakyServer,
                                                     clock: VirtualClock) -> None:
    from buttress import (
        CircuitBreakerError,
        RetryError,  # was: from tenacity import RetryError
        api_resilient,
    )

    def call_user_service(user_id: int) -> Any:
        response = requests.get(f"{server.url}/users/{user_id}")
        response.raise_for_status()
        return response.json()

    def get_cached_user_data(user_id: int) -> Any:
        return {"id": user_id, "cached": True}

    @api_resilient(operation_name="user_service", clock=clock)
    def get_user_data(user_id: int):
        try:
            return call_user_service(user_id)
        except CircuitBreakerError:
            # Circuit breaker is open, use fallback
            return get_cached_user_data(user_id)
        except RetryError:
            # All retries exhausted
            logger.error(f"Failed to get user data for {user_id}")
            raise

    assert get_user_data(7) == {"ok": True, "path": "/users/7"}

    # The service keeps failing: five attempts (the fifth failure also opens the
    # breaker), then the caller sees the RetryError of the seed's text.
    server.script(503, 503, 503, 503, 503)
    with pytest.raises(RetryError) as caught:
        get_user_data(7)
    assert caught.value.attempts == 5
    assert server.hits == 6
    with pytest.raises(CircuitBreakerError):  # now open: rejected without a call
        get_user_data(7)


# --- Error Handling — Fallback Patterns ---------------------------------------------------


async def test_fallback_patterns(server: FlakyServer, users_db: Path,
                                 clock: VirtualClock) -> None:
    from buttress import CircuitBreakerError, RetryError, api_resilient, cache_resilient

    # The reader's enrichment client is itself resilient, so a failing enrichment
    # service surfaces as RetryError / CircuitBreakerError, as the example expects.
    @api_resilient(operation_name="enrichment_api", max_attempts=2, clock=clock)
    def call_enrichment_api(user: dict) -> Any:
        return _http_post(f"{server.url}/enrich", json=user) | user

    async def cache_get(key: str) -> Any:
        raise ConnectionError("cache unreachable")

    async def get_user_from_database(user_id: int) -> Any:
        rows = await asyncio.to_thread(_query, users_db,
                                       "SELECT id, name FROM users WHERE id = %s", (user_id,))
        return {"id": rows[0][0], "name": rows[0][1]}

    @api_resilient(operation_name="user_enrichment", clock=clock)
    def enrich_user_data(user: dict):
        try:
            # Try external enrichment service
            return call_enrichment_api(user)
        except (CircuitBreakerError, RetryError):
            # Fallback to basic data
            return {"id": user["id"], "name": user["name"]}

    @cache_resilient(operation_name="user_cache", clock=clock)
    async def get_user_from_cache(user_id: int):
        try:
            return await cache_get(f"user:{user_id}")
        except Exception:
            # Cache miss or failure, fetch from database
            return await get_user_from_database(user_id)

    user = {"id": 1, "name": "Ann", "tier": "gold"}
    assert enrich_user_data(user) == {"ok": True, "path": "/enrich", **user}
    server.script(503, 503)
    assert enrich_user_data(user) == {"id": 1, "name": "Ann"}
    assert server.hits == 3
    assert await get_user_from_cache(2) == {"id": 2, "name": "Bob"}


# --- S0: Configuration Files --------------------------------------------------------------


# S0's "Example Configuration File", verbatim.
S0_EXAMPLE_FILE = EXAMPLE_CONFIGURATION_FILE.lstrip()


def test_s0_loading_configuration_from_json(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from buttress import RetryStrategy

    monkeypatch.chdir(tmp_path)
    Path("resilience_config.json").write_text(S0_EXAMPLE_FILE)

    from buttress import resilience_config

    # Load from file
    resilience_config.load_from_file("resilience_config.json")

    # Save current config
    resilience_config.save_to_file("resilience_config.json")

    http = resilience_config.get_retry_config("http_requests")
    assert (http.max_attempts, http.base_delay, http.max_delay, http.exponential_base,
            http.strategy) == (3, 1.0, 30.0, 2.0, RetryStrategy.JITTERED_EXPONENTIAL)
    database = resilience_config.get_retry_config("database")
    assert database.strategy is RetryStrategy.EXPONENTIAL_BACKOFF
    breaker = resilience_config.get_circuit_breaker_config("external_apis")
    assert (breaker.name, breaker.failure_threshold, breaker.recovery_timeout) == (
        "external_apis", 5, 60.0)
    # What was saved holds every value of the example file (and loads back the same).
    saved = json.loads(Path("resilience_config.json").read_text())
    example = json.loads(S0_EXAMPLE_FILE)
    for section, entries in example.items():
        for name, values in entries.items():
            assert saved[section][name].items() >= values.items(), (section, name)
    before = dict(resilience_config.retry_configs)
    resilience_config.load_from_file("resilience_config.json")
    assert dict(resilience_config.retry_configs) == before


def test_s0_example_configuration_file_drives_protected_calls(
        tmp_path: Path, server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import resilience_config

    path = tmp_path / "resilience_config.json"
    path.write_text(S0_EXAMPLE_FILE)
    resilience_config.load_from_file(path)

    @resilience_config.protect(retry="http_requests", circuit_breaker="external_apis",
                               clock=clock)
    def fetch_data() -> Any:
        response = requests.get(f"{server.url}/data")
        response.raise_for_status()
        return response.json()

    server.script(503, 503, 503)
    with pytest.raises(RetryExhaustedError):  # every failure retried, 3 attempts in all
        fetch_data()
    assert server.hits == 3
    assert fetch_data() == {"ok": True, "path": "/data"}

    # Edit the file, reload: the same function now makes 4 attempts.
    path.write_text(S0_EXAMPLE_FILE.replace('"max_attempts": 3,\n      "base_delay": 1.0',
                                            '"max_attempts": 4,\n      "base_delay": 1.0'))
    resilience_config.reload()
    server.script(503, 503, 503, 200)
    assert fetch_data() == {"ok": True, "path": "/data"}
    assert server.hits == 8
