"""No connection leaks: 1,000 failing requests leave the pool as they found it.

Every retried response is read and closed before the next attempt, so its
connection goes back to the pool: one client sending requests one after the
other keeps using one keep-alive connection. A leaked response would hold its
connection and force a new one per attempt (until the pool ran dry).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from buttress import RetryConfig
from buttress.flaky_server import RESET, FlakyServer
from buttress.http import AsyncResilientTransport, ResilientTransport
from buttress.testing import VirtualClock

REQUESTS = 1_000
# Retried statuses only: this is about the transport's handling, not the breaker.
NO_BREAKER_STATUSES: dict[str, Any] = {"breaker_statuses": []}


def open_sockets() -> int:
    """Sockets this process holds open."""
    fds = Path(f"/proc/{os.getpid()}/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:
            continue
    return count


def pool_connections(transport: ResilientTransport | AsyncResilientTransport) -> list[Any]:
    """The connections of the wrapped httpx transport's httpcore pool."""
    return list(transport._inner._pool.connections)  # type: ignore[union-attr]


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_a_thousand_failing_sync_requests_leak_no_connection(
        server: FlakyServer, clock: VirtualClock) -> None:
    server.route("/users", 503, then=503)
    transport = ResilientTransport(retry=RetryConfig(max_attempts=2, base_delay=0.0),
                                   clock=clock, **NO_BREAKER_STATUSES)
    with httpx.Client(transport=transport, base_url=server.url) as client:
        client.get("/users")  # warm: one connection, the SSL context, ...
        before = open_sockets()
        for _ in range(REQUESTS):
            assert client.get("/users").status_code == 503
        connections = pool_connections(transport)
        assert len(connections) == 1
        assert all(c.is_idle() for c in connections)
        assert open_sockets() - before <= 0
    assert server.requests("/users") == 2 * (REQUESTS + 1)


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
async def test_a_thousand_failing_async_requests_leak_no_connection(
        server: FlakyServer, clock: VirtualClock) -> None:
    server.route("/users", 503, then=503)
    transport = AsyncResilientTransport(retry=RetryConfig(max_attempts=2, base_delay=0.0),
                                        clock=clock, **NO_BREAKER_STATUSES)
    async with httpx.AsyncClient(transport=transport, base_url=server.url) as client:
        await client.get("/users")
        before = open_sockets()
        for _ in range(REQUESTS):
            assert (await client.get("/users")).status_code == 503
        connections = pool_connections(transport)
        assert len(connections) == 1
        assert all(c.is_idle() for c in connections)
        assert open_sockets() - before <= 0
    assert server.requests("/users") == 2 * (REQUESTS + 1)


def test_reset_connections_are_dropped_not_kept(server: FlakyServer,
                                                clock: VirtualClock) -> None:
    server.route("/users", 200, *([RESET, 200] * 100))
    transport = ResilientTransport(retry=RetryConfig(max_attempts=2, base_delay=0.0),
                                   clock=clock)
    with httpx.Client(transport=transport, base_url=server.url) as client:
        client.get("/users")  # one live keep-alive connection: its two ends
        before = open_sockets()
        for _ in range(100):
            assert client.get("/users").status_code == 200
        assert len(pool_connections(transport)) <= 1
        assert open_sockets() - before <= 0
