"""Test support: a virtual clock every strategy accepts, and registry resets.

``VirtualClock`` makes waiting instant: ``sleep(d)`` moves the clock forward by
``d`` and records ``d`` in ``sleeps``, so a test can assert the exact backoff
schedule and run a 30 s recovery timeout in no time::

    clock = VirtualClock()

    @retry(max_attempts=3, base_delay=1.0, jitter=0, clock=clock)
    def flaky() -> str: ...

    flaky()
    assert clock.sleeps == [1.0, 2.0]
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final

from buttress._core import forksafe
from buttress._core.testmode import TEST_MODE
from buttress.fault_proxy import FaultProxy

__all__ = [
    "AsyncScriptedCall", "FaultProxy", "ScriptedCall", "TimerHandle", "VirtualClock", "is_testing",
    "reset_registries", "set_testing", "testing",
]


class TimerHandle:
    """A callback scheduled on a :class:`VirtualClock`."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run the callback."""
        self.cancelled = True


class _VirtualTimeout:
    """``asyncio.timeout`` on virtual time: cancels the task when the clock passes
    the deadline, and turns that cancellation into ``TimeoutError`` on exit (the
    same bookkeeping as ``asyncio.Timeout``, so outside cancellation still wins)."""

    def __init__(self, clock: VirtualClock, seconds: float) -> None:
        self._clock = clock
        self._seconds = seconds
        self._expired = False
        self._task: asyncio.Task[object] | None = None
        self._handle: TimerHandle | None = None
        self._cancelling = 0

    def expired(self) -> bool:
        return self._expired

    def _fire(self) -> None:
        assert self._task is not None
        self._expired = True
        self._task.cancel()

    async def __aenter__(self) -> _VirtualTimeout:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("VirtualClock.timeout must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._handle = self._clock.call_later(self._seconds, self._fire)
        return self

    # Typed like the AsyncTimeout protocol (not like asyncio.Timeout) so that
    # VirtualClock type-checks as a Clock wherever a strategy takes one.
    async def __aexit__(self, *exc_info: object) -> None:
        assert self._handle is not None
        assert self._task is not None
        exc_type, exc = (*exc_info, None, None)[:2]
        self._handle.cancel()
        if self._expired and self._task.uncancel() <= self._cancelling and \
                exc_type is asyncio.CancelledError:
            raise TimeoutError from (exc if isinstance(exc, BaseException) else None)


class VirtualClock:
    """A clock that only moves when told to, or when someone sleeps on it.

    Thread-safe. ``sleeps`` lists every wait requested, in order.
    """

    REAL_WAIT_LIMIT = 30.0

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = forksafe.rlock()
        self._timers: list[tuple[float, int, TimerHandle]] = []
        self._order = itertools.count()
        self.sleeps: list[float] = []

    # Clock protocol

    def monotonic(self) -> float:
        return self._now

    __call__ = monotonic

    @property
    def now(self) -> float:
        """The current virtual time."""
        return self._now

    def sleep(self, seconds: float) -> None:
        """Record the wait and move the clock forward by it, at once."""
        with self._lock:
            self.sleeps.append(seconds)
        self.advance(seconds)

    async def async_sleep(self, seconds: float) -> None:
        """Record the wait, move the clock forward, and yield to the event loop once."""
        with self._lock:
            self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait for ``event`` until the virtual time passes ``seconds`` from now.

        Returns ``True`` if the event was set before the deadline and ``False`` once
        another thread moves the clock past the deadline first; real time does not
        count. The verdict is taken at the deadline itself, so a worker that sleeps
        past the deadline on this clock and then sets the event has still timed out.
        """
        expired = threading.Event()

        def expire() -> None:
            if not event.is_set():
                expired.set()

        handle = self.call_later(seconds, expire)
        give_up = time.monotonic() + self.REAL_WAIT_LIMIT
        try:
            while not expired.is_set():
                if event.wait(0.001):
                    # expire() runs before whoever set the event moves on, so a
                    # deadline passed first is already visible here.
                    return not expired.is_set()
                if time.monotonic() > give_up:
                    raise RuntimeError(
                        f"VirtualClock.wait: nothing set the event or moved the clock for "
                        f"{self.REAL_WAIT_LIMIT}s of real time"
                    )
            return False
        finally:
            handle.cancel()

    def timeout(self, seconds: float) -> _VirtualTimeout:
        """Virtual-time equivalent of ``asyncio.timeout(seconds)``."""
        return _VirtualTimeout(self, seconds)

    # control

    def call_later(self, delay: float, callback: Callable[[], object]) -> TimerHandle:
        """Run ``callback`` once the clock reaches now + ``delay``."""
        with self._lock:
            handle = TimerHandle(self._now + delay, callback)
            heapq.heappush(self._timers, (handle.when, next(self._order), handle))
        if delay <= 0:
            self.advance(0.0)
        return handle

    def advance(self, seconds: float) -> None:
        """Move the clock forward, running each timer that comes due at its own time."""
        if seconds < 0:
            raise ValueError(f"VirtualClock.advance needs seconds >= 0, got {seconds!r}")
        with self._lock:
            target = self._now + seconds
        while True:
            with self._lock:
                if not self._timers or self._timers[0][0] > target:
                    self._now = max(self._now, target)
                    return
                when, _, handle = heapq.heappop(self._timers)
                self._now = max(self._now, when)
            if not handle.cancelled:
                handle.callback()

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now})"


_REPEAT_LAST: Final[Any] = object()


class ScriptedCall:
    """A stand-in dependency that fails on cue: it plays ``outcomes`` in order,
    raising the exceptions (instances or classes) and returning anything else,
    then keeps answering ``then`` (by default the last outcome again)::

        fetch = ScriptedCall(ConnectionError, ConnectionError, "data")
        assert retry(max_attempts=3, base_delay=0, clock=VirtualClock())(fetch)() == "data"
        assert fetch.calls == 3

    ``latency`` seconds pass on ``clock`` during every call (a :class:`VirtualClock`
    makes slow calls instant). ``calls`` counts calls, ``arguments`` records
    them. Use :class:`AsyncScriptedCall` for a coroutine function.
    """

    def __init__(self, *outcomes: Any, then: Any = _REPEAT_LAST, latency: float = 0.0,
                 clock: VirtualClock | None = None) -> None:
        if not outcomes and then is _REPEAT_LAST:
            raise TypeError("ScriptedCall needs at least one outcome or then=...")
        if latency and clock is None:
            raise TypeError("ScriptedCall(latency=...) needs clock= to spend it on")
        self._outcomes = list(outcomes)
        self._then = outcomes[-1] if then is _REPEAT_LAST else then
        self._latency = latency
        self._clock = clock
        self._lock = forksafe.lock()
        self.calls = 0
        self.arguments: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def _next(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        with self._lock:
            index = self.calls
            self.calls += 1
            self.arguments.append((args, kwargs))
        return self._outcomes[index] if index < len(self._outcomes) else self._then

    @staticmethod
    def _play(outcome: Any) -> Any:
        if isinstance(outcome, BaseException) or (
            isinstance(outcome, type) and issubclass(outcome, BaseException)
        ):
            raise outcome
        return outcome

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        outcome = self._next(args, kwargs)
        if self._latency and self._clock is not None:
            self._clock.sleep(self._latency)
        return self._play(outcome)


class AsyncScriptedCall(ScriptedCall):
    """The coroutine-function twin of :class:`ScriptedCall`."""

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        outcome = self._next(args, kwargs)
        if self._latency and self._clock is not None:
            await self._clock.async_sleep(self._latency)
        else:
            await asyncio.sleep(0)
        return self._play(outcome)


def reset_registries() -> None:
    """Forget every named circuit breaker and clear global resilience state:
    global listeners, in-memory metrics (and their listener), settings, and the
    HTTP clients ``get_http_client`` shares (when that module was loaded)."""
    import sys

    from buttress._core.events import GLOBAL
    from buttress.config import reset_settings
    from buttress.observe.metrics import resilience_metrics
    from buttress.registry import clear_circuit_breakers

    clear_circuit_breakers()
    resilience_metrics.uninstall()
    resilience_metrics.reset()
    GLOBAL.clear()
    reset_settings()
    http_clients = sys.modules.get("buttress.http.client")
    if http_clients is not None:
        http_clients._forget_shared()


class TestingMode:
    """What :func:`set_testing` returns: the mode is already set; used as a
    context manager, it puts the previous mode back on exit."""

    __slots__ = ("_previous",)
    __test__ = False  # not a test class, though pytest would think so by its name

    def __init__(self, previous: tuple[bool, int, bool]) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        TEST_MODE.active, TEST_MODE.attempts, TEST_MODE.cap = self._previous


def set_testing(on: bool, *, attempts: int = 1, cap: bool = False) -> TestingMode:
    """Turn the global test mode on or off, for every retry at once (stamina's
    ``set_testing``). On, a retry never waits (no sleep call at all: neither
    schedule nor ``retry_after`` hints) and makes ``attempts`` attempts in all
    (with ``cap=True``: at most ``attempts``, fewer if the retry is configured
    for fewer). Listeners and hooks still see every attempt. Off costs nothing:
    only a failed attempt looks at the mode, never a successful call::

        set_testing(True, attempts=2)   # e.g. in conftest.py
        ...
        with set_testing(True):         # or for one block, restored after it
            ...

    .. versionadded:: 0.2
    """
    if not isinstance(on, bool):
        raise TypeError(f"set_testing on must be a bool, got {on!r}")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValueError(f"set_testing attempts must be an int >= 1, got {attempts!r}")
    previous = (TEST_MODE.active, TEST_MODE.attempts, TEST_MODE.cap)
    TEST_MODE.attempts, TEST_MODE.cap = attempts, bool(cap)
    TEST_MODE.active = on
    return TestingMode(previous)


def testing(attempts: int = 1, *, cap: bool = False) -> TestingMode:  # noqa: PT028
    """Test mode for the block of a ``with`` statement, restored after it::

        @retry(max_attempts=5, base_delay=10.0)
        def flaky() -> None: ...

        with testing(attempts=2):
            flaky()  # two attempts, no wait between them

    .. versionadded:: 0.2
    """
    return set_testing(True, attempts=attempts, cap=cap)


testing.__test__ = False  # type: ignore[attr-defined]  # imported into a test module, not a test


def is_testing() -> bool:
    """Whether the global test mode (:func:`set_testing`) is on.

    .. versionadded:: 0.2
    """
    return TEST_MODE.active
