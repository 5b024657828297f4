"""The FastAPI integration against a real uvicorn server on a loopback port,
and ``buttress status`` reading that live app."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp
from typer.testing import CliRunner

from buttress import (
    CircuitBreakerConfig,
    api_resilient,
    get_circuit_breaker,
    remaining_time,
)
from buttress.cli.app import app as cli
from buttress.cli.status import health_url
from buttress.fastapi import (
    ResilienceMiddleware,
    add_resilience_exception_handlers,
    resilience_router,
)
from buttress.observe.prometheus import PrometheusMetrics
from buttress.testing import VirtualClock

ROOT = Path(__file__).resolve().parents[2]
Serve = Callable[[ASGIApp], str]


def _service(clock: VirtualClock, prometheus: PrometheusMetrics) -> FastAPI:
    """A service with a critical "database" breaker and a "search" one (each
    opens after one failure, probes after 30 s), and a preset endpoint."""
    database = get_circuit_breaker("database", CircuitBreakerConfig(
        failure_threshold=1, recovery_timeout=30.0, critical=True), clock=clock)
    search = get_circuit_breaker("search", CircuitBreakerConfig(
        failure_threshold=1, recovery_timeout=30.0), clock=clock)
    app = FastAPI()
    app.add_middleware(ResilienceMiddleware)
    app.include_router(resilience_router(metrics=prometheus))
    add_resilience_exception_handlers(app)

    def down() -> None:
        raise ConnectionError("refused")

    @app.get("/search")
    def run_search() -> dict[str, Any]:
        try:
            search.call(down)
        except ConnectionError:
            return {"results": []}
        return {"results": None}

    @app.get("/orders")
    async def orders() -> dict[str, Any]:
        try:
            await database.acall(_async_down)
        except ConnectionError:
            return {"orders": []}
        return {"orders": None}

    @app.get("/budget/{item}")
    @api_resilient(operation_name="budget")
    async def budget(item: int) -> dict[str, Any]:
        return {"item": item, "left": remaining_time()}

    return app


async def _async_down() -> None:
    raise ConnectionError("refused")


@pytest.fixture
def service(live_server: Serve, clock: VirtualClock, prometheus: PrometheusMetrics) -> str:
    return live_server(_service(clock, prometheus))


def test_the_status_header_follows_the_breakers_on_a_live_server(service: str) -> None:
    with httpx.Client(base_url=service) as client:
        assert client.get("/health").headers["X-Resilience-Status"] == "healthy"
        assert client.get("/search").headers["X-Resilience-Status"] == "degraded"
        response = client.get("/orders")
        assert response.headers["X-Resilience-Status"] == "unhealthy"
        assert client.get("/health").status_code == 503


def test_the_routes_answer_json_on_a_live_server(service: str) -> None:
    with httpx.Client(base_url=service) as client:
        client.get("/search")
        health = client.get("/health/resilience").json()
        assert health["overall_health"] == "degraded"
        assert health["open_breakers"] == ["search"]
        metrics = client.get("/metrics/resilience").json()
        assert metrics["circuit_breaker_states"] == {
            "budget": "closed", "database": "closed", "search": "open"}
        assert metrics["total_calls"]["search"] == 1
        text = client.get("/metrics").text
        assert 'circuit_breaker_state{operation="search"} 1.0' in text


def test_an_open_breaker_answers_503_with_retry_after_on_a_live_server(service: str) -> None:
    with httpx.Client(base_url=service) as client:
        client.get("/orders")
        response = client.get("/orders")
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "30"
        assert response.json()["breaker"] == "database"


def test_the_request_timeout_header_reaches_a_preset_endpoint_on_a_live_server(
        service: str) -> None:
    with httpx.Client(base_url=service) as client:
        body = client.get("/budget/3", headers={"X-Request-Timeout": "2.5"}).json()
        assert body["item"] == 3
        assert 2.0 < body["left"] <= 2.5
        # Without the header the preset's own 60 s timeout is the only limit.
        assert 59.0 < client.get("/budget/3").json()["left"] <= 60.0


# buttress status


def _status(*args: str) -> Any:
    return CliRunner().invoke(cli, ["status", *args])


def test_status_shows_each_breaker_as_a_table_row(service: str) -> None:
    httpx.get(service + "/search")
    result = _status(service)
    assert result.exit_code == 0, result.output
    assert f"{service}/health/resilience: degraded (3 breakers)" in result.output
    rows = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:-1]]
            for line in result.output.splitlines() if line.count("│") == 9}
    assert rows["search"] == ["open", "", "100.0%", "1", "1", "0", "30.0 s"]
    assert rows["database"] == ["closed", "yes", "0.0%", "0", "0", "0", ""]
    assert set(rows) == {"budget", "database", "search"}


def test_status_json_prints_the_raw_document(service: str) -> None:
    result = _status(service, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["overall_health"] == "healthy"
    assert set(document["circuit_breakers"]) == {"budget", "database", "search"}


def test_status_exits_1_when_the_app_is_unhealthy(service: str) -> None:
    httpx.get(service + "/orders")
    result = _status(service)
    assert result.exit_code == 1
    assert "unhealthy" in result.output


def test_status_exits_0_when_degraded_unless_strict(service: str) -> None:
    httpx.get(service + "/search")
    assert _status(service).exit_code == 0
    assert _status(service, "--strict").exit_code == 1


def test_status_accepts_the_document_url_and_a_router_prefix(
        live_server: Serve, prometheus: PrometheusMetrics) -> None:
    app = FastAPI()
    app.include_router(resilience_router(metrics=prometheus), prefix="/ops")
    base = live_server(app)
    assert _status(base + "/ops/", "--json").exit_code == 0
    assert _status(base + "/ops/health/resilience", "--json").exit_code == 0


def test_status_watch_polls_count_times(service: str) -> None:
    result = _status(service, "--watch", "--count", "3", "--interval", "0.01", "--json")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 3
    assert all(json.loads(line)["overall_health"] == "healthy" for line in lines)

    result = _status(service, "--watch", "--count", "2", "--interval", "0.01")
    assert result.output.count("health/resilience: healthy") == 2


def test_status_watch_redraws_one_table_on_a_terminal(service: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich draws as on a terminal
    httpx.get(service + "/orders")
    result = _status(service, "--watch", "--count", "2", "--interval", "0.01")
    assert result.exit_code == 1  # unhealthy at the last poll
    assert "poll 2" in result.output
    assert "unhealthy" in result.output


def test_status_says_when_the_app_can_not_be_reached() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = _status(f"http://127.0.0.1:{port}", "--timeout", "2")
    assert result.exit_code == 3
    assert f"could not reach http://127.0.0.1:{port}/health/resilience" in result.output


def test_status_says_when_the_url_serves_no_health_document(
        live_server: Serve) -> None:
    base = live_server(FastAPI())
    result = _status(base)
    assert result.exit_code == 3
    assert "answered 404 Not Found; is buttress.fastapi.resilience_router() included" \
        in result.output


@pytest.mark.parametrize("url", ["localhost:8000", "ftp://svc/x", "http://"])
def test_status_refuses_a_url_that_is_not_http(url: str) -> None:
    result = _status(url)
    assert result.exit_code == 2
    assert "is not an http:// or https:// URL" in result.output


def test_health_url_appends_the_document_path_once() -> None:
    assert health_url("http://svc:80") == "http://svc:80/health/resilience"
    assert health_url("https://svc/ops/?x=1") == "https://svc/ops/health/resilience?x=1"
    assert health_url("http://svc/health/resilience/") == "http://svc/health/resilience"


@pytest.mark.wallclock
def test_the_buttress_command_reads_a_live_app(service: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "NO_COLOR": "1"}
    result = subprocess.run([sys.executable, "-m", "buttress", "status", service, "--json"],
                            capture_output=True, text=True, timeout=60, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["total_breakers"] == 3


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception),
                                             ("", pytest.skip.Exception)])
def test_a_server_that_can_not_start_fails_under_ci_and_skips_elsewhere(
        monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]) -> None:
    import uvicorn

    from _uvicorn import serving

    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    with pytest.raises(outcome, match="uvicorn test server did not start: the server thread "
                                      "ended"), serving(FastAPI()):
        pass
