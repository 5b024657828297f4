"""Prometheus metrics for buttress, fed by its typed events.

:class:`PrometheusMetrics` is an event listener that keeps these metrics (the
``namespace`` argument prefixes every name):

=========================================  =======================  ===========================
metric                                     labels                   from
=========================================  =======================  ===========================
``circuit_breaker_state`` (gauge)          breaker                  0 closed, 1 open, 2 half-open
``circuit_breaker_trips_total``            breaker                  every move to OPEN
``resilient_operation_duration_seconds``   operation, outcome       ``Succeeded`` / ``GaveUp``
``resilient_retries_total``                operation                ``RetryScheduled``
``resilient_rejections_total``             name, reason             ``CallRejected``
``resilient_timeouts_total``               operation                ``TimedOut``
``resilient_fallbacks_total``              operation                ``FallbackUsed``
=========================================  =======================  ===========================

Labels only ever hold policy and operation names (redacted like logs, so a URL
used as a name loses its credentials and query) and a few fixed words; never an
exception message. The number of distinct names is capped (``max_label_values``,
500 by default); names beyond the cap are counted under ``"__other__"``, so a
name built from user input can not grow the registry without bound.

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

import contextlib
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from buttress._core.events import (
    GLOBAL,
    CallRejected,
    Event,
    FallbackUsed,
    GaveUp,
    Listeners,
    RetryScheduled,
    StateChanged,
    Succeeded,
    TimedOut,
)
from buttress._core.strategy import redact
from buttress.breaker import CircuitBreaker, CircuitState
from buttress.registry import all_circuit_breakers

__all__ = ["DEFAULT_BUCKETS", "OTHER", "PrometheusMetrics"]

MultiprocessMode = Literal["all", "liveall", "min", "livemin", "max", "livemax", "sum",
                           "livesum", "mostrecent", "livemostrecent"]

DEFAULT_BUCKETS: Final[tuple[float, ...]] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)
"""Histogram buckets in seconds: from a fast cache hit to a call that retried for
minutes (retries with backoff make whole-call durations much longer than one
request's)."""

OTHER: Final = "__other__"
"""The label value that stands for every name past the cap."""

_UNNAMED: Final = "unnamed"
_MAX_LENGTH: Final = 200

_KINDS: Final[tuple[type[Event], ...]] = (
    StateChanged, Succeeded, GaveUp, RetryScheduled, CallRejected, TimedOut, FallbackUsed,
)


class _BoundedNames:
    """Maps raw names to label values, admitting at most ``limit`` distinct values.

    Lookups of known names take no lock; only a first sighting does.
    """

    __slots__ = ("_known", "_limit", "_lock", "_values")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._known: dict[str | None, str] = {}
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, name: str | None) -> str:
        label = self._known.get(name)
        return label if label is not None else self._admit(name)

    def _admit(self, name: str | None) -> str:
        label = _UNNAMED if not name else redact(name)[:_MAX_LENGTH]
        with self._lock:
            if label in self._values:
                self._known[name] = label
                return label
            if len(self._values) >= self._limit:
                # Not remembered, so the map stays bounded too.
                return OTHER
            self._values.add(label)
            self._known[name] = label
            return label


class _Families:
    """The metric objects of one (registry, namespace): created once, shared by
    every :class:`PrometheusMetrics` on them (a registry refuses duplicates)."""

    def __init__(self, registry: CollectorRegistry, namespace: str,
                 buckets: tuple[float, ...], state_mode: MultiprocessMode,
                 max_label_values: int) -> None:
        self.buckets = buckets
        self.state_mode = state_mode
        self.names = _BoundedNames(max_label_values)
        self.state = Gauge(
            "circuit_breaker_state", "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
            ["breaker"], namespace=namespace, registry=registry,
            multiprocess_mode=state_mode,
        )
        self.trips = Counter(
            "circuit_breaker_trips", "Times a circuit breaker moved to OPEN.",
            ["breaker"], namespace=namespace, registry=registry,
        )
        self.duration = Histogram(
            "resilient_operation_duration_seconds",
            "Duration of protected calls, retries and waits included, by outcome.",
            ["operation", "outcome"], namespace=namespace, registry=registry, buckets=buckets,
        )
        self.retries = Counter(
            "resilient_retries", "Retries scheduled after a failed attempt.",
            ["operation"], namespace=namespace, registry=registry,
        )
        self.rejections = Counter(
            "resilient_rejections", "Calls refused without running (open breaker, full "
            "bulkhead).", ["name", "reason"], namespace=namespace, registry=registry,
        )
        self.timeouts = Counter(
            "resilient_timeouts", "Calls stopped by a timeout.",
            ["operation"], namespace=namespace, registry=registry,
        )
        self.fallbacks = Counter(
            "resilient_fallbacks", "Failed calls answered by a fallback.",
            ["operation"], namespace=namespace, registry=registry,
        )


_shared: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, _Families]] = (
    weakref.WeakKeyDictionary())
_shared_lock = threading.Lock()


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


def _hub_of(target: object) -> Listeners:
    if isinstance(target, Listeners):
        return target
    hub = getattr(target, "events", None)
    if not isinstance(hub, Listeners):
        raise TypeError(
            f"attach() takes a listener hub, a strategy or a pipeline, got {target!r}")
    return hub


def _breakers_of(target: object) -> list[CircuitBreaker]:
    if isinstance(target, CircuitBreaker):
        return [target]
    strategies = getattr(target, "strategies", ())
    return [s for s in strategies if isinstance(s, CircuitBreaker)]


class PrometheusMetrics:
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
        if not isinstance(max_label_values, int) or max_label_values < 1:
            raise ValueError(
                f"PrometheusMetrics.max_label_values must be an int >= 1, "
                f"got {max_label_values!r}")
        self.registry = REGISTRY if registry is None else registry
        self.namespace = namespace
        self._m = _families(self.registry, namespace, tuple(float(b) for b in buckets),
                            state_multiprocess_mode, max_label_values)
        self._installed = False
        self._hubs: weakref.WeakSet[Listeners] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._handlers: dict[type[Event], Callable[[Any], None]] = {
            StateChanged: self._state_changed,
            Succeeded: self._succeeded,
            GaveUp: self._gave_up,
            RetryScheduled: self._retry_scheduled,
            CallRejected: self._rejected,
            TimedOut: self._timed_out,
            FallbackUsed: self._fallback_used,
        }

    # wiring

    def install(self) -> PrometheusMetrics:
        """Listen to every policy (the global hub) and set the state gauge of every
        breaker that already exists. Idempotent; returns ``self``."""
        with self._lock:
            if not self._installed:
                GLOBAL.add(self, *_KINDS)
                self._installed = True
        for breaker in all_circuit_breakers().values():
            self._record_state(breaker)
        return self

    def uninstall(self) -> None:
        """Stop listening everywhere (the global hub and every attached hub). The
        metrics stay registered with their values."""
        with self._lock:
            if self._installed:
                _remove(GLOBAL, self)
                self._installed = False
            hubs = list(self._hubs)
            self._hubs.clear()
        for hub in hubs:
            _remove(hub, self)

    def attach(self, target: object) -> PrometheusMetrics:
        """Listen to one hub, strategy or pipeline only (and set the state gauge of
        the breakers it holds). Returns ``self``."""
        hub = _hub_of(target)
        with self._lock:
            if hub not in self._hubs:
                hub.add(self, *_KINDS)
                self._hubs.add(hub)
        for breaker in _breakers_of(target):
            self._record_state(breaker)
        return self

    def detach(self, target: object) -> None:
        """Stop listening to a hub, strategy or pipeline given to :meth:`attach`."""
        hub = _hub_of(target)
        with self._lock:
            if hub not in self._hubs:
                return
            self._hubs.discard(hub)
        _remove(hub, self)

    # the listener

    def __call__(self, event: Event) -> None:
        """Record one event (the hub calls this; events of other kinds are ignored)."""
        handler = self._handlers.get(type(event))
        if handler is None:
            for kind in type(event).__mro__:
                handler = self._handlers.get(kind)
                if handler is not None:
                    break
            else:
                return
        handler(event)

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

    def _succeeded(self, event: Succeeded) -> None:
        if event.duration is not None:
            self._m.duration.labels(self._m.names(event.name), "success").observe(event.duration)

    def _gave_up(self, event: GaveUp) -> None:
        if event.duration is not None:
            outcome = "cancelled" if event.reason == "cancelled" else "failure"
            self._m.duration.labels(self._m.names(event.name), outcome).observe(event.duration)

    def _retry_scheduled(self, event: RetryScheduled) -> None:
        self._m.retries.labels(self._m.names(event.name)).inc()

    def _rejected(self, event: CallRejected) -> None:
        self._m.rejections.labels(self._m.names(event.name), _reason(event)).inc()

    def _timed_out(self, event: TimedOut) -> None:
        self._m.timeouts.labels(self._m.names(event.name)).inc()

    def _fallback_used(self, event: FallbackUsed) -> None:
        self._m.fallbacks.labels(self._m.names(event.name)).inc()

    def __repr__(self) -> str:
        return f"PrometheusMetrics(namespace={self.namespace!r}, installed={self._installed})"


_REASONS: Final = {
    ("circuit_breaker", CircuitState.OPEN): "circuit_open",
    ("circuit_breaker", CircuitState.HALF_OPEN): "circuit_half_open",
    ("bulkhead", "full"): "bulkhead_full",
}


def _reason(event: CallRejected) -> str:
    """A fixed word for why a call was refused (unknown combinations: "other")."""
    try:
        return _REASONS.get((event.source, event.state), "other")
    except TypeError:  # an unhashable state
        return "other"


def _remove(hub: Listeners, listener: PrometheusMetrics) -> None:
    # Already gone when someone cleared the hub.
    with contextlib.suppress(ValueError):
        hub.remove(listener)
