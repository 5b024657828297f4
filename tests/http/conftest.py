"""Fixtures of the HTTP tests: real loopback servers, a fault proxy, virtual time.

* ``server`` / ``other_server`` — two :class:`FlakyServer` instances (two hosts, as
  far as per-host breakers go: a host is host and port) with faults per path.
* ``proxy`` — a :class:`FaultProxy` in front of ``server`` for network faults
  (refused connections, blackholes, resets).
* ``clock`` — a :class:`VirtualClock`: backoff and ``Retry-After`` waits cost no time.

Every test starts with empty registries (``tests/conftest.py``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from buttress.fault_proxy import FaultProxy
from buttress.flaky_server import FlakyServer
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
