"""Seed S1 — ``pynomaly.infrastructure.resilience`` (``seeds/001_6f70dcf2bc98fc51.txt``).

This module ports the seed's "Error Handling → Exception Types" section, the
contract its examples rely on when they write ``except CircuitBreakerError``,
``except RetryError`` (imported there from tenacity; ``from buttress import
RetryError`` here) and ``except TimeoutError``; those names are checked against
the errors buttress really raises, with a real loopback ``FlakyServer``. The
seed's other examples are ported in the modules listed below.

Ported:

* Error Handling — Exception Types: ``CircuitBreakerError`` (breaker open),
  ``RetryError`` (all retry attempts exhausted), ``TimeoutError`` (operation timed
  out), original exceptions (passed through unchanged when not retried)

Ported in other modules:

* ``test_seed_1_presets.py``: Quick Start — Basic Usage, Async Operations
  (``database_resilient``, ``api_resilient``); Operation Types — Database / Cache /
  HTTP API / S3 File / ML Operations with their "Default Settings"
  (``database_resilient``, ``cache_resilient``, ``api_resilient``, ``file_resilient``,
  ``ml_resilient``); Configuration — Environment Variables (``PYNOMALY_*``, through
  ``load_env(prefix="PYNOMALY_")``) and Custom Configuration (``resilient``); Context
  Managers (``resilient_context``, ``ctx.call``, ``ctx.acall``); Best Practices §2, §3,
  §5; Error Handling — Fallback Patterns
* ``test_seed_1_observability.py``: Health Monitoring — Circuit Breaker Health
  (``get_resilience_health``); Best Practices §4 — Monitor Circuit Breaker Health;
  Testing — Unit Testing (``reset_resilience_state`` + ``database_resilient``)
* ``test_seed_1_fastapi.py``: FastAPI Integration — Endpoint Decoration and Middleware
  Integration, Monitoring — Health Endpoints
* The resilient clients (Resilient Clients, Health Monitoring — Client Health Checks,
  Testing — Integration Testing), against real loopback servers:
  ``get_database_client`` in ``test_seed_1_database.py``, ``get_redis_client`` and
  ``get_s3_client`` in ``test_seed_1_cache_storage.py``, ``get_http_client`` in
  ``test_seed_1_http.py``

Nothing to port:

* Monitoring — Logging: configures ``logging`` for the logger
  ``"pynomaly.infrastructure.resilience"``; it names no buttress API (buttress
  logs under ``"buttress"``).

Documented difference: the seed's ``RetryError`` is tenacity's (``.last_attempt``);
buttress's ``RetryError`` is an alias of ``RetryExhaustedError`` carrying
``.attempts`` and ``.last_exception``.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import pytest

from buttress import (
    CircuitBreaker,
    CircuitState,
    RetryConfig,
    RetryExhaustedError,
    retry,
    timeout_operation,
)
from buttress.flaky_server import FlakyServer
from buttress.testing import VirtualClock

from ._standins import fetch_json


def _fetch(server: FlakyServer) -> Any:
    return fetch_json(f"{server.url}/data")


def test_exception_types_retry_error_when_all_attempts_are_exhausted(
    server: FlakyServer, clock: VirtualClock
) -> None:
    from buttress import RetryError  # was: from tenacity import RetryError

    assert RetryError is RetryExhaustedError

    @retry(RetryConfig(max_attempts=3, base_delay=0.5, max_delay=10.0), clock=clock)
    def get_user_data(user_id: int) -> Any:
        return _fetch(server)

    server.script(503, 503, 503)
    try:
        get_user_data(1)
    except RetryError as exc:  # "RetryError: All retry attempts exhausted"
        error = exc
    else:
        pytest.fail("RetryError was not raised")
    assert error.attempts == 3
    assert isinstance(error.last_exception, urllib.error.HTTPError)
    assert error.__cause__ is error.last_exception
    assert server.hits == 3


def test_exception_types_circuit_breaker_error_when_open(server: FlakyServer,
                                                         clock: VirtualClock) -> None:
    from buttress import CircuitBreakerError

    breaker = CircuitBreaker("user_service", failure_threshold=3, recovery_timeout=30.0,
                             clock=clock)
    server.script(503, 503, 503)
    for _ in range(3):
        with pytest.raises(urllib.error.HTTPError):  # original exceptions, unchanged
            breaker.call(_fetch, server)

    try:
        breaker.call(_fetch, server)
    except CircuitBreakerError as exc:  # "CircuitBreakerError: Circuit breaker is open"
        error = exc
    else:
        pytest.fail("CircuitBreakerError was not raised")
    assert error.state is CircuitState.OPEN
    assert error.name == "user_service"
    assert server.hits == 3


async def test_exception_types_timeout_error_when_an_operation_times_out(
    clock: VirtualClock,
) -> None:
    async def slow_enrichment() -> None:  # stand-in: an API that takes a minute
        await clock.async_sleep(60.0)

    with pytest.raises(TimeoutError):  # "TimeoutError: Operation timed out"
        async with timeout_operation(30.0, clock=clock):
            await slow_enrichment()
    assert clock.now == pytest.approx(60.0)


def test_exception_types_original_exceptions_pass_through(clock: VirtualClock) -> None:
    calls = 0

    @retry(RetryConfig(max_attempts=3, retry_on=(ConnectionError,)), clock=clock)
    def query_users() -> None:
        nonlocal calls
        calls += 1
        raise LookupError("no such table: users")  # not transient: not retried

    with pytest.raises(LookupError, match="no such table"):
        query_users()
    assert calls == 1
