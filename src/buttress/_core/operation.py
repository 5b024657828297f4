"""The operation a protected call belongs to, and its one outcome.

One protected call may pass through several layers: ``with_metrics``, a
pipeline, a retry, a breaker, a timeout. Operators want it counted once, under
one name, with one duration and one outcome. The outermost layer that measures
opens an :class:`Operation` (a context variable, so threads and tasks never see
each other's); inner layers find it open and stay out of the way:

* the retry writes into it how many attempts and retries the call took, a
  breaker that trips during it counts the trip (both on their failure paths
  only, so a successful first attempt writes nothing);
* listeners label the per-call events they hear (retries, rejections,
  timeouts, fallbacks) with the operation's name rather than each stage's own;
* when the outermost layer is a buttress decorator (a strategy or pipeline),
  it reports the end of the call as one :class:`CallFinished` event with the
  outcome: "success", "failure", "rejected" (an open breaker or a full
  bulkhead refused it: the dependency was not called) or "cancelled".

Nothing here runs unless somebody listens (or ``with_metrics`` asked): a layer
whose hub has no listener for :class:`CallFinished` calls straight through.

Invariants: an operation is opened and closed by the same layer, in the same
context; :class:`CallFinished` is delivered after the operation is closed.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from buttress._core.clock import Clock
from buttress._core.errors import (
    BulkheadFullError,
    CircuitBreakerError,
    RateLimitedError,
    RetryExhaustedError,
    ThrottledError,
)
from buttress._core.events import Event, Listeners, deliver, register_kind

__all__ = [
    "CANCELLED", "FAILURE", "REJECTED", "SUCCESS", "CallFinished", "Operation", "current",
    "measure", "measure_async", "outcome_of",
]

SUCCESS: Final = "success"
FAILURE: Final = "failure"
REJECTED: Final = "rejected"
CANCELLED: Final = "cancelled"


@register_kind
@dataclass(frozen=True, slots=True)
class CallFinished(Event):
    """One protected call ended: ``outcome`` is "success", "failure",
    "rejected" (refused by an open breaker or a full bulkhead, the dependency
    not called) or "cancelled" (cancellation, an interrupt or an exit: not a
    verdict on the dependency); ``duration`` in seconds, retries and waits
    included; ``attempts`` as the retry counted them (1 without a retry).

    Reported once per call by its outermost buttress layer, under the
    operation's name (``source`` "operation"), or by ``with_metrics`` (source
    "metrics")."""

    outcome: str
    duration: float | None
    attempts: int


class Operation:
    """What the layers of one call learn about it; see the module docstring."""

    __slots__ = ("attempts", "name", "owner", "retries", "trips")

    def __init__(self, name: str, owner: object = None) -> None:
        self.name = name
        #: Who records this call (a ``ResilienceMetrics`` for ``with_metrics``).
        self.owner = owner
        self.attempts = 1
        self.retries = 0
        self.trips = 0


_CURRENT: contextvars.ContextVar[Operation | None] = contextvars.ContextVar(
    "buttress.operation", default=None)

current = _CURRENT.get
"""The operation the running call belongs to, or None outside any."""
open_operation = _CURRENT.set
close_operation = _CURRENT.reset


def attempted(attempts: int) -> None:
    """A retry ended after ``attempts`` attempts (called on its slow path only)."""
    op = _CURRENT.get()
    if op is not None and attempts > op.attempts:
        op.attempts = attempts


def retried() -> None:
    """A retry scheduled one more attempt."""
    op = _CURRENT.get()
    if op is not None:
        op.retries += 1


def tripped() -> None:
    """A breaker opened during the running call."""
    op = _CURRENT.get()
    if op is not None:
        op.trips += 1


# Errors of calls refused without running: an open breaker, a full bulkhead.
_REJECTIONS: Final = (CircuitBreakerError, BulkheadFullError, RateLimitedError, ThrottledError)


def outcome_of(exc: BaseException) -> str:
    """The outcome of a call that raised ``exc``."""
    if not isinstance(exc, Exception):
        return CANCELLED
    if isinstance(exc, _REJECTIONS) or (
            isinstance(exc, RetryExhaustedError)
            and isinstance(exc.last_exception, _REJECTIONS)):
        return REJECTED
    return FAILURE


def measure(fn: Callable[..., Any], hub: Listeners, name: str,
            clock: Clock) -> Callable[..., Any]:
    """``fn`` reported as one operation called ``name`` to the listeners of ``hub``."""

    def measured(*args: Any, **kwargs: Any) -> Any:
        if hub.active and _CURRENT.get() is None:
            targets = hub.of(CallFinished)
            if targets:
                return _watched(targets, fn, args, kwargs, name, clock)
        return fn(*args, **kwargs)

    return measured


def _watched(targets: tuple[Any, ...], fn: Callable[..., Any], args: tuple[Any, ...],
             kwargs: dict[str, Any], name: str, clock: Clock) -> Any:
    op = Operation(name)
    token = _CURRENT.set(op)
    start = clock.monotonic()
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        _CURRENT.reset(token)
        deliver(targets, CallFinished("operation", name, outcome_of(exc),
                                      clock.monotonic() - start, op.attempts))
        raise
    _CURRENT.reset(token)
    deliver(targets, CallFinished("operation", name, SUCCESS, clock.monotonic() - start,
                                  op.attempts))
    return result


def measure_async(fn: Callable[..., Awaitable[Any]], hub: Listeners, name: str,
                  clock: Clock) -> Callable[..., Awaitable[Any]]:
    """The async twin of :func:`measure`."""

    async def measured(*args: Any, **kwargs: Any) -> Any:
        if hub.active and _CURRENT.get() is None:
            targets = hub.of(CallFinished)
            if targets:
                op = Operation(name)
                token = _CURRENT.set(op)
                start = clock.monotonic()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    _CURRENT.reset(token)
                    deliver(targets, CallFinished("operation", name, outcome_of(exc),
                                                  clock.monotonic() - start, op.attempts))
                    raise
                _CURRENT.reset(token)
                deliver(targets, CallFinished("operation", name, SUCCESS,
                                              clock.monotonic() - start, op.attempts))
                return result
        return await fn(*args, **kwargs)

    return measured

