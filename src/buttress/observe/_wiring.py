"""What the exporters (:mod:`~buttress.observe.prometheus`,
:mod:`~buttress.observe.otel`) share: the capped label values, the fixed words for
rejections, and the wiring of a listener to the global hub, a strategy or a
pipeline.

Standard library and buttress only: this module must never import
``prometheus_client`` or ``opentelemetry`` (``import buttress.observe`` does not).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable
from typing import Any, Final, Self

from buttress._core import forksafe
from buttress._core.events import GLOBAL, CallRejected, Event, Listeners
from buttress._core.strategy import redact
from buttress.breaker import CircuitBreaker, CircuitState
from buttress.registry import all_circuit_breakers, on_breaker_created, remove_breaker_hook

__all__ = [
    "DEFAULT_BUCKETS", "OTHER", "BoundedNames", "HubListener", "check_max_label_values",
    "rejection_reason",
]

DEFAULT_BUCKETS: Final[tuple[float, ...]] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)
"""Histogram buckets in seconds: from a fast cache hit to a call that retried for
minutes (retries with backoff make whole-call durations much longer than one
request's)."""

OTHER: Final = "__other__"
"""The label (attribute) value that stands for every name past the cap."""

_UNNAMED: Final = "unnamed"
_MAX_LENGTH: Final = 200


class BoundedNames:
    """Maps raw names to label values, admitting at most ``limit`` distinct values.

    Memory stays bounded whatever the names: at most ``limit`` label values, and
    at most ``4 * limit`` raw names remembered for the lock-free fast path. Many
    raw names can share one label (URLs that differ only in their masked query
    string: ``https://api/users?id=1``, ``?id=2``, ...); past the bound such names
    are masked again on each sighting instead of being remembered, and names past
    the ``limit`` of labels are counted under :data:`OTHER`.
    """

    __slots__ = ("_known", "_limit", "_lock", "_remembered", "_values")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._remembered = 4 * limit
        self._known: dict[str | None, str] = {}
        self._values: set[str] = set()
        self._lock = forksafe.lock()

    def __call__(self, name: str | None) -> str:
        label = self._known.get(name)
        return label if label is not None else self._admit(name)

    def _admit(self, name: str | None) -> str:
        label = _UNNAMED if not name else redact(name)[:_MAX_LENGTH]
        with self._lock:
            if label not in self._values:
                if len(self._values) >= self._limit:
                    return OTHER  # not remembered either: the map stays bounded
                self._values.add(label)
            if len(self._known) < self._remembered:
                self._known[name] = label
            return label


def check_max_label_values(owner: str, max_label_values: int) -> None:
    """Refuse a cap that is not an int >= 1."""
    if not isinstance(max_label_values, int) or max_label_values < 1:
        raise ValueError(
            f"{owner}.max_label_values must be an int >= 1, got {max_label_values!r}")


_REASONS: Final = {
    ("circuit_breaker", CircuitState.OPEN): "circuit_open",
    ("circuit_breaker", CircuitState.HALF_OPEN): "circuit_half_open",
    ("bulkhead", "full"): "bulkhead_full",
    ("rate_limiter", "limited"): "rate_limited",
    ("adaptive_throttle", "throttled"): "throttled",
}


def rejection_reason(event: CallRejected) -> str:
    """A fixed word for why a call was refused (unknown combinations: "other")."""
    try:
        return _REASONS.get((event.source, event.state), "other")
    except TypeError:  # an unhashable state
        return "other"


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
    return [s for s in getattr(target, "strategies", ()) if isinstance(s, CircuitBreaker)]


def _remove(hub: Listeners, listener: HubListener) -> None:
    # Already gone when someone cleared the hub.
    with contextlib.suppress(ValueError):
        hub.remove(listener)


class HubListener:
    """An event listener that dispatches each event to the handler of its kind
    (``_handlers``, set by the subclass) and wires itself to the global hub
    (:meth:`install`) or to single hubs, strategies and pipelines (:meth:`attach`).

    Subclasses record a breaker's current state in :meth:`_record_state`, which
    install and attach call for the breakers that already exist.
    """

    _handlers: dict[type[Event], Callable[[Any], None]]

    def __init__(self) -> None:
        self._installed = False
        self._hubs: weakref.WeakSet[Listeners] = weakref.WeakSet()
        self._lock = forksafe.lock()

    def _record_state(self, breaker: CircuitBreaker) -> None:
        raise NotImplementedError

    # wiring

    def install(self) -> Self:
        """Listen to every policy (the global hub) and record the state of every
        breaker, those that exist and those created later, from its creation.
        Idempotent; returns ``self``."""
        with self._lock:
            if not self._installed:
                GLOBAL.add(self, *self._handlers)
                # Breakers created later get their state series at creation, not
                # at their first state change (a dashboard shows them closed).
                on_breaker_created(self._record_state)
                self._installed = True
        for breaker in all_circuit_breakers().values():
            self._record_state(breaker)
        return self

    def uninstall(self) -> None:
        """Stop listening everywhere (the global hub and every attached hub).
        What was recorded stays."""
        with self._lock:
            if self._installed:
                _remove(GLOBAL, self)
                remove_breaker_hook(self._record_state)
                self._installed = False
            hubs = list(self._hubs)
            self._hubs.clear()
        for hub in hubs:
            _remove(hub, self)

    def attach(self, target: object) -> Self:
        """Listen to one hub, strategy or pipeline only (and record the state of
        the breakers it holds). Returns ``self``."""
        hub = _hub_of(target)
        with self._lock:
            if hub not in self._hubs:
                hub.add(self, *self._handlers)
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
