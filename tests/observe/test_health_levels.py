"""Health levels: open breakers of optional dependencies degrade the service,
an open breaker marked critical makes it unhealthy (not ready)."""

from __future__ import annotations

import pytest

from buttress import CircuitBreaker, CircuitBreakerConfig, ConfigurationError, get_circuit_breaker
from buttress.observe import get_resilience_health
from buttress.testing import ScriptedCall, VirtualClock


def _trip(breaker: CircuitBreaker) -> None:
    with pytest.raises(ConnectionError):
        breaker.call(ScriptedCall(ConnectionError))


def test_an_open_breaker_of_an_optional_dependency_only_degrades_the_service(
    virtual_clock: VirtualClock,
) -> None:
    recommendations = CircuitBreaker("recommendations", failure_threshold=1,
                                     clock=virtual_clock)
    database = CircuitBreaker("database", failure_threshold=1, critical=True,
                              clock=virtual_clock)
    _trip(recommendations)

    health = get_resilience_health()

    assert health["overall_health"] == "degraded"
    assert health["ready"] is True
    assert health["open_breakers"] == ["recommendations"]
    assert health["critical_open_breakers"] == []
    assert database.is_closed


def test_an_open_critical_breaker_makes_the_service_unhealthy_and_not_ready(
    virtual_clock: VirtualClock,
) -> None:
    database = get_circuit_breaker("database", failure_threshold=1, critical=True,
                                   clock=virtual_clock)
    recommendations = CircuitBreaker("recommendations", clock=virtual_clock)
    _trip(database)

    health = get_resilience_health()

    assert health["overall_health"] == "unhealthy"
    assert health["ready"] is False
    assert health["critical_open_breakers"] == ["database"]
    assert health["circuit_breakers"]["database"]["critical"] is True
    assert health["circuit_breakers"]["recommendations"]["critical"] is False
    assert recommendations.is_closed


def test_a_half_open_critical_breaker_is_degraded_while_it_probes(
    virtual_clock: VirtualClock,
) -> None:
    database = CircuitBreaker("database", failure_threshold=1, recovery_timeout=5.0,
                              critical=True, clock=virtual_clock)
    _trip(database)
    virtual_clock.advance(5.0)

    health = get_resilience_health()

    assert (health["overall_health"], health["ready"]) == ("degraded", True)
    assert health["degraded_breakers"] == ["database"]


def test_all_breakers_closed_is_healthy_and_ready(virtual_clock: VirtualClock) -> None:
    database = CircuitBreaker("database", critical=True, clock=virtual_clock)

    health = get_resilience_health()

    assert (health["overall_health"], health["ready"]) == ("healthy", True)
    assert health["total_breakers"] == 1
    assert database.is_closed


def test_critical_is_a_config_field_that_only_takes_a_bool() -> None:
    assert CircuitBreakerConfig(name="db").critical is False
    assert CircuitBreakerConfig(name="db", critical=True).replace(name="x").critical is True
    with pytest.raises(ConfigurationError, match=r"CircuitBreakerConfig\.critical"):
        CircuitBreakerConfig(name="db", critical="yes")  # type: ignore[arg-type]


def test_asking_for_a_registered_breaker_with_another_criticality_is_a_conflict() -> None:
    get_circuit_breaker("database", critical=True)
    with pytest.raises(ConfigurationError, match="critical"):
        get_circuit_breaker("database", critical=False)
