"""The per-call context: deadlines that flow down a call, on a virtual clock.

A timeout tightens the deadline, nested protected calls and the threads and
tasks they start inherit it, a retry never starts a wait that ends past it,
and nothing of it is left once the outermost call ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from buttress import (
    CallContext,
    DeadlineExceededError,
    OperationTimeoutError,
    Retry,
    RetryExhaustedError,
    Timeout,
    TimeoutConfig,
    current_context,
    deadline,
    remaining_time,
)
from buttress.events import GaveUp
from buttress.testing import AsyncScriptedCall, ScriptedCall, VirtualClock


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture(autouse=True)
def no_context_leaks() -> Iterator[None]:
    """Every test starts and ends with no context: nothing leaks between calls."""
    assert current_context() is None
    yield
    assert current_context() is None


# --- no context unless a deadline is involved --------------------------------------------


def test_outside_any_protected_call_there_is_no_context_and_no_remaining_time() -> None:
    assert current_context() is None
    assert remaining_time() is None


# --- a timeout tightens the deadline ----------------------------------------------------


def test_inside_a_sync_timeout_the_remaining_time_is_its_limit(clock: VirtualClock) -> None:
    limited = Timeout(5.0, clock=clock).wrap(remaining_time)
    assert limited() == 5.0


def test_an_outer_timeout_of_one_second_limits_an_inner_one_of_five(
        clock: VirtualClock) -> None:
    inner = Timeout(5.0, clock=clock).wrap(remaining_time)

    def outer_call() -> float | None:
        clock.advance(0.25)
        return inner()

    assert Timeout(1.0, clock=clock).wrap(outer_call)() == 0.75


async def test_an_outer_async_timeout_of_one_second_limits_an_inner_one_of_five(
        clock: VirtualClock) -> None:
    async def read() -> float | None:
        return remaining_time()

    inner = Timeout(5.0, clock=clock).wrap_async(read)

    async def outer_call() -> float | None:
        return await inner()

    assert await Timeout(1.0, clock=clock).wrap_async(outer_call)() == 1.0


async def test_an_async_timeout_gives_its_call_a_first_attempt_context_that_copies(
        clock: VirtualClock) -> None:
    clock.advance(10.0)

    async def read() -> CallContext | None:
        return current_context()

    context = await Timeout(2.0, clock=clock, operation_name="fetch").wrap_async(read)()
    assert context is not None
    assert (context.operation, context.deadline, context.clock, context.attempt,
            dict(context.items)) == ("fetch", 12.0, clock, 1, {})
    twin = copy.copy(context)
    assert type(twin) is CallContext
    assert (twin.operation, twin.deadline, twin.clock, twin.attempt, dict(twin.items)) == (
        "fetch", 12.0, clock, 1, {})
    assert repr(twin) == repr(context)


async def test_async_with_timeout_tightens_the_deadline_for_its_block(
        clock: VirtualClock) -> None:
    async with Timeout(1.0, clock=clock):
        async with Timeout(5.0, clock=clock):
            assert remaining_time() == 1.0
        clock.advance(0.5)
        assert remaining_time() == 0.5
    assert current_context() is None


def test_a_signal_timeout_inside_a_deadline_sees_the_shorter_deadline() -> None:
    limited = Timeout(TimeoutConfig(30.0, use_signal=True)).wrap(remaining_time)
    with deadline(1.0):
        remaining = limited()
    assert remaining is not None
    assert 0.0 < remaining <= 1.0


def test_an_inner_timeout_shorter_than_the_deadline_keeps_its_own_limit(
        clock: VirtualClock) -> None:
    with deadline(10.0, clock=clock):
        assert Timeout(2.0, clock=clock).wrap(remaining_time)() == 2.0
        assert remaining_time() == 10.0


def test_a_deadline_on_another_clock_is_converted_through_the_time_left() -> None:
    user_clock, strategy_clock = VirtualClock(start=1000.0), VirtualClock()
    with deadline(2.0, clock=user_clock):
        user_clock.advance(0.5)
        context = Timeout(5.0, clock=strategy_clock).wrap(current_context)()
    assert context is not None
    assert (context.clock, context.deadline) == (strategy_clock, 1.5)


# --- the deadline cuts a timeout short, and says so ---------------------------------------


def test_a_timeout_cut_short_by_the_deadline_says_the_deadline_ran_out(
        clock: VirtualClock) -> None:
    limited = Timeout(5.0, clock=clock, operation_name="fetch").wrap(lambda: clock.sleep(2.0))
    with deadline(1.0, clock=clock), pytest.raises(DeadlineExceededError) as info:
        limited()
    error = info.value
    assert isinstance(error, OperationTimeoutError)
    assert (error.operation, error.timeout, error.limit) == ("fetch", 1.0, 5.0)
    assert "deadline ran out" in str(error)


async def test_an_async_timeout_cut_short_by_the_deadline_says_the_deadline_ran_out(
        clock: VirtualClock) -> None:
    async def slow() -> None:
        await clock.async_sleep(2.0)

    limited = Timeout(5.0, clock=clock, operation_name="fetch").wrap_async(slow)
    async with deadline(1.0, clock=clock):
        with pytest.raises(DeadlineExceededError, match="deadline ran out") as info:
            await limited()
    assert (info.value.timeout, info.value.limit) == (1.0, 5.0)
    assert clock.now == 2.0


class RecordingClock(VirtualClock):
    """Records the limit of every async timer armed."""

    def __init__(self) -> None:
        super().__init__()
        self.armed: list[float] = []

    def timeout(self, seconds: float) -> Any:
        self.armed.append(seconds)
        return super().timeout(seconds)


async def test_an_inner_async_timer_is_armed_at_the_outer_deadline_and_the_outer_reports() -> None:
    clock = RecordingClock()

    async def slow() -> None:
        await asyncio.sleep(0)  # suspend first, so both timers are armed at time 0
        await clock.async_sleep(2.0)

    inner = Timeout(5.0, clock=clock, operation_name="inner").wrap_async(slow)
    outer = Timeout(1.0, clock=clock, operation_name="outer").wrap_async(inner)
    with pytest.raises(OperationTimeoutError) as info:
        await outer()
    assert clock.armed == [1.0, 1.0]  # both expire together, at the outer deadline
    assert (info.value.operation, info.value.timeout) == ("outer", 1.0)
    await asyncio.sleep(0)  # no cancellation is left pending on the task


def test_the_deadline_error_replaces_a_custom_timeout_exception(clock: VirtualClock) -> None:
    class SlowQuery(Exception):
        pass

    config = TimeoutConfig(5.0, exception_class=SlowQuery)
    limited = Timeout(config, clock=clock).wrap(lambda: clock.sleep(2.0))
    with deadline(1.0, clock=clock), pytest.raises(DeadlineExceededError):
        limited()
    with pytest.raises(SlowQuery):
        Timeout(config, clock=clock).wrap(lambda: clock.sleep(6.0))()


def test_a_call_whose_deadline_already_ran_out_is_not_started(clock: VirtualClock) -> None:
    calls: list[str] = []
    limited = Timeout(5.0, clock=clock).wrap(lambda: calls.append("ran"))
    with deadline(1.0, clock=clock):
        clock.advance(1.0)
        with pytest.raises(DeadlineExceededError) as info:
            limited()
    assert calls == []
    assert info.value.timeout == 0.0


async def test_an_async_call_whose_deadline_already_ran_out_is_not_started(
        clock: VirtualClock) -> None:
    calls: list[str] = []

    async def call() -> None:
        calls.append("ran")

    with deadline(1.0, clock=clock):
        clock.advance(2.0)
        with pytest.raises(DeadlineExceededError):
            await Timeout(5.0, clock=clock).wrap_async(call)()
        with pytest.raises(DeadlineExceededError):
            async with Timeout(5.0, clock=clock):
                calls.append("block ran")
    assert calls == []


# --- a retry never starts a wait that ends past the deadline -----------------------------


def doubling_retry(clock: VirtualClock, **options: object) -> Retry:
    """Waits of 1, 2, 4, 8 ... seconds, ten attempts allowed."""
    return Retry(max_attempts=10, base_delay=1.0, exponential_base=2.0, max_delay=60.0,
                 jitter=0, retry_on=(ConnectionError,), clock=clock, **options)


def test_a_retry_stops_before_a_wait_that_would_end_past_the_deadline(
        clock: VirtualClock) -> None:
    fetch = ScriptedCall(ConnectionError("refused"))
    retrying = doubling_retry(clock)
    stopped: list[GaveUp] = []
    retrying.events.add(stopped.append, GaveUp)
    with deadline(10.0, clock=clock), pytest.raises(RetryExhaustedError) as info:
        retrying.wrap(fetch)()
    # Attempts at 0, 1, 3 and 7 s; the next wait (8 s) would end at 15 s, past 10 s.
    assert (fetch.calls, clock.sleeps, clock.now) == (4, [1.0, 2.0, 4.0], 7.0)
    assert info.value.attempts == 4
    assert "deadline ran out" in str(info.value)
    assert info.value.reason == "the call's deadline ran out: the next wait was 8s with 3s left"
    assert [event.reason for event in stopped] == ["deadline"]


async def test_an_async_retry_stops_before_a_wait_that_would_end_past_the_deadline(
        clock: VirtualClock) -> None:
    fetch = AsyncScriptedCall(ConnectionError("refused"))
    async with deadline(10.0, clock=clock):
        with pytest.raises(RetryExhaustedError, match="deadline ran out"):
            await doubling_retry(clock).wrap_async(fetch)()
    assert (fetch.calls, clock.sleeps, clock.now) == (4, [1.0, 2.0, 4.0], 7.0)


def test_a_reraising_retry_stopped_by_the_deadline_raises_the_last_error_with_a_note(
        clock: VirtualClock) -> None:
    fetch = ScriptedCall(ConnectionError("refused"))
    with deadline(2.0, clock=clock), pytest.raises(ConnectionError) as info:
        doubling_retry(clock, reraise=True).wrap(fetch)()
    assert fetch.calls == 2
    assert any("deadline ran out" in note for note in info.value.__notes__)


def test_an_overall_timeout_around_a_retry_bounds_its_waits(clock: VirtualClock) -> None:
    fetch = ScriptedCall(ConnectionError("refused"))
    overall = Timeout(10.0, clock=clock).wrap(doubling_retry(clock).wrap(fetch))
    with pytest.raises(RetryExhaustedError, match="deadline ran out"):
        overall()
    assert (fetch.calls, clock.sleeps) == (4, [1.0, 2.0, 4.0])


def test_a_retry_puts_the_attempt_number_in_the_context(clock: VirtualClock) -> None:
    seen: list[int | None] = []

    def fetch() -> str:
        context = current_context()
        seen.append(context.attempt if context else None)
        if len(seen) < 3:
            raise ConnectionError("refused")
        return "ok"

    retrying = doubling_retry(clock).wrap(fetch)
    with deadline(60.0, clock=clock) as block:
        assert retrying() == "ok"
        assert current_context() is block  # the attempts' contexts are gone
    assert seen == [1, 2, 3]
    seen.clear()
    assert retrying() == "ok"  # no deadline: the first attempt sets no context
    assert seen == [None, 2, 3]


def test_a_nested_retry_counts_its_own_attempts_and_gives_the_outer_ones_back(
        clock: VirtualClock) -> None:
    seen: list[tuple[str, int | None]] = []

    def attempt_now() -> int | None:
        context = current_context()
        return context.attempt if context else None

    inner_failures = ScriptedCall(ConnectionError, ConnectionError, "ok")

    def inner_call() -> str:
        seen.append(("inner", attempt_now()))
        result: str = inner_failures()
        return result

    inner = Retry(max_attempts=3, base_delay=0, retry_on=(ConnectionError,), clock=clock)
    outer_calls = ScriptedCall(TimeoutError("slow"), "go")

    def outer_call() -> str:
        outer_calls()
        seen.append(("outer", attempt_now()))
        result: str = inner.wrap(inner_call)()
        seen.append(("outer", attempt_now()))
        return result

    outer = Retry(max_attempts=3, base_delay=0, retry_on=(TimeoutError,), clock=clock)
    assert outer.wrap(outer_call)() == "ok"
    # The inner retry's first attempt still reads the outer's number: it has not retried.
    assert seen == [("outer", 2), ("inner", 2), ("inner", 2), ("inner", 3), ("outer", 2)]


async def test_an_async_retry_puts_the_attempt_number_in_the_context(
        clock: VirtualClock) -> None:
    seen: list[tuple[str | None, int] | None] = []

    async def fetch() -> str:
        await asyncio.sleep(0)
        context = current_context()
        seen.append((context.operation, context.attempt) if context else None)
        if len(seen) < 3:
            raise ConnectionError("refused")
        return "ok"

    retrying = Retry(max_attempts=3, base_delay=0, retry_on=(ConnectionError,), clock=clock,
                     name="fetch")
    assert await retrying.wrap_async(fetch)() == "ok"
    assert seen == [None, ("fetch", 2), ("fetch", 3)]


# --- nested protected calls, threads and tasks inherit the context ------------------------


def test_a_nested_protected_call_inherits_the_outermost_operation_name(
        clock: VirtualClock) -> None:
    @Timeout(5.0, clock=clock)
    def lookup() -> CallContext | None:
        return current_context()

    @Timeout(1.0, clock=clock)
    def checkout() -> CallContext | None:
        return lookup()

    context = checkout()
    assert context is not None
    assert context.operation is not None
    assert context.operation.endswith("checkout")


def test_a_protected_call_names_a_deadline_block_that_named_none(clock: VirtualClock) -> None:
    @Timeout(5.0, clock=clock, operation_name="checkout")
    def checkout() -> CallContext | None:
        return current_context()

    with deadline(1.0, clock=clock, items={"tenant": "acme"}):
        context = checkout()
    assert context is not None
    assert (context.operation, dict(context.items), context.deadline) == (
        "checkout", {"tenant": "acme"}, 1.0)


def test_the_worker_thread_of_a_sync_timeout_sees_the_callers_context(
        clock: VirtualClock) -> None:
    def in_worker() -> tuple[int, CallContext | None, float | None]:
        return threading.get_ident(), current_context(), remaining_time()

    with deadline(3.0, clock=clock, items={"request_id": "r-1"}):
        thread, context, remaining = Timeout(5.0, clock=clock).wrap(in_worker)()
    assert thread != threading.get_ident()
    assert context is not None
    assert dict(context.items) == {"request_id": "r-1"}
    assert remaining == 3.0


async def test_asyncio_tasks_created_inside_a_protected_call_inherit_its_context(
        clock: VirtualClock) -> None:
    async def child() -> tuple[str | None, float | None]:
        await asyncio.sleep(0)
        context = current_context()
        return (context.operation if context else None), remaining_time()

    @Timeout(2.0, clock=clock, operation_name="fan-out")
    async def fan_out() -> list[tuple[str | None, float | None]]:
        return list(await asyncio.gather(child(), asyncio.create_task(child())))

    assert await fan_out() == [("fan-out", 2.0), ("fan-out", 2.0)]


# --- nothing leaks ------------------------------------------------------------------------


def test_no_context_is_left_after_a_call_that_returns_fails_or_times_out(
        clock: VirtualClock) -> None:
    def broken() -> None:
        raise KeyError("missing")

    assert Timeout(5.0, clock=clock).wrap(current_context)() is not None
    assert current_context() is None
    with pytest.raises(KeyError):
        Timeout(5.0, clock=clock).wrap(broken)()
    assert current_context() is None
    with pytest.raises(OperationTimeoutError):
        Timeout(1.0, clock=clock).wrap(lambda: clock.sleep(2.0))()
    assert current_context() is None


async def test_no_context_is_left_after_an_async_call_that_returns_or_times_out(
        clock: VirtualClock) -> None:
    async def read() -> CallContext | None:
        await asyncio.sleep(0)
        return current_context()

    async def slow() -> None:
        await clock.async_sleep(2.0)

    assert await Timeout(5.0, clock=clock).wrap_async(read)() is not None
    assert current_context() is None
    with pytest.raises(OperationTimeoutError):
        await Timeout(1.0, clock=clock).wrap_async(slow)()
    assert current_context() is None
    with contextlib.suppress(OperationTimeoutError):
        async with Timeout(1.0, clock=clock):
            await clock.async_sleep(2.0)
    assert current_context() is None


# --- the user's deadline block ------------------------------------------------------------


def test_a_deadline_block_gives_its_code_a_remaining_time(clock: VirtualClock) -> None:
    with deadline(5.0, clock=clock) as context:
        assert remaining_time() == 5.0
        clock.advance(2.0)
        assert remaining_time() == 3.0
        assert current_context() is context
        clock.advance(10.0)
        assert remaining_time() == 0.0  # never negative
    assert remaining_time() is None


async def test_an_async_deadline_block_gives_its_code_a_remaining_time(
        clock: VirtualClock) -> None:
    async with deadline(5.0, clock=clock):
        await clock.async_sleep(1.5)
        assert remaining_time() == 3.5
    assert remaining_time() is None


def test_a_nested_deadline_never_extends_the_outer_one(clock: VirtualClock) -> None:
    with deadline(1.0, clock=clock):
        with deadline(5.0, clock=clock):
            assert remaining_time() == 1.0
        with deadline(0.5, clock=clock):
            assert remaining_time() == 0.5
        assert remaining_time() == 1.0


def test_nested_deadline_items_merge_over_the_outer_ones(clock: VirtualClock) -> None:
    with deadline(items={"tenant": "acme", "tier": "free"}):
        assert remaining_time() is None
        with deadline(1.0, clock=clock, items={"tier": "paid"}) as inner:
            assert dict(inner.items) == {"tenant": "acme", "tier": "paid"}
        context = current_context()
        assert context is not None
        assert dict(context.items) == {"tenant": "acme", "tier": "free"}


def test_a_deadline_refuses_a_negative_or_infinite_number_of_seconds() -> None:
    with pytest.raises(ValueError, match=r"deadline\.seconds"):
        deadline(-1.0)
    with pytest.raises(ValueError, match=r"deadline\.seconds"):
        deadline(float("inf"))
