"""resilience_router(): /health, /health/resilience, /metrics/resilience and
/metrics answer the documented JSON and text (TestClient)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from buttress import CircuitBreakerConfig, ConfigurationError, get_circuit_breaker
from buttress.fastapi import resilience_router, routes
from buttress.observe.prometheus import PrometheusMetrics
from buttress.testing import VirtualClock


def _client(**options: Any) -> TestClient:
    app = FastAPI()
    app.include_router(resilience_router(**options))
    return TestClient(app)


def _calls(breaker: Any, *, ok: int = 0, failed: int = 0) -> None:
    def fail() -> None:
        raise ConnectionError("down")

    for _ in range(ok):
        breaker.call(lambda: None)
    for _ in range(failed):
        with pytest.raises(ConnectionError):
            breaker.call(fail)


@pytest.fixture
def breakers(clock: VirtualClock) -> dict[str, Any]:
    """Three breakers: one closed with traffic, one open, one critical and closed."""
    made = {
        "search": get_circuit_breaker("search", CircuitBreakerConfig(failure_threshold=5),
                                      clock=clock),
        "recommendations": get_circuit_breaker(
            "recommendations", CircuitBreakerConfig(failure_threshold=2, recovery_timeout=30.0),
            clock=clock),
        "database": get_circuit_breaker("database", CircuitBreakerConfig(critical=True),
                                        clock=clock),
    }
    _calls(made["search"], ok=3, failed=1)
    _calls(made["recommendations"], failed=2)
    return made


def test_health_resilience_answers_the_health_document(breakers: dict[str, Any],
                                                       prometheus: PrometheusMetrics) -> None:
    response = _client(metrics=prometheus).get("/health/resilience")
    assert response.status_code == 200
    doc = response.json()
    assert doc["overall_health"] == "degraded"
    assert doc["ready"] is True
    assert doc["open_breakers"] == ["recommendations"]
    assert doc["critical_open_breakers"] == []
    assert doc["degraded_breakers"] == []
    assert doc["total_breakers"] == 3
    search = doc["circuit_breakers"]["search"]
    assert (search["state"], search["total_calls"], search["failed_calls"],
            search["failure_rate"]) == ("closed", 4, 1, 0.25)
    assert doc["circuit_breakers"]["recommendations"]["state"] == "open"
    assert doc["circuit_breakers"]["database"]["critical"] is True
    assert isinstance(doc["timestamp"], float)


def test_metrics_resilience_answers_states_rates_and_calls_by_breaker(
        breakers: dict[str, Any], prometheus: PrometheusMetrics) -> None:
    doc = _client(metrics=prometheus).get("/metrics/resilience").json()
    assert doc["circuit_breaker_states"] == {
        "database": "closed", "recommendations": "open", "search": "closed"}
    assert doc["failure_rates"] == {"database": 0.0, "recommendations": 1.0, "search": 0.25}
    assert doc["total_calls"] == {"database": 0, "recommendations": 2, "search": 4}
    assert doc["overall_health"] == "degraded"
    assert set(doc) == {"circuit_breaker_states", "failure_rates", "total_calls",
                        "overall_health", "success_rate", "timestamp"}


def test_health_is_200_and_ready_while_no_critical_breaker_is_open(
        breakers: dict[str, Any], prometheus: PrometheusMetrics) -> None:
    response = _client(metrics=prometheus).get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["ready"] is True
    assert response.json()["checks"] == {}


def test_health_is_503_and_not_ready_while_a_critical_breaker_is_open(
        breakers: dict[str, Any], prometheus: PrometheusMetrics) -> None:
    _calls(breakers["database"], failed=5)
    response = _client(metrics=prometheus).get("/health")
    assert response.status_code == 503
    assert (response.json()["status"], response.json()["ready"]) == ("unhealthy", False)


def test_health_runs_sync_and_async_checks_through_their_own_breakers(
        prometheus: PrometheusMetrics) -> None:
    ran: list[str] = []

    def database() -> bool:
        ran.append("database")
        return True

    async def cache() -> bool:
        ran.append("cache")
        return True

    client = _client(metrics=prometheus, checks={"database": database, "cache": cache})
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": True, "cache": True}
    assert response.json()["status"] == "healthy"
    assert sorted(ran) == ["cache", "database"]
    health = client.get("/health/resilience").json()
    assert health["circuit_breakers"]["health.database"]["successful_calls"] == 1
    assert health["circuit_breakers"]["health.cache"]["successful_calls"] == 1


def test_a_failing_check_makes_health_503_unhealthy(prometheus: PrometheusMetrics) -> None:
    def raises() -> bool:
        raise ConnectionError("refused")

    client = _client(metrics=prometheus,
                     checks={"ok": lambda: True, "false": lambda: False, "raises": raises})
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["checks"] == {"ok": True, "false": False, "raises": False}
    assert response.json()["status"] == "unhealthy"


@pytest.mark.wallclock
def test_a_check_slower_than_check_timeout_fails(prometheus: PrometheusMetrics) -> None:
    async def hangs() -> bool:
        await asyncio.Event().wait()  # never set: only check_timeout ends it
        return True

    client = _client(metrics=prometheus, checks={"hangs": hangs}, check_timeout=0.05)
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["checks"] == {"hangs": False}


def test_metrics_serves_prometheus_text_of_the_given_listener(
        clock: VirtualClock, prometheus: PrometheusMetrics) -> None:
    breaker = get_circuit_breaker("payments", CircuitBreakerConfig(failure_threshold=1),
                                  clock=clock)
    _calls(breaker, failed=1)
    response = _client(metrics=prometheus).get("/metrics")
    assert response.status_code == 200
    from prometheus_client import CONTENT_TYPE_LATEST

    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert 'circuit_breaker_state{operation="payments"} 1.0' in response.text
    assert 'circuit_breaker_trips_total{operation="payments"} 1.0' in response.text


def test_metrics_uses_one_default_listener_on_the_global_registry() -> None:
    first = resilience_router()
    second = resilience_router()
    assert first is not second
    shared = routes._shared_metrics
    assert shared is not None
    from prometheus_client import REGISTRY

    assert shared.registry is REGISTRY
    assert routes._default_metrics() is shared


def test_metrics_answers_501_without_prometheus_client(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> None:
        raise ImportError("No module named 'prometheus_client'")

    monkeypatch.setattr(routes, "_default_metrics", missing)
    response = _client().get("/metrics")
    assert response.status_code == 501
    assert "pip install buttress[prometheus]" in response.text


def test_the_router_works_under_a_prefix(prometheus: PrometheusMetrics) -> None:
    app = FastAPI()
    app.include_router(resilience_router(metrics=prometheus), prefix="/ops")
    client = TestClient(app)
    assert client.get("/ops/health/resilience").json()["overall_health"] == "healthy"
    assert client.get("/health/resilience").status_code == 404


def test_the_routes_are_in_the_openapi_schema_unless_asked(prometheus: PrometheusMetrics) -> None:
    app = FastAPI()
    app.include_router(resilience_router(metrics=prometheus))
    assert {"/health", "/health/resilience", "/metrics/resilience", "/metrics"} <= set(
        app.openapi()["paths"])
    hidden = FastAPI()
    hidden.include_router(resilience_router(metrics=prometheus, include_in_schema=False))
    assert hidden.openapi()["paths"] == {}


@pytest.mark.parametrize(("options", "field"), [
    ({"check_timeout": 0}, "resilience_router.check_timeout"),
    ({"check_timeout": float("inf")}, "resilience_router.check_timeout"),
    ({"checks": {"db": "SELECT 1"}}, "resilience_router.checks['db']"),
    ({"checks": {"": lambda: True}}, "resilience_router.checks"),
])
def test_a_bad_option_names_the_field(options: dict[str, Any], field: str,
                                      prometheus: PrometheusMetrics) -> None:
    with pytest.raises(ConfigurationError) as caught:
        resilience_router(metrics=prometheus, **options)
    assert caught.value.field == field
