"""pytest fixtures shipped with buttress (registered through the ``pytest11`` entry point).

* ``virtual_clock`` — a fresh :class:`buttress.testing.VirtualClock`.
* ``buttress_reset`` — clears every buttress registry before and after the test.
* ``flaky_http_server`` — a real :class:`buttress.flaky_server.FlakyServer` on
  ``127.0.0.1`` (a free port), with faults scripted per path
  (``flaky_http_server.route("/orders", 503, RESET, 200)``), stopped after the test.
  Under ``CI=true`` a server that can not start fails the test instead of erroring.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from buttress.flaky_server import FlakyServer
from buttress.testing import VirtualClock, reset_registries


@pytest.fixture
def virtual_clock() -> VirtualClock:
    """A virtual clock starting at 0.0."""
    return VirtualClock()


@pytest.fixture
def buttress_reset() -> Iterator[None]:
    """Reset all buttress registries around the test."""
    reset_registries()
    yield
    reset_registries()


@pytest.fixture
def flaky_http_server() -> Iterator[FlakyServer]:
    """A loopback HTTP server with scripted faults; hangs last at most 10 s."""
    server = FlakyServer(hang_limit=10.0)
    try:
        server.start()
    except OSError as exc:  # no loopback, no free port: a broken machine, not a pass
        if os.environ.get("CI") == "true":
            pytest.fail(f"the loopback HTTP server could not start: {exc}")
        raise
    try:
        yield server
    finally:
        server.stop()
