"""Fixtures of the FastAPI tests: a real uvicorn server on a free loopback port
(``tests/_uvicorn.py``: started in a thread, stopped after the test), a
virtual clock, and no Prometheus listener left installed after a test.

This directory has no ``__init__.py`` on purpose: as a package it would be
importable as ``fastapi`` and shadow the real one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp

from _uvicorn import serving
from buttress.fastapi import routes
from buttress.observe.prometheus import PrometheusMetrics
from buttress.testing import VirtualClock


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
