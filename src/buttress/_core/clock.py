"""Time as a dependency.

Every strategy reads time and waits through a :class:`Clock`, so tests can
swap in :class:`buttress.testing.VirtualClock` and run hours of backoff and
recovery timeouts in microseconds. The default is :data:`SYSTEM_CLOCK`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

__all__ = ["SYSTEM_CLOCK", "AsyncTimeout", "Clock", "SystemClock", "reader"]


@runtime_checkable
class AsyncTimeout(Protocol):
    """What :meth:`Clock.timeout` returns: an async context manager that can say
    whether it expired (``asyncio.Timeout`` satisfies this)."""

    async def __aenter__(self) -> object: ...

    async def __aexit__(self, *exc_info: object) -> bool | None: ...

    def expired(self) -> bool: ...


@runtime_checkable
class Clock(Protocol):
    """Source of monotonic time and of waiting."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...

    async def async_sleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds``."""
        ...

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait up to ``seconds`` for ``event``; return whether it was set."""
        ...

    def timeout(self, seconds: float) -> AsyncTimeout:
        """An async context manager that cancels its body after ``seconds``."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic``, ``time.sleep``, ``asyncio.sleep`` and
    ``asyncio.timeout``."""

    __slots__ = ()

    # The C functions themselves, not methods calling them: every strategy
    # reads the clock on its paths, and a Python frame there cost ~0.4k
    # instructions per reading.
    monotonic = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)

    async def async_sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(seconds)

    def timeout(self, seconds: float) -> AsyncTimeout:
        cm: AbstractAsyncContextManager[object] = asyncio.timeout(seconds)
        return cm  # type: ignore[return-value]

    def __repr__(self) -> str:
        return "SYSTEM_CLOCK"


SYSTEM_CLOCK: Clock = SystemClock()
"""The shared real clock used when a strategy is given none."""


def reader(clock: Clock) -> Callable[[], float]:
    """The clock's reading function, to look up once per decoration: for the
    system clock ``time.monotonic`` itself, which saves the Python frame of
    :meth:`SystemClock.monotonic` (about 250 instructions) on every read."""
    return time.monotonic if type(clock) is SystemClock else clock.monotonic
