"""The async timeout arms its timer only when the call suspends, with the same
semantics as ``asyncio.timeout`` otherwise."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from buttress import OperationTimeoutError, Timeout
from buttress.testing import VirtualClock
from buttress.timeout import await_with_timeout


class NoTimerClock(VirtualClock):
    """A clock on which arming a timeout is a test failure."""

    def timeout(self, seconds: float) -> Any:
        raise AssertionError(f"timeout({seconds!r}) armed")


class RecordingClock(VirtualClock):
    """Records the limit of every timeout armed."""

    def __init__(self) -> None:
        super().__init__()
        self.armed: list[float] = []

    def timeout(self, seconds: float) -> Any:
        self.armed.append(seconds)
        return super().timeout(seconds)


async def test_a_call_that_never_suspends_arms_no_timer() -> None:
    async def cached() -> str:
        return "hit"

    limited = Timeout(1.0, clock=NoTimerClock()).wrap_async(cached)
    assert [await limited() for _ in range(3)] == ["hit"] * 3


async def test_an_error_raised_before_suspending_passes_through_without_a_timer() -> None:
    async def broken() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        await Timeout(1.0, clock=NoTimerClock()).wrap_async(broken)()


async def test_time_spent_before_the_first_suspension_counts_against_the_limit() -> None:
    clock = RecordingClock()
    gate = asyncio.Event()

    async def slow_start() -> str:
        clock.advance(3.0)  # three (virtual) seconds of synchronous work
        await gate.wait()
        return "done"

    task = asyncio.create_task(Timeout(5.0, clock=clock).wrap_async(slow_start)())
    await asyncio.sleep(0)
    assert clock.armed == [2.0]
    clock.advance(1.5)
    gate.set()
    assert await task == "done"


async def test_a_suspended_call_times_out_at_its_deadline() -> None:
    clock = VirtualClock()

    async def hang() -> None:
        await asyncio.Event().wait()

    task = asyncio.create_task(Timeout(2.0, clock=clock).wrap_async(hang)())
    await asyncio.sleep(0)
    clock.advance(1.999)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(0.001)
    with pytest.raises(OperationTimeoutError) as info:
        await task
    assert info.value.timeout == 2.0
    assert isinstance(info.value.__cause__, TimeoutError)


async def test_values_and_errors_of_awaited_futures_reach_the_inner_coroutine() -> None:
    loop = asyncio.get_running_loop()
    first: asyncio.Future[int] = loop.create_future()
    second: asyncio.Future[int] = loop.create_future()

    async def inner() -> tuple[int, str]:
        value = await first
        try:
            await second
        except LookupError as exc:
            return value, str(exc)
        return value, "no error"

    task = asyncio.create_task(await_with_timeout(inner(), 10.0, VirtualClock()))
    await asyncio.sleep(0)
    first.set_result(41)
    await asyncio.sleep(0)
    second.set_exception(LookupError("missing"))
    assert await task == (41, "missing")


async def test_a_plain_future_can_be_limited_too() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()
    loop.call_soon(future.set_result, "ready")
    assert await await_with_timeout(future, 1.0, VirtualClock()) == "ready"


async def test_outside_cancellation_stays_a_cancellation_on_the_real_clock() -> None:
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(Timeout(30.0).wrap_async(hang)())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_the_operations_own_timeout_error_is_not_relabelled() -> None:
    async def own() -> None:
        await asyncio.sleep(0)
        raise TimeoutError("upstream said so")

    with pytest.raises(TimeoutError, match="upstream said so") as info:
        await Timeout(30.0).wrap_async(own)()
    assert not isinstance(info.value, OperationTimeoutError)


async def test_real_clock_expiry_cancels_the_work_and_raises_operation_timeout() -> None:
    cancelled = asyncio.Event()

    async def hang() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(OperationTimeoutError):
        await Timeout(0.01).wrap_async(hang)()
    assert cancelled.is_set()
    # The task itself is not left cancelling: later awaits work normally.
    current = asyncio.current_task()
    assert current is not None
    assert current.cancelling() == 0
    await asyncio.sleep(0)
