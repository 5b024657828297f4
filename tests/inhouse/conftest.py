"""Fixtures for the ported seed examples.

* ``server`` — a real :class:`FlakyServer` on loopback (random free port), stopped after.
* ``closed_url`` — a loopback URL nobody listens on (connection refused).
* ``clock`` — a fresh :class:`VirtualClock`; examples take it as their one extra
  keyword (``clock=clock``) so backoff and recovery timeouts cost no wall time.

Every test also starts with empty registries (``tests/conftest.py``), so the breaker
names the seeds reuse ("external_api", ...) start clean.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from buttress.flaky_server import FlakyServer
from buttress.testing import VirtualClock

from ._standins import closed_port_url


@pytest.fixture
def server() -> Iterator[FlakyServer]:
    """A real HTTP server on 127.0.0.1 with scripted faults (``server.script(503, 200)``)."""
    flaky = FlakyServer().start()
    try:
        yield flaky
    finally:
        flaky.stop()


@pytest.fixture
def closed_url() -> str:
    """``http://127.0.0.1:<port>`` with nothing listening."""
    return closed_port_url()


@pytest.fixture
def clock() -> VirtualClock:
    """Virtual time for the examples' delays and timeouts."""
    return VirtualClock()
