"""Seed S0 — ``utils.resilience`` (``seeds/000_bd9eb1b9a1dab812.txt``): the HTTP examples
(``retry_http_request``) with the real ``requests`` and ``httpx`` libraries.

``test_seed_0_utils_resilience.py`` ports the same examples through urllib
stand-ins; here each runs as written, only the import line changed to
``from buttress import ...`` and example.com replaced by the loopback
``FlakyServer``, so the errors ``retry_http_request`` judges are the libraries'
own (``requests.HTTPError``, ``httpx.HTTPStatusError``, ``httpx.ConnectError``,
``httpx.ReadTimeout``), ``Retry-After`` included. ``clock=clock`` (a
``VirtualClock``) is the one extra keyword, so backoff costs no time.

Ported:

* Quick Start — HTTP Requests with Resilience (``requests``), and the same with httpx
* Quick Start — Async Operations (``async_retry_with_backoff`` with
  ``exceptions=(httpx.RequestError, httpx.TimeoutException)``)
* Best Practices §2 — Set Reasonable Timeouts (``max_delay=30.0`` caps a server's
  ``Retry-After``)
* Best Practices §4 — Circuit Breakers for External Dependencies
* Integration Examples — GitHub API Client (``httpx.AsyncClient``)
* Migration Guide — From Basic Requests
"""

from __future__ import annotations

import socket

import httpx
import pytest
import requests

from buttress import RetryExhaustedError, get_circuit_breaker_stats
from buttress.flaky_server import HANG, RESET, FlakyServer, Reply
from buttress.testing import VirtualClock


def test_http_requests_with_resilience_using_requests(server: FlakyServer,
                                                      clock: VirtualClock) -> None:
    from buttress import retry_http_request

    @retry_http_request(max_attempts=3, base_delay=1.0, clock=clock)
    def fetch_data():
        response = requests.get(f"{server.url}/data", timeout=5)
        response.raise_for_status()
        return response.json()

    server.route("/data", 503, 502, 200)
    assert fetch_data() == {"ok": True, "path": "/data"}
    assert server.requests("/data") == 3
    assert len(clock.sleeps) == 2


def test_http_requests_with_resilience_using_httpx(server: FlakyServer,
                                                   clock: VirtualClock) -> None:
    from buttress import retry_http_request

    @retry_http_request(max_attempts=3, base_delay=1.0, clock=clock)
    def fetch_data():
        response = httpx.get(f"{server.url}/data")
        response.raise_for_status()
        return response.json()

    server.route("/data", Reply(503, retry_after="4"), RESET, 200)
    assert fetch_data() == {"ok": True, "path": "/data"}
    assert server.requests("/data") == 3
    assert clock.sleeps[0] == 4.0  # the server's Retry-After, not the backoff


def test_http_requests_are_not_retried_on_a_client_error(server: FlakyServer,
                                                         clock: VirtualClock) -> None:
    from buttress import retry_http_request

    @retry_http_request(max_attempts=3, base_delay=1.0, clock=clock)
    def fetch_data():
        response = httpx.get(f"{server.url}/data")
        response.raise_for_status()
        return response.json()

    server.route("/data", 404, then=200)
    with pytest.raises(httpx.HTTPStatusError):
        fetch_data()
    assert server.requests("/data") == 1


async def test_async_operations_with_httpx_errors(server: FlakyServer,
                                                  clock: VirtualClock) -> None:
    from buttress import async_retry_with_backoff

    async def make_async_request():
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{server.url}/data", timeout=0.2)
            return response.json()

    async def fetch_async_data():
        result = await async_retry_with_backoff(
            make_async_request,
            max_attempts=3,
            base_delay=1.0,
            exceptions=(httpx.RequestError, httpx.TimeoutException),
            clock=clock,
        )

        if not result.success:
            raise result.last_exception

        return await make_async_request()

    server.route("/data", RESET, HANG, 200, 200)
    assert await fetch_async_data() == {"ok": True, "path": "/data"}
    assert server.requests("/data") == 4  # reset, timeout, success; then the example's own


def test_best_practice_reasonable_timeouts_cap_retry_after(server: FlakyServer,
                                                           clock: VirtualClock) -> None:
    from buttress import retry_http_request

    @retry_http_request(max_attempts=3, base_delay=1.0, max_delay=30.0, clock=clock)
    def fetch_data():
        response = httpx.get(f"{server.url}/data")
        response.raise_for_status()
        return response.json()

    server.route("/data", Reply(429, retry_after="86400"), 200)
    assert fetch_data()["ok"] is True
    assert clock.sleeps == [30.0]


def test_best_practice_circuit_breakers_for_external_dependencies(
        server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import retry_http_request

    class PaymentAPI:  # stand-in: the reader's payment client, over real httpx
        def charge(self, amount):
            response = httpx.post(f"{server.url}/charge", json={"amount": amount})
            response.raise_for_status()
            return response.json()

    payment_api = PaymentAPI()

    @retry_http_request(circuit_breaker="payment_api", clock=clock)
    def process_payment(amount):
        return payment_api.charge(amount)

    server.route("/charge", 503, then=503)
    with pytest.raises(RetryExhaustedError) as caught:
        process_payment(10)
    assert isinstance(caught.value.last_exception, httpx.HTTPStatusError)
    assert server.requests("/charge") == 3
    stats = get_circuit_breaker_stats("payment_api")
    assert stats is not None
    assert stats["failed_calls"] == 3


async def test_github_api_client(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import retry_http_request

    class GitHubClient:
        @retry_http_request(circuit_breaker="github_api", clock=clock)
        async def get_repository(self, owner, repo):
            async with httpx.AsyncClient() as client:
                response = await client.get(f"{server.url}/repos/{owner}/{repo}")
                response.raise_for_status()
                return response.json()

    server.route("/repos/python/cpython", 502, Reply(503, retry_after="1"), 200)
    repository = await GitHubClient().get_repository("python", "cpython")
    assert repository == {"ok": True, "path": "/repos/python/cpython"}
    assert server.requests("/repos/python/cpython") == 3
    assert clock.sleeps[1] == 1.0


def test_migration_from_basic_requests(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import retry_http_request

    @retry_http_request(clock=clock)
    def fetch_data():
        response = requests.get(server.url, timeout=5)
        response.raise_for_status()
        return response

    server.route("/", 503, 200)
    result = fetch_data()
    assert result.status_code == 200
    assert server.requests("/") == 2


def test_a_refused_connection_is_retried_then_reported(clock: VirtualClock) -> None:
    from buttress import retry_http_request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    @retry_http_request(max_attempts=3, clock=clock)
    def fetch_data():
        return httpx.get(f"http://127.0.0.1:{port}/data").json()

    with pytest.raises(RetryExhaustedError) as caught:
        fetch_data()
    assert caught.value.attempts == 3
    assert isinstance(caught.value.last_exception, httpx.ConnectError)
