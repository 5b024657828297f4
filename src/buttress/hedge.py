"""Hedged requests: when an attempt is slow, start another; the first success wins.

A tail of slow responses (a GC pause, a cold cache, one bad replica) is cut
by sending a second request once the first has taken longer than most do.
The delay is fixed (``delay``) or a latency ``quantile`` of the successful
attempts observed so far (hedging after the p95 costs about 5 % more
requests). An attempt that fails starts the next one at once. The first
success is returned; the other attempts are cancelled (async) or abandoned
(sync: they run on the bounded worker pool, :mod:`buttress._core.workers`, and
their results are dropped). When every attempt has failed, the last failure
is raised.

Invariants:

* At most ``max_hedges`` extra attempts per call, and each needs the retry
  budget's consent (``budget.try_spend()``) when a budget is given: a budget
  shared with the retries bounds hedges and retries together. A refusal ends
  hedging for that call (the attempts already running go on).
* No hedge starts that can not finish in time: with a deadline on the call
  (:func:`~buttress.remaining_time`), a hedge starts only while more time is
  left than the current hedge delay, the latency a typical attempt needs.
* The latency history is a fixed ring of ``samples`` values; its quantile is
  recomputed every 16 new samples, not per call.
* A sync hedged call runs its attempts on worker threads (the user asked for
  hedging); each attempt runs in a copy of the caller's context, so deadlines
  and call context flow into it. When the pool is full, the call runs
  plainly on the caller's thread, unhedged.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from buttress._core import forksafe, validate, workers
from buttress._core.clock import SYSTEM_CLOCK, Clock
from buttress._core.context import CURRENT
from buttress._core.events import GLOBAL, Event, Listeners, deliver, register_kind
from buttress._core.strategy import Strategy
from buttress.budget import RetryBudget

__all__ = ["Hedge", "HedgeConfig", "HedgeStarted", "LatencyWindow"]

_RECOMPUTE_EVERY = 16


@register_kind
@dataclass(frozen=True, slots=True)
class HedgeStarted(Event):
    """Attempt ``attempt`` (2 or more) of a hedged call started, ``elapsed``
    seconds after the first; ``reason`` is "slow" (the hedge delay passed) or
    "failed" (an attempt failed).

    .. versionadded:: 0.3
    """

    attempt: int
    elapsed: float
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HedgeConfig:
    """``delay``: seconds before a hedge (also used while fewer than
    ``min_samples`` latencies are known when ``quantile`` is set);
    ``quantile``: hedge after this quantile of observed latencies (0.95: the
    p95), None for the fixed delay; ``samples``: latencies kept;
    ``max_hedges``: extra attempts per call; ``hedge_on``: failures that start
    the next attempt at once (others end the call).

    .. versionadded:: 0.3
    """

    delay: float = 0.1
    quantile: float | None = None
    min_samples: int = 20
    samples: int = 1000
    max_hedges: int = 1
    hedge_on: tuple[type[Exception], ...] = (Exception,)
    name: str | None = None

    def __post_init__(self) -> None:
        o = "HedgeConfig"
        validate.number(o, "delay", self.delay, minimum=0.0)
        if self.quantile is not None:
            validate.number(o, "quantile", self.quantile, minimum=0.0, strict_minimum=True,
                            maximum=1.0)
        validate.integer(o, "min_samples", self.min_samples, minimum=1)
        validate.integer(o, "samples", self.samples, minimum=self.min_samples)
        validate.integer(o, "max_hedges", self.max_hedges, minimum=1)
        object.__setattr__(self, "hedge_on",
                           validate.exception_types(o, "hedge_on", self.hedge_on))
        if self.name is not None:
            validate.text(o, "name", self.name)


class LatencyWindow:
    """The last ``size`` latencies and one quantile of them, recomputed every
    16 new values. Not locked: :class:`Hedge` calls it under its lock.

    >>> window = LatencyWindow(size=100, quantile=0.9, min_samples=10)
    >>> for ms in range(1, 101):
    ...     window.add(ms / 1000)
    >>> window.value()
    0.09
    """

    __slots__ = ("_cached", "_next", "_quantile", "_since", "_size", "min_samples", "values")

    def __init__(self, size: int, quantile: float, min_samples: int) -> None:
        self.values: list[float] = []
        self._next = 0
        self._quantile = quantile
        self.min_samples = min_samples
        self._cached: float | None = None
        self._since = 0
        self._size = size

    def add(self, latency: float) -> None:
        """Record one latency (seconds)."""
        if len(self.values) < self._size:
            self.values.append(latency)
        else:
            self.values[self._next] = latency
            self._next = (self._next + 1) % self._size
        self._since += 1

    def value(self) -> float | None:
        """The quantile (nearest rank), or None while fewer than ``min_samples``."""
        if len(self.values) < self.min_samples:
            return None
        if self._cached is None or self._since >= _RECOMPUTE_EVERY:
            ordered = sorted(self.values)
            rank = max(0, min(len(ordered) - 1, int(self._quantile * len(ordered) + 0.5) - 1))
            self._cached = ordered[rank]
            self._since = 0
        return self._cached


class Hedge(Strategy):
    """Hedged requests as a strategy::

        hedge = Hedge(quantile=0.95, delay=0.05, budget=shared_budget)

        @hedge
        async def lookup(key: str) -> bytes: ...

    Use it only for idempotent calls: several attempts may run, and the
    abandoned ones of a sync call run to their end. The hedge reports its
    calls to its ``budget`` (a first attempt, each failure, the success) so
    that the budget refills; a ``Retry`` around it sharing the same budget
    reports the same call again, which a token bucket counts twice: give the
    budget to one of them per call path, or to both knowingly.

    .. versionadded:: 0.3
    """

    __slots__ = ("__weakref__", "_latencies", "_lock", "budget", "clock", "config", "events",
                 "name", "pool")

    order = 22

    def __init__(self, config: HedgeConfig | None = None, *, budget: RetryBudget | None = None,
                 clock: Clock | None = None, pool: workers.WorkerPool | None = None,
                 **options: Any) -> None:
        if config is not None and options:
            raise TypeError("pass a HedgeConfig or keyword options, not both")
        if config is not None and not isinstance(config, HedgeConfig):
            raise TypeError(f"Hedge config must be a HedgeConfig, got {config!r}")
        if budget is not None and not isinstance(budget, RetryBudget):
            raise TypeError(f"Hedge budget must be a RetryBudget, got {budget!r}")
        self.config = HedgeConfig(**options) if config is None else config
        self.name = self.config.name
        #: The budget hedges spend from (None: only ``max_hedges`` bounds them).
        self.budget = budget
        self.clock = SYSTEM_CLOCK if clock is None else clock
        #: The worker pool sync attempts run on (None: the shared pool).
        self.pool = pool
        self._lock = forksafe.lock()
        c = self.config
        self._latencies = (None if c.quantile is None
                           else LatencyWindow(c.samples, c.quantile, c.min_samples))
        #: This strategy's listener hub.
        self.events = Listeners(GLOBAL)

    def _given_name(self) -> str | None:
        return self.name

    @property
    def delay(self) -> float:
        """Seconds a call waits before its next hedge now."""
        if self._latencies is None:
            return self.config.delay
        with self._lock:
            observed = self._latencies.value()
        return self.config.delay if observed is None else observed

    def _record(self, latency: float) -> None:
        if self._latencies is not None:
            with self._lock:
                self._latencies.add(latency)

    def _may_hedge(self, delay: float) -> bool:
        """Whether a hedge may start now: time left for it, and the budget's consent."""
        context = CURRENT.get()
        if context is not None:
            left = context.remaining()
            if left is not None and left <= delay:
                return False
        return self.budget is None or self.budget.try_spend()

    def _started(self, attempt: int, elapsed: float, reason: str) -> None:
        targets = self.events.of(HedgeStarted)
        if targets:
            deliver(targets, HedgeStarted("hedge", self.name, attempt, elapsed, reason))

    def _failed(self, exc: BaseException) -> bool:
        """Report a failed attempt; whether it may be hedged."""
        if not isinstance(exc, self.config.hedge_on):
            return False
        if self.budget is not None:
            self.budget.on_failure()
        return True

    # --- sync -----------------------------------------------------------------------------

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def hedged(*args: Any, **kwargs: Any) -> Any:
            return self._run_sync(fn, args, kwargs)

        return hedged

    def _run_sync(self, fn: Callable[..., Any], args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> Any:
        clock, budget = self.clock, self.budget
        pool = self.pool or workers.shared
        arrived = threading.Event()
        results: deque[tuple[float, bool, Any]] = deque()
        name = f"buttress-hedge-{self.name or 'call'}"

        def launch() -> bool:
            context = contextvars.copy_context()
            start = clock.monotonic()

            def job() -> None:
                try:
                    outcome: tuple[float, bool, Any] = (start, True,
                                                        context.run(fn, *args, **kwargs))
                except BaseException as exc:  # handed to the caller, which decides
                    outcome = (start, False, exc)
                results.append(outcome)
                arrived.set()

            return pool.run(job, name)

        if budget is not None:
            budget.on_request()
        first = clock.monotonic()
        if not launch():
            return self._plain(fn, args, kwargs)
        running, attempts, hedging = 1, 1, True
        last: BaseException | None = None
        while running:
            delay = self.delay
            if not results and not clock.wait(
                    arrived, delay if hedging else threading.TIMEOUT_MAX):
                # Slow: hedge once more if allowed, else wait for what runs.
                hedging = self._hedge_sync(launch, attempts, first, delay, "slow")
                if hedging:
                    running, attempts = running + 1, attempts + 1
                    hedging = attempts <= self.config.max_hedges
                continue
            arrived.clear()
            while results:
                start, ok, value = results.popleft()
                running -= 1
                if ok:
                    self._record(clock.monotonic() - start)
                    if budget is not None:
                        budget.on_success()
                    return value
                last = value
                if not self._failed(value):
                    raise value
                if hedging and attempts <= self.config.max_hedges:
                    if self._hedge_sync(launch, attempts, first, self.delay, "failed"):
                        running, attempts = running + 1, attempts + 1
                    else:
                        hedging = False
        assert last is not None
        raise last

    def _hedge_sync(self, launch: Callable[[], bool], attempts: int, first: float,
                    delay: float, reason: str) -> bool:
        if attempts > self.config.max_hedges or not self._may_hedge(delay):
            return False
        if not launch():
            return False
        self._started(attempts + 1, self.clock.monotonic() - first, reason)
        return True

    def _plain(self, fn: Callable[..., Any], args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> Any:
        """The pool is full: one attempt on the caller's thread."""
        start = self.clock.monotonic()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            if isinstance(exc, Exception):
                self._failed(exc)
            raise
        self._record(self.clock.monotonic() - start)
        if self.budget is not None:
            self.budget.on_success()
        return result

    # --- async ----------------------------------------------------------------------------

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def hedged(*args: Any, **kwargs: Any) -> Any:
            return await self._run_async(fn, args, kwargs)

        return hedged

    async def _wait_first(self, tasks: set[asyncio.Future[Any]],
                          patience: float | None) -> set[asyncio.Future[Any]]:
        if patience is None:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            return done
        try:
            async with self.clock.timeout(patience):
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                return done
        except TimeoutError:
            return {task for task in tasks if task.done()}

    async def _run_async(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...],
                         kwargs: dict[str, Any]) -> Any:
        clock, budget, max_hedges = self.clock, self.budget, self.config.max_hedges
        starts: dict[asyncio.Future[Any], float] = {}

        def launch() -> None:
            task = asyncio.ensure_future(fn(*args, **kwargs))
            starts[task] = clock.monotonic()

        if budget is not None:
            budget.on_request()
        first = clock.monotonic()
        launch()
        attempts, hedging = 1, True
        last: BaseException | None = None
        try:
            while starts:
                delay = self.delay
                done = await self._wait_first(set(starts), delay if hedging else None)
                if not done:
                    hedging = attempts <= max_hedges and self._may_hedge(delay)
                    if hedging:
                        launch()
                        attempts += 1
                        self._started(attempts, clock.monotonic() - first, "slow")
                        hedging = attempts <= max_hedges
                    continue
                for task in done:
                    start = starts.pop(task)
                    if task.cancelled():
                        continue  # cancelled by someone else: not a verdict
                    exc = task.exception()
                    if exc is None:
                        self._record(clock.monotonic() - start)
                        if budget is not None:
                            budget.on_success()
                        return task.result()
                    last = exc
                    if not self._failed(exc):
                        raise exc
                    if hedging and attempts <= max_hedges and self._may_hedge(self.delay):
                        launch()
                        attempts += 1
                        self._started(attempts, clock.monotonic() - first, "failed")
                    else:
                        hedging = False
            if last is None:
                raise asyncio.CancelledError
            raise last
        finally:
            for task in starts:
                task.cancel()
            if starts:
                # Let the losers see their cancellation before the winner returns.
                await asyncio.gather(*starts, return_exceptions=True)

    def __repr__(self) -> str:
        c = self.config
        how = f"quantile={c.quantile:g}" if c.quantile is not None else f"delay={c.delay:g}"
        return f"Hedge(name={c.name!r}, {how}, max_hedges={c.max_hedges})"
