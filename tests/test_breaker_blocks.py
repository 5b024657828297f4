"""``with breaker:`` and ``async with breaker:`` keep one frame per block in a
context variable: each block settles its own outcome, wherever it ends."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Iterator

import pytest

from buttress import CircuitBreaker, CircuitState


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
