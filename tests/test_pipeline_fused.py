"""A pipeline runs a timeout right around a bulkhead as one layer on its async
path (the bulkhead driven as a generator in the timeout's coroutine). Every
behaviour of the two layers stays: permits, queueing under the time limit,
the deadline seen inside, cancellation, reporting."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from buttress import (
    Bulkhead,
    BulkheadFullError,
    OperationTimeoutError,
    Pipeline,
    Timeout,
    remaining_time,
)
from buttress._core.operation import CallFinished
from buttress.testing import VirtualClock


def protect(clock: VirtualClock, *, limit: float = 1.0, most: int = 1,
            queue: int = 1) -> tuple[Pipeline, Bulkhead]:
    bulkhead = Bulkhead(max_concurrent=most, max_queue=queue, clock=clock)
    return Pipeline(Timeout(limit, clock=clock), bulkhead), bulkhead


async def test_a_call_takes_a_permit_sees_its_deadline_and_gives_the_permit_back() -> None:
    clock = VirtualClock()
    pipe, bulkhead = protect(clock, limit=1.5, most=2)
    seen: list[Any] = []

    @pipe
    async def call(x: int, *, y: int) -> int:
        seen.append((bulkhead.active, remaining_time()))
        return x + y

    assert await call(1, y=2) == 3
    assert await call(3, y=4) == 7
    assert seen == [(1, 1.5), (1, 1.5)]
    assert bulkhead.active == 0
    assert [type(s) for s in pipe.strategies] == [Timeout, Bulkhead]


async def test_an_error_raised_at_once_passes_through_and_frees_the_permit() -> None:
    clock = VirtualClock()
    pipe, bulkhead = protect(clock)

    @pipe
    async def broken() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        await broken()
    assert bulkhead.active == 0


async def test_a_suspended_call_holds_its_permit_until_the_timeout_cancels_it() -> None:
    clock = VirtualClock()
    pipe, bulkhead = protect(clock, limit=2.0)
    started = asyncio.Event()

    @pipe
    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(hang())
    await started.wait()
    assert bulkhead.active == 1
    clock.advance(1.999)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(0.001)
    with pytest.raises(OperationTimeoutError) as info:
        await task
    assert info.value.timeout == 2.0
    assert bulkhead.active == 0


async def test_a_call_queued_behind_a_full_bulkhead_times_out_and_leaves_the_queue() -> None:
    clock = VirtualClock()
    pipe, bulkhead = protect(clock, limit=1.0)
    patient = Pipeline(Timeout(10.0, clock=clock), bulkhead)
    release = asyncio.Event()

    async def hold() -> str:
        await release.wait()
        return "held"

    holder = asyncio.create_task(patient(hold)())
    await asyncio.sleep(0)
    queued = asyncio.create_task(pipe(hold)())
    await asyncio.sleep(0)
    assert (bulkhead.active, bulkhead.queued) == (1, 1)
    clock.advance(1.0)
    with pytest.raises(OperationTimeoutError):
        await queued
    assert (bulkhead.active, bulkhead.queued) == (1, 0)
    release.set()
    assert await holder == "held"
    assert bulkhead.active == 0


async def test_a_queued_call_runs_with_what_is_left_of_its_limit() -> None:
    clock = VirtualClock()
    pipe, bulkhead = protect(clock, limit=1.0)
    release = asyncio.Event()
    left: list[float | None] = []

    @pipe
    async def hold() -> None:
        await release.wait()

    @pipe
    async def measure() -> None:
        left.append(remaining_time())

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(measure())
    await asyncio.sleep(0)
    clock.advance(0.25)
    release.set()
    await holder
    await waiter
    assert left == [0.75]
    assert (bulkhead.active, bulkhead.queued) == (0, 0)


async def test_cancelling_a_queued_call_leaves_the_queue() -> None:
    clock = VirtualClock()
    pipe, bulkhead = protect(clock, limit=10.0)
    release = asyncio.Event()

    @pipe
    async def hold() -> None:
        await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    queued = asyncio.create_task(hold())
    await asyncio.sleep(0)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert (bulkhead.active, bulkhead.queued) == (1, 0)
    release.set()
    await holder
    assert bulkhead.active == 0


async def test_a_full_bulkhead_rejects_and_the_call_is_reported_once_as_rejected() -> None:
    clock = VirtualClock()
    pipe, bulkhead = protect(clock, queue=0)
    finished: list[CallFinished] = []
    pipe.events.add(finished.append, CallFinished)
    release = asyncio.Event()

    @pipe
    async def hold() -> None:
        await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    with pytest.raises(BulkheadFullError):
        await hold()
    release.set()
    await holder
    assert [(e.outcome, e.attempts) for e in finished] == [("rejected", 1), ("success", 1)]
    assert bulkhead.active == 0


async def test_a_timeout_around_another_timeout_around_a_bulkhead_keeps_both_limits() -> None:
    clock = VirtualClock()
    bulkhead = Bulkhead(max_concurrent=1, clock=clock)
    pipe = Pipeline(Timeout(3.0, clock=clock), Timeout(1.0, clock=clock), bulkhead,
                    ordered=True)
    seen: list[float | None] = []

    @pipe
    async def call() -> None:
        seen.append(remaining_time())

    await call()
    assert seen == [1.0]
    assert bulkhead.active == 0


def test_the_sync_path_of_the_same_pipeline_takes_and_gives_back_a_permit() -> None:
    bulkhead = Bulkhead(max_concurrent=1)
    pipe = Pipeline(Timeout(30.0), bulkhead)
    seen: list[int] = []

    @pipe
    def call() -> str:
        seen.append(bulkhead.active)
        return "ok"

    assert call() == "ok"
    assert seen == [1]
    assert bulkhead.active == 0
