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

import asyncio
import contextvars
import functools
import inspect
import logging
import sys
import types
from collections.abc import Awaitable, Callable
from typing import Any, Final, Self, TypeVar, Unpack

from buttress._core import live, operation
from buttress._core.breaker_machine import (
    DISABLED,
    REJECT,
    BreakerMachine,
    CircuitState,
    Transition,
)
from buttress._core.breaker_store import BreakerStore, MemoryStore
from buttress._core.clock import SYSTEM_CLOCK, Clock, reader
from buttress._core.errors import CircuitBreakerError
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
from buttress.breaker_blocks import BreakerBlocks, _Frame
from buttress.breaker_config import (
    _FAILURE,
    _IGNORED,
    _SUCCESS,
    CircuitBreakerConfig,
    CircuitBreakerState,
    CircuitBreakerStats,
    _mode,
    _Reporter,
    _StateHook,
    _verdict,
)
from buttress.fallback import Fallback
from buttress.options import _BreakerTuning
from buttress.timeout import Timeout

__all__ = [
    "BreakerMachine", "CircuitBreaker", "CircuitBreakerConfig", "CircuitBreakerState",
    "CircuitBreakerStats", "CircuitState",
]

F = TypeVar("F", bound=Callable[..., Any])
StateListener = Callable[["CircuitBreaker", CircuitState, CircuitState], object]



_OPEN: Final = CircuitState.OPEN  # a module global: an Enum member read costs 0.1 us
_ERROR: Final = CircuitBreakerError
_new_error: Final = BaseException.__new__  # CircuitBreakerError.rejecting without its frame
# call()/acall() ask check_call only about what is not a plain function, nor a
# generator or coroutine function by its code flags (a frame less per call).
_FUNCTION: Final = types.FunctionType
_GENERATORS: Final = inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR
_NOT_PLAIN: Final = inspect.CO_COROUTINE | _GENERATORS
_MARKS_COROUTINES: Final = sys.version_info >= (3, 12)  # inspect.markcoroutinefunction


class CircuitBreaker(BreakerBlocks, Strategy):
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
        "__weakref__", "_answer", "_entered", "_exited", "_frames", "_gate", "_lean", "_limit",
        "_rejections",
        "_slow_limit", "_store", "_successes", "_timed", "clock", "config", "events", "name",
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
        # Counters advanced with next(): ~80 instructions less than calling a
        # bound __next__ (a method-wrapper) on every closed-breaker success.
        self._successes = self._store.successes
        self._rejections = self._store.rejections
        if on_state_change is not None:
            self.add_listener(on_state_change)
        # Created on the first ``with`` (most breakers are only ever decorators).
        self._frames: contextvars.ContextVar[_Frame | None] | None = None
        # Made on the first ``async with`` under asyncio (see BreakerBlocks.__aenter__).
        self._entered: asyncio.Future[Self] | None = None
        self._exited: asyncio.Future[None] | None = None
        self._slow_limit = config.slow_call_duration
        # Whether a call's duration is needed (a slow-call rule, a timeout).
        self._timed = config.slow_call_duration is not None or config.timeout is not None
        # The lean decorator serves calls with no timeout, no fallback and no result
        # check: the store's ticket then decides everything else.
        self._lean = (config.timeout is None and config.failure_on_result is None
                      and config.fallback is None)
        # ``timeout=`` and ``fallback=`` are sugar: a Timeout inside the breaker (a
        # call that runs out of time is a failure) and a Fallback around it that
        # answers rejections. Both report on this breaker's hub.
        self._limit: Timeout | None = None
        self._answer: Fallback | None = None
        if config.timeout is not None:
            self._limit = Timeout(config.timeout, clock=self.clock, operation_name=self.name)
            self._limit.events = self.events
        if config.fallback is not None:
            self._answer = Fallback(fallback=config.fallback, exceptions=CircuitBreakerError,
                                    name=self.name)
            self._answer.events = self.events
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
        return CircuitBreakerStats.of(self.name, self._store.counts(self.clock.monotonic()),
                                      self.config.failure_threshold)

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
        next(self._rejections)
        remaining = until - now
        if self.events.active:
            targets = self.events.of(CallRejected)
            if targets:
                deliver(targets, CallRejected("circuit_breaker", self.name, _OPEN, remaining))
        # CircuitBreakerError.rejecting inlined: a frame less per rejection.
        cause = self._gate.tripped_by
        if cause is None:
            return _new_error(_ERROR, self.name, _OPEN, remaining)
        error: CircuitBreakerError = _new_error(_ERROR, self.name, _OPEN, remaining, cause)
        error.__cause__ = cause
        return error

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
            next(self._successes)
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

    # call paths

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        if self._answer is not None and is_async_callable(self.config.fallback):
            raise TypeError(
                f"circuit breaker {self.name!r} has an async fallback "
                f"{self.config.fallback!r}, which a sync call can not await"
            )
        inner = fn if self._limit is None else self._limit.wrap(fn)
        protected = self._wrap_sync(inner, None)
        return protected if self._answer is None else self._answer.wrap(protected)

    def _heard(self, fn: Callable[..., Any], hub: Listeners,
               report: Callable[..., Any]) -> Callable[..., Any] | None:
        # The outermost layer of a pipeline: the lean wrapper itself takes
        # ``report`` while ``hub`` (the pipeline's) is heard.
        if not self._lean or type(self).wrap is not CircuitBreaker.wrap:
            return None
        return self._wrap_sync(fn, report, hub)

    def _heard_async(self, fn: Callable[..., Awaitable[Any]], hub: Listeners,
                     report: Callable[..., Awaitable[Any]]
                     ) -> Callable[..., Awaitable[Any]] | None:
        if not self._lean or type(self).wrap_async is not CircuitBreaker.wrap_async:
            return None
        return self._wrap_async(fn, report, hub)

    def _wrap_sync(self, fn: Callable[..., Any], report: Callable[..., Any] | None,
                   heard: Listeners | None = None) -> Callable[..., Any]:
        # ``report`` (a decorator, or the outermost layer of a pipeline) is
        # ``fn`` under this breaker, reported as one operation; it is taken only
        # while ``heard`` (this breaker's hub unless given) has listeners, so a
        # call nobody hears costs one attribute read here instead of a wrapper frame.
        if self._lean:
            gate = self._gate
            successes = self._successes
            rejections = self._rejections
            name = self.name
            # The pipeline's hub hears this breaker's listeners too: when it is
            # heard, a rejection takes _open_rejection, which does the same.
            hub = self.events if heard is None else heard
            monotonic = reader(self.clock)

            def protected(*args: Any, **kwargs: Any) -> Any:
                if hub.active and report is not None:
                    return report(*args, **kwargs)
                ticket = gate.ticket
                if ticket >= 0:
                    try:
                        # fn(*args) when there are no keywords: fn(**kwargs) copies the
                        # dict, ~200 instructions of a ~2,000-instruction wrapper.
                        result = fn(*args, **kwargs) if kwargs else fn(*args)
                    except Exception as exc:
                        self._failed(ticket, exc, 0.0)
                        raise
                    if gate.ticket == ticket:
                        next(successes)
                    else:
                        self._succeeded(ticket, 0.0)
                    return result
                now = monotonic()
                until = gate.open_until
                if now < until:  # open: rejected here, without another frame
                    if hub.active:
                        raise self._open_rejection(now, until)
                    # _open_rejection and CircuitBreakerError.rejecting inlined
                    next(rejections)
                    cause = gate.tripped_by
                    if cause is None:
                        raise _new_error(_ERROR, name, _OPEN, until - now)
                    raise _new_error(_ERROR, name, _OPEN, until - now, cause) from cause
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
                raise self._open_rejection(now, until)
            epoch = self._store.admit(now)
            if epoch == REJECT:
                raise self._rejection(now)
        if not self._timed:
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                self._failed(epoch, exc, 0.0)
                raise
            if self._lean and self._gate.ticket == epoch:
                next(self._successes)
            else:
                self._returned(epoch, result, 0.0)
            return result
        clock = self.clock
        start = clock.monotonic()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._failed(epoch, exc, clock.monotonic() - start)
            raise
        self._returned(epoch, result, clock.monotonic() - start)
        return result

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        inner = fn if self._limit is None else self._limit.wrap_async(fn)
        protected = self._wrap_async(inner, None)
        return protected if self._answer is None else self._answer.wrap_async(protected)

    def _wrap_async(self, fn: Callable[..., Awaitable[Any]],
                    report: Callable[..., Awaitable[Any]] | None,
                    heard: Listeners | None = None) -> Callable[..., Awaitable[Any]]:
        # See _wrap_sync: the operation is reported only while somebody listens.
        if self._lean:
            gate = self._gate
            successes = self._successes
            rejections = self._rejections
            name = self.name
            # The pipeline's hub hears this breaker's listeners too: when it is
            # heard, a rejection takes _open_rejection, which does the same.
            hub = self.events if heard is None else heard
            monotonic = reader(self.clock)

            async def protected(*args: Any, **kwargs: Any) -> Any:
                if hub.active and report is not None:
                    return await report(*args, **kwargs)
                ticket = gate.ticket
                if ticket >= 0:
                    try:
                        result = await (fn(*args, **kwargs) if kwargs else fn(*args))
                    except Exception as exc:
                        self._failed(ticket, exc, 0.0)
                        raise
                    if gate.ticket == ticket:
                        next(successes)
                    else:
                        self._succeeded(ticket, 0.0)
                    return result
                now = monotonic()
                until = gate.open_until
                if now < until:  # as in _wrap_sync
                    if hub.active:
                        raise self._open_rejection(now, until)
                    next(rejections)
                    cause = gate.tripped_by
                    if cause is None:
                        raise _new_error(_ERROR, name, _OPEN, until - now)
                    raise _new_error(_ERROR, name, _OPEN, until - now, cause) from cause
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
                raise self._open_rejection(now, until)
            epoch = self._store.admit(now)
            if epoch == REJECT:
                raise self._rejection(now)
        if not self._timed:
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                self._failed(epoch, exc, 0.0)
                raise
            if self._lean and self._gate.ticket == epoch:
                next(self._successes)
            else:
                self._returned(epoch, result, 0.0)
            return result
        clock = self.clock
        start = clock.monotonic()
        try:
            result = await fn(*args, **kwargs)
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
        if (fn.__class__ is not _FUNCTION or fn.__code__.co_flags & _NOT_PLAIN
                or _MARKS_COROUTINES) and check_call(fn, "CircuitBreaker"):
            raise TypeError(f"{fn!r} is a coroutine function: use `await breaker.acall(fn)`")
        if self._lean and not self.events.active:
            ticket = self._gate.ticket
            if ticket >= 0:  # closed: _call_guarded inlined (a frame less, ~1k instructions)
                try:
                    result = fn(*args, **kwargs) if kwargs else fn(*args)
                except BaseException as exc:
                    self._failed(ticket, exc, 0.0)
                    raise
                if self._gate.ticket == ticket:
                    next(self._successes)
                else:
                    self._succeeded(ticket, 0.0)
                return result
            now = self.clock.monotonic()
            until = self._gate.open_until
            if now < until:  # open: refused here, not two frames down
                raise self._open_rejection(now, until)
        if self.events.active and operation.current() is None and operation.heard(self.events):
            return operation.report_call(  # one operation, named after the breaker
                self.events, self.name, self.clock, self.call, fn, args, kwargs)
        limit, answer = self._limit, self._answer
        if limit is None and answer is None:
            return self._call_guarded(fn, args, kwargs)
        # An async fallback can not answer a sync call: its rejection is raised.
        inner = fn if limit is None else limit.wrap(fn)
        if answer is None or is_async_callable(self.config.fallback):
            return self._call_guarded(inner, args, kwargs)
        return answer.wrap(self._wrap_sync(inner, None))(*args, **kwargs)

    async def acall(self, fn: Callable[..., Awaitable[Any]], /, *args: Any,
                    **kwargs: Any) -> Any:
        """Await ``fn(*args, **kwargs)`` through the breaker."""
        if fn.__class__ is not _FUNCTION or fn.__code__.co_flags & _GENERATORS:
            check_call(fn, "CircuitBreaker")  # refuses generator functions
        if self._lean and not self.events.active:
            ticket = self._gate.ticket
            if ticket >= 0:  # closed: _acall_guarded inlined (a coroutine less, ~1.5k instructions)
                try:
                    result = await (fn(*args, **kwargs) if kwargs else fn(*args))
                except BaseException as exc:
                    self._failed(ticket, exc, 0.0)
                    raise
                if self._gate.ticket == ticket:
                    next(self._successes)
                else:
                    self._succeeded(ticket, 0.0)
                return result
            now = self.clock.monotonic()
            until = self._gate.open_until
            if now < until:  # open: refused here, not two frames down
                raise self._open_rejection(now, until)
        if self.events.active and operation.current() is None and operation.heard(self.events):
            return await operation.areport_call(self.events, self.name, self.clock, self.acall,
                                                fn, args, kwargs)
        if self._limit is None and self._answer is None:
            return await self._acall_guarded(fn, args, kwargs)
        return await self.wrap_async(fn)(*args, **kwargs)

    def protect(self, fn: F) -> F:
        """Decorate ``fn`` (sync or async) with this breaker; same as ``@breaker``."""
        return self(fn)

    def __repr__(self) -> str:
        state = self._store.refusal(self.clock.monotonic())[0]
        return f"CircuitBreaker({self.name!r}, state={state.value})"
