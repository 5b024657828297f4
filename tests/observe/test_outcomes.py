"""What operators see for each protected call: one operation name for every stage,
one duration and one outcome per call (success, failure, rejected, cancelled),
the same label name in every metric family, breaker state series from the
breaker's creation; and S0's ``with_metrics`` over a retry counting the retry
and the breaker trips of the wrapped call, once, with or without ``install()``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from buttress import (
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitBreakerError,
    Fallback,
    OperationTimeoutError,
    Pipeline,
    Retry,
    RetryExhaustedError,
    Timeout,
    get_circuit_breaker,
    retry_http_request,
    with_metrics,
)
from buttress.events import CallFinished, add_listener, remove_listener
from buttress.observe import resilience_metrics
from buttress.testing import AsyncScriptedCall, ScriptedCall, VirtualClock

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from buttress.observe.prometheus import PrometheusMetrics  # noqa: E402

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(registry: object) -> Samples:
    text = prometheus_client.generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(registry: object, metric: str, /, **labels: str) -> float | None:
    return samples(registry).get((metric, frozenset(labels.items())))


def durations(registry: object, operation: str) -> dict[str, float]:
    """Observed call count of each outcome of ``operation``."""
    return {dict(labels)["outcome"]: count
            for (name, labels), count in samples(registry).items()
            if name == "resilient_operation_duration_seconds_count"
            and dict(labels)["operation"] == operation}


@pytest.fixture
def registry() -> object:
    return prometheus_client.CollectorRegistry()


@pytest.fixture
def metrics(registry: object) -> Iterator[PrometheusMetrics]:
    exporter = PrometheusMetrics(registry).install()  # type: ignore[arg-type]
    yield exporter
    exporter.uninstall()


@pytest.fixture
def finished() -> Iterator[list[CallFinished]]:
    heard: list[CallFinished] = []
    add_listener(heard.append, CallFinished)
    yield heard
    remove_listener(heard.append)


# --- one duration and one outcome per protected call ------------------------------------------


def test_a_breaker_only_pipeline_records_a_duration_and_an_outcome_for_every_call(
    registry: object, metrics: PrometheusMetrics, virtual_clock: VirtualClock,
) -> None:
    breaker = CircuitBreaker("inventory", failure_threshold=2, clock=virtual_clock)
    call = Pipeline(breaker)(ScriptedCall("ok", ConnectionError, ConnectionError, "never"))

    assert call() == "ok"
    for _ in range(2):
        with pytest.raises(ConnectionError):
            call()
    for _ in range(10):
        with pytest.raises(CircuitBreakerError):
            call()

    name = "buttress.testing.ScriptedCall"
    assert durations(registry, name) == {"success": 1.0, "failure": 2.0, "rejected": 10.0}
    assert value(registry, "resilient_rejections_total", operation=name,
                 reason="circuit_open") == 10.0


def test_a_decorated_breaker_alone_records_each_call_and_rejections_are_not_failures(
    virtual_clock: VirtualClock,
) -> None:
    resilience_metrics.install()
    breaker = CircuitBreaker("inventory", failure_threshold=1, clock=virtual_clock)

    @breaker
    def reserve() -> str:
        raise ConnectionError

    with pytest.raises(ConnectionError):
        reserve()
    for _ in range(5):
        with pytest.raises(CircuitBreakerError):
            reserve()

    op = resilience_metrics.get_metrics(f"{__name__}.{reserve.__qualname__}")
    assert (op["total"], op["failures"], op["rejected"], op["successes"]) == (6, 1, 5, 0)
    assert op["trips"] == 1
    assert [r.outcome for r in resilience_metrics.operation_history] == [
        "failure", *["rejected"] * 5]


def test_a_full_bulkhead_is_a_rejected_outcome(
    finished: list[CallFinished], virtual_clock: VirtualClock,
) -> None:
    bulkhead = Bulkhead(max_concurrent=1, name="db", clock=virtual_clock)
    bulkhead.acquire()
    try:
        with pytest.raises(BulkheadFullError):
            bulkhead.call(ScriptedCall("ok"))
    finally:
        bulkhead.release()

    assert [(e.name, e.outcome) for e in finished] == [("db", "rejected")]


async def test_async_calls_and_cancellation_have_their_outcomes(
    finished: list[CallFinished], virtual_clock: VirtualClock,
) -> None:
    protect = Pipeline(Retry(max_attempts=2, base_delay=1.0, jitter=0, name="fetch",
                             clock=virtual_clock))
    assert await protect(AsyncScriptedCall(ConnectionError, "ok"))() == "ok"
    started = asyncio.Event()

    @protect
    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(hang())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert [(e.name, e.outcome, e.attempts) for e in finished] == [
        ("fetch", "success", 2), ("fetch", "cancelled", 1)]
    assert finished[0].duration == 1.0


def test_nested_buttress_layers_report_one_call_once(virtual_clock: VirtualClock) -> None:
    resilience_metrics.install()
    inner = Pipeline(CircuitBreaker("dep", clock=virtual_clock))
    outer = Retry(max_attempts=3, base_delay=0.0, name="outer", clock=virtual_clock)

    @outer
    @inner
    def work() -> str:
        return attempt()

    attempt = ScriptedCall(ConnectionError, "done")
    assert work() == "done"

    metrics = resilience_metrics.get_metrics()
    assert list(metrics["operations"]) == ["outer"]
    assert (metrics["total_operations"], metrics["retry_operations"]) == (1, 1)


def test_a_lone_retry_that_meets_an_open_breaker_ends_rejected(
    virtual_clock: VirtualClock,
) -> None:
    resilience_metrics.install()
    breaker = CircuitBreaker("dep", clock=virtual_clock)
    breaker.force_open()

    @Retry(max_attempts=3, name="op", clock=virtual_clock)
    @breaker
    def work() -> str:
        return "never"

    with pytest.raises(CircuitBreakerError):
        work()

    op = resilience_metrics.get_metrics("op")
    assert (op["total"], op["rejected"], op["failures"], op["rejections"]) == (1, 1, 0, 1)


# --- one operation name for every stage ----------------------------------------------------------


def test_every_stage_of_one_pipeline_reports_under_one_operation_name(
    registry: object, metrics: PrometheusMetrics, virtual_clock: VirtualClock,
) -> None:
    protect = Pipeline(
        Fallback("cached"),
        Retry(max_attempts=2, base_delay=1.0, jitter=0, name="fetch", clock=virtual_clock),
        CircuitBreaker("users-db", failure_threshold=10, clock=virtual_clock),
        Timeout(1.0, clock=virtual_clock),
    )

    @protect
    async def get_user() -> str:
        await virtual_clock.async_sleep(5.0)
        return "user"

    assert asyncio.run(get_user()) == "cached"

    labels = {dict(labels).get("operation") for (name, labels), _ in samples(registry).items()
              if name.startswith("resilient_")}
    assert labels == {"fetch"}
    assert value(registry, "resilient_timeouts_total", operation="fetch") == 2.0
    assert value(registry, "resilient_retries_total", operation="fetch") == 1.0
    assert value(registry, "resilient_fallbacks_total", operation="fetch") == 1.0
    assert durations(registry, "fetch") == {"success": 1.0}


def test_an_unnamed_pipeline_reports_under_the_function_name_not_the_breaker_name(
    finished: list[CallFinished], virtual_clock: VirtualClock,
) -> None:
    @Pipeline(Retry(max_attempts=1, clock=virtual_clock),
              CircuitBreaker("shared-db", clock=virtual_clock))
    def load_orders() -> list[int]:
        return []

    load_orders()

    assert [e.name for e in finished] == [f"{__name__}.{load_orders.__qualname__}"]


def test_every_metric_family_names_the_operation_with_one_label(
    registry: object, metrics: PrometheusMetrics, virtual_clock: VirtualClock,
) -> None:
    breaker = CircuitBreaker("dep", failure_threshold=1, clock=virtual_clock)
    call = Pipeline(
        Retry(max_attempts=2, base_delay=0.0, name="op", clock=virtual_clock), breaker,
        Timeout(1.0, clock=virtual_clock), Fallback(None),
    )(ScriptedCall(ConnectionError))
    call()
    with pytest.raises(OperationTimeoutError):
        Timeout(1.0, clock=virtual_clock).call(lambda: virtual_clock.advance(2.0))

    label_names = {key for (name, labels), _ in samples(registry).items()
                   if name.startswith(("resilient_", "circuit_breaker_"))
                   and not name.endswith("_created")
                   for key, _ in labels}
    assert label_names - {"le", "outcome", "reason"} == {"operation"}


# --- breaker state series -----------------------------------------------------------------------


def test_a_breaker_created_after_install_has_a_state_series_from_its_creation(
    registry: object, metrics: PrometheusMetrics, virtual_clock: VirtualClock,
) -> None:
    late = CircuitBreaker("late", clock=virtual_clock)
    registered = get_circuit_breaker("registered-late", clock=virtual_clock)

    assert value(registry, "circuit_breaker_state", operation="late") == 0.0
    assert value(registry, "circuit_breaker_state", operation="registered-late") == 0.0
    assert late.is_closed
    assert registered.is_closed


def test_after_uninstall_new_breakers_get_no_series(
    registry: object, metrics: PrometheusMetrics, virtual_clock: VirtualClock,
) -> None:
    metrics.uninstall()
    quiet = CircuitBreaker("quiet", clock=virtual_clock)

    assert value(registry, "circuit_breaker_state", operation="quiet") is None
    assert quiet.is_closed


# --- S0: with_metrics over a retry ---------------------------------------------------------------


@pytest.mark.parametrize("installed", [False, True], ids=["alone", "with-install"])
def test_with_metrics_over_a_retry_counts_its_attempts_once(
    installed: bool, virtual_clock: VirtualClock,
) -> None:
    if installed:
        resilience_metrics.install()

    @with_metrics("user_api_calls")
    @retry_http_request(max_attempts=3, clock=virtual_clock)
    def get_user_data(user_id: int) -> dict[str, int]:
        return attempt()

    attempt = ScriptedCall(ConnectionError, {"id": 1}, {"id": 2})
    assert get_user_data(1) == {"id": 1}  # needed 2 attempts
    assert get_user_data(2) == {"id": 2}

    metrics = resilience_metrics.get_metrics()
    assert metrics["total_operations"] == 2
    assert metrics["retry_operations"] == 1
    assert metrics["retries"] == 1
    assert metrics["average_retry_attempts"] == 1.5
    assert list(metrics["operations"]) == ["user_api_calls"]
    assert [r.attempts for r in resilience_metrics.operation_history] == [2, 1]


@pytest.mark.parametrize("installed", [False, True], ids=["alone", "with-install"])
def test_with_metrics_counts_the_breaker_trips_of_the_wrapped_call_once(
    installed: bool, virtual_clock: VirtualClock,
) -> None:
    if installed:
        resilience_metrics.install()
    get_circuit_breaker("users_api", failure_threshold=2, clock=virtual_clock)

    @with_metrics("user_api_calls")
    @retry_http_request(max_attempts=3, base_delay=0.0, circuit_breaker="users_api",
                        clock=virtual_clock)
    def get_user_data(user_id: int) -> object:
        raise ConnectionError("refused")

    with pytest.raises(CircuitBreakerError):
        get_user_data(1)  # fails twice (the breaker opens), the 3rd attempt is rejected
    with pytest.raises(CircuitBreakerError):
        get_user_data(2)  # rejected at once

    metrics = resilience_metrics.get_metrics()
    assert metrics["circuit_breaker_trips"] == 1
    assert metrics["retries"] == 2
    assert (metrics["total_operations"], metrics["rejected_operations"]) == (2, 2)
    assert list(metrics["operations"]) == ["user_api_calls"]


def test_with_metrics_reports_one_duration_to_the_exporters(
    registry: object, metrics: PrometheusMetrics, virtual_clock: VirtualClock,
) -> None:
    @with_metrics("user_api_calls", clock=virtual_clock)
    @retry_http_request(max_attempts=3, base_delay=1.0, jitter=0, clock=virtual_clock)
    def get_user_data() -> str:
        return attempt()

    attempt = ScriptedCall(ConnectionError, "ok")
    assert get_user_data() == "ok"

    assert durations(registry, "user_api_calls") == {"success": 1.0}
    assert value(registry, "resilient_retries_total", operation="user_api_calls") == 1.0
    assert len(durations(registry, f"{__name__}.{get_user_data.__qualname__}")) == 0


def test_a_retry_exhausted_by_rejections_is_rejected(
    finished: list[CallFinished], virtual_clock: VirtualClock,
) -> None:
    breaker = CircuitBreaker("dep", clock=virtual_clock)
    breaker.force_open()
    retrying = Retry(max_attempts=2, base_delay=0.0, exceptions=(CircuitBreakerError,),
                     name="op", clock=virtual_clock)

    with pytest.raises(RetryExhaustedError):
        Pipeline(retrying, breaker).call(ScriptedCall("never"))

    assert [(e.outcome, e.attempts) for e in finished] == [("rejected", 2)]
