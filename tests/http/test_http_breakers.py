"""One breaker per host: opened by a host that is unwell, never by a 4xx, bounded.

Sync and async share the cases (the ``connect`` fixture of the transport tests).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx
import pytest

from buttress import CircuitBreakerConfig, CircuitBreakerError, CircuitState, RetryConfig
from buttress.fault_proxy import FaultProxy
from buttress.flaky_server import HANG, FlakyServer
from buttress.http import HostBreakers, HttpPolicy
from buttress.testing import VirtualClock

if TYPE_CHECKING:
    from conftest import Open

ONCE = RetryConfig(max_attempts=1)
THREE = CircuitBreakerConfig(failure_threshold=3, recovery_timeout=30.0)


@pytest.mark.wallclock
async def test_a_hanging_host_opens_its_breaker_after_the_threshold_while_another_stays_closed(
        connect: Open, server: FlakyServer, other_server: FlakyServer) -> None:
    server.route("/stuck", HANG, then=HANG)
    client = connect(retry=ONCE, circuit_breaker=THREE)
    for _ in range(3):
        with pytest.raises(httpx.ReadTimeout):
            await client.request("GET", "/stuck", timeout=0.1)
    with pytest.raises(CircuitBreakerError) as rejected:
        await client.request("GET", "/stuck", timeout=0.1)
    # The client gives up after 0.1 s; on a loaded machine the server's thread
    # may record the third request a moment later (bounded wait, real time).
    for _ in range(200):
        if server.requests("/stuck") >= 3:
            break
        await asyncio.sleep(0.01)
    assert server.requests("/stuck") == 3  # the fourth never left
    assert rejected.value.name == f"http:127.0.0.1:{server.port}"

    response = await client.request("GET", f"{other_server.url}/users")
    assert response.status_code == 200
    assert client.transport.breaker_for(server.url).state is CircuitState.OPEN
    assert client.transport.breaker_for(other_server.url).state is CircuitState.CLOSED


@pytest.mark.wallclock
async def test_a_blackholed_host_times_out_and_opens_its_breaker(
        connect: Open, server: FlakyServer, proxy: FaultProxy) -> None:
    proxy.blackhole()  # connections open, nothing comes back
    client = connect(f"http://127.0.0.1:{proxy.port}", retry=ONCE, circuit_breaker=THREE)
    for _ in range(3):
        with pytest.raises(httpx.TimeoutException):
            await client.request("GET", "/users", timeout=0.1)
    with pytest.raises(CircuitBreakerError):
        await client.request("GET", "/users", timeout=0.1)
    assert server.requests("/users") == 0


async def test_server_errors_open_the_breaker(connect: Open, server: FlakyServer) -> None:
    server.route("/users", 500, then=500)
    client = connect(retry=ONCE, circuit_breaker=THREE)
    for _ in range(3):
        assert (await client.request("GET", "/users")).status_code == 500
    with pytest.raises(CircuitBreakerError):
        await client.request("GET", "/users")
    assert server.requests("/users") == 3


async def test_client_errors_never_open_the_breaker(connect: Open, server: FlakyServer) -> None:
    server.route("/users", 404, then=404)
    client = connect(retry=ONCE, circuit_breaker=THREE)
    for _ in range(10):
        assert (await client.request("GET", "/users")).status_code == 404
    assert client.transport.breaker_for(server.url).state is CircuitState.CLOSED
    assert server.requests("/users") == 10


async def test_refused_connections_open_the_breaker(
        connect: Open, proxy: FaultProxy) -> None:
    proxy.refuse()
    url = f"http://127.0.0.1:{proxy.port}"
    client = connect(url, retry=ONCE, circuit_breaker=THREE)
    for _ in range(3):
        with pytest.raises(httpx.ConnectError):
            await client.request("GET", "/users")
    with pytest.raises(CircuitBreakerError):
        await client.request("GET", "/users")


async def test_retried_statuses_count_once_per_attempt_and_the_open_breaker_stops_the_retry(
        connect: Open, server: FlakyServer, clock: VirtualClock) -> None:
    server.route("/users", 503, then=503)
    client = connect(retry=RetryConfig(max_attempts=10, base_delay=0.0), circuit_breaker=THREE)
    with pytest.raises(CircuitBreakerError):
        await client.request("GET", "/users")
    assert server.requests("/users") == 3


async def test_the_breaker_statuses_are_configurable(connect: Open, server: FlakyServer) -> None:
    server.route("/users", 503, then=503)
    client = connect(retry=ONCE, circuit_breaker=THREE, breaker_statuses=[])
    for _ in range(5):
        assert (await client.request("GET", "/users")).status_code == 503
    assert client.transport.breaker_for(server.url).state is CircuitState.CLOSED


async def test_an_open_breaker_recovers_after_its_timeout(
        connect: Open, server: FlakyServer, clock: VirtualClock) -> None:
    server.route("/users", 500, 500, 500, then=200)
    client = connect(retry=ONCE, circuit_breaker=CircuitBreakerConfig(
        failure_threshold=3, recovery_timeout=30.0, success_threshold=1))
    for _ in range(3):
        await client.request("GET", "/users")
    with pytest.raises(CircuitBreakerError):
        await client.request("GET", "/users")
    clock.advance(30.0)
    assert (await client.request("GET", "/users")).status_code == 200
    assert client.transport.breaker_for(server.url).state is CircuitState.CLOSED


async def test_the_breaker_registry_keeps_the_most_recently_used_hosts(
        connect: Open, server: FlakyServer, other_server: FlakyServer,
        proxy: FaultProxy) -> None:
    client = connect(retry=ONCE, max_hosts=2)
    for url in (server.url, other_server.url, f"http://127.0.0.1:{proxy.port}"):
        await client.request("GET", f"{url}/users")
    names = list(client.transport.breakers.breakers())
    assert names == [f"http:127.0.0.1:{other_server.port}", f"http:127.0.0.1:{proxy.port}"]


async def test_sync_and_async_transports_can_share_the_host_breakers(
        server: FlakyServer, clock: VirtualClock) -> None:
    from buttress.http import AsyncResilientTransport, ResilientTransport

    shared = HostBreakers(THREE, clock=clock)
    server.route("/users", 500, then=500)
    with httpx.Client(transport=ResilientTransport(retry=ONCE, breakers=shared)) as sync:
        for _ in range(3):
            sync.get(f"{server.url}/users")
    transport = AsyncResilientTransport(retry=ONCE, breakers=shared)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(CircuitBreakerError):
            await client.get(f"{server.url}/users")


def test_breaker_names_carry_no_credentials_path_or_query(clock: VirtualClock) -> None:
    breakers = HostBreakers(clock=clock)
    breaker = breakers.for_url(httpx.URL("https://bob:secret@api.example.com/v1?token=x"))
    assert breaker.name == "http:api.example.com:443"


def test_bad_policy_options_name_the_field_and_value() -> None:
    from buttress import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"HttpPolicy\.retry_statuses.*700"):
        HttpPolicy(retry_statuses=[503, 700])
    with pytest.raises(ConfigurationError, match=r"HttpPolicy\.retry_methods"):
        HttpPolicy(retry_methods="GET")
    with pytest.raises(ConfigurationError, match=r"HostBreakers\.max_hosts"):
        HostBreakers(max_hosts=0)


async def test_a_breaker_template_with_a_fallback_answers_an_open_host(
        connect: Open, server: FlakyServer) -> None:
    def cached(error: Exception, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"cached": True})

    server.route("/users", 500, then=500)
    client = connect(retry=ONCE, circuit_breaker=CircuitBreakerConfig(
        failure_threshold=2, fallback=cached))
    for _ in range(2):
        assert (await client.request("GET", "/users")).status_code == 500
    response = await client.request("GET", "/users")
    assert response.json() == {"cached": True}
    assert server.requests("/users") == 2
