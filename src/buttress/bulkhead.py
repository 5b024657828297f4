"""Bulkhead: a limit on how many calls run at once, with a bounded queue.

A dependency that slows down should hold a bounded share of the service's
threads and tasks, not all of them. ``max_concurrent`` calls run; up to
``max_queue`` more wait (first come, first served) for at most ``max_wait``
seconds; the rest are rejected at once with :class:`BulkheadFullError`.

One bulkhead limits sync and async callers together: permits are counted
under one lock, and a permit is handed straight to the next waiter on
release, so a newcomer can not overtake the queue. A waiting task that is
cancelled leaves the queue (or passes on a permit it was just handed).

Invariants:

* A permit is never lost: a waiter that stops waiting for any reason (its
  ``max_wait`` ran out, a task cancelled, a thread interrupted by a signal
  handler's exception or ``KeyboardInterrupt``, a sync-timeout caller that
  gave up) leaves the queue, or gives back the permit it was handed meanwhile.
* A permit is never made: :meth:`Bulkhead.release` with no permit out raises
  ``ValueError`` (as ``threading.BoundedSemaphore`` does) instead of adding
  capacity. Like a semaphore's, permits are not tied to threads, so a stray
  release while other permits are out is only caught once the count would go
  below zero.
* Behind a sync timeout (the pipeline order puts the bulkhead inside it), a
  call whose caller was already told ``OperationTimeoutError`` while it was
  queued never starts: it leaves the queue as soon as the caller gives up.
* In a forked child, the waiters and running calls of the parent's other
  threads do not exist: the child's bulkhead starts with none, and releases of
  permits the forking thread held are absorbed.
"""

from __future__ import annotations

import asyncio
import threading
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from types import CoroutineType
from typing import Any, Unpack

from buttress._core import caller as _caller
from buttress._core import forksafe, validate
from buttress._core.clock import SYSTEM_CLOCK, Clock
from buttress._core.errors import BulkheadFullError, OperationTimeoutError
from buttress._core.events import GLOBAL, CallRejected, Listeners, deliver
from buttress._core.strategy import Steps, Strategy
from buttress.options import BulkheadOptions

__all__ = ["Bulkhead", "BulkheadConfig", "BulkheadFullError"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BulkheadConfig:
    """``max_concurrent`` calls at once; ``max_queue`` more may wait, each for at
    most ``max_wait`` seconds (None: as long as it takes).

    ``max_wait`` is refused (``ConfigurationError``) above
    ``threading.TIMEOUT_MAX`` (about 292 years), the longest wait ``threading``
    can make, rather than clamped: such a value is a mistake for None."""

    max_concurrent: int = 10
    max_queue: int = 0
    max_wait: float | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        o = "BulkheadConfig"
        validate.integer(o, "max_concurrent", self.max_concurrent, minimum=1)
        validate.integer(o, "max_queue", self.max_queue, minimum=0)
        # Above threading.TIMEOUT_MAX (about 292 years) a wait raises OverflowError
        # once queued, stranding the waiter: refused here. None means no limit.
        validate.optional_number(o, "max_wait", self.max_wait, minimum=0.0,
                                 maximum=threading.TIMEOUT_MAX)
        if self.name is not None:
            validate.text(o, "name", self.name)


class _AsyncWaiter:
    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()


_Waiter = threading.Event | _AsyncWaiter


class Bulkhead(Strategy):
    """The bulkhead strategy: a decorator, a pipeline stage or ``bulkhead.call``::

        db_calls = Bulkhead(max_concurrent=20, max_queue=50, max_wait=1.0, name="db")

        @db_calls
        async def query(sql: str) -> list[dict]: ...
    """

    __slots__ = ("__weakref__", "_active", "_forgiven", "_lock", "_waiters", "clock", "config",
                 "events", "name")

    order = 50

    def __init__(self, config: BulkheadConfig | None = None, *, clock: Clock | None = None,
                 **options: Unpack[BulkheadOptions]) -> None:
        if config is not None and not isinstance(config, BulkheadConfig):
            raise TypeError(f"Bulkhead config must be a BulkheadConfig, got {config!r}")
        self.config = BulkheadConfig(**options) if config is None else config
        if config is not None and options:
            raise TypeError(
                f"pass a BulkheadConfig or keyword options, not both: {sorted(options)}")
        self.name = self.config.name
        self.clock = SYSTEM_CLOCK if clock is None else clock
        #: This bulkhead's listener hub: ``bulkhead.events.add(listener, *kinds)``.
        self.events = Listeners(GLOBAL)
        self._lock = forksafe.lock()
        self._active = 0
        self._waiters: deque[_Waiter] = deque()
        self._forgiven = 0  # permits held in the parent at fork time (see _after_fork_in_child)
        forksafe.register(self)

    def _given_name(self) -> str | None:
        """The name this strategy gives its calls, if any (see :func:`operation_name_of`)."""
        return self.name

    @property
    def active(self) -> int:
        """Calls running now."""
        return self._active

    @property
    def queued(self) -> int:
        """Calls waiting for a permit now."""
        return len(self._waiters)

    # permits

    def _try_acquire(self) -> bool:
        # Called with the lock held. Free permits go to the queue first.
        if self._active < self.config.max_concurrent and not self._waiters:
            self._active += 1
            return True
        return False

    def _reject(self, waited: bool = False) -> BulkheadFullError:
        config = self.config
        targets = self.events.of(CallRejected)
        if targets:
            deliver(targets, CallRejected("bulkhead", self.name, "full", 0.0))
        return BulkheadFullError(self.name, config.max_concurrent, config.max_queue, waited)

    def _release(self) -> None:
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                # The permit passes straight to the waiter: _active stays the same.
                if isinstance(waiter, threading.Event):
                    waiter.set()
                    return
                if not waiter.future.done():
                    waiter.loop.call_soon_threadsafe(self._grant, waiter)
                    return
            if self._active > 0:
                self._active -= 1
            elif self._forgiven > 0:
                self._forgiven -= 1
            else:
                raise ValueError(f"{self!r}.release() called with no permit taken: "
                                 "each release() must follow an acquire()")

    def _after_fork_in_child(self) -> None:
        # Only the forking thread lives on in a child. The others' queued waits
        # and running calls are gone with them, and so are their permits; the
        # forking thread's own, if it held any, is released later and absorbed.
        self._waiters.clear()
        self._forgiven, self._active = self._active, 0

    def _grant(self, waiter: _AsyncWaiter) -> None:
        # Runs on the waiter's loop. A waiter cancelled meanwhile passes the permit on.
        if waiter.future.done():
            self._release()
        else:
            waiter.future.set_result(None)

    def _enqueue(self, waiter: _Waiter) -> None:
        # Called with the lock held.
        if len(self._waiters) >= self.config.max_queue:
            raise self._reject()
        self._waiters.append(waiter)

    def _leave_queue(self, waiter: _Waiter) -> bool:
        """Take ``waiter`` out of the queue; False if it was already handed a permit."""
        with self._lock:
            try:
                self._waiters.remove(waiter)
            except ValueError:
                return False
            return True

    def acquire(self) -> None:
        """Take a permit, waiting in the queue if allowed; raise
        :class:`BulkheadFullError` otherwise. Pair with :meth:`release`."""
        with self._lock:
            if self._try_acquire():
                return
            waiter = threading.Event()
            self._enqueue(waiter)
        # Run for a sync timeout: its caller giving up wakes the waiter.
        caller = _caller.current()
        limit = self.config.max_wait
        try:
            if caller is not None:
                caller.wake_on_give_up(waiter.set)
            granted = self.clock.wait(waiter, threading.TIMEOUT_MAX if limit is None else limit)
            if caller is not None and caller.gave_up:
                raise OperationTimeoutError(
                    f"bulkhead {self.name or ''!s}: the caller stopped waiting (its timeout "
                    "expired) while the call was queued; the call was not started")
        except BaseException:
            # Interrupted (a signal handler's exception, KeyboardInterrupt) or
            # abandoned: leave the queue, or give back the permit handed over
            # meanwhile, so that no permit is lost with this waiter.
            if not self._leave_queue(waiter):
                self._release()
            raise
        finally:
            if caller is not None:
                caller.forget(waiter.set)
        if granted:
            return
        if self._leave_queue(waiter):
            raise self._reject(waited=True)
        # Handed a permit just as the wait ran out: keep it.

    async def acquire_async(self) -> None:
        """The async twin of :meth:`acquire`."""
        with self._lock:
            if self._try_acquire():
                return
            waiter = _AsyncWaiter(asyncio.get_running_loop())
            self._enqueue(waiter)
        limit = self.config.max_wait
        try:
            if limit is None:
                await waiter.future
            else:
                async with self.clock.timeout(limit):
                    await waiter.future
        except TimeoutError:
            if self._leave_queue(waiter) or waiter.future.cancelled():
                # Still queued, or handed a permit that _grant passes on (it finds
                # the future cancelled by the timeout): either way, not ours.
                raise self._reject(waited=True) from None
            # Handed a permit just as the wait ran out: keep it.
        except asyncio.CancelledError:
            # Still queued: just leave. Handed a permit already: give it back.
            if not self._leave_queue(waiter) and not waiter.future.cancelled():
                self._release()
            raise

    def release(self) -> None:
        """Give back a permit taken with :meth:`acquire` or :meth:`acquire_async`.

        Raises ``ValueError`` when no permit is out: a release without its
        acquire never adds capacity."""
        self._release()

    # call paths

    # The call paths take a free permit and give it back inline, with the
    # lock's own acquire and release rather than ``with`` and a method call:
    # about 3,300 instructions less per sync call on CPython 3.11 (callgrind;
    # a ``with`` on a lock costs about 1,000 more than acquire and release).
    # Between the two, plain reads and writes only, as in _try_acquire and
    # _release, which the other cases go through.

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self._wrap(fn, None, None)

    def _heard(self, fn: Callable[..., Any], hub: Listeners,
               report: Callable[..., Any]) -> Callable[..., Any]:
        return self._wrap(fn, hub, report)

    def _wrap(self, fn: Callable[..., Any], hub: Listeners | None,
              report: Callable[..., Any] | None) -> Callable[..., Any]:
        lock, unlock = self._lock.acquire, self._lock.release
        waiters, most = self._waiters, self.config.max_concurrent

        def limited(*args: Any, **kwargs: Any) -> Any:
            if hub is not None and hub.active:
                return report(*args, **kwargs)  # type: ignore[misc]
            lock()
            if self._active < most and not waiters:  # _try_acquire
                self._active += 1
                unlock()
            else:
                unlock()
                self.acquire()
            try:
                # fn(*args) without keywords: fn(**kwargs) copies the dict (~200
                # instructions, callgrind, CPython 3.11).
                return fn(*args, **kwargs) if kwargs else fn(*args)
            finally:
                lock()
                if waiters or self._active <= 0:  # a waiter takes the permit over
                    unlock()
                    self._release()
                else:
                    self._active -= 1
                    unlock()

        return limited

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        return self._wrap_async(fn, None, None)

    def _heard_async(self, fn: Callable[..., Awaitable[Any]], hub: Listeners,
                     report: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        return self._wrap_async(fn, hub, report)

    def _wrap_async(self, fn: Callable[..., Awaitable[Any]], hub: Listeners | None,
                    report: Callable[..., Awaitable[Any]] | None
                    ) -> Callable[..., Awaitable[Any]]:
        lock, unlock = self._lock.acquire, self._lock.release
        waiters, most = self._waiters, self.config.max_concurrent

        async def limited(*args: Any, **kwargs: Any) -> Any:
            if hub is not None and hub.active:
                return await report(*args, **kwargs)  # type: ignore[misc]
            lock()
            if self._active < most and not waiters:  # as in wrap
                self._active += 1
                unlock()
            else:
                unlock()
                await self.acquire_async()
            try:
                return await (fn(*args, **kwargs) if kwargs else fn(*args))  # as in wrap
            finally:
                lock()
                if waiters or self._active <= 0:
                    unlock()
                    self._release()
                else:
                    self._active -= 1
                    unlock()

        return limited

    def _steps_async(self, fn: Callable[..., Awaitable[Any]]) -> Steps | None:
        if type(self).wrap_async is not Bulkhead.wrap_async:
            return None  # a subclass that wraps differently keeps its layer
        lock, unlock = self._lock.acquire, self._lock.release
        waiters, most = self._waiters, self.config.max_concurrent

        @types.coroutine
        def limited(box: list[Any], args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Generator[Any, Any, None]:
            lock()
            if self._active < most and not waiters:  # as in wrap
                self._active += 1
                unlock()
            else:
                unlock()
                yield from self.acquire_async().__await__()
            try:
                awaitable: Any = fn(*args, **kwargs) if kwargs else fn(*args)  # as in wrap
                if type(awaitable) is not CoroutineType and not isinstance(awaitable, Coroutine):
                    awaitable = awaitable.__await__()  # a future, or another awaitable object
                box.append((yield from awaitable))
            finally:
                lock()
                if waiters or self._active <= 0:
                    unlock()
                    self._release()
                else:
                    self._active -= 1
                    unlock()

        return limited

    def __repr__(self) -> str:
        c = self.config
        return (f"Bulkhead(name={c.name!r}, max_concurrent={c.max_concurrent}, "
                f"max_queue={c.max_queue}, max_wait={c.max_wait})")

