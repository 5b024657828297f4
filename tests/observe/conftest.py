"""Fixtures shared by the observability tests: the global metrics start and end
empty and uninstalled, a virtual clock, and a check that nothing logged an error."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from buttress.observe.metrics import resilience_metrics
from buttress.testing import VirtualClock


@pytest.fixture(autouse=True)
def _clean_metrics() -> Iterator[None]:
    resilience_metrics.uninstall()
    resilience_metrics.reset()
    yield
    resilience_metrics.uninstall()
    resilience_metrics.reset()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def no_logged_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail the test if anything was logged at ERROR or above: a listener that
    raises is only logged (the call goes on), and so is OpenTelemetry's "Failed to
    detach context"."""
    yield
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
