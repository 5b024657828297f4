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
* when the outermost layer is a buttress strategy or pipeline (decorated,
  ``call``/``acall``, or a breaker's or timeout's ``with`` block), it reports
  the start of the call as one :class:`CallStarted` event and its end as one
  :class:`CallFinished` event with the outcome: "success", "failure",
  "rejected" (an open breaker or a full bulkhead refused it: the dependency
  was not called) or "cancelled". A retry that is the outermost layer reports
  its start as :class:`CallStarted` too, and its end as ``Succeeded`` or
  ``GaveUp``, as a retry always has.

Nothing here runs unless somebody listens (or ``with_metrics`` asked): a layer
whose hub has no listener for :class:`CallStarted` or :class:`CallFinished`
calls straight through.

Invariants: an operation is opened and closed by the same layer, in the same
context; :class:`CallStarted` is delivered once the operation is open, before
any of the call runs; :class:`CallFinished` is delivered after the operation
is closed; a layer that reports one reports the other.
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
    "CANCELLED", "FAILURE", "REJECTED", "SUCCESS", "CallFinished", "CallStarted", "Operation",
    "Watch", "areport_call", "begin", "current", "end", "enter_block", "heard", "measure",
    "measure_async", "outcome_of", "report_call",
]

SUCCESS: Final = "success"
FAILURE: Final = "failure"
REJECTED: Final = "rejected"
CANCELLED: Final = "cancelled"


@register_kind
@dataclass(frozen=True, slots=True)
class CallStarted(Event):
    """One protected call starts, before any of it runs: ``start`` is the time
    on the reporting strategy's clock (its ``monotonic()`` seconds), the point
    the matching :class:`CallFinished` (or a lone retry's ``Succeeded`` or
    ``GaveUp``) measures ``duration`` from.

    Reported once per call, by the layer that reports its end, under the
    operation's name (``source`` "operation", or "metrics" for
    ``with_metrics``).

    .. versionadded:: 0.2
    """

    start: float


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
            started = hub.of(CallStarted)
            if targets or started:
                return _watched(started, targets, fn, args, kwargs, name, clock)
        return fn(*args, **kwargs)

    return measured


def _watched(started: tuple[Any, ...], targets: tuple[Any, ...], fn: Callable[..., Any],
             args: tuple[Any, ...], kwargs: dict[str, Any], name: str, clock: Clock) -> Any:
    op = Operation(name)
    token = _CURRENT.set(op)
    start = clock.monotonic()
    if started:
        deliver(started, CallStarted("operation", name, start))
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        _CURRENT.reset(token)
        if targets:
            deliver(targets, CallFinished("operation", name, outcome_of(exc),
                                          clock.monotonic() - start, op.attempts))
        raise
    _CURRENT.reset(token)
    if targets:
        deliver(targets, CallFinished("operation", name, SUCCESS, clock.monotonic() - start,
                                      op.attempts))
    return result


def measure_async(fn: Callable[..., Awaitable[Any]], hub: Listeners, name: str,
                  clock: Clock) -> Callable[..., Awaitable[Any]]:
    """The async twin of :func:`measure`."""

    async def measured(*args: Any, **kwargs: Any) -> Any:
        if hub.active and _CURRENT.get() is None:
            targets = hub.of(CallFinished)
            started = hub.of(CallStarted)
            if targets or started:
                op = Operation(name)
                token = _CURRENT.set(op)
                start = clock.monotonic()
                if started:
                    deliver(started, CallStarted("operation", name, start))
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    _CURRENT.reset(token)
                    if targets:
                        deliver(targets, CallFinished("operation", name, outcome_of(exc),
                                                      clock.monotonic() - start, op.attempts))
                    raise
                _CURRENT.reset(token)
                if targets:
                    deliver(targets, CallFinished("operation", name, SUCCESS,
                                                  clock.monotonic() - start, op.attempts))
                return result
        return await fn(*args, **kwargs)

    return measured


def heard(hub: Listeners) -> bool:
    """Whether anyone on ``hub`` listens for a call's start or end."""
    return bool(hub.of(CallStarted) or hub.of(CallFinished))


def report_call(hub: Listeners, name: str, clock: Clock, call: Callable[..., Any],
                fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``call(fn, *args, **kwargs)`` (a layer's own ``call``, which finds the
    operation open and so does not report again) as one operation called
    ``name``, as :func:`measure` reports a decorated call."""
    return measure(lambda *a, **k: call(fn, *a, **k), hub, name, clock)(*args, **kwargs)


async def areport_call(hub: Listeners, name: str, clock: Clock,
                       call: Callable[..., Awaitable[Any]], fn: Callable[..., Any],
                       args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The async twin of :func:`report_call`."""
    async def run(*a: Any, **k: Any) -> Any:
        return await call(fn, *a, **k)

    return await measure_async(run, hub, name, clock)(*args, **kwargs)


class Watch:
    """The operation of one ``with`` block, opened by :func:`begin` and closed
    by :func:`end` (a context manager has no function to wrap). ``held`` is
    whatever the layer keeps with the block (a breaker's epoch)."""

    __slots__ = ("clock", "held", "op", "start", "targets", "token")

    def __init__(self, op: Operation, token: contextvars.Token[Operation | None],
                 start: float, clock: Clock, targets: tuple[Any, ...]) -> None:
        self.op = op
        self.token = token
        self.start = start
        self.clock = clock
        self.targets = targets
        self.held: Any = None


def begin(hub: Listeners, name: str, clock: Clock) -> Watch | None:
    """Open the operation of a ``with`` block and report its start, when the
    block is the outermost layer and somebody listens; else None. Callers read
    ``hub.active`` first, so an unheard block never gets here."""
    if _CURRENT.get() is not None:
        return None
    targets = hub.of(CallFinished)
    started = hub.of(CallStarted)
    if not (targets or started):
        return None
    op = Operation(name)
    token = _CURRENT.set(op)
    start = clock.monotonic()
    if started:
        deliver(started, CallStarted("operation", name, start))
    return Watch(op, token, start, clock, targets)


def enter_block(hub: Listeners, name: str, clock: Clock, enter: Callable[[], Any]) -> Watch | None:
    """:func:`begin`, then the layer's own ``enter()`` inside the operation (a
    refusal ends it, with that error); None, and nothing run, when the block is
    not reported."""
    watch = begin(hub, name, clock)
    if watch is not None:
        try:
            enter()
        except BaseException as exc:
            end(watch, exc)
            raise
    return watch


def end(watch: Watch, exc: BaseException | None) -> None:
    """Close the operation :func:`begin` opened and report how the block ended
    (``exc`` is what leaves it, None for a success)."""
    try:  # noqa: SIM105 - the cheapest way out
        _CURRENT.reset(watch.token)
    except ValueError:
        pass  # left in another context (an async generator closed by the collector)
    if watch.targets:
        op = watch.op
        deliver(watch.targets, CallFinished(
            "operation", op.name, SUCCESS if exc is None else outcome_of(exc),
            watch.clock.monotonic() - watch.start, op.attempts))

