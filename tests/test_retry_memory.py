"""A retried call frees the exceptions of its failed attempts (with their tracebacks
and the frames those hold) as soon as it ends, by reference counting alone.

An exception whose traceback holds a frame that holds the exception is a cycle:
only the garbage collector frees it, so every retried call would leave garbage
(and the arguments of its attempts) behind until the next collection, and pay
for that collection. These tests run with the collector off and check that
nothing of a finished call is left alive.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, ClassVar

import pytest

from buttress import Retry, RetryConfig, RetryExhaustedError
from buttress.events import Event


class Down(ConnectionError):
    """A failure that records (weakly) every instance made, to see it freed."""

    made: ClassVar[list[weakref.ref[Down]]] = []

    def __init__(self) -> None:
        super().__init__("down")
        Down.made.append(weakref.ref(self))


@contextmanager
def collector_off() -> Iterator[None]:
    Down.made.clear()
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def alive() -> int:
    """How many failures made so far are still alive."""
    return sum(ref() is not None for ref in Down.made)


def flaky(failures: int) -> Callable[[], str]:
    calls = 0

    def call() -> str:
        nonlocal calls
        calls += 1
        if calls <= failures:
            raise Down()
        return "ok"

    return call


def aflaky(failures: int) -> Callable[[], Awaitable[str]]:
    call = flaky(failures)

    async def acall() -> str:
        return call()

    return acall


def config(**options: Any) -> RetryConfig:
    return RetryConfig(max_attempts=3, base_delay=0, jitter=0, retry_on=(Down,), **options)


def heard(retry: Retry) -> Retry:
    """``retry`` with a listener (that keeps nothing), so its watched path runs."""
    heard_events: list[str] = []

    def listener(event: Event) -> None:
        heard_events.append(type(event).__name__)

    retry.events.add(listener)
    return retry


RETRIES = {
    "quiet": lambda: Retry(config()),
    "heard": lambda: heard(Retry(config())),
    "judging results": lambda: Retry(config(retry_on_result=lambda result: False)),
}


@pytest.mark.parametrize("make", RETRIES.values(), ids=list(RETRIES))
def test_a_call_that_succeeds_after_two_failures_leaves_both_failures_freed(
        make: Callable[[], Retry]) -> None:
    with collector_off():
        assert make()(flaky(2))() == "ok"
        assert len(Down.made) == 2
        assert alive() == 0


@pytest.mark.parametrize("make", RETRIES.values(), ids=list(RETRIES))
def test_an_exhausted_call_leaves_its_failures_freed_once_its_error_is_dropped(
        make: Callable[[], Retry]) -> None:
    with collector_off():
        with suppress(RetryExhaustedError):
            make()(flaky(5))()
        assert len(Down.made) == 3
        assert alive() == 0


def test_an_exhausted_call_that_reraises_leaves_its_failures_freed() -> None:
    with collector_off():
        with suppress(Down):
            Retry(config(reraise=True))(flaky(5))()
        assert len(Down.made) == 3
        assert alive() == 0


@pytest.mark.parametrize("make", RETRIES.values(), ids=list(RETRIES))
async def test_an_async_call_that_succeeds_after_two_failures_leaves_both_freed(
        make: Callable[[], Retry]) -> None:
    with collector_off():
        assert await make()(aflaky(2))() == "ok"
        assert len(Down.made) == 2
        assert alive() == 0


@pytest.mark.parametrize("make", RETRIES.values(), ids=list(RETRIES))
async def test_an_exhausted_async_call_leaves_its_failures_freed(
        make: Callable[[], Retry]) -> None:
    with collector_off():
        with suppress(RetryExhaustedError):
            await make()(aflaky(5))()
        assert len(Down.made) == 3
        assert alive() == 0


async def test_an_exhausted_async_call_that_reraises_leaves_its_failures_freed() -> None:
    with collector_off():
        with suppress(Down):
            await Retry(config(reraise=True))(aflaky(5))()
        assert len(Down.made) == 3
        assert alive() == 0


class Hinted(Down):
    """A failure with a zero ``retry_after`` hint: the quick loop hands the call
    to the general one."""

    retry_after = 0


def test_a_quick_call_handed_to_the_general_loop_leaves_its_failures_freed() -> None:
    calls = 0

    def call() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Down()
        if calls == 2:
            raise Hinted()
        return "ok"

    with collector_off():
        assert Retry(config())(call)() == "ok"
        assert len(Down.made) == 2
        assert alive() == 0
