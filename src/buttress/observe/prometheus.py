"""Prometheus metrics for buttress, fed by its typed events.

:class:`PrometheusMetrics` is an event listener that keeps these metrics (the
``namespace`` argument prefixes every name):

=========================================  =======================  ===========================
metric                                     labels                   from
=========================================  =======================  ===========================
``circuit_breaker_state`` (gauge)          operation                0 closed, 1 open, 2 half-open
``circuit_breaker_trips_total``            operation                every move to OPEN
``resilient_operation_duration_seconds``   operation, outcome       ``CallFinished``
``resilient_retries_total``                operation                ``RetryScheduled``
``resilient_rejections_total``             operation, reason        ``CallRejected``
``resilient_timeouts_total``               operation                ``TimedOut``
``resilient_fallbacks_total``              operation                ``FallbackUsed``
``resilient_hedges_total``                 operation, reason        ``HedgeStarted``
``resilient_faults_injected_total``        operation, fault         ``FaultInjected``
=========================================  =======================  ===========================

**One label, ``operation``**, names what a series is about in every family: a
protected call's operation name (see ``buttress.pipeline.operation_name_of``:
the first name given to a retry, timeout, fallback or bulkhead, else the
function's qualified name), or, for the breaker families, the breaker's name.
Every stage of one call (retries, rejections, timeouts, fallbacks) counts under
the call's operation name, whatever each stage is called.

**Every protected call** (a decorated function, a pipeline, ``strategy.call``,
a preset, ``with_metrics``) observes one duration with its ``outcome``:
"success", "failure", "rejected" (an open breaker or a full bulkhead refused it,
the dependency was not called) or "cancelled". A breaker's state series exists
from the breaker's creation (breakers created after :meth:`install` included).

Labels only ever hold policy and operation names (redacted like logs, so a URL
used as a name loses its credentials and query) and a few fixed words (a
hedge's ``reason``: "slow" or "failed"; a fault: "latency", "exception" or
"result"); never an exception message or an injected value. The number of
distinct names is capped (``max_label_values``, 500 by default); names beyond
the cap are counted under ``"__other__"``, so a name built from user input can
not grow the registry without bound.

Multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) works as prometheus_client
documents it: counters and the histogram are summed over processes, and the
breaker-state gauge uses ``livemax`` (each breaker is local to its process, so
the exported value is the highest state any live worker reports: 1 or 2 means
some worker is not closed); call ``prometheus_client.multiprocess.mark_process_dead``
for exited workers as usual.

Example::

    from prometheus_client import generate_latest
    from buttress.observe.prometheus import PrometheusMetrics

    metrics = PrometheusMetrics().install()   # every policy, via the global hub
    ...
    print(generate_latest().decode())

This module imports ``prometheus_client``; ``import buttress`` never does.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Final, Literal

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from buttress._core import forksafe, operation
from buttress._core.events import (
    CallRejected,
    FallbackUsed,
    GaveUp,
    RetryScheduled,
    StateChanged,
    Succeeded,
    TimedOut,
)
from buttress._core.operation import CallFinished, outcome_of
from buttress.breaker import CircuitBreaker, CircuitState
from buttress.chaos import FaultInjected
from buttress.hedge import HedgeStarted
from buttress.observe._wiring import (
    DEFAULT_BUCKETS,
    OTHER,
    BoundedNames,
    HubListener,
    check_max_label_values,
    rejection_reason,
)

__all__ = ["DEFAULT_BUCKETS", "OTHER", "PrometheusMetrics"]

# The fixed words a hedge or fault label may hold (anything else: "other").
_HEDGE_REASONS: Final = frozenset({"slow", "failed"})
_FAULTS: Final = frozenset({"latency", "exception", "result"})

MultiprocessMode = Literal["all", "liveall", "min", "livemin", "max", "livemax", "sum",
                           "livesum", "mostrecent", "livemostrecent"]


class _Families:
    """The metric objects of one (registry, namespace): created once, shared by
    every :class:`PrometheusMetrics` on them (a registry refuses duplicates)."""

    def __init__(self, registry: CollectorRegistry, namespace: str,
                 buckets: tuple[float, ...], state_mode: MultiprocessMode,
                 max_label_values: int) -> None:
        self.buckets = buckets
        self.state_mode = state_mode
        self.names = BoundedNames(max_label_values)
        self.state = Gauge(
            "circuit_breaker_state", "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
            ["operation"], namespace=namespace, registry=registry,
            multiprocess_mode=state_mode,
        )
        self.trips = Counter(
            "circuit_breaker_trips", "Times a circuit breaker moved to OPEN.",
            ["operation"], namespace=namespace, registry=registry,
        )
        self.duration = Histogram(
            "resilient_operation_duration_seconds",
            "Duration of protected calls, retries and waits included, by outcome "
            "(success, failure, rejected, cancelled).",
            ["operation", "outcome"], namespace=namespace, registry=registry, buckets=buckets,
        )
        self.retries = Counter(
            "resilient_retries", "Retries scheduled after a failed attempt.",
            ["operation"], namespace=namespace, registry=registry,
        )
        self.rejections = Counter(
            "resilient_rejections", "Calls refused without running (open breaker, full "
            "bulkhead).", ["operation", "reason"], namespace=namespace, registry=registry,
        )
        self.timeouts = Counter(
            "resilient_timeouts", "Calls stopped by a timeout.",
            ["operation"], namespace=namespace, registry=registry,
        )
        self.fallbacks = Counter(
            "resilient_fallbacks", "Failed calls answered by a fallback.",
            ["operation"], namespace=namespace, registry=registry,
        )
        self.hedges = Counter(
            "resilient_hedges", "Hedged attempts started, by reason (slow: the hedge delay "
            "passed; failed: an attempt failed).",
            ["operation", "reason"], namespace=namespace, registry=registry,
        )
        self.faults = Counter(
            "resilient_faults_injected", "Faults injected by chaos, by kind (latency, "
            "exception, result).", ["operation", "fault"], namespace=namespace,
            registry=registry,
        )


_shared: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, _Families]] = (
    weakref.WeakKeyDictionary())
_shared_lock = forksafe.lock()


def _families(registry: CollectorRegistry, namespace: str, buckets: tuple[float, ...],
              state_mode: MultiprocessMode, max_label_values: int) -> _Families:
    with _shared_lock:
        by_namespace = _shared.setdefault(registry, {})
        families = by_namespace.get(namespace)
        if families is None:
            families = _Families(registry, namespace, buckets, state_mode, max_label_values)
            by_namespace[namespace] = families
        elif families.buckets != buckets or families.state_mode != state_mode:
            raise ValueError(
                f"buttress metrics in namespace {namespace!r} already exist in this registry "
                f"with buckets={families.buckets!r}, state_multiprocess_mode="
                f"{families.state_mode!r}; got buckets={buckets!r}, "
                f"state_multiprocess_mode={state_mode!r}"
            )
        return families


class PrometheusMetrics(HubListener):
    """An event listener that records buttress's decisions as Prometheus metrics.

    ``registry`` defaults to ``prometheus_client.REGISTRY``; ``namespace``
    prefixes every metric name. Two instances on the same registry and namespace
    share the metric objects (install only one of them, or events count twice).

    Hear every policy with :meth:`install` (the global hub), or one strategy or
    pipeline with :meth:`attach`::

        metrics = PrometheusMetrics(registry, namespace="shop")
        metrics.attach(payments_pipeline)
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        namespace: str = "",
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        max_label_values: int = 500,
        state_multiprocess_mode: MultiprocessMode = "livemax",
    ) -> None:
        check_max_label_values("PrometheusMetrics", max_label_values)
        super().__init__()
        self.registry = REGISTRY if registry is None else registry
        self.namespace = namespace
        self._m = _families(self.registry, namespace, tuple(float(b) for b in buckets),
                            state_multiprocess_mode, max_label_values)
        self._handlers = {
            StateChanged: self._state_changed,
            CallFinished: self._call_finished,
            Succeeded: self._succeeded,
            GaveUp: self._gave_up,
            RetryScheduled: self._retry_scheduled,
            CallRejected: self._rejected,
            TimedOut: self._timed_out,
            FallbackUsed: self._fallback_used,
            HedgeStarted: self._hedge_started,
            FaultInjected: self._fault_injected,
        }

    def _record_state(self, breaker: CircuitBreaker) -> None:
        self._m.state.labels(self._m.names(breaker.name)).set(breaker.state.gauge_value)

    def _state_changed(self, event: StateChanged) -> None:
        m = self._m
        breaker = m.names(event.name)
        value = getattr(event.new_state, "gauge_value", None)
        if isinstance(value, int):
            m.state.labels(breaker).set(value)
        if event.new_state == CircuitState.OPEN:
            m.trips.labels(breaker).inc()

    def _call_finished(self, event: CallFinished) -> None:
        if event.duration is not None:
            self._m.duration.labels(self._m.names(event.name), event.outcome).observe(
                event.duration)

    # A retry's own end counts only outside an operation (a retry driven by hand):
    # inside one, the operation's CallFinished is the call's one duration.

    def _succeeded(self, event: Succeeded) -> None:
        if event.duration is not None and operation.current() is None:
            self._m.duration.labels(self._m.names(event.name), "success").observe(event.duration)

    def _gave_up(self, event: GaveUp) -> None:
        if event.duration is not None and operation.current() is None:
            outcome = ("cancelled" if event.reason == "cancelled" else "failure"
                       if event.exception is None else outcome_of(event.exception))
            self._m.duration.labels(self._m.names(event.name), outcome).observe(event.duration)

    def _label(self, name: str | None) -> str:
        """The operation label of a per-call event: the enclosing operation's name."""
        op = operation.current()
        return self._m.names(name if op is None else op.name)

    def _retry_scheduled(self, event: RetryScheduled) -> None:
        self._m.retries.labels(self._label(event.name)).inc()

    def _rejected(self, event: CallRejected) -> None:
        self._m.rejections.labels(self._label(event.name), rejection_reason(event)).inc()

    def _timed_out(self, event: TimedOut) -> None:
        self._m.timeouts.labels(self._label(event.name)).inc()

    def _fallback_used(self, event: FallbackUsed) -> None:
        self._m.fallbacks.labels(self._label(event.name)).inc()

    def _hedge_started(self, event: HedgeStarted) -> None:
        reason = event.reason if event.reason in _HEDGE_REASONS else "other"
        self._m.hedges.labels(self._label(event.name), reason).inc()

    def _fault_injected(self, event: FaultInjected) -> None:
        fault = event.fault if event.fault in _FAULTS else "other"
        self._m.faults.labels(self._label(event.name), fault).inc()

    def __repr__(self) -> str:
        return f"PrometheusMetrics(namespace={self.namespace!r}, installed={self._installed})"

