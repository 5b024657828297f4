"""add_resilience_exception_handlers(): an open breaker answers 503 with
Retry-After (the seconds until it lets a probe through), a timeout 504."""

from __future__ import annotations

import doctest
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import buttress.fastapi.errors
from buttress import (
    CircuitBreakerConfig,
    OperationTimeoutError,
    RetryExhaustedError,
    get_circuit_breaker,
)
from buttress.fastapi import ResilienceMiddleware, add_resilience_exception_handlers
from buttress.testing import VirtualClock


def _app(clock: VirtualClock, *, handlers: bool = True) -> tuple[FastAPI, list[int]]:
    """An app whose /charge calls a dependency through the "payments" breaker
    (opens after 2 failures, probes after 30 s); the list counts the calls
    that reached the dependency."""
    breaker = get_circuit_breaker("payments", CircuitBreakerConfig(
        failure_threshold=2, recovery_timeout=30.0), clock=clock)
    reached: list[int] = []

    def dependency() -> dict[str, str]:
        reached.append(1)
        raise ConnectionError("payments refused the connection")

    app = FastAPI()
    app.add_middleware(ResilienceMiddleware)
    if handlers:
        add_resilience_exception_handlers(app)

    @app.post("/charge")
    def charge() -> Any:
        try:
            return breaker.call(dependency)
        except ConnectionError:
            return {"charged": False}

    return app, reached


def test_an_open_breaker_answers_503_with_retry_after_until_the_probe(
        clock: VirtualClock) -> None:
    app, reached = _app(clock)
    client = TestClient(app)
    assert [client.post("/charge").json() for _ in range(2)] == [{"charged": False}] * 2
    response = client.post("/charge")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert response.headers["X-Resilience-Status"] == "degraded"
    body = response.json()
    assert (body["breaker"], body["state"], body["retry_after"]) == ("payments", "open", 30)
    assert len(reached) == 2  # the rejected call never reached the dependency


def test_retry_after_counts_down_and_rounds_up(clock: VirtualClock) -> None:
    app, _ = _app(clock)
    client = TestClient(app)
    for _ in range(2):
        client.post("/charge")
    clock.advance(10.5)
    assert client.post("/charge").headers["Retry-After"] == "20"
    clock.advance(19.4)
    assert client.post("/charge").headers["Retry-After"] == "1"


def test_a_breaker_forced_open_answers_503_without_retry_after(clock: VirtualClock) -> None:
    app, reached = _app(clock)
    get_circuit_breaker("payments").force_open()
    response = TestClient(app).post("/charge")
    assert response.status_code == 503
    assert "Retry-After" not in response.headers
    assert response.json()["retry_after"] is None
    assert reached == []


def test_a_timeout_answers_504_naming_the_operation() -> None:
    app = FastAPI()
    add_resilience_exception_handlers(app)

    @app.get("/report")
    def report() -> None:
        raise OperationTimeoutError(operation="https://u:secret@reports/x?token=1",
                                    timeout=2.0)

    response = TestClient(app).get("/report")
    assert response.status_code == 504
    assert response.json()["timeout"] == 2.0
    assert response.json()["operation"] == "https://***@reports/x?***"  # masked as in logs


@pytest.mark.parametrize(("last", "status"), [
    (OperationTimeoutError(operation="report", timeout=1.0), 504),
    (None, 503),
])
def test_an_exhausted_retry_answers_as_its_last_error(clock: VirtualClock,
                                                      last: Exception | None,
                                                      status: int) -> None:
    if last is None:
        breaker = get_circuit_breaker("payments", clock=clock)
        breaker.force_open()
        try:
            breaker.call(lambda: None)
        except Exception as exc:
            last = exc
    app = FastAPI()
    add_resilience_exception_handlers(app)

    @app.get("/work")
    def work() -> None:
        raise RetryExhaustedError(3, last, operation="work")

    assert TestClient(app).get("/work").status_code == status


def test_an_exhausted_retry_of_another_error_stays_a_500() -> None:
    app = FastAPI()
    add_resilience_exception_handlers(app)

    @app.get("/work")
    def work() -> None:
        raise RetryExhaustedError(3, ConnectionError("refused"), operation="work")

    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/work").status_code == 500
    with pytest.raises(RetryExhaustedError):
        TestClient(app).get("/work")


def test_without_the_handlers_an_open_breaker_is_a_500(clock: VirtualClock) -> None:
    app, _ = _app(clock, handlers=False)
    get_circuit_breaker("payments").force_open()
    client = TestClient(app, raise_server_exceptions=False)
    assert client.post("/charge").status_code == 500


def test_the_docstring_examples_run() -> None:
    result = doctest.testmod(buttress.fastapi.errors)
    assert result.attempted >= 3
    assert result.failed == 0
