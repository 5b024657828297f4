"""Hedges started and faults injected, counted per operation by the in-memory
metrics and the Prometheus exporter, with labels bounded like the rest."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from buttress import Chaos, Pipeline, RetryConfig, RetryExhaustedError, pipeline
from buttress._core.strategy import operation_name
from buttress.chaos import ChaosConfig, FaultInjected
from buttress.hedge import HedgeConfig, HedgeStarted
from buttress.observe.metrics import OTHER, MetricsListener, ResilienceMetrics
from buttress.observe.prometheus import PrometheusMetrics
from buttress.testing import VirtualClock


def _failing_chaos(clock: VirtualClock, attempts: int = 3) -> Pipeline:
    return pipeline(chaos=ChaosConfig(exception_rate=1.0, exception=ConnectionError, seed=0),
                    retry=RetryConfig(max_attempts=attempts, base_delay=0, jitter=0),
                    clock=clock)


def charge() -> str:
    return "charged"


CHARGE = operation_name(charge)
LOOKUP = f"{__name__}._hedged_twice.<locals>.lookup"


def _hedged_twice(clock: VirtualClock) -> str:
    """One async call whose first two attempts fail at once: two hedges, reason "failed"."""
    failures = iter([ConnectionError("a"), ConnectionError("b")])

    async def lookup() -> str:
        error = next(failures, None)
        if error is not None:
            raise error
        return "found"

    protect = pipeline(hedge=HedgeConfig(delay=1.0, max_hedges=2), clock=clock)
    result: str = asyncio.run(protect.acall(lookup))
    return result


@pytest.fixture
def metrics(clock: VirtualClock) -> Iterator[ResilienceMetrics]:
    recorded = ResilienceMetrics(clock=clock)
    recorded.install()
    yield recorded
    recorded.uninstall()


def test_the_listener_hears_hedges_and_faults() -> None:
    assert HedgeStarted in MetricsListener.kinds
    assert FaultInjected in MetricsListener.kinds


def test_each_injected_fault_counts_under_the_calls_operation(
        metrics: ResilienceMetrics, clock: VirtualClock) -> None:
    protect = _failing_chaos(clock)
    for _ in range(2):
        with pytest.raises(RetryExhaustedError):
            protect.call(charge)
    charged = metrics.get_metrics(CHARGE)
    assert (charged["faults"], charged["retries"], charged["failures"]) == (6, 4, 2)
    assert charged["hedges"] == 0


def test_a_latency_and_a_result_in_one_call_are_two_faults(
        metrics: ResilienceMetrics, clock: VirtualClock) -> None:
    chaos = Chaos(latency=0.1, latency_rate=1.0, result_rate=1.0, result="canned", clock=clock)
    assert chaos.call(charge) == "canned"
    assert metrics.get_metrics(CHARGE)["faults"] == 2
    assert clock.sleeps == [0.1]


def test_each_hedge_started_counts_under_the_calls_operation(
        metrics: ResilienceMetrics, clock: VirtualClock) -> None:
    assert _hedged_twice(clock) == "found"
    found = metrics.get_metrics(LOOKUP)
    assert (found["hedges"], found["successes"], found["faults"]) == (2, 1, 0)


def test_the_totals_add_hedges_and_faults_over_operations(
        metrics: ResilienceMetrics, clock: VirtualClock) -> None:
    _hedged_twice(clock)
    Chaos(result_rate=1.0, clock=clock).call(charge)
    totals = metrics.get_metrics()
    assert (totals["hedges"], totals["faults"]) == (2, 1)


def test_nothing_is_counted_and_no_event_is_built_without_a_listener(
        clock: VirtualClock) -> None:
    metrics = ResilienceMetrics(clock=clock)
    chaos = Chaos(result_rate=1.0, clock=clock)
    assert chaos.events.of(FaultInjected) == ()
    chaos.call(charge)
    assert metrics.get_metrics()["faults"] == 0
    metrics.install(chaos.events)
    chaos.call(charge)
    assert metrics.get_metrics(CHARGE)["faults"] == 1
    metrics.uninstall(chaos.events)
    assert chaos.events.of(FaultInjected) == ()


def test_names_past_the_cap_count_their_faults_under_other(clock: VirtualClock) -> None:
    metrics = ResilienceMetrics(max_operations=1, clock=clock)
    metrics.install()
    try:
        for name in ("first", "second", "third"):
            Chaos(result_rate=1.0, name=name, clock=clock).call(lambda: None)
    finally:
        metrics.uninstall()
    assert sorted(metrics.get_metrics()["operations"]) == [OTHER, "first"]
    assert metrics.get_metrics(OTHER)["faults"] == 2


# --- Prometheus ------------------------------------------------------------------------------


def _samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(registry).decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def exporter(registry: CollectorRegistry) -> Iterator[PrometheusMetrics]:
    installed = PrometheusMetrics(registry).install()
    yield installed
    installed.uninstall()


@pytest.mark.usefixtures("exporter")
def test_prometheus_counts_faults_by_operation_and_kind(
        registry: CollectorRegistry, clock: VirtualClock) -> None:
    protect = _failing_chaos(clock, attempts=2)
    with pytest.raises(RetryExhaustedError):
        protect.call(charge)
    Chaos(latency=0.2, latency_rate=1.0, result_rate=1.0, result="canned",
          clock=clock).call(charge)
    samples = _samples(registry)
    faults = {dict(labels)["fault"]: value for (name, labels), value in samples.items()
              if name == "resilient_faults_injected_total"
              and dict(labels)["operation"] == CHARGE}
    assert faults == {"exception": 2.0, "latency": 1.0, "result": 1.0}


@pytest.mark.usefixtures("exporter")
def test_prometheus_counts_hedges_by_operation_and_reason(
        registry: CollectorRegistry, clock: VirtualClock) -> None:
    _hedged_twice(clock)
    key = ("resilient_hedges_total",
           frozenset({("operation", LOOKUP), ("reason", "failed")}))
    assert _samples(registry)[key] == 2.0


@pytest.mark.usefixtures("exporter")
def test_prometheus_labels_never_hold_the_injected_value(
        registry: CollectorRegistry, clock: VirtualClock) -> None:
    Chaos(result_rate=1.0, result="token=hunter2", clock=clock).call(charge)
    with pytest.raises(ValueError, match="hunter2"):
        Chaos(exception_rate=1.0, exception=ValueError("password=hunter2"),
              clock=clock).call(charge)
    assert "hunter2" not in generate_latest(registry).decode()


def test_prometheus_fault_labels_stay_bounded_past_the_cap(clock: VirtualClock) -> None:
    registry = CollectorRegistry()
    exporter = PrometheusMetrics(registry, max_label_values=2).install()
    try:
        for name in ("a", "b", "c", "d"):
            Chaos(result_rate=1.0, name=name, clock=clock).call(lambda: None)
    finally:
        exporter.uninstall()
    operations = {dict(labels)["operation"]: value
                  for (name, labels), value in _samples(registry).items()
                  if name == "resilient_faults_injected_total"}
    assert operations == {"a": 1.0, "b": 1.0, OTHER: 2.0}
