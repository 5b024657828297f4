"""Circuit breaker: its config, and the runner around the machine.

Three parts, each with one job:

* :class:`~buttress._core.breaker_machine.BreakerMachine` decides (admission,
  outcomes, trip rules, recovery, forced states) from plain numbers; it never
  reads a clock, takes a lock, calls user code or reports anything. Its module
  docstring states the invariants.
* a :class:`~buttress._core.breaker_store.BreakerStore` holds the machine's
  state and makes each change atomic (:class:`MemoryStore` by default: a lock
  around state changes, never around the user's call). A shared store (Redis)
  slots in there.
* :class:`CircuitBreaker`, the runner, reads the clock, runs the call, judges
  its outcome (exception or result), and reports transitions, rejections and
  slow calls as events and logs. It talks to the store only through the
  store's methods.

The closed-state success path of the default breaker (trip on N consecutive
failures) takes no lock and allocates nothing: one read of the store's
``gate.ticket`` admits the call, and a C-level counter records its success.
Every admitted call remembers the *epoch* (the number of state changes so
far) it was admitted in; outcomes that arrive after the breaker has moved on
only update the statistics, never the state.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, TypeVar, Unpack

from buttress._core import forksafe, live, operation, validate
from buttress._core.breaker_machine import (
    DISABLED,
    MODES,
    REJECT,
    BreakerMachine,
    CircuitState,
    Transition,
)
from buttress._core.breaker_store import BreakerStore, MemoryStore
from buttress._core.clock import SYSTEM_CLOCK, Clock
from buttress._core.errors import CircuitBreakerError, ConfigurationError, OperationTimeoutError
from buttress._core.events import (
    GLOBAL,
    CallRejected,
    Listeners,
    SlowCall,
    StateChanged,
    deliver,
)
from buttress._core.strategy import (
    Strategy,
    call_hook,
    check_call,
    check_protectable,
    is_async_callable,
    logger,
    should_log,
)
from buttress.options import CircuitBreakerOptions, _BreakerTuning

__all__ = [
    "BreakerMachine",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerState",
    "CircuitBreakerStats",
    "CircuitState",
]

F = TypeVar("F", bound=Callable[..., Any])
_R = TypeVar("_R")
_UNSET: Final[Any] = object()


CircuitBreakerState = CircuitState
"""Alias of :class:`CircuitState`."""


@dataclass(frozen=True, slots=True, init=False)
class CircuitBreakerConfig:
    """When the breaker trips and how it recovers. Any enabled rule trips it:

    * ``failure_threshold`` consecutive failures (or, with ``failure_window`` set,
      that many failures within ``failure_window`` seconds);
    * a failure rate of at least ``failure_rate_threshold`` over the last
      ``window_size`` calls (or the last ``failure_window`` seconds), once
      ``minimum_calls`` calls are in the window;
    * a rate of calls slower than ``slow_call_duration`` of at least
      ``slow_call_rate_threshold``, measured the same way. A slow call that fails
      counts both as a failure and as slow.

    ``failure_threshold`` defaults to 5, except with ``failure_rate_threshold``
    set: then, as in resilience4j, the rate rule alone decides (nothing trips
    before ``minimum_calls`` calls), unless ``failure_threshold`` is also given,
    which asks for both rules. ``failure_threshold=None`` turns the
    consecutive-failure rule off (a rate rule must then be set)::

        CircuitBreakerConfig(failure_rate_threshold=0.5)  # the rate rule only
        CircuitBreakerConfig(failure_rate_threshold=0.5, failure_threshold=20)  # both

    After ``recovery_timeout`` seconds open, up to ``half_open_max_calls`` probe
    calls run at once; ``success_threshold`` probe successes close the breaker,
    one probe failure reopens it. Exceptions in ``ignored_exceptions`` (alias
    ``exception_whitelist``) count as neither success nor failure; exceptions
    outside ``failure_exceptions`` count as success (the dependency answered).
    An ``ExceptionGroup`` (from a ``TaskGroup``, say) is judged by the exceptions
    it holds, unless its own class is named in those lists: it is a failure if
    any of them is a failure, ignored if all of them are ignored, and a success
    otherwise.
    ``fallback(exc, *args, **kwargs)`` answers rejected calls instead of raising.
    ``critical=True`` marks a dependency the service can not work without: while
    such a breaker is open, :func:`~buttress.get_resilience_health` reports
    "unhealthy" (other open breakers only make it "degraded").
    ``timeout`` limits each protected call (async calls are cancelled; sync
    decorated calls run in a worker thread; a sync ``with`` block that overruns
    is not interrupted but counts as a failure); a call that runs out of time is
    a failure whatever ``failure_exceptions`` says.

    ``failure_on_result(result)`` counts a returned value as a failure (an HTTP
    503 response, say: ``failure_on_result=lambda r: r.status_code >= 500``);
    the caller still gets the value. ``mode`` is ``"enforce"`` (the default),
    ``"observe"`` (record, trip and report as usual but never reject: for
    rolling a breaker out) or ``"disabled"`` (neither record nor reject);
    ``breaker.mode = ...`` switches it at run time. Each trip in a row without
    closing in between multiplies the break by ``recovery_timeout_multiplier``
    (1.0: a fixed break), up to ``max_recovery_timeout`` seconds::

        CircuitBreakerConfig(recovery_timeout=5.0, recovery_timeout_multiplier=2.0,
                             max_recovery_timeout=60.0)  # open 5 s, then 10, 20, 40, 60...

    .. versionadded:: 0.2 ``failure_on_result``, ``mode``,
       ``recovery_timeout_multiplier`` and ``max_recovery_timeout``.
    .. versionchanged:: 0.2 keyword arguments only.
    """

    name: str
    failure_threshold: int | None
    recovery_timeout: float
    success_threshold: int
    half_open_max_calls: int
    failure_window: float | None
    failure_rate_threshold: float | None
    minimum_calls: int
    window_size: int
    slow_call_duration: float | None
    slow_call_rate_threshold: float | None
    timeout: float | None
    failure_exceptions: tuple[type[Exception], ...]
    ignored_exceptions: tuple[type[Exception], ...]
    fallback: Callable[..., Any] | None
    critical: bool
    failure_on_result: Callable[[Any], bool] | None
    mode: str
    recovery_timeout_multiplier: float
    max_recovery_timeout: float | None

    def __init__(
        self,
        *,
        name: str = "default",
        failure_threshold: int | None = _UNSET,
        recovery_timeout: float = 30.0,
        success_threshold: int = 2,
        half_open_max_calls: int = 3,
        failure_window: float | None = None,
        failure_rate_threshold: float | None = None,
        minimum_calls: int = 10,
        window_size: int = 100,
        slow_call_duration: float | None = None,
        slow_call_rate_threshold: float | None = None,
        timeout: float | None = None,
        failure_exceptions: Any = (Exception,),
        ignored_exceptions: Any = _UNSET,
        fallback: Callable[..., Any] | None = None,
        exception_whitelist: Any = _UNSET,
        critical: bool = False,
        failure_on_result: Callable[[Any], bool] | None = None,
        mode: str = "enforce",
        recovery_timeout_multiplier: float = 1.0,
        max_recovery_timeout: float | None = None,
    ) -> None:
        o = "CircuitBreakerConfig"
        if not isinstance(critical, bool):
            raise ConfigurationError(f"{o}.critical", critical, "a bool")
        if ignored_exceptions is not _UNSET and exception_whitelist is not _UNSET:
            raise ConfigurationError(
                f"{o}.exception_whitelist", exception_whitelist,
                "not given together with its native spelling ignored_exceptions",
                message=f"{o}.ignored_exceptions and its alias exception_whitelist are both "
                        f"given: {ignored_exceptions!r}, {exception_whitelist!r}")
        # Errors name the spelling the caller used.
        ignored_field, ignored = "ignored_exceptions", ignored_exceptions
        if exception_whitelist is not _UNSET:
            ignored_field, ignored = "exception_whitelist", exception_whitelist
        if ignored is _UNSET:
            ignored = ()
        if failure_threshold is _UNSET:
            # The rate rule replaces the count rule unless both are asked for.
            failure_threshold = None if failure_rate_threshold is not None else 5
        f: dict[str, Any] = {
            "name": validate.text(o, "name", name),
            "failure_threshold": (
                None if failure_threshold is None
                else validate.integer(o, "failure_threshold", failure_threshold, minimum=1)),
            "recovery_timeout": validate.number(o, "recovery_timeout", recovery_timeout,
                                                minimum=0.0),
            "success_threshold": validate.integer(o, "success_threshold", success_threshold,
                                                  minimum=1),
            "half_open_max_calls": validate.integer(o, "half_open_max_calls",
                                                    half_open_max_calls, minimum=1),
            "failure_window": validate.optional_number(o, "failure_window", failure_window,
                                                       minimum=0.0, strict_minimum=True),
            "failure_rate_threshold": validate.optional_number(
                o, "failure_rate_threshold", failure_rate_threshold,
                minimum=0.0, maximum=1.0, strict_minimum=True),
            "minimum_calls": validate.integer(o, "minimum_calls", minimum_calls, minimum=1),
            "window_size": validate.integer(o, "window_size", window_size, minimum=1),
            "slow_call_duration": validate.optional_number(
                o, "slow_call_duration", slow_call_duration, minimum=0.0, strict_minimum=True),
            "slow_call_rate_threshold": validate.optional_number(
                o, "slow_call_rate_threshold", slow_call_rate_threshold,
                minimum=0.0, maximum=1.0, strict_minimum=True),
            # Bounded by what a thread wait accepts (sync calls wait for a worker).
            "timeout": validate.optional_number(o, "timeout", timeout, minimum=0.0,
                                                strict_minimum=True,
                                                maximum=threading.TIMEOUT_MAX),
            "failure_exceptions": validate.exception_types(o, "failure_exceptions",
                                                           failure_exceptions),
            "ignored_exceptions": validate.exception_types(o, ignored_field, ignored),
            "fallback": validate.optional_callable(o, "fallback", fallback),
            "critical": critical,
            "failure_on_result": validate.optional_callable(o, "failure_on_result",
                                                            failure_on_result),
            "mode": _mode(o, mode),
            "recovery_timeout_multiplier": validate.number(
                o, "recovery_timeout_multiplier", recovery_timeout_multiplier, minimum=1.0),
            "max_recovery_timeout": validate.optional_number(
                o, "max_recovery_timeout", max_recovery_timeout, minimum=0.0),
        }
        if (f["max_recovery_timeout"] is not None
                and f["max_recovery_timeout"] < f["recovery_timeout"]):
            raise ConfigurationError(
                f"{o}.max_recovery_timeout must be >= recovery_timeout "
                f"({f['recovery_timeout']:g}), got {max_recovery_timeout!r}"
            )
        if f["slow_call_rate_threshold"] is not None and f["slow_call_duration"] is None:
            raise ConfigurationError(
                f"{o}.slow_call_rate_threshold", slow_call_rate_threshold,
                "None unless slow_call_duration is set",
                message=f"{o}.slow_call_rate_threshold needs slow_call_duration, got "
                        f"slow_call_rate_threshold={slow_call_rate_threshold!r} without it")
        uses_rate = (f["failure_rate_threshold"] is not None
                     or f["slow_call_rate_threshold"] is not None)
        if f["failure_threshold"] is None and not uses_rate:
            raise ConfigurationError(
                f"{o}.failure_threshold", None, "an int >= 1 (None only with a rate rule)",
                message=f"{o}.failure_threshold may only be None when a rate rule "
                        f"(failure_rate_threshold or slow_call_rate_threshold) is set, got None "
                        f"without one")
        if uses_rate and f["failure_window"] is None and f["minimum_calls"] > f["window_size"]:
            raise ConfigurationError(
                f"{o}.minimum_calls", minimum_calls, f"<= window_size ({f['window_size']})",
                message=f"{o}.minimum_calls must be <= window_size ({f['window_size']}) or the "
                        f"rate rule can never fire, got {minimum_calls!r}")
        for key, value in f.items():
            object.__setattr__(self, key, value)

    @property
    def exception_whitelist(self) -> tuple[type[Exception], ...]:
        """Alias of ``ignored_exceptions``."""
        return self.ignored_exceptions

    def replace(self, **changes: Unpack[CircuitBreakerOptions]) -> CircuitBreakerConfig:
        """A copy with some fields changed (and validated again)."""
        current = {name: getattr(self, name) for name in self.__dataclass_fields__}
        if current["failure_threshold"] is None and self.failure_rate_threshold is not None:
            # Off because the rate rule replaced it: decided again from the new fields.
            current["failure_threshold"] = _UNSET
        current.update(changes)
        return CircuitBreakerConfig(**current)

    @property
    def uses_window(self) -> bool:
        """Whether a rate rule needs the sliding window of outcomes."""
        return self.failure_rate_threshold is not None or self.slow_call_rate_threshold is not None


def _mode(owner: str, mode: object) -> str:
    if mode not in MODES:
        raise ConfigurationError(
            f"{owner}.mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    return str(mode)


@dataclass(frozen=True, slots=True)
class CircuitBreakerStats:
    """A consistent snapshot of one breaker's counters."""

    name: str
    state: CircuitState
    total_calls: int
    successful_calls: int
    failed_calls: int
    rejected_calls: int
    ignored_calls: int
    slow_calls: int
    state_changes: int
    trips: int
    failure_count: int
    failure_threshold: int | None
    failure_rate: float
    last_failure_time: float | None
    remaining_timeout: float

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as a plain dict (``state`` as its string value)."""
        result = {name: getattr(self, name) for name in self.__dataclass_fields__}
        result["state"] = self.state.value
        return result


# --- judging an outcome ----------------------------------------------------------------

_FAILURE: Final = "failure"
_SUCCESS: Final = "success"
_IGNORED: Final = "ignored"
_UNCOUNTED: Final = "uncounted"


def _verdict(config: CircuitBreakerConfig, exc: BaseException) -> str:
    """What an exception ending a call counts as: failure, success (the dependency
    answered), ignored, or uncounted (cancellation, interrupts and exits)."""
    if not isinstance(exc, Exception):
        return _UNCOUNTED
    if isinstance(exc, ExceptionGroup) and not _names_group(config, exc):
        # Judged by what it holds: one failure is a failure; all ignored, ignored.
        verdicts = {_verdict(config, inner) for inner in exc.exceptions}
        if _FAILURE in verdicts:
            return _FAILURE
        return _IGNORED if verdicts == {_IGNORED} else _SUCCESS
    if isinstance(exc, config.ignored_exceptions):
        return _IGNORED
    if isinstance(exc, (config.failure_exceptions, OperationTimeoutError)):
        # A timeout is the dependency not answering, so it counts as a failure
        # even when failure_exceptions names only other errors.
        return _FAILURE
    return _SUCCESS


def _names_group(config: CircuitBreakerConfig, group: ExceptionGroup[Exception]) -> bool:
    """Whether the config names an exception-group class that ``group`` is."""
    return any(issubclass(cls, BaseExceptionGroup) and isinstance(group, cls)
               for cls in (*config.ignored_exceptions, *config.failure_exceptions))


# --- the breaker ----------------------------------------------------------------------


StateListener = Callable[["CircuitBreaker", CircuitState, CircuitState], object]


class _StateHook:
    """A ``listener(breaker, old_state, new_state)`` hook as an event listener.

    It lives in the breaker's own hub, so it holds the breaker weakly: a strong
    reference would make a cycle, and a dropped breaker would keep its registry
    name (and its memory) until the garbage collector ran."""

    __slots__ = ("breaker", "hook")

    def __init__(self, breaker: CircuitBreaker, hook: StateListener) -> None:
        self.breaker = weakref.ref(breaker)
        self.hook = hook

    def __repr__(self) -> str:
        return repr(self.hook)  # the user's callback, as they wrote it

    def __call__(self, event: StateChanged) -> None:
        breaker = self.breaker()
        if breaker is not None:  # it is the one speaking, so it is alive
            self.hook(breaker, event.old_state, event.new_state)


class _Reporter:
    """The store's ``report`` callback: it holds the breaker weakly, because the
    breaker holds the store, and a cycle would keep a dropped breaker (and its
    registry name) alive until the garbage collector ran."""

    __slots__ = ("breaker",)

    def __init__(self, breaker: CircuitBreaker) -> None:
        self.breaker = weakref.ref(breaker)

    def __call__(self, moved: Transition) -> None:
        breaker = self.breaker()
        if breaker is not None:  # it is the one changing, so it is alive
            breaker._notify(moved)


# What ``with breaker:`` remembers between enter and exit, as a tuple (cheaper
# to build than an object): (epoch, start, async timeout or None, outer frame).
_Frame = tuple[Any, float, Any, Any]  # (epoch or _Watched, start, timeout, outer frame)


class _Watched:
    """The epoch of a ``with`` block reported as an operation, with its
    :class:`~buttress._core.operation.Watch`. Never equal to a ticket, so the
    exit's fast path leaves such a block to ``_exit``."""

    __slots__ = ("epoch", "watch")

    def __init__(self, epoch: int, watch: operation.Watch) -> None:
        self.epoch = epoch
        self.watch = watch

_FRAMES_LOCK: Final = forksafe.lock()
_OPEN: Final = CircuitState.OPEN  # a module global: an Enum member read costs 0.1 us
_rejecting: Final = CircuitBreakerError.rejecting


class CircuitBreaker(Strategy):
    """A circuit breaker, usable every way the seeds use one::

        breaker = CircuitBreaker("payment-api", failure_threshold=5, recovery_timeout=30.0)

        async with breaker:                     # or: with breaker:
            await charge(amount)

        @breaker                                # or: @breaker.protect
        async def call_external() -> dict: ...

        breaker.call(fetch, url)                # or: await breaker.acall(fetch, url)

    Thread- and task-safe; no lock is held while the protected call runs.
    ``store=`` puts the state somewhere else than this process's memory (see
    :mod:`buttress._core.breaker_store`).
    """

    __slots__ = (
        "__weakref__", "_count_rejection", "_count_success", "_frames", "_gate", "_lean",
        "_slow_limit",
        "_store", "_timed", "clock", "config", "events", "name",
    )

    order = 30

    def __init__(
        self,
        name: str | CircuitBreakerConfig | None = None,
        config: CircuitBreakerConfig | None = None,
        *,
        clock: Clock | None = None,
        on_state_change: StateListener | None = None,
        store: Callable[[CircuitBreakerConfig, Callable[[Transition], object]],
                        BreakerStore] | None = None,
        **options: Unpack[_BreakerTuning],
    ) -> None:
        if isinstance(name, CircuitBreakerConfig):
            name, config = None, name
        if config is not None and not isinstance(config, CircuitBreakerConfig):
            raise TypeError(f"CircuitBreaker config must be a CircuitBreakerConfig, got {config!r}")
        if config is None:
            config = (CircuitBreakerConfig(**options) if name is None
                      else CircuitBreakerConfig(name=name, **options))
        else:
            changes: dict[str, Any] = dict(options)
            if name is not None and name != config.name:
                changes["name"] = name
            if changes:
                config = config.replace(**changes)
        self.config = config
        self.name = config.name
        self.clock = SYSTEM_CLOCK if clock is None else clock
        #: This breaker's listener hub: ``breaker.events.add(listener, *kinds)``.
        self.events = Listeners(GLOBAL)
        self._store: BreakerStore = (MemoryStore if store is None else store)(
            config, _Reporter(self))
        self._gate = self._store.gate
        self._count_success = self._store.count_success
        self._count_rejection = self._store.count_rejection
        if on_state_change is not None:
            self.add_listener(on_state_change)
        # Created on the first ``with`` (most breakers are only ever decorators).
        self._frames: contextvars.ContextVar[_Frame | None] | None = None
        self._slow_limit = config.slow_call_duration
        # Whether a call's duration is needed (a slow-call rule, a timeout).
        self._timed = config.slow_call_duration is not None or config.timeout is not None
        # The lean decorator serves calls with no timeout and no result check:
        # the store's ticket then decides everything else.
        self._lean = config.timeout is None and config.failure_on_result is None
        for hook in live.observe(self):  # exporters give a new breaker its series
            call_hook(hook, self)

    # reading

    @property
    def state(self) -> CircuitState:
        """The current state. An open breaker whose recovery timeout has passed
        reads (and becomes) HALF_OPEN, so ``if breaker.state == CircuitState.OPEN:
        use_cache()`` stops using the cache once a probe is allowed."""
        return self._store.state(self.clock.monotonic())

    @property
    def is_open(self) -> bool:
        """Whether calls are currently being rejected (open, timeout not yet passed)."""
        return self._store.is_open(self.clock.monotonic())

    @property
    def is_closed(self) -> bool:
        """Whether the breaker is closed."""
        return self._store.is_closed()

    @property
    def mode(self) -> str:
        """``"enforce"``, ``"observe"`` (record and report, never reject) or
        ``"disabled"`` (neither record nor reject); assign to switch at run time,
        keeping the state and the statistics::

            breaker.mode = "observe"
        """
        return self._store.mode

    @mode.setter
    def mode(self, mode: str) -> None:
        self._store.set_mode(_mode(f"CircuitBreaker({self.name!r})", mode))

    @property
    def stats(self) -> CircuitBreakerStats:
        """A consistent snapshot of the counters (reading it, like :attr:`state`,
        turns a breaker whose recovery timeout has passed half-open)."""
        self.state  # noqa: B018 - for its recovery side effect
        c = self._store.counts(self.clock.monotonic())
        finished = c.successes + c.failed
        rate = c.failure_rate
        if rate is None:
            rate = c.failed / finished if finished else 0.0
        return CircuitBreakerStats(
            name=self.name,
            state=c.state,
            total_calls=c.successes + c.failed + c.ignored + c.rejected,
            successful_calls=c.successes,
            failed_calls=c.failed,
            rejected_calls=c.rejected,
            ignored_calls=c.ignored,
            slow_calls=c.slow,
            state_changes=c.state_changes,
            trips=c.trips,
            failure_count=c.failure_count,
            failure_threshold=self.config.failure_threshold,
            failure_rate=rate,
            last_failure_time=c.last_failure_time,
            remaining_timeout=c.remaining,
        )

    # control

    def reset(self) -> None:
        """Force the breaker CLOSED and clear its counters (for tests and emergencies)."""
        self._store.reset()

    def force_open(self) -> None:
        """Open the breaker and hold it open until :meth:`force_closed` or :meth:`reset`."""
        self._store.force_open(self.clock.monotonic())

    def force_closed(self) -> None:
        """Close the breaker now, keeping its statistics."""
        self._store.force_closed()

    def add_listener(self, listener: StateListener) -> None:
        """Call ``listener(breaker, old_state, new_state)`` after every state change,
        in the order the changes happened (even when they happen in other threads).
        For typed events of every kind use ``breaker.events.add(listener)``."""
        self.events.add(_StateHook(self, listener), StateChanged)

    # reporting (the store calls _notify outside its lock, in order)

    def _notify(self, moved: Transition) -> None:
        before, after = moved
        if after is CircuitState.OPEN:
            operation.tripped()  # counted for the call that tripped it, if measured
        level = logging.WARNING if after is CircuitState.OPEN else logging.INFO
        if should_log(level):
            logger.log(
                level, "circuit breaker %r: %s -> %s", self.name, before.value, after.value,
                extra={"breaker": self.name, "old_state": before.value,
                       "new_state": after.value},
            )
        targets = self.events.of(StateChanged)
        if targets:
            deliver(targets, StateChanged("circuit_breaker", self.name, before, after))

    def _open_rejection(self, now: float, until: float) -> CircuitBreakerError:
        # The open fast path: now < gate.open_until decided it, no store call.
        self._count_rejection()
        remaining = until - now
        targets = self.events.of(CallRejected)
        if targets:
            deliver(targets, CallRejected("circuit_breaker", self.name, CircuitState.OPEN,
                                          remaining))
        return _rejecting(self.name, _OPEN, remaining, self._gate.tripped_by)

    def _rejection(self, now: float) -> CircuitBreakerError:
        state, remaining, cause = self._store.refusal(now)
        targets = self.events.of(CallRejected)
        if targets:
            deliver(targets, CallRejected("circuit_breaker", self.name, state, remaining))
        # The failure that opened the breaker rides along (chained), so that a
        # caller (a retry loop that tripped it, say) still sees why its call was
        # turned away.
        return CircuitBreakerError.rejecting(self.name, state, remaining, cause)

    # the protocol every call path follows: admit, run, record

    def _succeeded(self, epoch: int, duration: float) -> None:
        if self._gate.ticket == epoch:
            # Closed, nothing to record but the count (see BreakerStore.gate).
            self._count_success()
            return
        limit = self._slow_limit
        if limit is not None and duration >= limit and epoch != DISABLED:
            targets = self.events.of(SlowCall)
            if targets:
                deliver(targets, SlowCall("circuit_breaker", self.name, duration, limit))
        self._store.record_success(epoch, self.clock.monotonic(), duration)

    def _returned(self, epoch: int, result: Any, duration: float) -> None:
        """Judge a returned value: a success, unless ``failure_on_result`` says not."""
        judge = self.config.failure_on_result
        if judge is not None and epoch != DISABLED:
            try:
                failed = judge(result)
            except BaseException:
                self._store.release(epoch, ignored=False)
                raise
            if failed:
                self._failed_with(epoch, None, duration)
                return
        self._succeeded(epoch, duration)

    def _failed_with(self, epoch: int, cause: BaseException | None, duration: float) -> None:
        limit = self._slow_limit
        if limit is not None and duration >= limit and epoch != DISABLED:
            targets = self.events.of(SlowCall)
            if targets:
                deliver(targets, SlowCall("circuit_breaker", self.name, duration, limit))
        self._store.record_failure(epoch, self.clock.monotonic(), duration, cause)

    def _failed(self, epoch: int, exc: BaseException, duration: float) -> None:
        verdict = _verdict(self.config, exc)
        if verdict is _FAILURE:
            self._failed_with(epoch, exc, duration)
        elif verdict is _SUCCESS:
            self._succeeded(epoch, duration)
        else:
            # Ignored exceptions, and cancellation, interrupts and exits (not a
            # verdict on the dependency): the call leaves no mark but its permit.
            self._store.release(epoch, ignored=verdict is _IGNORED)

    def _reject(self, error: CircuitBreakerError, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        fallback = self.config.fallback
        if fallback is None:
            raise error
        return fallback(error, *args, **kwargs)

    # call paths

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self._wrap_sync(fn, None)

    def _wrap_sync(self, fn: Callable[..., Any],
                   report: Callable[..., Any] | None) -> Callable[..., Any]:
        if self.config.fallback is not None and is_async_callable(self.config.fallback):
            raise TypeError(
                f"circuit breaker {self.name!r} has an async fallback "
                f"{self.config.fallback!r}, which a sync call can not await"
            )
        # ``report`` (decorators only) is ``fn`` under this breaker, reported as
        # one operation; it is taken only while somebody listens, so a call
        # nobody hears costs one attribute read here instead of a wrapper frame.
        if self._lean:
            gate = self._gate
            count_success = self._count_success
            hub = self.events

            def protected(*args: Any, **kwargs: Any) -> Any:
                if report is not None and hub.active:
                    return report(*args, **kwargs)
                ticket = gate.ticket
                if ticket >= 0:
                    try:
                        result = fn(*args, **kwargs)
                    except Exception as exc:
                        self._failed(ticket, exc, 0.0)
                        raise
                    if gate.ticket == ticket:
                        count_success()
                    else:
                        self._succeeded(ticket, 0.0)
                    return result
                return self._call_guarded(fn, args, kwargs)

            return protected

        def protected_guarded(*args: Any, **kwargs: Any) -> Any:
            return self._call_guarded(fn, args, kwargs)

        return protected_guarded

    def _call_guarded(self, fn: Callable[..., Any], args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
        gate = self._gate
        epoch = gate.ticket
        if epoch < 0:
            now = self.clock.monotonic()
            until = gate.open_until
            if now < until:
                if self.config.fallback is None:
                    raise self._open_rejection(now, until)  # here: a frame less
                return self._reject(self._open_rejection(now, until), args, kwargs)
            epoch = self._store.admit(now)
            if epoch == REJECT:
                return self._reject(self._rejection(now), args, kwargs)
        if not self._timed:
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                self._failed(epoch, exc, 0.0)
                raise
            if self._lean and self._gate.ticket == epoch:
                self._count_success()
            else:
                self._returned(epoch, result, 0.0)
            return result
        clock = self.clock
        start = clock.monotonic()
        try:
            if self.config.timeout is None:
                result = fn(*args, **kwargs)
            else:
                from buttress.timeout import call_with_thread_timeout

                result = call_with_thread_timeout(fn, args, kwargs, self.config.timeout,
                                                  clock, self.name, events=self.events)
        except BaseException as exc:
            self._failed(epoch, exc, clock.monotonic() - start)
            raise
        self._returned(epoch, result, clock.monotonic() - start)
        return result

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        return self._wrap_async(fn, None)

    def _wrap_async(self, fn: Callable[..., Awaitable[Any]],
                    report: Callable[..., Awaitable[Any]] | None
                    ) -> Callable[..., Awaitable[Any]]:
        # See _wrap_sync: the operation is reported only while somebody listens.
        if self._lean:
            gate = self._gate
            count_success = self._count_success
            hub = self.events

            async def protected(*args: Any, **kwargs: Any) -> Any:
                if report is not None and hub.active:
                    return await report(*args, **kwargs)
                ticket = gate.ticket
                if ticket >= 0:
                    try:
                        result = await fn(*args, **kwargs)
                    except Exception as exc:
                        self._failed(ticket, exc, 0.0)
                        raise
                    if gate.ticket == ticket:
                        count_success()
                    else:
                        self._succeeded(ticket, 0.0)
                    return result
                return await self._acall_guarded(fn, args, kwargs)

            return protected

        async def protected_guarded(*args: Any, **kwargs: Any) -> Any:
            return await self._acall_guarded(fn, args, kwargs)

        return protected_guarded

    async def _acall_guarded(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...],
                             kwargs: dict[str, Any]) -> Any:
        gate = self._gate
        epoch = gate.ticket
        if epoch < 0:
            now = self.clock.monotonic()
            until = gate.open_until
            if now < until:
                if self.config.fallback is None:
                    raise self._open_rejection(now, until)
                result = self._reject(self._open_rejection(now, until), args, kwargs)
                return (await result) if isinstance(result, Awaitable) else result
            epoch = self._store.admit(now)
            if epoch == REJECT:
                result = self._reject(self._rejection(now), args, kwargs)
                return (await result) if isinstance(result, Awaitable) else result
        if not self._timed:
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                self._failed(epoch, exc, 0.0)
                raise
            if self._lean and self._gate.ticket == epoch:
                self._count_success()
            else:
                self._returned(epoch, result, 0.0)
            return result
        clock = self.clock
        start = clock.monotonic()
        try:
            if self.config.timeout is None:
                result = await fn(*args, **kwargs)
            else:
                from buttress.timeout import await_with_timeout

                result = await await_with_timeout(fn(*args, **kwargs), self.config.timeout,
                                                  clock, self.name, events=self.events)
        except BaseException as exc:
            self._failed(epoch, exc, clock.monotonic() - start)
            raise
        self._returned(epoch, result, clock.monotonic() - start)
        return result

    def __call__(self, fn: F) -> F:
        is_async = check_protectable(fn, type(self).__name__)
        if not self._lean:
            return super().__call__(fn)
        # The lean wrapper itself decides, per call, whether to report the call
        # as an operation (see Strategy._measured): no extra layer when unheard.
        if is_async:
            reported = self._measured(self._wrap_async(fn, None), fn, True)
            wrapper = self._wrap_async(fn, reported)
        else:
            reported = self._measured(self._wrap_sync(fn, None), fn, False)
            wrapper = self._wrap_sync(fn, reported)
        return functools.wraps(fn)(wrapper)  # type: ignore[return-value]

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` through the breaker (pybreaker's spelling)."""
        if check_call(fn, "CircuitBreaker"):
            raise TypeError(f"{fn!r} is a coroutine function: use `await breaker.acall(fn)`")
        if self.events.active:
            return self._call_reported(fn, args, kwargs)
        return self._call_guarded(fn, args, kwargs)

    def _call_reported(self, fn: Callable[..., Any], args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> Any:
        """:meth:`call` as one operation, named after the breaker (as a ``with``
        block is: the function of a call is often a lambda). A method of its own,
        so that ``call`` itself builds no closure cells."""
        def guarded(*args: Any, **kwargs: Any) -> Any:
            return self._call_guarded(fn, args, kwargs)

        return operation.measure(guarded, self.events, self.name, self.clock)(*args, **kwargs)

    async def acall(self, fn: Callable[..., Awaitable[Any]], /, *args: Any,
                    **kwargs: Any) -> Any:
        """Await ``fn(*args, **kwargs)`` through the breaker."""
        check_call(fn, "CircuitBreaker")
        if self.events.active:
            return await self._acall_reported(fn, args, kwargs)
        return await self._acall_guarded(fn, args, kwargs)

    async def _acall_reported(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...],
                              kwargs: dict[str, Any]) -> Any:
        """:meth:`acall` as one operation; see :meth:`_call_reported`."""
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            return await self._acall_guarded(fn, args, kwargs)

        return await operation.measure_async(guarded, self.events, self.name, self.clock)(
            *args, **kwargs)

    def protect(self, fn: F) -> F:
        """Decorate ``fn`` (sync or async) with this breaker; same as ``@breaker``."""
        return self(fn)

    # context managers

    def _context(self) -> contextvars.ContextVar[_Frame | None]:
        with _FRAMES_LOCK:
            frames = self._frames
            if frames is None:
                frames = self._frames = contextvars.ContextVar(
                    f"buttress.breaker.{self.name}", default=None)
        return frames

    def _enter(self, timeout: Any) -> None:
        if self.events.active and operation.current() is None:
            watch = operation.begin(self.events, self.name, self.clock)
            if watch is not None:
                self._enter_watched(timeout, watch)
                return
        gate = self._gate
        epoch = gate.ticket
        if epoch < 0:
            now = self.clock.monotonic()
            until = gate.open_until
            if now < until:
                raise self._open_rejection(now, until)
            epoch = self._store.admit(now)
            if epoch == REJECT:
                raise self._rejection(now)
        start = self.clock.monotonic() if self._timed else 0.0
        frames = self._frames
        if frames is None:
            frames = self._context()
        frames.set((epoch, start, timeout, frames.get()))

    def _enter_watched(self, timeout: Any, watch: operation.Watch) -> None:
        """Enter a block reported as one operation (``watch``): its frame holds a
        :class:`_Watched` for the epoch, so leaving it takes :meth:`_exit`."""
        try:
            self._enter(timeout)  # inside the operation now: entered plainly
        except BaseException as exc:
            operation.end(watch, exc)  # refused: the block never ran
            raise
        frames = self._context()
        frame = frames.get()
        assert frame is not None
        frames.set((_Watched(frame[0], watch), frame[1], frame[2], frame[3]))

    def _frame(self) -> _Frame | None:
        return None if self._frames is None else self._frames.get()

    def _exit(self, exc: BaseException | None, *, judge_overrun: bool = False) -> None:
        frames = self._frames
        frame = None if frames is None else frames.get()
        if frame is None or frames is None:
            raise RuntimeError(f"circuit breaker {self.name!r} exited without being entered")
        epoch = frame[0]
        if epoch.__class__ is _Watched:
            # The block is an operation: settle the breaker, then report its end.
            frames.set((epoch.epoch, frame[1], frame[2], frame[3]))
            try:
                self._exit(exc, judge_overrun=judge_overrun)
            finally:
                operation.end(epoch.watch, exc)
            return
        frames.set(frame[3])
        if not self._timed:
            if exc is None:
                self._succeeded(epoch, 0.0)
            else:
                self._failed(epoch, exc, 0.0)
            return
        config = self.config
        duration = self.clock.monotonic() - frame[1]
        if exc is None and judge_overrun and config.timeout is not None \
                and duration > config.timeout:
            exc = OperationTimeoutError(operation=self.name, timeout=config.timeout)
        if exc is None:
            self._succeeded(epoch, duration)
        else:
            self._failed(epoch, exc, duration)

    def __enter__(self) -> CircuitBreaker:
        epoch = self._gate.ticket
        frames = self._frames
        if epoch < 0 or self._timed or frames is None or self.events.active:
            self._enter(None)
        else:
            # The closed breaker's fast path: _enter inlined.
            frames.set((epoch, 0.0, None, frames.get()))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        frames = self._frames
        if exc is None and not self._timed and frames is not None:
            frame = frames.get()
            if frame is not None and self._gate.ticket == frame[0]:
                # The closed breaker's fast path: _exit and _succeeded inlined.
                frames.set(frame[3])
                self._count_success()
                return
        # A sync block can not be interrupted; one that overran ``timeout`` still
        # counts as a failure (its own result stands).
        self._exit(exc, judge_overrun=True)

    async def __aenter__(self) -> CircuitBreaker:
        limit = self.config.timeout
        if limit is None:
            epoch = self._gate.ticket
            frames = self._frames
            if epoch < 0 or self._timed or frames is None or self.events.active:
                self._enter(None)
            else:
                frames.set((epoch, 0.0, None, frames.get()))
            return self
        timeout = self.clock.timeout(limit)
        await timeout.__aenter__()
        try:
            self._enter(timeout)
        except BaseException:
            await timeout.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self.config.timeout is None:
            frames = self._frames
            if exc is None and not self._timed and frames is not None:
                frame = frames.get()
                if frame is not None and self._gate.ticket == frame[0]:
                    frames.set(frame[3])
                    self._count_success()
                    return
            self._exit(exc)
            return
        frame = self._frame()
        timeout = frame[2] if frame is not None else None
        if timeout is not None:
            try:
                await timeout.__aexit__(exc_type, exc, tb)
            except TimeoutError as expired:
                if not timeout.expired():
                    raise
                error = OperationTimeoutError(operation=self.name, timeout=self.config.timeout)
                self._exit(error)
                raise error from expired
        self._exit(exc)

    def __repr__(self) -> str:
        state = self._store.refusal(self.clock.monotonic())[0]
        return f"CircuitBreaker({self.name!r}, state={state.value})"
