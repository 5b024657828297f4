"""OpenTelemetry tracing and metrics for buttress, fed by its typed events.

:class:`OpenTelemetryTracing` is an event listener that opens **one span per
protected call**: a retrying call's span starts when attempt 1 is announced
(before the function runs, and it is made the current span, so spans the
function creates, an HTTP client's for instance, are its children) and ends
with the call's ``Succeeded`` or ``GaveUp``. Each attempt adds a span event
``"attempt"`` (attributes ``attempt``, ``outcome``, ``delay`` when a retry
follows, ``exception.type``); breaker and bulkhead rejections, timeouts, slow
calls, state changes and fallbacks add span events to the innermost open call
span. A rejection, timeout or fallback outside any open call span gets a short
span of its own. A call that gives up ends with status ERROR.

Events of one call arrive on the thread or task that makes the call, so the
open spans live in a :class:`contextvars.ContextVar` (a stack of calls keyed by
``(source, name)``): concurrent tasks and threads never see each other's spans,
and nested pipelines nest their spans. A call abandoned without an ending event
(cancelled, or interrupted by ``KeyboardInterrupt``) is ended, with status
ERROR, as soon as an enclosing call reports again.

The same metrics as :mod:`buttress.observe.prometheus` go to the OTel meter,
under OTel-style names that Prometheus exporters turn into the same names:

=================================  =====================  =========================
instrument                         attributes             Prometheus name
=================================  =====================  =========================
``circuit_breaker.state`` (gauge)  operation              ``circuit_breaker_state``
``circuit_breaker.trips``          operation              ``circuit_breaker_trips_total``
``resilient.operation.duration``   operation, outcome     ``resilient_operation_duration_seconds``
``resilient.retries``              operation              ``resilient_retries_total``
``resilient.rejections``           operation, reason      ``resilient_rejections_total``
``resilient.timeouts``             operation              ``resilient_timeouts_total``
``resilient.fallbacks``            operation              ``resilient_fallbacks_total``
=================================  =====================  =========================

As there, one attribute, ``operation``, names the series in every instrument
(the breaker's name for the breaker instruments), every stage of one call counts
under the call's operation name, and every protected call records one duration
with its outcome ("success", "failure", "rejected", "cancelled") from its
``CallFinished`` event.

Attributes hold only policy/operation names (redacted, at most
``max_label_values`` distinct ones, the rest as ``"__other__"``) and fixed
words; exception messages appear only in span status descriptions, redacted.

Example::

    from buttress.observe.otel import OpenTelemetryTracing

    OpenTelemetryTracing().install()   # global tracer and meter providers

This module imports ``opentelemetry``; ``import buttress`` never does.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from contextvars import Token
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from buttress import __version__
from buttress._core import operation
from buttress._core.events import (
    AttemptStarted,
    CallRejected,
    Event,
    FallbackUsed,
    GaveUp,
    RetryScheduled,
    SlowCall,
    StateChanged,
    Succeeded,
    TimedOut,
)
from buttress._core.operation import CallFinished, outcome_of
from buttress._core.strategy import describe
from buttress.breaker import CircuitBreaker, CircuitState
from buttress.observe._wiring import (
    DEFAULT_BUCKETS,
    OTHER,
    BoundedNames,
    HubListener,
    check_max_label_values,
    rejection_reason,
)

__all__ = ["DEFAULT_BUCKETS", "OTHER", "OpenTelemetryTracing"]

INSTRUMENTATION_NAME: Final = "buttress"


class _Call:
    """One open call span, and the token that made it current."""

    __slots__ = ("key", "span", "token")

    def __init__(self, key: tuple[str, str | None], span: Span, token: Token[Context]) -> None:
        self.key = key
        self.span = span
        self.token = token


_NO_CALLS: Final[tuple[_Call, ...]] = ()


def _exception_type(exc: BaseException | None) -> str | None:
    if exc is None:
        return None
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


class OpenTelemetryTracing(HubListener):
    """An event listener that turns buttress's decisions into OpenTelemetry spans
    and metrics.

    ``tracer_provider`` and ``meter_provider`` default to the global ones. Pass
    ``record_metrics=False`` for spans only. Hear every policy with
    :meth:`install`, or one strategy or pipeline with :meth:`attach`::

        tracing = OpenTelemetryTracing(tracer_provider=provider)
        tracing.attach(payments_pipeline)
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        *,
        record_metrics: bool = True,
        max_label_values: int = 500,
    ) -> None:
        check_max_label_values("OpenTelemetryTracing", max_label_values)
        super().__init__()
        self.tracer = trace.get_tracer(INSTRUMENTATION_NAME, __version__,
                                       tracer_provider=tracer_provider)
        self.record_metrics = record_metrics
        self._names = BoundedNames(max_label_values)
        # Open call spans of the current thread/task, innermost last. One var per
        # instance: two instances (two providers) keep separate stacks.
        self._calls: contextvars.ContextVar[tuple[_Call, ...]] = contextvars.ContextVar(
            f"buttress.otel.calls.{id(self)}", default=_NO_CALLS)
        self._states: dict[str, int] = {}
        self._handlers = {
            AttemptStarted: self._attempt_started,
            RetryScheduled: self._retry_scheduled,
            Succeeded: self._succeeded,
            GaveUp: self._gave_up,
            CallFinished: self._call_finished,
            StateChanged: self._state_changed,
            CallRejected: self._rejected,
            SlowCall: self._slow_call,
            TimedOut: self._timed_out,
            FallbackUsed: self._fallback_used,
        }
        if record_metrics:
            meter = metrics.get_meter(INSTRUMENTATION_NAME, __version__,
                                      meter_provider=meter_provider)
            meter.create_observable_gauge(
                "circuit_breaker.state", callbacks=[self._observe_states],
                description="Circuit breaker state: 0 closed, 1 open, 2 half-open.")
            self._trips = meter.create_counter(
                "circuit_breaker.trips", description="Times a circuit breaker moved to OPEN.")
            self._duration = meter.create_histogram(
                "resilient.operation.duration", unit="s",
                description="Duration of protected calls, retries and waits included.",
                # An advisory the meter may override.
                explicit_bucket_boundaries_advisory=DEFAULT_BUCKETS)
            self._retries = meter.create_counter(
                "resilient.retries", description="Retries scheduled after a failed attempt.")
            self._rejections = meter.create_counter(
                "resilient.rejections", description="Calls refused without running.")
            self._timeouts = meter.create_counter(
                "resilient.timeouts", description="Calls stopped by a timeout.")
            self._fallbacks = meter.create_counter(
                "resilient.fallbacks", description="Failed calls answered by a fallback.")

    # call spans

    def _attempt_started(self, event: AttemptStarted) -> None:
        if event.attempt != 1:
            return
        name = self._names(event.name)
        span = self.tracer.start_span(
            name, kind=SpanKind.INTERNAL,
            attributes={"buttress.source": event.source, "buttress.operation": name})
        token = otel_context.attach(trace.set_span_in_context(span))
        self._calls.set((*self._calls.get(), _Call((event.source, event.name), span, token)))

    def _find(self, event: Event) -> int:
        """Index of the innermost open call for ``event``'s (source, name), or -1.

        Calls above it on the stack were abandoned (their own ending event never
        came, or this one could not be reported): they are ended here."""
        calls = self._calls.get()
        key = (event.source, event.name)
        for index in range(len(calls) - 1, -1, -1):
            if calls[index].key == key:
                if index < len(calls) - 1:
                    for stale in reversed(calls[index + 1:]):
                        _end_abandoned(stale.span)
                    # Back to the context this call's attempts run in: the first
                    # abandoned call's token restores what was current before it.
                    otel_context.detach(calls[index + 1].token)
                    self._calls.set(calls[:index + 1])
                return index
        return -1

    def _label(self, name: str | None) -> str:
        """The operation attribute of a per-call event: the enclosing operation's name."""
        op = operation.current()
        return self._names(name if op is None else op.name)

    def _call_finished(self, event: CallFinished) -> None:
        if self.record_metrics and event.duration is not None:
            self._duration.record(event.duration, {"operation": self._names(event.name),
                                                   "outcome": event.outcome})

    def _retry_scheduled(self, event: RetryScheduled) -> None:
        if self.record_metrics:
            self._retries.add(1, {"operation": self._label(event.name)})
        index = self._find(event)
        if index < 0:
            return
        attributes: dict[str, Any] = {"attempt": event.attempt, "delay": event.delay}
        _failure(attributes, event.exception)
        self._calls.get()[index].span.add_event("attempt", attributes)

    def _succeeded(self, event: Succeeded) -> None:
        # Inside an operation, its CallFinished records the call's one duration.
        if self.record_metrics and event.duration is not None and operation.current() is None:
            self._duration.record(event.duration, {"operation": self._names(event.name),
                                                   "outcome": "success"})
        call = self._pop(event)
        if call is None:
            return
        span = call.span
        span.add_event("attempt", {"attempt": event.attempts, "outcome": "success"})
        span.set_attributes({"buttress.attempts": event.attempts,
                             "buttress.outcome": "success"})
        self._end(call)

    def _gave_up(self, event: GaveUp) -> None:
        cancelled = event.reason == "cancelled"
        outcome = ("cancelled" if cancelled else "failure" if event.exception is None
                   else outcome_of(event.exception))
        if self.record_metrics and event.duration is not None and operation.current() is None:
            self._duration.record(event.duration, {"operation": self._names(event.name),
                                                   "outcome": outcome})
        call = self._pop(event)
        if call is None:
            return
        span = call.span
        if cancelled:
            # Cancellation is the caller's decision, not the callee failing.
            span.add_event("attempt", {"attempt": event.attempts, "outcome": "cancelled"})
            span.set_attributes({"buttress.attempts": event.attempts,
                                 "buttress.outcome": "cancelled"})
            self._end(call)
            return
        attributes: dict[str, Any] = {"attempt": event.attempts}
        _failure(attributes, event.exception)
        span.add_event("attempt", attributes)
        span.set_attributes({"buttress.attempts": event.attempts,
                             "buttress.outcome": "failure", "buttress.reason": event.reason})
        cause = describe(event.exception) if event.exception is not None else "result rejected"
        span.set_status(Status(StatusCode.ERROR,
                               f"gave up after {event.attempts} attempts ({event.reason}): "
                               f"{cause}"))
        self._end(call)

    def _pop(self, event: Event) -> _Call | None:
        index = self._find(event)
        if index < 0:
            return None
        calls = self._calls.get()
        self._calls.set(calls[:index])
        return calls[index]

    @staticmethod
    def _end(call: _Call) -> None:
        call.span.end()
        # Restores the context current before the call began; tokens of abandoned
        # inner calls need no detaching, this reset supersedes them.
        otel_context.detach(call.token)

    # events that belong to whatever call is running

    def _innermost(self) -> Span | None:
        calls = self._calls.get()
        if calls:
            span = calls[-1].span
            if span.is_recording():
                return span
        return None

    def _annotate(self, span_name: str, event: Event, event_name: str,
                  attributes: dict[str, Any], failed: bool) -> None:
        """Add a span event to the running call's span, or, with none open, record
        the event as a short span of its own."""
        attributes = {"buttress.source": event.source,
                      "buttress.name": self._names(event.name), **attributes}
        span = self._innermost()
        if span is not None:
            span.add_event(event_name, attributes)
            return
        short = self.tracer.start_span(span_name, kind=SpanKind.INTERNAL,
                                       attributes=attributes)
        short.add_event(event_name, attributes)
        if failed:
            short.set_status(Status(StatusCode.ERROR, event_name))
        short.end()

    def _rejected(self, event: CallRejected) -> None:
        reason = rejection_reason(event)
        if self.record_metrics:
            self._rejections.add(1, {"operation": self._label(event.name), "reason": reason})
        self._annotate(f"{event.source}.rejected", event, "rejected",
                       {"reason": reason, "remaining": event.remaining}, failed=True)

    def _timed_out(self, event: TimedOut) -> None:
        if self.record_metrics:
            self._timeouts.add(1, {"operation": self._label(event.name)})
        self._annotate("timeout.timed_out", event, "timed_out", {"timeout": event.timeout},
                       failed=True)

    def _fallback_used(self, event: FallbackUsed) -> None:
        if self.record_metrics:
            self._fallbacks.add(1, {"operation": self._label(event.name)})
        attributes: dict[str, Any] = {}
        exception_type = _exception_type(event.exception)
        if exception_type is not None:
            attributes["exception.type"] = exception_type
        if event.age is not None:
            attributes["age"] = event.age
        self._annotate("fallback.used", event, "fallback", attributes, failed=False)

    def _slow_call(self, event: SlowCall) -> None:
        span = self._innermost()
        if span is not None:
            span.add_event("slow_call", {"buttress.name": self._names(event.name),
                                         "duration": event.duration,
                                         "threshold": event.threshold})

    def _state_changed(self, event: StateChanged) -> None:
        breaker = self._names(event.name)
        value = getattr(event.new_state, "gauge_value", None)
        if isinstance(value, int):
            self._states[breaker] = value
        if self.record_metrics and event.new_state == CircuitState.OPEN:
            self._trips.add(1, {"operation": breaker})
        span = self._innermost()
        if span is not None:
            span.add_event("state_changed", {
                "breaker": breaker,
                "old_state": str(getattr(event.old_state, "value", event.old_state)),
                "new_state": str(getattr(event.new_state, "value", event.new_state)),
            })

    # the breaker-state gauge

    def _record_state(self, breaker: CircuitBreaker) -> None:
        self._states[self._names(breaker.name)] = breaker.state.gauge_value

    def _observe_states(self, options: CallbackOptions) -> Iterable[Observation]:
        # Last states reported by events: reading a breaker's state here could move
        # it (open -> half-open) from the exporter's thread.
        return [Observation(value, {"operation": name})
                for name, value in self._states.copy().items()]

    def __repr__(self) -> str:
        return f"OpenTelemetryTracing(installed={self._installed})"


def _failure(attributes: dict[str, Any], exc: BaseException | None) -> None:
    """Fill the attributes of a failed attempt."""
    if exc is None:
        attributes["outcome"] = "result_rejected"
        return
    attributes["outcome"] = "failure"
    exception_type = _exception_type(exc)
    if exception_type is not None:
        attributes["exception.type"] = exception_type


def _end_abandoned(span: Span) -> None:
    if span.is_recording():
        span.set_attribute("buttress.outcome", "abandoned")
        span.set_status(Status(StatusCode.ERROR, "call abandoned (cancelled or interrupted)"))
        span.end()

