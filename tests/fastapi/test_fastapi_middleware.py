"""ResilienceMiddleware: the X-Resilience-Status header in each health state,
and the X-Request-Timeout deadline reaching the protected calls (TestClient;
the live-server twins are in test_fastapi_live.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from buttress import (
    CircuitBreakerConfig,
    ConfigurationError,
    Timeout,
    current_context,
    get_circuit_breaker,
    remaining_time,
)
from buttress.fastapi import (
    ResilienceMiddleware,
    add_resilience_exception_handlers,
)
from buttress.testing import VirtualClock

ROOT = Path(__file__).resolve().parents[2]


def _app(clock: VirtualClock, **options: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(ResilienceMiddleware, clock=clock, **options)

    @app.get("/async")
    async def read_async() -> dict[str, Any]:
        return {"left": remaining_time()}

    @app.get("/sync")
    def read_sync() -> dict[str, Any]:
        return {"left": remaining_time()}

    return app


def _breaker(name: str, clock: VirtualClock, *, critical: bool = False) -> Any:
    return get_circuit_breaker(name, CircuitBreakerConfig(
        failure_threshold=1, recovery_timeout=30.0, success_threshold=1, critical=critical),
        clock=clock)


def _trip(breaker: Any) -> None:
    def fail() -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        breaker.call(fail)


def test_status_header_is_healthy_with_no_breakers(clock: VirtualClock) -> None:
    response = TestClient(_app(clock)).get("/async")
    assert response.headers["X-Resilience-Status"] == "healthy"


def test_status_header_is_healthy_while_every_breaker_is_closed(clock: VirtualClock) -> None:
    _breaker("search", clock)
    _breaker("database", clock, critical=True)
    assert TestClient(_app(clock)).get("/sync").headers["X-Resilience-Status"] == "healthy"


def test_status_header_is_degraded_while_a_breaker_is_open(clock: VirtualClock) -> None:
    _breaker("database", clock, critical=True)
    _trip(_breaker("recommendations", clock))
    assert TestClient(_app(clock)).get("/async").headers["X-Resilience-Status"] == "degraded"


def test_status_header_is_degraded_while_a_breaker_is_half_open(clock: VirtualClock) -> None:
    breaker = _breaker("database", clock, critical=True)
    _trip(breaker)
    clock.advance(30.0)
    client = TestClient(_app(clock))
    assert client.get("/async").headers["X-Resilience-Status"] == "degraded"
    assert breaker.state.value == "half_open"


def test_status_header_is_unhealthy_while_a_critical_breaker_is_open(clock: VirtualClock) -> None:
    _trip(_breaker("database", clock, critical=True))
    client = TestClient(_app(clock))
    assert client.get("/async").headers["X-Resilience-Status"] == "unhealthy"
    assert client.get("/sync").headers["X-Resilience-Status"] == "unhealthy"


def test_status_header_goes_back_to_healthy_when_the_breaker_closes(clock: VirtualClock) -> None:
    breaker = _breaker("database", clock, critical=True)
    _trip(breaker)
    client = TestClient(_app(clock))
    assert client.get("/async").headers["X-Resilience-Status"] == "unhealthy"
    clock.advance(30.0)
    breaker.call(lambda: None)  # the probe succeeds
    assert client.get("/async").headers["X-Resilience-Status"] == "healthy"


def test_status_header_reflects_what_the_request_itself_did(clock: VirtualClock) -> None:
    breaker = _breaker("database", clock, critical=True)
    app = _app(clock)

    @app.get("/query")
    def query() -> None:
        _trip(breaker)

    # The header is read when the response starts, after the endpoint ran.
    assert TestClient(app).get("/query").headers["X-Resilience-Status"] == "unhealthy"


def test_status_header_is_on_error_responses_too(clock: VirtualClock) -> None:
    _trip(_breaker("search", clock))
    response = TestClient(_app(clock)).get("/missing")
    assert response.status_code == 404
    assert response.headers["X-Resilience-Status"] == "degraded"


@pytest.mark.parametrize("path", ["/async", "/sync"])
def test_request_timeout_header_becomes_the_deadline_of_the_endpoint(
        clock: VirtualClock, path: str) -> None:
    response = TestClient(_app(clock)).get(path, headers={"X-Request-Timeout": "2.5"})
    assert response.json() == {"left": 2.5}


def test_without_the_header_the_endpoint_has_no_deadline(clock: VirtualClock) -> None:
    app = _app(clock)

    @app.get("/context")
    async def context() -> dict[str, Any]:
        return {"context": repr(current_context())}

    client = TestClient(app)
    assert client.get("/async").json() == {"left": None}
    assert client.get("/context").json() == {"context": "None"}


def test_default_timeout_applies_when_the_client_sends_none(clock: VirtualClock) -> None:
    client = TestClient(_app(clock, default_timeout=10.0))
    assert client.get("/sync").json() == {"left": 10.0}
    assert client.get("/sync", headers={"X-Request-Timeout": "0.5"}).json() == {"left": 0.5}


def test_max_timeout_caps_what_a_client_may_ask_for(clock: VirtualClock) -> None:
    client = TestClient(_app(clock, max_timeout=30.0))
    assert client.get("/async", headers={"X-Request-Timeout": "3600"}).json() == {"left": 30.0}


def test_the_deadline_runs_on_the_clock_while_the_request_waits(clock: VirtualClock) -> None:
    app = _app(clock)

    @app.get("/slow")
    async def slow() -> dict[str, Any]:
        clock.advance(1.5)
        return {"left": remaining_time()}

    assert TestClient(app).get("/slow", headers={"X-Request-Timeout": "2"}).json() == {
        "left": 0.5}


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf", "", "1e999"])
def test_an_invalid_request_timeout_is_answered_400_without_running_the_app(
        clock: VirtualClock, value: str) -> None:
    calls = []
    app = _app(clock)

    @app.get("/count")
    def count() -> None:
        calls.append(1)

    response = TestClient(app).get("/count", headers={"X-Request-Timeout": value})
    assert response.status_code == 400
    assert "X-Request-Timeout must be a number of seconds >= 0" in response.json()["detail"]
    assert response.headers["X-Resilience-Status"] == "healthy"
    assert calls == []


def test_a_short_request_deadline_ends_an_inner_timeout_with_504(clock: VirtualClock) -> None:
    app = FastAPI()
    app.add_middleware(ResilienceMiddleware, clock=clock)
    add_resilience_exception_handlers(app)

    @app.get("/report")
    @Timeout(10.0, operation_name="report", clock=clock)
    async def report() -> None:
        await clock.async_sleep(5.0)

    response = TestClient(app).get("/report", headers={"X-Request-Timeout": "0.05"})
    assert response.status_code == 504
    assert response.json()["operation"] == "report"
    assert 0 < response.json()["timeout"] <= 0.05


def test_headers_can_be_renamed_or_turned_off(clock: VirtualClock) -> None:
    client = TestClient(_app(clock, status_header="X-Health", timeout_header="Request-Timeout"))
    response = client.get("/async", headers={"Request-Timeout": "4", "X-Request-Timeout": "1"})
    assert response.json() == {"left": 4.0}
    assert response.headers["X-Health"] == "healthy"
    assert "X-Resilience-Status" not in response.headers

    client = TestClient(_app(clock, status_header=None, timeout_header=None))
    response = client.get("/async", headers={"X-Request-Timeout": "4"})
    assert response.json() == {"left": None}
    assert "X-Resilience-Status" not in response.headers


def test_lifespan_events_pass_through_the_middleware(clock: VirtualClock) -> None:
    started = []
    app = _app(clock)
    app.router.on_startup.append(lambda: started.append(True))
    with TestClient(app) as client:
        assert client.get("/async").status_code == 200
    assert started == [True]


@pytest.mark.parametrize(("options", "field", "value"), [
    ({"default_timeout": -1.0}, "ResilienceMiddleware.default_timeout", -1.0),
    ({"max_timeout": float("nan")}, "ResilienceMiddleware.max_timeout", None),
    ({"default_timeout": 60.0, "max_timeout": 30.0}, "ResilienceMiddleware.default_timeout",
     60.0),
    ({"status_header": ""}, "ResilienceMiddleware.status_header", ""),
    ({"timeout_header": "X Timeout"}, "ResilienceMiddleware.timeout_header", "X Timeout"),
])
def test_a_bad_option_names_the_field_and_value(options: dict[str, Any], field: str,
                                                 value: object) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ResilienceMiddleware(FastAPI(), **options)
    assert caught.value.field == field
    if value is not None:
        assert caught.value.value == value


def test_importing_without_fastapi_names_the_extra() -> None:
    code = ("import sys; sys.modules['fastapi'] = None\n"
            "try:\n    import buttress.fastapi\n"
            "except ModuleNotFoundError as exc:\n    print(exc)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert result.stdout.strip() == (
        "buttress.fastapi needs FastAPI: pip install 'buttress[fastapi]'"), result.stderr
