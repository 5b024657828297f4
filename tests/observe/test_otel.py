"""The OpenTelemetry exporter: exact spans, span events and metrics, read from the
SDK's in-memory exporter and reader, with retries on the virtual clock."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import buttress
from buttress import (
    CircuitBreaker,
    CircuitBreakerError,
    Retry,
    RetryConfig,
    RetryExhaustedError,
    Timeout,
)
from buttress.events import GLOBAL
from buttress.observe.otel import OTHER, OpenTelemetryTracing
from buttress.testing import AsyncScriptedCall, ScriptedCall, VirtualClock


class Telemetry:
    """An SDK tracer and meter provider that keep everything in memory."""

    def __init__(self) -> None:
        self.spans_out = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans_out))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.tracer = self.tracer_provider.get_tracer("test")

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [span for span in self.spans_out.get_finished_spans()
                if name is None or span.name == name]

    def span(self, name: str) -> ReadableSpan:
        (found,) = self.spans(name)
        return found

    def points(self, metric: str) -> dict[frozenset[tuple[str, Any]], Any]:
        data = self.reader.get_metrics_data()
        found: dict[frozenset[tuple[str, Any]], Any] = {}
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for item in scope.metrics:
                    if item.name == metric:
                        for point in item.data.data_points:
                            found[frozenset(point.attributes.items())] = point
        return found

    def value(self, metric: str, **attributes: Any) -> Any:
        point = self.points(metric).get(frozenset(attributes.items()))
        return None if point is None else point.value


def events(span: ReadableSpan) -> list[tuple[str, dict[str, Any]]]:
    return [(event.name, dict(event.attributes or {})) for event in span.events]


@pytest.fixture
def otel(no_logged_errors: None) -> Iterator[Telemetry]:
    telemetry = Telemetry()
    yield telemetry
    telemetry.tracer_provider.shutdown()
    telemetry.meter_provider.shutdown()


@pytest.fixture
def tracing(otel: Telemetry) -> Iterator[OpenTelemetryTracing]:
    listener = OpenTelemetryTracing(otel.tracer_provider, otel.meter_provider).install()
    yield listener
    listener.uninstall()


# --- one span per call ----------------------------------------------------------------


def test_a_retried_call_is_one_span_with_an_event_per_attempt(
    otel: Telemetry, tracing: OpenTelemetryTracing, clock: VirtualClock
) -> None:
    retrying = Retry(max_attempts=3, base_delay=1.0, jitter=False, clock=clock, name="fetch")
    assert retrying.call(ScriptedCall(ConnectionError, TimeoutError, "ok")) == "ok"
    span = otel.span("fetch")
    assert events(span) == [
        ("attempt", {"attempt": 1, "delay": 1.0, "outcome": "failure",
                     "exception.type": "ConnectionError"}),
        ("attempt", {"attempt": 2, "delay": 2.0, "outcome": "failure",
                     "exception.type": "TimeoutError"}),
        ("attempt", {"attempt": 3, "outcome": "success"}),
    ]
    assert dict(span.attributes or {}) == {
        "buttress.source": "retry", "buttress.operation": "fetch",
        "buttress.attempts": 3, "buttress.outcome": "success",
    }
    assert span.status.status_code is StatusCode.UNSET
    assert span.kind is trace.SpanKind.INTERNAL
    assert len(otel.spans()) == 1


def test_a_call_that_gives_up_ends_with_error_status_and_no_secrets(
    otel: Telemetry, tracing: OpenTelemetryTracing, clock: VirtualClock
) -> None:
    retrying = Retry(max_attempts=2, base_delay=0.0, clock=clock, name="charge")
    with pytest.raises(RetryExhaustedError):
        retrying.call(ScriptedCall(ConnectionError("refused by https://bob:hunter2@pay.example/x?sig=abc")))
    span = otel.span("charge")
    assert events(span) == [
        ("attempt", {"attempt": 1, "delay": 0.0, "outcome": "failure",
                     "exception.type": "ConnectionError"}),
        ("attempt", {"attempt": 2, "outcome": "failure", "exception.type": "ConnectionError"}),
    ]
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == (
        "gave up after 2 attempts (exhausted): "
        "ConnectionError: refused by https://***@pay.example/x?***")
    assert dict(span.attributes or {})["buttress.reason"] == "exhausted"
    assert dict(span.attributes or {})["buttress.outcome"] == "failure"


def test_a_non_retryable_failure_gives_up_at_once(
    otel: Telemetry, tracing: OpenTelemetryTracing, clock: VirtualClock
) -> None:
    retrying = Retry(max_attempts=5, retry_on=(ConnectionError,), clock=clock, name="parse")
    with pytest.raises(ValueError, match="bad"):
        retrying.call(ScriptedCall(ValueError("bad")))
    span = otel.span("parse")
    assert events(span) == [
        ("attempt", {"attempt": 1, "outcome": "failure", "exception.type": "ValueError"}),
    ]
    assert dict(span.attributes or {})["buttress.reason"] == "not_retryable"
    assert span.status.status_code is StatusCode.ERROR


def test_a_rejected_result_is_reported_as_such(
    otel: Telemetry, tracing: OpenTelemetryTracing, clock: VirtualClock
) -> None:
    retrying = Retry(max_attempts=2, base_delay=0.0, retry_on_result=lambda r: r is None,
                     clock=clock, name="poll")
    assert retrying.call(ScriptedCall(None, "ready")) == "ready"
    assert events(otel.span("poll"))[0] == (
        "attempt", {"attempt": 1, "delay": 0.0, "outcome": "result_rejected"})


def test_the_call_span_is_current_while_attempts_run_and_restored_after(
    otel: Telemetry, tracing: OpenTelemetryTracing, clock: VirtualClock
) -> None:
    outcomes = iter([ConnectionError("once"), None])

    @Retry(max_attempts=2, base_delay=0.0, clock=clock, name="get")
    def get() -> str:
        with otel.tracer.start_as_current_span("http GET"):
            failure = next(outcomes)
            if failure is not None:
                raise failure
        return "body"

    with otel.tracer.start_as_current_span("request") as request:
        assert get() == "body"
        assert trace.get_current_span() is request
    assert trace.get_current_span() is trace.INVALID_SPAN
    call, request_span = otel.span("get"), otel.span("request")
    assert call.parent is not None
    assert call.parent.span_id == request_span.context.span_id
    http = otel.spans("http GET")
    assert len(http) == 2
    assert all(s.parent is not None and s.parent.span_id == call.context.span_id for s in http)
    assert call.start_time is not None
    assert http[0].start_time is not None
    assert call.start_time <= http[0].start_time


def test_nested_calls_nest_their_spans(
    otel: Telemetry, tracing: OpenTelemetryTracing, clock: VirtualClock
) -> None:
    inner = Retry(max_attempts=2, base_delay=0.0, clock=clock, name="inner")
    outer = Retry(max_attempts=2, base_delay=0.0, clock=clock, name="outer")
    assert outer.call(lambda: inner.call(ScriptedCall(ConnectionError, "ok"))) == "ok"
    inner_span, outer_span = otel.spans()
    assert (inner_span.name, outer_span.name) == ("inner", "outer")
    assert inner_span.parent is not None
    assert inner_span.parent.span_id == outer_span.context.span_id
    assert [e[1]["outcome"] for e in events(inner_span)] == ["failure", "success"]
    assert [e[1]["outcome"] for e in events(outer_span)] == ["success"]


def test_the_attempts_iterator_is_one_span_too(
    otel: Telemetry, tracing: OpenTelemetryTracing, clock: VirtualClock
) -> None:
    flaky = ScriptedCall(ConnectionError, "ok")
    for attempt in Retry(max_attempts=3, base_delay=0.0, clock=clock, name="loop").attempts():
        with attempt:
            flaky()
    assert [e[1]["outcome"] for e in events(otel.span("loop"))] == ["failure", "success"]


async def test_a_call_cancelled_inside_an_attempt_ends_its_span_as_cancelled(
    otel: Telemetry, tracing: OpenTelemetryTracing, clock: VirtualClock
) -> None:
    inner = Retry(max_attempts=2, base_delay=0.0, clock=clock, name="inner")

    async def stuck() -> None:
        await clock.async_sleep(10.0)

    # The timeout cancels the inner call mid-attempt; the inner retry reports
    # that as giving up with reason "cancelled", which ends its span.
    @Timeout(1.0, clock=clock)
    async def attempt() -> None:
        await inner.acall(stuck)

    outer = Retry(max_attempts=2, base_delay=0.0, clock=clock, name="outer",
                  retry_on=(TimeoutError,))
    with pytest.raises(RetryExhaustedError):
        await outer.acall(attempt)
    cancelled = otel.spans("inner")
    assert len(cancelled) == 2
    for span in cancelled:
        assert dict(span.attributes or {})["buttress.outcome"] == "cancelled"
        assert span.status.status_code is StatusCode.UNSET
    outer_span = otel.span("outer")
    assert dict(outer_span.attributes or {})["buttress.attempts"] == 2
    assert trace.get_current_span() is trace.INVALID_SPAN


# --- events of other strategies -------------------------------------------------------


def test_a_rejection_inside_a_call_is_an_event_of_its_span(
    otel: Telemetry, tracing: OpenTelemetryTracing, clock: VirtualClock
) -> None:
    breaker = CircuitBreaker("ledger", failure_threshold=1, clock=clock)
    protect = buttress.pipeline(Retry(max_attempts=3, base_delay=0.0, clock=clock, name="book"),
                                breaker)
    with pytest.raises(CircuitBreakerError):
        protect.call(ScriptedCall(ConnectionError))
    span = otel.span("book")
    assert [name for name, _ in events(span)] == ["state_changed", "attempt", "rejected",
                                                   "attempt"]
    assert events(span)[0][1] == {"breaker": "ledger", "old_state": "closed",
                                  "new_state": "open"}
    assert events(span)[2][1] == {"buttress.source": "circuit_breaker", "buttress.name": "ledger",
                                  "reason": "circuit_open", "remaining": 30.0}
    assert dict(span.attributes or {})["buttress.reason"] == "not_retryable"
    assert len(otel.spans()) == 1


def test_a_rejection_outside_any_call_is_a_short_error_span(
    otel: Telemetry, tracing: OpenTelemetryTracing, clock: VirtualClock
) -> None:
    breaker = CircuitBreaker("ledger", failure_threshold=1, clock=clock)
    with pytest.raises(ConnectionError):
        breaker.call(ScriptedCall(ConnectionError))
    with pytest.raises(CircuitBreakerError):
        breaker.call(ScriptedCall("never"))
    span = otel.span("circuit_breaker.rejected")
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {}) == {
        "buttress.source": "circuit_breaker", "buttress.name": "ledger",
        "reason": "circuit_open", "remaining": 30.0}


async def test_a_timeout_inside_a_call_is_an_event_of_its_span(
    otel: Telemetry, tracing: OpenTelemetryTracing, clock: VirtualClock
) -> None:
    protect = buttress.pipeline(
        retry=RetryConfig(max_attempts=2, base_delay=0.0, name="quote"),
        timeout=buttress.TimeoutConfig(timeout_seconds=1.0), clock=clock)

    @protect
    async def quote() -> str:
        await clock.async_sleep(5.0)
        return "late"

    with pytest.raises(RetryExhaustedError):
        await quote()
    span = otel.span("quote")
    names = [name for name, _ in events(span)]
    assert names == ["timed_out", "attempt", "timed_out", "attempt"]
    assert events(span)[0][1]["timeout"] == 1.0
    assert events(span)[1][1]["exception.type"] == "buttress._core.errors.OperationTimeoutError"
    assert len(otel.spans()) == 1


def test_a_fallback_after_the_call_is_a_short_span(
    otel: Telemetry, tracing: OpenTelemetryTracing, clock: VirtualClock
) -> None:
    protect = buttress.pipeline(retry=RetryConfig(max_attempts=2, base_delay=0.0, name="recs"),
                                fallback=buttress.Fallback([], name="recs-fallback"),
                                clock=clock)
    assert protect.call(ScriptedCall(ConnectionError)) == []
    call, fallback = otel.span("recs"), otel.span("fallback.used")
    assert call.status.status_code is StatusCode.ERROR
    assert fallback.status.status_code is StatusCode.UNSET
    assert events(fallback) == [("fallback", {
        "buttress.source": "fallback", "buttress.name": "recs-fallback",
        "exception.type": "buttress._core.errors.RetryExhaustedError"})]


# --- concurrency ----------------------------------------------------------------------


async def test_a_thousand_concurrent_calls_make_a_thousand_separate_spans(
    otel: Telemetry, tracing: OpenTelemetryTracing, clock: VirtualClock
) -> None:
    retrying = Retry(max_attempts=3, base_delay=0.5, jitter=False, clock=clock, name="task")

    async def call(i: int) -> int:
        # Call i fails i % 3 times, then answers i; every await lets others run.
        script = AsyncScriptedCall(*([ConnectionError] * (i % 3)), i)
        return int(await retrying.acall(script))

    results = await asyncio.gather(*(call(i) for i in range(1000)))
    assert results == list(range(1000))
    spans = otel.spans("task")
    assert len(spans) == 1000
    assert len({span.context.span_id for span in spans}) == 1000
    assert all(span.parent is None for span in spans)
    attempts = sorted(int(dict(span.attributes or {})["buttress.attempts"]) for span in spans)
    assert attempts == sorted(i % 3 + 1 for i in range(1000))
    for span in spans:
        numbers = [e[1]["attempt"] for e in events(span)]
        assert numbers == list(range(1, int(dict(span.attributes or {})["buttress.attempts"]) + 1))
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_threads_keep_their_spans_apart(
    otel: Telemetry, tracing: OpenTelemetryTracing, clock: VirtualClock
) -> None:
    retrying = Retry(max_attempts=2, base_delay=0.0, clock=clock, name="threaded")
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            for _ in range(50):
                with otel.tracer.start_as_current_span("job") as job:
                    retrying.call(ScriptedCall(ConnectionError, "ok"))
                    assert trace.get_current_span() is job
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    jobs = {span.context.span_id for span in otel.spans("job")}
    calls = otel.spans("threaded")
    assert len(calls) == 400
    parents = [span.parent.span_id for span in calls if span.parent is not None]
    assert sorted(parents) == sorted(jobs)  # each job parents exactly one call span
    assert all(len(span.events) == 2 for span in calls)


# --- metrics --------------------------------------------------------------------------


def test_metrics_match_the_prometheus_set(
    otel: Telemetry, tracing: OpenTelemetryTracing, clock: VirtualClock
) -> None:
    breaker = CircuitBreaker("stock", failure_threshold=2, recovery_timeout=10.0,
                             success_threshold=1, clock=clock)
    retrying = Retry(max_attempts=3, base_delay=1.0, jitter=False, clock=clock, name="fetch")
    assert retrying.call(ScriptedCall(ConnectionError, ConnectionError, "ok")) == "ok"
    assert retrying.call(ScriptedCall("ok")) == "ok"
    with pytest.raises(RetryExhaustedError):
        retrying.call(ScriptedCall(ConnectionError))
    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call(ScriptedCall(ConnectionError))
    with pytest.raises(CircuitBreakerError):
        breaker.call(ScriptedCall("never"))

    assert otel.value("resilient.retries", operation="fetch") == 4
    assert otel.value("circuit_breaker.trips", operation="stock") == 1
    assert otel.value("resilient.rejections", operation="stock", reason="circuit_open") == 1
    assert otel.value("circuit_breaker.state", operation="stock") == 1
    success = otel.points("resilient.operation.duration")[
        frozenset({"operation": "fetch", "outcome": "success"}.items())]
    failure = otel.points("resilient.operation.duration")[
        frozenset({"operation": "fetch", "outcome": "failure"}.items())]
    assert (success.count, success.sum, failure.count, failure.sum) == (2, 3.0, 1, 3.0)
    assert tuple(success.explicit_bounds)[:3] == (0.005, 0.01, 0.025)

    clock.advance(10.0)
    assert breaker.state is buttress.CircuitState.HALF_OPEN
    assert otel.value("circuit_breaker.state", operation="stock") == 2
    assert breaker.call(ScriptedCall("ok")) == "ok"
    assert otel.value("circuit_breaker.state", operation="stock") == 0


async def test_timeouts_and_fallbacks_are_counted(
    otel: Telemetry, tracing: OpenTelemetryTracing, clock: VirtualClock
) -> None:
    @Timeout(1.0, clock=clock)
    async def slow() -> None:
        await clock.async_sleep(5.0)

    with pytest.raises(buttress.OperationTimeoutError):
        await slow()
    guarded = buttress.with_fallback(fallback_value=0, name="price")(ScriptedCall(KeyError))
    assert guarded() == guarded() == 0
    assert sum(point.value for point in otel.points("resilient.timeouts").values()) == 1
    assert otel.value("resilient.fallbacks", operation="price") == 2
    timed_out = otel.span("timeout.timed_out")
    assert timed_out.status.status_code is StatusCode.ERROR


def test_breakers_that_exist_at_install_are_observed(otel: Telemetry, clock: VirtualClock) -> None:
    buttress.get_circuit_breaker("early", clock=clock).force_open()
    listener = OpenTelemetryTracing(otel.tracer_provider, otel.meter_provider).install()
    try:
        assert otel.value("circuit_breaker.state", operation="early") == 1
    finally:
        listener.uninstall()


def test_names_are_capped_in_spans_and_metrics(otel: Telemetry, clock: VirtualClock) -> None:
    listener = OpenTelemetryTracing(otel.tracer_provider, otel.meter_provider,
                                    max_label_values=2).install()
    try:
        for i in range(4):
            Retry(max_attempts=2, base_delay=0.0, clock=clock, name=f"op{i}").call(
                ScriptedCall(ConnectionError, "ok"))
    finally:
        listener.uninstall()
    retries = {dict(key)["operation"]: point.value
               for key, point in otel.points("resilient.retries").items()}
    assert retries == {"op0": 1, "op1": 1, OTHER: 2}
    assert sorted(span.name for span in otel.spans()) == ["__other__", "__other__", "op0", "op1"]


# --- wiring ---------------------------------------------------------------------------


def test_attach_traces_one_pipeline_and_uninstall_stops_it(
    otel: Telemetry, clock: VirtualClock
) -> None:
    watched = buttress.pipeline(retry=RetryConfig(max_attempts=2, base_delay=0.0, name="watched"),
                                clock=clock)
    other = Retry(max_attempts=2, base_delay=0.0, clock=clock, name="other")
    listener = OpenTelemetryTracing(otel.tracer_provider, otel.meter_provider)
    listener.attach(watched).attach(watched)
    watched.call(ScriptedCall("ok"))
    other.call(ScriptedCall("ok"))
    listener.uninstall()
    watched.call(ScriptedCall("ok"))
    assert [span.name for span in otel.spans()] == ["watched"]
    assert listener not in GLOBAL.listeners
    assert listener not in watched.events.listeners


def test_spans_only_mode_records_no_metrics(otel: Telemetry, clock: VirtualClock) -> None:
    listener = OpenTelemetryTracing(otel.tracer_provider, otel.meter_provider,
                                    record_metrics=False).install()
    try:
        Retry(max_attempts=2, base_delay=0.0, clock=clock, name="quiet").call(
            ScriptedCall(ConnectionError, "ok"))
    finally:
        listener.uninstall()
    assert otel.points("resilient.retries") == {}
    assert [span.name for span in otel.spans()] == ["quiet"]


def test_attach_refuses_what_has_no_listener_hub(otel: Telemetry) -> None:
    listener = OpenTelemetryTracing(otel.tracer_provider, otel.meter_provider)
    with pytest.raises(TypeError, match="attach"):
        listener.attach(object())
