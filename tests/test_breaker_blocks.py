"""``with breaker:`` and ``async with breaker:`` keep one frame per block in a
context variable: each block settles its own outcome, wherever it ends."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, cast

import pytest

from buttress import CircuitBreaker, CircuitBreakerError, CircuitState

T = TypeVar("T")


def test_a_block_left_in_another_context_still_counts_and_pops_its_frame() -> None:
    breaker = CircuitBreaker("blocks-generator", failure_threshold=1)

    def rows() -> Iterator[int]:
        with breaker:
            yield 1

    generator = rows()
    assert next(generator) == 1  # entered here
    elsewhere = contextvars.copy_context()
    with pytest.raises(StopIteration):
        elsewhere.run(next, generator)  # leaves in a copy: its token is foreign there

    assert breaker.stats.successful_calls == 1
    assert breaker.stats.failed_calls == 0
    assert elsewhere.run(breaker._frame) is None


def test_a_failing_block_left_in_another_context_trips_the_breaker() -> None:
    breaker = CircuitBreaker("blocks-generator-fails", failure_threshold=1)

    def rows() -> Iterator[int]:
        with breaker:
            yield 1
            raise ConnectionError("gone")

    generator = rows()
    next(generator)
    with pytest.raises(ConnectionError):
        contextvars.copy_context().run(next, generator)

    assert breaker.state is CircuitState.OPEN


def test_a_block_in_a_child_task_leaves_the_parents_frame_in_place() -> None:
    breaker = CircuitBreaker("blocks-tasks", failure_threshold=5)

    async def child() -> None:
        async with breaker:
            await asyncio.sleep(0)

    async def parent() -> None:
        async with breaker:
            own = breaker._frame()
            await asyncio.gather(*(child() for _ in range(10)))
            assert breaker._frame() is own  # the children popped only their own
        assert breaker._frame() is None

    asyncio.run(parent())
    assert breaker.stats.successful_calls == 11


def test_nested_blocks_of_one_breaker_unwind_in_order() -> None:
    breaker = CircuitBreaker("blocks-nested", failure_threshold=5)
    with breaker:
        outer = breaker._frame()
        with pytest.raises(KeyError), breaker:
            raise KeyError("inner")
        assert breaker._frame() is outer
    assert breaker._frame() is None
    assert (breaker.stats.successful_calls, breaker.stats.failed_calls) == (1, 1)


def _drive(coroutine: Coroutine[object, object, T]) -> T:
    """Run a coroutine that never suspends, with no event loop at all (as a
    trio task would meet the breaker: no asyncio loop running)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    raise AssertionError("the coroutine suspended")


async def _blocks(breaker: CircuitBreaker, outcomes: list[bool]) -> list[object]:
    bound: list[object] = []
    for fails in outcomes:
        try:
            async with breaker as entered:
                bound.append(entered)
                if fails:
                    raise ConnectionError("down")
        except ConnectionError:
            pass
    return bound


def test_async_blocks_count_the_same_with_and_without_an_asyncio_loop() -> None:
    outcomes = [False, True, False, True, True]
    looped = CircuitBreaker("blocks-looped", failure_threshold=10)
    loopless = CircuitBreaker("blocks-loopless", failure_threshold=10)

    assert asyncio.run(_blocks(looped, outcomes)) == [looped] * 5
    assert _drive(_blocks(loopless, outcomes)) == [loopless] * 5

    for breaker in (looped, loopless):
        assert (breaker.stats.successful_calls, breaker.stats.failed_calls) == (2, 3)
        assert breaker._frame() is None
    assert loopless._entered is None  # no loop to make a done future on: coroutines served


def test_an_async_block_trips_and_then_refuses_on_the_fast_path() -> None:
    breaker = CircuitBreaker("blocks-trip", failure_threshold=2, recovery_timeout=60)

    async def scenario() -> None:
        await _blocks(breaker, [False, True, True])
        assert breaker._entered is not None  # the first block made the done futures
        with pytest.raises(CircuitBreakerError):
            async with breaker:
                raise AssertionError("an open breaker let the block run")

    asyncio.run(scenario())
    assert breaker.state is CircuitState.OPEN
    assert breaker.stats.rejected_calls == 1


def test_a_breaker_outlives_the_event_loop_that_first_entered_it() -> None:
    breaker = CircuitBreaker("blocks-two-loops", failure_threshold=5)
    for _ in range(3):  # each asyncio.run is a new loop; the first one is closed
        assert asyncio.run(_blocks(breaker, [False, True])) == [breaker, breaker]
    assert (breaker.stats.successful_calls, breaker.stats.failed_calls) == (3, 3)


def test_async_blocks_in_eight_threads_each_with_its_loop_count_every_outcome() -> None:
    breaker = CircuitBreaker("blocks-threads", failure_threshold=10_000)
    outcomes = [False, False, True] * 100

    with ThreadPoolExecutor(8) as pool:
        runs = list(pool.map(lambda _: asyncio.run(_blocks(breaker, outcomes)), range(8)))

    assert all(len(bound) == 300 for bound in runs)
    assert (breaker.stats.successful_calls, breaker.stats.failed_calls) == (1_600, 800)
