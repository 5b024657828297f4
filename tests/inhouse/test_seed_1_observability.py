"""Seed S1 — ``pynomaly.infrastructure.resilience`` (``seeds/001_6f70dcf2bc98fc51.txt``):
its health-monitoring and test-reset examples on buttress.

Each test is one example with its import line changed to ``from buttress import ...``;
``clock=clock`` is the one extra keyword where an example would wait. Breakers are
driven into each state by real calls to the loopback ``FlakyServer``.

Ported:

* Health Monitoring — Circuit Breaker Health (``get_resilience_health``:
  ``overall_health``, ``open_breakers``, ``degraded_breakers``)
* Best Practices §4 — Monitor Circuit Breaker Health (``monitor_resilience_health``)
* Testing — Unit Testing (the ``reset_circuits`` fixture with
  ``reset_resilience_state``, and its ``database_resilient`` test)

Ported in ``test_seed_1_fastapi.py`` (FastAPI routes, on a live uvicorn server):

* FastAPI Integration — Middleware Integration (``resilience_middleware`` setting
  ``X-Resilience-Status`` from ``get_resilience_health()["overall_health"]``, and the
  ``/health`` route; its clients' health checks belong to the client issues)
* Monitoring and Observability — Health Endpoints (``/health/resilience``,
  ``/metrics/resilience`` built from ``health["circuit_breakers"]``'s ``state``,
  ``failure_rate``, ``total_calls``)

Documented meaning: ``overall_health`` is "unhealthy" when any breaker is open,
"degraded" when none is open but some are half-open (``degraded_breakers``),
"healthy" otherwise.
"""

from __future__ import annotations

import urllib.error
from collections.abc import Iterator

import pytest

from buttress import CircuitBreaker
from buttress.flaky_server import FlakyServer
from buttress.testing import VirtualClock

from ._standins import fetch_json


def _drive(breaker: CircuitBreaker, server: FlakyServer, *statuses: int) -> None:
    """Call the real server through ``breaker`` once per scripted status."""
    server.script(*statuses)
    for status in statuses:
        if status >= 400:
            with pytest.raises(urllib.error.HTTPError):
                breaker.call(fetch_json, f"{server.url}/data")
        else:
            breaker.call(fetch_json, f"{server.url}/data")


# --- Health Monitoring — Circuit Breaker Health -----------------------------------------------


def _circuit_breaker_health() -> None:
    from buttress import get_resilience_health

    # Get overall health status
    health = get_resilience_health()
    print(f"Overall health: {health['overall_health']}")

    # Check for problems
    if health['open_breakers']:
        print(f"Open circuit breakers: {health['open_breakers']}")

    if health['degraded_breakers']:
        print(f"Degraded circuit breakers: {health['degraded_breakers']}")


def test_circuit_breaker_health(
    server: FlakyServer, clock: VirtualClock, capsys: pytest.CaptureFixture[str],
) -> None:
    users = CircuitBreaker("users_api", failure_threshold=2, recovery_timeout=30.0, clock=clock)
    search = CircuitBreaker("search_api", failure_threshold=1, recovery_timeout=10.0,
                            clock=clock)
    _drive(users, server, 200, 200)
    _drive(search, server, 200)

    _circuit_breaker_health()
    assert capsys.readouterr().out.splitlines() == ["Overall health: healthy"]

    _drive(search, server, 503)  # search_api opens
    _circuit_breaker_health()
    assert capsys.readouterr().out.splitlines() == [
        # Documented meaning: open breakers of non-critical dependencies degrade
        # the service; "unhealthy" needs an open breaker marked critical.
        "Overall health: degraded",
        "Open circuit breakers: ['search_api']",
    ]

    _drive(users, server, 503, 503)  # users_api opens too
    clock.advance(10.0)  # search_api may probe again: half-open
    _circuit_breaker_health()
    assert capsys.readouterr().out.splitlines() == [
        "Overall health: degraded",
        "Open circuit breakers: ['users_api']",
        "Degraded circuit breakers: ['search_api']",
    ]

    _drive(search, server, 200, 200)  # two probe successes close search_api
    clock.advance(20.0)  # users_api half-open
    _circuit_breaker_health()
    assert capsys.readouterr().out.splitlines() == [
        "Overall health: degraded",
        "Degraded circuit breakers: ['users_api']",
    ]


# --- Best Practices §4 — Monitor Circuit Breaker Health ---------------------------------------


def test_monitor_circuit_breaker_health(
    server: FlakyServer, clock: VirtualClock, caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from buttress import get_resilience_health

    logger = logging.getLogger(__name__)

    def monitor_resilience_health():
        health = get_resilience_health()

        if health["overall_health"] != "healthy":
            logger.warning(f"Resilience health degraded: {health}")

            # Alert on open circuit breakers
            if health["open_breakers"]:
                logger.error(f"Circuit breakers open: {health['open_breakers']}")
                # Send alert to monitoring system

    payments = CircuitBreaker("payments", failure_threshold=1, recovery_timeout=30.0,
                              clock=clock)
    _drive(payments, server, 200)
    with caplog.at_level(logging.WARNING, logger=__name__):
        monitor_resilience_health()
        assert caplog.records == []

        _drive(payments, server, 503)
        monitor_resilience_health()

    mine = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == __name__]
    assert len(mine) == 2
    assert mine[0][0] == "WARNING"
    assert mine[0][1].startswith(
        "Resilience health degraded: {'overall_health': 'degraded', 'ready': True, "
        "'open_breakers': ['payments']")
    assert mine[1] == ("ERROR", "Circuit breakers open: ['payments']")


# --- Testing — Unit Testing -------------------------------------------------------------------


@pytest.fixture
def reset_circuits() -> Iterator[None]:
    """Reset circuit breakers before each test."""
    from buttress import reset_resilience_state

    reset_resilience_state()
    yield
    reset_resilience_state()


def test_database_operation_with_retry(reset_circuits: None, clock: VirtualClock) -> None:
    from buttress import database_resilient

    attempt_count = 0

    @database_resilient(operation_name="test_operation", clock=clock)
    def flaky_operation():
        nonlocal attempt_count
        attempt_count += 1
        if attempt_count < 3:
            raise ConnectionError("Database connection failed")
        return "success"

    result = flaky_operation()
    assert result == "success"
    assert attempt_count == 3
