"""Seed S1 — ``pynomaly.infrastructure.resilience`` (``seeds/001_6f70dcf2bc98fc51.txt``):
the HTTP client examples (``get_http_client``).

Each test is one example with its import line changed to ``from buttress import
...`` and ``https://api.example.com`` replaced by the loopback ``FlakyServer``.

Ported:

* Resilient Clients — HTTP Client (``get_http_client(base_url=...)``, ``client.get``,
  ``await client.async_post``)
* Health Monitoring — Client Health Checks, the HTTP part (``get_http_client()`` with
  no argument: the base URL comes from ``BUTTRESS_HTTP_BASE_URL``;
  ``health_check("/health")["status"]``)

Left to the FastAPI port: FastAPI Integration — Middleware Integration's ``/health``
route (it calls ``get_http_client().health_check()`` among the other clients).
"""

from __future__ import annotations

import pytest

from buttress.flaky_server import FlakyServer


async def test_http_client(server: FlakyServer) -> None:
    from buttress import get_http_client

    # Get resilient HTTP client
    client = get_http_client(base_url=server.url)

    # HTTP operations
    server.route("/users", 503, 200)
    response = client.get("/users")
    result = await client.async_post("/users", json={"name": "John"})

    assert response.status_code == 200
    assert response.json() == {"ok": True, "path": "/users"}
    assert result.status_code == 200
    assert server.requests("/users", "GET") == 2  # the 503 was retried
    assert server.requests("/users", "POST") == 1


async def test_http_client_does_not_resend_a_post(server: FlakyServer) -> None:
    from buttress import get_http_client

    client = get_http_client(base_url=server.url)
    server.route("/users", 503, then=201)
    result = await client.async_post("/users", json={"name": "John"})
    assert result.status_code == 503
    assert server.requests("/users", "POST") == 1


def test_client_health_checks_http(server: FlakyServer, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    from buttress import get_http_client

    monkeypatch.setenv("BUTTRESS_HTTP_BASE_URL", server.url)

    # HTTP health
    http_client = get_http_client()
    http_health = http_client.health_check("/health")
    print(f"HTTP API status: {http_health['status']}")

    assert capsys.readouterr().out == "HTTP API status: healthy\n"
    server.route("/health", 503)
    assert http_client.health_check("/health")["status"] == "unhealthy"
