"""Cases a-c: retry on the success path, after two failures, and exhausted.

Every library retries ``ConnectionError`` up to three attempts with zero wait
and ends with the original error. Peers' retry logging and instrumentation
are turned off so each library is measured doing the retrying alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import threading
import time
from collections.abc import Callable
from typing import Any

import backoff
import stamina
import tenacity

import buttress
from benchmarks.functions import ATTEMPTS, failing, failing_twice, succeeding
from benchmarks.groups import RETRY_EXHAUSTED, RETRY_SUCCESS, RETRY_TWO_FAILURES
from benchmarks.harness import KINDS, Case, Kind
from buttress import SYSTEM_CLOCK
from buttress._core.clock import AsyncTimeout

__all__ = ["NO_SLEEP", "WITH_METRICS", "NoSleepClock", "SleepCalled", "cases", "check_no_sleep"]

WITH_METRICS = "buttress + metrics listener"


Decorate = Callable[[Callable[..., Any]], Callable[..., Any]]

# stamina wires in logging (and prometheus, when installed) hooks on every retry.
stamina.instrumentation.set_on_retry_hooks([])


class SleepCalled(RuntimeError):
    """Raised by :class:`NoSleepClock`: a zero-delay retry tried to wait."""


class NoSleepClock:
    """A clock whose ``sleep`` and ``async_sleep`` count the call and raise."""

    def __init__(self) -> None:
        self.sleeps = 0

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        raise SleepCalled(f"sleep({seconds!r})")

    async def async_sleep(self, seconds: float) -> None:
        self.sleeps += 1
        raise SleepCalled(f"async_sleep({seconds!r})")

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(seconds)

    def timeout(self, seconds: float) -> AsyncTimeout:
        return SYSTEM_CLOCK.timeout(seconds)


NO_SLEEP = NoSleepClock()


# --- one decorator per library ----------------------------------------------------------


def _buttress(fn: Callable[..., Any]) -> Callable[..., Any]:
    return buttress.retry(max_attempts=ATTEMPTS, base_delay=0, jitter=0, reraise=True,
                          retry_on=(ConnectionError,), clock=NO_SLEEP)(fn)


def _buttress_with_metrics(fn: Callable[..., Any]) -> Callable[..., Any]:
    """buttress with the in-memory metrics listening to this retry's events."""
    from buttress.observe.metrics import ResilienceMetrics

    retrying = buttress.retry(max_attempts=ATTEMPTS, base_delay=0, jitter=0, reraise=True,
                              retry_on=(ConnectionError,), clock=NO_SLEEP)
    ResilienceMetrics().install(retrying.events)
    return retrying(fn)


def _tenacity(fn: Callable[..., Any]) -> Callable[..., Any]:
    return tenacity.retry(stop=tenacity.stop_after_attempt(ATTEMPTS), wait=tenacity.wait_none(),
                          retry=tenacity.retry_if_exception_type(ConnectionError),
                          reraise=True)(fn)


def _stamina(fn: Callable[..., Any]) -> Callable[..., Any]:
    return stamina.retry(on=ConnectionError, attempts=ATTEMPTS, timeout=None, wait_initial=0,
                         wait_max=0, wait_jitter=0)(fn)


def _backoff(fn: Callable[..., Any]) -> Callable[..., Any]:
    decorate: Decorate = backoff.on_exception(backoff.constant, ConnectionError,
                                              max_tries=ATTEMPTS, interval=0, jitter=None,
                                              logger=None)
    return decorate(fn)


def _hand_written(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The floor: a plain loop, no library."""

    def retrying() -> Any:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return fn()
            except ConnectionError:
                if attempt == ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    async def retrying_async() -> Any:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await fn()
            except ConnectionError:
                if attempt == ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    return retrying_async if inspect.iscoroutinefunction(fn) else retrying


LIBRARIES: dict[str, Decorate] = {
    "buttress": _buttress,
    "tenacity": _tenacity,
    "stamina": _stamina,
    "backoff": _backoff,
}


def _build(decorate: Decorate, protected: Callable[[Kind], Callable[[], Any]],
           kind: Kind) -> Callable[[], Any]:
    return decorate(protected(kind))


def _group(group: str, protected: Callable[[Kind], Callable[[], Any]],
           libraries: dict[str, Decorate],
           expect: tuple[type[BaseException], ...] = ()) -> list[Case]:
    return [
        Case(group, impl, kind, functools.partial(_build, decorate, protected, kind), expect)
        for kind in KINDS
        for impl, decorate in libraries.items()
    ]


def cases() -> list[Case]:
    """Cases a, b and c, sync and async, for buttress and every peer."""
    with_floor = {**LIBRARIES, "hand-written loop": _hand_written}
    return [
        *_group(RETRY_SUCCESS, succeeding,
                {**LIBRARIES, WITH_METRICS: _buttress_with_metrics}),
        *_group(RETRY_TWO_FAILURES, failing_twice, with_floor),
        *_group(RETRY_EXHAUSTED, failing, with_floor, expect=(ConnectionError,)),
    ]


def check_no_sleep(calls: int = 200) -> int:
    """Run the zero-delay two-failure scenario ``calls`` times sync and async on
    :data:`NO_SLEEP`; return the number of calls made. Any sleep shows in
    ``NO_SLEEP.sleeps``."""
    retrying = _buttress(failing_twice("sync"))
    retrying_async = _buttress(failing_twice("async"))

    async def run_async() -> None:
        for _ in range(calls):
            with contextlib.suppress(SleepCalled):
                await retrying_async()

    for _ in range(calls):
        with contextlib.suppress(SleepCalled):
            retrying()
    asyncio.run(run_async())
    return 2 * calls
