"""Status and health of the resilience layer, health checks through a breaker,
and the reset for tests."""

from __future__ import annotations

import logging

import pytest

from buttress import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitState,
    get_circuit_breaker,
)
from buttress.observe import (
    async_health_check_with_circuit_breaker,
    get_resilience_health,
    get_resilience_status,
    health_check_with_circuit_breaker,
    reset_resilience_state,
    resilience_metrics,
)
from buttress.observe.metrics import ResilienceMetrics
from buttress.testing import ScriptedCall, VirtualClock


def _breakers(clock: VirtualClock) -> tuple[CircuitBreaker, CircuitBreaker, CircuitBreaker]:
    """One breaker in each state: closed, open, half-open."""
    closed = get_circuit_breaker("closed-dep", failure_threshold=3, clock=clock)
    opened = get_circuit_breaker("open-dep", failure_threshold=1, recovery_timeout=60.0,
                                 clock=clock)
    half = get_circuit_breaker("half-dep", failure_threshold=1, recovery_timeout=5.0,
                               clock=clock)
    closed.call(ScriptedCall("ok"))
    with pytest.raises(ConnectionError):
        closed.call(ScriptedCall(ConnectionError))
    for breaker in (opened, half):
        with pytest.raises(ConnectionError):
            breaker.call(ScriptedCall(ConnectionError))
    clock.advance(5.0)  # half-dep's recovery timeout passes; open-dep's does not
    return closed, opened, half


# --- get_resilience_status ----------------------------------------------------------------


def test_status_has_success_rate_metrics_and_every_breaker(virtual_clock: VirtualClock) -> None:
    _breakers(virtual_clock)
    resilience_metrics.record("a", "success", 0.1)
    resilience_metrics.record("a", "failure", 0.1)

    status = get_resilience_status()

    assert status["success_rate"] == 50.0
    assert status["metrics"]["total_operations"] == 2
    assert status["metrics"]["operations"]["a"]["failures"] == 1
    breakers = status["circuit_breakers"]
    assert {name: cb["state"] for name, cb in breakers.items()} == {
        "closed-dep": "closed", "half-dep": "half_open", "open-dep": "open",
    }
    closed = breakers["closed-dep"]
    assert (closed["failure_count"], closed["failure_threshold"]) == (1, 3)
    assert closed["total_calls"] == 2
    assert closed["recovery_timeout"] == 30.0
    assert breakers["open-dep"]["remaining_timeout"] == 55.0
    assert isinstance(status["timestamp"], float)


def test_status_of_private_metrics(virtual_clock: VirtualClock) -> None:
    private = ResilienceMetrics(clock=virtual_clock)
    private.record("x", "success")
    assert get_resilience_status(private)["metrics"]["total_operations"] == 1
    assert get_resilience_status()["metrics"]["total_operations"] == 0


# --- get_resilience_health ----------------------------------------------------------------


def test_no_breakers_is_healthy() -> None:
    health = get_resilience_health()
    assert health["overall_health"] == "healthy"
    assert health["open_breakers"] == []
    assert health["degraded_breakers"] == []
    assert health["circuit_breakers"] == {}
    assert health["total_breakers"] == 0


def test_closed_breakers_are_healthy(virtual_clock: VirtualClock) -> None:
    breaker = CircuitBreaker("db", clock=virtual_clock)
    breaker.call(ScriptedCall("ok"))

    health = get_resilience_health()

    assert health["overall_health"] == "healthy"
    db = health["circuit_breakers"]["db"]
    assert (db["state"], db["failure_rate"], db["total_calls"]) == ("closed", 0.0, 1)


def test_a_half_open_breaker_is_degraded(virtual_clock: VirtualClock) -> None:
    breaker = CircuitBreaker("cache", failure_threshold=1, recovery_timeout=10.0,
                             clock=virtual_clock)
    with pytest.raises(ConnectionError):
        breaker.call(ScriptedCall(ConnectionError))
    virtual_clock.advance(10.0)

    health = get_resilience_health()

    assert health["overall_health"] == "degraded"
    assert health["degraded_breakers"] == ["cache"]
    assert health["open_breakers"] == []
    assert breaker.state is CircuitState.HALF_OPEN


def test_an_open_breaker_is_degraded_and_each_state_is_listed(
    virtual_clock: VirtualClock,
) -> None:
    # Open breakers of non-critical dependencies degrade the service; only a
    # critical one makes it unhealthy (tests/observe/test_health_levels.py).
    _breakers(virtual_clock)

    health = get_resilience_health()

    assert health["overall_health"] == "degraded"
    assert health["open_breakers"] == ["open-dep"]
    assert health["degraded_breakers"] == ["half-dep"]
    assert health["total_breakers"] == 3
    assert {name: (b["state"], b["failure_rate"], b["total_calls"])
            for name, b in health["circuit_breakers"].items()} == {
        "closed-dep": ("closed", 0.5, 2),
        "half-dep": ("half_open", 1.0, 1),
        "open-dep": ("open", 1.0, 1),
    }


def test_a_forced_open_breaker_stays_unhealthy(virtual_clock: VirtualClock) -> None:
    breaker = CircuitBreaker("maintenance", recovery_timeout=1.0, clock=virtual_clock)
    breaker.force_open()
    virtual_clock.advance(100.0)
    assert get_resilience_health()["open_breakers"] == ["maintenance"]


# --- health_check_with_circuit_breaker ----------------------------------------------------


def test_a_passing_check_is_true() -> None:
    assert health_check_with_circuit_breaker("db", lambda: True) is True
    assert health_check_with_circuit_breaker("db", lambda: None) is True  # no verdict: passed
    assert get_circuit_breaker("db").stats.successful_calls == 2


def test_a_failing_check_is_false_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> bool:
        raise ConnectionError("refused by postgres://admin:hunter2@db:5432/app")

    with caplog.at_level(logging.WARNING, logger="buttress"):
        assert health_check_with_circuit_breaker("db", broken) is False
        assert health_check_with_circuit_breaker("db", lambda: False) is False

    assert get_circuit_breaker("db").stats.failed_calls == 2
    assert "health check 'db' failed" in caplog.text
    assert "hunter2" not in caplog.text


def test_an_open_breaker_skips_the_check(virtual_clock: VirtualClock) -> None:
    config = CircuitBreakerConfig(name="search", failure_threshold=2, recovery_timeout=30.0)
    get_circuit_breaker("search", config, clock=virtual_clock)
    check = ScriptedCall(ConnectionError, ConnectionError, True)

    results = [health_check_with_circuit_breaker("search", check, config) for _ in range(4)]

    assert results == [False, False, False, False]
    assert check.calls == 2  # the breaker opened; the last two checks did not run
    virtual_clock.advance(30.0)
    assert health_check_with_circuit_breaker("search", check) is True
    assert check.calls == 3


def test_interrupts_are_not_swallowed() -> None:
    def interrupted() -> bool:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        health_check_with_circuit_breaker("db", interrupted)


def test_a_coroutine_check_needs_the_async_twin() -> None:
    async def ping() -> bool:
        return True

    with pytest.raises(TypeError, match="async_health_check_with_circuit_breaker"):
        health_check_with_circuit_breaker("redis", ping)


async def test_the_async_twin_takes_coroutine_and_plain_checks() -> None:
    async def ping() -> bool:
        return True

    async def down() -> bool:
        raise ConnectionError("no route")

    assert await async_health_check_with_circuit_breaker("redis", ping) is True
    assert await async_health_check_with_circuit_breaker("redis", lambda: True) is True
    assert await async_health_check_with_circuit_breaker("redis", down) is False
    assert await async_health_check_with_circuit_breaker("redis", lambda: False) is False
    stats = get_circuit_breaker("redis").stats
    assert (stats.successful_calls, stats.failed_calls) == (2, 2)


# --- reset_resilience_state ---------------------------------------------------------------


def test_reset_closes_breakers_clears_metrics_and_settings(virtual_clock: VirtualClock) -> None:
    from buttress.config import configure, get_settings

    _, opened, half = _breakers(virtual_clock)
    resilience_metrics.record("a", "success", 0.1)
    configure(resilience_enabled=False)

    reset_resilience_state()

    assert opened.state is CircuitState.CLOSED
    assert half.state is CircuitState.CLOSED
    assert opened.stats.total_calls == 0
    assert resilience_metrics.get_metrics()["total_operations"] == 0
    assert resilience_metrics.operation_history == []
    assert get_settings().resilience_enabled is True
    assert get_resilience_health()["overall_health"] == "healthy"
    # The registry keeps the breakers: reset, not forgotten.
    assert get_circuit_breaker("open-dep") is opened
