"""Fixtures of the HTTP tests: real loopback servers, a fault proxy, virtual time.

* ``server`` / ``other_server`` — two :class:`FlakyServer` instances (two hosts, as
  far as per-host breakers go: a host is host and port) with faults per path.
* ``proxy`` — a :class:`FaultProxy` in front of ``server`` for network faults
  (refused connections, blackholes, resets).
* ``clock`` — a :class:`VirtualClock`: backoff and ``Retry-After`` waits cost no time.
* ``connect`` — parametrized sync/async: ``connect(**transport_options)`` gives a
  client of the run's kind whose ``request`` is awaitable either way, so sync and
  async share every case.

Every test starts with empty registries (``tests/conftest.py``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from buttress.fault_proxy import FaultProxy
from buttress.flaky_server import FlakyServer
from buttress.http import AsyncResilientTransport, ResilientTransport
from buttress.testing import VirtualClock


def _started(server: FlakyServer | FaultProxy) -> None:
    try:
        server.start()
    except OSError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"a loopback server could not start: {exc}")
        raise


@pytest.fixture(autouse=True)
def _quiet_retries(caplog: pytest.LogCaptureFixture) -> None:
    """Retries log a warning each; these tests count them instead."""
    caplog.set_level(logging.ERROR, logger="buttress")


@pytest.fixture
def server(flaky_http_server: FlakyServer) -> FlakyServer:
    """A real HTTP server on 127.0.0.1 (``server.route(path, 503, 200)``)."""
    return flaky_http_server


@pytest.fixture
def other_server() -> Iterator[FlakyServer]:
    """A second loopback server: another host for the per-host breakers."""
    flaky = FlakyServer(hang_limit=10.0)
    _started(flaky)
    try:
        yield flaky
    finally:
        flaky.stop()


@pytest.fixture
def proxy(server: FlakyServer) -> Iterator[FaultProxy]:
    """A TCP fault proxy in front of ``server``."""
    fault = FaultProxy("127.0.0.1", server.port)
    _started(fault)
    try:
        yield fault
    finally:
        fault.stop()


@pytest.fixture
def clock() -> VirtualClock:
    """Virtual time for backoff and Retry-After waits."""
    return VirtualClock()


class Driver:
    """One client of either kind behind one awaitable ``request``."""

    def __init__(self, kind: str, base_url: str, **options: Any) -> None:
        self.kind = kind
        if kind == "sync":
            self.transport: Any = ResilientTransport(**options)
            self.sync = httpx.Client(base_url=base_url, transport=self.transport, timeout=5.0)
        else:
            self.transport = AsyncResilientTransport(**options)
            self.async_ = httpx.AsyncClient(base_url=base_url, transport=self.transport,
                                            timeout=5.0)

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if self.kind == "sync":
            return self.sync.request(method, url, **kwargs)
        return await self.async_.request(method, url, **kwargs)

    async def close(self) -> None:
        if self.kind == "sync":
            self.sync.close()
        else:
            await self.async_.aclose()


Open = Callable[..., Driver]


@pytest.fixture(params=["sync", "async"])
async def connect(request: pytest.FixtureRequest, server: FlakyServer,
                  clock: VirtualClock) -> AsyncIterator[Open]:
    """``connect(**transport_options)``: a client of this run's kind to ``server``."""
    made: list[Driver] = []

    def open_client(base_url: str | None = None, **options: Any) -> Driver:
        options.setdefault("clock", clock)
        driver = Driver(request.param, base_url or server.url, **options)
        made.append(driver)
        return driver

    yield open_client
    for driver in made:
        await driver.close()
