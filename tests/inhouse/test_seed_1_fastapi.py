"""Seed S1 — ``pynomaly.infrastructure.resilience`` (``seeds/001_6f70dcf2bc98fc51.txt``):
its FastAPI examples on buttress, served by a real uvicorn server on loopback
(and the TestClient).

Each example keeps its code with the import line changed to ``from buttress import
...``; ``clock=clock`` is the one extra keyword where an example would wait. The
example's dependencies are real: ``async_query`` runs the seed's SQL on SQLite,
``async_http_post`` posts to the loopback ``FlakyServer`` instead of
``api.external.com``.

Ported:

* FastAPI Integration — Endpoint Decoration (``@app.get`` over
  ``@database_resilient``, ``@app.post`` over ``@api_resilient``)
* FastAPI Integration — Middleware Integration (``resilience_middleware`` setting
  ``X-Resilience-Status`` from ``get_resilience_health()["overall_health"]``, and
  ``/health`` with its ``resilience`` part)
* Monitoring and Observability — Health Endpoints (``/health/resilience``,
  ``/metrics/resilience``)

The seed's ``/health`` with its ``clients`` part (``get_database_client``,
``get_redis_client``, ``get_http_client``, ``get_s3_client`` against real servers) is
ported whole in ``test_seed_1_fastapi_clients.py``.

``buttress.fastapi`` serves the same routes and header ready-made
(``ResilienceMiddleware``, ``resilience_router``): ``tests/fastapi/``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from _uvicorn import serving
from buttress import CircuitBreakerConfig, get_circuit_breaker
from buttress.flaky_server import FlakyServer
from buttress.testing import VirtualClock


async def async_query(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The seed's ``async_query``: runs its SQL (``%s`` placeholders) on SQLite."""
    with sqlite3.connect(":memory:") as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users VALUES (1, 'Ada'), (2, 'Grace')")
        rows = conn.execute(sql.replace("%s", "?"), params).fetchall()
    conn.close()
    return rows


def _endpoint_decoration(server: FlakyServer, clock: VirtualClock) -> Any:
    async def async_http_post(url: str, json: Any) -> Any:
        # The seed posts to https://api.external.com; here, the loopback server.
        url = url.replace("https://api.external.com", server.url)
        async with httpx.AsyncClient() as client:
            response = await client.post(url, json=json)
            response.raise_for_status()
            return response.json()

    from fastapi import FastAPI

    from buttress import api_resilient, database_resilient

    app = FastAPI()

    @app.get("/users/{user_id}")
    @database_resilient(operation_name="get_user_endpoint")
    async def get_user(user_id: int):  # type: ignore[no-untyped-def]
        # Database operation with resilience
        return await async_query("SELECT * FROM users WHERE id = %s", (user_id,))

    @app.post("/users")
    @api_resilient(operation_name="create_user_endpoint", clock=clock)
    async def create_user(user_data: dict):  # type: ignore[no-untyped-def,type-arg]
        # External API call with resilience
        return await async_http_post("https://api.external.com/users", json=user_data)

    return app


@pytest.mark.parametrize("transport", ["live", "testclient"])
def test_endpoint_decoration(server: FlakyServer, clock: VirtualClock, transport: str) -> None:
    app = _endpoint_decoration(server, clock)
    with _client(app, transport) as client:
        assert client.get("/users/2").json() == [[2, "Grace"]]
        assert client.get("/users/x").status_code == 422  # path parameter still typed

        server.script(503, 502, 200)  # the external API fails twice, then answers
        response = client.post("/users", json={"name": "Linus"})
        assert response.status_code == 200
        assert response.json() == {"ok": True, "path": "/users"}
        assert server.hits == 3
        breaker = get_circuit_breaker("create_user_endpoint")
        assert breaker.stats.failed_calls == 2


def _middleware_integration() -> Any:
    from fastapi import FastAPI, Request

    from buttress import get_resilience_health

    app = FastAPI()

    @app.middleware("http")
    async def resilience_middleware(request: Request, call_next):  # type: ignore[no-untyped-def]
        # Add resilience health to response headers
        response = await call_next(request)

        health = get_resilience_health()
        response.headers["X-Resilience-Status"] = health["overall_health"]

        return response

    @app.get("/health")
    async def health_check():  # type: ignore[no-untyped-def]
        """Health check endpoint including resilience status."""
        return {
            "status": "healthy",
            "resilience": get_resilience_health(),
        }

    return app


@pytest.mark.parametrize("transport", ["live", "testclient"])
def test_middleware_integration(clock: VirtualClock, transport: str) -> None:
    database = get_circuit_breaker("database", CircuitBreakerConfig(
        failure_threshold=1, critical=True), clock=clock)
    with _client(_middleware_integration(), transport) as client:
        response = client.get("/health")
        assert response.headers["X-Resilience-Status"] == "healthy"
        assert response.json()["resilience"]["circuit_breakers"]["database"]["state"] == "closed"

        with pytest.raises(ConnectionError):
            database.call(_refused)
        response = client.get("/health")
        assert response.headers["X-Resilience-Status"] == "unhealthy"
        assert response.json()["resilience"]["critical_open_breakers"] == ["database"]


def _health_endpoints() -> Any:
    from fastapi import FastAPI

    from buttress import get_resilience_health

    app = FastAPI()

    @app.get("/health/resilience")
    async def resilience_health():  # type: ignore[no-untyped-def]
        """Dedicated resilience health endpoint."""
        return get_resilience_health()

    @app.get("/metrics/resilience")
    async def resilience_metrics():  # type: ignore[no-untyped-def]
        """Resilience metrics for monitoring systems."""
        health = get_resilience_health()

        return {
            "circuit_breaker_states": {
                name: stats["state"]
                for name, stats in health["circuit_breakers"].items()
            },
            "failure_rates": {
                name: stats["failure_rate"]
                for name, stats in health["circuit_breakers"].items()
            },
            "total_calls": {
                name: stats["total_calls"]
                for name, stats in health["circuit_breakers"].items()
            },
            "overall_health": health["overall_health"],
        }

    return app


@pytest.mark.parametrize("transport", ["live", "testclient"])
def test_health_endpoints(clock: VirtualClock, transport: str) -> None:
    search = get_circuit_breaker("search_api", CircuitBreakerConfig(failure_threshold=2),
                                 clock=clock)
    search.call(lambda: None)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            search.call(_refused)
    with _client(_health_endpoints(), transport) as client:
        assert client.get("/health/resilience").json()["open_breakers"] == ["search_api"]
        assert client.get("/metrics/resilience").json() == {
            "circuit_breaker_states": {"search_api": "open"},
            "failure_rates": {"search_api": 2 / 3},
            "total_calls": {"search_api": 3},
            "overall_health": "degraded",
        }


def _refused() -> None:
    raise ConnectionError("connection refused")


@contextmanager
def _client(app: Any, transport: str) -> Iterator[httpx.Client]:
    """An httpx client on a live uvicorn server running ``app``, or a TestClient."""
    if transport == "testclient":
        with TestClient(app) as client:
            yield client
        return
    with serving(app) as url, httpx.Client(base_url=url) as client:
        yield client
