"""In-memory metrics: with_metrics, the events listener, exact counts under
threads, bounded memory, latency percentiles and the JSON export."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
import threading
import tracemalloc
from pathlib import Path

import pytest

from buttress import (
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitBreakerError,
    ConfigurationError,
    OperationTimeoutError,
    Retry,
    RetryExhaustedError,
    async_retry_with_backoff,
    pipeline,
)
from buttress.events import GLOBAL, Succeeded
from buttress.observe import (
    MetricsListener,
    OperationRecord,
    ResilienceMetrics,
    resilience_metrics,
    with_metrics,
)
from buttress.testing import AsyncScriptedCall, ScriptedCall, VirtualClock


@pytest.fixture
def metrics(virtual_clock: VirtualClock) -> ResilienceMetrics:
    """Private metrics on virtual time, with wall-clock timestamps 1000.0, 1001.0, ..."""
    stamps = iter(range(1000, 10**9))
    return ResilienceMetrics(clock=virtual_clock, wall_clock=lambda: float(next(stamps)))


# --- with_metrics -------------------------------------------------------------------------


def test_with_metrics_records_outcome_and_duration(
    metrics: ResilienceMetrics, virtual_clock: VirtualClock,
) -> None:
    fetch = ScriptedCall("a", ConnectionError("down"), latency=0.5, clock=virtual_clock)
    measured = with_metrics("fetch", metrics=metrics)(fetch)

    assert measured() == "a"
    with pytest.raises(ConnectionError, match="down"):
        measured()

    m = metrics.get_metrics("fetch")
    assert (m["total"], m["successes"], m["failures"], m["cancelled"]) == (2, 1, 1, 0)
    assert m["success_rate"] == 50.0
    assert m["latency"]["count"] == 2
    assert m["latency"]["mean"] == 0.5
    assert m["total_time"] == 1.0
    assert metrics.operation_history == [
        OperationRecord("fetch", "success", 0.5, 1, 1000.0),
        OperationRecord("fetch", "failure", 0.5, 1, 1001.0),
    ]


def test_with_metrics_keeps_the_function_and_never_swallows(metrics: ResilienceMetrics) -> None:
    error = ValueError("bad input")

    @with_metrics("validate", metrics=metrics)
    def validate(value: int) -> int:
        """Check a value."""
        if value < 0:
            raise error
        return value

    assert validate.__name__ == "validate"
    assert validate.__doc__ == "Check a value."
    with pytest.raises(ValueError) as caught:
        validate(-1)
    assert caught.value is error
    assert validate(3) == 3


def test_with_metrics_default_name_is_the_qualified_function_name(
    metrics: ResilienceMetrics,
) -> None:
    @with_metrics
    def bare() -> int:
        return 1

    @with_metrics(metrics=metrics)
    def named_by_default() -> int:
        return 2

    bare()
    named_by_default()
    assert resilience_metrics.get_metrics()["total_operations"] == 1
    (name,) = metrics.get_metrics()["operations"]
    assert name.endswith("named_by_default")
    assert name.startswith(__name__)


async def test_with_metrics_on_a_coroutine_function(
    metrics: ResilienceMetrics, virtual_clock: VirtualClock,
) -> None:
    fetch = AsyncScriptedCall("ok", KeyError("k"), latency=2.0, clock=virtual_clock)
    measured = with_metrics("afetch", metrics=metrics)(fetch)

    assert await measured() == "ok"
    with pytest.raises(KeyError):
        await measured()

    m = metrics.get_metrics("afetch")
    assert (m["successes"], m["failures"]) == (1, 1)
    assert m["latency"]["max"] == 2.0


async def test_cancellation_is_recorded_as_cancelled_not_as_failure(
    metrics: ResilienceMetrics, virtual_clock: VirtualClock,
) -> None:
    started = asyncio.Event()

    @with_metrics("waiter", metrics=metrics)
    async def wait() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(wait())
    await started.wait()
    virtual_clock.advance(3.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    m = metrics.get_metrics("waiter")
    assert (m["total"], m["failures"], m["cancelled"]) == (0, 0, 1)
    assert m["success_rate"] == 0.0
    assert metrics.operation_history == [OperationRecord("waiter", "cancelled", 3.0, 1, 1000.0)]


def test_keyboard_interrupt_is_not_a_failure(metrics: ResilienceMetrics) -> None:
    @with_metrics("interrupted", metrics=metrics)
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert metrics.get_metrics("interrupted")["failures"] == 0
    assert metrics.get_metrics("interrupted")["cancelled"] == 1


def test_with_metrics_reads_attempts_rejections_and_timeouts_from_errors(
    metrics: ResilienceMetrics, virtual_clock: VirtualClock,
) -> None:
    retrying = Retry(max_attempts=3, base_delay=1.0, jitter=0, clock=virtual_clock)
    breaker = CircuitBreaker("dep", failure_threshold=1, clock=virtual_clock)
    breaker.force_open()
    full = Bulkhead(max_concurrent=1)
    full.acquire()

    def timing_out() -> None:
        raise OperationTimeoutError(operation="x", timeout=1.0)

    for target in (retrying(ScriptedCall(ConnectionError)), breaker(ScriptedCall("x")),
                   full(ScriptedCall("x")), timing_out):
        with pytest.raises((RetryExhaustedError, CircuitBreakerError, BulkheadFullError,
                            OperationTimeoutError)):
            with_metrics("op", metrics=metrics)(target)()
    full.release()

    m = metrics.get_metrics("op")
    # Refused calls (open breaker, full bulkhead) are their own outcome, not failures.
    assert (m["total"], m["failures"], m["rejected"], m["rejections"], m["timeouts"]) == (
        4, 2, 2, 2, 1)
    assert [r.attempts for r in metrics.operation_history] == [3, 1, 1, 1]
    assert m["retried_operations"] == 1
    assert m["average_attempts"] == 1.5


async def test_with_metrics_understands_a_retry_result(
    metrics: ResilienceMetrics, virtual_clock: VirtualClock,
) -> None:
    fetch = AsyncScriptedCall(ConnectionError, ConnectionError)

    @with_metrics("legacy", metrics=metrics)
    async def legacy() -> object:
        return await async_retry_with_backoff(fetch, max_attempts=2, base_delay=0,
                                              clock=virtual_clock)

    result = await legacy()
    assert not result.success
    assert metrics.operation_history[-1].outcome == "failure"
    assert metrics.operation_history[-1].attempts == 2


# --- the events listener ------------------------------------------------------------------


def test_the_listener_is_not_installed_by_default() -> None:
    assert not resilience_metrics.is_installed
    assert not GLOBAL.active
    Retry(max_attempts=1).call(ScriptedCall("x"))
    assert resilience_metrics.get_metrics()["total_operations"] == 0


def test_install_and_uninstall_are_idempotent(virtual_clock: VirtualClock) -> None:
    assert resilience_metrics.install() is resilience_metrics.listener
    resilience_metrics.install()
    retrying = Retry(max_attempts=1, name="op", clock=virtual_clock)
    retrying.call(ScriptedCall("x"))
    assert resilience_metrics.get_metrics("op")["total"] == 1  # heard once, not twice
    resilience_metrics.uninstall()
    resilience_metrics.uninstall()
    assert not resilience_metrics.is_installed
    assert not GLOBAL.active
    retrying.call(ScriptedCall("x"))
    assert resilience_metrics.get_metrics("op")["total"] == 1


def test_install_on_one_pipeline_only(
    metrics: ResilienceMetrics, virtual_clock: VirtualClock,
) -> None:
    watched = pipeline(retry=Retry(max_attempts=2, base_delay=0, name="watched",
                                   clock=virtual_clock))
    unwatched = Retry(max_attempts=2, base_delay=0, name="unwatched", clock=virtual_clock)
    metrics.install(watched.events)

    watched(ScriptedCall(ConnectionError, "ok"))()
    unwatched.call(ScriptedCall("ok"))

    assert list(metrics.get_metrics()["operations"]) == ["watched"]
    assert not metrics.is_installed  # not on the global hub
    metrics.uninstall(watched.events)
    assert not watched.events.active


def test_the_listener_object_dispatches_any_event(metrics: ResilienceMetrics) -> None:
    listener = metrics.listener
    assert isinstance(listener, MetricsListener)

    listener(Succeeded("retry", "op", 2, 0.25))
    listener(Succeeded("retry", None, 1, None))  # unnamed, unmeasured

    assert metrics.get_metrics("op")["retried_operations"] == 1
    unknown = metrics.get_metrics("unknown")
    assert unknown["total"] == 1
    assert unknown["latency"]["count"] == 0


# --- exact under threads ------------------------------------------------------------------


def test_counts_are_exact_under_8_threads(virtual_clock: VirtualClock) -> None:
    metrics = ResilienceMetrics(clock=virtual_clock, history_size=100)
    metrics.install()
    threads, calls = 8, 2_000
    retrying = Retry(max_attempts=2, base_delay=0, name="shared", clock=virtual_clock)
    measured = with_metrics("measured", metrics=metrics)(lambda ok: ok or 1 / 0)
    barrier = threading.Barrier(threads)

    def work(index: int) -> None:
        barrier.wait()
        for i in range(calls):
            # Every 4th call fails once and is retried.
            retrying.call(ScriptedCall(ConnectionError, "ok") if i % 4 == 0
                          else ScriptedCall("ok"))
            with contextlib.suppress(ZeroDivisionError):
                measured(i % 2 == 0)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        metrics.uninstall()

    shared = metrics.get_metrics("shared")
    assert shared["total"] == shared["successes"] == threads * calls
    assert shared["retries"] == shared["retried_operations"] == threads * calls // 4
    m = metrics.get_metrics("measured")
    assert (m["successes"], m["failures"]) == (threads * calls // 2, threads * calls // 2)
    assert metrics.get_metrics()["total_operations"] == 2 * threads * calls
    assert len(metrics.operation_history) == 100


# --- bounded memory -----------------------------------------------------------------------


def test_history_samples_and_names_stay_bounded_after_a_million_calls(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = ResilienceMetrics(max_operations=50, history_size=500, latency_samples=64)
    record = metrics.record
    names = [f"user-{n}" for n in range(100)]  # twice the cap
    outcomes = ["failure", "success", "success"]
    durations = [0.001 * n for n in range(7)]
    with caplog.at_level(logging.WARNING, logger="buttress"):
        for i in range(1_000_000):
            record(names[i % 100], outcomes[i % 3], durations[i % 7])

    assert len(metrics.operation_history) == 500
    everything = metrics.get_metrics()
    assert len(everything["operations"]) == 51  # 50 names + "__other__"
    assert everything["total_operations"] == 1_000_000
    other = everything["operations"]["__other__"]
    assert other["total"] == everything["folded_records"] == 500_000
    assert all(op["latency"]["count"] == 64 for op in everything["operations"].values())
    # The cap is named once, when it is first hit.
    assert caplog.text.count("more than 50 operation names") == 1

    # In this steady state, more calls allocate nothing that stays.
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(50_000):
            record(names[i % 100], outcomes[i % 3], durations[i % 7])
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 16 * 1024


# --- latency ------------------------------------------------------------------------------


def test_latency_percentiles_are_exact_for_a_known_sample(metrics: ResilienceMetrics) -> None:
    durations = [float(n) for n in range(1, 101)]
    random.Random(7).shuffle(durations)
    for duration in durations:
        metrics.record("op", "success", duration)

    assert metrics.get_metrics("op")["latency"] == {
        "count": 100, "mean": 50.5, "min": 1.0, "max": 100.0,
        "p50": 50.0, "p95": 95.0, "p99": 99.0,
    }


def test_latency_covers_the_most_recent_samples_only() -> None:
    metrics = ResilienceMetrics(latency_samples=10)
    for n in range(1, 21):
        metrics.record("op", "success", float(n))

    latency = metrics.get_metrics("op")["latency"]
    assert (latency["count"], latency["min"], latency["max"]) == (10, 11.0, 20.0)
    assert latency["p50"] == 15.0
    assert metrics.get_metrics("op")["total_time"] == sum(range(1, 21))


def test_a_single_sample_is_every_percentile(metrics: ResilienceMetrics) -> None:
    metrics.record("op", "failure", 0.3)
    latency = metrics.get_metrics("op")["latency"]
    assert latency["p50"] == latency["p99"] == latency["max"] == latency["min"] == 0.3


# --- reading, export, reset ---------------------------------------------------------------


def test_get_metrics_totals_and_success_rate(metrics: ResilienceMetrics) -> None:
    assert metrics.get_success_rate() == 0.0
    assert metrics.get_metrics()["total_operations"] == 0
    for outcome in ("success", "success", "success", "failure"):
        metrics.record("a", outcome, 0.1)
    metrics.record("b", "failure", None, attempts=3)
    metrics.record("b", "cancelled")

    everything = metrics.get_metrics()
    assert everything["total_operations"] == 5
    assert everything["successful_operations"] == 3
    assert everything["failed_operations"] == 2
    assert everything["cancelled_operations"] == 1
    assert everything["retry_operations"] == 1
    assert everything["average_retry_attempts"] == (4 + 3) / 5
    assert everything["success_rate"] == metrics.get_success_rate() == 60.0
    assert metrics.get_success_rate("a") == 75.0
    assert metrics.get_success_rate("b") == 0.0
    assert metrics.get_success_rate("never") == 0.0
    assert list(everything["operations"]) == ["a", "b"]
    never = metrics.get_metrics("never")
    assert never["total"] == 0
    assert never["name"] == "never"


def test_operation_history_is_a_list_of_immutable_records(metrics: ResilienceMetrics) -> None:
    for n in range(15):
        metrics.record(f"op{n}", "success", float(n))

    history = metrics.operation_history[-10:]
    assert [record.name for record in history] == [f"op{n}" for n in range(5, 15)]
    assert history[-1].success
    with pytest.raises(dataclasses.FrozenInstanceError):
        history[-1].outcome = "failure"  # type: ignore[misc]
    history.clear()  # a copy: the metrics keep theirs
    assert len(metrics.operation_history) == 15


def test_export_metrics_returns_json_and_writes_the_file(
    metrics: ResilienceMetrics, tmp_path: Path,
) -> None:
    metrics.record("a", "success", 0.5)
    metrics.record("a", "failure", None, attempts=2)
    path = tmp_path / "report.json"

    text = metrics.export_metrics(path)

    assert path.read_text(encoding="utf-8") == text
    document = json.loads(text)
    assert document["success_rate"] == 50.0
    assert document["metrics"] == json.loads(json.dumps(metrics.get_metrics()))
    assert document["operation_history"] == [
        {"name": "a", "outcome": "success", "success": True, "duration": 0.5,
         "attempts": 1, "timestamp": 1000.0},
        {"name": "a", "outcome": "failure", "success": False, "duration": None,
         "attempts": 2, "timestamp": 1001.0},
    ]
    assert json.loads(metrics.export_metrics())["metrics"]["total_operations"] == 2


def test_reset_forgets_everything(metrics: ResilienceMetrics) -> None:
    metrics.record("a", "success", 0.5)
    metrics.reset()
    assert metrics.get_metrics()["operations"] == {}
    assert metrics.operation_history == []
    assert metrics.get_metrics("a")["latency"]["count"] == 0


def test_bad_input_is_refused_with_the_field_named(metrics: ResilienceMetrics) -> None:
    with pytest.raises(ConfigurationError, match=r"max_operations must be >= 1, got 0"):
        ResilienceMetrics(max_operations=0)
    with pytest.raises(ConfigurationError, match="history_size"):
        ResilienceMetrics(history_size=-1)
    with pytest.raises(TypeError, match="latency_samples"):
        ResilienceMetrics(latency_samples=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="outcome must be one of"):
        metrics.record("a", "ok")
