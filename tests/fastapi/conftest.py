"""Fixtures of the FastAPI tests: a real uvicorn server on a free loopback port
(started in a thread, stopped after the test), a virtual clock, and no
Prometheus listener left installed after a test.

This directory has no ``__init__.py`` on purpose: as a package it would be
importable as ``fastapi`` and shadow the real one.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import pytest
import uvicorn
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp

from buttress.fastapi import routes
from buttress.observe.prometheus import PrometheusMetrics
from buttress.testing import VirtualClock

START_TIMEOUT = 10.0


def _cannot_start(reason: str) -> None:
    # Under CI a server that can not start is a failure, never a silent skip.
    if os.environ.get("CI") == "true":
        pytest.fail(f"uvicorn test server did not start: {reason}")
    pytest.skip(f"uvicorn test server did not start: {reason}")


@contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1, a free port, in a thread; yield
    its base URL; stop the server (and wait for its thread) afterwards."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
    except OSError as exc:
        sock.close()
        _cannot_start(f"can not bind a loopback port: {exc}")
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        limit = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive():
                _cannot_start("the server thread ended")
            if time.monotonic() > limit:
                _cannot_start(f"not started after {START_TIMEOUT}s")
            thread.join(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)
        sock.close()
    assert not thread.is_alive(), "the uvicorn thread did not stop"


@pytest.fixture
def live_server() -> Iterator[Callable[[ASGIApp], str]]:
    """``live_server(app)`` serves ``app`` for the rest of the test and returns its URL."""
    with ExitStack() as stack:
        yield lambda app: stack.enter_context(serving(app))


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def prometheus() -> Iterator[PrometheusMetrics]:
    """A Prometheus listener on a registry of its own, installed for the test."""
    metrics = PrometheusMetrics(CollectorRegistry()).install()
    yield metrics
    metrics.uninstall()


@pytest.fixture(autouse=True)
def _no_default_prometheus_left() -> Iterator[None]:
    # resilience_router() without metrics= installs a process-wide listener;
    # other tests must not inherit it.
    yield
    shared = routes._shared_metrics
    if shared is not None:
        shared.uninstall()
        routes._shared_metrics = None
