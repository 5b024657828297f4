"""Circuit breaker.

:class:`BreakerMachine` is the pure state machine (closed → open → half-open →
closed); it never reads a clock, takes a lock or calls user code. The
:class:`CircuitBreaker` around it feeds it the time, serialises its transitions
with a lock, and runs the protected call *outside* that lock.

The closed-state success path of the default breaker (trip on N consecutive
failures) takes no lock and allocates nothing: it reads the state, runs the
call, and bumps a C-level counter. Every admitted call remembers the *epoch*
(the number of state changes so far) it was admitted in; outcomes that arrive
after the breaker has moved on only update the statistics, never the state.

Invariants:

* Open ends at one instant, ``reopen_at`` (``opened_at + recovery_timeout``,
  infinite while held open), and every reader compares ``now < reopen_at``: the
  state, ``is_open``, ``remaining_timeout`` and admission agree at every instant.
* The outcome window is kept when the breaker trips (so an open breaker reports
  the failure rate that tripped it) and started afresh when probing begins and
  when the breaker closes.
* A half-open probe holds its permit for at most ``recovery_timeout`` without
  news: once no probe has been admitted or has finished for that long and the
  permits are all taken, they are given back (the late probes' outcomes then
  only reach the statistics) and new probes are admitted, so a probe that never
  returns can not keep the breaker from recovering.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import threading
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any, Final, TypeVar

from buttress import registry
from buttress._core import forksafe, operation, validate
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
    check_call,
    is_async_callable,
    logger,
    should_log,
)

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


class CircuitState(StrEnum):
    """The three states; the value is lower-case (``CircuitState.OPEN.value == "open"``)
    and ``gauge_value`` is the Prometheus encoding 0/1/2."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    @property
    def gauge_value(self) -> int:
        """0 for closed, 1 for open, 2 for half-open."""
        return _GAUGE[self]


_GAUGE: Final = {CircuitState.CLOSED: 0, CircuitState.OPEN: 1, CircuitState.HALF_OPEN: 2}

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

    def __init__(
        self,
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
        *,
        exception_whitelist: Any = _UNSET,
        critical: bool = False,
    ) -> None:
        o = "CircuitBreakerConfig"
        if not isinstance(critical, bool):
            raise ConfigurationError(f"{o}.critical must be a bool, got {critical!r}")
        if ignored_exceptions is not _UNSET and exception_whitelist is not _UNSET:
            raise ConfigurationError(
                f"{o}.ignored_exceptions and its alias exception_whitelist are both given: "
                f"{ignored_exceptions!r}, {exception_whitelist!r}"
            )
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
        }
        if f["slow_call_rate_threshold"] is not None and f["slow_call_duration"] is None:
            raise ConfigurationError(
                f"{o}.slow_call_rate_threshold needs slow_call_duration, got "
                f"slow_call_rate_threshold={slow_call_rate_threshold!r} without it"
            )
        uses_rate = (f["failure_rate_threshold"] is not None
                     or f["slow_call_rate_threshold"] is not None)
        if f["failure_threshold"] is None and not uses_rate:
            raise ConfigurationError(
                f"{o}.failure_threshold may only be None when a rate rule "
                f"(failure_rate_threshold or slow_call_rate_threshold) is set, got None "
                f"without one"
            )
        if uses_rate and f["failure_window"] is None and f["minimum_calls"] > f["window_size"]:
            raise ConfigurationError(
                f"{o}.minimum_calls must be <= window_size ({f['window_size']}) or the rate "
                f"rule can never fire, got {minimum_calls!r}"
            )
        for key, value in f.items():
            object.__setattr__(self, key, value)

    @property
    def exception_whitelist(self) -> tuple[type[Exception], ...]:
        """Alias of ``ignored_exceptions``."""
        return self.ignored_exceptions

    def replace(self, **changes: Any) -> CircuitBreakerConfig:
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


# --- the pure state machine ----------------------------------------------------------------


class _CountWindow:
    """Outcomes of the last ``size`` calls in a ring, with running sums."""

    __slots__ = ("calls", "failures", "index", "outcomes", "slow")

    def __init__(self, size: int) -> None:
        self.outcomes = bytearray(size)
        self.index = 0
        self.calls = 0
        self.failures = 0
        self.slow = 0

    def record(self, failed: bool, slow: bool, now: float) -> None:
        size = len(self.outcomes)
        if self.calls == size:
            old = self.outcomes[self.index]
            self.failures -= old & 1
            self.slow -= old >> 1
        else:
            self.calls += 1
        self.outcomes[self.index] = failed | (slow << 1)
        self.index = (self.index + 1) % size
        self.failures += failed
        self.slow += slow

    def totals(self, now: float) -> tuple[int, int, int]:
        return self.calls, self.failures, self.slow


class _TimeWindow:
    """Outcomes of the last ``span`` seconds in ten buckets (a window that slides in
    steps of a tenth of its span; memory stays constant whatever the call rate)."""

    BUCKETS: Final = 10
    __slots__ = ("calls", "failures", "ids", "slow", "width")

    def __init__(self, span: float) -> None:
        n = self.BUCKETS
        self.width = span / n
        self.ids = [-(n + 1)] * n
        self.calls = [0] * n
        self.failures = [0] * n
        self.slow = [0] * n

    def record(self, failed: bool, slow: bool, now: float) -> None:
        bucket = int(now // self.width)
        i = bucket % self.BUCKETS
        if self.ids[i] != bucket:
            self.ids[i] = bucket
            self.calls[i] = self.failures[i] = self.slow[i] = 0
        self.calls[i] += 1
        self.failures[i] += failed
        self.slow[i] += slow

    def totals(self, now: float) -> tuple[int, int, int]:
        current = int(now // self.width)
        calls = failures = slow = 0
        for i, bucket in enumerate(self.ids):
            if current - bucket < self.BUCKETS:
                calls += self.calls[i]
                failures += self.failures[i]
                slow += self.slow[i]
        return calls, failures, slow


class BreakerMachine:
    """The breaker's decisions, as a plain state machine.

    Not thread-safe by itself; :class:`CircuitBreaker` serialises access. Every
    method takes the current time as an argument instead of reading a clock.
    """

    __slots__ = (
        "config", "consecutive_failures", "epoch", "failed", "held_open", "ignored",
        "last_failure_time", "opened_at", "probe_deadline", "probe_successes",
        "probes_in_flight", "recent_failures", "rejected", "reopen_at", "slow", "state",
        "state_changes", "tripped_by", "trips", "window",
    )

    def __init__(self, config: CircuitBreakerConfig) -> None:
        self.config = config
        self.state = CircuitState.CLOSED
        self.epoch = 0
        self.opened_at = 0.0
        # The instant the open state ends; every reader compares ``now < reopen_at``.
        self.reopen_at = 0.0
        self.held_open = False
        # The failure that opened the breaker (None when forced or tripped by slowness).
        self.tripped_by: BaseException | None = None
        self.consecutive_failures = 0
        self.probes_in_flight = 0
        self.probe_successes = 0
        # Half-open: when taken permits are given back if no probe has moved by then.
        self.probe_deadline = 0.0
        self.failed = self.rejected = self.ignored = self.slow = 0
        self.state_changes = self.trips = 0
        self.last_failure_time: float | None = None
        self.recent_failures: deque[float] | None = None
        self.window: _CountWindow | _TimeWindow | None = None
        self._fresh_counters(fresh_window=True)

    # transitions

    def _fresh_counters(self, *, fresh_window: bool) -> None:
        config = self.config
        self.consecutive_failures = 0
        self.probes_in_flight = 0
        self.probe_successes = 0
        if config.failure_window is not None and config.failure_threshold is not None:
            self.recent_failures = deque(maxlen=config.failure_threshold)
        if fresh_window and config.uses_window:
            self.window = (
                _TimeWindow(config.failure_window) if config.failure_window is not None
                else _CountWindow(config.window_size)
            )

    def _move(self, state: CircuitState) -> None:
        self.state = state
        self.epoch += 1
        self.state_changes += 1

    def _trip(self, now: float, cause: BaseException | None) -> None:
        self._move(CircuitState.OPEN)
        self.opened_at = now
        self.reopen_at = now + self.config.recovery_timeout
        self.tripped_by = cause
        self.trips += 1
        # The window stays: an open breaker reports the rate that tripped it.
        self._fresh_counters(fresh_window=False)

    def _close(self) -> None:
        self._move(CircuitState.CLOSED)
        self.held_open = False
        self.tripped_by = None
        self._fresh_counters(fresh_window=True)

    # decisions

    def admit(self, now: float) -> int | None:
        """Admit a call: return the epoch it runs in, or ``None`` to reject it."""
        state = self.state
        if state is CircuitState.CLOSED:
            return self.epoch
        if state is CircuitState.OPEN and not self.recover(now):
            self.rejected += 1
            return None
        if self.probes_in_flight >= self.config.half_open_max_calls:
            if now < self.probe_deadline:
                self.rejected += 1
                return None
            self._abandon_probes()
        self.probes_in_flight += 1
        self.probe_deadline = now + self.config.recovery_timeout
        return self.epoch

    def _abandon_probes(self) -> None:
        # No probe was admitted or finished for a whole recovery_timeout: the ones
        # in flight are taken as lost. A new epoch makes their late outcomes stale
        # (they reach the statistics only) and frees their permits, as Polly
        # re-arms a half-open breaker whose probe does not come back.
        self.epoch += 1
        self.probes_in_flight = 0
        self.probe_successes = 0

    def recover(self, now: float) -> bool:
        """Turn half-open if the breaker is open and its recovery timeout has
        passed; return whether it is (now) half-open."""
        if self.state is CircuitState.OPEN:
            if now < self.reopen_at:
                return False
            self._move(CircuitState.HALF_OPEN)
            self._fresh_counters(fresh_window=True)
            self.probe_deadline = now + self.config.recovery_timeout
        return self.state is CircuitState.HALF_OPEN

    def _is_current(self, epoch: int) -> bool:
        return epoch == self.epoch and self.state is not CircuitState.OPEN

    def record_success(self, epoch: int, now: float, duration: float) -> None:
        """A call admitted in ``epoch`` succeeded after ``duration`` seconds."""
        limit = self.config.slow_call_duration
        is_slow = limit is not None and duration >= limit
        if is_slow:
            self.slow += 1
        if not self._is_current(epoch):
            return
        window = self.window
        if self.state is CircuitState.HALF_OPEN:
            self.probes_in_flight -= 1
            self.probe_successes += 1
            self.probe_deadline = now + self.config.recovery_timeout
            if window is not None:
                window.record(False, is_slow, now)
            if self.probe_successes >= self.config.success_threshold:
                self._close()
            return
        self.consecutive_failures = 0
        if window is not None:
            window.record(False, is_slow, now)
            if self._rate_exceeded(now):
                self._trip(now, None)

    def record_failure(self, epoch: int, now: float, duration: float = 0.0,
                       cause: BaseException | None = None) -> None:
        """A call admitted in ``epoch`` failed (with a counted exception, ``cause``)
        after ``duration`` seconds; a slow failure is also counted as slow."""
        self.failed += 1
        self.last_failure_time = now
        limit = self.config.slow_call_duration
        is_slow = limit is not None and duration >= limit
        if is_slow:
            self.slow += 1
        if not self._is_current(epoch):
            return
        window = self.window
        if window is not None:
            window.record(True, is_slow, now)
        if self.state is CircuitState.HALF_OPEN:
            self.probes_in_flight -= 1
            self._trip(now, cause)
            return
        config = self.config
        self.consecutive_failures += 1
        threshold = config.failure_threshold
        recent = self.recent_failures
        tripped = False
        if threshold is None:
            pass  # the rate rule alone decides
        elif recent is None:
            tripped = self.consecutive_failures >= threshold
        else:
            recent.append(now)
            tripped = (
                len(recent) == threshold
                and now - recent[0] <= config.failure_window  # type: ignore[operator]
            )
        if tripped or (window is not None and self._rate_exceeded(now)):
            self._trip(now, cause)

    def release(self, epoch: int, *, ignored: bool) -> None:
        """A call admitted in ``epoch`` ended without a verdict: an ignored
        exception, or cancellation. Give back its half-open permit, if any."""
        if ignored:
            self.ignored += 1
        if self._is_current(epoch) and self.state is CircuitState.HALF_OPEN:
            self.probes_in_flight -= 1

    def _rate_exceeded(self, now: float) -> bool:
        assert self.window is not None
        config = self.config
        calls, failures, slow = self.window.totals(now)
        if calls < config.minimum_calls:
            return False
        rate = config.failure_rate_threshold
        if rate is not None and failures >= rate * calls:
            return True
        slow_rate = config.slow_call_rate_threshold
        return slow_rate is not None and slow >= slow_rate * calls

    # manual control and reading

    def force_open(self, now: float) -> None:
        """Open and stay open until :meth:`force_closed` or :meth:`reset`."""
        if self.state is not CircuitState.OPEN:
            self._trip(now, None)
        self.held_open = True
        self.reopen_at = float("inf")

    def force_closed(self) -> None:
        """Close now, keeping the statistics."""
        if self.state is not CircuitState.CLOSED:
            self._close()
        self.held_open = False

    def reset(self) -> None:
        """Back to closed with every counter cleared."""
        epoch = self.epoch
        self.__init__(self.config)  # type: ignore[misc]
        # Keep epochs growing so that calls admitted before the reset stay stale.
        self.epoch = epoch + 1

    def remaining(self, now: float) -> float:
        """Seconds until a call would be admitted: until the recovery timeout ends
        while open (``inf`` while held open), until the taken probe permits are
        given back while half-open, 0.0 otherwise."""
        state = self.state
        if state is CircuitState.OPEN:
            return self.reopen_at - now if now < self.reopen_at else 0.0
        if (state is CircuitState.HALF_OPEN
                and self.probes_in_flight >= self.config.half_open_max_calls
                and now < self.probe_deadline):
            return self.probe_deadline - now
        return 0.0

    def failure_rate(self, now: float) -> float | None:
        """The failure rate over the outcome window (None without one): the
        calls that tripped the breaker while it is open, the probes while it
        is half-open."""
        if self.window is None:
            return None
        calls, failures, _ = self.window.totals(now)
        return failures / calls if calls else 0.0

    def failure_count(self, now: float) -> int:
        """Failures that count toward the threshold right now."""
        if self.recent_failures is not None:
            window = self.config.failure_window
            assert window is not None
            return sum(1 for t in self.recent_failures if now - t <= window)
        return self.consecutive_failures


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


def _counted(counter: itertools.count[int]) -> int:
    # itertools.count has no public accessor; its repr is "count(N)".
    return int(repr(counter)[6:-1])


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


class _Frame:
    """What ``with breaker:`` remembers between enter and exit."""

    __slots__ = ("epoch", "outer", "start", "timeout")

    def __init__(self, epoch: int, start: float, timeout: Any, outer: _Frame | None) -> None:
        self.epoch = epoch
        self.start = start
        self.timeout = timeout
        self.outer = outer


class CircuitBreaker(Strategy):
    """A circuit breaker, usable every way the seeds use one::

        breaker = CircuitBreaker("payment-api", failure_threshold=5, recovery_timeout=30.0)

        async with breaker:                     # or: with breaker:
            await charge(amount)

        @breaker                                # or: @breaker.protect
        async def call_external() -> dict: ...

        breaker.call(fetch, url)                # or: await breaker.acall(fetch, url)

    Thread- and task-safe; no lock is held while the protected call runs.
    """

    __slots__ = (
        "__weakref__", "_delivering", "_frames", "_lean", "_lock", "_m",
        "_pending", "_rejections", "_successes", "clock", "config", "events", "name",
    )

    order = 30

    def __init__(
        self,
        name: str | CircuitBreakerConfig | None = None,
        config: CircuitBreakerConfig | None = None,
        *,
        clock: Clock | None = None,
        on_state_change: StateListener | None = None,
        **options: Any,
    ) -> None:
        if isinstance(name, CircuitBreakerConfig):
            name, config = None, name
        if config is not None and not isinstance(config, CircuitBreakerConfig):
            raise TypeError(f"CircuitBreaker config must be a CircuitBreakerConfig, got {config!r}")
        if config is None:
            if name is not None:
                options["name"] = name
            config = CircuitBreakerConfig(**options)
        else:
            changes = dict(options)
            if name is not None and name != config.name:
                changes["name"] = name
            if changes:
                config = config.replace(**changes)
        self.config = config
        self.name = config.name
        self.clock = SYSTEM_CLOCK if clock is None else clock
        self._lock = forksafe.lock()
        self._m = BreakerMachine(config)
        self._successes = itertools.count()
        # Rejections by an open breaker are counted without the lock (see _admit).
        self._rejections = itertools.count()
        #: This breaker's listener hub: ``breaker.events.add(listener, *kinds)``.
        self.events = Listeners(GLOBAL)
        # A list, not a deque: it is almost always empty, and an empty deque
        # weighs 600 bytes (a thousand named breakers are a realistic count).
        self._pending: list[tuple[CircuitState, CircuitState]] = []
        self._delivering = forksafe.lock()
        if on_state_change is not None:
            self.add_listener(on_state_change)
        # Created on the first ``with`` (most breakers are only ever decorators).
        self._frames: contextvars.ContextVar[_Frame | None] | None = None
        # The lean path serves the default rule (consecutive failures) with no
        # window, no slow-call rule and no timeout: nothing to record on success.
        self._lean = (config.failure_window is None and not config.uses_window
                      and config.slow_call_duration is None and config.timeout is None)
        registry.observe(self)

    # reading

    @property
    def state(self) -> CircuitState:
        """The current state. An open breaker whose recovery timeout has passed
        reads (and becomes) HALF_OPEN, so ``if breaker.state == CircuitState.OPEN:
        use_cache()`` stops using the cache once a probe is allowed."""
        m = self._m
        if m.state is CircuitState.OPEN:
            now = self.clock.monotonic()
            if not now < m.reopen_at:
                self._change(lambda machine: machine.recover(now))
        return m.state

    @property
    def is_open(self) -> bool:
        """Whether calls are currently being rejected (open, timeout not yet passed)."""
        m = self._m
        return m.state is CircuitState.OPEN and self.clock.monotonic() < m.reopen_at

    @property
    def is_closed(self) -> bool:
        """Whether the breaker is closed."""
        return self._m.state is CircuitState.CLOSED

    @property
    def stats(self) -> CircuitBreakerStats:
        """A consistent snapshot of the counters (reading it, like :attr:`state`,
        turns a breaker whose recovery timeout has passed half-open)."""
        self.state  # noqa: B018 - for its recovery side effect
        now = self.clock.monotonic()
        with self._lock:
            m = self._m
            successes = _counted(self._successes)
            failed, ignored = m.failed, m.ignored
            rejected = m.rejected + _counted(self._rejections)
            finished = successes + failed
            rate = m.failure_rate(now)
            if rate is None:
                rate = failed / finished if finished else 0.0
            return CircuitBreakerStats(
                name=self.name,
                state=m.state,
                total_calls=successes + failed + ignored + rejected,
                successful_calls=successes,
                failed_calls=failed,
                rejected_calls=rejected,
                ignored_calls=ignored,
                slow_calls=m.slow,
                state_changes=m.state_changes,
                trips=m.trips,
                failure_count=m.failure_count(now),
                failure_threshold=self.config.failure_threshold,
                failure_rate=rate,
                last_failure_time=m.last_failure_time,
                remaining_timeout=m.remaining(now),
            )

    # control

    def reset(self) -> None:
        """Force the breaker CLOSED and clear its counters (for tests and emergencies)."""
        self._change(lambda m: m.reset())
        self._successes = itertools.count()
        self._rejections = itertools.count()

    def force_open(self) -> None:
        """Open the breaker and hold it open until :meth:`force_closed` or :meth:`reset`."""
        now = self.clock.monotonic()
        self._change(lambda m: m.force_open(now))

    def force_closed(self) -> None:
        """Close the breaker now, keeping its statistics."""
        self._change(lambda m: m.force_closed())

    def add_listener(self, listener: StateListener) -> None:
        """Call ``listener(breaker, old_state, new_state)`` after every state change,
        in the order the changes happened (even when they happen in other threads).
        For typed events of every kind use ``breaker.events.add(listener)``."""
        self.events.add(_StateHook(self, listener), StateChanged)

    def _change(self, action: Callable[[BreakerMachine], _R]) -> _R:
        """Apply ``action`` to the machine under the lock; deliver any resulting
        transition to the listeners after releasing it."""
        m = self._m
        with self._lock:
            before = m.state
            result = action(m)
            after = m.state
            if before is not after:
                self._pending.append((before, after))
        if before is not after:
            self._deliver()
        return result

    def _deliver(self) -> None:
        # Transitions are queued under the state lock and delivered outside it by
        # one thread at a time, so listeners see them in the order they happened
        # even if another thread's transition lands while a listener runs; that
        # transition is delivered by the thread already delivering. The re-check
        # after releasing closes the gap between its last look and the release.
        pending = self._pending
        while pending:
            if not self._delivering.acquire(blocking=False):
                return
            try:
                while pending:
                    before, after = pending.pop(0)
                    self._notify(before, after)
            finally:
                self._delivering.release()

    def _notify(self, before: CircuitState, after: CircuitState) -> None:
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

    # the protocol every call path follows: admit, run, record

    def _admit(self) -> int:
        """Admit a call or raise :class:`CircuitBreakerError`; return its epoch."""
        admitted = self._try_admit()
        if isinstance(admitted, CircuitBreakerError):
            raise admitted
        return admitted

    def _try_admit(self) -> int | CircuitBreakerError:
        """Admit a call and return its epoch, or return the rejection. (Returned,
        not raised: raising it once, where the caller decides, halves the cost.)"""
        m = self._m
        epoch = m.epoch
        state = m.state
        if state is CircuitState.CLOSED:
            return epoch
        now = self.clock.monotonic()
        if state is CircuitState.OPEN:
            # The common rejection takes no lock: an open breaker whose recovery
            # timeout has not passed rejects whatever another thread does now.
            # (Open rejection went from 3.6 to ~1 us; python -m benchmarks.)
            reopen_at = m.reopen_at
            if now < reopen_at and m.epoch == epoch:
                next(self._rejections)
                return self._rejection(state, reopen_at - now, m.tripped_by)
        admitted, state, remaining, cause = self._change(
            lambda machine: (machine.admit(now), machine.state, machine.remaining(now),
                             machine.tripped_by))
        if admitted is None:
            return self._rejection(state, remaining, cause)
        return admitted

    def _rejection(self, state: CircuitState, remaining: float,
                   cause: BaseException | None) -> CircuitBreakerError:
        targets = self.events.of(CallRejected)
        if targets:
            deliver(targets, CallRejected("circuit_breaker", self.name, state, remaining))
        if cause is None:
            return CircuitBreakerError(self.name, state, remaining)
        # The failure that opened the breaker, so that a caller (a retry loop
        # that tripped it, say) still sees why its call was turned away.
        return CircuitBreakerError(self.name, state, remaining, cause)  # positional: 0.4 us less

    def _slow(self, duration: float, threshold: float) -> None:
        targets = self.events.of(SlowCall)
        if targets:
            deliver(targets, SlowCall("circuit_breaker", self.name, duration, threshold))

    def _succeeded(self, epoch: int, duration: float) -> None:
        next(self._successes)
        m = self._m
        if self._lean and m.state is CircuitState.CLOSED and not m.consecutive_failures:
            return
        threshold = self.config.slow_call_duration
        if threshold is not None and duration >= threshold:
            self._slow(duration, threshold)
        now = self.clock.monotonic()
        self._change(lambda machine: machine.record_success(epoch, now, duration))

    def _failed(self, epoch: int, exc: BaseException, duration: float) -> None:
        verdict = _verdict(self.config, exc)
        if verdict is _FAILURE:
            threshold = self.config.slow_call_duration
            if threshold is not None and duration >= threshold:
                self._slow(duration, threshold)
            now = self.clock.monotonic()
            self._change(lambda m: m.record_failure(epoch, now, duration, exc))
        elif verdict is _SUCCESS:
            self._succeeded(epoch, duration)
        else:
            # Ignored exceptions, and cancellation, interrupts and exits (not a
            # verdict on the dependency): the call leaves no mark but its permit.
            self._change(lambda m: m.release(epoch, ignored=verdict is _IGNORED))

    def _reject(self, error: CircuitBreakerError, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        fallback = self.config.fallback
        if fallback is None:
            raise error
        return fallback(error, *args, **kwargs)

    # call paths

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        if self.config.fallback is not None and is_async_callable(self.config.fallback):
            raise TypeError(
                f"circuit breaker {self.name!r} has an async fallback "
                f"{self.config.fallback!r}, which a sync call can not await"
            )
        m = self._m
        closed = CircuitState.CLOSED
        if self._lean:

            def protected(*args: Any, **kwargs: Any) -> Any:
                # Epoch first, then state: if the state changes in between, the
                # epoch is stale and this call's outcome only reaches the stats.
                epoch = m.epoch
                if m.state is closed:
                    try:
                        result = fn(*args, **kwargs)
                    except Exception as exc:
                        self._failed(epoch, exc, 0.0)
                        raise
                    next(self._successes)
                    if m.consecutive_failures:
                        self._succeeded_closed(epoch)
                    return result
                return self._call_guarded(fn, args, kwargs)

            return protected

        def protected_guarded(*args: Any, **kwargs: Any) -> Any:
            return self._call_guarded(fn, args, kwargs)

        return protected_guarded

    def _succeeded_closed(self, epoch: int) -> None:
        # The lean path already counted the success; only the streak needs clearing.
        with self._lock:
            m = self._m
            if m.epoch == epoch and m.state is CircuitState.CLOSED:
                m.consecutive_failures = 0

    def _call_guarded(self, fn: Callable[..., Any], args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
        epoch = self._try_admit()
        if isinstance(epoch, CircuitBreakerError):
            return self._reject(epoch, args, kwargs)
        clock = self.clock
        timed = self.config.slow_call_duration is not None
        start = clock.monotonic() if timed else 0.0
        try:
            if self.config.timeout is None:
                result = fn(*args, **kwargs)
            else:
                from buttress.timeout import call_with_thread_timeout

                result = call_with_thread_timeout(fn, args, kwargs, self.config.timeout,
                                                  clock, self.name, events=self.events)
        except BaseException as exc:
            self._failed(epoch, exc, clock.monotonic() - start if timed else 0.0)
            raise
        self._succeeded(epoch, clock.monotonic() - start if timed else 0.0)
        return result

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        m = self._m
        closed = CircuitState.CLOSED
        if self._lean:

            async def protected(*args: Any, **kwargs: Any) -> Any:
                epoch = m.epoch
                if m.state is closed:
                    try:
                        result = await fn(*args, **kwargs)
                    except Exception as exc:
                        self._failed(epoch, exc, 0.0)
                        raise
                    next(self._successes)
                    if m.consecutive_failures:
                        self._succeeded_closed(epoch)
                    return result
                return await self._acall_guarded(fn, args, kwargs)

            return protected

        async def protected_guarded(*args: Any, **kwargs: Any) -> Any:
            return await self._acall_guarded(fn, args, kwargs)

        return protected_guarded

    async def _acall_guarded(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...],
                             kwargs: dict[str, Any]) -> Any:
        epoch = self._try_admit()
        if isinstance(epoch, CircuitBreakerError):
            result = self._reject(epoch, args, kwargs)
            return (await result) if isinstance(result, Awaitable) else result
        clock = self.clock
        timed = self.config.slow_call_duration is not None
        start = clock.monotonic() if timed else 0.0
        try:
            if self.config.timeout is None:
                result = await fn(*args, **kwargs)
            else:
                from buttress.timeout import await_with_timeout

                result = await await_with_timeout(fn(*args, **kwargs), self.config.timeout,
                                                  clock, self.name, events=self.events)
        except BaseException as exc:
            self._failed(epoch, exc, clock.monotonic() - start if timed else 0.0)
            raise
        self._succeeded(epoch, clock.monotonic() - start if timed else 0.0)
        return result

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` through the breaker (pybreaker's spelling)."""
        if check_call(fn, "CircuitBreaker"):
            raise TypeError(f"{fn!r} is a coroutine function: use `await breaker.acall(fn)`")
        return self._call_guarded(fn, args, kwargs)

    async def acall(self, fn: Callable[..., Awaitable[Any]], /, *args: Any,
                    **kwargs: Any) -> Any:
        """Await ``fn(*args, **kwargs)`` through the breaker."""
        check_call(fn, "CircuitBreaker")
        return await self._acall_guarded(fn, args, kwargs)

    def protect(self, fn: F) -> F:
        """Decorate ``fn`` (sync or async) with this breaker; same as ``@breaker``."""
        return self(fn)

    # context managers

    def _enter(self, timeout: Any) -> None:
        epoch = self._admit()
        timed = self.config.slow_call_duration is not None or self.config.timeout is not None
        start = self.clock.monotonic() if timed else 0.0
        frames = self._frames
        if frames is None:
            with self._lock:
                if self._frames is None:
                    self._frames = contextvars.ContextVar(f"buttress.breaker.{self.name}",
                                                          default=None)
                frames = self._frames
        frames.set(_Frame(epoch, start, timeout, frames.get()))

    def _frame(self) -> _Frame | None:
        return None if self._frames is None else self._frames.get()

    def _exit(self, exc: BaseException | None, *, judge_overrun: bool = False) -> None:
        frame = self._frame()
        if frame is None or self._frames is None:
            raise RuntimeError(f"circuit breaker {self.name!r} exited without being entered")
        self._frames.set(frame.outer)
        config = self.config
        timed = config.slow_call_duration is not None or config.timeout is not None
        duration = self.clock.monotonic() - frame.start if timed else 0.0
        if exc is None and judge_overrun and config.timeout is not None \
                and duration > config.timeout:
            exc = OperationTimeoutError(operation=self.name, timeout=config.timeout)
        if exc is None:
            self._succeeded(frame.epoch, duration)
        else:
            self._failed(frame.epoch, exc, duration)

    def __enter__(self) -> CircuitBreaker:
        self._enter(None)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # A sync block can not be interrupted; one that overran ``timeout`` still
        # counts as a failure (its own result stands).
        self._exit(exc, judge_overrun=True)

    async def __aenter__(self) -> CircuitBreaker:
        limit = self.config.timeout
        timeout = None
        if limit is not None:
            timeout = self.clock.timeout(limit)
            await timeout.__aenter__()
        try:
            self._enter(timeout)
        except BaseException:
            if timeout is not None:
                await timeout.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        frame = self._frame()
        timeout = frame.timeout if frame is not None else None
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
        return f"CircuitBreaker({self.name!r}, state={self._m.state.value})"

