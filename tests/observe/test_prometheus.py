"""The Prometheus exporter: exact metric values after scripted runs on the
virtual clock, read back through the text exposition format."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.parser import text_string_to_metric_families

import buttress
from buttress import (
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitBreakerError,
    OperationTimeoutError,
    Retry,
    RetryExhaustedError,
    Timeout,
    get_circuit_breaker,
    with_fallback,
)
from buttress._core.strategy import operation_name
from buttress.events import GLOBAL
from buttress.observe.prometheus import OTHER, PrometheusMetrics
from buttress.testing import AsyncScriptedCall, ScriptedCall, VirtualClock


def samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition text, keyed by (name, labels)."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(registry: CollectorRegistry, metric: str, /, **labels: str) -> float | None:
    return samples(registry).get((metric, frozenset(labels.items())))


@pytest.fixture
def registry(no_logged_errors: None) -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> Iterator[PrometheusMetrics]:
    exporter = PrometheusMetrics(registry).install()
    yield exporter
    exporter.uninstall()


def fail_n_times(clock: VirtualClock, breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        with pytest.raises(ConnectionError):
            breaker.call(ScriptedCall(ConnectionError("down")))


def test_breaker_state_gauge_follows_every_transition(
    registry: CollectorRegistry, clock: VirtualClock
) -> None:
    breaker = CircuitBreaker("payments", failure_threshold=2, recovery_timeout=10.0,
                             success_threshold=1, clock=clock)
    exporter = PrometheusMetrics(registry).install()
    try:
        state = lambda: value(registry, "circuit_breaker_state", operation="payments")  # noqa: E731
        trips = lambda: value(registry, "circuit_breaker_trips_total", operation="payments")  # noqa: E731
        assert state() == 0.0  # set at install for a breaker that already existed
        fail_n_times(clock, breaker, 2)
        assert (state(), trips()) == (1.0, 1.0)
        clock.advance(10.0)
        assert breaker.state is buttress.CircuitState.HALF_OPEN
        assert state() == 2.0
        assert breaker.call(ScriptedCall("ok")) == "ok"
        assert (state(), trips()) == (0.0, 1.0)
        fail_n_times(clock, breaker, 2)
        clock.advance(10.0)
        fail_n_times(clock, breaker, 1)  # the half-open probe fails: open again
        assert (state(), trips()) == (1.0, 3.0)
        breaker.reset()
        assert state() == 0.0
    finally:
        exporter.uninstall()


def test_breakers_created_before_install_start_at_their_current_state(
    registry: CollectorRegistry, clock: VirtualClock
) -> None:
    closed = get_circuit_breaker("closed-one", clock=clock)
    opened = get_circuit_breaker("opened-one", clock=clock)
    opened.force_open()
    exporter = PrometheusMetrics(registry).install()
    try:
        assert closed.state is buttress.CircuitState.CLOSED
        assert value(registry, "circuit_breaker_state", operation="closed-one") == 0.0
        assert value(registry, "circuit_breaker_state", operation="opened-one") == 1.0
    finally:
        exporter.uninstall()


def test_retries_and_call_durations_are_counted_per_outcome(
    registry: CollectorRegistry, metrics: PrometheusMetrics, clock: VirtualClock
) -> None:
    retrying = Retry(max_attempts=3, base_delay=1.0, jitter=False, clock=clock, name="fetch")
    # Success on the third attempt after waits of 1s and 2s: 3s in all.
    assert retrying.call(ScriptedCall(ConnectionError, ConnectionError, "ok")) == "ok"
    # Success at once: 0s.
    assert retrying.call(ScriptedCall("ok")) == "ok"
    # Three failures: 3s, then it gives up.
    with pytest.raises(RetryExhaustedError):
        retrying.call(ScriptedCall(ConnectionError))

    def histogram(suffix: str, outcome: str, **extra: str) -> float | None:
        return value(registry, f"resilient_operation_duration_seconds_{suffix}",
                     operation="fetch", outcome=outcome, **extra)

    assert value(registry, "resilient_retries_total", operation="fetch") == 4.0
    assert (histogram("count", "success"), histogram("sum", "success")) == (2.0, 3.0)
    assert (histogram("count", "failure"), histogram("sum", "failure")) == (1.0, 3.0)
    assert histogram("bucket", "success", le="0.005") == 1.0
    assert histogram("bucket", "success", le="2.5") == 1.0
    assert histogram("bucket", "success", le="5.0") == 2.0
    assert histogram("bucket", "failure", le="2.5") == 0.0
    assert histogram("bucket", "failure", le="+Inf") == 1.0


def test_rejections_are_counted_by_name_and_reason(
    registry: CollectorRegistry, metrics: PrometheusMetrics, clock: VirtualClock
) -> None:
    breaker = CircuitBreaker("inventory", failure_threshold=1, clock=clock)
    fail_n_times(clock, breaker, 1)
    for _ in range(3):
        with pytest.raises(CircuitBreakerError):
            breaker.call(ScriptedCall("never runs"))
    assert value(registry, "resilient_rejections_total",
                 operation="inventory", reason="circuit_open") == 3.0


async def test_bulkhead_rejections_are_counted(
    registry: CollectorRegistry, metrics: PrometheusMetrics, clock: VirtualClock
) -> None:
    gate = asyncio.Event()

    @Bulkhead(max_concurrent=1, name="db", clock=clock)
    async def query() -> str:
        await gate.wait()
        return "rows"

    first = asyncio.create_task(query())
    await asyncio.sleep(0)
    with pytest.raises(BulkheadFullError):
        await query()
    gate.set()
    assert await first == "rows"
    assert value(registry, "resilient_rejections_total",
                 operation="db", reason="bulkhead_full") == 1.0


async def test_timeouts_and_fallbacks_are_counted(
    registry: CollectorRegistry, metrics: PrometheusMetrics, clock: VirtualClock
) -> None:
    @Timeout(1.0, clock=clock)
    async def slow() -> None:
        await clock.async_sleep(5.0)

    with pytest.raises(OperationTimeoutError):
        await slow()

    @with_fallback(fallback_value="cached", name="profile")
    def profile() -> str:
        raise ConnectionError("down")

    assert profile() == profile() == "cached"
    operation = operation_name(slow.__wrapped__)  # type: ignore[attr-defined]
    assert value(registry, "resilient_timeouts_total", operation=operation) == 1.0
    assert value(registry, "resilient_fallbacks_total", operation="profile") == 2.0


def test_distinct_names_are_capped_and_the_rest_count_as_other(
    registry: CollectorRegistry, clock: VirtualClock
) -> None:
    exporter = PrometheusMetrics(registry, max_label_values=3).install()
    try:
        for i in range(5):
            Retry(max_attempts=2, base_delay=0.0, clock=clock, name=f"op{i}").call(
                ScriptedCall(ConnectionError, "ok"))
    finally:
        exporter.uninstall()
    retries = {dict(labels)["operation"]: count for (name, labels), count
               in samples(registry).items() if name == "resilient_retries_total"}
    assert retries == {"op0": 1.0, "op1": 1.0, "op2": 1.0, OTHER: 2.0}


def test_labels_never_carry_credentials_queries_or_exception_messages(
    registry: CollectorRegistry, metrics: PrometheusMetrics, clock: VirtualClock
) -> None:
    name = "https://bob:hunter2@api.example.com/v1/users?token=abc123"
    with pytest.raises(RetryExhaustedError):
        Retry(max_attempts=2, base_delay=0.0, clock=clock, name=name).call(
            ScriptedCall(ConnectionError("password=swordfish at https://x.example/?k=1")))
    text = generate_latest(registry).decode()
    for secret in ("hunter2", "abc123", "swordfish", "k=1"):
        assert secret not in text
    assert value(registry, "resilient_retries_total",
                 operation="https://***@api.example.com/v1/users?***") == 1.0


def test_attach_hears_one_pipeline_only(registry: CollectorRegistry, clock: VirtualClock) -> None:
    watched = buttress.pipeline(retry=buttress.RetryConfig(max_attempts=2, base_delay=0.0,
                                                           name="watched"), clock=clock)
    other = Retry(max_attempts=2, base_delay=0.0, clock=clock, name="other")
    exporter = PrometheusMetrics(registry).attach(watched)
    try:
        watched.call(ScriptedCall(ConnectionError, "ok"))
        other.call(ScriptedCall(ConnectionError, "ok"))
    finally:
        exporter.uninstall()
    watched.call(ScriptedCall(ConnectionError, "ok"))  # after uninstall: not counted
    assert value(registry, "resilient_retries_total", operation="watched") == 1.0
    assert value(registry, "resilient_retries_total", operation="other") is None


def test_attach_sets_the_state_of_the_breakers_it_holds(
    registry: CollectorRegistry, clock: VirtualClock
) -> None:
    breaker = CircuitBreaker("held", clock=clock)
    breaker.force_open()
    exporter = PrometheusMetrics(registry).attach(buttress.Pipeline(breaker))
    try:
        assert value(registry, "circuit_breaker_state", operation="held") == 1.0
    finally:
        exporter.uninstall()


def test_install_and_attach_together_count_each_event_once(
    registry: CollectorRegistry, clock: VirtualClock
) -> None:
    retrying = Retry(max_attempts=2, base_delay=0.0, clock=clock, name="once")
    exporter = PrometheusMetrics(registry).install().attach(retrying)
    try:
        retrying.call(ScriptedCall(ConnectionError, "ok"))
    finally:
        exporter.uninstall()
    assert value(registry, "resilient_retries_total", operation="once") == 1.0


def test_instances_on_one_registry_share_metrics_and_namespaces_prefix_names(
    registry: CollectorRegistry, clock: VirtualClock
) -> None:
    first = PrometheusMetrics(registry, namespace="shop")
    second = PrometheusMetrics(registry, namespace="shop")  # no duplicate-metric error
    assert first._m is second._m
    with pytest.raises(ValueError, match="buckets"):
        PrometheusMetrics(registry, namespace="shop", buckets=(1.0, 2.0))
    first.install()
    try:
        Retry(max_attempts=2, base_delay=0.0, clock=clock, name="cart").call(
            ScriptedCall(ConnectionError, "ok"))
    finally:
        first.uninstall()
    assert value(registry, "shop_resilient_retries_total", operation="cart") == 1.0


def test_bad_label_cap_is_refused(registry: CollectorRegistry) -> None:
    with pytest.raises(ValueError, match="max_label_values"):
        PrometheusMetrics(registry, max_label_values=0)


def test_uninstall_is_idempotent(registry: CollectorRegistry) -> None:
    exporter = PrometheusMetrics(registry).install()
    exporter.uninstall()
    exporter.uninstall()
    assert exporter not in GLOBAL.listeners


def test_importing_buttress_and_its_observe_package_loads_neither_exporter_library() -> None:
    code = (
        "import json, sys\n"
        "import buttress, buttress.observe\n"
        "print(json.dumps(sorted(m for m in ('prometheus_client', 'opentelemetry')"
        " if m in sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True,
                            text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


# --- multiprocess mode ----------------------------------------------------------------

WORKER = textwrap.dedent("""
    import os, sys
    from buttress import CircuitBreaker, Retry
    from buttress.observe.prometheus import PrometheusMetrics
    from buttress.testing import ScriptedCall, VirtualClock

    clock = VirtualClock()
    breaker = CircuitBreaker("shared", failure_threshold=1, clock=clock)
    metrics = PrometheusMetrics().install()  # the default registry, as an app would
    Retry(max_attempts=2, base_delay=1.0, jitter=False, clock=clock, name="job").call(
        ScriptedCall(ConnectionError, "ok"))
    if sys.argv[1] == "trip":
        try:
            breaker.call(ScriptedCall(ConnectionError))
        except ConnectionError:
            pass
    print(os.getpid())
""")


def run_worker(directory: Path, role: str) -> int:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    result = subprocess.run([sys.executable, "-c", WORKER, role], env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip())


def test_multiprocess_mode_merges_workers_and_forgets_dead_ones(tmp_path: Path) -> None:
    tripping = run_worker(tmp_path, "trip")
    run_worker(tmp_path, "stay-closed")

    def collected() -> CollectorRegistry:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(tmp_path))
        return registry

    registry = collected()
    # livemax: one worker's breaker is open, the other's closed.
    assert value(registry, "circuit_breaker_state", operation="shared") == 1.0
    assert value(registry, "circuit_breaker_trips_total", operation="shared") == 1.0
    assert value(registry, "resilient_retries_total", operation="job") == 2.0
    assert value(registry, "resilient_operation_duration_seconds_count",
                 operation="job", outcome="success") == 2.0
    assert value(registry, "resilient_operation_duration_seconds_sum",
                 operation="job", outcome="success") == 2.0
    mark_process_dead(tripping, str(tmp_path))
    # The dead worker's gauge is gone; its counters stay, as Prometheus expects.
    registry = collected()
    assert value(registry, "circuit_breaker_state", operation="shared") == 0.0
    assert value(registry, "circuit_breaker_trips_total", operation="shared") == 1.0


async def test_async_calls_are_measured_like_sync_ones(
    registry: CollectorRegistry, metrics: PrometheusMetrics, clock: VirtualClock
) -> None:
    retrying = Retry(max_attempts=3, base_delay=0.5, jitter=False, clock=clock, name="afetch")
    assert await retrying.acall(AsyncScriptedCall(ConnectionError, "ok")) == "ok"
    assert value(registry, "resilient_retries_total", operation="afetch") == 1.0
    assert value(registry, "resilient_operation_duration_seconds_sum",
                 operation="afetch", outcome="success") == 0.5
