"""The resilient httpx transports against a real loopback server, sync and async.

Each case runs twice: through ``httpx.Client`` + :class:`ResilientTransport` and
through ``httpx.AsyncClient`` + :class:`AsyncResilientTransport`. Waits run on a
``VirtualClock`` (``clock.sleeps`` lists them); the server counts the requests
that reached it per path and method.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from buttress import RetryConfig, deadline
from buttress.fault_proxy import FaultProxy
from buttress.flaky_server import HANG, RESET, FlakyServer, Reply
from buttress.http import ResilientTransport
from buttress.testing import VirtualClock

if TYPE_CHECKING:
    from conftest import Open


def fast(attempts: int = 3, **options: Any) -> RetryConfig:
    """A retry with a fixed 1 s backoff (no jitter), so waits are exact."""
    return RetryConfig(max_attempts=attempts, base_delay=1.0, strategy="fixed_delay",
                       jitter=False, **options)


# --- what is retried ------------------------------------------------------------------


async def test_post_without_idempotency_key_is_sent_exactly_once_on_503(
        connect: Open, server: FlakyServer, clock: VirtualClock) -> None:
    server.route("/orders", 503, then=503)
    client = connect(retry=fast(5))
    response = await client.request("POST", "/orders", json={"sku": 1})
    assert response.status_code == 503
    assert server.requests("/orders", "POST") == 1
    assert clock.sleeps == []


async def test_post_with_an_idempotency_key_is_retried(
        connect: Open, server: FlakyServer, clock: VirtualClock) -> None:
    server.route("/orders", 503, 503, 201)
    client = connect(retry=fast(5))
    response = await client.request("POST", "/orders", json={"sku": 1},
                                    headers={"Idempotency-Key": "order-7"})
    assert response.status_code == 201
    assert server.requests("/orders", "POST") == 3
    assert clock.sleeps == [1.0, 1.0]


async def test_post_opted_in_per_request_is_retried(
        connect: Open, server: FlakyServer) -> None:
    server.route("/orders", 502, 200)
    client = connect(retry=fast())
    response = await client.request("POST", "/orders", content=b"x",
                                    extensions={"buttress.retry": True})
    assert response.status_code == 200
    assert server.requests("/orders") == 2


async def test_post_opted_in_per_client_is_retried(connect: Open, server: FlakyServer) -> None:
    server.route("/orders", 504, 200)
    client = connect(retry=fast(), retry_non_idempotent=True)
    assert (await client.request("PATCH", "/orders", content=b"x")).status_code == 200
    assert server.requests("/orders", "PATCH") == 2


async def test_get_opted_out_per_request_is_sent_once(connect: Open, server: FlakyServer) -> None:
    server.route("/users", 503, 200)
    client = connect(retry=fast())
    response = await client.request("GET", "/users", extensions={"buttress.retry": False})
    assert response.status_code == 503
    assert server.requests("/users") == 1


async def test_get_is_sent_exactly_max_attempts_times_and_the_last_response_is_returned(
        connect: Open, server: FlakyServer, clock: VirtualClock) -> None:
    server.route("/users", 503, then=503)
    client = connect(retry=fast(4))
    response = await client.request("GET", "/users")
    assert response.status_code == 503
    assert response.json() == {"error": "injected fault", "status": 503}
    assert server.requests("/users", "GET") == 4
    assert clock.sleeps == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"])
async def test_every_idempotent_method_is_retried_on_each_retry_status(
        connect: Open, server: FlakyServer, method: str) -> None:
    server.route("/item", 429, 502, 503, 504, 200)
    client = connect(retry=fast(5))
    assert (await client.request(method, "/item")).status_code == 200
    assert server.requests("/item", method) == 5


@pytest.mark.parametrize("status", [400, 404, 409, 500, 501])
async def test_other_statuses_are_answered_at_once(
        connect: Open, server: FlakyServer, status: int) -> None:
    server.route("/item", status, then=200)
    client = connect(retry=fast())
    assert (await client.request("GET", "/item")).status_code == status
    assert server.requests("/item") == 1


async def test_the_retried_statuses_are_configurable(connect: Open, server: FlakyServer) -> None:
    server.route("/item", 500, 500, 200)
    client = connect(retry=fast(), retry_statuses={500})
    assert (await client.request("GET", "/item")).status_code == 200
    assert server.requests("/item") == 3


async def test_a_body_that_can_not_be_replayed_is_sent_once(
        connect: Open, server: FlakyServer) -> None:
    server.route("/upload", 503, then=200)
    client = connect(retry=fast())

    def chunks() -> Iterator[bytes]:
        yield b"part"

    async def achunks() -> AsyncIterator[bytes]:
        yield b"part"

    body = chunks() if client.kind == "sync" else achunks()
    response = await client.request("PUT", "/upload", content=body)
    assert response.status_code == 503
    assert server.requests("/upload") == 1


# --- network faults ---------------------------------------------------------------------


async def test_a_reset_connection_is_retried_for_get(connect: Open, server: FlakyServer) -> None:
    server.route("/users", RESET, RESET, 200)
    client = connect(retry=fast())
    assert (await client.request("GET", "/users")).status_code == 200
    assert server.requests("/users") == 3


async def test_a_reset_connection_is_not_retried_for_post(
        connect: Open, server: FlakyServer) -> None:
    server.route("/orders", RESET, then=200)
    client = connect(retry=fast())
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        await client.request("POST", "/orders", content=b"x")
    assert server.requests("/orders") == 1


async def test_a_refused_connection_is_retried_even_for_post(
        connect: Open, server: FlakyServer, proxy: FaultProxy) -> None:
    proxy.refuse()
    # The first failed attempt brings the server back: the POST never left before.
    client = connect(f"http://127.0.0.1:{proxy.port}",
                     retry=fast(3, on_retry=lambda attempt, exc: proxy.restore()))
    response = await client.request("POST", "/orders", content=b"x")
    assert response.status_code == 200
    assert server.requests("/orders", "POST") == 1


async def test_refused_connections_raise_the_last_connect_error_when_attempts_run_out(
        connect: Open, proxy: FaultProxy, clock: VirtualClock) -> None:
    proxy.refuse()
    client = connect(f"http://127.0.0.1:{proxy.port}", retry=fast(3))
    with pytest.raises(httpx.ConnectError):
        await client.request("GET", "/users")
    assert clock.sleeps == [1.0, 1.0]


@pytest.mark.wallclock
async def test_a_read_timeout_is_retried_for_get_but_not_for_post(
        connect: Open, server: FlakyServer) -> None:
    server.route("/slow", HANG, 200)
    server.route("/slow-post", HANG, then=200)
    client = connect(retry=fast())
    response = await client.request("GET", "/slow", timeout=0.2)
    assert response.status_code == 200
    assert server.requests("/slow") == 2
    with pytest.raises(httpx.ReadTimeout):
        await client.request("POST", "/slow-post", content=b"x", timeout=0.2)
    assert server.requests("/slow-post") == 1


# --- Retry-After and deadlines -------------------------------------------------------------


async def test_retry_after_in_seconds_sets_the_wait(
        connect: Open, server: FlakyServer, clock: VirtualClock) -> None:
    server.route("/users", Reply(503, retry_after="7"), Reply(429, retry_after=2.5), 200)
    client = connect(retry=fast(3, max_delay=30.0))
    assert (await client.request("GET", "/users")).status_code == 200
    assert clock.sleeps == [7.0, 2.5]


async def test_a_retry_after_of_one_day_is_capped_at_max_delay(
        connect: Open, server: FlakyServer, clock: VirtualClock) -> None:
    server.route("/users", Reply(503, retry_after="86400"), 200)
    client = connect(retry=fast(3, max_delay=30.0))
    assert (await client.request("GET", "/users")).status_code == 200
    assert clock.sleeps == [30.0]


async def test_a_retry_after_http_date_sets_the_wait(
        connect: Open, server: FlakyServer, clock: VirtualClock) -> None:
    in_a_day = email.utils.formatdate(time.time() + 86400, usegmt=True)
    in_20s = email.utils.formatdate(time.time() + 20, usegmt=True)
    server.route("/users", Reply(503, retry_after=in_a_day), Reply(503, retry_after=in_20s), 200)
    client = connect(retry=fast(3, max_delay=60.0))
    assert (await client.request("GET", "/users")).status_code == 200
    assert clock.sleeps[0] == 60.0
    assert 18.0 <= clock.sleeps[1] <= 20.0  # whole seconds, read a moment later


async def test_no_wait_starts_that_would_end_past_the_call_deadline(
        connect: Open, server: FlakyServer, clock: VirtualClock) -> None:
    server.route("/users", Reply(503, retry_after="20"), then=200)
    client = connect(retry=fast(3, max_delay=60.0))
    async with deadline(10.0, clock=clock):
        response = await client.request("GET", "/users")
    assert response.status_code == 503  # the last response, not a wait of 20 s
    assert server.requests("/users") == 1
    assert clock.sleeps == []


async def test_the_remaining_deadline_is_each_attempts_httpx_timeout(
        clock: VirtualClock) -> None:
    seen: list[dict[str, float]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        clock.advance(1.5)  # the attempt "takes" 1.5 s
        return httpx.Response(503)

    transport = ResilientTransport(httpx.MockTransport(answer), retry=fast(3), clock=clock)
    with httpx.Client(transport=transport, timeout=2.0) as client, \
            deadline(4.0, clock=clock):
        response = client.get("http://api.test/users")
    assert response.status_code == 503
    # 4 s left: the 2 s client timeout stands; after 1.5 + 1 s, 1.5 s are left.
    assert [t["read"] for t in seen] == [2.0, 1.5]
    assert seen[1] == {"connect": 1.5, "read": 1.5, "write": 1.5, "pool": 1.5}


@pytest.mark.wallclock
async def test_a_hanging_server_is_cut_off_at_the_deadline(
        connect: Open, server: FlakyServer) -> None:
    from buttress._core.clock import SYSTEM_CLOCK
    server.route("/stuck", HANG, then=HANG)
    client = connect(retry=fast(3), clock=SYSTEM_CLOCK)
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        async with deadline(0.3):
            await client.request("GET", "/stuck", timeout=30.0)
    assert time.monotonic() - started < 2.0
    assert server.requests("/stuck") == 1  # no second attempt: the deadline was spent
