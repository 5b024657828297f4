"""Rate limiter: at most ``rate`` calls per second, bursts of up to ``burst``.

Two algorithms with one behaviour and two state representations:

* ``"gcra"`` (the generic cell rate algorithm, default): one number, the
  theoretical arrival time (TAT) of the next permit. A call at ``now`` may go
  when ``max(TAT, now) + n/rate - burst/rate <= now``; going moves TAT on by
  ``n/rate``.
* ``"token_bucket"``: ``burst`` tokens refilled at ``rate`` per second; a call
  takes ``n``.

A call that finds no permit either is refused at once with
:class:`~buttress.RateLimitedError` (its ``retry_after`` says when a permit
will be free) or, when ``max_wait`` allows, *reserves* the next permit and
waits exactly until it is due: the wait is computed, not polled, so waiters
leave in order and on time, with no padding and no background thread.

Invariants:

* The state changes under one lock, held for a few arithmetic operations and
  never while waiting or calling: :meth:`RateLimiter.try_acquire` takes the
  lock blocking, so it never fails merely because another thread was in the
  middle of an update (a ``lock.acquire(blocking=False)`` would).
* A reservation whose waiter gives up (cancelled task, a sync timeout's
  caller gone, an interrupt) is returned when no later reservation was made
  on top of it; otherwise the permit is lost, which only slows the limiter
  down (the rate is never exceeded).
* A wait that would end past the call's deadline (``remaining_time()``) is
  never started: the call is refused at once, reason ``"deadline"``.
* The policy (:class:`RateMachine`) takes ``now`` as a number; the limiter
  reads its clock (a :class:`~buttress.testing.VirtualClock` in tests).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from buttress._core import caller as _caller
from buttress._core import forksafe, validate
from buttress._core.clock import SYSTEM_CLOCK, Clock
from buttress._core.context import CURRENT
from buttress._core.errors import ConfigurationError, OperationTimeoutError, RateLimitedError
from buttress._core.events import GLOBAL, CallRejected, Listeners, deliver
from buttress._core.strategy import Strategy

__all__ = ["RateLimitedError", "RateLimiter", "RateLimiterConfig", "RateMachine"]

Algorithm = Literal["gcra", "token_bucket"]
_ALGORITHMS = ("gcra", "token_bucket")


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimiterConfig:
    """``rate`` permits per second (required: no default is safe), bursts of up
    to ``burst`` permits at once, by ``algorithm`` ("gcra" or
    "token_bucket"). ``max_wait`` is how long a call may wait for its permit:
    0 (the default) refuses at once, ``None`` waits as long as needed.

    .. versionadded:: 0.3
    """

    rate: float
    burst: int = 1
    algorithm: Algorithm = "gcra"
    max_wait: float | None = 0.0
    name: str | None = None

    def __post_init__(self) -> None:
        o = "RateLimiterConfig"
        validate.number(o, "rate", self.rate, minimum=0.0, strict_minimum=True)
        validate.integer(o, "burst", self.burst, minimum=1)
        if self.algorithm not in _ALGORITHMS:
            raise ConfigurationError(f"{o}.algorithm", self.algorithm,
                                     "'gcra' or 'token_bucket'")
        validate.optional_number(o, "max_wait", self.max_wait, minimum=0.0,
                                 maximum=threading.TIMEOUT_MAX)
        if self.name is not None:
            validate.text(o, "name", self.name)


class RateMachine:
    """The sans-IO limiter: decides from ``now`` (seconds) alone. Not locked.

    >>> machine = RateMachine(RateLimiterConfig(rate=2, burst=2), now=0.0)
    >>> machine.take(0.0, 1, 0.0), machine.take(0.0, 1, 0.0)   # the burst
    ((True, 0.0), (True, 0.0))
    >>> machine.take(0.0, 1, 0.0)     # refused: a permit is free in 0.5 s
    (False, 0.5)
    >>> machine.take(0.0, 1, None)    # reserved: go in 0.5 s
    (True, 0.5)
    """

    __slots__ = ("_gcra", "_interval", "_last", "_tau", "burst", "rate", "serial", "state")

    def __init__(self, config: RateLimiterConfig, now: float) -> None:
        self.rate = config.rate
        self.burst = config.burst
        self._interval = 1.0 / config.rate
        self._tau = config.burst / config.rate
        self._gcra = config.algorithm == "gcra"
        #: GCRA: the theoretical arrival time; token bucket: the tokens.
        self.state = now if self._gcra else float(config.burst)
        self._last = now  # token bucket: when the tokens were last refilled
        #: Counts the permits taken, so a refund can tell whether it is the last.
        self.serial = 0

    def _refill(self, now: float) -> None:
        if now > self._last:
            self.state = min(float(self.burst), self.state + (now - self._last) * self.rate)
            self._last = now

    def wait_for(self, now: float, n: int = 1) -> float:
        """Seconds from ``now`` until ``n`` permits are free (0: now)."""
        if self._gcra:
            return max(0.0, max(self.state, now) + n * self._interval - self._tau - now)
        self._refill(now)
        return max(0.0, (n - self.state) / self.rate)

    def take(self, now: float, n: int, max_wait: float | None) -> tuple[bool, float]:
        """Take ``n`` permits at ``now``: ``(True, wait)`` when taken (the caller
        goes after ``wait`` seconds), ``(False, retry_after)`` when the wait
        would be longer than ``max_wait`` (None: no limit)."""
        wait = self.wait_for(now, n)
        if wait > 0.0 and max_wait is not None and wait > max_wait:
            return False, wait
        if self._gcra:
            self.state = max(self.state, now) + n * self._interval
        else:
            self.state -= n
        self.serial += 1
        return True, wait

    def refund(self, n: int, serial: int) -> bool:
        """Give back ``n`` permits taken as number ``serial``, if none was taken
        since; returns whether they were given back."""
        if serial != self.serial:
            return False
        self.serial -= 1
        if self._gcra:
            self.state -= n * self._interval
        else:
            self.state += n
        return True


class RateLimiter(Strategy):
    """The rate limiter: a decorator, a pipeline stage, or explicit permits::

        limit = RateLimiter(rate=50, burst=10, max_wait=1.0, name="partner-api")

        @limit
        async def call_partner() -> dict: ...

        if limit.try_acquire():       # non-blocking
            send()

    One limiter is shared by sync and async callers alike. In a pipeline it
    sits inside the breaker and outside the timeout, so waiting for a permit
    does not eat the attempt's time limit.

    .. versionadded:: 0.3
    """

    __slots__ = ("__weakref__", "_lock", "_machine", "_monotonic", "clock", "config", "events",
                 "name")

    order = 35

    def __init__(self, config: RateLimiterConfig | None = None, *, clock: Clock | None = None,
                 **options: Any) -> None:
        if config is not None and options:
            raise TypeError("pass a RateLimiterConfig or keyword options, not both")
        if config is not None and not isinstance(config, RateLimiterConfig):
            raise TypeError(f"RateLimiter config must be a RateLimiterConfig, got {config!r}")
        self.config = RateLimiterConfig(**options) if config is None else config
        self.name = self.config.name
        self.clock = SYSTEM_CLOCK if clock is None else clock
        self._lock = forksafe.lock()
        self._machine = RateMachine(self.config, self.clock.monotonic())
        # The system clock's own method is a Python frame around time.monotonic.
        self._monotonic = time.monotonic if self.clock is SYSTEM_CLOCK else self.clock.monotonic
        #: This limiter's listener hub.
        self.events = Listeners(GLOBAL)

    def _given_name(self) -> str | None:
        return self.name

    def _check(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= self.config.burst:
            raise ValueError(f"permits must be an int in 1..burst ({self.config.burst}), "
                             f"got {n!r}")

    def retry_after(self, n: int = 1) -> float:
        """Seconds until ``n`` permits are free (0: now). Takes nothing."""
        self._check(n)
        with self._lock:
            return self._machine.wait_for(self.clock.monotonic(), n)

    def try_acquire(self, n: int = 1) -> bool:
        """Take ``n`` permits if they are free now; never waits for them (the
        lock is only ever held for a few arithmetic operations)."""
        if n.__class__ is not int or n != 1:
            self._check(n)
        machine = self._machine
        # The machine's take(now, n, 0.0), inlined: this is the limiter's hot
        # path (python -m benchmarks, rate-limit: 3.3 -> see the commit).
        with self._lock:
            now = self._monotonic()
            if machine._gcra:
                tat = machine.state if machine.state > now else now
                tat += n * machine._interval
                if tat - machine._tau > now:
                    return False
                machine.state = tat
            else:
                if now > machine._last:
                    machine._refill(now)
                if machine.state < n:
                    return False
                machine.state -= n
            machine.serial += 1
            return True

    def _reject(self, retry_after: float, reason: str) -> RateLimitedError:
        targets = self.events.of(CallRejected)
        if targets:
            deliver(targets, CallRejected("rate_limiter", self.name, "limited", retry_after))
        return RateLimitedError(self.name, retry_after, self.config.rate, reason)

    def _reserve(self, n: int, max_wait: float | None) -> tuple[float, int]:
        """Take ``n`` permits, waiting at most ``max_wait`` and never past the
        call's deadline: (the wait, the serial to refund) or RateLimitedError."""
        context = CURRENT.get()
        left = None if context is None else context.remaining()
        limit = max_wait if left is None or (max_wait is not None and max_wait <= left) else left
        with self._lock:
            taken, wait = self._machine.take(self.clock.monotonic(), n, limit)
            serial = self._machine.serial
        if not taken:
            reason = ("no_wait" if max_wait == 0.0 else
                      "max_wait" if limit is max_wait else "deadline")
            raise self._reject(wait, reason)
        return wait, serial

    def _refund(self, n: int, serial: int) -> None:
        with self._lock:
            self._machine.refund(n, serial)

    def acquire(self, n: int = 1, *, max_wait: float | Literal["config"] | None = "config"
                ) -> None:
        """Take ``n`` permits, waiting for them up to ``max_wait`` seconds (the
        config's by default; None: no limit); raise :class:`RateLimitedError`
        when they would come later. The wait is exact and interruptible: a
        sync timeout's caller giving up ends it, and the permit goes back."""
        if not self.try_acquire(n):
            self._wait(n, self.config.max_wait if max_wait == "config" else max_wait)

    def _wait(self, n: int, max_wait: float | None) -> None:
        """:meth:`acquire` once the permits were found taken."""
        wait, serial = self._reserve(n, max_wait)
        if wait <= 0.0:
            return
        caller = _caller.current()
        try:
            if caller is None:
                self.clock.sleep(wait)
                return
            woken = threading.Event()
            caller.wake_on_give_up(woken.set)
            try:
                self.clock.wait(woken, wait)
            finally:
                caller.forget(woken.set)
            if caller.gave_up:
                raise OperationTimeoutError(
                    f"rate limiter {self.name or ''!s}: the caller stopped waiting (its "
                    "timeout expired) while the call waited for a permit; it was not started")
        except BaseException:
            self._refund(n, serial)
            raise

    async def acquire_async(self, n: int = 1, *,
                            max_wait: float | Literal["config"] | None = "config") -> None:
        """The async twin of :meth:`acquire`; cancelling the waiting task gives the
        permit back."""
        if not self.try_acquire(n):
            await self._wait_async(n, self.config.max_wait if max_wait == "config"
                                   else max_wait)

    async def _wait_async(self, n: int, max_wait: float | None) -> None:
        """:meth:`acquire_async` once the permits were found taken."""
        wait, serial = self._reserve(n, max_wait)
        if wait <= 0.0:
            return
        try:
            await self.clock.async_sleep(wait)
        except BaseException:
            self._refund(n, serial)
            raise

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        try_acquire, wait, max_wait = self.try_acquire, self._wait, self.config.max_wait

        def limited(*args: Any, **kwargs: Any) -> Any:
            if not try_acquire():
                wait(1, max_wait)
            return fn(*args, **kwargs)

        return limited

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        try_acquire, wait, max_wait = self.try_acquire, self._wait_async, self.config.max_wait

        async def limited(*args: Any, **kwargs: Any) -> Any:
            if not try_acquire():
                await wait(1, max_wait)
            return await fn(*args, **kwargs)

        return limited

    def __repr__(self) -> str:
        c = self.config
        return (f"RateLimiter(name={c.name!r}, rate={c.rate:g}, burst={c.burst}, "
                f"algorithm={c.algorithm!r}, max_wait={c.max_wait!r})")
