"""Everything that grows with distinct names stays bounded: 100,000 distinct
operation names (raw URLs, user ids) cost the exporters and the in-memory
metrics a bounded amount of memory, and the names past the cap are counted
under one documented overflow label, ``"__other__"``."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from buttress.events import Listeners, RetryScheduled, Succeeded
from buttress.observe._wiring import OTHER, BoundedNames
from buttress.observe.metrics import ResilienceMetrics

DISTINCT = 100_000
# Generous: the bounded structures weigh well under 1 MB; unbounded ones took
# 21 MB for these 100,000 names.
LIMIT_BYTES = 3_000_000


def _names(shape: str) -> Iterator[str]:
    """Distinct names; the "query" ones all mask to the same label."""
    for i in range(DISTINCT):
        yield (f"https://api.example.com/users?id={i}" if shape == "query"
               else f"user-{i}")


def _growth(run: Callable[[], Any]) -> int:
    """Bytes still allocated after ``run()``, whose result is kept alive."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = run()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert kept is not None
    return after - before


@pytest.mark.parametrize("shape", ["query", "plain"])
def test_bounded_names_stay_small_after_100k_distinct_names(shape: str) -> None:
    def run() -> BoundedNames:
        names = BoundedNames(500)
        for name in _names(shape):
            names(name)
        return names

    assert _growth(run) < LIMIT_BYTES


def test_names_past_the_cap_get_the_overflow_label() -> None:
    names = BoundedNames(2)

    assert [names(n) for n in ("a", "b", "c", "a", "d")] == ["a", "b", OTHER, "a", OTHER]
    assert OTHER == "__other__"


def test_many_raw_names_of_one_masked_label_keep_that_label() -> None:
    names = BoundedNames(2)

    labels = {names(f"https://api.example.com/users?id={i}") for i in range(100)}

    assert labels == {"https://api.example.com/users?***"}


@pytest.mark.parametrize("shape", ["query", "plain"])
def test_prometheus_memory_is_bounded_after_100k_distinct_operation_names(
    shape: str,
) -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    from buttress.observe.prometheus import PrometheusMetrics

    registry = prometheus_client.CollectorRegistry()
    metrics = PrometheusMetrics(registry, max_label_values=100)

    def run() -> PrometheusMetrics:
        for name in _names(shape):
            metrics(RetryScheduled("retry", name, 1, 0.0, None))
        return metrics

    assert _growth(run) < LIMIT_BYTES
    text = prometheus_client.generate_latest(registry).decode()
    assert text.count("resilient_retries_total{") <= 101
    if shape == "plain":
        assert 'resilient_retries_total{operation="__other__"} 99900.0' in text


def test_otel_memory_is_bounded_after_100k_distinct_operation_names() -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    from buttress.observe.otel import OpenTelemetryTracing

    tracing = OpenTelemetryTracing(TracerProvider(), MeterProvider(), max_label_values=100)

    def run() -> OpenTelemetryTracing:
        for name in _names("query"):
            tracing(RetryScheduled("retry", name, 1, 0.0, None))
        for name in _names("plain"):
            tracing(RetryScheduled("retry", name, 1, 0.0, None))
        return tracing

    assert _growth(run) < LIMIT_BYTES


def test_in_memory_metrics_are_bounded_after_100k_distinct_operation_names() -> None:
    metrics = ResilienceMetrics(max_operations=100, history_size=100)
    hub = Listeners()
    metrics.install(hub)

    def run() -> ResilienceMetrics:
        for name in _names("plain"):
            hub.emit(Succeeded("retry", name, 1, 0.01))
        return metrics

    assert _growth(run) < LIMIT_BYTES
    summary = metrics.get_metrics()
    assert summary["total_operations"] == DISTINCT
    assert len(summary["operations"]) == 101  # 100 names and "__other__"
    assert summary["operations"][OTHER]["total"] == DISTINCT - 100
    assert len(metrics.operation_history) == 100

