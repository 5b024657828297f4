"""Timeouts.

Async code is cancelled when its time is up (``asyncio.timeout`` on the real
clock). Sync code cannot be interrupted safely, so a sync call runs in a worker
thread and the caller stops waiting when time is up; the worker finishes in the
background. The ``SIGALRM`` variant does interrupt sync code, but only where
that is valid: the main thread on Unix; nested, every limit keeps its deadline.

The worker threads form one shared pool (``buttress._core.workers``) of at
most :data:`DEFAULT_MAX_WORKERS` (64, see :func:`set_max_workers`). A call that
overruns keeps its worker until it ends, so a hanging dependency pins at most
that many threads; with all of them busy a timed sync call is refused at once
with :class:`TimeoutPoolExhaustedError` (a :class:`~buttress.BulkheadFullError`)
instead of starting another thread. A call that has not started when its
caller gives up (queued behind a bulkhead in the worker) never starts. In a
forked child the pool starts empty.

A timeout tightens the call's deadline (``buttress._core.context``): inside it,
:func:`~buttress.remaining_time` is the earlier of its limit and any outer
deadline (an outer timeout, a :func:`~buttress.deadline` block), in the worker
thread of a sync call too. When the outer deadline is the earlier, that is the
limit enforced, and running out of it raises
:class:`~buttress.DeadlineExceededError`; a call whose deadline has already
passed is not started.

Every timeout raises :class:`OperationTimeoutError` (a builtin ``TimeoutError``)
naming the operation and the limit, unless ``TimeoutConfig.exception_class``
says otherwise. A ``TimeoutError`` raised by the operation itself passes
through unchanged.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import queue
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass
from types import FrameType, TracebackType
from typing import Any, Final, NamedTuple, TypeVar, Unpack

from buttress._core import validate, workers
from buttress._core.caller import Caller, run_for
from buttress._core.caller import current as current_caller
from buttress._core.clock import SYSTEM_CLOCK, AsyncTimeout, Clock, SystemClock
from buttress._core.context import CURRENT, CallContext, within
from buttress._core.errors import ButtressError, DeadlineExceededError, OperationTimeoutError
from buttress._core.events import GLOBAL, CallRejected, Listeners, TimedOut, deliver
from buttress._core.lazy_timeout import Expire, limiter, limiter_steps
from buttress._core.operation import Watch
from buttress._core.operation import begin as begin_operation
from buttress._core.operation import end as end_operation
from buttress._core.strategy import (
    Steps,
    Strategy,
    is_async_callable,
    logger,
    operation_name,
    should_log,
)
from buttress._core.workers import DEFAULT_MAX_WORKERS, set_max_workers
from buttress.bulkhead import BulkheadFullError
from buttress.options import TimeoutOptions

__all__ = [
    "DEFAULT_MAX_WORKERS",
    "Timeout",
    "TimeoutConfig",
    "TimeoutPoolExhaustedError",
    "async_timeout",
    "set_max_workers",
    "timeout",
    "timeout_operation",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TimeoutConfig:
    """A time limit and what to raise when it is exceeded.

    ``exception_class`` is called with the message (buttress's own error also
    gets ``operation`` and ``timeout``). ``use_signal=True`` interrupts sync
    code with ``SIGALRM`` (main thread on Unix only).
    """

    timeout_seconds: float
    _: KW_ONLY  # the limit is the one value clear without its name
    exception_class: type[BaseException] = OperationTimeoutError
    error_message: str | None = None
    operation_name: str | None = None
    use_signal: bool = False

    def __post_init__(self) -> None:
        o = "TimeoutConfig"
        # Bounded by what threading and signal.setitimer accept; inf is no limit at all.
        validate.number(o, "timeout_seconds", self.timeout_seconds, minimum=0.0,
                        strict_minimum=True, maximum=threading.TIMEOUT_MAX)
        validate.exception_class(o, "exception_class", self.exception_class)
        validate.optional_text(o, "error_message", self.error_message)
        if self.operation_name is not None:
            validate.text(o, "operation_name", self.operation_name)
        validate.boolean(o, "use_signal", self.use_signal)

    def error(self, operation: str | None = None) -> BaseException:
        """The exception to raise for an expired limit."""
        name = self.operation_name or operation
        cls = self.exception_class
        if issubclass(cls, OperationTimeoutError):
            return cls(self.error_message, operation=name, timeout=self.timeout_seconds)
        message = self.error_message or OperationTimeoutError(
            operation=name, timeout=self.timeout_seconds).args[0]
        return cls(message)


def _config(value: TimeoutConfig | float | None, options: TimeoutOptions) -> TimeoutConfig:
    if isinstance(value, TimeoutConfig):
        if options:
            raise TypeError(f"pass either a TimeoutConfig or options, not both: {options!r}")
        return value
    if value is not None:
        if "timeout_seconds" in options:
            raise TypeError("timeout given twice: positionally and as timeout_seconds")
        options["timeout_seconds"] = value
    if "timeout_seconds" not in options:
        raise TypeError("a timeout needs timeout_seconds (or a TimeoutConfig)")
    return TimeoutConfig(**options)


# --- mechanisms --------------------------------------------------------------------------


async def await_with_timeout(
    awaitable: Awaitable[T],
    seconds: float,
    clock: Clock,
    operation: str | None = None,
    config: TimeoutConfig | None = None,
    events: Listeners | None = None,
) -> T:
    """Await ``awaitable``, cancelling it after ``seconds``."""
    expire = _expiry(operation, config, events)
    result: T = await limiter(lambda: awaitable, seconds, clock, operation, expire)()
    return result


def _expiry(operation: str | None, config: TimeoutConfig | None,
            events: Listeners | None) -> Expire:
    """:func:`_expired` for one operation, as the async limiter calls it."""

    def expire(seconds: float, own: float | None) -> BaseException:
        return _expired(seconds, operation, config, events, own)

    return expire


def _expired(seconds: float, operation: str | None, config: TimeoutConfig | None,
             events: Listeners | None, own: float | None = None) -> BaseException:
    """Report a timeout and return the error to raise for it. ``own`` is the
    timeout's own limit when an earlier deadline cut it to ``seconds``."""
    targets = events.of(TimedOut) if events is not None else ()
    if targets:
        deliver(targets, TimedOut("timeout", operation, seconds))
    if should_log(logging.WARNING):
        logger.warning("%s: %s after %gs", operation or "operation",
                       "timed out" if own is None else "deadline ran out", seconds,
                       extra={"operation": operation, "timeout": seconds,
                              "outcome": "timeout"})
    if own is not None:
        # The deadline is not this timeout's: its exception_class does not apply.
        name = (config.operation_name if config is not None else None) or operation
        return DeadlineExceededError(operation=name, timeout=seconds, limit=own)
    return (config.error(operation) if config is not None
            else OperationTimeoutError(operation=operation, timeout=seconds))


class _Done(threading.Event):
    """Set when the worker has finished.

    The worker starts the call only once the clock first looks at this event. A
    clock arms its deadline before it looks, so the work cannot consume time (on
    a :class:`~buttress.testing.VirtualClock`, by sleeping on it) before the
    deadline exists; every conforming clock looks, so the worker always starts.
    """

    def __init__(self) -> None:
        super().__init__()
        self.watched = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.watched.set()
        return super().wait(timeout)

    def is_set(self) -> bool:
        self.watched.set()
        return super().is_set()


class TimeoutPoolExhaustedError(BulkheadFullError):
    """A sync call with a timeout was refused, not started: every worker thread
    of the timeout pool is busy (most likely with calls that overran their
    timeout and still hang).

    A :class:`~buttress.BulkheadFullError`, since the pool is a bulkhead around
    every sync timeout: code that sheds load on a full bulkhead sheds it here
    too, and metrics count it as a rejection. ``max_workers`` is the pool's
    size (see :func:`set_max_workers`), ``operation`` the refused call.
    """

    def __init__(self, max_workers: int, operation: str | None = None) -> None:
        self.name = "buttress-timeout-pool"
        self.max_concurrent = self.max_workers = max_workers
        self.max_queue = 0
        self.waited = False
        self.operation = operation
        what = f"operation {operation!r}" if operation else "a call"
        ButtressError.__init__(
            self, f"sync timeout pool exhausted: all {max_workers} worker threads are busy "
                  f"(calls that overran their timeout keep theirs until they end), so {what} "
                  f"was not started; see buttress.timeout.set_max_workers")


def call_with_thread_timeout(
    fn: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    seconds: float,
    clock: Clock,
    operation: str | None = None,
    config: TimeoutConfig | None = None,
    events: Listeners | None = None,
) -> T:
    """Run ``fn`` in a worker thread and stop waiting for it after ``seconds``.

    The worker runs in a copy of the caller's context (contextvars carry over).
    A worker that overruns is left to finish in the background (a daemon
    thread); Python offers no safe way to stop it. A call that has not started
    when its caller stops waiting (still queued behind a bulkhead in the
    worker) never starts. With every worker of the pool busy the call is
    refused with :class:`TimeoutPoolExhaustedError`.

    The limit is the earlier of ``seconds`` and the current call's deadline,
    which the worker sees tightened to it (:func:`~buttress.remaining_time`).
    """
    own: float | None = seconds
    call, seconds, bound = within(CURRENT.get(), seconds, clock, clock.monotonic(), operation)
    if not bound:
        own = None
    elif seconds <= 0.0:
        raise _expired(seconds, operation, config, events, own)  # never started
    context = contextvars.copy_context()
    name = f"buttress-timeout-{operation or getattr(fn, '__name__', 'call')}"
    caller = Caller()
    outer = current_caller()  # this call runs in the worker of another timed call
    if outer is not None:
        outer.wake_on_give_up(caller.give_up)
    try:
        if type(clock) is SystemClock:
            # On real time the outcome comes back through a queue: half the cost of
            # the Event handshake a pluggable clock needs (about 40 µs instead of 80
            # for a call that returns at once, on a 2-core machine).
            results: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()

            def work_now() -> None:
                if caller.gave_up:
                    return  # the caller stopped waiting before the worker got here
                try:
                    results.put((True, context.run(run_for, caller, call, fn, args, kwargs)))
                except BaseException as exc:  # handed to the caller below
                    results.put((False, exc))

            if not workers.shared.run(work_now, name):
                raise _exhausted(operation, events)
            try:
                ok, value = results.get(timeout=seconds)
            except queue.Empty:
                raise _expired(seconds, operation, config, events, own) from None
        else:
            outcome: list[tuple[bool, Any]] = []
            done = _Done()

            def work() -> None:
                try:
                    done.watched.wait()
                    if not caller.gave_up:
                        outcome.append((True, context.run(run_for, caller, call, fn, args, kwargs)))
                except BaseException as exc:  # handed to the caller below
                    outcome.append((False, exc))
                finally:
                    done.set()

            if not workers.shared.run(work, name):
                raise _exhausted(operation, events)
            if not clock.wait(done, seconds):
                raise _expired(seconds, operation, config, events, own)
            ok, value = outcome[0]
    except BaseException:
        # Timed out, or interrupted while waiting (Ctrl-C, a signal): either way
        # nobody waits for the call any more.
        caller.give_up()
        raise
    finally:
        if outer is not None:
            outer.forget(caller.give_up)
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


def _exhausted(operation: str | None, events: Listeners | None) -> TimeoutPoolExhaustedError:
    targets = events.of(CallRejected) if events is not None else ()
    if targets:
        deliver(targets, CallRejected("timeout", operation, "workers exhausted", 0.0))
    return TimeoutPoolExhaustedError(workers.shared.max_workers, operation)


def call_with_signal_timeout(
    fn: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    config: TimeoutConfig,
    operation: str | None = None,
    events: Listeners | None = None,
) -> T:
    """Run ``fn`` in this thread, interrupting it with ``SIGALRM`` after the limit.

    Nested limits keep every deadline: an outer timer (another signal timeout,
    or any ``setitimer``/``alarm`` with a handler) that is due before this
    limit still fires on time, through its own handler; one due later is
    re-armed, for its remaining time, when this call ends.

    The limit is the earlier of the config's and the current call's deadline
    (measured on real time, as the signal is), which the call sees tightened
    to it (:func:`~buttress.remaining_time`).
    """
    if not hasattr(signal, "SIGALRM"):
        raise RuntimeError("TimeoutConfig(use_signal=True) needs SIGALRM, which this "
                           "platform lacks; use the default thread-based timeout")
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("TimeoutConfig(use_signal=True) only works in the main thread; "
                           "use the default thread-based timeout elsewhere")
    own: float | None = config.timeout_seconds
    start = time.monotonic()
    call, seconds, bound = within(CURRENT.get(), config.timeout_seconds, SYSTEM_CLOCK, start,
                                  operation)
    if not bound:
        own = None
    elif seconds <= 0.0:
        raise _expired(seconds, operation, config, events, own)  # never started
    # ITIMER_REAL is one timer per process: an outer limit is read here and
    # given back at the end, never lost.
    outer_delay, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    deadline = start + seconds
    outer_at = start + outer_delay if outer_delay > 0 else None
    outer_due_first = outer_at is not None and outer_at <= deadline
    outer_delivered = False

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        nonlocal outer_due_first, outer_delivered
        if outer_due_first:
            # The outer timer's moment: hand the signal to its handler (an outer
            # buttress timeout raises there). A handler that is not a function
            # (SIG_DFL, SIG_IGN) gets it when this call ends.
            outer_due_first = False
            if callable(previous):
                outer_delivered = True
                previous(signum, frame)
            # The outer handler returned: this limit still stands.
            signal.setitimer(signal.ITIMER_REAL, max(deadline - time.monotonic(), _SOON))
            return
        raise _expired(seconds, operation, config, events, own)

    token = CURRENT.set(call)
    try:
        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, outer_delay if outer_due_first else seconds)
        try:
            return fn(*args, **kwargs)
        finally:
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
            finally:
                # Nested, so that an alarm landing just before the timer is stopped
                # still leaves the outer handler and timer in place.
                signal.signal(signal.SIGALRM, previous)
                if outer_at is not None and not outer_delivered:
                    signal.setitimer(signal.ITIMER_REAL,
                                     max(outer_at - time.monotonic(), _SOON), outer_interval)
                elif outer_at is not None and outer_interval > 0:
                    signal.setitimer(signal.ITIMER_REAL, outer_interval, outer_interval)
    finally:
        CURRENT.reset(token)


_SOON: Final = 1e-6
"""The shortest timer: an alarm that is already due fires at once."""


# --- the strategy ------------------------------------------------------------------------


class _Block(NamedTuple):
    """One ``async with`` of a :class:`Timeout`: what its exit needs."""

    limit: AsyncTimeout
    token: contextvars.Token[CallContext | None]
    seconds: float  # the limit in force: the earlier of its own and the deadline
    own: float | None  # its own limit, when the deadline cut it short
    watch: Watch | None  # the block's operation, when it reports one


class Timeout(Strategy):
    """The timeout strategy: a decorator, a pipeline stage, or ``async with``::

        @Timeout(5.0)
        async def fetch() -> bytes: ...

        async with Timeout(5.0):
            await slow()
    """

    __slots__ = ("_active", "clock", "config", "events")

    order = 40

    def __init__(
        self,
        config: TimeoutConfig | float | None = None,
        *,
        clock: Clock | None = None,
        **options: Unpack[TimeoutOptions],
    ) -> None:
        self.config = _config(config, options)
        self.clock = SYSTEM_CLOCK if clock is None else clock
        #: This timeout's listener hub: ``timeout.events.add(listener, *kinds)``.
        self.events = Listeners(GLOBAL)
        self._active: contextvars.ContextVar[list[_Block]] = contextvars.ContextVar(
            "buttress.timeout")

    def _given_name(self) -> str | None:
        """The name this strategy gives its calls, if any (see :func:`operation_name_of`)."""
        return self.config.operation_name

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        config, clock, events = self.config, self.clock, self.events
        operation = config.operation_name or operation_name(fn)
        if config.use_signal:

            def limited_by_signal(*args: Any, **kwargs: Any) -> Any:
                return call_with_signal_timeout(fn, args, kwargs, config, operation, events)

            return limited_by_signal

        def limited(*args: Any, **kwargs: Any) -> Any:
            return call_with_thread_timeout(fn, args, kwargs, config.timeout_seconds, clock,
                                            operation, config, events)

        return limited

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        return self._limiter(fn, None, None)

    def _heard_async(self, fn: Callable[..., Awaitable[Any]], hub: Listeners,
                     report: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        return self._limiter(fn, hub, report)

    def _limiter(self, fn: Callable[..., Awaitable[Any]], hub: Listeners | None,
                 report: Callable[..., Awaitable[Any]] | None,
                 steps: Steps | None = None) -> Callable[..., Awaitable[Any]]:
        config = self.config
        operation = config.operation_name or operation_name(fn)
        return limiter(None if steps is not None else fn, config.timeout_seconds, self.clock,
                       operation, _expiry(operation, config, self.events), hub, report, steps)

    def _around(self, inner: Strategy) -> Strategy | None:
        # Only what both classes' own wrappers do is fused: a subclass that
        # wraps differently keeps its layer.
        if (type(self).wrap_async is not Timeout.wrap_async
                or type(inner)._steps_async is Strategy._steps_async):
            return None
        return _Around(self, inner)

    async def __aenter__(self) -> Timeout:
        config, clock = self.config, self.clock
        watch = None
        if self.events.active:  # the block is one operation, when it is the outermost layer
            watch = begin_operation(self.events, config.operation_name or "timeout", clock)
        try:
            own = config.timeout_seconds
            call, seconds, bound = within(CURRENT.get(), own, clock, clock.monotonic(),
                                          config.operation_name)
            if bound and seconds <= 0.0:
                raise _expired(seconds, config.operation_name, config, self.events, own)
            limit = clock.timeout(seconds)
            await limit.__aenter__()
        except BaseException as exc:
            if watch is not None:
                end_operation(watch, exc)
            raise
        token = CURRENT.set(call)
        stack = self._active.get(None)
        self._active.set([*(stack or ()),
                          _Block(limit, token, seconds, own if bound else None, watch)])
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        stack = self._active.get()
        block = stack[-1]
        self._active.set(stack[:-1])
        CURRENT.reset(block.token)
        limit = block.limit
        try:
            try:
                await limit.__aexit__(exc_type, exc, tb)
            except TimeoutError as expired:
                if not limit.expired():
                    raise
                config = self.config
                raise _expired(block.seconds, config.operation_name, config, self.events,
                               block.own) from expired
        except BaseException as error:
            if block.watch is not None:
                end_operation(block.watch, error)
            raise
        if block.watch is not None:
            end_operation(block.watch, exc)

    def __repr__(self) -> str:
        return f"Timeout({self.config.timeout_seconds}s)"


class _Around(Strategy):
    """A timeout and the strategy right inside it as one layer of a pipeline:
    the async path drives the inner layer as a generator (its ``_steps_async``)
    in the timeout's own coroutine, sparing the inner coroutine frame, its
    arguments and its keyword dict (about 1,300 instructions per call, counted
    with callgrind on CPython 3.11). The sync path, and everything the call
    does, are those of the two layers."""

    __slots__ = ("inner", "timeout")

    def __init__(self, timeout: Timeout, inner: Strategy) -> None:
        self.timeout = timeout
        self.inner = inner

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self.timeout.wrap(functools.wraps(fn)(self.inner.wrap(fn)))

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        return self._limiter(fn, None, None)

    def _heard_async(self, fn: Callable[..., Awaitable[Any]], hub: Listeners,
                     report: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        return self._limiter(fn, hub, report)

    def _steps_async(self, fn: Callable[..., Awaitable[Any]]) -> Steps | None:
        steps = self.inner._steps_async(fn)
        if steps is None:
            return None
        timeout = self.timeout
        config = timeout.config
        operation = config.operation_name or operation_name(fn)
        return limiter_steps(config.timeout_seconds, timeout.clock, operation,
                             _expiry(operation, config, timeout.events), steps)

    def _limiter(self, fn: Callable[..., Awaitable[Any]], hub: Listeners | None,
                 report: Callable[..., Awaitable[Any]] | None) -> Callable[..., Awaitable[Any]]:
        steps = self.inner._steps_async(fn)
        if steps is None:  # the inner layer has no generator form after all: two layers
            return self.timeout._limiter(functools.wraps(fn)(self.inner.wrap_async(fn)), hub,
                                         report)
        return self.timeout._limiter(fn, hub, report, steps)


def timeout_operation(
    seconds: float, *, operation: str | None = None, clock: Clock | None = None
) -> Timeout:
    """An async context manager that cancels its body after ``seconds``::

        async with timeout_operation(30.0):
            result = await complex_computation()
    """
    return Timeout(seconds, operation_name=operation, clock=clock)


def timeout(
    config: TimeoutConfig | float | None = None,
    /,
    *,
    clock: Clock | None = None,
    **options: Unpack[TimeoutOptions],
) -> Timeout:
    """Timeout decorator for sync and async functions::

        @timeout(timeout_seconds=5.0)
        def slow_operation() -> str: ...
    """
    return Timeout(config, clock=clock, **options)


def async_timeout(
    config: TimeoutConfig | float | None = None,
    /,
    *,
    clock: Clock | None = None,
    **options: Unpack[TimeoutOptions],
) -> Callable[[F], F]:
    """Timeout decorator for coroutine functions (``TypeError`` for anything else)::

        @async_timeout(timeout_seconds=5.0)
        async def slow_operation_async() -> str: ...
    """
    strategy = Timeout(config, clock=clock, **options)

    def decorate(fn: F) -> F:
        if not is_async_callable(fn):
            raise TypeError(f"async_timeout needs a coroutine function, got {fn!r}; "
                            "use timeout() for sync functions")
        return strategy(fn)

    return decorate
