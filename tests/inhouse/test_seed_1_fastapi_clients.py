"""Seed S1 — ``pynomaly.infrastructure.resilience`` (``seeds/001_6f70dcf2bc98fc51.txt``):
FastAPI Integration — Middleware Integration, the ``/health`` endpoint whole, with
its ``clients`` part: the health checks of ``get_database_client``,
``get_redis_client``, ``get_http_client`` and ``get_s3_client``.

Every client talks to a real server on loopback, found the way the seed's
``get_*_client()`` calls (no arguments) find theirs: ``DATABASE_URL`` names the
test PostgreSQL, ``REDIS_URL`` the test redis-server, ``BUTTRESS_HTTP_BASE_URL``
the loopback ``FlakyServer``, ``AWS_ENDPOINT_URL`` moto's S3 server. The example's
code is the seed's, with the import line changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from _uvicorn import serving
from buttress.flaky_server import FlakyServer
from buttress.testing import reset_registries
from servers.fixtures import _aws_credentials, moto_s3, redis_server, redis_url
from servers.postgres import shared_server
from servers.s3 import MotoS3

__all__ = ["_aws_credentials", "moto_s3", "redis_server", "redis_url"]


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch, redis_url: str,
            moto_s3: MotoS3) -> Iterator[FlakyServer]:
    monkeypatch.setenv("DATABASE_URL", shared_server().url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_s3.url)
    with FlakyServer(failure_rate=0.0) as http:
        monkeypatch.setenv("BUTTRESS_HTTP_BASE_URL", http.url)
        reset_registries()  # no client shared from another test's servers
        yield http
    reset_registries()


def _seed_app() -> Any:
    from fastapi import FastAPI, Request

    from buttress import (
        get_database_client,
        get_http_client,
        get_redis_client,
        get_resilience_health,
        get_s3_client,
    )

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
            "clients": {
                "database": get_database_client().health_check(),
                "redis": await get_redis_client().health_check(),
                "http": get_http_client().health_check(),
                "s3": get_s3_client().health_check(),
            }
        }

    return app


def _check(document: dict[str, Any]) -> None:
    clients = document["clients"]
    assert set(clients) == {"database", "redis", "http", "s3"}
    for name, health in clients.items():
        assert health["status"] == "healthy", (name, health)
    assert clients["database"]["backend"] == "postgresql"
    assert document["resilience"]["overall_health"] == "healthy"


def test_the_health_endpoint_reports_every_real_client_with_the_test_client(
        servers: FlakyServer) -> None:
    with TestClient(_seed_app()) as client:
        response = client.get("/health")
    assert response.status_code == 200
    assert response.headers["X-Resilience-Status"] == "healthy"
    _check(response.json())
    assert servers.requests("/health") == 1  # the HTTP client's check reached the server


@pytest.mark.wallclock
def test_the_health_endpoint_reports_every_real_client_on_a_live_server(
        servers: FlakyServer) -> None:
    with serving(_seed_app()) as base:
        response = httpx.get(f"{base}/health", timeout=30)
    assert response.status_code == 200
    assert response.headers["X-Resilience-Status"] == "healthy"
    _check(response.json())
