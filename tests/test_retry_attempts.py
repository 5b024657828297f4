"""The iterator form of retry: ``for attempt in Retry(...).attempts(): with attempt: ...``."""

from __future__ import annotations

import asyncio

import pytest

from buttress import Retry, RetryExhaustedError
from buttress.testing import VirtualClock


def test_attempts_loop_retries_until_the_block_succeeds_with_exact_waits() -> None:
    clock = VirtualClock()
    numbers: list[int] = []
    for attempt in Retry(max_attempts=4, base_delay=1.0, jitter=0, clock=clock).attempts():
        with attempt:
            numbers.append(attempt.number)
            if len(numbers) < 3:
                raise ConnectionError("down")
    assert numbers == [1, 2, 3]
    assert clock.sleeps == [1.0, 2.0]


def test_attempts_loop_gives_up_with_retry_exhausted_error_chained_to_the_last_failure() -> None:
    clock = VirtualClock()
    with pytest.raises(RetryExhaustedError) as caught:
        for attempt in Retry(max_attempts=3, base_delay=0.5, jitter=0, clock=clock).attempts():
            with attempt:
                raise ConnectionError(f"attempt {attempt.number}")
    assert caught.value.attempts == 3
    assert str(caught.value.last_exception) == "attempt 3"
    assert caught.value.__cause__ is caught.value.last_exception
    assert clock.sleeps == [0.5, 1.0]


def test_attempts_loop_lets_non_retryable_errors_through_after_one_attempt() -> None:
    clock = VirtualClock()
    seen = 0
    with pytest.raises(ValueError, match="bad input"):
        for attempt in Retry(max_attempts=5, retry_on=(ConnectionError,), clock=clock).attempts():
            with attempt:
                seen += 1
                raise ValueError("bad input")
    assert seen == 1
    assert clock.sleeps == []


def test_attempts_loop_with_reraise_ends_with_the_last_exception_itself() -> None:
    with pytest.raises(ConnectionError, match="last"):
        for attempt in Retry(max_attempts=2, base_delay=0, reraise=True,
                             clock=VirtualClock()).attempts():
            with attempt:
                raise ConnectionError("last")


def test_attempts_loop_never_retries_keyboard_interrupt() -> None:
    seen = 0
    with pytest.raises(KeyboardInterrupt):
        for attempt in Retry(max_attempts=5, base_delay=0, clock=VirtualClock()).attempts():
            with attempt:
                seen += 1
                raise KeyboardInterrupt
    assert seen == 1


def test_attempts_loop_insists_on_the_with_block() -> None:
    with pytest.raises(RuntimeError, match="with"):
        for _attempt in Retry(max_attempts=2, clock=VirtualClock()).attempts():
            pass


async def test_async_attempts_loop_waits_on_the_clock_and_stops_on_success() -> None:
    clock = VirtualClock()
    numbers: list[int] = []
    retrying = Retry(max_attempts=3, base_delay=2.0, jitter=0, clock=clock)
    async for attempt in retrying.attempts_async():
        with attempt:
            numbers.append(attempt.number)
            await asyncio.sleep(0)
            if attempt.number == 1:
                raise TimeoutError("slow")
    assert numbers == [1, 2]
    assert clock.sleeps == [2.0]


async def test_async_attempts_loop_never_retries_cancellation() -> None:
    seen = 0

    async def body() -> None:
        nonlocal seen
        async for attempt in Retry(max_attempts=5, base_delay=0,
                                   clock=VirtualClock()).attempts_async():
            with attempt:
                seen += 1
                raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await body()
    assert seen == 1
